# PostgreSQL for the tests: 127.0.0.1:5432, trust authentication from 127.0.0.1, database
# `test`. Usually running already; otherwise installed (Debian's postgresql), configured and
# started here. Sourced by scripts/services.sh, which calls start_postgres.

# The newest cluster version under /etc/postgresql (Debian's layout), empty if none.
postgres_version() {
    { ls /etc/postgresql 2>/dev/null || true; } | sort -n | tail -n 1
}

# Listens on loopback only and trusts TCP clients from 127.0.0.1 (a test machine's server).
postgres_configure() {
    local conf="/etc/postgresql/$1/main"
    if ! grep -q '^listen_addresses' "$conf/postgresql.conf"; then
        echo "listen_addresses = '127.0.0.1'" >>"$conf/postgresql.conf"
    fi
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' \
        "$conf/pg_hba.conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    fi
}

# Succeeds when the postgres role can log in over TCP without a password.
postgres_reachable() {
    psql -X -h 127.0.0.1 -p 5432 -U postgres -d "$1" -c 'SELECT 1' >/dev/null 2>&1
}

start_postgres() {
    local port=5432 version
    if ! port_open "$port"; then
        apt_install postgresql
        version=$(postgres_version)
        if [[ -z $version ]]; then
            say "no PostgreSQL cluster under /etc/postgresql"
            return 1
        fi
        postgres_configure "$version"
        say "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_for_port "$port" 60 PostgreSQL || return 1
    fi
    if ! postgres_reachable postgres; then
        # Running (perhaps started by the package) but not set up for the tests yet.
        version=$(postgres_version)
        say "configuring PostgreSQL $version for trust from 127.0.0.1"
        postgres_configure "$version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
        sleep 1
    fi
    if ! postgres_reachable test; then
        say "creating the PostgreSQL database test"
        runuser -u postgres -- psql -X -q -c 'CREATE DATABASE test'
    fi
}
