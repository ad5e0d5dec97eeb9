//! The web servers the HTTP tests start: the rouille demo (`examples/demo.rs`), the C server
//! (`ffi/examples/server.c`), the Python package's example Flask app
//! (`bindings/python/examples/app.py`) and the Flask-Session app (`tests/flask_app.py`, see
//! [`super::flask`]).
//! Each listens on a free loopback port it picks itself and announces its address in its
//! first line of output (`... listening on http://127.0.0.1:PORT`); its standard error goes
//! to a log file, printed when the test fails. A server is stopped (by its own PID) when
//! dropped. The C++ server (`ffi/examples/server.cpp`) takes the same flags as the C server.
//!
//! The test command builds the first two before the tests: `cargo build --all-features
//! --all-targets` (the demo) and `scripts/test-c.sh` (the C server, `target/ffi/server`, and
//! the C++ server, `target/ffi/server-cpp`), and installs the Python package into the test
//! virtualenv (`python_package` in scripts/lib.sh).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a server may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running web server, stopped when dropped.
pub struct HttpServer {
    name: String,
    child: Child,
    base: String,
    log: tempfile::NamedTempFile,
}

impl HttpServer {
    /// Starts `program` with `args` and `env` and waits for it to announce its address.
    pub fn start<A, K, V>(name: &str, program: &Path, args: &[A], env: &[(K, V)]) -> HttpServer
    where
        A: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        // The first line is the address; the rest of standard output is read and dropped,
        // so the server never writes into a closed pipe.
        let stdout = child.stdout.take().expect("piped standard output");
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut server = HttpServer {
            name: name.to_owned(),
            child,
            base: String::new(),
            log,
        };
        let line = receiver.recv_timeout(START_TIMEOUT).unwrap_or_default();
        match line.trim().rsplit(' ').next() {
            Some(address) if address.starts_with("http://") => {
                server.base = address.to_owned();
                server
            }
            _ => {
                let _ = server.child.kill();
                let status = server.child.wait().expect("the server's exit status");
                panic!(
                    "{name} did not announce its address within {START_TIMEOUT:?} \
                     (first line {line:?}, {status}):\n{}",
                    server.log()
                );
            }
        }
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server wrote to its standard error so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {} at {}: standard error ---", self.name, self.base);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `target/<profile>/`, the parent of this test binary's directory.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned()
}

fn built(binary: PathBuf, how: &str) -> PathBuf {
    assert!(
        binary.exists(),
        "{} is missing: {how} first (scripts/test.sh does)",
        binary.display()
    );
    binary
}

/// The rouille demo, `target/<profile>/examples/demo`.
pub fn demo_binary() -> PathBuf {
    built(
        profile_dir().join("examples").join("demo"),
        "run `cargo build --all-features --all-targets`",
    )
}

/// The C server, `target/ffi/server`.
pub fn c_server_binary() -> PathBuf {
    let target = profile_dir()
        .parent()
        .expect("the target directory")
        .to_owned();
    built(target.join("ffi").join("server"), "run scripts/test-c.sh")
}

/// The C++ server (`ffi/examples/server.cpp`), `target/ffi/server-cpp`.
pub fn cpp_server_binary() -> PathBuf {
    let target = profile_dir()
        .parent()
        .expect("the target directory")
        .to_owned();
    built(
        target.join("ffi").join("server-cpp"),
        "run scripts/test-c.sh",
    )
}

/// The rouille demo on a free loopback port, with `args` (`--store`, `--secret`, ...).
pub fn demo<A: AsRef<OsStr>>(args: &[A]) -> HttpServer {
    start_listening("the rouille demo", &demo_binary(), args)
}

/// The C server on a free loopback port, with the demo's `args`.
pub fn c_server<A: AsRef<OsStr>>(args: &[A]) -> HttpServer {
    start_listening("the C server", &c_server_binary(), args)
}

/// The C++ server on a free loopback port, with the demo's `args`.
pub fn cpp_server<A: AsRef<OsStr>>(args: &[A]) -> HttpServer {
    start_listening("the C++ server", &cpp_server_binary(), args)
}

/// The Python package's example Flask app on a free loopback port, with the demo's `args`,
/// run by the test virtualenv's Python (where the test command installs the package) on
/// werkzeug's threaded server.
pub fn python_app<A: AsRef<OsStr>>(args: &[A]) -> HttpServer {
    let app = python_app_script();
    let mut all: Vec<&OsStr> = vec![app.as_os_str()];
    all.extend(args.iter().map(AsRef::as_ref));
    start_listening("the Python app", &super::flask::python(), &all)
}

/// The Python package's example Flask app, `bindings/python/examples/app.py`.
pub fn python_app_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bindings/python/examples/app.py")
}

/// Starts `program` with `--listen 127.0.0.1:0` after `args`.
fn start_listening<A: AsRef<OsStr>>(name: &str, program: &Path, args: &[A]) -> HttpServer {
    let mut all: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    all.extend([OsStr::new("--listen"), OsStr::new("127.0.0.1:0")]);
    HttpServer::start(name, program, &all, &[] as &[(&str, &str)])
}

/// A browser: one cookie jar for 127.0.0.1 whatever the port, as browsers keep cookies.
pub fn browser() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(64)
        .max_idle_connections_per_host(16)
        .build()
        .into()
}

/// The JSON body of a response that must be `200 OK`.
pub fn answer(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    url: &str,
) -> serde_json::Value {
    let mut response = response.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let text = response.body_mut().read_to_string().expect("a body");
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {text:?}: {e}"))
}

/// `GET url` with the browser's cookies; the JSON answer.
pub fn get(browser: &ureq::Agent, url: &str) -> serde_json::Value {
    answer(browser.get(url).call(), url)
}

/// `POST url` with a form, with the browser's cookies; the JSON answer.
pub fn post(browser: &ureq::Agent, url: &str, form: &[(&str, &str)]) -> serde_json::Value {
    answer(browser.post(url).send_form(form.iter().copied()), url)
}

/// `GET url` sending exactly this `Cookie` header (no jar), as a replayed or forged request.
pub fn get_with_cookie(url: &str, cookie_header: &str) -> serde_json::Value {
    answer(ureq::get(url).header("Cookie", cookie_header).call(), url)
}

/// The value of the cookie `name` in the browser's jar, if it holds a non-empty one.
pub fn cookie_value(browser: &ureq::Agent, name: &str) -> Option<String> {
    let jar = browser.cookie_jar_lock();
    let value = jar
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned());
    jar.release();
    value.filter(|v| !v.is_empty())
}

/// A store URL for an SQLite file `name` in `dir`.
pub fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}
