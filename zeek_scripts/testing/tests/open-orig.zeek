# The originator sent the SYN-ACK (history H without h): the SYN was missed and
# the server's first data segment was captured before its SYN-ACK, so Zeek
# keeps the server as originator. The originator is the server (open_orig).
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: zeek -C -r $CAPTURES/synack-after-data.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.orig_h id.orig_p history handshake < conn.log > out
# @TEST-EXEC: awk '$3 ~ /H/ && $3 !~ /h/ { n++; if ($4 != "open_orig" || $1 != "10.1.0.1" || $2 != 40123) exit 1 } END { exit n != 1 }' out
