# The SYN was missed; Zeek saw the SYN-ACK first and flipped the endpoints.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/tcp-missing-syn-flip/missing-syn.pcap
# @TEST-EXEC: zeek -C -r $TRACES/tcp-missing-syn-flip/missing-syn.pcap $PACKAGE
# @TEST-EXEC: zeek-cut history handshake synack_ts < conn.log > out
# @TEST-EXEC: awk '$1 ~ /^\^h/ { n++; if ($2 != "open" || $3 == "-") exit 1 } END { exit n == 0 }' out
