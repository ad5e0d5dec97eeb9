//! Test support for the network stores: names no other test uses, and private server
//! instances on free loopback ports for the tests that stop a server and start it again
//! (the shared test servers are never stopped).

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a private server may take to open its port.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `prefix` plus random lowercase letters and digits: a table or collection of one test.
pub(crate) fn unique_name(prefix: &str) -> String {
    let id = crate::SessionId::generate();
    let suffix: String = id
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{prefix}_{suffix}")
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Waits until `port` is open (`open`) or closed; panics naming `what` after the timeout.
fn wait_for_port(port: u16, open: bool, what: &str) {
    let started = Instant::now();
    while port_open(port) != open {
        assert!(
            started.elapsed() < START_TIMEOUT,
            "{what} did not {} port {port} within {START_TIMEOUT:?}",
            if open { "open" } else { "close" }
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The uid and gid of a system account, when running as root (database servers refuse to
/// run as root); `None` when already running as an ordinary user.
fn service_account(name: &str) -> Option<(u32, u32)> {
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
    is_root().then(|| (id("-u"), id("-g")))
}

fn is_root() -> bool {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .expect("the id command");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Sends `signal` (a name such as `TERM`) to `child`, waits for it to exit and for `port`
/// to close.
fn stop_child(child: &mut Child, signal: &str, port: u16, what: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("the kill command");
    assert!(status.success(), "cannot signal {what}");
    child.wait().expect("the server exits");
    wait_for_port(port, false, what);
}

/// A server process of a test, with its data in a temporary directory.
struct Process {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    /// The signal that shuts the server down.
    stop_signal: &'static str,
    name: &'static str,
}

impl Process {
    fn new(name: &'static str, stop_signal: &'static str, owner: Option<(u32, u32)>) -> Process {
        let dir = tempfile::tempdir().expect("temporary directory");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("hand the data directory to the server's account");
        }
        Process {
            dir,
            port: free_port(),
            child: None,
            stop_signal,
            name,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `command` (its output goes to `server.log`) and waits for the port.
    fn spawn(&mut self, mut command: Command) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.path("server.log"))
            .expect("server log");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
        wait_for_port(self.port, true, self.name);
    }

    fn stop(&mut self) {
        let mut child = self.child.take().expect("the server is running");
        stop_child(&mut child, self.stop_signal, self.port, self.name);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Runs `command` as `account` if given.
fn as_account(mut command: Command, account: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = account {
        command.uid(uid).gid(gid);
    }
    command
}

/// A private PostgreSQL server (initdb in a temporary directory, trust authentication).
pub(crate) struct TempPostgres {
    process: Process,
    bin: PathBuf,
    account: Option<(u32, u32)>,
}

impl TempPostgres {
    /// Creates the cluster and starts the server; panics if PostgreSQL is not installed.
    pub(crate) fn start() -> TempPostgres {
        let account = service_account("postgres");
        let bin = postgres_bindir();
        let process = Process::new("postgres", "QUIT", account);
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(process.path("data"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = as_account(initdb, account).status().expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let mut server = TempPostgres {
            process,
            bin,
            account,
        };
        server.start_again();
        server
    }

    /// The URL of its `postgres` database.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.process.port
        )
    }
}

impl Restartable for TempPostgres {
    /// Shuts the server down at once (SIGQUIT: every connection is cut).
    fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port and data.
    fn start_again(&mut self) {
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.process.path("data"))
            .arg("-k")
            .arg(self.process.dir.path())
            .args(["-p", &self.process.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
        let command = as_account(command, self.account);
        self.process.spawn(command);
    }
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
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists())
        .expect("PostgreSQL's initdb (apt-get install postgresql)")
}

/// A private MariaDB server: an empty data directory, no grant tables (any user gets in).
pub(crate) struct TempMariadb {
    process: Process,
    account: Option<(u32, u32)>,
}

impl TempMariadb {
    /// Starts the server; panics if MariaDB is not installed.
    pub(crate) fn start() -> TempMariadb {
        let account = service_account("mysql");
        let mut server = TempMariadb {
            process: Process::new("mariadbd", "TERM", account),
            account,
        };
        server.start_again();
        server
    }

    /// The URL of its `mysql` database (created at the first start).
    pub(crate) fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.process.port)
    }
}

impl Restartable for TempMariadb {
    /// Shuts the server down (SIGTERM: every connection is closed).
    fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port and data.
    fn start_again(&mut self) {
        let data = self.process.path("data");
        if !data.exists() {
            std::fs::create_dir(&data).expect("data directory");
            std::fs::create_dir(data.join("mysql")).expect("database directory");
            if let Some((uid, gid)) = self.account {
                for dir in [data.clone(), data.join("mysql")] {
                    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                        .expect("hand the data directory to mysql");
                }
            }
        }
        let dir = self.process.dir.path();
        let mut command = Command::new(mariadbd());
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--port={}", self.process.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ]);
        if self.account.is_some() {
            command.arg("--user=mysql");
        }
        self.process.spawn(command);
    }
}

fn mariadbd() -> &'static Path {
    ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
        .expect("MariaDB's server (apt-get install mariadb-server)")
}

/// A private SecantusDB server (the MongoDB wire-protocol server of the test services),
/// keeping its data in memory.
pub(crate) struct TempMongo {
    process: Process,
}

impl TempMongo {
    /// Starts the server; panics if the test virtualenv lacks SecantusDB.
    pub(crate) fn start() -> TempMongo {
        let mut server = TempMongo {
            process: Process::new("secantusd-py", "TERM", None),
        };
        server.start_again();
        server
    }

    /// The server's URL, with `options` (`key=value&…`) appended.
    pub(crate) fn url(&self, options: &str) -> String {
        format!("mongodb://127.0.0.1:{}/?{options}", self.process.port)
    }
}

impl Restartable for TempMongo {
    /// Shuts the server down (its in-memory data goes with it).
    fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts an empty server again on the same port.
    fn start_again(&mut self) {
        let mut command = Command::new(venv().join("bin/secantusd-py"));
        command.args([
            "--host",
            "127.0.0.1",
            "--port",
            &self.process.port.to_string(),
            "--storage-path",
            ":memory:",
        ]);
        self.process.spawn(command);
    }
}

/// The test virtualenv: `$VENV`, else `target/venv` as scripts/lib.sh makes it.
fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv"))
}

/// A private server a test stops and starts again on the same port.
pub(crate) trait Restartable {
    /// Shuts the server down.
    fn stop(&mut self);
    /// Starts it again on the same port.
    fn start_again(&mut self);
}

/// Runs sessions through `config`'s store while its `server` goes away and comes back on the
/// same port. While it is down,
/// loads and saves fail with `Error::Store` naming `backend`, soon (`config`'s timeouts);
/// once it is back, the pool serves requests again without a failed one. `keeps_data`: the
/// server keeps its data across the restart.
pub(crate) fn down_and_back(
    config: crate::Config,
    backend: &str,
    server: &mut impl Restartable,
    keeps_data: bool,
) {
    use crate::Error;

    let manager = crate::SessionManager::new(config).expect("the store opens");
    let cookie_of = |outcome: crate::SaveOutcome| -> String {
        let header = outcome.set_cookie.expect("a Set-Cookie header");
        header.split(';').next().expect("name=value").to_owned()
    };
    let mut session = manager.load(None).unwrap();
    session.insert("user", "ann").unwrap();
    let cookie = cookie_of(manager.save(session).unwrap());
    let mut pending = manager.load(Some(&cookie)).unwrap();
    pending.insert("theme", "dark").unwrap();
    let mut fresh = manager.load(None).unwrap();
    fresh.insert("user", "bob").unwrap();

    server.stop();
    let started = Instant::now();
    let failures = [
        manager.load(Some(&cookie)).map(drop).unwrap_err(),
        manager.save(pending).map(drop).unwrap_err(),
        manager.save(fresh).map(drop).unwrap_err(),
        manager.purge_expired().map(drop).unwrap_err(),
    ];
    for error in failures {
        match &error {
            Error::Store {
                backend: named,
                message,
            } => {
                assert_eq!(*named, backend);
                assert!(!message.is_empty());
                assert!(
                    error.to_string().starts_with(&format!("{backend} store: ")),
                    "{error}"
                );
            }
            other => panic!("not a store error: {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failures come within the timeouts, took {:?}",
        started.elapsed()
    );

    server.start_again();
    let session = manager.load(Some(&cookie)).expect("served again");
    if keeps_data {
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ann")
        );
    }
    let mut session = manager.load(None).unwrap();
    session.insert("user", "cy").unwrap();
    let cookie = cookie_of(manager.save(session).expect("saved again"));
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("cy")
    );
}
