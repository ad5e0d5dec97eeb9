//! The HTTP contract of the two demo servers, driven over real HTTP with a cookie jar: the
//! rouille demo (examples/demo.rs) and the C server (ffi/examples/server.c, on libmicrohttpd
//! and the C ABI) pass the same scenarios, give the same answers to the same requests, and
//! share one session when they share a store. The C++ server (ffi/examples/server.cpp, on
//! cpp-httplib and include/sessionstore.hpp) passes the same scenarios and answers alike, on
//! SQLite and on Redis.
//!
//! The test command builds both first: `cargo build --all-features --all-targets` (the demo)
//! and `scripts/test-c.sh` (the C server, in `target/ffi/server`).

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
    Cpp,
}

impl Server {
    /// Starts it on a free port with `--store store` and `extra` flags.
    fn start(self, store: &str, extra: &[&str]) -> HttpServer {
        let mut args = vec!["--store", store];
        args.extend_from_slice(extra);
        match self {
            Server::Demo => web::demo(&args),
            Server::C => web::c_server(&args),
            Server::Cpp => web::cpp_server(&args),
        }
    }
}

/// The scenarios, run on each server below.
macro_rules! contract_suite {
    ($name:ident, $server:expr) => {
        mod $name {
            #[test]
            fn visits_login_and_logout() {
                super::visits_login_and_logout($server);
            }

            #[test]
            fn tampered_cookies_get_fresh_sessions() {
                super::tampered_cookies_get_fresh_sessions($server);
            }

            #[test]
            fn concurrent_visits_sharing_one_cookie_all_count() {
                super::concurrent_visits_sharing_one_cookie_all_count($server);
            }
        }
    };
}

contract_suite!(demo, super::Server::Demo);
contract_suite!(c_server, super::Server::C);
contract_suite!(cpp_server, super::Server::Cpp);

fn visits_login_and_logout(server: Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = server.start(&sqlite_store(&dir, "s.db"), &["--secret", "test secret"]);
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

fn tampered_cookies_get_fresh_sessions(server: Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = server.start(&sqlite_store(&dir, "s.db"), &["--secret", "test secret"]);
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

fn concurrent_visits_sharing_one_cookie_all_count(server: Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = server.start(
        &sqlite_store(&dir, "s.db"),
        &[
            "--cookie-mode",
            "plain",
            "--cookie-name",
            "sid",
            "--prefix",
            "demo:",
        ],
    );
    let browser = browser();
    let url = server.url("/visit");
    get(&browser, &url);
    let cookie = format!(
        "sid={}",
        cookie_value(&browser, "sid").expect("cookie named by --cookie-name")
    );
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    get_with_cookie(&url, &cookie);
                }
            });
        }
    });
    assert_eq!(get(&browser, &url)["visits"], 202);
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
        assert_eq!(c.code(), Some(2), "{args:?}");
        assert_eq!(c.code(), demo.code(), "{args:?}");
        let cpp = Command::new(web::cpp_server_binary())
            .args(*args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(cpp.code(), demo.code(), "C++ server: {args:?}");
    }
}

/// What a response says, for comparing the two servers: status, content type, Vary, body,
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
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--secret", "same answers", "--cookie-name", "sid"];
    let c = Server::C.start(&sqlite_store(&dir, "c.db"), &flags);
    let demo = Server::Demo.start(&sqlite_store(&dir, "demo.db"), &flags);
    let cpp = Server::Cpp.start(&sqlite_store(&dir, "cpp.db"), &flags);
    let (c_browser, demo_browser) = (browser(), browser());
    let cpp_browser = browser();
    for step in &script {
        let from_c = play(&c_browser, &c.url(""), step);
        let from_demo = play(&demo_browser, &demo.url(""), step);
        let from_cpp = play(&cpp_browser, &cpp.url(""), step);
        assert_eq!(from_c, from_demo);
        assert_eq!(from_cpp, from_demo, "the C++ server");
    }
}

/// Both servers on one store with one secret: one browser, one session.
fn share_one_session(store: &str, extra: &[&str], cookie: &str) {
    let c = Server::C.start(store, extra);
    let demo = Server::Demo.start(store, extra);
    let browser = browser();
    let on = |server: &HttpServer, path: &str| server.url(path);

    // A login on the C server is seen by the demo, and the other way round.
    assert_eq!(
        post(&browser, &on(&c, "/login"), &[("user", "ann")]),
        json!({"user": "ann", "visits": 0})
    );
    assert_eq!(
        get(&browser, &on(&demo, "/whoami")),
        json!({"user": "ann", "visits": 0})
    );
    // A visit on either is counted once.
    assert_eq!(get(&browser, &on(&demo, "/visit"))["visits"], 1);
    assert_eq!(get(&browser, &on(&c, "/whoami"))["visits"], 1);
    assert_eq!(get(&browser, &on(&c, "/visit"))["visits"], 2);
    assert_eq!(get(&browser, &on(&demo, "/whoami"))["visits"], 2);
    assert_eq!(
        post(&browser, &on(&demo, "/login"), &[("user", "bob")]),
        json!({"user": "bob", "visits": 2})
    );
    assert_eq!(get(&browser, &on(&c, "/whoami"))["user"], "bob");

    // Concurrent visits across both servers all count.
    let header = format!(
        "{cookie}={}",
        cookie_value(&browser, cookie).expect("the shared cookie")
    );
    std::thread::scope(|scope| {
        for server in [&c, &demo, &c, &demo] {
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
    assert_eq!(get(&browser, &on(&demo, "/whoami"))["visits"], 102);
    assert_eq!(get(&browser, &on(&c, "/whoami"))["visits"], 102);

    // A logout on one ends the session on both.
    post(&browser, &on(&c, "/logout"), &[]);
    assert_eq!(
        get_with_cookie(&on(&demo, "/whoami"), &header),
        json!({"user": null, "visits": 0})
    );
}

#[test]
fn c_server_and_demo_share_a_session_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    share_one_session(
        &sqlite_store(&dir, "shared.db"),
        &["--secret", "one secret"],
        "session",
    );
}

#[test]
fn c_server_and_demo_share_a_flask_signed_session() {
    let dir = tempfile::tempdir().unwrap();
    share_one_session(
        &sqlite_store(&dir, "shared.db"),
        &[
            "--secret",
            "dev-secret",
            "--cookie-mode",
            "flask",
            "--cookie-name",
            "fsid",
            "--prefix",
            "shared:",
        ],
        "fsid",
    );
}

#[cfg(feature = "redis")]
#[test]
fn c_server_and_demo_share_a_session_on_redis() {
    let url = std::env::var("SESSIONSTORE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("c-share-{}-{unique}:", std::process::id());
    share_one_session(
        &url,
        &["--secret", "one secret", "--prefix", &prefix],
        "session",
    );
}

/// A Redis URL and a key prefix of this test's own.
#[cfg(feature = "redis")]
fn redis_store() -> (String, String) {
    let url = std::env::var("SESSIONSTORE_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    (url, common::unique_prefix())
}

/// On Redis: a login and visits, then 8 clients × 50 concurrent visits sharing the cookie
/// (every one counted), then a logout that ends the session.
#[cfg(feature = "redis")]
fn visits_on_redis(server: Server) {
    let (store, prefix) = redis_store();
    let server = server.start(&store, &["--secret", "redis secret", "--prefix", &prefix]);
    let browser = browser();
    let url = |path: &str| server.url(path);
    assert_eq!(
        post(&browser, &url("/login"), &[("user", "ann")]),
        json!({"user": "ann", "visits": 0})
    );
    assert_eq!(get(&browser, &url("/visit"))["visits"], 1);
    let header = format!("session={}", cookie_value(&browser, "session").unwrap());
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..50 {
                    get_with_cookie(&url("/visit"), &header);
                }
            });
        }
    });
    assert_eq!(
        get(&browser, &url("/whoami")),
        json!({"user": "ann", "visits": 401})
    );
    post(&browser, &url("/logout"), &[]);
    assert_eq!(
        get_with_cookie(&url("/whoami"), &header),
        json!({"user": null, "visits": 0})
    );
}

#[cfg(feature = "redis")]
#[test]
fn cpp_server_counts_every_concurrent_visit_on_redis() {
    visits_on_redis(Server::Cpp);
}

#[cfg(feature = "redis")]
#[test]
fn c_server_counts_every_concurrent_visit_on_redis() {
    visits_on_redis(Server::C);
}

/// The C++ server and the C server on one Redis store: one browser, one session.
#[cfg(feature = "redis")]
#[test]
fn cpp_and_c_servers_share_a_session_on_redis() {
    let (store, prefix) = redis_store();
    let flags = ["--secret", "one secret", "--prefix", prefix.as_str()];
    let cpp = Server::Cpp.start(&store, &flags);
    let c = Server::C.start(&store, &flags);
    let browser = browser();
    assert_eq!(
        post(&browser, &cpp.url("/login"), &[("user", "ann")]),
        json!({"user": "ann", "visits": 0})
    );
    assert_eq!(get(&browser, &c.url("/visit"))["visits"], 1);
    assert_eq!(get(&browser, &cpp.url("/visit"))["visits"], 2);
    assert_eq!(
        get(&browser, &c.url("/whoami")),
        json!({"user": "ann", "visits": 2})
    );
    post(&browser, &c.url("/logout"), &[]);
    assert_eq!(
        get(&browser, &cpp.url("/whoami")),
        json!({"user": null, "visits": 0})
    );
}
