//! Redis specifics against real servers: round trips as the server counts them (docs/DESIGN.md §5, §6),
//! a Cluster's sessions spread over its nodes, and errors, not panics, when the server goes
//! away, with the pool recovering when it is back (docs/DESIGN.md §7).
//!
//! The tests that count commands or stop the server run a redis-server of their own on a
//! free loopback port (INFO is server-wide, and the shared servers are never stopped).

#![cfg(feature = "redis")]

use crate::common;
use crate::net_servers;

use std::collections::BTreeMap;

use common::{cookie_pair, harness, request};
use net_servers::TempServer;
use redis::{Connection, Value};
use sessionstore::{Config, Error, SessionManager};

fn manager(url: &str) -> SessionManager {
    SessionManager::new(
        Config::builder_from_url(url)
            .and_then(|builder| builder.secret("test secret").build())
            .expect("valid config"),
    )
    .expect("store opens")
}

fn connect(url: &str) -> Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("a direct connection")
}

/// Calls per command so far, from `INFO commandstats` (`cmdstat_get:calls=3,...`).
fn command_calls(conn: &mut Connection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// The calls made since `before`, leaving out the INFO calls that measure them.
fn calls_since(conn: &mut Connection, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    command_calls(conn)
        .into_iter()
        .filter(|(name, _)| name != "info")
        .map(|(name, calls)| {
            let earlier = before.get(&name).copied().unwrap_or(0);
            (name, calls - earlier)
        })
        .filter(|(_, calls)| *calls > 0)
        .collect()
}

/// How many of `calls` were of commands that Redis flags as writes (`COMMAND INFO`).
fn write_calls(conn: &mut Connection, calls: &BTreeMap<String, u64>) -> u64 {
    calls
        .iter()
        .filter(|(name, _)| {
            let info: Value = redis::cmd("COMMAND")
                .arg("INFO")
                .arg(name.as_str())
                .query(conn)
                .unwrap();
            let Value::Array(commands) = info else {
                panic!("COMMAND INFO {name}: {info:?}")
            };
            let Some(Value::Array(fields)) = commands.first() else {
                panic!("COMMAND INFO {name}: {commands:?}")
            };
            let Some(Value::Array(flags)) = fields.get(2) else {
                panic!("COMMAND INFO {name}: {fields:?}")
            };
            flags
                .iter()
                .any(|flag| matches!(flag, Value::SimpleString(f) if f == "write"))
        })
        .map(|(_, calls)| calls)
        .sum()
}

fn expected(calls: &[(&str, u64)]) -> BTreeMap<String, u64> {
    calls.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
}

#[test]
fn round_trips_as_the_server_counts_them() {
    let server = TempServer::redis();
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    let manager = manager(&url);
    let mut info = connect(&url);
    let cookie = cookie_pair(&request(&manager, None, |s| {
        s.insert("user", "ann").unwrap()
    }));
    // A first modified request puts the compare-and-set script in the server's cache.
    request(&manager, Some(&cookie), |s| {
        s.insert("theme", "light").unwrap()
    });

    let before = command_calls(&mut info);
    request(&manager, Some(&cookie), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
    });
    let unmodified = calls_since(&mut info, &before);
    // One round trip reached the server: GET and PEXPIRETIME, pipelined. Nothing that
    // writes.
    assert_eq!(unmodified, expected(&[("get", 1), ("pexpiretime", 1)]));
    assert_eq!(write_calls(&mut info, &unmodified), 0);

    let before = command_calls(&mut info);
    request(&manager, Some(&cookie), |s| {
        s.insert("theme", "dark").unwrap()
    });
    let modified = calls_since(&mut info, &before);
    // Two round trips: the read (the pipeline) and the compare-and-set (EVALSHA, which
    // runs GET to compare, then one SET).
    assert_eq!(
        modified,
        expected(&[("evalsha", 1), ("get", 2), ("pexpiretime", 1), ("set", 1)])
    );
    assert_eq!(write_calls(&mut info, &modified), 1, "one write: the SET");
}

#[test]
fn a_conflicting_save_merges_without_reading_again() {
    let server = TempServer::redis();
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    let manager = manager(&url);
    let mut info = connect(&url);
    let cookie = cookie_pair(&request(&manager, None, |s| {
        s.insert("user", "ann").unwrap()
    }));
    request(&manager, Some(&cookie), |s| s.insert("warm", true).unwrap());

    let mut slow = manager.load(Some(&cookie)).unwrap();
    request(&manager, Some(&cookie), |s| s.insert("a", 1).unwrap());
    slow.insert("b", 2).unwrap();
    let before = command_calls(&mut info);
    manager.save(slow).unwrap();
    let save = calls_since(&mut info, &before);
    // The first compare-and-set fails and returns the current value and expiry (GET,
    // PEXPIRETIME); the merge is written by the second. No separate read.
    assert_eq!(
        save,
        expected(&[("evalsha", 2), ("get", 2), ("pexpiretime", 1), ("set", 1)])
    );
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(session.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(session.get::<i64>("b").unwrap(), Some(2));
}

/// The keys starting with `prefix` that the node at `url` holds itself.
fn node_keys(url: &str, prefix: &str) -> Vec<String> {
    let mut conn = connect(url);
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

#[test]
fn cluster_spreads_sessions_over_every_node() {
    const SESSIONS: i64 = 300;
    let h = harness("redis_cluster", |b| b);
    let prefix = h.manager.config().key_prefix.clone();
    let cookies: Vec<String> = (0..SESSIONS)
        .map(|n| cookie_pair(&h.request(None, |s| s.insert("n", n).unwrap())))
        .collect();

    let mut held = 0;
    for port in [7001, 7002, 7003] {
        let url = format!("redis://127.0.0.1:{port}/");
        let keys = node_keys(&url, &prefix);
        assert!(
            !keys.is_empty(),
            "node {port} holds none of the {SESSIONS} sessions"
        );
        // Each key is where the Cluster's slot map puts it.
        let mut conn = connect(&url);
        for key in &keys {
            let slot: u64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query(&mut conn)
                .unwrap();
            let here: u64 = redis::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(slot)
                .query(&mut conn)
                .unwrap();
            assert!(here >= 1, "{key} in slot {slot}, not served by {port}");
        }
        held += keys.len();
    }
    assert_eq!(held, SESSIONS as usize, "each session stored once");

    for (n, cookie) in (0..SESSIONS).zip(&cookies) {
        let session = h.manager.load(Some(cookie)).unwrap();
        assert_eq!(session.get::<i64>("n").unwrap(), Some(n));
    }
}

#[test]
fn server_down_is_an_error_and_the_pool_recovers() {
    net_servers::down_is_an_error_and_the_pool_recovers(TempServer::redis(), "redis");
}

#[test]
fn a_restart_while_idle_costs_no_failed_request() {
    net_servers::a_restart_while_idle_costs_no_failed_request(TempServer::redis());
}

fn config_error_key(result: sessionstore::Result<Config>) -> String {
    match result {
        Err(Error::Config { key, .. }) => key,
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn store_urls_and_flask_settings_name_the_servers() {
    use sessionstore::store::StoreConfig;
    let config = Config::from_url("redis+cluster://:pw@h1:7001,h2:7002,h3?timeout=2").unwrap();
    let StoreConfig::Redis(options) = config.store else {
        panic!("{:?}", config.store)
    };
    assert!(options.cluster);
    assert_eq!(
        options.nodes,
        [
            "redis://:pw@h1:7001/0",
            "redis://:pw@h2:7002/0",
            "redis://:pw@h3:6379/0"
        ]
    );
    assert_eq!(options.timeout, std::time::Duration::from_secs(2));
    assert!(
        !format!("{options:?}").contains("pw"),
        "no password in Debug"
    );
    // A host list only where a backend takes one.
    assert_eq!(
        config_error_key(Config::from_url("redis://h1,h2/0")),
        "store URL"
    );
    assert_eq!(
        config_error_key(Config::from_url("memory://h1,h2")),
        "store URL"
    );

    let config = Config::from_flask([
        ("SESSION_TYPE", "redis"),
        ("SESSION_REDIS", "redis://cache:6380/3"),
    ])
    .unwrap();
    let StoreConfig::Redis(options) = config.store else {
        panic!("{:?}", config.store)
    };
    assert_eq!(options.nodes, ["redis://cache:6380/3"]);
    let default = Config::from_flask([("SESSION_TYPE", "redis")]).unwrap();
    assert_eq!(
        default.store,
        StoreConfig::Redis(sessionstore::store::redis::RedisOptions::new(
            "redis://localhost:6379/0"
        ))
    );
    assert_eq!(
        config_error_key(Config::from_flask([
            ("SESSION_TYPE", "redis"),
            ("SESSION_REDIS", "redis://cache/0?pool_size=0"),
        ])),
        "SESSION_REDIS"
    );
}
