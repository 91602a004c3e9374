# IPv6 FTP control and data connections.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/ftp-ipv6/ipv6.pcap
# @TEST-EXEC: zeek -C -r $TRACES/ftp-ipv6/ipv6.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.resp_h id.resp_p handshake server_reply < conn.log > out
# @TEST-EXEC: awk '$1 ~ /:/ && $2 == 21 { n++; if ($3 != "open" || $4 !~ /^220/) exit 1 } END { exit n == 0 }' out
