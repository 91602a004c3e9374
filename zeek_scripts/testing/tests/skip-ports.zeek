# Reply capture skipped for a configured port, kept elsewhere.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/ssh-basic/ssh.pcap
# @TEST-EXEC: zeek -C -r $TRACES/ssh-basic/ssh.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut id.resp_p server_reply < conn.log | awk '$1 == 22 && $2 != "-" { exit 1 }'

redef SynAck::skip_reply_ports += { 22/tcp };
