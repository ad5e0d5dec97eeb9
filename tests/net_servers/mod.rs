//! Servers of a test's own (redis-server, memcached, a Flask app), on a free loopback port:
//! for the tests that stop and restart their server, or that must not share one. Each is a
//! child process of the test, stopped (by its own PID) when dropped.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process on 127.0.0.1:`port`, restartable on the same port.
pub struct TempServer {
    name: &'static str,
    port: u16,
    command: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl TempServer {
    /// A redis-server without persistence.
    pub fn redis() -> TempServer {
        let port = free_port();
        TempServer::start(
            "redis-server",
            port,
            vec![
                installed("redis-server"),
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ],
            Vec::new(),
        )
    }

    /// A redis-server without persistence that speaks TLS only, with the certificate and key
    /// in the PEM files `cert` and `key` (clients are not asked for certificates).
    pub fn redis_tls(cert: &Path, key: &Path) -> TempServer {
        let port = free_port();
        TempServer::start(
            "redis-server (TLS)",
            port,
            vec![
                installed("redis-server"),
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                cert.display().to_string(),
                "--tls-key-file".into(),
                key.display().to_string(),
                "--tls-ca-cert-file".into(),
                cert.display().to_string(),
                "--tls-auth-clients".into(),
                "no".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ],
            Vec::new(),
        )
    }

    /// A memcached (as root it runs as root: `-u root`).
    pub fn memcached() -> TempServer {
        let port = free_port();
        TempServer::start(
            "memcached",
            port,
            vec![
                installed("memcached"),
                "-u".into(),
                "root".into(),
                "-l".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            Vec::new(),
        )
    }

    /// `tests/flask_app.py` under the test virtualenv's Python, configured by `env`.
    pub fn flask(env: &[(&str, &str)]) -> TempServer {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: the Flask interop tests need the test virtualenv; \
             run scripts/services.sh (python_env installs tests/python-requirements.txt)",
            python.display()
        );
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flask_app.py");
        let port = free_port();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.push(("FLASK_PORT".into(), port.to_string()));
        TempServer::start(
            "flask app",
            port,
            vec![python.display().to_string(), app.display().to_string()],
            env,
        )
    }

    fn start(
        name: &'static str,
        port: u16,
        command: Vec<String>,
        env: Vec<(String, String)>,
    ) -> TempServer {
        let mut server = TempServer {
            name,
            port,
            command,
            env,
            child: None,
        };
        server.start_again();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the process (SIGKILL, by PID) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            !port_open(self.port),
            "{} still listening on {}",
            self.name,
            self.port
        );
    }

    /// Starts the process again on the same port and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open(self.port) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("{} exited at start: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not open port {} within 30 s",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// The path of an installed server program, or a panic saying how to install it.
fn installed(program: &str) -> String {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is not installed: run scripts/services.sh, which installs it")
        })
        .display()
        .to_string()
}
