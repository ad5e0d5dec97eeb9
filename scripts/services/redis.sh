# Redis for the tests: 127.0.0.1:6379. Usually running already; otherwise installed (Debian's
# redis-server) and started here, without persistence. Sourced by scripts/services.sh, which
# calls start_redis.

start_redis() {
    local port=6379
    port_open "$port" && return 0
    command -v redis-server >/dev/null || apt_install redis-server
    # Debian's package may start its own server on install.
    port_open "$port" && return 0
    say "starting Redis on 127.0.0.1:$port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$SERVICE_DIR" --pidfile "$SERVICE_DIR/redis.pid" --logfile "$SERVICE_DIR/redis.log"
    wait_for_port "$port" 30 Redis
}
