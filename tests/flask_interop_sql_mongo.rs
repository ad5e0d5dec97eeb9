//! SPEC §1 and §4 on PostgreSQL, MariaDB and MongoDB: a Flask app using Flask-Session 0.8
//! (tests/flask_app_sql_mongo.py, SESSION_TYPE sqlalchemy or mongodb, SESSION_USE_SIGNER)
//! and this crate share one table or collection, one key prefix and one cookie. Each side
//! reads and modifies what the other wrote, whichever of them created the table, and both
//! honour `_permanent`. The Rust side is configured with the Flask app's own settings
//! (`Config::from_flask`).

#![cfg(all(feature = "postgres", feature = "mysql", feature = "mongodb"))]

mod common;

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessionstore::{Config, SessionManager};

const SECRET: &str = "interop secret key";

/// The database side of one test: what Flask and `Config::from_flask` are given.
struct Backend {
    /// Flask-Session settings shared by both sides (besides the secret, signer and prefix).
    settings: Vec<(&'static str, String)>,
    /// The app's environment variables for the same settings.
    flask_env: Vec<(&'static str, String)>,
    /// Python that drops the table or collection when the test ends.
    cleanup: String,
}

fn python() -> PathBuf {
    let venv = std::env::var_os("VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv"));
    venv.join("bin/python")
}

/// A PostgreSQL table of its own: `SQLALCHEMY_DATABASE_URI` with psycopg2.
fn postgres() -> Backend {
    let server = std::env::var("SESSIONSTORE_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let uri = server.replacen("postgres://", "postgresql+psycopg2://", 1);
    sql_backend(uri)
}

/// A MariaDB table of its own: `SQLALCHEMY_DATABASE_URI` with PyMySQL.
fn mysql() -> Backend {
    let server = std::env::var("SESSIONSTORE_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let uri = server.replacen("mysql://", "mysql+pymysql://", 1);
    sql_backend(uri)
}

fn sql_backend(uri: String) -> Backend {
    let table = format!("flask_{}", unique_suffix());
    Backend {
        settings: vec![
            ("SESSION_TYPE", "sqlalchemy".to_owned()),
            ("SQLALCHEMY_DATABASE_URI", uri.clone()),
            ("SESSION_SQLALCHEMY_TABLE", table.clone()),
        ],
        flask_env: vec![
            ("SESSION_TYPE", "sqlalchemy".to_owned()),
            ("DATABASE_URI", uri.clone()),
            ("TABLE", table.clone()),
        ],
        cleanup: format!(
            "import sqlalchemy as sa\n\
             with sa.create_engine({uri:?}).begin() as c:\n    \
             c.execute(sa.text('DROP TABLE IF EXISTS {table}'))\n"
        ),
    }
}

/// A MongoDB collection of its own (SecantusDB in the tests).
fn mongodb() -> Backend {
    let uri = std::env::var("SESSIONSTORE_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?retryWrites=false".to_owned());
    let collection = format!("flask_{}", unique_suffix());
    let database = "sessionstore_interop".to_owned();
    Backend {
        settings: vec![
            ("SESSION_TYPE", "mongodb".to_owned()),
            ("SESSION_MONGODB", uri.clone()),
            ("SESSION_MONGODB_DB", database.clone()),
            ("SESSION_MONGODB_COLLECT", collection.clone()),
        ],
        flask_env: vec![
            ("SESSION_TYPE", "mongodb".to_owned()),
            ("MONGODB_URI", uri.clone()),
            ("MONGODB_DB", database.clone()),
            ("MONGODB_COLLECT", collection.clone()),
        ],
        cleanup: format!(
            "import pymongo\n\
             pymongo.MongoClient({uri:?})[{database:?}].drop_collection({collection:?})\n"
        ),
    }
}

fn unique_suffix() -> String {
    common::unique_prefix()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = Command::new(python())
            .args(["-c", &self.cleanup])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Both sides of one test: the same backend, key prefix, secret and permanence.
struct Shared {
    backend: Backend,
    prefix: String,
    permanent: bool,
}

impl Shared {
    fn new(backend: Backend, permanent: bool) -> Shared {
        Shared {
            backend,
            prefix: format!("interop:{}:", unique_suffix()),
            permanent,
        }
    }

    /// The Rust side, configured with the Flask app's settings.
    fn manager(&self) -> SessionManager {
        let mut settings = self.backend.settings.clone();
        settings.extend([
            ("SECRET_KEY", SECRET.to_owned()),
            ("SESSION_USE_SIGNER", "True".to_owned()),
            ("SESSION_KEY_PREFIX", self.prefix.clone()),
            (
                "SESSION_PERMANENT",
                if self.permanent { "True" } else { "False" }.to_owned(),
            ),
        ]);
        let config = Config::from_flask(settings).expect("the Flask settings");
        SessionManager::new(config).expect("the store opens")
    }

    /// The Flask side.
    fn flask(&self) -> FlaskApp {
        let mut env = self.backend.flask_env.clone();
        env.extend([
            ("SECRET_KEY", SECRET.to_owned()),
            ("KEY_PREFIX", self.prefix.clone()),
            (
                "PERMANENT",
                if self.permanent { "1" } else { "0" }.to_owned(),
            ),
        ]);
        FlaskApp::start(&env)
    }
}

/// The Flask app, running on a free loopback port; killed when dropped.
struct FlaskApp {
    child: Child,
    base: String,
    _log_dir: tempfile::TempDir,
}

/// What one Flask request answered.
struct Reply {
    session: Value,
    permanent: bool,
    /// The `Set-Cookie` header, if any.
    set_cookie: Option<String>,
}

impl FlaskApp {
    fn start(env: &[(&str, String)]) -> FlaskApp {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log_dir = tempfile::tempdir().expect("temporary directory");
        let log_path = log_dir.path().join("flask.log");
        let log = File::create(&log_path).expect("log file");
        let mut child = Command::new(python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/flask_app_sql_mongo.py"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("target/venv/bin/python (scripts/services.sh creates it)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().expect("child status");
            if exited.is_some() || started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!(
                    "the Flask app did not start: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        FlaskApp {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _log_dir: log_dir,
        }
    }

    /// GET `path`, sending `cookie` (`session=…`) if given.
    fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = ureq::get(&format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let mut response = request.call().expect("the Flask app answers");
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|value| value.to_str().expect("ASCII header").to_owned());
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().expect("a body"))
                .expect("JSON");
        Reply {
            session: body["session"].clone(),
            permanent: body["permanent"].as_bool().expect("permanent flag"),
            set_cookie,
        }
    }
}

impl Drop for FlaskApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name=value` of a `Set-Cookie` header, as a browser sends it back.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("name=value").to_owned()
}

/// Whether a `Set-Cookie` header makes a persistent cookie.
fn persistent(set_cookie: &str) -> bool {
    let lower = set_cookie.to_ascii_lowercase();
    lower.contains("expires=") || lower.contains("max-age=")
}

/// A session Flask created is read and modified by Rust (the table or collection created by
/// Flask-Session first), and Flask sees the changes.
fn flask_session_is_read_and_modified_by_rust(backend: Backend) {
    let shared = Shared::new(backend, true);
    let flask = shared.flask();
    let manager = shared.manager();

    let created = flask.get("/set?key=user&value=%22ann%22", None);
    let cookie = pair(&created.set_cookie.expect("Flask sets the cookie"));

    let mut session = manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_new(), "Rust reads Flask's session");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
    assert!(session.is_permanent(), "Flask stored _permanent: true");
    session
        .modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)
        .unwrap();
    session.insert("lang", "fr").unwrap();
    let saved = manager.save(session).unwrap();
    let renewed = saved.set_cookie.expect("a permanent cookie is renewed");
    assert_eq!(pair(&renewed), cookie, "same id, same Flask signature");

    let seen = flask.get("/get", Some(&cookie));
    assert_eq!(
        seen.session,
        json!({"_permanent": true, "user": "ann", "visits": 1, "lang": "fr"})
    );
    assert!(seen.permanent);

    flask.get("/incr?key=visits", Some(&cookie));
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(session.get::<i64>("visits").unwrap(), Some(2));
}

/// A session Rust created is read and modified by Flask (the table or collection created by
/// this crate first), and Rust sees the changes.
fn rust_session_is_read_and_modified_by_flask(backend: Backend) {
    let shared = Shared::new(backend, true);
    let manager = shared.manager();
    let flask = shared.flask();

    let mut session = manager.load(None).unwrap();
    session.insert("user", "bob").unwrap();
    session.insert("cart", vec![1, 2, 3]).unwrap();
    let saved = manager.save(session).unwrap();
    let set_cookie = saved.set_cookie.expect("a new session sets the cookie");
    assert!(persistent(&set_cookie), "{set_cookie}");
    let cookie = pair(&set_cookie);

    let seen = flask.get("/get", Some(&cookie));
    assert_eq!(
        seen.session,
        json!({"_permanent": true, "user": "bob", "cart": [1, 2, 3]})
    );
    assert!(seen.permanent);

    let changed = flask.get("/set?key=theme&value=%22dark%22", Some(&cookie));
    assert_eq!(
        changed.set_cookie.as_deref().map(pair),
        Some(cookie.clone()),
        "Flask keeps the id Rust made"
    );
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("bob")
    );
}

/// With SESSION_PERMANENT False on both sides, `_permanent` decides the cookie on both:
/// browser-session cookies until one side makes the session permanent, and back.
fn permanent_flag_is_shared(backend: Backend) {
    let shared = Shared::new(backend, false);
    let flask = shared.flask();
    let manager = shared.manager();

    let created = flask.get("/set?key=user&value=%22cy%22", None);
    assert!(!created.permanent);
    let set_cookie = created.set_cookie.expect("Flask sets the cookie");
    assert!(!persistent(&set_cookie), "{set_cookie}");
    let cookie = pair(&set_cookie);

    let mut session = manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_new());
    assert!(!session.is_permanent());
    session.insert("step", 1).unwrap();
    let saved = manager.save(session).unwrap();
    let rust_cookie = saved
        .set_cookie
        .expect("a modified session sets the cookie");
    assert!(!persistent(&rust_cookie), "{rust_cookie}");

    let made_permanent = flask.get("/permanent?on=1", Some(&cookie));
    assert!(made_permanent.permanent);
    assert!(persistent(
        &made_permanent.set_cookie.expect("cookie renewed")
    ));
    let mut session = manager.load(Some(&cookie)).unwrap();
    assert!(session.is_permanent(), "Rust sees Flask's _permanent: true");
    session.insert("step", 2).unwrap();
    let saved = manager.save(session).unwrap();
    assert!(persistent(&saved.set_cookie.expect("cookie renewed")));

    let mut session = manager.load(Some(&cookie)).unwrap();
    session.set_permanent(false);
    manager.save(session).unwrap();
    let seen = flask.get("/get", Some(&cookie));
    assert!(!seen.permanent, "Flask sees Rust's _permanent: false");
    assert_eq!(seen.session["step"], json!(2));
    assert_eq!(seen.session["user"], json!("cy"));
}

macro_rules! interop_suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn flask_session_is_read_and_modified_by_rust() {
                super::flask_session_is_read_and_modified_by_rust(super::$backend());
            }

            #[test]
            fn rust_session_is_read_and_modified_by_flask() {
                super::rust_session_is_read_and_modified_by_flask(super::$backend());
            }

            #[test]
            fn permanent_flag_is_shared() {
                super::permanent_flag_is_shared(super::$backend());
            }
        }
    };
}

interop_suite!(postgres);
interop_suite!(mysql);
interop_suite!(mongodb);
