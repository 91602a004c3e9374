# A complete HTTP handshake: the responder sent the SYN-ACK.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/http-get/get.pcap
# @TEST-EXEC: zeek -C -r $TRACES/http-get/get.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.resp_p history handshake < conn.log > out
# @TEST-EXEC: awk '$1 == 80 && $2 ~ /h/ { n++; if ($3 != "open") exit 1 } END { exit n == 0 }' out
# @TEST-EXEC: zeek-cut ts synack_ts < conn.log | awk '$2 == "-" || $2 < $1 { exit 1 }'
