# A missing baseline, one without the table's columns, and one with a bad
# line. Missing: reported once, Zeek waits SynAck::baseline_wait for it,
# then runs with the notices off. No usable columns: reported once, no
# wait, notices off. A bad line: the reader skips it, the rest is used.
# An empty but valid baseline (header only) means "nothing known".
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: bash %INPUT > out 2>&1
# @TEST-EXEC: btest-diff out

run() {
	rm -f notice.log reporter.log
	cat > site.zeek <<-SITE
		redef Site::local_nets += { 10.1.0.0/16, [2001:db8::]/32 };
		redef SynAck::known_servers_file = "$1";
		redef SynAck::baseline_wait = 1sec;
	SITE
	zeek -C -r "$CAPTURES/new-ports.pcap" "$PACKAGE" "$PACKAGE/notice.zeek" site.zeek 2>/dev/null
	echo "# $2"
	echo "notices: $( ( [ -f notice.log ] && zeek-cut dst p < notice.log ) | tr '\t\n' ': ')"
	# Sorted: the input thread's warning and the script's race to reporter.log.
	zeek-cut level message < reporter.log | grep -v INFO | sed 's/ in [^ ]*notice.zeek, lines [0-9-]*//' | sort || true
}

run missing.tsv "missing"
printf 'net\tproto\n10.1.0.1/32\ttcp\n' > columns.tsv
run columns.tsv "no #fields line"
(cat "$CAPTURES/known.tsv"; printf 'not-a-net\ttcp\t1\t1\t-\tknown\n') > badline.tsv
run badline.tsv "a bad line"
head -7 "$CAPTURES/known.tsv" > empty.tsv
run empty.tsv "empty"
