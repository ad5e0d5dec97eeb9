//! The demo app (examples/demo.rs) driven over real HTTP with a cookie jar.
//! The test command builds the example first (`cargo build --examples --all-features`).

#![cfg(all(feature = "rouille", feature = "sqlite"))]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use ureq::Agent;

/// A running demo server, killed when dropped.
struct Demo {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join("examples").join("demo");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --examples --all-features` first (scripts/test.sh does)",
        binary.display()
    );
    binary
}

fn start_demo(extra: &[&str]) -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut child = Command::new(demo_binary())
        .args(["--listen", "127.0.0.1:0", "--store", &store])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|a| a.starts_with("http://"))
        .unwrap_or_else(|| panic!("demo did not announce its address: {line:?}"))
        .to_owned();
    Demo {
        child,
        base: address,
        _dir: dir,
    }
}

fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(agent: &Agent, url: &str) -> Value {
    let mut response = agent.get(url).call().unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn post(agent: &Agent, url: &str, form: &[(&str, &str)]) -> Value {
    let mut response = agent.post(url).send_form(form.iter().copied()).unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn session_cookie(agent: &Agent) -> Option<String> {
    let jar = agent.cookie_jar_lock();
    let value = jar
        .iter()
        .find(|c| c.name() == "session")
        .map(|c| c.value().to_owned());
    jar.release();
    value.filter(|v| !v.is_empty())
}

#[test]
fn visits_login_and_logout_over_http() {
    let demo = start_demo(&["--secret", "demo test secret"]);
    let browser = agent();
    let url = |path: &str| format!("{}{path}", demo.base);

    assert_eq!(
        get(&browser, &url("/whoami")),
        json!({"user": null, "visits": 0})
    );
    assert_eq!(
        session_cookie(&browser),
        None,
        "reading an empty session sets no cookie"
    );
    for n in 1..=3 {
        assert_eq!(
            get(&browser, &url("/visit")),
            json!({"user": null, "visits": n})
        );
    }
    let before_login = session_cookie(&browser).expect("a session cookie");
    assert!(before_login.contains('.'), "signed cookie: id.signature");
    assert_eq!(
        get(&browser, &url("/whoami"))["visits"],
        3,
        "whoami changes nothing"
    );

    let me = post(&browser, &url("/login"), &[("user", "ann")]);
    assert_eq!(me, json!({"user": "ann", "visits": 3}));
    let after_login = session_cookie(&browser).unwrap();
    assert_ne!(
        after_login, before_login,
        "login gives the session a new id"
    );
    assert_eq!(
        get(&browser, &url("/visit")),
        json!({"user": "ann", "visits": 4})
    );

    // The old id is dead: a browser replaying it gets a fresh session.
    let mut replay = ureq::get(&url("/whoami"))
        .header("Cookie", &format!("session={before_login}"))
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&replay.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body, json!({"user": null, "visits": 0}));

    assert_eq!(
        post(&browser, &url("/logout"), &[]),
        json!({"user": null, "visits": 0})
    );
    assert_eq!(session_cookie(&browser), None, "logout clears the cookie");
    assert_eq!(
        get(&browser, &url("/whoami")),
        json!({"user": null, "visits": 0})
    );
}

#[test]
fn tampered_cookie_gets_a_fresh_session() {
    let demo = start_demo(&["--secret", "demo test secret"]);
    let browser = agent();
    let url = |path: &str| format!("{}{path}", demo.base);
    post(&browser, &url("/login"), &[("user", "mallory")]);
    let cookie = session_cookie(&browser).unwrap();
    let (id, signature) = cookie.split_once('.').unwrap();
    let mut flipped: Vec<char> = signature.chars().collect();
    flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
    let tampered = [
        format!("{id}.{}", flipped.iter().collect::<String>()),
        id.to_owned(),
        format!("{id}.{signature}x"),
        "../../etc/passwd".to_owned(),
    ];
    for value in tampered {
        let mut response = ureq::get(&url("/whoami"))
            .header("Cookie", &format!("session={value}"))
            .call()
            .unwrap();
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

#[test]
fn concurrent_visits_sharing_one_cookie_all_count() {
    let demo = start_demo(&[
        "--cookie-mode",
        "plain",
        "--cookie-name",
        "sid",
        "--prefix",
        "demo:",
    ]);
    let browser = agent();
    let url = format!("{}/visit", demo.base);
    get(&browser, &url);
    let jar = browser.cookie_jar_lock();
    let cookie = jar
        .iter()
        .find(|c| c.name() == "sid")
        .map(|c| format!("sid={}", c.value()))
        .expect("cookie named by --cookie-name");
    jar.release();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let response = ureq::get(&url).header("Cookie", &cookie).call().unwrap();
                    assert_eq!(response.status(), 200);
                }
            });
        }
    });
    assert_eq!(get(&browser, &url)["visits"], 202);
}

#[test]
fn bad_flags_are_refused() {
    let status = Command::new(demo_binary())
        .args(["--cookie-mode", "rot13"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = Command::new(demo_binary())
        .args(["--cookie-mode", "signed", "--store", "memory://"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "signed mode without a secret is refused"
    );
}
