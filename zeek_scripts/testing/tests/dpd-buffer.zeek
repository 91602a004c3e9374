# The package raises dpd_buffer_size to 4096 but never lowers a larger value
# set before it is loaded, and a site can undo it after loading it; undone,
# the reply after a 1.8 KB ClientHello is lost again.
# @TEST-REQUIRES: which zeek
# @TEST-EXEC: zeek -b $PACKAGE %INPUT > out
# @TEST-EXEC: zeek -b larger.zeek $PACKAGE %INPUT >> out
# @TEST-EXEC: zeek -b $PACKAGE undo.zeek %INPUT >> out
# @TEST-EXEC: zeek -C -r $CAPTURES/client-first-1800-tls.pcap $PACKAGE undo.zeek
# @TEST-EXEC: zeek-cut server_reply < conn.log >> out
# @TEST-EXEC: btest-diff out

event zeek_init()
	{
	print dpd_buffer_size;
	}

@TEST-START-FILE larger.zeek
redef dpd_buffer_size = 70000;
@TEST-END-FILE

@TEST-START-FILE undo.zeek
redef dpd_buffer_size = 1024;
@TEST-END-FILE
