//! Store servers of a test's own, the one place the tests start one: redis-server (without
//! persistence, durable, with TLS, or three nodes forming a Redis Cluster), memcached,
//! Redis Sentinel (a master, a replica and three sentinels), PostgreSQL, MariaDB and
//! SecantusDB (the MongoDB wire-protocol server of the test
//! services). Each is a child process on a free loopback port with its files in a temporary
//! directory, for the tests that stop, restart or pause a server, count its commands or need
//! settings of their own; the shared test servers are never touched. A server is stopped (by
//! its own PID) when dropped; its output goes to `server.log` in its directory and is printed
//! when the test fails. (The web servers of the HTTP tests are in tests/common/web.rs.)
//! Also the checks that stop and restart a redis-server or memcached under a manager, which
//! both stores' tests make.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod certs;

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sessionstore::{Config, Error, SessionManager};
use tempfile::TempDir;

/// How long a server may take to open its port and serve, or to exit when stopped.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process on 127.0.0.1:`port`, restartable on the same port with the same files.
pub struct TempServer {
    name: &'static str,
    port: u16,
    url: String,
    program: PathBuf,
    args: Vec<OsString>,
    /// The server's account (uid, gid), when the test runs as root and the server refuses to.
    account: Option<(u32, u32)>,
    /// The signal `stop` sends (`KILL`, `QUIT`, `TERM`).
    stop_signal: &'static str,
    /// A command that succeeds once the server serves (when an open port is not enough).
    ready: Option<Vec<OsString>>,
    child: Option<Child>,
    dir: TempDir,
}

impl TempServer {
    /// A server that is not started yet, with a fresh directory and a free port.
    fn new(name: &'static str, program: PathBuf, stop_signal: &'static str) -> TempServer {
        TempServer {
            name,
            port: free_port(),
            url: String::new(),
            program,
            args: Vec::new(),
            account: None,
            stop_signal,
            ready: None,
            child: None,
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn arg(mut self, arg: impl Into<OsString>) -> TempServer {
        self.args.push(arg.into());
        self
    }

    fn args<I, S>(mut self, args: I) -> TempServer
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn with_url(mut self, url: String) -> TempServer {
        self.url = url;
        self
    }

    /// Runs the server as the system account `name` when the test runs as root, with its
    /// directory handed over to that account.
    fn run_as(mut self, name: &str) -> TempServer {
        self.account = service_account(name);
        self.chown_to_account(self.dir.path());
        self
    }

    fn chown_to_account(&self, path: &Path) {
        if let Some((uid, gid)) = self.account {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("hand {} to {}: {e}", path.display(), self.name));
        }
    }

    fn started(mut self) -> TempServer {
        self.start_again();
        self
    }

    /// A redis-server without persistence (a restart loses everything).
    pub fn redis() -> TempServer {
        TempServer::redis_with(&["--save", "", "--appendonly", "no"])
    }

    /// A redis-server that loses no acknowledged write when it is killed: an append-only
    /// file written and fsynced before each reply (`appendfsync always`).
    pub fn redis_durable() -> TempServer {
        TempServer::redis_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    fn redis_with(persistence: &[&str]) -> TempServer {
        let server = TempServer::new("redis-server", installed("redis-server"), "KILL");
        let (port, dir) = (server.port.to_string(), server.dir.path().to_owned());
        let url = format!("redis://127.0.0.1:{port}/0");
        server
            .args(["--bind", "127.0.0.1", "--port", &port])
            .arg("--dir")
            .arg(dir)
            .args(persistence)
            .with_url(url)
            .started()
    }

    /// A redis-server without persistence that speaks TLS only, with the certificate and key
    /// in the PEM files `cert` and `key` (clients are not asked for certificates).
    pub fn redis_tls(cert: &Path, key: &Path) -> TempServer {
        let server = TempServer::new("redis-server (TLS)", installed("redis-server"), "KILL");
        let (port, dir) = (server.port.to_string(), server.dir.path().to_owned());
        let url = format!("rediss://127.0.0.1:{port}/0");
        server
            .args(["--bind", "127.0.0.1", "--port", "0", "--tls-port", &port])
            .arg("--tls-cert-file")
            .arg(cert)
            .arg("--tls-key-file")
            .arg(key)
            .arg("--tls-ca-cert-file")
            .arg(cert)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .with_url(url)
            .started()
    }

    /// A memcached with the default settings (as root it runs as root: `-u root`).
    pub fn memcached() -> TempServer {
        TempServer::memcached_with(&[])
    }

    /// A memcached with `extra` arguments (such as `-I 2m`).
    pub fn memcached_with(extra: &[&str]) -> TempServer {
        let server = TempServer::new("memcached", installed("memcached"), "KILL");
        let port = server.port.to_string();
        let url = format!("memcache://127.0.0.1:{port}");
        server
            .args(["-u", "root", "-l", "127.0.0.1", "-p", &port])
            .args(extra)
            .with_url(url)
            .started()
    }

    /// A PostgreSQL server: a fresh cluster (initdb, trust authentication), database
    /// `postgres`. Stopped with SIGQUIT, PostgreSQL's immediate shutdown: every connection
    /// is cut and the next start recovers from the WAL, as after a crash (a SIGKILL of the
    /// postmaster would leave its backends behind). Committed data survives.
    pub fn postgres() -> TempServer {
        TempServer::postgres_with(None)
    }

    /// A PostgreSQL server as [`TempServer::postgres`] that accepts TCP connections over
    /// TLS only (`ssl=on`, `hostssl` lines only), with `certs`' server certificate.
    pub fn postgres_tls(certs: &certs::TestCerts) -> TempServer {
        TempServer::postgres_with(Some(certs))
    }

    fn postgres_with(tls: Option<&certs::TestCerts>) -> TempServer {
        let bin = postgres_bindir();
        let server = TempServer::new("postgres", bin.join("postgres"), "QUIT").run_as("postgres");
        let data = server.dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = server.account {
            initdb.uid(uid).gid(gid);
        }
        let status = initdb.status().expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let (port, dir) = (server.port.to_string(), server.dir.path().to_owned());
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut server = server;
        if let Some(certs) = tls {
            let copy = server.private_copies(certs);
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n",
            )
            .expect("pg_hba.conf");
            server.args.extend([
                "-c".into(),
                "ssl=on".into(),
                "-c".into(),
                flag("ssl_cert_file=", &copy.0),
                "-c".into(),
                flag("ssl_key_file=", &copy.1),
            ]);
        }
        // The port opens before the server accepts sessions ("the database system is
        // starting up"), and while it recovers after a crash.
        server.ready = Some(
            [bin.join("pg_isready").into_os_string()]
                .into_iter()
                .chain(["-q", "-h", "127.0.0.1", "-p", &port].map(OsString::from))
                .collect(),
        );
        server
            .arg("-D")
            .arg(data)
            .arg("-k")
            .arg(dir)
            .args(["-p", &port, "-c", "listen_addresses=127.0.0.1"])
            // The OS keeps what a killed server wrote; fsync only guards against power loss.
            .args(["-c", "fsync=off"])
            .with_url(url)
            .started()
    }

    /// A MariaDB server: a fresh data directory, no grant tables (any user gets in),
    /// database `mysql`. Stopped with SIGKILL: InnoDB recovers committed transactions from
    /// its redo log at the next start.
    pub fn mariadb() -> TempServer {
        TempServer::mariadb_with(None)
    }

    /// A MariaDB server as [`TempServer::mariadb`] with `certs`' server certificate (it
    /// takes plain connections too: `require-secure-transport` does not apply without grant
    /// tables).
    pub fn mariadb_tls(certs: &certs::TestCerts) -> TempServer {
        TempServer::mariadb_with(Some(certs))
    }

    fn mariadb_with(tls: Option<&certs::TestCerts>) -> TempServer {
        let program = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .expect("MariaDB's server (apt-get install mariadb-server)");
        let server = TempServer::new("mariadbd", program, "KILL").run_as("mysql");
        let dir = server.dir.path().to_owned();
        let data = dir.join("data");
        for path in [data.clone(), data.join("mysql")] {
            std::fs::create_dir(&path).expect("data directory");
            server.chown_to_account(&path);
        }
        let account = server.account;
        let port = server.port.to_string();
        let url = format!("mysql://root@127.0.0.1:{port}/mysql");
        let mut server = server
            .arg("--no-defaults")
            .arg(flag("--datadir=", &data))
            .arg(flag("--socket=", &dir.join("mysqld.sock")))
            .arg(flag("--pid-file=", &dir.join("mysqld.pid")))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .with_url(url);
        if let Some(certs) = tls {
            let (cert, key) = server.private_copies(certs);
            server = server
                .arg(flag("--ssl-cert=", &cert))
                .arg(flag("--ssl-key=", &key));
        }
        if account.is_some() {
            // mariadbd drops root itself; started as another user it could not write its log.
            server.account = None;
            server = server.arg("--user=mysql");
        }
        // The port opens before mariadbd can take a stop signal: a SIGTERM that comes while
        // it still sets up (in init_slave) leaves it hanging for ever. A completed handshake
        // (`ping` succeeds even when access is denied) means it serves and can be stopped.
        let admin = ["/usr/bin/mariadb-admin", "/usr/bin/mysqladmin"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("MariaDB's client (apt-get install mariadb-client)");
        server.ready = Some(
            [
                admin,
                "--no-defaults",
                "--protocol=tcp",
                "--host=127.0.0.1",
                &format!("--port={port}"),
                "--user=root",
                "--connect-timeout=2",
                "--silent",
                "ping",
            ]
            .map(OsString::from)
            .to_vec(),
        );
        // InnoDB cannot recover the files it has just created from a crash before their
        // first checkpoint: a clean shutdown (SIGTERM) and a start again settle them.
        let mut server = server.started();
        server.stop_signal = "TERM";
        server.stop();
        server.stop_signal = "KILL";
        server.started()
    }

    /// A SecantusDB server keeping its data on disk, each commit synced to its log
    /// (`--sync-on-commit`), so a SIGKILL, which `stop` sends, loses no acknowledged write.
    pub fn mongodb() -> TempServer {
        TempServer::mongodb_with(None)
    }

    /// A SecantusDB server as [`TempServer::mongodb`] that speaks TLS only, with `certs`'
    /// server certificate.
    pub fn mongodb_tls(certs: &certs::TestCerts) -> TempServer {
        TempServer::mongodb_with(Some(certs))
    }

    fn mongodb_with(tls: Option<&certs::TestCerts>) -> TempServer {
        let program = venv().join("bin/secantusd-py");
        assert!(
            program.exists(),
            "{} is missing: run scripts/services.sh (python_env installs SecantusDB)",
            program.display()
        );
        let server = TempServer::new("secantusd-py", program, "KILL");
        let (port, data) = (server.port.to_string(), server.dir.path().join("data"));
        let url = format!("mongodb://127.0.0.1:{port}/");
        let server = server
            .args(["--host", "127.0.0.1", "--port", &port, "--storage-path"])
            .arg(data)
            .arg("--sync-on-commit")
            .with_url(url);
        let server = match tls {
            Some(certs) => server
                .arg("--tls-cert-file")
                .arg(certs.server_cert())
                .arg("--tls-key-file")
                .arg(certs.server_key()),
            None => server,
        };
        server.started()
    }

    /// Copies of `certs`' server certificate and key in the server's directory, owned by its
    /// account, the key readable by it alone (as PostgreSQL demands).
    fn private_copies(&self, certs: &certs::TestCerts) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let (cert, key) = (
            self.dir.path().join("tls.pem"),
            self.dir.path().join("tls.key"),
        );
        std::fs::copy(certs.server_cert(), &cert).expect("copy the certificate");
        std::fs::copy(certs.server_key(), &key).expect("copy the key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        self.chown_to_account(&cert);
        self.chown_to_account(&key);
        (cert, key)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL that reaches it (`redis://127.0.0.1:<port>/0`, `postgres://postgres@…`, …).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its directory (data, socket, `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server wrote to its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server with its stop signal, by PID, and waits until it is gone and its
    /// port closed; a server still there after [`START_TIMEOUT`] is killed and the test fails
    /// with its log.
    pub fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        signal(&child, self.stop_signal);
        let started = Instant::now();
        while child.try_wait().expect("the server's status").is_none() {
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit on SIG{} within {START_TIMEOUT:?}\n{}",
                    self.name,
                    self.stop_signal,
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.wait_for_port(false);
    }

    /// Starts the server again on the same port and files, and waits until it accepts
    /// connections (and, for PostgreSQL, sessions).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log);
        if let Some((uid, gid)) = self.account {
            command.uid(uid).gid(gid);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
        self.wait_for_port(true);
        if let Some(ready) = &self.ready {
            let started = Instant::now();
            while !Command::new(&ready[0])
                .args(&ready[1..])
                .status()
                .is_ok_and(|status| status.success())
            {
                assert!(
                    started.elapsed() < START_TIMEOUT,
                    "{} not ready within {START_TIMEOUT:?}\n{}",
                    self.name,
                    self.log()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered. Returns once
    /// every thread of the server is stopped: a signal is delivered when a thread next runs,
    /// and on a loaded machine a thread woken by a request can still answer it before that.
    pub fn pause(&self) {
        let child = self.child.as_ref().expect("running");
        signal(child, "STOP");
        let tasks = PathBuf::from(format!("/proc/{}/task", child.id()));
        let started = Instant::now();
        while !all_stopped(&tasks) {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} did not stop on SIGSTOP",
                self.name
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets a paused server run on (SIGCONT).
    pub fn resume(&self) {
        signal(self.child.as_ref().expect("running"), "CONT");
    }

    fn wait_for_port(&mut self, open: bool) {
        let started = Instant::now();
        while port_open(self.port) != open {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("{} exited: {status}\n{}", self.name, self.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} did not {} port {} within {START_TIMEOUT:?}\n{}",
                self.name,
                if open { "open" } else { "close" },
                self.port,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server takes no other signal; PostgreSQL's backends outlive a
            // SIGKILLed postmaster, so the stop signal goes first, SIGKILL if it hangs.
            signal(&child, "CONT");
            signal(&child, self.stop_signal);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("--- {} on port {}: server.log ---", self.name, self.port);
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Three redis-server nodes forming a Redis Cluster (masters only, no replicas), each
/// durable as [`TempServer::redis_durable`] and keeping its `nodes.conf`, so a node killed
/// and started again rejoins with its slots and data.
pub struct TempCluster {
    nodes: Vec<TempServer>,
}

impl TempCluster {
    /// Starts three nodes and joins them with `redis-cli --cluster create`.
    ///
    /// `cluster-node-timeout` is 5 s: a node down for a few seconds is not declared failed
    /// (with no replica to promote, that would take the whole cluster down until it is back).
    pub fn start() -> TempCluster {
        let nodes: Vec<TempServer> = (0..3)
            .map(|_| {
                TempServer::redis_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let output = Command::new(installed("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = TempCluster { nodes };
        for n in 0..cluster.nodes.len() {
            cluster.wait_until_serving(n);
        }
        cluster
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Node `n` (0, 1 or 2).
    pub fn node(&mut self, n: usize) -> &mut TempServer {
        &mut self.nodes[n]
    }

    /// Waits until node `n` reports `cluster_state:ok`: it serves its slots. A master that
    /// restarts refuses queries (CLUSTERDOWN) for its first 2 s by Redis's design, until it
    /// has heard from the others.
    pub fn wait_until_serving(&self, n: usize) {
        let started = Instant::now();
        loop {
            let output = Command::new(installed("redis-cli"))
                .args(["-h", "127.0.0.1", "-p", &self.nodes[n].port.to_string()])
                .args(["cluster", "info"])
                .output()
                .expect("redis-cli runs");
            if String::from_utf8_lossy(&output.stdout).contains("cluster_state:ok") {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "cluster node {n} not ok within {START_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Redis Sentinel: a master, its replicas (`--replicaof`) and three sentinels (quorum 2)
/// monitoring it as [`TempSentinels::SERVICE`], each a redis-server of the test's own
/// without persistence. The sentinels declare the master down after
/// [`TempSentinels::DOWN_AFTER`] and have [`TempSentinels::FAILOVER_TIMEOUT`] to fail over.
pub struct TempSentinels {
    master: TempServer,
    replicas: Vec<TempServer>,
    sentinels: Vec<TempServer>,
}

impl TempSentinels {
    /// The name the sentinels monitor the master under.
    pub const SERVICE: &'static str = "sessions";
    /// `down-after-milliseconds`.
    pub const DOWN_AFTER: Duration = Duration::from_millis(1000);
    /// `failover-timeout`.
    pub const FAILOVER_TIMEOUT: Duration = Duration::from_millis(3000);

    /// Starts the master and `replicas` replicas, waits until they are in sync, then starts
    /// the sentinels and waits until each knows the replicas and the two other sentinels.
    pub fn start(replicas: usize) -> TempSentinels {
        let no_persistence = ["--save", "", "--appendonly", "no"];
        let master = TempServer::redis_with(
            &[&no_persistence[..], &["--repl-diskless-sync-delay", "0"]].concat(),
        );
        let master_port = master.port.to_string();
        let replicas: Vec<TempServer> = (0..replicas)
            .map(|_| {
                TempServer::redis_with(
                    &[
                        &no_persistence[..],
                        &["--replicaof", "127.0.0.1", &master_port],
                    ]
                    .concat(),
                )
            })
            .collect();
        for replica in &replicas {
            wait_until(START_TIMEOUT, "the replicas in sync", || {
                redis_cli(replica.port, &["info", "replication"]).contains("master_link_status:up")
            });
        }
        let known_replicas = replicas.len().to_string();
        let sentinels: Vec<TempServer> = (0..3)
            .map(|_| {
                let server = TempServer::new("redis-sentinel", installed("redis-server"), "KILL");
                let config = server.dir.path().join("sentinel.conf");
                let service = TempSentinels::SERVICE;
                std::fs::write(
                    &config,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                         sentinel monitor {service} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {service} {down}\n\
                         sentinel failover-timeout {service} {failover}\n",
                        port = server.port,
                        dir = server.dir.path().display(),
                        down = TempSentinels::DOWN_AFTER.as_millis(),
                        failover = TempSentinels::FAILOVER_TIMEOUT.as_millis(),
                    ),
                )
                .expect("sentinel.conf");
                server.arg(config).arg("--sentinel").started()
            })
            .collect();
        for sentinel in &sentinels {
            wait_until(START_TIMEOUT, "the sentinels to know each other", || {
                let info = redis_cli(sentinel.port, &["sentinel", "master", Self::SERVICE]);
                let lines: Vec<&str> = info.lines().collect();
                let field = |name: &str| {
                    lines
                        .iter()
                        .position(|line| *line == name)
                        .and_then(|i| lines.get(i + 1).copied())
                };
                field("num-slaves") == Some(known_replicas.as_str())
                    && field("num-other-sentinels") == Some("2")
            });
        }
        TempSentinels {
            master,
            replicas,
            sentinels,
        }
    }

    /// `redis+sentinel://` with the three sentinels, the service and database 0.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!("redis+sentinel://{}/{}/0", hosts.join(","), Self::SERVICE)
    }

    /// The master (SIGKILLed by `stop`).
    pub fn master(&mut self) -> &mut TempServer {
        &mut self.master
    }

    /// Whether a replica reports itself a master (a failover promoted it).
    pub fn replica_promoted(&self) -> bool {
        self.replicas
            .iter()
            .any(|replica| redis_cli(replica.port, &["role"]).starts_with("master"))
    }
}

/// Runs `redis-cli -p port args…` against 127.0.0.1; its standard output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new(installed("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "waited {timeout:?} for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A manager on `server` whose calls fail within about a second while it is down.
fn quick_failing_manager(server: &TempServer) -> SessionManager {
    let url = format!("{}?connect_timeout=0.5&timeout=1", server.url());
    SessionManager::new(
        Config::builder_from_url(&url)
            .and_then(|builder| builder.secret("test secret").build())
            .expect("valid config"),
    )
    .expect("store opens")
}

/// Saves a new session holding `name` = `value`; its cookie's `name=value` pair.
fn save_new(manager: &SessionManager, name: &str, value: impl serde::Serialize) -> String {
    let mut session = manager.load(None).expect("load");
    session.insert(name, value).unwrap();
    let outcome = manager.save(session).expect("save");
    let header = outcome.set_cookie.expect("a Set-Cookie header");
    header.split(';').next().expect("name=value").to_owned()
}

fn assert_store_error<T: std::fmt::Debug>(
    result: sessionstore::Result<T>,
    backend: &str,
    what: &str,
) {
    match result {
        Err(Error::Store {
            backend: named,
            message,
        }) => {
            assert_eq!(named, backend, "{what}: {message}");
            assert!(!message.is_empty(), "{what}");
        }
        other => panic!("{what}: expected a {backend} store error, got {other:?}"),
    }
}

/// Stops `server` (one that keeps nothing over a restart: redis-server without persistence,
/// memcached) under a manager on it: loads, compare-and-sets and creates are store errors
/// naming `backend`. Started again, it has forgotten every session and the pool serves new
/// ones at once.
pub fn down_is_an_error_and_the_pool_recovers(mut server: TempServer, backend: &str) {
    let manager = quick_failing_manager(&server);
    let cookie = save_new(&manager, "user", "ann");
    let mut in_flight = manager.load(Some(&cookie)).unwrap();

    server.stop();
    assert_store_error(manager.load(Some(&cookie)), backend, "load");
    in_flight.insert("cart", 1).unwrap();
    assert_store_error(manager.save(in_flight), backend, "compare-and-set");
    let mut fresh = manager.load(None).unwrap();
    fresh.insert("user", "bob").unwrap();
    assert_store_error(manager.save(fresh), backend, "create");
    let message = manager.load(Some(&cookie)).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{backend} store: load")),
        "{message}"
    );

    server.start_again();
    // Nothing was persisted: the old session is gone, and the store works again at once.
    let session = manager.load(Some(&cookie)).expect("load after the restart");
    assert!(session.is_new(), "{backend} forgot everything");
    let cookie = save_new(&manager, "user", "cy");
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("cy")
    );
}

/// Restarts `server` while the connections pooled to it are idle: the first call on each
/// finds it dead, renews the pool and goes on, so no request fails.
pub fn a_restart_while_idle_costs_no_failed_request(mut server: TempServer) {
    let manager = quick_failing_manager(&server);
    // Several pooled connections, all idle when the server restarts.
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..20 {
                    save_new(&manager, "n", 1);
                }
            });
        }
    });
    server.stop();
    server.start_again();
    for n in 0..10 {
        let cookie = save_new(&manager, "n", n);
        let mut session = manager.load(Some(&cookie)).expect("load after the restart");
        assert_eq!(session.get::<i64>("n").unwrap(), Some(n));
        session.insert("m", n).unwrap();
        manager
            .save(session)
            .expect("compare-and-set after the restart");
    }
}

/// A loopback port nobody listens on (the OS's pick, released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn port_open(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

/// `--name=path`.
fn flag(name: &str, path: &Path) -> OsString {
    let mut flag = OsString::from(name);
    flag.push(path);
    flag
}

/// Sends `name` (`STOP`, `QUIT`, …) to our own child `child`, by PID.
/// Whether every thread listed under `tasks` (a `/proc/PID/task` directory) is stopped:
/// state `T` in its `stat` line, the field after the parenthesised command name.
fn all_stopped(tasks: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return false;
    };
    entries.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The uid and gid of a system account when the test runs as root (database servers
/// refuse to run as root); `None` for an ordinary user, who runs them as themselves.
fn service_account(name: &str) -> Option<(u32, u32)> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    if !root {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, name])
            .output()
            .expect("the id command");
        assert!(output.status.success(), "no {name} account on this machine");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    Some((id("-u"), id("-g")))
}

/// Where PostgreSQL's server programs are: the newest `/usr/lib/postgresql/*/bin` (Debian),
/// else the directory of `initdb` on the `PATH`.
fn postgres_bindir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    installed("initdb")
        .parent()
        .expect("initdb's directory")
        .to_owned()
}

/// The test virtualenv: `$VENV`, else `target/venv` as scripts/lib.sh makes it.
fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"))
}

/// The path of an installed program, or a panic saying how to install it.
fn installed(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: run scripts/services.sh, which installs it")
        })
}
