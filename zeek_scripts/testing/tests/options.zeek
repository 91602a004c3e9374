# Site options: no reply capture, a fixed sensor name.
# @TEST-REQUIRES: which zeek
# @TEST-REQUIRES: test -r $TRACES/http-get/get.pcap
# @TEST-EXEC: zeek -C -r $TRACES/http-get/get.pcap $PACKAGE %INPUT
# @TEST-EXEC: zeek-cut server_reply sensor < conn.log > out
# @TEST-EXEC: awk '$1 != "-" || $2 != "test-sensor" { exit 1 }' out

redef SynAck::capture_reply = F;
redef SynAck::sensor_name = "test-sensor";
