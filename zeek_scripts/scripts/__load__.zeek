@load ./main
@load-sigs ./server-reply.sig
