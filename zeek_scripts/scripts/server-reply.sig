# The start of every responder stream already passes through the signature
# engine (it drives dynamic protocol detection), so one more pattern that
# matches any payload costs one regex step per stream start, not a script
# event per packet. The eval function records the bytes and returns F, so
# the signature never "matches": no signatures.log, no notices.

signature synack-tcp-server-reply {
	ip-proto == tcp
	tcp-state responder
	payload /./
	eval SynAck::record_reply
}

signature synack-udp-server-reply {
	ip-proto == udp
	udp-state responder
	payload /./
	eval SynAck::record_reply
}
