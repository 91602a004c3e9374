# The documented site setting for replies after large client payloads:
# signature matching goes on after the DPD buffer is full, so the server's
# reply after a 64 KB upload is captured (and the 1.8 KB case still is).
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-65536.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut id.resp_p server_reply < conn.log | awk -F'\t' '$1 == 8080 && $2 ~ /^HTTP\/1\.1 200 OK/ { n++ } END { exit n != 1 }'
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-1800-tls.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut id.resp_p server_reply < conn.log | awk -F'\t' '$1 == 443 && $2 ~ /^\\x16\\x03\\x03/ { n++ } END { exit n != 1 }'

redef dpd_match_only_beginning = F;
