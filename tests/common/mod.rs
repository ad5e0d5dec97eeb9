//! Shared by the integration tests: a harness that opens a manager on each backend, and a
//! store wrapper that counts round trips.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sessionstore::store::{CasOutcome, Record, Store, StoreConfig};
use sessionstore::{Config, ConfigBuilder, SaveOutcome, Session, SessionManager};

/// A manager on one backend, plus what keeps its backing files alive.
pub struct Harness {
    pub manager: SessionManager,
    pub counts: Arc<Counts>,
    _dir: tempfile::TempDir,
}

/// How many times each store operation ran.
#[derive(Debug, Default)]
pub struct Counts {
    pub load: AtomicU64,
    pub create: AtomicU64,
    pub cas: AtomicU64,
    pub set: AtomicU64,
    pub delete: AtomicU64,
    pub touch: AtomicU64,
}

impl Counts {
    pub fn reads(&self) -> u64 {
        self.load.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> u64 {
        [
            &self.create,
            &self.cas,
            &self.set,
            &self.delete,
            &self.touch,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }

    pub fn touches(&self) -> u64 {
        self.touch.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        for c in [
            &self.load,
            &self.create,
            &self.cas,
            &self.set,
            &self.delete,
            &self.touch,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// Forwards to the real store and counts every call.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Arc<Counts>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn load(&self, key: &str) -> sessionstore::Result<Option<Record>> {
        bump(&self.counts.load);
        self.inner.load(key)
    }
    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> sessionstore::Result<bool> {
        bump(&self.counts.create);
        self.inner.create(key, data, ttl)
    }
    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> sessionstore::Result<CasOutcome> {
        bump(&self.counts.cas);
        self.inner.compare_and_set(key, expected, data, ttl)
    }
    fn compare_and_delete(&self, key: &str, expected: &Record) -> sessionstore::Result<CasOutcome> {
        bump(&self.counts.delete);
        self.inner.compare_and_delete(key, expected)
    }
    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> sessionstore::Result<()> {
        bump(&self.counts.set);
        self.inner.set(key, data, ttl)
    }
    fn delete(&self, key: &str) -> sessionstore::Result<()> {
        bump(&self.counts.delete);
        self.inner.delete(key)
    }
    fn touch(&self, key: &str, ttl: Duration) -> sessionstore::Result<bool> {
        bump(&self.counts.touch);
        self.inner.touch(key, ttl)
    }
    fn purge_expired(&self) -> sessionstore::Result<u64> {
        self.inner.purge_expired()
    }
}

/// The store configuration of `backend`, with its files under `dir`.
pub fn store_config(backend: &str, dir: &std::path::Path) -> StoreConfig {
    match backend {
        "memory" => StoreConfig::Memory,
        "filesystem" => StoreConfig::Filesystem(sessionstore::store::file::FileOptions::new(
            dir.join("sessions"),
        )),
        "sqlite" => StoreConfig::Sqlite(sessionstore::store::sqlite::SqliteOptions::new(
            dir.join("sessions.db"),
        )),
        server => {
            let url = server_url(server);
            Config::builder_from_url(&url)
                .and_then(|builder| builder.build())
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .store
        }
    }
}

/// The store URL of a server backend's test service: `$SESSIONSTORE_<BACKEND>_URL`, else
/// the local service, with the table or collection every test of the backend shares.
pub fn server_url(backend: &str) -> String {
    let (var, default, params) = match backend {
        "postgres" => (
            "SESSIONSTORE_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
            "table=sessionstore_tests",
        ),
        "mysql" => (
            "SESSIONSTORE_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
            "table=sessionstore_tests",
        ),
        "mongodb" => (
            "SESSIONSTORE_MONGODB_URL",
            // SecantusDB spends ~25 ms on each retryable write's bookkeeping, ~1 ms without.
            "mongodb://127.0.0.1:27017/?retryWrites=false",
            "db=sessionstore_tests&collection=sessions",
        ),
        "redis" => (
            "SESSIONSTORE_REDIS_URL",
            "redis://127.0.0.1:6379/0",
            "pool_size=8",
        ),
        "redis_cluster" => (
            "SESSIONSTORE_REDIS_CLUSTER_URL",
            "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
            "pool_size=8",
        ),
        "memcached" => (
            "SESSIONSTORE_MEMCACHED_URL",
            "memcache://127.0.0.1:11211",
            "pool_size=8",
        ),
        other => panic!("no such backend in the tests: {other}"),
    };
    let server = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}{params}")
}

/// A key prefix no other test uses, so tests can share one server.
pub fn unique_prefix() -> String {
    let id = sessionstore::SessionId::generate();
    format!("test-{}:", &id.as_str()[..12])
}

/// Opens `backend` with a signing secret, a key prefix of its own, and whatever
/// `configure` adds.
pub fn harness(backend: &str, configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let builder = Config::builder(store_config(backend, dir.path()))
        .secret("test secret")
        .key_prefix(unique_prefix());
    let config = configure(builder).build().expect("valid test config");
    let counts = Arc::new(Counts::default());
    let store = Arc::new(CountingStore {
        inner: config.store.open().expect("store opens"),
        counts: counts.clone(),
    });
    Harness {
        manager: SessionManager::with_store(config, store),
        counts,
        _dir: dir,
    }
}

impl Harness {
    /// One request: load with `cookie`, run `handler`, save.
    pub fn request(&self, cookie: Option<&str>, handler: impl FnOnce(&mut Session)) -> SaveOutcome {
        request(&self.manager, cookie, handler)
    }

    /// The store key of the session a cookie names.
    pub fn key_of(&self, cookie: &str) -> String {
        let value = cookie.split_once('=').expect("name=value").1;
        let id = value.split('.').next().expect("id");
        format!("{}{id}", self.manager.config().key_prefix)
    }

    /// The raw stored record of the session a cookie names.
    pub fn stored(&self, cookie: &str) -> Option<Record> {
        self.manager
            .store()
            .load(&self.key_of(cookie))
            .expect("store load")
    }
}

/// One request on `manager`: load with `cookie`, run `handler`, save.
pub fn request(
    manager: &SessionManager,
    cookie: Option<&str>,
    handler: impl FnOnce(&mut Session),
) -> SaveOutcome {
    let mut session = manager.load(cookie).expect("load");
    handler(&mut session);
    manager.save(session).expect("save")
}

/// The `name=value` pair of a `Set-Cookie` header, as the browser sends it back.
pub fn cookie_pair(outcome: &SaveOutcome) -> String {
    let header = outcome.set_cookie.as_deref().expect("a Set-Cookie header");
    header.split(';').next().expect("name=value").to_owned()
}

/// Whether a `Set-Cookie` header removes the cookie.
pub fn is_removal(outcome: &SaveOutcome) -> bool {
    outcome
        .set_cookie
        .as_deref()
        .is_some_and(|h| h.contains("Max-Age=0"))
}
pub mod flask;
pub mod suite;
pub mod web;
