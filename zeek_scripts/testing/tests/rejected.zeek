# SYN answered by RST: the port is closed.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/pop3-rej/pop3.pcap
# @TEST-EXEC: zeek -C -r $TRACES/pop3-rej/pop3.pcap $PACKAGE
# @TEST-EXEC: zeek-cut conn_state handshake < conn.log > out
# @TEST-EXEC: awk '$1 == "REJ" { n++; if ($2 != "rejected") exit 1 } END { exit n < 6 }' out
