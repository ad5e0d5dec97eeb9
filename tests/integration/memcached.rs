//! Memcached specifics against real servers: the expiry kept in the item flags and the
//! 30-day exptime rule (docs/DESIGN.md §4), keys spread over several servers, and errors, not panics,
//! when a server goes away, with the pool recovering when it is back (docs/DESIGN.md §7).
//!
//! The tests that stop a server or need several run memcached processes of their own on free
//! loopback ports; the others use the shared memcached (127.0.0.1:11211, or
//! SESSIONSTORE_MEMCACHED_URL).

#![cfg(feature = "memcached")]

use crate::common;
use crate::net_servers;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{cookie_pair, request, unique_prefix};
use net_servers::TempServer;
use sessionstore::store::StoreConfig;
use sessionstore::{Config, Error, SessionManager};
use time::OffsetDateTime;

const DAY: u64 = 86400;

fn shared_server() -> String {
    std::env::var("SESSIONSTORE_MEMCACHED_URL")
        .unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned())
}

/// The `host:port` of a `memcache://host:port` URL.
fn address(url: &str) -> String {
    url.trim_start_matches("memcache://")
        .split(['/', '?', ','])
        .next()
        .unwrap()
        .to_owned()
}

fn manager(
    url: &str,
    configure: impl FnOnce(sessionstore::ConfigBuilder) -> sessionstore::ConfigBuilder,
) -> SessionManager {
    let builder = Config::builder_from_url(url)
        .expect("valid URL")
        .secret("test secret")
        .key_prefix(unique_prefix());
    SessionManager::new(configure(builder).build().expect("valid config")).expect("store opens")
}

fn key_of(manager: &SessionManager, cookie: &str) -> String {
    let value = cookie.split_once('=').unwrap().1;
    let id = value.split('.').next().unwrap();
    format!("{}{id}", manager.config().key_prefix)
}

/// Asks memcached itself about `key` (meta protocol `mg <key> f t`): its client flags and
/// remaining TTL in seconds, or `None` on a miss.
fn item_meta(address: &str, key: &str) -> Option<(u32, i64)> {
    let mut stream = TcpStream::connect(address).expect("memcached reachable");
    write!(stream, "mg {key} f t\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    if line.starts_with("EN") {
        return None;
    }
    let mut flags = None;
    let mut ttl = None;
    for token in line.trim_end().split(' ').skip(1) {
        if let Some(value) = token.strip_prefix('f') {
            flags = value.parse().ok();
        } else if let Some(value) = token.strip_prefix('t') {
            ttl = value.parse().ok();
        }
    }
    assert!(line.starts_with("HD"), "mg answered {line:?}");
    Some((flags.expect("flags"), ttl.expect("ttl")))
}

/// Writes `value` with flags 0, as Flask-Session's pymemcache client does.
fn set_as_flask(address: &str, key: &str, value: &[u8], exptime: u64) {
    let mut stream = TcpStream::connect(address).expect("memcached reachable");
    write!(stream, "set {key} 0 {exptime} {}\r\n", value.len()).unwrap();
    stream.write_all(value).unwrap();
    stream.write_all(b"\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    assert_eq!(line, "STORED\r\n");
}

#[test]
fn the_flags_carry_the_expiry_and_long_lifetimes_are_absolute() {
    let url = shared_server();
    for (lifetime, what) in [(DAY, "relative exptime"), (31 * DAY, "absolute exptime")] {
        let manager = manager(&url, |b| b.idle_lifetime(Duration::from_secs(lifetime)));
        let cookie = cookie_pair(&request(&manager, None, |s| s.insert("a", 1).unwrap()));
        let key = key_of(&manager, &cookie);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (flags, ttl) = item_meta(&address(&url), &key).expect(what);
        let lifetime = i64::try_from(lifetime).unwrap();
        // Memcached keeps it for the lifetime: a lifetime over 30 days sent as relative
        // would be taken as a time in January 1970, and the item would be gone already.
        // (Memcached's clock ticks once a second and may lag real time by a few.)
        assert!(
            (lifetime - 2..=lifetime + 5).contains(&ttl),
            "{what}: ttl {ttl}"
        );
        // The flags hold the expiry in Unix seconds, rounded up, and the load reports it.
        assert!(
            (now + lifetime..=now + lifetime + 2).contains(&i64::from(flags)),
            "{what}: flags {flags}"
        );
        let record = manager.store().load(&key).unwrap().unwrap();
        assert_eq!(
            record.expires_at.unix_timestamp(),
            i64::from(flags),
            "{what}"
        );
    }
}

#[test]
fn a_record_written_by_flask_is_renewed_and_converted() {
    let url = shared_server();
    let manager = manager(&url, |b| b.touch_interval(Duration::from_secs(60)));
    let cookie = cookie_pair(&request(&manager, None, |s| s.insert("a", 1).unwrap()));
    let key = key_of(&manager, &cookie);
    let data = manager.store().load(&key).unwrap().unwrap().data;
    set_as_flask(&address(&url), &key, &data, 3600);

    let record = manager.store().load(&key).unwrap().unwrap();
    assert!(
        record.expires_at <= OffsetDateTime::now_utc() + Duration::from_secs(1),
        "no flags: the expiry is unknown and reported due"
    );
    // An unmodified request renews it at once (despite the 60 s interval); the renewal
    // writes the expiry into the flags.
    let outcome = request(&manager, Some(&cookie), |s| {
        assert_eq!(s.get::<i64>("a").unwrap(), Some(1));
    });
    assert!(outcome.set_cookie.is_some(), "renewed: the cookie too");
    let (flags, ttl) = item_meta(&address(&url), &key).unwrap();
    assert!(flags > 0, "converted");
    assert!(ttl > 3600, "the idle lifetime, not Flask's hour");
    let record = manager.store().load(&key).unwrap().unwrap();
    assert_eq!(record.data, data);
    assert!(record.expires_at > OffsetDateTime::now_utc() + Duration::from_secs(30 * DAY));
}

#[test]
fn without_expiry_flags_items_stay_plain_and_each_request_touches() {
    let url = format!("{}?expiry_flags=false", shared_server());
    let manager = manager(&url, |b| b.idle_lifetime(Duration::from_secs(DAY)));
    let cookie = cookie_pair(&request(&manager, None, |s| s.insert("a", 1).unwrap()));
    let key = key_of(&manager, &cookie);
    let (flags, _) = item_meta(&address(&url), &key).unwrap();
    assert_eq!(flags, 0, "bytes, as pylibmc and python-memcached expect");
    // Shorten the item's life behind the store's back; an unmodified request renews it.
    assert!(manager.store().touch(&key, Duration::from_secs(5)).unwrap());
    assert!(item_meta(&address(&url), &key).unwrap().1 <= 5);
    request(&manager, Some(&cookie), |s| {
        s.contains("a");
    });
    let (flags, ttl) = item_meta(&address(&url), &key).unwrap();
    assert_eq!(flags, 0);
    assert!(ttl > DAY as i64 - 5, "renewed to the idle lifetime: {ttl}");
}

#[test]
fn sessions_spread_over_several_servers() {
    let servers = [TempServer::memcached(), TempServer::memcached()];
    let addresses: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let manager = manager(&format!("memcache://{}", addresses.join(",")), |b| b);
    let cookies: Vec<String> = (0..100)
        .map(|n| cookie_pair(&request(&manager, None, |s| s.insert("n", n).unwrap())))
        .collect();
    let mut per_server = [0; 2];
    for cookie in &cookies {
        let key = key_of(&manager, cookie);
        let holders: Vec<usize> = (0..2)
            .filter(|&i| item_meta(&addresses[i], &key).is_some())
            .collect();
        assert_eq!(holders.len(), 1, "{key} stored once");
        per_server[holders[0]] += 1;
    }
    assert!(per_server.iter().all(|&n| n > 0), "{per_server:?}");
    for (n, cookie) in (0..).zip(&cookies) {
        let session = manager.load(Some(cookie)).unwrap();
        assert_eq!(session.get::<i64>("n").unwrap(), Some(n));
    }
}

#[test]
fn server_down_is_an_error_and_the_pool_recovers() {
    net_servers::down_is_an_error_and_the_pool_recovers(TempServer::memcached(), "memcached");
}

#[test]
fn a_restart_while_idle_costs_no_failed_request() {
    net_servers::a_restart_while_idle_costs_no_failed_request(TempServer::memcached());
}

#[test]
fn store_urls_and_flask_settings_name_the_servers() {
    let config = Config::from_url("memcache://10.0.0.1:11211,10.0.0.2?pool_size=2").unwrap();
    let StoreConfig::Memcached(options) = config.store else {
        panic!("{:?}", config.store)
    };
    assert_eq!(options.servers, ["10.0.0.1:11211", "10.0.0.2:11211"]);
    assert_eq!(options.pool_size, 2);

    let config = Config::from_flask([
        ("SESSION_TYPE", "memcached"),
        ("SESSION_MEMCACHED", "10.0.0.1:11211,10.0.0.2:11212"),
    ])
    .unwrap();
    let StoreConfig::Memcached(options) = config.store else {
        panic!("{:?}", config.store)
    };
    assert_eq!(options.servers, ["10.0.0.1:11211", "10.0.0.2:11212"]);
    let default = Config::from_flask([("SESSION_TYPE", "memcached")]).unwrap();
    assert_eq!(
        default.store,
        StoreConfig::Memcached(sessionstore::store::memcached::MemcachedOptions::new([
            "127.0.0.1:11211"
        ]))
    );
    match Config::from_flask([
        ("SESSION_TYPE", "memcached"),
        ("SESSION_MEMCACHED", "10.0.0.1:eleven"),
    ]) {
        Err(Error::Config { key, .. }) => assert_eq!(key, "SESSION_MEMCACHED"),
        other => panic!("accepted: {other:?}"),
    }
}
