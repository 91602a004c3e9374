# In a cluster, a worker that raises a notice shares the port through the
# manager (SynAck::port_learned), as known-services shares what it saw;
# here that event arrives as if from another worker before the capture:
# 10.1.0.1:8443 then raises no notice here, the other new ports do.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: cp $CAPTURES/known.tsv .
# @TEST-EXEC: zeek -C -r $CAPTURES/new-ports.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT
# @TEST-EXEC: zeek-cut dst p proto < notice.log > out
# @TEST-EXEC: btest-diff out

redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
redef SynAck::known_servers_file = "known.tsv";

event zeek_init()
	{
	event SynAck::port_learned(10.1.0.1, 8443/tcp);
	}
