//! Pool checkout timeout (`pool_timeout` in every pooled store's URL), one test per store:
//! a store opened with one pooled connection, whose connection a request holds (its save
//! waits on a lock another client of the database took, or on a paused server), answers the
//! next request with an `Error::Store` naming the store and `pool_timeout`, after about that
//! long; the save that was refused wrote nothing, and everything works again once the
//! connection is free.
//!
//! How the connection is held, per store: SQLite, an `IMMEDIATE` transaction of another
//! connection to the file (the held save waits in SQLite's busy timeout); PostgreSQL, a
//! `LOCK TABLE … IN EXCLUSIVE MODE` of another session; MariaDB, `SELECT … FOR UPDATE` in
//! another session's transaction; Redis (one server or a Cluster), `CLIENT PAUSE … WRITE`
//! on a private server; memcached and MongoDB (SecantusDB), which have no such command, a
//! private server frozen with SIGSTOP until the test lets it go on.

// `pooled_store`: any store feature with a connection pool (set by build.rs).
#![cfg(pooled_store)]

use crate::common;
#[cfg(any(feature = "mongodb", feature = "redis", feature = "memcached"))]
use crate::net_servers;

use std::thread;
use std::time::{Duration, Instant};

use sessionstore::{Config, Error, SaveOutcome, SessionManager};

/// The pool timeout the tests configure (`pool_timeout=0.5`).
const POOL_TIMEOUT: Duration = Duration::from_millis(500);
/// How much later than `POOL_TIMEOUT` a refusal may come and still be "about that long".
const SLACK: Duration = Duration::from_millis(1500);

fn manager(url: &str) -> SessionManager {
    SessionManager::new(
        Config::builder_from_url(url)
            .and_then(|builder| {
                builder
                    .secret("pool timeout")
                    .key_prefix(common::unique_prefix())
                    .build()
            })
            .expect("valid config"),
    )
    .expect("the store opens")
}

fn cookie_of(outcome: &SaveOutcome) -> String {
    let header = outcome.set_cookie.as_deref().expect("a Set-Cookie header");
    header.split(';').next().expect("name=value").to_owned()
}

/// A new session holding `v`; returns its cookie.
fn saved(manager: &SessionManager, v: &str) -> String {
    let mut session = manager.load(None).unwrap();
    session.insert("v", v).unwrap();
    cookie_of(&manager.save(session).unwrap())
}

fn value_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    manager
        .load(Some(cookie))
        .expect("load")
        .get::<String>("v")
        .unwrap()
}

/// Checks that `result` is a pool timeout of `backend` that came after about
/// `POOL_TIMEOUT`.
fn assert_pool_timeout<T: std::fmt::Debug>(
    result: sessionstore::Result<T>,
    took: Duration,
    backend: &str,
    what: &str,
) {
    match &result {
        Err(
            error @ Error::Store {
                backend: named,
                message,
            },
        ) => {
            println!("{backend} {what}: refused after {took:?}: {error}");
            assert_eq!(*named, backend, "{what}: {error}");
            assert!(
                message.contains("pool_timeout 500ms"),
                "{what}: the message names the timeout: {error}"
            );
            assert!(
                error.to_string().starts_with(&format!("{backend} store: ")),
                "{what}: {error}"
            );
        }
        other => panic!("{what}: expected a {backend} pool timeout, got {other:?}"),
    }
    assert!(
        took >= POOL_TIMEOUT.mul_f64(0.9) && took <= POOL_TIMEOUT + SLACK,
        "{what}: refused after {took:?}, configured {POOL_TIMEOUT:?}"
    );
}

/// Exhausts `manager`'s one-connection pool: `hold` makes the database keep a save waiting
/// and returns what lets it go on. Asserts the refusals and that nothing was lost.
fn exhaust_pool<R: FnOnce()>(manager: &SessionManager, backend: &str, hold: impl FnOnce() -> R) {
    let kept = saved(manager, "before");
    let held = saved(manager, "held 0");
    let mut refused = manager.load(Some(&kept)).unwrap();
    refused.insert("v", "refused").unwrap();
    let mut waiting = manager.load(Some(&held)).unwrap();
    waiting.insert("v", "held 1").unwrap();

    let release = hold();
    thread::scope(|scope| {
        // This save takes the pool's only connection and waits on the database.
        let holder = scope.spawn(|| manager.save(waiting));
        thread::sleep(Duration::from_millis(300));
        if holder.is_finished() {
            let result = holder.join().expect("no panic");
            panic!("the held save did not wait for the held database: {result:?}");
        }

        let started = Instant::now();
        let result = manager.save(refused);
        assert_pool_timeout(result, started.elapsed(), backend, "save");
        let started = Instant::now();
        let result = manager.load(Some(&kept));
        assert_pool_timeout(result, started.elapsed(), backend, "load");

        release();
        holder
            .join()
            .expect("no panic")
            .expect("the held save completes once let go");
    });
    assert_eq!(
        value_of(manager, &kept).as_deref(),
        Some("before"),
        "the refused save wrote nothing"
    );
    assert_eq!(value_of(manager, &held).as_deref(), Some("held 1"));
    assert_eq!(
        value_of(manager, &saved(manager, "after")).as_deref(),
        Some("after")
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_pool_timeout_is_a_store_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let manager = manager(&format!(
        "sqlite://{}?pool_size=1&pool_timeout=0.5&busy_timeout=10",
        path.display()
    ));
    exhaust_pool(&manager, "sqlite", || {
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        move || other.execute_batch("ROLLBACK").unwrap()
    });
}

/// A table of its own on the shared test server of `var` (default `default`).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn sql_server(var: &str, default: &str) -> (String, String) {
    let server = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let table = format!(
        "pool_timeout_{}",
        common::unique_prefix()
            .trim_start_matches("test-")
            .trim_end_matches(':')
            .replace('-', "_")
            .to_ascii_lowercase()
    );
    (server, table)
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_pool_timeout_is_a_store_error() {
    let (server, table) = sql_server(
        "SESSIONSTORE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let manager = manager(&format!(
        "{server}?table={table}&pool_size=1&pool_timeout=0.5"
    ));
    let connect = || postgres::Client::connect(&server, postgres::NoTls).unwrap();
    exhaust_pool(&manager, "postgres", || {
        let mut other = connect();
        other
            .batch_execute(&format!("BEGIN; LOCK TABLE \"{table}\" IN EXCLUSIVE MODE"))
            .unwrap();
        move || other.batch_execute("ROLLBACK").unwrap()
    });
    drop(manager);
    connect()
        .batch_execute(&format!("DROP TABLE \"{table}\""))
        .unwrap();
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_pool_timeout_is_a_store_error() {
    use mysql::prelude::Queryable;

    let (server, table) = sql_server("SESSIONSTORE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let manager = manager(&format!(
        "{server}?table={table}&pool_size=1&pool_timeout=0.5"
    ));
    let connect = || mysql::Conn::new(mysql::Opts::from_url(&server).unwrap()).unwrap();
    exhaust_pool(&manager, "mysql", || {
        let mut other = connect();
        other.query_drop("START TRANSACTION").unwrap();
        other
            .query_drop(format!("SELECT * FROM `{table}` FOR UPDATE"))
            .unwrap();
        move || other.query_drop("ROLLBACK").unwrap()
    });
    drop(manager);
    connect()
        .query_drop(format!("DROP TABLE `{table}`"))
        .unwrap();
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_pool_timeout_is_a_store_error() {
    let server = net_servers::TempServer::mongodb();
    let manager = manager(&format!(
        "{}?maxPoolSize=1&pool_timeout=0.5&retryWrites=false",
        server.url()
    ));
    // The server stays here: the closures only borrow it.
    let server = &server;
    exhaust_pool(&manager, "mongodb", move || {
        server.pause();
        move || server.resume()
    });
}

/// Pauses every write of the Redis server at `port` (`CLIENT PAUSE … WRITE`); the returned
/// connection lifts it with `CLIENT UNPAUSE`.
#[cfg(feature = "redis")]
fn pause_writes(port: u16) -> redis::Connection {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(10_000)
        .arg("WRITE")
        .exec(&mut conn)
        .unwrap();
    conn
}

#[cfg(feature = "redis")]
fn unpause(conn: &mut redis::Connection) {
    redis::cmd("CLIENT").arg("UNPAUSE").exec(conn).unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_pool_timeout_is_a_store_error() {
    let server = net_servers::TempServer::redis();
    let manager = manager(&format!("{}?pool_size=1&pool_timeout=0.5", server.url()));
    exhaust_pool(&manager, "redis", || {
        let mut conn = pause_writes(server.port());
        move || unpause(&mut conn)
    });
}

#[cfg(feature = "redis")]
#[test]
fn redis_cluster_pool_timeout_is_a_store_error() {
    let mut cluster = net_servers::TempCluster::start();
    let manager = manager(&format!("{}?pool_size=1&pool_timeout=0.5", cluster.url()));
    let ports: Vec<u16> = (0..3).map(|n| cluster.node(n).port()).collect();
    exhaust_pool(&manager, "redis", || {
        let mut conns: Vec<redis::Connection> =
            ports.iter().map(|port| pause_writes(*port)).collect();
        move || conns.iter_mut().for_each(unpause)
    });
}

#[cfg(feature = "memcached")]
#[test]
fn memcached_pool_timeout_is_a_store_error() {
    let server = net_servers::TempServer::memcached();
    let manager = manager(&format!(
        "{}?pool_size=1&pool_timeout=0.5&timeout=10",
        server.url()
    ));
    // The server stays here: the closures only borrow it.
    let server = &server;
    exhaust_pool(&manager, "memcached", move || {
        server.pause();
        move || server.resume()
    });
}
