##! Adds synack's columns to conn.log: how the TCP handshake ended
##! (``handshake``), when the SYN-ACK was seen (``synack_ts``), the first
##! bytes the server sent (``server_reply``) and the name of the sensor
##! (``sensor``). With these, a conn.log alone answers "which host:port
##! answered, since when, saying what" without a second log stream.
##!
##! Cost: the handshake outcome and the SYN-ACK time come from events Zeek
##! raises anyway (:zeek:see:`connection_established`,
##! :zeek:see:`connection_rejected`, :zeek:see:`connection_attempt`) and
##! the connection's history at removal. The server reply is taken by the
##! signature engine (see ``server-reply.sig``), which already inspects
##! the beginning of every stream for protocol detection; no per-packet
##! event and no :zeek:see:`tcp_contents` is used. Per connection, at most
##! :zeek:see:`SynAck::reply_bytes` bytes are kept until the conn.log
##! entry is written.

@load base/protocols/conn

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

	redef record Conn::Info += {
		## How the connection's handshake ended, as the sensor saw it.
		## TCP: ``open`` (the responder sent a SYN-ACK), ``open_orig``
		## (the originator sent the SYN-ACK: Zeek saw it first and did
		## not flip the endpoints), ``rejected`` (the SYN was answered by
		## a RST), ``unanswered`` (SYN, no answer), ``midstream`` (neither
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
}

# What is learned about a connection before its conn.log entry is written.
redef record connection += {
	synack_handshake: string &optional;
	synack_seen: time &optional;
	synack_reply: string &optional;
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

	c$synack_reply = data[:reply_bytes];
	return F;
	}

event connection_established(c: connection)
	{
	# Raised for the responder's SYN-ACK.
	c$synack_handshake = "open";
	c$synack_seen = network_time();
	}

event connection_rejected(c: connection)
	{
	if ( ! c?$synack_handshake )
		c$synack_handshake = "rejected";
	}

event connection_attempt(c: connection)
	{
	if ( ! c?$synack_handshake )
		c$synack_handshake = "unanswered";
	}

# The outcome from the history letters (upper case: originator, lower
# case: responder), for connections no event classified; the same rules
# synack's ingester applies to stock conn.logs.
function handshake_from_history(c: connection): string
	{
	local h = c$history;

	if ( /h/ in h )
		return "open";

	if ( /H/ in h )
		return "open_orig";

	if ( /S/ in h && ( /r/ in h || c$conn?$conn_state && c$conn$conn_state == "REJ" ) )
		return "rejected";

	if ( /S/ in h )
		return "unanswered";

	return "midstream";
	}

# After Conn::set_conn (priority 5), before the conn.log write (priority -5).
event connection_state_remove(c: connection)
	{
	local proto = get_port_transport_proto(c$id$resp_p);

	if ( proto == tcp )
		{
		local outcome = handshake_from_history(c);

		# A history read at the end wins over an early event: an attempt
		# that was answered late is open, not unanswered.
		if ( outcome == "midstream" && c?$synack_handshake )
			outcome = c$synack_handshake;

		c$conn$handshake = outcome;

		if ( c?$synack_seen )
			c$conn$synack_ts = c$synack_seen;
		else if ( outcome == "open_orig" || /^\^?h/ in c$history )
			# The SYN-ACK was the first packet Zeek saw.
			c$conn$synack_ts = c$start_time;
		}
	else if ( proto == udp )
		c$conn$handshake = c$resp$num_pkts > 0 ? "answered" : "unanswered";

	if ( c?$synack_reply )
		c$conn$server_reply = c$synack_reply;

	c$conn$sensor = sensor_name != "" ? sensor_name : host_name;
	}
