# A three-node Redis Cluster for the tests: 127.0.0.1:7001-7003, masters only, without
# persistence, each node's directory (nodes.conf, log, pid) under $SERVICE_DIR. Nodes whose
# port is closed are started; the cluster is created when the nodes do not already form a
# healthy one. Sourced by scripts/services.sh, which calls start_redis_cluster.

REDIS_CLUSTER_PORTS=(7001 7002 7003)

# Succeeds when every node reports cluster_state:ok.
redis_cluster_ok() {
    local port
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' ||
            return 1
    done
}

# Succeeds when no node has hash slots assigned yet (just started without a nodes.conf).
redis_cluster_fresh() {
    local port
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null |
            grep -q '^cluster_slots_assigned:0' || return 1
    done
}

# Waits up to $1 seconds for a healthy cluster.
redis_cluster_wait() {
    local waited=0
    until redis_cluster_ok; do
        ((waited >= $1 * 10)) && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

start_redis_cluster() {
    local port dir nodes=()
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
        apt_install redis-server redis-tools
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        nodes+=("127.0.0.1:$port")
        port_open "$port" && continue
        dir="$SERVICE_DIR/redis-cluster-$port"
        mkdir -p "$dir"
        say "starting Redis Cluster node on 127.0.0.1:$port"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
            --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
            --save "" --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" \
            --logfile "$dir/redis.log"
    done
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        wait_for_port "$port" 30 "Redis Cluster node $port" || return 1
    done
    redis_cluster_ok && return 0
    # Nodes restarted with their nodes.conf find each other again within a few seconds.
    if ! redis_cluster_fresh && redis_cluster_wait 10; then
        return 0
    fi
    say "creating the Redis Cluster ${nodes[*]}"
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null
        redis-cli -h 127.0.0.1 -p "$port" cluster reset hard >/dev/null
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    redis_cluster_wait 30 || {
        say "the Redis Cluster did not reach cluster_state:ok"
        return 1
    }
}
