# A cluster of a manager and two workers (Broker, on localhost): a port
# learned on worker-1 (as when it raises a notice) reaches worker-2 through
# the manager, so worker-2 raises no notice for it.
# @TEST-REQUIRES: which zeek
# @TEST-PORT: MANAGER_PORT
# @TEST-PORT: WORKER1_PORT
# @TEST-PORT: WORKER2_PORT
# @TEST-EXEC: cp $CAPTURES/cluster-layout.zeek .
# @TEST-EXEC: btest-bg-run manager "ZEEKPATH=$ZEEKPATH:.. CLUSTER_NODE=manager zeek $PACKAGE $PACKAGE/notice.zeek %INPUT"
# @TEST-EXEC: btest-bg-run worker-1 "ZEEKPATH=$ZEEKPATH:.. CLUSTER_NODE=worker-1 zeek $PACKAGE $PACKAGE/notice.zeek %INPUT"
# @TEST-EXEC: btest-bg-run worker-2 "ZEEKPATH=$ZEEKPATH:.. CLUSTER_NODE=worker-2 zeek $PACKAGE $PACKAGE/notice.zeek %INPUT"
# @TEST-EXEC: btest-bg-wait 60
# @TEST-EXEC: btest-diff worker-2/.stdout

redef exit_only_after_terminate = T;

global go: event();
global workers_up = 0;

# Once both workers are connected, the manager lets worker-1 learn a port.
event Cluster::node_up(name: string, id: string)
	{
	if ( Cluster::node == "manager" && ++workers_up == 2 )
		Cluster::publish(Cluster::worker_topic, go);
	}

event go()
	{
	if ( Cluster::node == "worker-1" )
		SynAck::learn(10.1.0.1, 8443/tcp);
	}

event Cluster::node_down(name: string, id: string)
	{
	# worker-2 ends first, then the manager, then worker-1.
	if ( Cluster::node == "manager" && name == "worker-2" )
		terminate();
	if ( Cluster::node == "worker-1" && name == "manager" )
		terminate();
	}

event SynAck::port_learned(host: addr, p: port) &priority=-10
	{
	if ( Cluster::node != "worker-2" )
		return;

	print fmt("worker-2 learned %s:%s: %s", host, p, [host, p] in SynAck::learned);
	terminate();
	}
