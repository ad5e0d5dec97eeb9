# MariaDB for the tests: 127.0.0.1:3306, root without password, database `test`. Usually
# running already; otherwise installed (Debian's mariadb-server), configured and started
# here. Sourced by scripts/services.sh, which calls start_mariadb.

start_mariadb() {
    local port=3306
    if ! port_open "$port"; then
        apt_install mariadb-server
        # Debian's package binds to 127.0.0.1 (50-server.cnf); make sure of it.
        if [[ -d /etc/mysql/mariadb.conf.d ]] && ! grep -rqs '^bind-address' /etc/mysql/mariadb.conf.d; then
            printf '[mysqld]\nbind-address = 127.0.0.1\n' >/etc/mysql/mariadb.conf.d/60-sessionstore-tests.cnf
        fi
        install -d -o mysql -g mysql /run/mysqld
        say "starting MariaDB"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
        wait_for_port "$port" 60 MariaDB || return 1
    fi
    # root without password over TCP, and the test database. Debian's root authenticates by
    # unix socket only, so a fresh install is set up through the socket, as the OS root.
    if ! mysql -h 127.0.0.1 -P "$port" -u root -e 'USE test' >/dev/null 2>&1; then
        say "setting up MariaDB's root login over TCP and the database test"
        mysql --protocol=socket -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
FLUSH PRIVILEGES;
SQL
    fi
}
