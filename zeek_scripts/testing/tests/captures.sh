# Every capture of traces/ (written by traces/make_traces.py) with the
# package's defaults: outcome, SYN-ACK time and server reply per connection.
# Covers: client-first payloads of 200 B and 1.8 KB (reply captured) and
# 64 KB (no reply by default: see reply-after-64k.zeek), a SYN-ACK carrying
# data, a UDP service answering the third request, an IPv6 server, RSTs
# after the SYN-ACK from either side, RSTs without a SYN (REJ without S:
# midstream, as ingest/handshake.py says), an originator's SYN-ACK, and
# SYN-ACKs a lossy mirror port dropped (inferred; a bare ACK: ambiguous).
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: bash %INPUT > out
# @TEST-EXEC: btest-diff out

for f in "$CAPTURES"/*.pcap; do
	# 300 identical handshakes: notice-answers-everything.zeek checks them.
	[ "$(basename "$f")" = answers-everything.pcap ] && continue
	rm -f conn.log
	zeek -C -r "$f" "$PACKAGE" 2>/dev/null || exit 1
	echo "# $(basename "$f")"
	zeek-cut ts id.orig_h id.orig_p id.resp_h id.resp_p proto history conn_state handshake synack_ts server_reply < conn.log | sort
done
