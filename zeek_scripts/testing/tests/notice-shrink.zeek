# A re-read baseline that drops most of its rows (an export of the wrong
# sensor, say) is not taken: at the first notice (10.1.0.1:8443, 1 s into
# the capture) the baseline is replaced by one that keeps 1 of its 4 rows.
# reporter.log says so once, the 4 rows stay (printed at the end), and the
# known ports seen later (3389 in the expected range, [2001:db8::1]:22,
# 53/udp) raise no notice: the notices are those of the full baseline.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: cp $CAPTURES/known.tsv .
# @TEST-EXEC: (grep '^#' known.tsv; grep 'udp' known.tsv) > next.tsv
# @TEST-EXEC: zeek -C --pseudo-realtime -r $CAPTURES/new-ports.pcap $PACKAGE $PACKAGE/notice.zeek %INPUT > rows
# @TEST-EXEC: zeek-cut dst p proto < notice.log > out
# @TEST-EXEC: btest-diff out
# @TEST-EXEC: btest-diff rows
# @TEST-EXEC: grep -q "dropped 3 of its 4 rows" reporter.log

redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
redef SynAck::known_servers_file = "known.tsv";

global replaced = F;

hook Notice::policy(n: Notice::Info)
	{
	if ( replaced )
		return;

	replaced = T;
	rename("next.tsv", "known.tsv");
	}

event zeek_done()
	{
	print fmt("baseline rows at the end: %d", |SynAck::baseline|);
	}
