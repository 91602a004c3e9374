# A lossy mirror port dropped every SYN-ACK (traces: synack-dropped.pcap):
# the server that sent data after the SYN raises its notice when its reply
# is seen (no connection_established fires), the one that only ACKed raises
# it at the connection's end (handshake "inferred"), the one that sent data
# and then reset raises it too; each message says the SYN-ACK was not
# seen. A SYN answered by a bare ACK (ambiguous) raises none.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: head -7 $CAPTURES/known.tsv > known.tsv
# @TEST-EXEC: zeek -C -r $CAPTURES/synack-dropped.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT
# @TEST-EXEC: zeek-cut note id.resp_h id.resp_p p msg < notice.log > out
# @TEST-EXEC: btest-diff out
# @TEST-EXEC: zeek-cut id.resp_p handshake < conn.log | sort > handshakes
# @TEST-EXEC: btest-diff handshakes

redef Site::local_nets += { 10.1.0.0/16 };
redef SynAck::known_servers_file = "known.tsv";
