##! Raises a notice on the first SYN-ACK of a server port that synack's
##! inventory has never seen: the sensor closes the loop itself, within a
##! second of the handshake, instead of waiting for the next report.
##!
##! Not loaded by default. Load it after the package, by path
##! (``@load /path/to/synack/zeek_scripts/scripts/notice``) or, after
##! ``zkg install``, as ``@load packages/synack/notice``, and name the
##! baseline written by ``synack export-known``::
##!
##!     redef SynAck::known_servers_file = "/var/lib/synack/known.tsv";
##!
##! The baseline is a Zeek Input-framework table (read in REREAD mode, so a
##! new export is picked up while Zeek runs) with one row per known server
##! port (a /32 or /128 network, the protocol, the port as ``lo`` = ``hi``)
##! and one per range the site expects (a network, ``tcp``, ``udp`` or
##! ``any``, a port range). A SYN-ACK from a host in
##! :zeek:see:`Site::local_nets` on a port that no row covers raises
##! :zeek:see:`SynAck::New_Server_Port`; a UDP port that answers raises
##! :zeek:see:`SynAck::New_UDP_Service` at its first answer (a one-packet
##! threshold of Zeek's ConnThreshold, set only on UDP connections to a
##! local port not known yet: no per-packet event). Each notice waits at
##! most :zeek:see:`SynAck::reply_wait` for the server's first bytes, and
##! is raised as soon as they are seen.
##!
##! A site with millions of known ports names a Bloom filter of them too,
##! written by ``synack export-known --filter`` (megabytes where the table
##! costs a gigabyte; one new port in a million is taken for known)::
##!
##!     redef SynAck::known_filter_file = "/var/lib/synack/known.filter";
##!
##! Until the baseline has been read once, no notice is raised: every port
##! would be new. Reading a capture (``zeek -r``), packet processing waits
##! for the baseline, at most :zeek:see:`SynAck::baseline_wait`; a missing
##! or unusable baseline is reported once in reporter.log and these notices
##! stay off (an empty but valid baseline means "nothing known": every new
##! port raises a notice).

@load ./main
@load base/frameworks/notice
@load base/frameworks/input
@load base/frameworks/cluster
@load base/protocols/conn/thresholds
@load base/utils/site

module SynAck;

export {
	redef enum Notice::Type += {
		## A host in Site::local_nets answered a TCP SYN with a SYN-ACK on
		## a port that is neither in the baseline nor expected by it (or
		## answered it with data after a SYN-ACK the sensor missed: the
		## message says so).
		New_Server_Port,
		## A UDP port of a host in Site::local_nets answered, and is
		## neither in the baseline nor expected by it.
		New_UDP_Service,
		## A host raised :zeek:see:`SynAck::notices_per_host` new-port
		## notices within :zeek:see:`SynAck::host_window` and answered on
		## yet another new port: it answers every port (a SYN proxy, a
		## tarpit, a honeypot). Its further new ports raise no notice
		## until the window ends.
		Host_Answers_Everything,
	};

	## New-port notices one host raises within :zeek:see:`SynAck::host_window`
	## (per Zeek process) before one Host_Answers_Everything replaces the rest.
	option notices_per_host: count = 5;

	## The window of :zeek:see:`SynAck::notices_per_host`.
	const host_window: interval = 1day &redef;

	## At most this many host:port pairs are kept in
	## :zeek:see:`SynAck::learned`; beyond, new ones are not remembered
	## (notice suppression still stops repeats) and reporter.log says so once.
	option max_learned: count = 1000000;

	## How long a learned port is remembered (the next baseline export
	## knows it by then).
	const learned_expire: interval = 1day &redef;

	## The baseline written by ``synack export-known``; empty: no notices.
	const known_servers_file = "" &redef;

	## The known server ports as a Bloom filter, written by ``synack
	## export-known --filter`` beside the table; empty: none. When set,
	## notices also wait for it; a re-read filter that is not whole, or
	## holds more than max_shrink fewer ports, is not taken.
	const known_filter_file = "" &redef;

	## How long a new port's notice is suppressed (per host:port/proto).
	option notice_suppression: interval = 1day;

	## How long to wait, reading a capture, for the baseline before
	## processing packets without these notices (and, live, before saying
	## so in reporter.log).
	option baseline_wait: interval = 10sec;

	## A re-read baseline that drops more than this share of the rows the
	## baseline held is not taken: the previous rows are kept (put back)
	## and reporter.log says so, once per such re-read, instead of every
	## dropped port raising a notice (an export of the wrong sensor or
	## network). A port the next export drops for good stays known until
	## Zeek restarts.
	option max_shrink: double = 0.5;

	## How long after the SYN-ACK a notice waits for the server's first
	## bytes to put them in its message (it is raised as soon as they are
	## seen, or when the connection ends).
	option reply_wait: interval = 500msec;

	## A row of the baseline: its index...
	type KnownIndex: record {
		net: subnet;
		proto: string;
		lo: count;
		hi: count;
	};

	## ... and its value: ``what`` is ``known`` (seen by synack, since
	## ``first_seen``) or ``expected`` (the allowlist).
	type KnownValue: record {
		first_seen: time &optional;
		what: string;
	};

	## The baseline as last read.
	global baseline: table[subnet, string, count, count] of KnownValue = table();

	## Ports that raised a notice (or were found expected) while Zeek runs;
	## a re-read baseline does not forget them.
	global learned: set[addr, port] = set() &create_expire=learned_expire;

	## Shares a port learned on one worker with the others (through the
	## manager), as known-services does.
	global port_learned: event(host: addr, p: port);

	## Adds a port to :zeek:see:`SynAck::learned` here and, in a cluster,
	## on every worker.
	global learn: function(h: addr, p: port);

	## Whether the baseline (and the filter, if named) was read at least
	## once (notices are on).
	global baseline_loaded = F;

	## A line of the filter file: a setting (bits, hashes, entries,
	## chunk_bytes) and its value, or a chunk of the filter: its number and
	## its bytes in hex.
	type FilterLine: record {
		kind: string;
		value: count;
		data: string &optional;
	};

	## A Bloom filter of known ports (see synack's inventory/known_filter.py):
	## a port's text is ``<addr>/<proto>/<port>``; with d its MD5, h1 and h2
	## its first two 32-bit words (h2 made odd), its bits are
	## (h1 + i * h2) % bits for i < hashes.
	type KnownFilter: record {
		bits: count &default=0;
		hashes: count &default=0;
		entries: count &default=0;
		chunk_bytes: count &default=0;
		chunks: table[count] of string;
	};

	## The filter as last taken (bits 0: none).
	global known_filter: KnownFilter = KnownFilter($chunks=table());
}

redef record Notice::Info += {
	## The sensor that raised it (as conn.log's ``sensor``).
	sensor: string &log &optional;
};

redef record connection += {
	## 1: a notice waits for the server's reply; 2: raised.
	synack_notice: count &default=0;
	## The notice that waits (New_Server_Port or New_UDP_Service).
	synack_note: Notice::Type &optional;
};

# Rows that are not one host and one port (networks, ranges, "any"), by
# network and then by block of port_block ports a range touches: a check
# looks only at the networks that hold the address (a prefix-tree lookup)
# and the ranges of the port's block, however many ranges there are.
global wide: table[subnet] of table[count] of set[string, count, count] =
    table();
const port_block = 1024;

const stream_name = "synack-known";
const filter_name = "synack-known-filter";
# The table was read once; the filter was taken once; its problem was said.
global table_read = F;
global filter_taken = F;
global filter_reported = F;
# The filter a (re-)read is building, taken at its end_of_data.
global next_filter: KnownFilter = KnownFilter($chunks=table());
global filter_retry: event();
global filter_problem: event(desc: Input::EventDescription, msg: string,
    level: Reporter::Level);
const wait_name = "synack-known-wait";
# Packet processing waits for the baseline (reading a capture); a wait runs.
global suspended = F;
global waiting = F;
global tried_again = F;
global reported = F;
global baseline_problem: event(desc: Input::TableDescription, msg: string,
    level: Reporter::Level);
global retry: event();

type WaitLine: record {
	line: string;
};

function is_wide(i: KnownIndex): bool
	{
	local exact_width = is_v4_subnet(i$net) ? 32 : 128;
	return i$proto == "any" || i$lo != i$hi || subnet_width(i$net) != exact_width;
	}

# Adds a row that is not one host and one port to `wide` (or, `removed`, takes it out).
function index_wide(i: KnownIndex, removed: bool)
	{
	if ( ! is_wide(i) )
		return;

	if ( i$net !in wide )
		{
		if ( removed )
			return;

		wide[i$net] = table();
		}

	local blocks = wide[i$net];
	local b = i$lo / port_block;
	while ( b <= i$hi / port_block && b <= 65535 / port_block )
		{
		if ( removed )
			{
			if ( b in blocks )
				{
				delete blocks[b][i$proto, i$lo, i$hi];
				if ( |blocks[b]| == 0 )
					delete blocks[b];
				}
			}
		else
			{
			if ( b !in blocks )
				blocks[b] = set();

			add blocks[b][i$proto, i$lo, i$hi];
			}
		++b;
		}

	if ( |blocks| == 0 )
		delete wide[i$net];
	}

# The rows a re-read dropped (its EVENT_REMOVED rows), kept until its
# end_of_data decides whether the re-read is taken (see max_shrink).
global dropped: table[subnet, string, count, count] of KnownValue = table();

event SynAck::known_entry(desc: Input::TableDescription, tpe: Input::Event,
    i: KnownIndex, v: KnownValue)
	{
	if ( tpe == Input::EVENT_REMOVED )
		dropped[i$net, i$proto, i$lo, i$hi] = v;

	index_wide(i, tpe == Input::EVENT_REMOVED);
	}

function resume()
	{
	if ( waiting )
		Input::remove(wait_name);

	waiting = F;
	if ( suspended )
		{
		suspended = F;
		continue_processing();
		}
	}

event SynAck::waited(desc: Input::EventDescription, tpe: Input::Event,
    line: string)
	{ }

event SynAck::filter_line(desc: Input::EventDescription, tpe: Input::Event,
    l: FilterLine)
	{
	switch ( l$kind )
		{
		case "bits":
			next_filter$bits = l$value;
			break;
		case "hashes":
			next_filter$hashes = l$value;
			break;
		case "entries":
			next_filter$entries = l$value;
			break;
		case "chunk_bytes":
			next_filter$chunk_bytes = l$value;
			break;
		case "chunk":
			if ( l?$data )
				next_filter$chunks[l$value] = l$data;
			break;
		}
	}

# Whether `f` is a whole filter: its settings, and every chunk its bits need, of the right length.
function filter_whole(f: KnownFilter): bool
	{
	if ( f$bits == 0 || f$hashes == 0 || f$chunk_bytes == 0 )
		return F;

	local need = ( f$bits + 7 ) / 8;
	local i = 0;
	while ( i * f$chunk_bytes < need )
		{
		local size = need - i * f$chunk_bytes;
		if ( i !in f$chunks
		    || |f$chunks[i]| != 2 * ( size < f$chunk_bytes ? size : f$chunk_bytes ) )
			return F;
		++i;
		}

	return T;
	}

const bit_values = vector(1, 2, 4, 8, 16, 32, 64, 128);

function in_filter(h: addr, proto: string, n: count): bool
	{
	if ( known_filter$bits == 0 )
		return F;

	local d = md5_hash(fmt("%s/%s/%d", h, proto, n));
	local h1 = bytestring_to_count(hexstr_to_bytestring(sub_bytes(d, 1, 8)));
	local h2 = bytestring_to_count(hexstr_to_bytestring(sub_bytes(d, 9, 8))) | 1;
	local i = 0;
	while ( i < known_filter$hashes )
		{
		local b = ( h1 + i * h2 ) % known_filter$bits;
		local byte = b / 8;
		local hex = sub_bytes(known_filter$chunks[byte / known_filter$chunk_bytes], (
		    byte % known_filter$chunk_bytes ) * 2 + 1, 2);
		if ( ( bytestring_to_count(hexstr_to_bytestring(hex)) & bit_values[b % 8] ) == 0 )
			return F;
		++i;
		}

	return T;
	}

function read_filter()
	{
	next_filter = KnownFilter($chunks=table());
	Input::add_event([$source=known_filter_file, $name=filter_name,
	    $fields=FilterLine, $want_record=T, $mode=Input::REREAD,
	    $ev=SynAck::filter_line, $error_ev=SynAck::filter_problem]);
	}

# Notices are on once the table is read and the filter, if named, taken.
function settle()
	{
	if ( baseline_loaded
	    || ! table_read
	    || ( known_filter_file != "" && ! filter_taken ) )
		return;

	baseline_loaded = T;
	resume();
	}

# Takes the filter a (re-)read built, if it is whole and not a shrunk export.
function take_filter()
	{
	local f = next_filter;
	next_filter = KnownFilter($chunks=table());
	local why = "";
	if ( ! filter_whole(f) )
		why = "is not a whole filter";
	else if ( filter_taken
	    && f$entries < known_filter$entries
	    && known_filter$entries - f$entries > max_shrink * known_filter$entries )
		why = fmt("holds %d known ports where the previous one held %d (more than %.0f%% fewer)",
		    f$entries, known_filter$entries, max_shrink * 100);

	if ( why != "" )
		{
		Reporter::warning(fmt("SynAck: the known filter %s %s: %s", known_filter_file,
		    why, filter_taken ? "the previous one is kept" :
		    "notices are off until it is read"));
		if ( ! filter_taken )
			resume(); # reading a capture: go on, without notices
		return;
		}

	known_filter = f;
	filter_taken = T;
	settle();
	}

event SynAck::filter_problem(desc: Input::EventDescription, msg: string,
    level: Reporter::Level)
	{
	if ( filter_taken || /^Init: / !in msg )
		return;

	Input::remove(filter_name);
	if ( ! filter_reported )
		Reporter::warning(fmt("SynAck: the known filter %s cannot be read: New_Server_Port notices are off until it is",
		    known_filter_file));
	filter_reported = T;
	resume();
	if ( ! reading_traces() )
		schedule baseline_wait { SynAck::filter_retry() };
	}

event SynAck::filter_retry()
	{
	if ( file_size(known_filter_file) >= 0 )
		read_filter();
	else
		schedule baseline_wait { SynAck::filter_retry() };
	}

function read_baseline()
	{
	Input::add_table([$source=known_servers_file, $name=stream_name,
	    $idx=KnownIndex, $val=KnownValue, $destination=baseline,
	    $mode=Input::REREAD, $ev=SynAck::known_entry,
	    $error_ev=SynAck::baseline_problem]);
	}

# Live, a baseline that could not be read is tried again this often.
event SynAck::retry()
	{
	if ( table_read )
		return;

	if ( file_size(known_servers_file) >= 0 )
		read_baseline();
	else
		schedule baseline_wait { SynAck::retry() };
	}

function give_up()
	{
	local why = file_size(known_servers_file) >= 0 ?
	    "cannot be used (see the reader's warning)" : fmt(
	    "not found after %s", baseline_wait);
	if ( ! reported ) # once: a live sensor retries quietly
		Reporter::warning(fmt("SynAck: baseline %s %s: New_Server_Port notices are off until it is read",
		    known_servers_file, why));
	reported = T;
	resume();
	if ( ! reading_traces() )
		schedule baseline_wait { SynAck::retry() };
	}

event Input::end_of_data(name: string, source: string)
	{
	if ( name == wait_name && waiting )
		{
		# The wait is over: read the file if it appeared meanwhile.
		waiting = F;
		if ( file_size(known_servers_file) >= 0 )
			read_baseline();
		else
			give_up();
		}

	if ( name == filter_name )
		{
		take_filter();
		return;
		}

	if ( name != stream_name )
		return;

	if ( table_read
	    && |dropped| > 0
	    && |dropped| > max_shrink * ( |baseline| + |dropped| ) )
		{
		Reporter::warning(fmt("SynAck: the re-read baseline %s dropped %d of its %d rows (more than %.0f%%): "
		    + "the previous rows are kept; check the export (its sensor and networks)", known_servers_file, |dropped|, |baseline| + |dropped|, max_shrink * 100));
		for ( [n, pr, lo, hi] in dropped )
			{
			baseline[n, pr, lo, hi] = dropped[n, pr, lo, hi];
			index_wide([$net=n, $proto=pr, $lo=lo, $hi=hi], F);
			}
		}

	dropped = table();
	table_read = T;
	settle();
	}

# The reader reports a file it cannot open or use here, at once, and
# stops reading it.
event SynAck::baseline_problem(desc: Input::TableDescription, msg: string,
    level: Reporter::Level)
	{
	if ( table_read || level == Reporter::INFO )
		return;

	if ( /^Init: |Did not find requested field/ !in msg )
		return; # a bad line: the reader skips it and goes on

	Input::remove(stream_name);
	if ( tried_again
	    || baseline_wait <= 0sec
	    || file_size(known_servers_file) >= 0 )
		{
		# There and unusable, or still missing: say so once, go on.
		give_up();
		return;
		}

	# Missing: wait (wall clock) for it to appear, then try once more:
	# reading a capture with processing suspended, no timer would fire,
	# since network time stands still, but an input stream runs.
	# `exec` makes the sleep the child that Input::remove ends.
	tried_again = T;
	waiting = T;
	Input::add_event([$source=fmt("exec sleep %.3f |", interval_to_double(
	    baseline_wait)), $reader=Input::READER_RAW, $mode=Input::MANUAL,
	    $name=wait_name, $fields=WaitLine, $ev=SynAck::waited,
	    $want_record=F]);
	}

event zeek_init()
	{
	if ( known_servers_file == "" )
		return;

	read_baseline();
	if ( known_filter_file != "" )
		read_filter();
	if ( reading_traces() )
		{
		suspended = T;
		suspend_processing();
		}
	}

function exact(h: addr): subnet
	{
	return is_v4_addr(h) ? h / 32 : h / 128;
	}

function expected(h: addr, proto: string, n: count): bool
	{
	local b = n / port_block;
	local nets = matching_subnets(exact(h), wide);
	for ( i in nets )
		{
		local blocks = wide[nets[i]];
		if ( b !in blocks )
			next;

		for ( [p, lo, hi] in blocks[b] )
			if ( ( p == "any" || p == proto ) && lo <= n && n <= hi )
				return T;
		}

	return F;
	}

# New-port notices per host within host_window (this process's).
global host_notices: table[addr] of count &default=0 &create_expire=host_window;
global learned_full = F;

function remember(h: addr, p: port)
	{
	if ( [h, p] in learned )
		return;

	if ( |learned| >= max_learned )
		{
		if ( ! learned_full )
			Reporter::warning(fmt("SynAck: %d learned ports (SynAck::max_learned): new ones are no longer remembered",
			    max_learned));
		learned_full = T;
		return;
		}

	add learned[h, p];
	}

# The notice's host has raised its share within host_window: say once that
# it answers everything (T: no port notice for it now).
function host_over_share(c: connection, server: addr, client: addr): bool
	{
	host_notices[server] += 1;
	local n = host_notices[server];
	if ( n <= notices_per_host )
		return F;

	if ( n == notices_per_host + 1 )
		NOTICE([$note=Host_Answers_Everything, $msg=fmt("%s answered on more than %d new ports within %s: it answers every port (a SYN proxy, "
		    + "tarpit or honeypot?); its further new ports raise no notice", addr_to_uri(server), notices_per_host, host_window), $conn=c, $src=client, $dst=server, $sensor=sensor_name != "" ? sensor_name : host_name, $identifier=addr_to_uri(server), $suppress_for=host_window]);
	return T;
	}

function is_new(h: addr, p: port): bool
	{
	if ( ! baseline_loaded || ! Site::is_local_addr(h) || [h, p] in learned )
		return F;

	local proto = cat(get_port_transport_proto(p));
	local n = port_to_count(p);

	if ( [exact(h), proto, n, n] in baseline
	    || in_filter(h, proto, n)
	    || expected(h, proto, n) )
		{
		remember(h, p); # expected: the ranges are not scanned again for it
		return F;
		}

	return T;
	}

function learn(h: addr, p: port)
	{
	remember(h, p);
@if ( Cluster::is_enabled() )
	Cluster::publish(Cluster::manager_topic, SynAck::port_learned, h, p);
@endif
	}

event SynAck::port_learned(host: addr, p: port)
	{
	remember(host, p);
@if ( Cluster::is_enabled() && Cluster::local_node_type() == Cluster::MANAGER )
	Cluster::publish(Cluster::worker_topic, SynAck::port_learned, host, p);
@endif
	}

function raise_notice(c: connection, note: Notice::Type, server: addr, p: port,
    client: addr)
	{
	if ( c$synack_notice == 2 )
		return;

	c$synack_notice = 2;
	if ( note != New_UDP_Service && host_over_share(c, server, client) )
		return;

	local what = note == New_UDP_Service ? "answered over UDP" : /[hH]/ in
	    c$history ? "answered a SYN with a SYN-ACK" :
	    "answered a SYN (SYN-ACK not seen: inferred from the server's data)";
	local msg = fmt("%s:%s %s: a server port not in synack's baseline",
	    addr_to_uri(server), p, what);
	if ( c?$synack_reply )
		msg = fmt("%s; reply: %s", msg, c$synack_reply);

	NOTICE([$note=note, $msg=msg, $conn=c, $src=client, $dst=server, $p=p,
	    $sensor=sensor_name != "" ? sensor_name : host_name,
	    $identifier=fmt("%s:%s", addr_to_uri(server), p),
	    $suppress_for=notice_suppression]);
	}

function raise_pending(c: connection)
	{
	if ( c$synack_notice == 1 )
		raise_notice(c, c$synack_note, c$id$resp_h, c$id$resp_p, c$id$orig_h);
	}

event SynAck::reply_timeout(c: connection)
	{
	raise_pending(c);
	}

# The responder answered on a new port: raise now if its reply is known,
# else as soon as it is (or after reply_wait, or at the connection's end).
function answered(c: connection, note: Notice::Type)
	{
	learn(c$id$resp_h, c$id$resp_p);
	c$synack_note = note;
	c$synack_notice = 1;
	if ( c?$synack_reply )
		raise_pending(c);
	else
		schedule reply_wait { SynAck::reply_timeout(c) };
	}

event connection_established(c: connection)
	{
	if ( is_new(c$id$resp_h, c$id$resp_p) )
		answered(c, New_Server_Port);
	}

function answering_udp_service(h: addr): bool
	{
	return ! ( h in 224.0.0.0/4 || h == 255.255.255.255 || h in [ff00::]/8 );
	}

# UDP has no handshake: a threshold of one responder packet, set only on
# connections to a new local port, says when it answers (no per-packet
# event for the others).
event new_connection(c: connection)
	{
	if ( get_port_transport_proto(c$id$resp_p) == udp
	    && answering_udp_service(c$id$resp_h)
	    && is_new(c$id$resp_h, c$id$resp_p) )
		ConnThreshold::set_packets_threshold(c, 1, F);
	}

event ConnThreshold::packets_threshold_crossed(c: connection, threshold: count,
    is_orig: bool)
	{
	if ( ! is_orig
	    && c$synack_notice == 0
	    && get_port_transport_proto(c$id$resp_p) == udp
	    && is_new(c$id$resp_h, c$id$resp_p) )
		answered(c, New_UDP_Service);
	}

# A SYN-ACK the sensor missed (a lossy mirror port): no
# connection_established, but the server's data after the client's SYN
# says it answered. The reply hook sees that data first.
function synack_missed(c: connection): bool
	{
	return get_port_transport_proto(c$id$resp_p) == tcp
	    && /^[^S]*S[^dr]*d/ in c$history
	    && /[hH]/ !in c$history;
	}

hook SynAck::reply_captured(c: connection)
	{
	if ( c$synack_notice == 0
	    && synack_missed(c)
	    && is_new(c$id$resp_h, c$id$resp_p) )
		answered(c, New_Server_Port);

	raise_pending(c);
	}

# After main.zeek sets the handshake (priority 0), before conn.log (-5).
event connection_state_remove(c: connection) &priority=-1
	{
	raise_pending(c);
	if ( ! c$conn?$handshake )
		return;

	if ( c$conn$handshake == "open_orig" && is_new(c$id$orig_h, c$id$orig_p) )
		{
		# Zeek saw the SYN-ACK first and kept the server as originator.
		learn(c$id$orig_h, c$id$orig_p);
		raise_notice(c, New_Server_Port, c$id$orig_h, c$id$orig_p, c$id$resp_h);
		}
	else if ( c$conn$handshake == "inferred" && is_new(c$id$resp_h, c$id$resp_p) )
		{
		# Inferred at the end (an ACK in an established state, or a
		# reply not captured): the SYN-ACK was missed.
		learn(c$id$resp_h, c$id$resp_p);
		raise_notice(c, New_Server_Port, c$id$resp_h, c$id$resp_p, c$id$orig_h);
		}
	else if ( c$conn$handshake == "answered"
	    && answering_udp_service(c$id$resp_h)
	    && is_new(c$id$resp_h, c$id$resp_p) )
		{
		# Answered before the baseline was read: no threshold was set.
		learn(c$id$resp_h, c$id$resp_p);
		raise_notice(c, New_UDP_Service, c$id$resp_h, c$id$resp_p, c$id$orig_h);
		}
	}
