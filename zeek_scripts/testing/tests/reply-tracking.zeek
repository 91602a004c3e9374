# SynAck::reply_tracking limits which servers get a reply captured, as
# known-services' service_tracking; the outcome is logged for all.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-200.pcap $PACKAGE %INPUT SynAck::reply_tracking=LOCAL_HOSTS
# @TEST-EXEC: zeek-cut handshake server_reply < conn.log | awk -F'\t' '$1 == "open" && $2 ~ /^HTTP/ { n++ } END { exit n != 1 }'
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-200.pcap $PACKAGE %INPUT SynAck::reply_tracking=REMOTE_HOSTS
# @TEST-EXEC: zeek-cut handshake server_reply < conn.log | awk -F'\t' '$1 == "open" && $2 == "-" { n++ } END { exit n != 1 }'
# @TEST-EXEC: zeek -C -r $CAPTURES/ipv6-server.pcap $PACKAGE %INPUT SynAck::reply_tracking=REMOTE_HOSTS
# @TEST-EXEC: zeek-cut handshake server_reply < conn.log | awk -F'\t' '$1 == "open" && $2 ~ /^SSH-/ { n++ } END { exit n != 1 }'
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-200.pcap $PACKAGE %INPUT SynAck::reply_tracking=NO_HOSTS
# @TEST-EXEC: zeek-cut handshake server_reply < conn.log | awk -F'\t' '$1 == "open" && $2 == "-" { n++ } END { exit n != 1 }'

# Only 10.1.0.0/24 is local: the IPv6 documentation prefix is then remote.
redef Site::private_address_space_is_local = F;
redef Site::local_nets += { 10.1.0.0/24 };
