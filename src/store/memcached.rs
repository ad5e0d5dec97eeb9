//! Memcached store, one or more servers, shared with Flask-Session's `MemcachedSessionInterface`.
//!
//! A session is the item `key_prefix + id` holding the encoded value, as Flask-Session writes
//! it (`set key value exptime`). An exptime over 30 days (2 592 000 s) is sent as an absolute
//! Unix time, memcached's rule (and Flask-Session's). The store speaks memcached's binary
//! protocol through the `memcache` crate, one r2d2 pool per server:
//!
//! | operation | memcached |
//! |---|---|
//! | load | `get` (value, flags and cas token) |
//! | compare-and-set | `cas` with the token the load saw; on a conflict, a `get` for the merge |
//! | compare-and-delete | `cas` to an already expired item (memcached has no delete-if-cas) |
//! | create | `add` |
//! | set (last-writer-wins) | `set` |
//! | touch | see below |
//! | delete | `delete` |
//!
//! # Expiry
//!
//! Memcached does not report an item's remaining TTL through these protocols, and the
//! [`SessionManager`](crate::SessionManager) uses a record's expiry to renew it at most once
//! per touch interval. So each write stores the expiry (Unix seconds, rounded up) in the
//! item's 32-bit client flags, and a load reads it back: exact, and stable from one load to
//! the next. A touch then has to rewrite the flags, which memcached's `touch` cannot: it is a
//! `get` and a `cas` of the same value with the new expiry. An item whose flags are 0
//! (written by Flask-Session or another client) has an unknown expiry: it is reported due for
//! renewal, so the next unmodified request touches it, which converts it.
//!
//! Python clients read the flags too. Flask-Session with a `pymemcache` client without a
//! serializer (what it builds itself when only pymemcache is installed, or
//! `SESSION_MEMCACHED = pymemcache.client.base.Client(...)` / `HashClient([...])`) ignores
//! them. `pylibmc` and `python-memcached` take non-zero flags as a type marker and refuse the
//! value; to share sessions with those, set `expiry_flags=false`: flags stay 0, every record's
//! expiry is unknown, and each unmodified request renews it with a plain `touch` (which is
//! what Flask-Session does itself, by rewriting the record on every request).
//!
//! # Connections
//!
//! When a connection breaks (the server restarted, say), the server's whole pool is
//! replaced, so that the following calls connect afresh; the call itself is sent again on a
//! fresh connection when that is safe (`get`, `add`, `set`, `touch`, `delete`) and reports the
//! error otherwise (`cas`: the first attempt may have been applied, and merging into it would
//! apply this request's changes twice).
//!
//! # Several servers
//!
//! A key lives on one server, chosen by rendezvous hashing (murmur3 of `"host:port-key"`,
//! highest score wins), as pymemcache's `HashClient` chooses it, so that a Flask app given the
//! same server list finds the same sessions. Memcached drops items with whole-second
//! precision and evicts under memory pressure: a session store on memcached can lose
//! sessions, as with Flask-Session.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use memcache::{Client, CommandError, MemcacheError, Stream, ToMemcacheValue};
use time::OffsetDateTime;

use super::net::{DEFAULT_IO_TIMEOUT, Renewable, renewal_due, url_hosts};
use super::shared::{DEFAULT_CONNECT_TIMEOUT, expiry_after, pool_timeout_message, shown_key};
use super::{CasOutcome, Record, Store, Version};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, parse_bool};

const BACKEND: &str = "memcached";
/// Memcached's default port.
const DEFAULT_PORT: u16 = 11211;
/// Memcached's limit for relative expiry times; larger ones are absolute Unix times.
const RELATIVE_EXPTIME_LIMIT: u64 = 30 * 24 * 3600;
/// An absolute exptime in the past (January 1970): the item expires at once.
const EXPIRED: u32 = RELATIVE_EXPTIME_LIMIT as u32 + 1;

/// Options of the Memcached store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcachedOptions {
    /// The servers, `host:port` (IPv6 hosts in brackets).
    pub servers: Vec<String>,
    /// The most connections each server's pool opens (at least 1).
    pub pool_size: u32,
    /// The time allowed to wait for a pooled connection (opening one included) unless
    /// `pool_timeout` is set: the `memcache` crate opens connections without a timeout of
    /// its own.
    pub connect_timeout: Duration,
    /// The time a call waits for a connection of its server's pool (all in use, or none can
    /// be opened); `None`: `connect_timeout`.
    pub pool_timeout: Option<Duration>,
    /// The time allowed for one reply.
    pub timeout: Duration,
    /// Whether items carry their expiry in their client flags (see the
    /// [module documentation](self)); `false` for sharing with `pylibmc` or `python-memcached`.
    pub expiry_flags: bool,
}

impl MemcachedOptions {
    /// The servers `servers` (`"127.0.0.1:11211"`, ...), 8 pooled connections each, 5 s
    /// timeouts, expiry in the flags.
    pub fn new<I, S>(servers: I) -> MemcachedOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MemcachedOptions {
            servers: servers.into_iter().map(Into::into).collect(),
            pool_size: 8,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_timeout: None,
            timeout: DEFAULT_IO_TIMEOUT,
            expiry_flags: true,
        }
    }

    /// Parses `memcache://host1:11211,host2:11211`, taking the `pool_size`,
    /// `connect_timeout`, `pool_timeout` and `timeout` (seconds) and `expiry_flags` (`true`/`false`)
    /// parameters.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<MemcachedOptions> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                "store URL",
                "memcached authentication is not supported",
            ));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(Error::config(
                "store URL",
                "a memcache:// URL names servers only, no path",
            ));
        }
        let servers = url_hosts(url, params, DEFAULT_PORT, "the memcache URL has no host")?;
        let mut options = MemcachedOptions::new(servers);
        if let Some(size) = params.take_pool_size()? {
            options.pool_size = size;
        }
        if let Some(timeout) = params.take_seconds("connect_timeout")? {
            options.connect_timeout = timeout;
        }
        options.pool_timeout = params.take_seconds("pool_timeout")?;
        if let Some(timeout) = params.take_seconds("timeout")? {
            options.timeout = timeout;
        }
        if let Some(flags) = params.take("expiry_flags") {
            options.expiry_flags = parse_bool("expiry_flags", &flags)?;
        }
        options.validate()?;
        Ok(options)
    }

    /// How long a call waits for a pooled connection.
    fn pool_wait(&self) -> Duration {
        self.pool_timeout.unwrap_or(self.connect_timeout)
    }

    fn validate(&self) -> Result<()> {
        super::shared::check_timeouts(&[
            ("connect_timeout", Some(self.connect_timeout)),
            ("pool_timeout", self.pool_timeout),
            ("timeout", Some(self.timeout)),
        ])?;
        if self.servers.is_empty() {
            return Err(Error::config("servers", "at least one server"));
        }
        for server in &self.servers {
            server_url(server, self.timeout)?;
        }
        if self.pool_size == 0 {
            return Err(Error::config("pool_size", "must be at least 1"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config("connect_timeout", "must be positive"));
        }
        if self.pool_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be positive"));
        }
        Ok(())
    }
}

/// The `memcache` crate's URL for `server` (binary protocol, socket timeouts).
fn server_url(server: &str, timeout: Duration) -> Result<url::Url> {
    let invalid = || {
        Error::config(
            "servers",
            format!("{server:?} is not host:port (IPv6 in brackets)"),
        )
    };
    let url = url::Url::parse(&format!(
        "memcache://{server}?timeout={}",
        timeout.as_secs_f64()
    ))
    .map_err(|_| invalid())?;
    let plain = url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.path().is_empty();
    if plain { Ok(url) } else { Err(invalid()) }
}

/// One server: its name for the key hashing and its client (one pool).
struct Server {
    /// `host:port` as pymemcache names a server (IPv6 without brackets).
    name: String,
    client: Renewable<Client>,
}

/// Sessions in memcached, shared with Flask-Session; see the [module documentation](self).
///
/// ```no_run
/// use sessionstore::store::{Store, memcached::{MemcachedOptions, MemcachedStore}};
/// let store = MemcachedStore::open(&MemcachedOptions::new(["127.0.0.1:11211"]))?;
/// assert!(store.create("session:k", b"\x80", std::time::Duration::from_secs(60))?);
/// assert_eq!(&store.load("session:k")?.unwrap().data[..], b"\x80");
/// # Ok::<(), sessionstore::Error>(())
/// ```
pub struct MemcachedStore {
    servers: Vec<Server>,
    expiry_flags: bool,
    /// How long a call waits for a pooled connection.
    pool_timeout: Duration,
}

impl fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("MemcachedStore")
            .field("servers", &names)
            .field("expiry_flags", &self.expiry_flags)
            .finish()
    }
}

/// A value written with explicit client flags.
#[derive(Clone, Copy)]
struct Item<'a> {
    data: &'a [u8],
    flags: u32,
}

impl ToMemcacheValue<Stream> for Item<'_> {
    fn get_flags(&self) -> u32 {
        self.flags
    }

    fn get_length(&self) -> usize {
        self.data.len()
    }

    fn write_to(&self, stream: &mut Stream) -> io::Result<()> {
        stream.write_all(self.data)
    }
}

/// What one write sends for a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expiry {
    /// Memcached's exptime: seconds, or an absolute Unix time past 30 days.
    exptime: u32,
    /// The client flags: the expiry in Unix seconds (rounded up), or 0.
    flags: u32,
}

/// The item as a `get` returns it.
type Fetched = (Vec<u8>, u32, Option<u64>);

impl MemcachedStore {
    /// Connects to every server (failing at once if one cannot be reached) and sets up the
    /// pools.
    pub fn open(options: &MemcachedOptions) -> Result<MemcachedStore> {
        options.validate()?;
        let mut servers = Vec::with_capacity(options.servers.len());
        for server in &options.servers {
            let url = server_url(server, options.timeout)?;
            let (size, wait) = (options.pool_size, options.pool_wait());
            let make = move || {
                let pool = r2d2::Pool::builder()
                    .max_size(size)
                    .min_idle(Some(0))
                    // A check-out costs no round trip; broken connections are dropped with
                    // the whole client when a call fails (see `run`).
                    .test_on_check_out(false)
                    .connection_timeout(wait)
                    .build_unchecked(memcache::ConnectionManager::new(url.clone()));
                Client::with_pool(pool).expect("with_pool cannot fail")
            };
            let client = Renewable::new(make);
            client
                .get()
                .1
                .version()
                .map_err(|e| Error::store_caused_by(BACKEND, format!("cannot open {server}"), e))?;
            servers.push(Server {
                name: server.replace(['[', ']'], ""),
                client,
            });
        }
        Ok(MemcachedStore {
            servers,
            expiry_flags: options.expiry_flags,
            pool_timeout: options.pool_wait(),
        })
    }

    /// The server that holds `key`: rendezvous hashing as pymemcache's `HashClient`.
    fn server(&self, key: &str) -> &Server {
        let score = |server: &Server| {
            let node_key = format!("{}-{key}", server.name);
            murmur3::murmur3_32(&mut node_key.as_bytes(), 0).unwrap_or(0)
        };
        self.servers
            .iter()
            .max_by(|a, b| score(a).cmp(&score(b)).then_with(|| a.name.cmp(&b.name)))
            .expect("at least one server")
    }

    /// Runs `f` with the client of `key`'s server. When a connection failed (anything but a
    /// command's own answer or the pool's timeout), the client is renewed, and an operation
    /// that is `resend_safe` (running it twice does what running it once does) runs once
    /// more. A pool that hands out no connection within `pool_timeout` is left as it is: its
    /// connections are busy or cannot be opened, and a fresh pool would only open more.
    fn run<T>(
        &self,
        operation: &str,
        key: &str,
        resend_safe: bool,
        f: impl Fn(&Client) -> std::result::Result<T, MemcacheError>,
    ) -> Result<T> {
        let server = self.server(key);
        let attempt = || {
            let (generation, client) = server.client.get();
            f(&client).map_err(|e| {
                let broken = !matches!(
                    e,
                    MemcacheError::CommandError(_)
                        | MemcacheError::ClientError(_)
                        | MemcacheError::PoolError(_)
                );
                if broken {
                    server.client.renew(generation);
                }
                (broken, e)
            })
        };
        let result = match attempt() {
            Err((true, _)) if resend_safe => attempt(),
            other => other,
        };
        result.map_err(|(_, e)| {
            let what = format!("{operation} {} on {}", shown_key(key), server.name);
            match &e {
                MemcacheError::PoolError(cause) => {
                    let message = pool_timeout_message(self.pool_timeout, cause);
                    Error::store_described(BACKEND, format!("{what}: {message}"), e)
                }
                _ => Error::store_caused_by(BACKEND, what, e),
            }
        })
    }

    /// What a write with `ttl` sends; an error when the expiry would not fit memcached's
    /// 32-bit Unix time (past 2106).
    fn expiry(&self, ttl: Duration) -> Result<Expiry> {
        let at = expiry_after(BACKEND, ttl)?;
        let at_seconds = u32::try_from(at.unix_timestamp() + i64::from(at.nanosecond() > 0))
            .map_err(|_| {
                Error::store(
                    BACKEND,
                    format!("lifetime {ttl:?} puts the expiry past memcached's range (2106)"),
                )
            })?;
        let ttl_seconds = ttl
            .as_secs()
            .saturating_add(u64::from(ttl.subsec_nanos() > 0));
        Ok(Expiry {
            exptime: match u32::try_from(ttl_seconds) {
                Ok(seconds) if ttl_seconds <= RELATIVE_EXPTIME_LIMIT => seconds.max(1),
                _ => at_seconds,
            },
            flags: if self.expiry_flags { at_seconds } else { 0 },
        })
    }

    /// The live record in a fetched item, or `None` when its flags say it has expired.
    fn record(&self, key: &str, (data, flags, cas): Fetched) -> Result<Option<Record>> {
        let token = match cas {
            Some(0) | None => {
                return Err(Error::store(
                    BACKEND,
                    format!(
                        "load {}: the server gave no cas token (is it running with -C?); \
                     compare-and-set needs them",
                        shown_key(key)
                    ),
                ));
            }
            Some(token) => token,
        };
        let expires_at = if self.expiry_flags && flags != 0 {
            let at = OffsetDateTime::from_unix_timestamp(i64::from(flags))
                .expect("u32 seconds are a valid time");
            if at <= OffsetDateTime::now_utc() {
                return Ok(None);
            }
            at
        } else {
            renewal_due()
        };
        Ok(Some(Record {
            data: data.into(),
            expires_at,
            version: Version::Token(token),
        }))
    }

    /// The cas token to compare with: the record's own, or for a record that carries only
    /// its bytes, the current item's when its bytes are the same.
    fn token(&self, key: &str, expected: &Record) -> Result<std::result::Result<u64, CasOutcome>> {
        if let Version::Token(token) = expected.version {
            return Ok(Ok(token));
        }
        Ok(match self.load(key)? {
            Some(Record {
                version: Version::Token(token),
                data,
                ..
            }) if data == expected.data => Ok(token),
            current => Err(CasOutcome::Conflict(current)),
        })
    }

    /// `cas` of `item`; on a conflict, the current record for the merge.
    fn cas(
        &self,
        operation: &str,
        key: &str,
        expected: &Record,
        item: Item<'_>,
        exptime: u32,
    ) -> Result<CasOutcome> {
        let token = match self.token(key, expected)? {
            Ok(token) => token,
            Err(conflict) => return Ok(conflict),
        };
        if self.run(operation, key, false, |client| {
            client.cas(key, item, exptime, token)
        })? {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.load(key)?))
        }
    }
}

impl Store for MemcachedStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// Memcached has no command that enumerates keys: always an error saying so.
    fn list_keys(
        &self,
        _prefix: &str,
        _cursor: Option<&str>,
        _limit: usize,
    ) -> Result<super::KeyPage> {
        Err(Error::store(
            BACKEND,
            "memcached cannot list its keys (its protocol has no command that enumerates them): \
             count, list, purge and migrating away need another store",
        ))
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        match self.run("load", key, true, |client| client.get::<Fetched>(key))? {
            Some(fetched) => self.record(key, fetched),
            None => Ok(None),
        }
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let Expiry { exptime, flags } = self.expiry(ttl)?;
        // Sent again, an `add` that was applied finds its own item and reports `false`: the
        // manager then creates under another id, leaving an unused item to expire.
        let added = self.run("create", key, true, |client| {
            match client.add(key, Item { data, flags }, exptime) {
                Err(MemcacheError::CommandError(CommandError::KeyExists)) => Ok(false),
                other => other.map(|()| true),
            }
        })?;
        Ok(added)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let Expiry { exptime, flags } = self.expiry(ttl)?;
        self.cas(
            "compare-and-set",
            key,
            expected,
            Item { data, flags },
            exptime,
        )
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let item = Item {
            data: b"",
            flags: 0,
        };
        self.cas("compare-and-delete", key, expected, item, EXPIRED)
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let Expiry { exptime, flags } = self.expiry(ttl)?;
        self.run("set", key, true, |client| {
            client.set(key, Item { data, flags }, exptime)
        })
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.run("delete", key, true, |client| client.delete(key))?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let Expiry { exptime, flags } = self.expiry(ttl)?;
        if !self.expiry_flags {
            return self.run("touch", key, true, |client| client.touch(key, exptime));
        }
        // The flags carry the expiry: rewrite the same value with the new one.
        let Some(current) = self.load(key)? else {
            return Ok(false);
        };
        let item = Item {
            data: &current.data,
            flags,
        };
        match self.cas("touch", key, &current, item, exptime)? {
            CasOutcome::Stored => Ok(true),
            // Written meanwhile, with a fresh expiry, or gone.
            CasOutcome::Conflict(current) => Ok(current.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::contract::{Purge, store_contract_tests};
    use crate::store::test_support::store_urls::{self, rejected_key};

    fn options_from(text: &str) -> Result<MemcachedOptions> {
        store_urls::options_from(text, MemcachedOptions::from_url)
    }

    /// The store on the shared test server (`SESSIONSTORE_MEMCACHED_URL`, else the test
    /// services' one).
    fn test_server() -> MemcachedStore {
        let url = std::env::var("SESSIONSTORE_MEMCACHED_URL")
            .unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
        let options = options_from(&url).expect("SESSIONSTORE_MEMCACHED_URL");
        MemcachedStore::open(&options).expect("the test memcached server")
    }

    store_contract_tests! {
        mod contract;
        open: test_server(),
        // Memcached expires items in whole seconds.
        short_ttl: Duration::from_secs(1),
        // The expiry in the flags is whole seconds, rounded up.
        precision: Duration::from_secs(1),
        purge: Purge::ServerExpires,
        lists: false,
    }

    #[test]
    fn urls_with_one_or_more_servers() {
        assert_eq!(
            options_from("memcache://127.0.0.1:11211").unwrap(),
            MemcachedOptions::new(["127.0.0.1:11211"])
        );
        assert_eq!(
            options_from("memcache://cache").unwrap().servers,
            ["cache:11211"]
        );
        let options = options_from(
            "memcache://h1:11211,h2:11212,[::1]:11213/?pool_size=2&timeout=0.5&expiry_flags=false",
        )
        .unwrap();
        assert_eq!(options.servers, ["h1:11211", "h2:11212", "[::1]:11213"]);
        assert_eq!(options.pool_size, 2);
        assert_eq!(options.timeout, Duration::from_millis(500));
        assert!(!options.expiry_flags);
        assert_eq!(options.pool_wait(), DEFAULT_CONNECT_TIMEOUT);
        let options = options_from("memcache://h1?connect_timeout=1&pool_timeout=0.25").unwrap();
        assert_eq!(options.pool_timeout, Some(Duration::from_millis(250)));
        assert_eq!(options.pool_wait(), Duration::from_millis(250));
    }

    #[test]
    fn bad_urls_name_the_setting() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("memcache://u:p@h:11211"), "store URL");
        assert_eq!(key_of("memcache://h:11211/db"), "store URL");
        assert_eq!(key_of("memcache://h1:1,h2:x"), "servers");
        assert_eq!(key_of("memcache://h:1?pool_size=0"), "pool_size");
        assert_eq!(key_of("memcache://h:1?expiry_flags=maybe"), "expiry_flags");
        assert_eq!(
            key_of("memcache://h:1?connect_timeout=0"),
            "connect_timeout"
        );
        assert_eq!(key_of("memcache://h:1?pool_timeout=0"), "pool_timeout");
    }

    fn unopened(servers: &[&str], expiry_flags: bool) -> MemcachedStore {
        MemcachedStore {
            servers: servers
                .iter()
                .map(|name| Server {
                    name: (*name).to_owned(),
                    client: Renewable::new(|| {
                        Client::with_pool(r2d2::Pool::builder().build_unchecked(
                            memcache::ConnectionManager::new(
                                url::Url::parse("memcache://127.0.0.1:1").unwrap(),
                            ),
                        ))
                        .unwrap()
                    }),
                })
                .collect(),
            expiry_flags,
            pool_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    #[test]
    fn exptime_follows_the_thirty_day_rule() {
        let store = unopened(&["a:1"], true);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let short = store.expiry(Duration::from_millis(1500)).unwrap();
        assert_eq!(short.exptime, 2, "relative, rounded up");
        assert!((now + 1..=now + 3).contains(&i64::from(short.flags)));
        let thirty = store
            .expiry(Duration::from_secs(RELATIVE_EXPTIME_LIMIT))
            .unwrap();
        assert_eq!(thirty.exptime, 2_592_000, "30 days is still relative");
        let month = store.expiry(Duration::from_secs(31 * 86400)).unwrap();
        assert_eq!(
            month.exptime, month.flags,
            "over 30 days: absolute Unix time"
        );
        assert!(i64::from(month.exptime) >= now + 31 * 86400);
        assert_eq!(
            store.expiry(Duration::ZERO).unwrap().exptime,
            1,
            "never 0 (no expiry)"
        );
        let century = Duration::from_secs(100 * 366 * 86400);
        assert!(store.expiry(century).is_err(), "past 2106");
        let plain = unopened(&["a:1"], false);
        assert_eq!(plain.expiry(Duration::from_secs(60)).unwrap().flags, 0);
    }

    #[test]
    fn keys_go_where_pymemcache_puts_them() {
        // Scores are murmur3_32("host:port-key"), as pymemcache's RendezvousHash computes
        // them: the expected servers were printed by pymemcache 4.0's
        // HashClient([...]).hasher.get_node(key) for these keys.
        let store = unopened(
            &["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"],
            true,
        );
        for (key, server) in [
            ("session:a", "127.0.0.1:11211"),
            ("session:b", "127.0.0.1:11212"),
            ("session:c", "127.0.0.1:11212"),
            ("session:f", "127.0.0.1:11213"),
        ] {
            assert_eq!(store.server(key).name, server, "{key}");
        }
    }

    #[test]
    fn fetched_items_become_records() {
        let store = unopened(&["a:1"], true);
        let future = u32::try_from(OffsetDateTime::now_utc().unix_timestamp() + 60).unwrap();
        let record = store
            .record("k", (b"v".to_vec(), future, Some(7)))
            .unwrap()
            .unwrap();
        assert_eq!(record.version, Version::Token(7));
        assert_eq!(record.expires_at.unix_timestamp(), i64::from(future));
        let past = future - 120;
        assert_eq!(
            store.record("k", (b"v".to_vec(), past, Some(7))).unwrap(),
            None
        );
        let unknown = store
            .record("k", (b"v".to_vec(), 0, Some(7)))
            .unwrap()
            .unwrap();
        assert!(unknown.expires_at <= renewal_due());
        assert!(store.record("k", (b"v".to_vec(), 0, Some(0))).is_err());
    }
}
