//! Which store to open: [`StoreConfig`], read from a store URL, and opened.

use std::sync::Arc;

use super::Store;
#[cfg(feature = "filesystem")]
use super::file;
#[cfg(feature = "memcached")]
use super::memcached;
#[cfg(feature = "memory")]
use super::memory;
#[cfg(feature = "mongodb")]
use super::mongodb;
#[cfg(feature = "mysql")]
use super::mysql;
#[cfg(feature = "postgres")]
use super::postgres;
#[cfg(feature = "redis")]
use super::redis;
#[cfg(feature = "sqlite")]
use super::sqlite;
use crate::error::{Error, Result};
use crate::parse::QueryParams;

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
    /// Cluster (`redis+cluster://host1:7001,host2:7002`), or the master of Redis Sentinels
    /// (`redis+sentinel://host1:26379,host2:26379/mymaster/0`).
    #[cfg(feature = "redis")]
    Redis(redis::RedisOptions),
    /// Memcached, one or more servers (`memcache://host1:11211,host2:11211`).
    #[cfg(feature = "memcached")]
    Memcached(memcached::MemcachedOptions),
}

impl StoreConfig {
    /// Parses a store URL. `params` holds the URL's query parameters; the backend removes the
    /// ones it understands and leaves the rest for the caller.
    #[cfg_attr(not(external_store), allow(unused_variables))]
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
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "redis+sentinel"
            | "rediss+sentinel" => Ok(StoreConfig::Redis(redis::RedisOptions::from_url(
                url, params,
            )?)),
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
        ("redis+sentinel", cfg!(feature = "redis")),
        ("rediss+sentinel", cfg!(feature = "redis")),
        ("memcache", cfg!(feature = "memcached")),
    ];
    schemes
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}
