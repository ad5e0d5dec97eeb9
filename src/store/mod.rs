//! One store trait, one implementation per backend.
//!
//! A store knows keys and bytes, nothing about cookies or session semantics. The
//! [`SessionManager`](crate::SessionManager) builds the request lifecycle and the
//! no-lost-update saves on top of these few operations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};

#[cfg(feature = "filesystem")]
pub mod file;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(any(feature = "redis", feature = "memcached"))]
mod net;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(all(
    test,
    any(
        feature = "memory",
        feature = "filesystem",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb",
        feature = "redis",
        feature = "memcached"
    )
))]
mod test_support;

/// A stored session as one load returned it: its bytes, when it expires, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The encoded session data.
    pub data: Vec<u8>,
    /// When the store will drop it (UTC).
    pub expires_at: OffsetDateTime,
    /// The version the compare-and-set checks. Stores that compare the bytes themselves use
    /// [`Version::Data`]; stores with a server-side token (memcached's cas) carry it here.
    pub version: Version,
}

/// What a compare-and-set compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The stored bytes are the version.
    Data,
    /// A token handed out by the store.
    Token(u64),
}

impl Record {
    /// A record whose version is its own bytes.
    pub fn new(data: Vec<u8>, expires_at: OffsetDateTime) -> Record {
        Record {
            data,
            expires_at,
            version: Version::Data,
        }
    }

    /// Whether the record is past its expiry at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

/// The result of a compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record still had the expected version; the new value is stored (or, for
    /// [`Store::compare_and_delete`], the record is deleted).
    Stored,
    /// The record changed since it was loaded. Carries its current state: `Some` with the
    /// fresher record to merge into, `None` if it was deleted or expired meanwhile.
    Conflict(Option<Record>),
}

/// A session backend. Implementations are shared by all request threads.
///
/// Every method is one round trip in the common case. `ttl` is the idle lifetime to apply
/// from now on.
pub trait Store: Send + Sync {
    /// Short backend name used in errors and logs (`"sqlite"`, `"redis"`, ...).
    fn backend(&self) -> &'static str;

    /// Reads a live record: value, expiry and version together. Expired records are `None`.
    fn load(&self, key: &str) -> Result<Option<Record>>;

    /// Stores a new record unless a live one exists under `key`. Returns whether it stored.
    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool>;

    /// Replaces the record only if it is still at `expected`'s version.
    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome>;

    /// Deletes the record only if it is still at `expected`'s version, atomically (a save
    /// that empties a session must not delete what a concurrent request wrote meanwhile).
    /// `Stored` means deleted; `Conflict` carries the current state as for
    /// [`compare_and_set`](Store::compare_and_set).
    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome>;

    /// Unconditional write (the last-writer-wins mode).
    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()>;

    /// Deletes the record if present.
    fn delete(&self, key: &str) -> Result<()>;

    /// Renews the expiry without touching the data. Returns `false` if there is no live record.
    fn touch(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// Removes expired records where the backend does not do it by itself; returns how many.
    fn purge_expired(&self) -> Result<u64>;
}

/// Which backend to open, with its own options. Built by the config builder, from a store
/// URL or from Flask-Session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreConfig {
    /// A process-local map (`memory://`).
    #[cfg(feature = "memory")]
    Memory,
    /// One file per session in a directory (`file:///dir?threshold=500&mode=0600`).
    #[cfg(feature = "filesystem")]
    Filesystem(file::FileOptions),
    /// An SQLite database file (`sqlite:///path/to/sessions.db?table=sessions`).
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::SqliteOptions),
    /// A PostgreSQL table (`postgres://user@host:5432/db?table=sessions`).
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresOptions),
    /// A MySQL or MariaDB table (`mysql://user:pass@host:3306/db?table=sessions`).
    #[cfg(feature = "mysql")]
    Mysql(mysql::MysqlOptions),
    /// A MongoDB collection (`mongodb://host:27017/?db=flask_session&collection=sessions`).
    #[cfg(feature = "mongodb")]
    Mongodb(mongodb::MongoOptions),
    /// Redis, one server (`redis://[:password@]host:6379/0`, `rediss://` for TLS) or a
    /// Cluster (`redis+cluster://host1:7001,host2:7002`).
    #[cfg(feature = "redis")]
    Redis(redis::RedisOptions),
    /// Memcached, one or more servers (`memcache://host1:11211,host2:11211`).
    #[cfg(feature = "memcached")]
    Memcached(memcached::MemcachedOptions),
}

impl StoreConfig {
    /// Parses a store URL. `params` holds the URL's query parameters; the backend removes the
    /// ones it understands and leaves the rest for the caller.
    #[cfg_attr(
        not(any(
            feature = "filesystem",
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "mongodb",
            feature = "redis",
            feature = "memcached"
        )),
        allow(unused_variables)
    )]
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<StoreConfig> {
        match url.scheme() {
            #[cfg(feature = "memory")]
            "memory" => Ok(StoreConfig::Memory),
            #[cfg(feature = "filesystem")]
            "file" => Ok(StoreConfig::Filesystem(file::FileOptions::from_url(
                url, params,
            )?)),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(StoreConfig::Sqlite(sqlite::SqliteOptions::from_url(
                url, params,
            )?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(StoreConfig::Postgres(
                postgres::PostgresOptions::from_url(url, params)?,
            )),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => Ok(StoreConfig::Mysql(mysql::MysqlOptions::from_url(
                url, params,
            )?)),
            #[cfg(feature = "mongodb")]
            "mongodb" => Ok(StoreConfig::Mongodb(mongodb::MongoOptions::from_url(
                url, params,
            )?)),
            #[cfg(feature = "redis")]
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => Ok(StoreConfig::Redis(
                redis::RedisOptions::from_url(url, params)?,
            )),
            #[cfg(feature = "memcached")]
            "memcache" => Ok(StoreConfig::Memcached(
                memcached::MemcachedOptions::from_url(url, params)?,
            )),
            other => Err(Error::config(
                "store URL",
                format!(
                    "unknown or disabled backend {other:?} (enabled: {})",
                    enabled_schemes()
                ),
            )),
        }
    }

    /// Opens the store.
    pub fn open(&self) -> Result<Arc<dyn Store>> {
        match self {
            #[cfg(feature = "memory")]
            StoreConfig::Memory => Ok(Arc::new(memory::MemoryStore::new())),
            #[cfg(feature = "filesystem")]
            StoreConfig::Filesystem(options) => Ok(Arc::new(file::FileStore::open(options)?)),
            #[cfg(feature = "sqlite")]
            StoreConfig::Sqlite(options) => Ok(Arc::new(sqlite::SqliteStore::open(options)?)),
            #[cfg(feature = "postgres")]
            StoreConfig::Postgres(options) => Ok(Arc::new(postgres::PostgresStore::open(options)?)),
            #[cfg(feature = "mysql")]
            StoreConfig::Mysql(options) => Ok(Arc::new(mysql::MysqlStore::open(options)?)),
            #[cfg(feature = "mongodb")]
            StoreConfig::Mongodb(options) => Ok(Arc::new(mongodb::MongoStore::open(options)?)),
            #[cfg(feature = "redis")]
            StoreConfig::Redis(options) => Ok(Arc::new(redis::RedisStore::open(options)?)),
            #[cfg(feature = "memcached")]
            StoreConfig::Memcached(options) => {
                Ok(Arc::new(memcached::MemcachedStore::open(options)?))
            }
        }
    }
}

fn enabled_schemes() -> String {
    let schemes: &[(&str, bool)] = &[
        ("memory", cfg!(feature = "memory")),
        ("file", cfg!(feature = "filesystem")),
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("mysql", cfg!(feature = "mysql")),
        ("mongodb", cfg!(feature = "mongodb")),
        ("redis", cfg!(feature = "redis")),
        ("rediss", cfg!(feature = "redis")),
        ("redis+cluster", cfg!(feature = "redis")),
        ("rediss+cluster", cfg!(feature = "redis")),
        ("memcache", cfg!(feature = "memcached")),
    ];
    schemes
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a store URL. A comma-separated host list in the authority
/// (`redis+cluster://:pw@h1:7001,h2:7002/`), which URLs do not allow, is accepted: the URL
/// is parsed with the first host, and the whole list waits in the parameters for the
/// backend that takes it ([`QueryParams::take_hosts`]).
pub(crate) fn parse_store_url(text: &str) -> Result<(url::Url, QueryParams)> {
    let not_a_url = |e: url::ParseError| Error::config("store URL", format!("not a URL: {e}"));
    let (url, hosts) = match host_list(text) {
        Some((start, end)) => {
            let hosts: Vec<String> = text[start..end].split(',').map(str::to_owned).collect();
            if hosts.iter().any(String::is_empty) {
                return Err(Error::config("store URL", "empty host in the host list"));
            }
            let first = format!("{}{}{}", &text[..start], hosts[0], &text[end..]);
            (url::Url::parse(&first).map_err(not_a_url)?, hosts)
        }
        None => (url::Url::parse(text).map_err(not_a_url)?, Vec::new()),
    };
    let mut params = QueryParams::from_url(&url)?;
    params.hosts = hosts;
    Ok((url, params))
}

/// The byte range of the hosts in `scheme://[userinfo@]hosts[/path][?query]` when they are
/// a comma-separated list.
fn host_list(text: &str) -> Option<(usize, usize)> {
    let start = text.find("://")? + 3;
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let start = text[start..end].rfind('@').map_or(start, |i| start + i + 1);
    text[start..end].contains(',').then_some((start, end))
}

/// A store URL's query parameters, taken one by one by the parts that understand them.
#[derive(Debug, Default)]
pub(crate) struct QueryParams {
    values: BTreeMap<String, String>,
    /// Every host of a comma-separated host list (empty for a single host).
    hosts: Vec<String>,
}

impl QueryParams {
    pub(crate) fn from_url(url: &url::Url) -> Result<QueryParams> {
        let mut values = BTreeMap::new();
        for (name, value) in url.query_pairs() {
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(Error::config(name, "given more than once in the store URL"));
            }
        }
        Ok(QueryParams {
            values,
            hosts: Vec::new(),
        })
    }

    /// Removes and returns a parameter.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    /// Removes and returns the hosts of a comma-separated host list (`host:port` as written),
    /// or an empty list when the URL names one host.
    #[cfg_attr(not(any(feature = "redis", feature = "memcached")), allow(dead_code))]
    pub(crate) fn take_hosts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.hosts)
    }

    /// Removes and parses a positive number of seconds (`2`, `0.25`).
    #[cfg_attr(
        not(any(
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "mongodb",
            feature = "redis",
            feature = "memcached"
        )),
        allow(dead_code)
    )]
    pub(crate) fn take_seconds(&mut self, name: &str) -> Result<Option<Duration>> {
        let Some(seconds) = self.take_parsed::<f64>(name)? else {
            return Ok(None);
        };
        match Duration::try_from_secs_f64(seconds) {
            Ok(duration) if !duration.is_zero() => Ok(Some(duration)),
            _ => Err(Error::config(
                name,
                format!("{seconds} is not a positive number of seconds"),
            )),
        }
    }

    /// Removes and parses a parameter.
    pub(crate) fn take_parsed<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        self.take(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| Error::config(name, format!("cannot parse {value:?}")))
            })
            .transpose()
    }

    /// Fails naming the first parameter nobody took, or a host list no backend took.
    pub(crate) fn finish(self) -> Result<()> {
        if !self.hosts.is_empty() {
            return Err(Error::config(
                "store URL",
                "this backend takes one host, not a comma-separated list",
            ));
        }
        match self.values.into_keys().next() {
            Some(name) => Err(Error::config(name, "unknown store URL parameter")),
            None => Ok(()),
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
/// Checks that `table` is `[A-Za-z_][A-Za-z0-9_]{0,62}`, the only names spliced into SQL.
pub(crate) fn validate_table_name(table: &str) -> std::result::Result<(), String> {
    let mut bytes = table.bytes();
    let valid = table.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{table:?} is not a table name: 1 to 63 characters of [A-Za-z0-9_], not starting \
             with a digit"
        ))
    }
}

/// The expiry a write with `ttl` sets, from now.
#[cfg_attr(
    not(any(
        feature = "memory",
        feature = "filesystem",
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb"
    )),
    allow(dead_code)
)]
pub(crate) fn expiry_after(ttl: Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() + ttl
}

/// How long a call of the SQLite or MongoDB store waits for a pooled connection unless
/// `pool_timeout` says otherwise (the other pooled stores wait their connect timeout).
#[cfg_attr(not(any(feature = "sqlite", feature = "mongodb")), allow(dead_code))]
pub(crate) const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The message of a call that got no connection from its pool within `timeout` (all in
/// use, or none could be opened), with the pool's own `cause`.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb",
        feature = "redis",
        feature = "memcached"
    )),
    allow(dead_code)
)]
pub(crate) fn pool_timeout_message(timeout: Duration, cause: impl std::fmt::Display) -> String {
    format!("no connection from the pool within pool_timeout {timeout:?}: {cause}")
}

/// A key as logs and errors show it: the prefix and the first few characters of the id,
/// never the whole id. (Every backend but memory reports keys.)
#[cfg(any(
    feature = "filesystem",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "mongodb",
    feature = "redis",
    feature = "memcached"
))]
pub(crate) fn shown_key(key: &str) -> String {
    const SHOWN_CHARS: usize = 16;
    let mut chars = key.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}
