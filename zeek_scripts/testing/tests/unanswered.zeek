# Only the client's side was captured: SYNs without an answer.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/ssh-half-duplex-client/ssh.client-side-half-duplex.pcap
# @TEST-EXEC: zeek -C -r $TRACES/ssh-half-duplex-client/ssh.client-side-half-duplex.pcap $PACKAGE
# @TEST-EXEC: zeek-cut proto history handshake < conn.log > out
# @TEST-EXEC: awk '$1 == "tcp" && $2 ~ /^S/ && $2 !~ /[hH]/ { n++; if ($3 != "unanswered") exit 1 } END { exit n == 0 }' out
# @TEST-EXEC: awk '$3 == "open" { exit 1 }' out
