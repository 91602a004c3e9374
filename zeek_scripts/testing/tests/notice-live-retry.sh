# Live (on the loopback interface, no traffic needed): a baseline that is
# missing at start is reported once, Zeek goes on with the notices off and
# looks again every SynAck::baseline_wait; once the file appears (here after
# 3 s), it is read and the notices are on. Needs the rights to capture.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: timeout 10 zeek -i lo -e "event zeek_init() { terminate(); }" >/dev/null 2>&1
# @TEST-EXEC: bash %INPUT > out 2>&1
# @TEST-EXEC: btest-diff out

cat > site.zeek <<SITE
redef SynAck::known_servers_file = "known.tsv";
redef SynAck::baseline_wait = 1sec;
event Input::end_of_data(name: string, source: string)
	{
	if ( name == "synack-known" )
		{
		print fmt("read: notices on %s", SynAck::baseline_loaded);
		terminate();
		}
	}
SITE
(sleep 3; cp "$CAPTURES/known.tsv" known.tmp && mv known.tmp known.tsv) &
# -C: loopback packets carry offloaded (unfilled) checksums, which Zeek would warn about
timeout 30 zeek -C -i lo "$PACKAGE" "$PACKAGE/notice.zeek" site.zeek 2>/dev/null
zeek-cut level message < reporter.log | grep -v INFO | sed 's/ in [^ ]*notice.zeek, lines [0-9-]*//'
