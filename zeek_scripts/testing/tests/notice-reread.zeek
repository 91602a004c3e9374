# A baseline replaced while Zeek runs is re-read (REREAD mode): at the
# first notice (10.1.0.1:8443, 1 s into the capture) a new export that
# knows 10.1.0.1 7000/tcp replaces the file (a rename, as synack
# export-known writes it). The capture is replayed in pseudo-realtime
# (--pseudo-realtime), so Zeek's reader sees the change before 7000 answers, 11 s later:
# 7000 raises no notice; 8443, missing from the new baseline, is not
# raised again: what Zeek learned survives the re-read.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: cp $CAPTURES/known.tsv .
# @TEST-EXEC: (cat known.tsv | grep -v 8443; printf '10.1.0.1/32\ttcp\t7000\t7000\t1690000000.0\tknown\n') > next.tsv
# @TEST-EXEC: zeek -C --pseudo-realtime -r $CAPTURES/new-ports.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT > reads
# @TEST-EXEC: zeek-cut dst p proto < notice.log > out
# @TEST-EXEC: btest-diff out
# @TEST-EXEC: grep -q "read 2" reads

redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
redef SynAck::known_servers_file = "known.tsv";

global replaced = F;
global reads = 0;

hook Notice::policy(n: Notice::Info)
	{
	if ( replaced )
		return;

	replaced = T;
	rename("next.tsv", "known.tsv");
	}

event Input::end_of_data(name: string, source: string)
	{
	if ( name != "synack-known" )
		return;

	++reads;
	print fmt("read %d", reads);
	}
