//! The stores under test, opened twice each: through the library and as a raw driver
//! baseline; and the request cycles both run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sessionstore::at_rest::{AtRest, DataKey};
use sessionstore::store::{CasOutcome, Record, Store, StoreConfig};
use sessionstore::{Concurrency, Config, SessionManager};

use super::payload::{self, COUNTER};
use super::raw::{Raw, RawCas, RawRecord};

/// The idle lifetime of every benchmark session (the library's and the baseline's).
pub const TTL: Duration = Duration::from_secs(3600);
/// Connections per pool, library and baseline alike: enough for the 8 threads of the
/// throughput runs.
pub const POOL_SIZE: u32 = 8;

/// Every store this build can benchmark, in the order they run.
pub fn compiled() -> Vec<&'static str> {
    let all: &[(&str, bool)] = &[
        ("memory", cfg!(feature = "memory")),
        ("filesystem", cfg!(feature = "filesystem")),
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("mysql", cfg!(feature = "mysql")),
        ("mongodb", cfg!(feature = "mongodb")),
        ("redis", cfg!(feature = "redis")),
        ("redis_cluster", cfg!(feature = "redis")),
        ("memcached", cfg!(feature = "memcached")),
    ];
    all.iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect()
}

/// The stores to run: `BENCH_STORES` (comma-separated names) or every compiled one.
pub fn selected() -> Vec<&'static str> {
    let compiled = compiled();
    match std::env::var("BENCH_STORES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(str::trim)
            .map(|name| {
                *compiled.iter().find(|c| **c == name).unwrap_or_else(|| {
                    panic!(
                        "BENCH_STORES: unknown or not compiled store {name:?} (have {compiled:?})"
                    )
                })
            })
            .collect(),
        _ => compiled,
    }
}

/// Whether `BENCH_QUICK` asks for short runs.
pub fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// One store, opened through the library and as a baseline.
pub struct Target {
    pub name: &'static str,
    store_config: StoreConfig,
    pub store: Arc<dyn Store>,
    pub raw: Arc<dyn Raw>,
    /// The baseline on a pool that checks every connection on check-out (PostgreSQL, MySQL:
    /// what their pools do by default), to show what that check costs.
    pub raw_checked: Option<Arc<dyn Raw>>,
    /// Distinguishes this run's keys from earlier runs' on shared servers.
    tag: String,
    _dir: tempfile::TempDir,
}

/// How a benchmark manager saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No lost updates (compare-and-set), touch interval long enough that an unmodified
    /// request writes nothing.
    Cas,
    /// Last writer wins.
    Lww,
    /// Compare-and-set, and every unmodified request renews the expiry (touch interval 0).
    Touching,
}

fn unreachable(name: &str, url: &str) -> String {
    format!(
        "{name} benchmark: cannot open {url}; start the servers with scripts/services.sh \
         (or point the SESSIONSTORE_*_URL variables at them)"
    )
}

/// Opens `name` through the library and its baseline; panics naming the server if it is
/// unreachable.
pub fn open(name: &'static str) -> Target {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tag = sessionstore::SessionId::generate().as_str()[..8].to_owned();
    let (store_config, raw, raw_checked): (StoreConfig, Arc<dyn Raw>, Option<Arc<dyn Raw>>) =
        match name {
            #[cfg(feature = "memory")]
            "memory" => (
                StoreConfig::Memory,
                Arc::new(super::raw::MemoryRaw::default()),
                None,
            ),
            #[cfg(feature = "filesystem")]
            "filesystem" => {
                let mut options =
                    sessionstore::store::file::FileOptions::new(dir.path().join("library"));
                options.threshold = 100_000;
                (
                    StoreConfig::Filesystem(options),
                    Arc::new(super::raw::FileRaw::open(&dir.path().join("raw"))),
                    None,
                )
            }
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let mut options =
                    sessionstore::store::sqlite::SqliteOptions::new(dir.path().join("library.db"));
                options.pool_size = POOL_SIZE;
                (
                    StoreConfig::Sqlite(options),
                    Arc::new(super::raw::SqliteRaw::open(
                        &dir.path().join("raw.db"),
                        POOL_SIZE,
                    )),
                    None,
                )
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                let url = env_or(
                    "SESSIONSTORE_POSTGRES_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                );
                // Plaintext like the baseline (`NoTls`): the store's default `sslmode=prefer`
                // would use TLS with a server that offers it, and compare different bytes.
                let library = url_store(
                    &url,
                    "table=sessionstore_bench&pool_size=8&sslmode=disable",
                    name,
                );
                clear_postgres(&url);
                let raw = |checked| -> Arc<dyn Raw> {
                    Arc::new(super::raw::PostgresRaw::open(
                        &url,
                        "sessionstore_bench_raw",
                        POOL_SIZE,
                        checked,
                    ))
                };
                (library, raw(false), Some(raw(true)))
            }
            #[cfg(feature = "mysql")]
            "mysql" => {
                let url = env_or("SESSIONSTORE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
                let library = url_store(&url, "table=sessionstore_bench&pool_size=8", name);
                clear_mysql(&url);
                let raw = |checked| -> Arc<dyn Raw> {
                    Arc::new(super::raw::MysqlRaw::open(
                        &url,
                        "sessionstore_bench_raw",
                        POOL_SIZE as usize,
                        checked,
                    ))
                };
                (library, raw(false), Some(raw(true)))
            }
            #[cfg(feature = "mongodb")]
            "mongodb" => {
                let url = env_or(
                    "SESSIONSTORE_MONGODB_URL",
                    "mongodb://127.0.0.1:27017/?retryWrites=false",
                );
                let library = url_store(&url, "db=sessionstore_bench&collection=sessions", name);
                (
                    library,
                    Arc::new(super::raw::MongoRaw::open(
                        &url,
                        "sessionstore_bench",
                        "sessions_raw",
                    )),
                    None,
                )
            }
            #[cfg(feature = "redis")]
            "redis" => {
                let url = env_or("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379/0");
                (
                    url_store(&url, "pool_size=8", name),
                    Arc::new(super::raw::RedisRaw::open(&url, POOL_SIZE)),
                    None,
                )
            }
            #[cfg(feature = "redis")]
            "redis_cluster" => {
                let url = env_or(
                    "SESSIONSTORE_REDIS_CLUSTER_URL",
                    "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
                );
                let library = url_store(&url, "pool_size=8", name);
                let StoreConfig::Redis(options) = &library else {
                    unreachable!("a redis URL")
                };
                let nodes = options.nodes.clone();
                (
                    library,
                    Arc::new(super::raw::RedisRaw::open_cluster(&nodes, POOL_SIZE)),
                    None,
                )
            }
            #[cfg(feature = "memcached")]
            "memcached" => {
                let url = env_or("SESSIONSTORE_MEMCACHED_URL", "memcache://127.0.0.1:11211");
                let library = url_store(&url, "pool_size=8", name);
                let StoreConfig::Memcached(options) = &library else {
                    unreachable!("a memcache URL")
                };
                let server = options.servers[0].clone();
                (
                    library,
                    Arc::new(super::raw::MemcachedRaw::open(&server, POOL_SIZE)),
                    None,
                )
            }
            other => panic!("no benchmark for store {other:?} in this build"),
        };
    let store = store_config
        .open()
        .unwrap_or_else(|e| panic!("{}: {e}", unreachable(name, &format!("{store_config:?}"))));
    Target {
        name,
        store_config,
        store,
        raw,
        raw_checked,
        tag,
        _dir: dir,
    }
}

/// The library's store configuration for a server URL plus `params`.
#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb",
        feature = "redis",
        feature = "memcached"
    )),
    allow(dead_code)
)]
fn url_store(url: &str, params: &str, name: &str) -> StoreConfig {
    let separator = if url.contains('?') { '&' } else { '?' };
    Config::builder_from_url(&format!("{url}{separator}{params}"))
        .and_then(|builder| builder.build())
        .unwrap_or_else(|e| panic!("{}: {e}", unreachable(name, url)))
        .store
}

/// Empties the benchmark tables left by earlier runs.
#[cfg(feature = "postgres")]
fn clear_postgres(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("{}: {e}", unreachable("postgres", url)));
    for table in ["sessionstore_bench", "sessionstore_bench_raw"] {
        client
            .batch_execute(&format!(
                "DO $$ BEGIN IF to_regclass('{table}') IS NOT NULL THEN DELETE FROM {table}; \
                 END IF; END $$"
            ))
            .expect("clearing the benchmark table");
    }
}

/// Empties the benchmark tables left by earlier runs.
#[cfg(feature = "mysql")]
fn clear_mysql(url: &str) {
    use mysql::prelude::Queryable;
    let mut conn = mysql::Conn::new(mysql::Opts::from_url(url).expect("a MySQL URL"))
        .unwrap_or_else(|e| panic!("{}: {e}", unreachable("mysql", url)));
    for table in ["sessionstore_bench", "sessionstore_bench_raw"] {
        conn.query_drop(format!("DELETE FROM {table}"))
            .or_else(|e| match e {
                mysql::Error::MySqlError(e) if e.code == 1146 => Ok(()),
                e => Err(e),
            })
            .expect("clearing the benchmark table");
    }
}

/// The at-rest settings measured: off, encryption, compression (above 1 KiB), both.
pub fn at_rest_variants() -> [(&'static str, AtRest); 4] {
    let key = || vec![DataKey::from_bytes([7; 32])];
    [
        ("plain", AtRest::default()),
        (
            "encrypted",
            AtRest {
                keys: key(),
                compress_threshold: None,
                decrypt_only: false,
            },
        ),
        (
            "compressed",
            AtRest {
                keys: Vec::new(),
                compress_threshold: Some(1024),
                decrypt_only: false,
            },
        ),
        (
            "both",
            AtRest {
                keys: key(),
                compress_threshold: Some(1024),
                decrypt_only: false,
            },
        ),
    ]
}

impl Target {
    /// A manager on this target's store (shared by all managers of the target).
    pub fn manager(&self, mode: Mode) -> SessionManager {
        self.manager_on(self.store.clone(), mode)
    }

    /// A compare-and-set manager on this target's store with the given at-rest settings.
    pub fn manager_at_rest(&self, at_rest: AtRest) -> SessionManager {
        let manager = self.manager(Mode::Cas);
        let mut config = manager.config().clone();
        config.at_rest = at_rest;
        SessionManager::with_store(config, self.store.clone())
    }

    fn manager_on(&self, store: Arc<dyn Store>, mode: Mode) -> SessionManager {
        let config = Config::builder(self.store_config.clone())
            .secret("benchmark secret")
            .key_prefix(format!("bench:{}:", self.key_tag()))
            .idle_lifetime(TTL)
            .touch_interval(if mode == Mode::Touching {
                Duration::ZERO
            } else {
                TTL
            })
            .concurrency(if mode == Mode::Lww {
                Concurrency::LastWriterWins
            } else {
                Concurrency::NoLostUpdates
            })
            .build()
            .expect("a valid benchmark configuration");
        SessionManager::with_store(config, store)
    }

    /// This run's tag in keys. On a Redis Cluster it is a hash tag (`{tag}`), so that the
    /// library's keys and the baseline's live on the same node: nodes are separate
    /// processes, and on a small VM where a process runs relative to the benchmark changes
    /// a round trip's time severalfold.
    fn key_tag(&self) -> String {
        if self.name == "redis_cluster" {
            format!("{{{}}}", self.tag)
        } else {
            self.tag.clone()
        }
    }

    /// A new baseline key (this run's prefix and a fresh id).
    pub fn raw_key(&self) -> String {
        format!(
            "bench-raw:{}:{}",
            self.key_tag(),
            sessionstore::SessionId::generate().as_str()
        )
    }

    /// Checks how many store calls each library request makes, through a counting wrapper
    /// of the store; returns `(operation, reads, writes)` rows. Panics if an unmodified
    /// request makes anything but exactly one read (the target).
    pub fn count_calls(&self, bytes: usize) -> Vec<(Op, u64, u64)> {
        let counting = Arc::new(Counting::new(self.store.clone()));
        let mut rows = Vec::new();
        for op in Op::ALL {
            let manager = self.manager_on(counting.clone(), op.mode());
            let mut cookie = new_session(&manager, bytes);
            counting.reads.store(0, Ordering::SeqCst);
            counting.writes.store(0, Ordering::SeqCst);
            library_request(&manager, op, &mut cookie);
            let reads = counting.reads.load(Ordering::SeqCst);
            let writes = counting.writes.load(Ordering::SeqCst);
            if op == Op::Unmodified {
                assert_eq!(
                    (reads, writes),
                    (1, 0),
                    "{}: an unmodified request must make exactly one read",
                    self.name
                );
            }
            rows.push((op, reads, writes));
        }
        rows
    }
}

/// The request cycles measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Load of a stored session.
    LoadHit,
    /// Load of a well-signed cookie whose session is not stored.
    LoadMiss,
    /// Load, read a value, save that writes nothing.
    Unmodified,
    /// Load, increment a counter, compare-and-set save.
    Modified,
    /// Load, increment a counter, last-writer-wins save.
    ModifiedLww,
    /// Load, save that renews the expiry (touch).
    Touch,
    /// Load, new id, save (create under the new id, delete the old record).
    Regenerate,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::LoadHit,
        Op::LoadMiss,
        Op::Unmodified,
        Op::Modified,
        Op::ModifiedLww,
        Op::Touch,
        Op::Regenerate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::LoadHit => "load_hit",
            Op::LoadMiss => "load_miss",
            Op::Unmodified => "unmodified",
            Op::Modified => "modified",
            Op::ModifiedLww => "modified_lww",
            Op::Touch => "touch",
            Op::Regenerate => "regenerate",
        }
    }

    /// The manager mode this cycle runs with.
    pub fn mode(self) -> Mode {
        match self {
            Op::ModifiedLww => Mode::Lww,
            Op::Touch => Mode::Touching,
            _ => Mode::Cas,
        }
    }

    /// Whether the payload size matters (a miss has none).
    pub fn sized(self) -> bool {
        self != Op::LoadMiss
    }

    /// Why this cycle is not measured on `store`, if it is not.
    pub fn skipped_on(self, store: &str) -> Option<&'static str> {
        (self == Op::Touch && store == "memcached").then_some(
            "memcached keeps expiries in whole seconds, so the library renews a session at \
             most once a second whatever the touch interval: back-to-back requests would \
             measure a load, not a touch",
        )
    }
}

/// Stores a new session of about `bytes` through `manager`; returns its cookie pair.
pub fn new_session(manager: &SessionManager, bytes: usize) -> String {
    store_session(manager, payload::data(bytes))
}

/// Stores a new session holding `data` through `manager`; returns its cookie pair.
pub fn store_session(manager: &SessionManager, data: sessionstore::codec::Data) -> String {
    let mut session = manager.load(None).expect("load without cookie");
    for (key, value) in data {
        session.insert_value(&key, value).expect("insert");
    }
    cookie_of(&manager.save(session).expect("first save"))
}

fn cookie_of(outcome: &sessionstore::SaveOutcome) -> String {
    outcome
        .set_cookie
        .as_deref()
        .expect("a Set-Cookie header")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned()
}

/// A well-signed cookie for an id that is not stored.
pub fn missing_cookie(manager: &SessionManager) -> String {
    let id = sessionstore::SessionId::generate();
    format!("session={}", manager.config().cookie.value(&id))
}

/// One library request of `op` on the session `cookie` names (updated by a regenerate).
pub fn library_request(manager: &SessionManager, op: Op, cookie: &mut String) {
    try_library_request(manager, op, cookie).expect("library request");
}

/// [`library_request`], returning the library's error.
pub fn try_library_request(
    manager: &SessionManager,
    op: Op,
    cookie: &mut String,
) -> sessionstore::Result<()> {
    let mut session = manager.load(Some(cookie))?;
    match op {
        Op::LoadHit | Op::LoadMiss => {
            std::hint::black_box(&session);
            return Ok(());
        }
        Op::Unmodified | Op::Touch => {
            std::hint::black_box(session.get_value("user_id"));
        }
        Op::Modified | Op::ModifiedLww => {
            session.modify(COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)?;
        }
        Op::Regenerate => session.regenerate(),
    }
    let outcome = manager.save(session)?;
    if op == Op::Regenerate {
        *cookie = cookie_of(&outcome);
    }
    std::hint::black_box(outcome);
    Ok(())
}

/// One baseline request of `op` on `key` (updated by a regenerate) with `target`'s raw
/// driver: the same round trips as the library's store makes for it.
pub fn raw_request(target: &Target, raw: &dyn Raw, op: Op, key: &mut String) {
    let loaded = raw.load(key);
    match op {
        Op::LoadHit | Op::LoadMiss | Op::Unmodified => {
            std::hint::black_box(loaded);
        }
        Op::Modified => {
            let mut current = loaded.expect("a stored baseline record");
            loop {
                match raw.cas(key, &current, &payload::bump(&current.data), TTL) {
                    RawCas::Stored => break,
                    RawCas::Conflict(Some(fresher)) => current = fresher,
                    RawCas::Conflict(None) => panic!("{}: baseline record vanished", target.name),
                }
            }
        }
        Op::ModifiedLww => {
            let current = loaded.expect("a stored baseline record");
            raw.set(key, &payload::bump(&current.data), TTL);
        }
        Op::Touch => {
            loaded.expect("a stored baseline record");
            assert!(
                raw.touch(key, TTL),
                "{}: baseline touch missed",
                target.name
            );
        }
        Op::Regenerate => {
            let current: RawRecord = loaded.expect("a stored baseline record");
            let new_key = target.raw_key();
            assert!(raw.create(&new_key, &current.data, TTL));
            let _ = raw.cas_delete(key, &current);
            *key = new_key;
        }
    }
}

/// Stores a new baseline record of about `bytes`; returns its key.
pub fn new_raw_record(target: &Target, raw: &dyn Raw, bytes: usize) -> String {
    let key = target.raw_key();
    assert!(raw.create(&key, &payload::encoded(&payload::data(bytes)), TTL));
    key
}

/// Counts the calls a manager makes to its store (the `count_calls` check, the owners
/// bench).
pub struct Counting {
    inner: Arc<dyn Store>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Counting {
    /// A wrapper of `inner` that has counted nothing yet.
    pub fn new(inner: Arc<dyn Store>) -> Counting {
        Counting {
            inner,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }
    /// Reads and writes counted since the last reset, together.
    pub fn calls(&self) -> u64 {
        self.reads.load(Ordering::SeqCst) + self.writes.load(Ordering::SeqCst)
    }
    /// Starts counting from zero.
    pub fn reset(&self) {
        self.reads.store(0, Ordering::SeqCst);
        self.writes.store(0, Ordering::SeqCst);
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Store for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn load(&self, key: &str) -> sessionstore::Result<Option<Record>> {
        self.read();
        self.inner.load(key)
    }
    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> sessionstore::Result<bool> {
        self.write();
        self.inner.create(key, data, ttl)
    }
    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> sessionstore::Result<CasOutcome> {
        self.write();
        self.inner.compare_and_set(key, expected, data, ttl)
    }
    fn compare_and_delete(&self, key: &str, expected: &Record) -> sessionstore::Result<CasOutcome> {
        self.write();
        self.inner.compare_and_delete(key, expected)
    }
    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> sessionstore::Result<()> {
        self.write();
        self.inner.set(key, data, ttl)
    }
    fn delete(&self, key: &str) -> sessionstore::Result<()> {
        self.write();
        self.inner.delete(key)
    }
    fn touch(&self, key: &str, ttl: Duration) -> sessionstore::Result<bool> {
        self.write();
        self.inner.touch(key, ttl)
    }
    fn purge_expired(&self) -> sessionstore::Result<u64> {
        self.inner.purge_expired()
    }
}
