//! The baselines: each backend's driver called directly, doing the round trips the
//! library's store does (same commands, statements, scripts and filters, on the same kind of
//! pool), with none of the library around them: no cookie, no codec, no error mapping, no
//! pool renewal. Failures panic, naming the backend: a benchmark has nothing to recover.
//!
//! Where a store's load is a server-side script (Redis), the baseline reads with the plain
//! commands a hand-written client would pipeline (`GET` + `PTTL`): one round trip either way.

use std::time::Duration;

/// A record as a baseline load returns it: the bytes, and memcached's cas token (0 elsewhere).
/// The expiry is read from the server as the store reads it, then dropped: the baselines do
/// not convert it.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub data: Vec<u8>,
    pub token: u64,
}

impl RawRecord {
    fn new(data: Vec<u8>) -> RawRecord {
        RawRecord { data, token: 0 }
    }
}

/// The answer of a baseline compare-and-set.
pub enum RawCas {
    Stored,
    /// Someone wrote first: the current record, or `None` if it is gone.
    Conflict(Option<RawRecord>),
}

/// One backend's driver, doing what the store does in each operation.
pub trait Raw: Send + Sync {
    /// One read of a live record.
    fn load(&self, key: &str) -> Option<RawRecord>;
    /// Stores a new record unless a live one exists.
    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool;
    /// Replaces the record if it still holds `expected`.
    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas;
    /// Deletes the record if it still holds `expected`.
    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas;
    /// Unconditional write.
    fn set(&self, key: &str, data: &[u8], ttl: Duration);
    /// Renews the expiry of a live record.
    fn touch(&self, key: &str, ttl: Duration) -> bool;
}

/// Panics naming the backend and what failed: a benchmark has nothing to recover.
fn fail(backend: &str, what: &str, error: impl std::fmt::Display) -> ! {
    panic!("{backend} baseline: {what} failed: {error}")
}

/// `at` as a `TIMESTAMP WITHOUT TIME ZONE` / `DATETIME` in UTC.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn utc(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    time::PrimitiveDateTime::new(at.date(), at.time())
}

#[cfg(feature = "filesystem")]
mod file;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "mongodb")]
mod mongodb;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mongodb")]
pub use self::mongodb::MongoRaw;
#[cfg(feature = "redis")]
pub use self::redis::RedisRaw;
#[cfg(feature = "filesystem")]
pub use file::FileRaw;
#[cfg(feature = "memcached")]
pub use memcached::MemcachedRaw;
#[cfg(feature = "memory")]
pub use memory::MemoryRaw;
#[cfg(feature = "mysql")]
pub use mysql::MysqlRaw;
#[cfg(feature = "postgres")]
pub use postgres::PostgresRaw;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRaw;
