# A connection picked up mid-stream (no SYN, no SYN-ACK) and UDP both ways.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/wikipedia/wikipedia.pcap
# @TEST-EXEC: zeek -C -r $TRACES/wikipedia/wikipedia.pcap $PACKAGE
# @TEST-EXEC: zeek-cut proto history handshake < conn.log > out
# @TEST-EXEC: awk '$1 == "tcp" && $2 !~ /[SsHh]/ { n++; if ($3 != "midstream") exit 1 } END { exit n == 0 }' out
# @TEST-EXEC: awk '$1 == "udp" && $2 ~ /d/ { a++; if ($3 != "answered") exit 1 } END { exit a == 0 }' out
# @TEST-EXEC: awk '$1 == "udp" && $2 == "D" { u++; if ($3 != "unanswered") exit 1 } END { exit u == 0 }' out
# @TEST-EXEC: awk '$1 == "icmp" && $3 != "-" { exit 1 }' out
