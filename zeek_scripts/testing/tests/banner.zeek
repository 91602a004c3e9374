# The server's first bytes: an HTTP status line and an SSH banner.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/http-get/get.pcap && test -r $TRACES/ssh-basic/ssh.pcap
# @TEST-EXEC: zeek -C -r $TRACES/http-get/get.pcap $PACKAGE
# @TEST-EXEC: zeek-cut server_reply < conn.log | grep -q '^HTTP/1\.'
# @TEST-EXEC: zeek -C -r $TRACES/ssh-basic/ssh.pcap $PACKAGE
# @TEST-EXEC: zeek-cut id.resp_p server_reply < conn.log | awk '$1 == 22 && $2 ~ /^SSH-/ { n++ } END { exit n == 0 }'
# @TEST-EXEC: zeek-cut server_reply < conn.log | awk 'length($1) > 64 * 4 { exit 1 }'
