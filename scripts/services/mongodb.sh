# MongoDB wire-protocol server for the tests: SecantusDB (tests/python-requirements.txt,
# installed into the virtualenv by python_env), data in memory, on 127.0.0.1:27017.
# Sourced by scripts/services.sh, which calls start_mongodb.

start_mongodb() {
    local port=27017 pidfile="$SERVICE_DIR/secantusdb.pid" log="$SERVICE_DIR/secantusdb.log"
    port_open "$port" && return 0
    if [[ ! -x "$VENV/bin/secantusd-py" ]]; then
        say "secantusd-py missing from $VENV (is secantusdb in tests/python-requirements.txt?)"
        return 1
    fi
    say "starting SecantusDB on 127.0.0.1:$port"
    nohup "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: \
        >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_for_port "$port" 60 SecantusDB || {
        tail -n 20 "$log" >&2
        return 1
    }
}
