//! The `sessionstore` command on every store: count, list, show, delete, purge and check on
//! sessions the library wrote; migrations of 10,000 sessions that still load through the
//! library at the destination, run again (nothing copied) and interrupted half way.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sessionstore::{Config, SessionManager};

use super::common::{cookie_pair, request, server_url, unique_prefix};

const SECRET: &str = "cli test secret";
/// Sessions each migration test moves.
const MIGRATED: usize = 10_000;

/// The command with `args`, `url` as `SESSIONSTORE_URL` when given.
fn run(url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionstore"));
    command
        .args(args)
        .env_remove("SESSIONSTORE_URL")
        .env_remove("SESSIONSTORE_SECRET");
    if let Some(url) = url {
        command.env("SESSIONSTORE_URL", url);
    }
    command.output().expect("the sessionstore binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the command and expects it to succeed; returns its standard output.
fn ok(url: Option<&str>, args: &[&str]) -> String {
    let output = run(url, args);
    assert!(
        output.status.success(),
        "sessionstore {args:?}: {:?}\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

/// A manager on `url`, signing with [`SECRET`].
fn manager(url: &str) -> SessionManager {
    let config = Config::builder_from_url(url)
        .and_then(|builder| builder.secret(SECRET).build())
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    SessionManager::new(config).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// `url` with the query parameters `params` added.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

/// A store URL of `backend` for one test: its own prefix, table, collection or directory.
fn test_url(backend: &str, dir: &std::path::Path) -> String {
    let prefix = format!("prefix={}", unique_prefix());
    let table = format!(
        "cli_{}",
        &unique_prefix()[5..17]
            .to_ascii_lowercase()
            .replace(['-', '_'], "x")
    );
    match backend {
        "filesystem" => format!("file://{}/sessions?threshold=20000&{prefix}", dir.display()),
        "sqlite" => format!("sqlite://{}/sessions.db?{prefix}", dir.display()),
        "postgres" | "mysql" => with_params(
            &server_url(backend).replace("table=sessionstore_tests", &format!("table={table}")),
            &prefix,
        ),
        "mongodb" => with_params(
            &server_url(backend).replace("collection=sessions", &format!("collection={table}")),
            &prefix,
        ),
        _ => with_params(&server_url(backend), &prefix),
    }
}

/// Stores a session holding `user` and `n` through the library; returns its cookie pair.
fn new_session(manager: &SessionManager, user: &str, n: i64) -> String {
    cookie_pair(&request(manager, None, |session| {
        session.insert("user", user).unwrap();
        session.insert("n", n).unwrap();
    }))
}

/// [`new_session`], bound to `user` as its owner: the store then also holds the owner's
/// index record, which `count` and `list` skip.
fn new_bound_session(manager: &SessionManager, user: &str, n: i64) -> String {
    cookie_pair(&request(manager, None, |session| {
        session.insert("user", user).unwrap();
        session.insert("n", n).unwrap();
        session.set_owner(user).unwrap();
    }))
}

/// count, list, show, delete, purge and check on `backend`, on sessions the library wrote.
fn inspect_and_act(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url(backend, dir.path());
    let url = url.as_str();
    let library = manager(url);
    let cookies: Vec<String> = (0..3)
        .map(|n| new_bound_session(&library, "ann", n))
        .collect();
    let ids: BTreeSet<String> = cookies
        .iter()
        .map(|cookie| cookie.split(['=', '.']).nth(1).unwrap().to_owned())
        .collect();
    // One more, with a lifetime of one second, to expire.
    let short = manager(&with_params(url, "lifetime=1"));
    let expiring = new_session(&short, "bob", 9);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !short.load(Some(&expiring)).unwrap().is_new() {
        assert!(
            Instant::now() < deadline,
            "the one-second session never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_eq!(ok(Some(url), &["count"]).trim(), "3");
    let listed: BTreeSet<String> = ok(Some(url), &["list"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(ok(Some(url), &["list", "--limit", "2"]).lines().count(), 2);

    // show, by id (no secret: not checked) and by signed cookie (checked).
    let id = ids.iter().next().unwrap();
    let shown: serde_json::Value = serde_json::from_str(&ok(Some(url), &["show", id])).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["data"]["user"], "ann");
    let ttl = shown["ttl_seconds"].as_i64().unwrap();
    assert!((31 * 86_400 - 60..=31 * 86_400).contains(&ttl), "{ttl}");
    let cookie = cookies
        .iter()
        .find(|cookie| cookie.contains(id.as_str()))
        .unwrap();
    let signed = ok(Some(url), &["--secret", SECRET, "show", cookie]);
    let signed: serde_json::Value = serde_json::from_str(&signed).unwrap();
    assert_eq!(signed["data"], shown["data"]);
    let forged = run(Some(url), &["--secret", "another secret", "show", cookie]);
    assert_eq!(forged.status.code(), Some(4), "{}", stderr(&forged));
    assert!(!stderr(&forged).contains("another secret"));

    // delete, then the session is gone for the command and the library.
    assert_eq!(
        ok(Some(url), &["delete", id]).trim(),
        format!("deleted {id}")
    );
    assert_eq!(run(Some(url), &["show", id]).status.code(), Some(3));
    assert_eq!(run(Some(url), &["delete", id]).status.code(), Some(3));
    assert!(library.load(Some(cookie)).unwrap().is_new());
    assert_eq!(ok(Some(url), &["count"]).trim(), "2");

    // purge: the expired record goes where the store keeps it; the live ones stay.
    let purged = ok(Some(url), &["purge"]);
    let expected = match backend {
        "redis" | "redis_cluster" => "purged 0 expired records; 2 live sessions remain",
        "mongodb" => "",
        _ => "purged 1 expired records; 2 live sessions remain",
    };
    if backend == "mongodb" {
        // The server's TTL monitor may have removed it first.
        assert!(
            purged
                .trim()
                .ends_with("expired records; 2 live sessions remain"),
            "{purged}"
        );
    } else {
        assert_eq!(purged.trim(), expected);
    }
    assert!(ok(Some(url), &["check"]).starts_with("ok: "));
}

/// Session ids are base64url, so one in 64 starts with `-`: `show` and `delete` take it
/// as the id it is, not as an option.
#[test]
fn ids_starting_with_a_hyphen_are_ids() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url("sqlite", dir.path());
    let library = manager(&url);
    let (cookie, id) = (0..2_000)
        .map(|n| {
            let cookie = new_session(&library, "ann", n);
            let id = cookie.split(['=', '.']).nth(1).unwrap().to_owned();
            (cookie, id)
        })
        .find(|(_, id)| id.starts_with('-'))
        .expect("one id in 64 starts with '-'");
    let shown: serde_json::Value = serde_json::from_str(&ok(Some(&url), &["show", &id])).unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        ok(Some(&url), &["delete", &id]).trim(),
        format!("deleted {id}")
    );
    assert!(library.load(Some(&cookie)).unwrap().is_new());
}

#[test]
fn filesystem_inspect_and_act() {
    inspect_and_act("filesystem");
}

#[test]
fn sqlite_inspect_and_act() {
    inspect_and_act("sqlite");
}

#[test]
fn postgres_inspect_and_act() {
    inspect_and_act("postgres");
}

#[test]
fn mysql_inspect_and_act() {
    inspect_and_act("mysql");
}

#[test]
fn mongodb_inspect_and_act() {
    inspect_and_act("mongodb");
}

#[test]
fn redis_inspect_and_act() {
    inspect_and_act("redis");
}

#[test]
fn redis_cluster_inspect_and_act() {
    inspect_and_act("redis_cluster");
}

/// Memcached cannot list its keys and says so (a store failure, exit 1); show, delete and
/// check work.
#[test]
fn memcached_cannot_list_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_url("memcached", dir.path());
    let library = manager(&url);
    let cookie = new_session(&library, "ann", 1);
    let id = cookie.split(['=', '.']).nth(1).unwrap();
    for command in ["count", "list", "purge"] {
        let output = run(Some(&url), &[command]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert!(
            stderr(&output).contains("memcached store: memcached cannot list its keys"),
            "{command}: {}",
            stderr(&output)
        );
    }
    let shown: serde_json::Value = serde_json::from_str(&ok(Some(&url), &["show", id])).unwrap();
    assert_eq!(shown["data"]["n"], 1);
    ok(Some(&url), &["delete", id]);
    assert!(library.load(Some(&cookie)).unwrap().is_new());
    assert!(ok(Some(&url), &["check"]).starts_with("ok: memcached store"));
}

/// Exit codes and messages of a missing URL, a bad URL and an unreachable store; a password
/// in the URL is never printed.
#[test]
fn errors_name_the_store_and_hide_secrets() {
    let missing = run(None, &["count"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("SESSIONSTORE_URL"));
    let bad = run(Some("nosuch://x"), &["count"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let port = super::net_servers::free_port();
    let unreachable = format!("redis://:hunter2@127.0.0.1:{port}/0?connect_timeout=1");
    let down = run(None, &["check", &unreachable]);
    assert_eq!(down.status.code(), Some(1));
    let message = stderr(&down);
    assert!(message.contains("redis store"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    let secret = run(
        Some("memory://"),
        &["--secret", "topsecret", "show", "nosuchid"],
    );
    assert!(!stderr(&secret).contains("topsecret"));
}

/// A session the tests moved: its cookie, and about when it expires.
struct Seeded {
    cookie: String,
    expires_at: time::OffsetDateTime,
}

/// Stores [`MIGRATED`] sessions through the library on `url` (in parallel; SQLite writes
/// one at a time).
fn seed(url: &str) -> Vec<Seeded> {
    let library = manager(url);
    let threads = if url.starts_with("sqlite:") { 1 } else { 8 };
    let lifetime = time::Duration::try_from(sessionstore::DEFAULT_LIFETIME).unwrap();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let library = &library;
                scope.spawn(move || {
                    (t..MIGRATED)
                        .step_by(threads)
                        .map(|n| Seeded {
                            cookie: new_session(library, &format!("user{n}"), n as i64),
                            expires_at: time::OffsetDateTime::now_utc() + lifetime,
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// Every session of `seeded` loads through the library on `to` with its data, and with
/// the expiry it had, to the second.
fn all_load_at(to: &str, seeded: &[Seeded]) {
    let destination = manager(to);
    std::thread::scope(|scope| {
        for part in seeded.chunks(seeded.len().div_ceil(8)) {
            let destination = &destination;
            scope.spawn(move || {
                for Seeded { cookie, expires_at } in part {
                    let session = destination.load(Some(cookie)).unwrap();
                    assert!(!session.is_new(), "{cookie} did not move");
                    let n: i64 = session.get("n").unwrap().unwrap();
                    assert_eq!(
                        session.get::<String>("user").unwrap().unwrap(),
                        format!("user{n}")
                    );
                    let key = destination.store_key(session.id());
                    let moved = destination.store().load(&key).unwrap().unwrap();
                    let apart = (moved.expires_at - *expires_at).abs();
                    assert!(
                        apart < time::Duration::SECOND,
                        "{cookie}: expiry {apart} apart"
                    );
                }
            });
        }
    });
}

/// The counts of a migration's summary line: (copied, already there).
fn summary_counts(output: &str) -> (usize, usize) {
    let line = output
        .lines()
        .find(|line| line.starts_with("migrated "))
        .expect("a summary");
    let count = |what: &str| -> usize {
        let at = line
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {line}"));
        line[..at]
            .rsplit([' ', ','])
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (count(" copied"), count(" already there"))
}

/// Migrates [`MIGRATED`] sessions `from` → `to`, checks they all load at the destination,
/// then that a second run copies nothing.
fn migrate_all(from: &str, to: &str) {
    let started = Instant::now();
    let seeded = seed(from);
    let seeding = started.elapsed();
    let started = Instant::now();
    let first = ok(None, &["migrate", "--from", from, "--to", to]);
    let migrated = started.elapsed();
    assert_eq!(summary_counts(&first), (MIGRATED, 0), "{first}");
    let started = Instant::now();
    all_load_at(to, &seeded);
    let checked = started.elapsed();
    let started = Instant::now();
    let second = ok(None, &["migrate", "--from", from, "--to", to]);
    assert_eq!(summary_counts(&second), (0, MIGRATED), "{second}");
    eprintln!(
        "{MIGRATED} sessions seeded in {seeding:?}, migrated in {migrated:?}, checked in \
         {checked:?}, migrated again in {:?}",
        started.elapsed()
    );
}

#[test]
fn migrate_sqlite_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    migrate_all(
        &test_url("sqlite", dir.path()),
        &test_url("postgres", dir.path()),
    );
}

#[test]
fn migrate_redis_to_redis_cluster() {
    let dir = tempfile::tempdir().unwrap();
    migrate_all(
        &test_url("redis", dir.path()),
        &test_url("redis_cluster", dir.path()),
    );
}

#[test]
fn migrate_filesystem_to_redis() {
    let dir = tempfile::tempdir().unwrap();
    migrate_all(
        &test_url("filesystem", dir.path()),
        &test_url("redis", dir.path()),
    );
}

/// A migration killed half way finishes when run again, copying only what was left.
#[test]
fn an_interrupted_migration_finishes_on_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (
        test_url("sqlite", dir.path()),
        test_url("redis", dir.path()),
    );
    let started = Instant::now();
    let seeded = seed(&from);
    eprintln!("seeded in {:?}", started.elapsed());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionstore"))
        .args(["migrate", "--jobs", "2", "--from", &from, "--to", &to])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let progress = BufReader::new(child.stderr.take().unwrap());
    for line in progress.lines() {
        let line = line.unwrap();
        let done: usize = line
            .strip_prefix("progress: ")
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if done >= MIGRATED / 2 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let moved = manager(&to);
    let copied = seeded
        .iter()
        .filter(|seeded| !moved.load(Some(&seeded.cookie)).unwrap().is_new())
        .count();
    assert!(
        (MIGRATED / 2..MIGRATED).contains(&copied),
        "killed after copying {copied}"
    );
    let rerun = ok(None, &["migrate", "--from", &from, "--to", &to]);
    assert_eq!(
        summary_counts(&rerun),
        (MIGRATED - copied, copied),
        "{rerun}"
    );
    all_load_at(&to, &seeded);
}
