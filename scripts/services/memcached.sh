# Memcached for the tests: 127.0.0.1:11211, installed (Debian's memcached) and started here
# when the port is closed. Sourced by scripts/services.sh, which calls start_memcached.

start_memcached() {
    local port=11211 pidfile="$SERVICE_DIR/memcached.pid"
    port_open "$port" && return 0
    apt_install memcached
    # Debian's package may start its own daemon on install.
    port_open "$port" && return 0
    say "starting memcached on 127.0.0.1:$port"
    memcached -d -u root -l 127.0.0.1 -p "$port" -P "$pidfile"
    wait_for_port "$port" 30 memcached
}
