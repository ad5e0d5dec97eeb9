//! The HTTP contract of the demo servers, driven over real HTTP with a cookie jar: the
//! rouille demo (examples/demo.rs), the C server (ffi/examples/server.c, on libmicrohttpd
//! and the C ABI) and the Python package's example Flask app
//! (bindings/python/examples/app.py, on werkzeug's threaded server) pass the same scenarios
//! on SQLite, Redis and PostgreSQL, give the same answers to the same requests, and share one
//! session when they share a store. The C++ server (ffi/examples/server.cpp, on cpp-httplib
//! and include/sessionstore.hpp) passes the same scenarios and answers alike, on SQLite and
//! on Redis.
//!
//! The test command builds and installs them first: `cargo build --all-features
//! --all-targets` (the demo), `scripts/test-c.sh` (the C server, in `target/ffi/server`) and
//! `python_package` in scripts/lib.sh (the Python package, into the test virtualenv).

#![cfg(all(feature = "capi", feature = "rouille", feature = "sqlite"))]

use crate::common;

use std::process::{Command, Stdio};

use common::web::{
    self, HttpServer, browser, cookie_value, get, get_with_cookie, post, sqlite_store,
};
use serde_json::{Value, json};
use ureq::Agent;

/// Which implementation of the contract.
#[derive(Clone, Copy)]
enum Server {
    Demo,
    C,
    Python,
    Cpp,
}

impl Server {
    /// Starts it on a free port with `store`'s `--store` and `--prefix` and `extra` flags.
    fn start(self, store: &TestStore, extra: &[&str]) -> HttpServer {
        let mut args = vec!["--store", &store.url, "--prefix", &store.prefix];
        args.extend_from_slice(extra);
        match self {
            Server::Demo => web::demo(&args),
            Server::C => web::c_server(&args),
            Server::Python => web::python_app(&args),
            Server::Cpp => web::cpp_server(&args),
        }
    }
}

/// The store of a scenario.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Redis,
    Postgres,
}

/// One test's store: its URL and a key prefix of its own, and the temporary directory of an
/// SQLite file.
struct TestStore {
    url: String,
    prefix: String,
    _dir: tempfile::TempDir,
}

impl Backend {
    /// A fresh SQLite file, or the Redis or PostgreSQL test service.
    fn store(self) -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let url = match self {
            Backend::Sqlite => sqlite_store(&dir, "s.db"),
            Backend::Redis => common::server_url("redis"),
            Backend::Postgres => common::server_url("postgres"),
        };
        TestStore {
            url,
            prefix: common::unique_prefix(),
            _dir: dir,
        }
    }
}

/// The scenarios of one server on one store.
macro_rules! contract_scenarios {
    ($server:expr, $backend:expr) => {
        #[test]
        fn visits_login_and_logout() {
            crate::http_contract::visits_login_and_logout($server, $backend);
        }

        #[test]
        fn tampered_cookies_get_fresh_sessions() {
            crate::http_contract::tampered_cookies_get_fresh_sessions($server, $backend);
        }

        #[test]
        fn devices_listed_and_logged_out_everywhere() {
            crate::http_contract::devices_listed_and_logged_out_everywhere($server, $backend);
        }

        #[test]
        fn concurrent_visits_sharing_one_cookie_all_count() {
            crate::http_contract::concurrent_visits_sharing_one_cookie_all_count($server, $backend);
        }
    };
}

/// The scenarios, run on each server below, on each store.
macro_rules! contract_suite {
    ($name:ident, $server:expr) => {
        mod $name {
            mod sqlite {
                contract_scenarios!($server, crate::http_contract::Backend::Sqlite);
            }

            #[cfg(feature = "redis")]
            mod redis {
                contract_scenarios!($server, crate::http_contract::Backend::Redis);
            }

            #[cfg(feature = "postgres")]
            mod postgres {
                contract_scenarios!($server, crate::http_contract::Backend::Postgres);
            }
        }
    };
}

contract_suite!(demo, crate::http_contract::Server::Demo);
contract_suite!(c_server, crate::http_contract::Server::C);
contract_suite!(python_app, crate::http_contract::Server::Python);
contract_suite!(cpp_server, crate::http_contract::Server::Cpp);

fn visits_login_and_logout(server: Server, backend: Backend) {
    let server = server.start(&backend.store(), &["--secret", "test secret"]);
    let browser = browser();
    let url = |path: &str| server.url(path);

    assert_eq!(
        get(&browser, &url("/whoami")),
        json!({"user": null, "visits": 0})
    );
    assert_eq!(
        cookie_value(&browser, "session"),
        None,
        "reading an empty session sets no cookie"
    );
    for n in 1..=3 {
        assert_eq!(
            get(&browser, &url("/visit")),
            json!({"user": null, "visits": n})
        );
    }
    let before_login = cookie_value(&browser, "session").expect("a session cookie");
    assert!(before_login.contains('.'), "signed cookie: id.signature");
    assert_eq!(
        get(&browser, &url("/whoami"))["visits"],
        3,
        "whoami changes nothing"
    );

    assert_eq!(
        post(&browser, &url("/login"), &[("user", "ann")]),
        json!({"user": "ann", "visits": 3})
    );
    let after_login = cookie_value(&browser, "session").unwrap();
    assert_ne!(
        after_login, before_login,
        "login gives the session a new id"
    );
    assert_eq!(
        get(&browser, &url("/visit")),
        json!({"user": "ann", "visits": 4})
    );

    // The id from before the login is dead: replaying it gets a fresh session.
    assert_eq!(
        get_with_cookie(&url("/whoami"), &format!("session={before_login}")),
        json!({"user": null, "visits": 0})
    );

    assert_eq!(
        post(&browser, &url("/logout"), &[]),
        json!({"user": null, "visits": 0})
    );
    assert_eq!(
        cookie_value(&browser, "session"),
        None,
        "logout clears the cookie"
    );
    assert_eq!(
        get(&browser, &url("/whoami")),
        json!({"user": null, "visits": 0})
    );
}

/// docs/DESIGN.md §9 over HTTP: three devices log in as one user; `/sessions` lists them with
/// the caller's marked; `/logout-all` from one ends the two others and keeps the caller's.
fn devices_listed_and_logged_out_everywhere(server: Server, backend: Backend) {
    let server = server.start(&backend.store(), &["--secret", "test secret"]);
    let url = |path: &str| server.url(path);
    let devices: Vec<Agent> = (0..3).map(|_| browser()).collect();
    assert_eq!(
        get(&devices[0], &url("/sessions")),
        json!({"user": null, "sessions": []})
    );
    for device in &devices {
        post(device, &url("/login"), &[("user", "ann")]);
    }
    let listed = get(&devices[0], &url("/sessions"));
    assert_eq!(listed["user"], "ann");
    let sessions = listed["sessions"].as_array().expect("a list");
    assert_eq!(sessions.len(), 3, "{listed}");
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "{listed}"
    );
    let cookie = cookie_value(&devices[0], "session").unwrap();
    for session in sessions {
        let hint = session["id_hint"].as_str().expect("a hint");
        assert_eq!(hint.len(), 8);
        assert!(!cookie.contains(hint), "the hint is not part of the id");
        assert!(session["expires_at"].as_i64() > session["bound_at"].as_i64());
    }
    assert_eq!(
        post(&devices[0], &url("/logout-all"), &[]),
        json!({"ended": 2})
    );
    for device in &devices[1..] {
        assert_eq!(
            get(device, &url("/whoami")),
            json!({"user": null, "visits": 0})
        );
    }
    assert_eq!(get(&devices[0], &url("/whoami"))["user"], "ann");
    let left = get(&devices[0], &url("/sessions"));
    assert_eq!(left["sessions"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["sessions"][0]["current"], true);
    assert_eq!(
        post(&devices[1], &url("/logout-all"), &[]),
        json!({"ended": 0})
    );
}

fn tampered_cookies_get_fresh_sessions(server: Server, backend: Backend) {
    let server = server.start(&backend.store(), &["--secret", "test secret"]);
    let browser = browser();
    let url = |path: &str| server.url(path);
    post(&browser, &url("/login"), &[("user", "mallory")]);
    let cookie = cookie_value(&browser, "session").unwrap();
    let (id, signature) = cookie.split_once('.').unwrap();
    let mut flipped: Vec<char> = signature.chars().collect();
    flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
    for value in [
        format!("{id}.{}", flipped.iter().collect::<String>()),
        id.to_owned(),
        format!("{id}.{signature}x"),
        "../../etc/passwd".to_owned(),
    ] {
        let mut response = ureq::get(&url("/whoami"))
            .header("Cookie", &format!("session={value}"))
            .call()
            .unwrap();
        let removal = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            removal.contains("Max-Age=0"),
            "{value}: the refused cookie is dropped"
        );
        let body: Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body, json!({"user": null, "visits": 0}), "{value}");
    }
    assert_eq!(
        get(&browser, &url("/whoami"))["user"],
        "mallory",
        "the real cookie still works"
    );
}

/// Clients and visits per client of the concurrent scenario.
const CLIENTS: usize = 8;
const VISITS: usize = 50;

fn concurrent_visits_sharing_one_cookie_all_count(server: Server, backend: Backend) {
    let server = server.start(
        &backend.store(),
        &["--cookie-mode", "plain", "--cookie-name", "sid"],
    );
    let browser = browser();
    let url = server.url("/visit");
    get(&browser, &url);
    let cookie = format!(
        "sid={}",
        cookie_value(&browser, "sid").expect("cookie named by --cookie-name")
    );
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                for _ in 0..VISITS {
                    get_with_cookie(&url, &cookie);
                }
            });
        }
    });
    assert_eq!(get(&browser, &url)["visits"], CLIENTS * VISITS + 2);
}

#[test]
fn flags_are_parsed_alike() {
    let cases: &[&[&str]] = &[
        &["--cookie-mode", "rot13"],
        &["--cookie-mode", "signed", "--store", "memory://"],
        &["--store"],
        &["--bogus", "1"],
        &["--help"],
        &["--store", "nosuchstore://x"],
    ];
    for args in cases {
        let c = Command::new(web::c_server_binary())
            .args(*args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let demo = Command::new(web::demo_binary())
            .args(*args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let python = Command::new(common::flask::python())
            .arg(web::python_app_script())
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(c.code(), Some(2), "{args:?}");
        assert_eq!(c.code(), demo.code(), "{args:?}");
        assert_eq!(
            c.code(),
            python.status.code(),
            "{args:?}: the Python app said {}",
            String::from_utf8_lossy(&python.stderr)
        );
        let cpp = Command::new(web::cpp_server_binary())
            .args(*args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(cpp.code(), demo.code(), "C++ server: {args:?}");
    }
}

/// What a response says, for comparing the servers: status, content type, Vary, body,
/// and the Set-Cookie header without its value and Expires date (both differ by nature).
fn observe(mut response: ureq::http::Response<ureq::Body>) -> Value {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let set_cookie = header("set-cookie").map(|cookie| {
        cookie
            .split("; ")
            .enumerate()
            .map(|(i, part)| match part.split_once('=') {
                Some((name, value)) if i == 0 && value.is_empty() => format!("{name}=<empty>"),
                Some((name, _)) if i == 0 => format!("{name}=<value>"),
                Some(("Expires", _)) => "Expires=<date>".to_owned(),
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
    });
    let content_type = header("content-type");
    let vary = header("vary");
    json!({
        "status": response.status().as_u16(),
        "content-type": content_type,
        "vary": vary,
        "set-cookie": set_cookie,
        "body": response.body_mut().read_to_string().unwrap(),
    })
}

/// One step of a browsing script; each server gets it with its own browser.
enum Step {
    Get(&'static str),
    PostForm(&'static str, &'static [u8]),
    PostTyped(&'static str, &'static str, &'static [u8]),
}

fn play(agent: &Agent, base: &str, step: &Step) -> Value {
    let response = match step {
        Step::Get(path) => agent.get(format!("{base}{path}")).call(),
        Step::PostForm(path, body) => agent
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(*body),
        Step::PostTyped(path, content_type, body) => agent
            .post(format!("{base}{path}"))
            .header("Content-Type", *content_type)
            .send(*body),
    };
    observe(response.unwrap())
}

/// The same answer up to how the JSON body is written (Flask escapes non-ASCII characters
/// and ends the body with a newline) and the content type's parameters (JSON is UTF-8).
fn as_json(mut observed: Value) -> Value {
    let body = observed["body"].as_str().unwrap_or_default().to_owned();
    observed["body"] = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
    };
    if let Some(content_type) = observed["content-type"].as_str() {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        observed["content-type"] = Value::String(media_type);
    }
    observed
}

/// The C server answers byte for byte like the demo; the Python app alike up to how its JSON
/// is written ([`as_json`]).
#[test]
fn answers_exactly_like_the_demo() {
    use Step::*;
    let script = [
        Get("/whoami"),
        Get("/visit"),
        Get("/visit?with=query"),
        Get("/nope"),
        Get("/login"),
        PostForm("/whoami", b""),
        PostForm("/login", b""),
        PostForm("/login", b"user="),
        PostForm("/login", b"name=ann"),
        PostTyped("/login", "text/plain", b"user=ann"),
        PostForm("/login", b"x=1&&user=a%2Bb+c%20d&user=second"),
        Get("/whoami"),
        PostForm("/login", b"user=%E2%9C%93%ff%FEx%e2%82"),
        Get("/visit"),
        PostForm("/login", b"user=%22quote%5Cback%0Aline%09tab%01%7F"),
        PostForm("/login", b"user=a%00b"),
        Get("/whoami"),
        PostForm("/login", b"us%65r=percent-name&user"),
        PostForm("/login", b"user=100%&more=%zz"),
        PostForm("/logout", b""),
        Get("/whoami"),
        PostForm("/logout", b""),
    ];
    let flags = ["--secret", "same answers", "--cookie-name", "sid"];
    let (c_store, demo_store, python_store, cpp_store) = (
        Backend::Sqlite.store(),
        Backend::Sqlite.store(),
        Backend::Sqlite.store(),
        Backend::Sqlite.store(),
    );
    let c = Server::C.start(&c_store, &flags);
    let demo = Server::Demo.start(&demo_store, &flags);
    let python = Server::Python.start(&python_store, &flags);
    let cpp = Server::Cpp.start(&cpp_store, &flags);
    let (c_browser, demo_browser, python_browser) = (browser(), browser(), browser());
    let cpp_browser = browser();
    for step in &script {
        let from_c = play(&c_browser, &c.url(""), step);
        let from_demo = play(&demo_browser, &demo.url(""), step);
        let from_python = play(&python_browser, &python.url(""), step);
        let from_cpp = play(&cpp_browser, &cpp.url(""), step);
        assert_eq!(from_c, from_demo);
        assert_eq!(from_cpp, from_demo, "the C++ server");
        assert_eq!(as_json(from_python), as_json(from_demo));
    }
}

/// The four servers on one store with one secret: one browser, one session.
fn share_one_session(store: &TestStore, extra: &[&str], cookie: &str) {
    let servers =
        [Server::C, Server::Demo, Server::Python, Server::Cpp].map(|s| s.start(store, extra));
    let browser = browser();
    let on = |server: &HttpServer, path: &str| server.url(path);

    // A login on any server is seen by the others.
    assert_eq!(
        post(&browser, &on(&servers[0], "/login"), &[("user", "ann")]),
        json!({"user": "ann", "visits": 0})
    );
    for server in &servers {
        assert_eq!(
            get(&browser, &on(server, "/whoami")),
            json!({"user": "ann", "visits": 0})
        );
    }
    // A visit on any is counted once and seen by all.
    for (visits, server) in (1..).zip(servers.iter().chain(&servers)) {
        assert_eq!(get(&browser, &on(server, "/visit"))["visits"], visits);
        for other in &servers {
            assert_eq!(get(&browser, &on(other, "/whoami"))["visits"], visits);
        }
    }
    assert_eq!(
        post(&browser, &on(&servers[2], "/login"), &[("user", "bob")]),
        json!({"user": "bob", "visits": 2 * servers.len()})
    );
    assert_eq!(get(&browser, &on(&servers[0], "/whoami"))["user"], "bob");
    assert_eq!(get(&browser, &on(&servers[1], "/whoami"))["user"], "bob");

    // Concurrent visits across the servers all count: two clients on each.
    let header = format!(
        "{cookie}={}",
        cookie_value(&browser, cookie).expect("the shared cookie")
    );
    std::thread::scope(|scope| {
        for server in servers.iter().chain(&servers) {
            let url = on(server, "/visit");
            let header = &header;
            scope.spawn(move || {
                for _ in 0..25 {
                    let response = ureq::get(&url).header("Cookie", header).call().unwrap();
                    assert_eq!(response.status(), 200, "{url}");
                }
            });
        }
    });
    for server in &servers {
        assert_eq!(
            get(&browser, &on(server, "/whoami"))["visits"],
            2 * servers.len() * (1 + 25)
        );
    }

    // A logout on one ends the session on all.
    post(&browser, &on(&servers[1], "/logout"), &[]);
    for server in &servers {
        assert_eq!(
            get_with_cookie(&on(server, "/whoami"), &header),
            json!({"user": null, "visits": 0})
        );
    }
}

#[test]
fn demo_c_server_and_python_app_share_a_session_on_one_sqlite_file() {
    share_one_session(
        &Backend::Sqlite.store(),
        &["--secret", "one secret"],
        "session",
    );
}

#[test]
fn demo_c_server_and_python_app_share_a_flask_signed_session() {
    share_one_session(
        &Backend::Sqlite.store(),
        &[
            "--secret",
            "dev-secret",
            "--cookie-mode",
            "flask",
            "--cookie-name",
            "fsid",
        ],
        "fsid",
    );
}

#[cfg(feature = "redis")]
#[test]
fn demo_c_server_and_python_app_share_a_session_on_redis() {
    share_one_session(
        &Backend::Redis.store(),
        &["--secret", "one secret"],
        "session",
    );
}

#[cfg(feature = "postgres")]
#[test]
fn demo_c_server_and_python_app_share_a_session_on_postgres() {
    share_one_session(
        &Backend::Postgres.store(),
        &["--secret", "one secret"],
        "session",
    );
}
