//! Flask-Session 0.8 and sessionstore share one user's session (SPEC §1, §3, §4): a real Flask
//! app (tests/flask_app.py, run with the test virtualenv's Python) with SESSION_USE_SIGNER and
//! a fixed SECRET_KEY, and a manager configured from the same Flask settings (`flask` cookie
//! mode, same secret and key prefix), each read and modify the other's sessions, on Redis and
//! on Memcached (two servers, keys placed as pymemcache's HashClient places them).

#![cfg(all(feature = "redis", feature = "memcached"))]

mod common;
mod net_servers;

use common::{cookie_pair, unique_prefix};
use net_servers::TempServer;
use serde_json::{Value, json};
use sessionstore::{Config, SaveOutcome, SessionManager};

/// The Flask app's SECRET_KEY (tests/flask_app.py).
const SECRET: &str = "flask-interop-secret";

/// The Flask app and a manager on the same store, with the same settings.
struct Shared {
    flask: TempServer,
    manager: SessionManager,
    /// Memcached servers of this test's own, kept running while it lasts.
    _servers: Vec<TempServer>,
}

fn on_redis() -> Shared {
    let url = std::env::var("SESSIONSTORE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let prefix = unique_prefix();
    let flask = TempServer::flask(&[
        ("SESSION_TYPE", "redis"),
        ("REDIS_URL", &url),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
    let manager = manager(&[
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", &url),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
    Shared {
        flask,
        manager,
        _servers: Vec::new(),
    }
}

fn on_memcached() -> Shared {
    let servers = vec![TempServer::memcached(), TempServer::memcached()];
    let list = servers
        .iter()
        .map(|server| format!("127.0.0.1:{}", server.port()))
        .collect::<Vec<_>>()
        .join(",");
    let prefix = unique_prefix();
    let flask = TempServer::flask(&[
        ("SESSION_TYPE", "memcached"),
        ("MEMCACHED_SERVERS", &list),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
    let manager = manager(&[
        ("SESSION_TYPE", "memcached"),
        ("SESSION_MEMCACHED", &list),
        ("SESSION_KEY_PREFIX", &prefix),
    ]);
    Shared {
        flask,
        manager,
        _servers: servers,
    }
}

/// A manager from Flask settings, as the Flask app has them.
fn manager(store: &[(&str, &str)]) -> SessionManager {
    let mut settings = vec![("SESSION_USE_SIGNER", "True"), ("SECRET_KEY", SECRET)];
    settings.extend_from_slice(store);
    SessionManager::new(Config::from_flask(settings).expect("valid Flask settings"))
        .expect("store opens")
}

/// A Flask response: its JSON body and its `Set-Cookie` header, if any.
struct Reply {
    body: Value,
    set_cookie: Option<String>,
}

impl Shared {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.flask.port())
    }

    /// A request to the Flask app, sending `cookie` (`session=…`) if given.
    fn flask(&self, method: &str, path: &str, cookie: Option<&str>, body: Option<Value>) -> Reply {
        let mut response = match (method, body) {
            ("GET", None) => {
                let mut request = ureq::get(&self.url(path));
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                request.call()
            }
            ("POST", Some(body)) => {
                let mut request =
                    ureq::post(&self.url(path)).header("Content-Type", "application/json");
                if let Some(cookie) = cookie {
                    request = request.header("Cookie", cookie);
                }
                request.send(body.to_string())
            }
            other => panic!("no such request in these tests: {other:?}"),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|value| value.to_str().expect("ASCII header").to_owned());
        let text = response.body_mut().read_to_string().expect("a body");
        Reply {
            body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}")),
            set_cookie,
        }
    }
}

/// The `session=value` pair of a Flask `Set-Cookie` header.
fn pair(set_cookie: &Option<String>) -> String {
    let header = set_cookie.as_deref().expect("Flask set the session cookie");
    header.split(';').next().unwrap().to_owned()
}

fn has_expiry(set_cookie: &str) -> bool {
    let lower = set_cookie.to_ascii_lowercase();
    lower.contains("expires=") || lower.contains("max-age=")
}

fn flask_session_is_read_and_modified_by_rust(shared: Shared) {
    let created = shared.flask(
        "POST",
        "/session",
        None,
        Some(json!({"user": "ann", "visits": 1, "tags": ["a", "b"], "ratio": 0.5})),
    );
    let cookie = pair(&created.set_cookie);

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

    let read = shared.flask("GET", "/session", Some(&cookie), None);
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

    let read = shared.flask("GET", "/session", Some(&cookie), None);
    assert_eq!(
        read.body["data"],
        json!({"_permanent": true, "user": "bob", "cart": [1, 2, 3]}),
        "Flask verified the cookie and decoded the stored value"
    );
    let written = shared.flask(
        "POST",
        "/session",
        Some(&cookie),
        Some(json!({"role": "admin"})),
    );
    assert_eq!(
        pair(&written.set_cookie),
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
    let created = shared.flask("POST", "/session", None, Some(json!({"user": "cy"})));
    let cookie = pair(&created.set_cookie);
    assert!(has_expiry(created.set_cookie.as_deref().unwrap()));
    let turned = shared.flask(
        "POST",
        "/permanent",
        Some(&cookie),
        Some(json!({"permanent": false})),
    );
    assert!(!has_expiry(turned.set_cookie.as_deref().unwrap()));
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_permanent());
    assert_eq!(session.get::<bool>("_permanent").unwrap(), Some(false));
    session.insert("seen_by_rust", true).unwrap();
    let saved: SaveOutcome = shared.manager.save(session).unwrap();
    let header = saved.set_cookie.unwrap();
    assert!(!has_expiry(&header), "a browser-session cookie: {header}");

    // Rust makes it permanent again; Flask sees it and sends an expiring cookie.
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    session.set_permanent(true);
    let header = shared.manager.save(session).unwrap().set_cookie.unwrap();
    assert!(has_expiry(&header), "{header}");
    let read = shared.flask("GET", "/session", Some(&cookie), None);
    assert_eq!(read.body["permanent"], true);
    assert_eq!(read.body["data"]["seen_by_rust"], true);
    assert!(has_expiry(read.set_cookie.as_deref().unwrap()));

    // And not permanent once more, from Rust.
    let mut session = shared.manager.load(Some(&cookie)).unwrap();
    session.set_permanent(false);
    shared.manager.save(session).unwrap();
    let read = shared.flask("GET", "/session", Some(&cookie), None);
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
