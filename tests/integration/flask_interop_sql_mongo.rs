//! docs/DESIGN.md §1 and §4 on PostgreSQL, MariaDB and MongoDB: a Flask app using Flask-Session 0.8
//! (tests/flask_app.py, started by tests/common/flask.rs, SESSION_TYPE sqlalchemy or mongodb,
//! SESSION_USE_SIGNER) and this crate share one table or collection, one key prefix and one
//! cookie. Each side reads and modifies what the other wrote, whichever of them created the
//! table, and both honour `_permanent`. Both sides are configured with the same Flask
//! settings (the Rust side through `Config::from_flask`).

#![cfg(all(feature = "postgres", feature = "mysql", feature = "mongodb"))]

use crate::common;

use std::process::{Command, Stdio};

use common::flask::{FlaskApp, Reply, pair, persistent, python};
use serde_json::json;
use sessionstore::{Config, SessionManager};

/// The database side of one test: its Flask-Session settings, the same for both sides.
struct Backend {
    /// SESSION_TYPE and the connection settings.
    settings: Vec<(&'static str, String)>,
    /// Python that drops the table or collection when the test ends.
    cleanup: String,
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
        cleanup: format!(
            "import sqlalchemy as sa\n\
             with sa.create_engine({uri:?}).begin() as c:\n    \
             c.execute(sa.text('DROP TABLE IF EXISTS {table}'))\n"
        ),
        settings: vec![
            ("SESSION_TYPE", "sqlalchemy".to_owned()),
            ("SQLALCHEMY_DATABASE_URI", uri),
            ("SESSION_SQLALCHEMY_TABLE", table),
        ],
    }
}

/// A MongoDB collection of its own (SecantusDB in the tests).
fn mongodb() -> Backend {
    let uri = std::env::var("SESSIONSTORE_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?retryWrites=false".to_owned());
    let collection = format!("flask_{}", unique_suffix());
    let database = "sessionstore_interop";
    Backend {
        cleanup: format!(
            "import pymongo\n\
             pymongo.MongoClient({uri:?})[{database:?}].drop_collection({collection:?})\n"
        ),
        settings: vec![
            ("SESSION_TYPE", "mongodb".to_owned()),
            ("SESSION_MONGODB", uri),
            ("SESSION_MONGODB_DB", database.to_owned()),
            ("SESSION_MONGODB_COLLECT", collection),
        ],
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
    settings: Vec<(&'static str, String)>,
    _backend: Backend,
}

impl Shared {
    fn new(backend: Backend, permanent: bool) -> Shared {
        let mut settings = backend.settings.clone();
        settings.extend([
            ("SECRET_KEY", "interop secret key".to_owned()),
            ("SESSION_USE_SIGNER", "True".to_owned()),
            (
                "SESSION_KEY_PREFIX",
                format!("interop:{}:", unique_suffix()),
            ),
            (
                "SESSION_PERMANENT",
                if permanent { "True" } else { "False" }.to_owned(),
            ),
        ]);
        Shared {
            settings,
            _backend: backend,
        }
    }

    /// The Rust side.
    fn manager(&self) -> SessionManager {
        let config = Config::from_flask(self.settings.iter().cloned()).expect("the Flask settings");
        SessionManager::new(config).expect("the store opens")
    }

    /// The Flask side.
    fn flask(&self) -> FlaskApp {
        FlaskApp::start(&self.settings)
    }
}

/// The session's data in a reply of the Flask app's `/session` routes.
fn data(reply: &Reply) -> &serde_json::Value {
    &reply.body["data"]
}

/// Whether the Flask app reported the session permanent.
fn permanent(reply: &Reply) -> bool {
    reply.body["permanent"]
        .as_bool()
        .expect("the permanent flag")
}

/// A session Flask created is read and modified by Rust (the table or collection created by
/// Flask-Session first), and Flask sees the changes.
fn flask_session_is_read_and_modified_by_rust(backend: Backend) {
    let shared = Shared::new(backend, true);
    let flask = shared.flask();
    let manager = shared.manager();

    let created = flask.post_json("/session", None, &json!({"user": "ann"}));
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

    let seen = flask.get("/session", Some(&cookie));
    assert_eq!(
        *data(&seen),
        json!({"_permanent": true, "user": "ann", "visits": 1, "lang": "fr"})
    );
    assert!(permanent(&seen));

    assert_eq!(
        flask.get("/visit", Some(&cookie)).body,
        json!({"user": "ann", "visits": 2}),
        "Flask counts on from Rust's count"
    );
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

    let seen = flask.get("/session", Some(&cookie));
    assert_eq!(
        *data(&seen),
        json!({"_permanent": true, "user": "bob", "cart": [1, 2, 3]})
    );
    assert!(permanent(&seen));

    let changed = flask.post_json("/session", Some(&cookie), &json!({"theme": "dark"}));
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

    let created = flask.post_json("/session", None, &json!({"user": "cy"}));
    assert!(!permanent(&created));
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

    let made_permanent = flask.post_json("/permanent", Some(&cookie), &json!({"permanent": true}));
    assert!(permanent(&made_permanent));
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
    let seen = flask.get("/session", Some(&cookie));
    assert!(!permanent(&seen), "Flask sees Rust's _permanent: false");
    assert_eq!(data(&seen)["step"], json!(2));
    assert_eq!(data(&seen)["user"], json!("cy"));
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
