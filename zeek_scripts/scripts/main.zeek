##! Adds synack's columns to conn.log: how the TCP handshake ended
##! (``handshake``), when the SYN-ACK was seen (``synack_ts``), the first
##! bytes the server sent (``server_reply``) and the name of the sensor
##! (``sensor``). With these, a conn.log alone answers "which host:port
##! answered, since when, saying what" without a second log stream.
##!
##! The handshake outcome follows the same rules as synack's ingester on a
##! stock conn.log (``ingest/handshake.py``): from the history letters and
##! ``conn_state`` at the connection's end, so both always agree.
##!
##! Cost: the outcome comes from the history Zeek keeps anyway, the SYN-ACK
##! time from :zeek:see:`connection_established` (raised anyway). The server
##! reply is taken by the signature engine (see ``server-reply.sig``), which
##! already inspects the beginning of every stream for protocol detection;
##! no per-packet event and no :zeek:see:`tcp_contents` is used. Per
##! connection, at most :zeek:see:`SynAck::reply_bytes` bytes are kept until
##! the conn.log entry is written.
##!
##! Site-wide setting: **this package raises** :zeek:see:`dpd_buffer_size`
##! **to at least 4096 bytes** (Zeek's default is 1024). Signature matching
##! stops once a connection's payload, both directions together, exceeds
##! that buffer, so with the default a server that answers after a client
##! sent more than about 1 KB (a TLS ClientHello with a post-quantum key
##! share is about 1.8 KB) would have no ``server_reply``. This affects all
##! of Zeek's signature matching and protocol detection: up to 4 KB instead
##! of 1 KB is buffered per connection until its protocol is found, and
##! signatures are matched over it (measured cost: the package README). A
##! site undoes it with ``redef dpd_buffer_size = 1024;`` after loading the
##! package. For replies after larger client payloads (64 KB uploads, SMB,
##! RDP), ``redef dpd_match_only_beginning = F;`` keeps matching after the
##! buffer is full (CPU, no memory; see the README).

@load base/protocols/conn
@load base/utils/directions-and-hosts
@load base/utils/site

# Never lower a larger value the site chose before loading the package.
redef dpd_buffer_size = dpd_buffer_size > 4096 ? dpd_buffer_size : 4096;

module SynAck;

export {
	## Keep at most this many bytes of the server's first payload.
	option reply_bytes: count = 64;

	## Capture the server's first payload into ``server_reply`` at all.
	option capture_reply: bool = T;

	## The sensor name written into ``sensor``; empty means this host's
	## name (:zeek:see:`gethostname`).
	option sensor_name: string = "";

	## Responder ports whose payload is never captured (e.g. ports that
	## carry sensitive data in the first bytes).
	option skip_reply_ports: set[port] = {};

	## Responder networks whose payload is never captured.
	option skip_reply_nets: set[subnet] = {};

	## Which servers get their reply captured, as known-services'
	## ``service_tracking``: ``LOCAL_HOSTS`` (inside
	## :zeek:see:`Site::local_nets`), ``REMOTE_HOSTS``, ``ALL_HOSTS`` or
	## ``NO_HOSTS``. The outcome and SYN-ACK time are logged for all.
	option reply_tracking: Host = ALL_HOSTS;

	redef record Conn::Info += {
		## How the connection's handshake ended, as the sensor saw it.
		## TCP: ``open`` (the responder sent a SYN-ACK), ``open_orig``
		## (the originator sent the SYN-ACK: Zeek saw it first and did
		## not flip the endpoints), ``inferred`` (no SYN-ACK seen, but
		## the responder sent data, or an ACK in an established state:
		## the sensor missed the SYN-ACK), ``rejected`` (the responder's
		## first answer to the SYN was a RST), ``unanswered`` (SYN, nothing
		## at all from the responder), ``ambiguous`` (SYN, something from
		## the responder that is none of these), ``midstream`` (neither
		## SYN nor SYN-ACK seen). UDP: ``answered`` (the responder sent
		## packets) or ``unanswered``. Unset for other protocols.
		handshake: string &log &optional;

		## When the SYN-ACK was seen: the moment the server port was
		## detected, which can be later than the connection's ``ts``.
		synack_ts: time &log &optional;

		## The first bytes (at most :zeek:see:`SynAck::reply_bytes`) of
		## the first payload the server sent. The log writer escapes
		## non-printable bytes.
		server_reply: string &log &optional;

		## The sensor that saw the connection
		## (:zeek:see:`SynAck::sensor_name`).
		sensor: string &log &optional;
	};

	## The signature engine's hook (see ``server-reply.sig``): records the
	## first payload the responder sent. Always returns F so the
	## signature never fires.
	global record_reply: function(state: signature_state, data: string): bool;

	## Called once per connection when its server reply has been captured
	## (``c$synack_reply`` is then set): lets ``notice.zeek`` put the reply
	## in a notice without waiting for the connection's end.
	global reply_captured: hook(c: connection);
}

# What is learned about a connection before its conn.log entry is written.
redef record connection += {
	synack_seen: time &optional;
	synack_reply: string &optional;
};

# The conn_states Zeek gives a connection it saw established.
const established_states: set[string] = {
	"S1",
	"SF",
	"S2",
	"S3",
	"RSTO",
	"RSTR"
};

# The host name, looked up once.
global host_name = "";

event zeek_init()
	{
	host_name = gethostname();
	}

function record_reply(state: signature_state, data: string): bool
	{
	local c = state$conn;

	if ( ! capture_reply || c?$synack_reply )
		return F;

	if ( c$id$resp_p in skip_reply_ports || c$id$resp_h in skip_reply_nets )
		return F;

	if ( ! addr_matches_host(c$id$resp_h, reply_tracking) )
		return F;

	c$synack_reply = data[:reply_bytes];
	hook reply_captured(c);
	return F;
	}

event connection_established(c: connection)
	{
	# Raised for the responder's SYN-ACK: the moment the port was detected.
	c$synack_seen = network_time();
	}

# The outcome from the history letters (upper case: originator, lower
# case: responder) and conn_state: the rules synack's ingester applies to
# stock conn.logs (ingest/handshake.py, the README's outcome table), so the
# two never disagree.
function handshake_from_history(c: connection): string
	{
	local h = c$history;
	local state = c$conn?$conn_state ? c$conn$conn_state : "";

	if ( /h/ in h )
		return "open";

	if ( /H/ in h )
		return "open_orig";

	if ( /S/ !in h )
		return state == "REJ" && h == "" ? "rejected" : "midstream";

	# A SYN and no SYN-ACK seen: the responder's data before any reset of
	# its own, or its ACK in a state Zeek calls established, says the
	# SYN-ACK was sent and the sensor missed it.
	if ( /^[^S]*S[^dr]*d/ in h )
		return "inferred";

	if ( /^[^S]*S.*a/ in h && state in established_states )
		return "inferred";

	if ( /^[^S]*S[^dr]*r/ in h )
		return "rejected";

	if ( /[a-z]/ !in h && c$resp$num_pkts == 0 )
		return "unanswered";

	return "ambiguous";
	}

# After Conn::set_conn (priority 5), before the conn.log write (priority -5).
event connection_state_remove(c: connection)
	{
	local proto = get_port_transport_proto(c$id$resp_p);

	if ( proto == tcp )
		{
		local outcome = handshake_from_history(c);
		c$conn$handshake = outcome;

		if ( c?$synack_seen )
			c$conn$synack_ts = c$synack_seen;
		else if ( outcome == "open_orig" || /^\^?h/ in c$history )
			# No connection_established for these: the connection's
			# first packet (the SYN-ACK, or one just before it) is the
			# closest time known.
			c$conn$synack_ts = c$start_time;
		}
	else if ( proto == udp )
		c$conn$handshake = c$resp$num_pkts > 0 ? "answered" : "unanswered";

	if ( c?$synack_reply )
		c$conn$server_reply = c$synack_reply;

	c$conn$sensor = sensor_name != "" ? sensor_name : host_name;
	}
