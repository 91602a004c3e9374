# Bad checksums (no -C). Older Zeeks logged the SYN-ACK here as a connection
# of its own whose originator sent it (history H, so open_orig); Zeek 8 drops
# the bad SYN and flips the SYN-ACK's connection (history ^h): open, server
# on port 80, its reply captured. open_orig itself: see open-orig.zeek.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/checksum-bad/localhost-bad-chksum.pcap
# @TEST-EXEC: zeek -r $TRACES/checksum-bad/localhost-bad-chksum.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.resp_p history handshake server_reply < conn.log > out
# @TEST-EXEC: awk '$2 ~ /h/ { n++; if ($1 != 80 || $3 != "open" || $4 !~ /^HTTP\/1\.1 301/) exit 1 } END { exit n != 1 }' out
# @TEST-EXEC: awk '$2 ~ /H/ { exit 1 }' out
