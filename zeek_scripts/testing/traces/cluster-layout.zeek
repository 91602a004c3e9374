# The cluster of tests/notice-cluster.zeek: a manager and two workers on
# localhost, on the ports btest chose.
redef Cluster::nodes = {
	["manager"] = [$node_type=Cluster::MANAGER, $ip=127.0.0.1, $p=to_port(getenv("MANAGER_PORT"))],
	["worker-1"] = [$node_type=Cluster::WORKER, $ip=127.0.0.1, $p=to_port(getenv("WORKER1_PORT")), $manager="manager"],
	["worker-2"] = [$node_type=Cluster::WORKER, $ip=127.0.0.1, $p=to_port(getenv("WORKER2_PORT")), $manager="manager"],
};
