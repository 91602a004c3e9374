# A host that answers a SYN on every port (traces: answers-everything.pcap,
# 300 ports, no data): its first SynAck::notices_per_host new ports raise
# New_Server_Port, the next one Host_Answers_Everything, the other 294
# nothing; conn.log still has every handshake.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: head -7 $CAPTURES/known.tsv > known.tsv
# @TEST-EXEC: zeek -C -r $CAPTURES/answers-everything.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT
# @TEST-EXEC: zeek-cut note p msg < notice.log > out
# @TEST-EXEC: btest-diff out
# @TEST-EXEC: test "$(zeek-cut handshake < conn.log | grep -c open)" = 300
# @TEST-EXEC: ! grep -q SynAck reporter.log

redef Site::local_nets += { 10.1.0.0/16 };
redef SynAck::known_servers_file = "known.tsv";
