//! Flask-Session 0.8 and sessionstore share one user's session (docs/DESIGN.md §1, §3, §4): a real Flask
//! app (tests/flask_app.py, started by tests/common/flask.rs) and a manager made by
//! `Config::from_flask` from the same Flask settings (SESSION_USE_SIGNER with one SECRET_KEY,
//! so `flask` cookie mode, and one key prefix) each read and modify the other's sessions, on
//! Redis and on Memcached (two servers, keys placed as pymemcache's HashClient places them).

#![cfg(all(feature = "redis", feature = "memcached"))]

use crate::common;
use crate::net_servers;

use common::cookie_pair;
use common::flask::{FlaskApp, pair, persistent};
use net_servers::TempServer;
use serde_json::json;
use sessionstore::{Config, SaveOutcome, SessionManager};

/// The Flask app and a manager on the same store, with the same settings.
struct Shared {
    flask: FlaskApp,
    manager: SessionManager,
    /// Memcached servers of this test's own, kept running while it lasts.
    _servers: Vec<TempServer>,
}

fn on_redis() -> Shared {
    let url = std::env::var("SESSIONSTORE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    shared(
        &[("SESSION_TYPE", "redis"), ("SESSION_REDIS", &url)],
        Vec::new(),
    )
}

fn on_memcached() -> Shared {
    let servers = vec![TempServer::memcached(), TempServer::memcached()];
    let list = servers
        .iter()
        .map(|server| format!("127.0.0.1:{}", server.port()))
        .collect::<Vec<_>>()
        .join(",");
    shared(
        &[("SESSION_TYPE", "memcached"), ("SESSION_MEMCACHED", &list)],
        servers,
    )
}

/// The Flask app and a manager from the same Flask settings: `store`'s, plus a signer with
/// one secret, a key prefix of this test's own, and Flask's default of rewriting the session
/// on every request (these tests check the cookie Flask renews on a read).
fn shared(store: &[(&str, &str)], servers: Vec<TempServer>) -> Shared {
    let prefix = common::unique_prefix();
    let mut settings = vec![
        ("SECRET_KEY", "flask-interop-secret"),
        ("SESSION_USE_SIGNER", "True"),
        ("SESSION_KEY_PREFIX", prefix.as_str()),
        ("SESSION_REFRESH_EACH_REQUEST", "True"),
    ];
    settings.extend_from_slice(store);
    let manager = SessionManager::new(
        Config::from_flask(settings.iter().copied()).expect("valid Flask settings"),
    )
    .expect("store opens");
    Shared {
        flask: FlaskApp::start(&settings),
        manager,
        _servers: servers,
    }
}

/// The `session=value` pair of Flask's `Set-Cookie` header.
fn flask_pair(set_cookie: &Option<String>) -> String {
    pair(set_cookie.as_deref().expect("Flask set the session cookie"))
}

fn flask_session_is_read_and_modified_by_rust(shared: Shared) {
    let created = shared.flask.post_json(
        "/session",
        None,
        &json!({"user": "ann", "visits": 1, "tags": ["a", "b"], "ratio": 0.5}),
    );
    let cookie = flask_pair(&created.set_cookie);

    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_new(), "Rust found the session Flask created");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(session.get::<i64>("visits").unwrap(), Some(1));
    assert_eq!(
        session.get::<Vec<String>>("tags").unwrap(),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(session.get::<f64>("ratio").unwrap(), Some(0.5));
    assert!(session.is_permanent());
    session.insert("from_rust", "hello").unwrap();
    session
        .modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)
        .unwrap();
    let saved = shared.manager.save(session).unwrap();
    assert_eq!(cookie_pair(&saved), cookie, "same id, signed the same way");

    let read = shared.flask.get("/session", Some(&cookie));
    assert_eq!(read.body["data"]["from_rust"], "hello");
    assert_eq!(read.body["data"]["visits"], 2);
    assert_eq!(read.body["data"]["user"], "ann");
    assert_eq!(read.body["permanent"], true);
}

fn rust_session_is_read_and_modified_by_flask(shared: Shared) {
    let mut session = shared.manager.load(None).unwrap();
    session.insert("user", "bob").unwrap();
    session.insert("cart", vec![1, 2, 3]).unwrap();
    let cookie = cookie_pair(&shared.manager.save(session).unwrap());

    let read = shared.flask.get("/session", Some(&cookie));
    assert_eq!(
        read.body["data"],
        json!({"_permanent": true, "user": "bob", "cart": [1, 2, 3]}),
        "Flask verified the cookie and decoded the stored value"
    );
    let written = shared
        .flask
        .post_json("/session", Some(&cookie), &json!({"role": "admin"}));
    assert_eq!(
        flask_pair(&written.set_cookie),
        cookie,
        "Flask kept the session id"
    );

    let session = shared.manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_new());
    assert_eq!(
        session.get::<String>("role").unwrap().as_deref(),
        Some("admin")
    );
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("bob")
    );
    assert_eq!(
        session.get::<Vec<i64>>("cart").unwrap(),
        Some(vec![1, 2, 3])
    );
}

fn permanent_is_respected_both_ways(shared: Shared) {
    // Flask makes its session a browser-session one; Rust keeps it so.
    let created = shared
        .flask
        .post_json("/session", None, &json!({"user": "cy"}));
    let cookie = flask_pair(&created.set_cookie);
    assert!(persistent(created.set_cookie.as_deref().unwrap()));
    let turned = shared
        .flask
        .post_json("/permanent", Some(&cookie), &json!({"permanent": false}));
    assert!(!persistent(turned.set_cookie.as_deref().unwrap()));
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_permanent());
    assert_eq!(session.get::<bool>("_permanent").unwrap(), Some(false));
    session.insert("seen_by_rust", true).unwrap();
    let saved: SaveOutcome = shared.manager.save(session).unwrap();
    let header = saved.set_cookie.unwrap();
    assert!(!persistent(&header), "a browser-session cookie: {header}");

    // Rust makes it permanent again; Flask sees it and sends an expiring cookie.
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    session.set_permanent(true);
    let header = shared.manager.save(session).unwrap().set_cookie.unwrap();
    assert!(persistent(&header), "{header}");
    let read = shared.flask.get("/session", Some(&cookie));
    assert_eq!(read.body["permanent"], true);
    assert_eq!(read.body["data"]["seen_by_rust"], true);
    assert!(persistent(read.set_cookie.as_deref().unwrap()));

    // And not permanent once more, from Rust.
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    session.set_permanent(false);
    shared.manager.save(session).unwrap();
    let read = shared.flask.get("/session", Some(&cookie));
    assert_eq!(read.body["permanent"], false);
    assert_eq!(read.body["data"]["user"], "cy");
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod redis {
            $(
                #[test]
                fn $test() {
                    super::$test(super::on_redis());
                }
            )*
        }
        mod memcached {
            $(
                #[test]
                fn $test() {
                    super::$test(super::on_memcached());
                }
            )*
        }
    };
}

on_both_stores!(
    flask_session_is_read_and_modified_by_rust,
    rust_session_is_read_and_modified_by_flask,
    permanent_is_respected_both_ways,
);
