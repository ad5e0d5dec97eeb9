//! One store trait, one implementation per backend.
//!
//! A store knows keys and bytes, nothing about cookies or session semantics. The
//! [`SessionManager`](crate::SessionManager) builds the request lifecycle and the
//! no-lost-update saves on top of these few operations.

use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::error::Result;

mod backend;
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
mod shared;
#[cfg(sql_store)]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(all(test, any_store))]
mod test_support;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod tls;

pub use backend::StoreConfig;

/// A stored session as one load returned it: its bytes, when it expires, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The encoded session data: a shared buffer, which the session keeps without copying
    /// it (a driver's `Vec<u8>` converts without a copy).
    pub data: Bytes,
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
    pub fn new(data: impl Into<Bytes>, expires_at: OffsetDateTime) -> Record {
        Record {
            data: data.into(),
            expires_at,
            version: Version::Data,
        }
    }

    /// Whether the record is past its expiry at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

/// One page of keys from [`Store::list_keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys of this page (possibly none, while `next` says the listing goes on).
    pub keys: Vec<String>,
    /// Where the next page starts, to pass back as `cursor`; `None` once the listing is done.
    pub next: Option<String>,
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
    /// Stores whose backend expires records on its own keep this default, which does nothing.
    fn purge_expired(&self) -> Result<u64> {
        Ok(0)
    }

    /// Stores each of `records` (key, data, TTL) as [`create`](Store::create) does, unless a
    /// live record exists under its key; returns for each whether it stored. For tools that
    /// copy many records (the `sessionstore migrate` command): stores that can write a batch
    /// at once (one transaction, one pipeline) do; the default creates them one by one.
    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        records
            .iter()
            .map(|(key, data, ttl)| self.create(key, data, *ttl))
            .collect()
    }

    /// Lists the keys that start with `prefix`, about `limit` per page: `cursor` is `None`
    /// for the first page, then the `next` of the page before. Every key live from the first
    /// page to the last is listed, at least once (Redis may repeat a key its table moved
    /// meanwhile); a record that expires meanwhile may still be listed. For tools (the
    /// `sessionstore` command), not for requests. Stores that cannot enumerate keys
    /// (memcached) keep this default, an error that says so.
    fn list_keys(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<KeyPage> {
        let _ = (prefix, cursor, limit);
        Err(crate::error::Error::store(
            self.backend(),
            format!("the {} store cannot list its keys", self.backend()),
        ))
    }
}
