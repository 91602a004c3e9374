# Bad checksums (no -C): Zeek keeps the SYN-ACK in a connection of its own,
# whose originator sent it (history H): the originator is the server.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/checksum-bad/localhost-bad-chksum.pcap
# @TEST-EXEC: zeek -r $TRACES/checksum-bad/localhost-bad-chksum.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.orig_h id.orig_p history handshake < conn.log > out
# @TEST-EXEC: awk '$3 ~ /^H/ { n++; if ($4 != "open_orig" || $2 != 80) exit 1 } END { exit n == 0 }' out
