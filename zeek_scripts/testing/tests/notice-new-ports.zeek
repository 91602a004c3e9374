# The baseline knows 10.1.0.1 22/tcp, 53/udp and [2001:db8::1] 22/tcp and
# expects 10.1.0.0/24 tcp 3000-4000: exactly the other local ports that
# answered raise a notice, each once (8443 answers twice), with the
# server's reply when it is seen; the remote server, the unanswered and
# the reset ports do not. notice.log carries the connection's uid and id.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: cp $CAPTURES/known.tsv .
# @TEST-EXEC: zeek -C -r $CAPTURES/new-ports.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT
# @TEST-EXEC: zeek-cut note id.orig_h id.resp_h id.resp_p proto src dst p msg < notice.log > out
# @TEST-EXEC: btest-diff out
# Each notice's uid is a connection of conn.log with the same server.
# @TEST-EXEC: zeek-cut uid dst p < notice.log | sort > notice-uids
# @TEST-EXEC: zeek-cut uid id.resp_h id.resp_p < conn.log | sort | join - notice-uids | awk '$2 != $4 || $3 != $5 { exit 1 } END { exit NR != 5 }'
# Nothing went wrong reading the baseline.
# @TEST-EXEC: ! grep -q WARNING reporter.log

redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
redef SynAck::known_servers_file = "known.tsv";
