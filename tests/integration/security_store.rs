//! Regression tests for the store-layer findings of the security review (SECURITY.md, "Fixed
//! in 0.2.0"): a full filesystem store never evicts a live session, the SQLite database is
//! private to its owner, and an out-of-range lifetime is an error, never a panic.

#![cfg(all(feature = "memory", feature = "filesystem", feature = "sqlite"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sessionstore::store::file::{FileOptions, FileStore};
use sessionstore::store::memory::MemoryStore;
use sessionstore::store::sqlite::{SqliteOptions, SqliteStore};
use sessionstore::store::{Store, StoreConfig};
use sessionstore::{Config, Error, SessionManager};

const HOUR: Duration = Duration::from_secs(3600);

/// A manager on the filesystem store in `dir` with `threshold` and `idle_lifetime`.
fn file_manager(dir: &Path, threshold: usize, idle_lifetime: Duration) -> SessionManager {
    let store = StoreConfig::Filesystem(FileOptions {
        threshold,
        ..FileOptions::new(dir)
    });
    let config = Config::builder(store)
        .idle_lifetime(idle_lifetime)
        .build()
        .unwrap();
    SessionManager::new(config).unwrap()
}

/// Saves a new session holding `key` = `value`; returns its cookie's `name=value` pair.
fn save_new(manager: &SessionManager, key: &str, value: &str) -> sessionstore::Result<String> {
    let mut session = manager.load(None).unwrap();
    session.insert(key, value).unwrap();
    let cookie = manager.save(session)?.set_cookie.unwrap();
    Ok(cookie.split(';').next().unwrap().to_owned())
}

fn user_of(manager: &SessionManager, cookie: &str) -> Option<String> {
    manager.load(Some(cookie)).unwrap().get("user").unwrap()
}

/// The error a full filesystem store gives: a store error that names the threshold.
fn assert_store_full(error: &Error, threshold: usize) {
    match error {
        Error::Store { backend, message } => {
            assert_eq!(*backend, "filesystem", "{error}");
            assert!(
                message.contains("full") && message.contains(&format!("threshold {threshold}")),
                "{error}"
            );
        }
        other => panic!("expected the store-full error, got {other:?}"),
    }
}

/// Finding 2, as reported: an admin session, then as many anonymous sessions as the default
/// threshold (500). The admin stays logged in; the anonymous sessions past the threshold are
/// refused.
#[test]
fn flood_of_new_sessions_does_not_log_out_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = FileOptions::new(dir.path()).threshold;
    assert_eq!(threshold, 500);
    let manager = file_manager(dir.path(), threshold, HOUR);
    let admin = save_new(&manager, "user", "admin").unwrap();

    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..threshold {
        if let Err(error) = save_new(&manager, "user", "anonymous") {
            assert_store_full(&error, threshold);
            refused += 1;
        }
    }
    eprintln!("{threshold} new sessions saved in {:?}", started.elapsed());
    assert_eq!(user_of(&manager, &admin).as_deref(), Some("admin"));
    assert_eq!(refused, 1, "only the session past the threshold is refused");
}

/// A full store refuses new sessions but still updates existing ones; once sessions expire,
/// new ones are accepted again. The anonymous sessions come from a second manager (another
/// process, say) with a short lifetime, opened after the admin session was saved.
#[test]
fn full_store_refuses_new_sessions_until_some_expire() {
    let dir = tempfile::tempdir().unwrap();
    let threshold = 5;
    let admin_manager = file_manager(dir.path(), threshold, HOUR);
    let admin = save_new(&admin_manager, "user", "admin").unwrap();
    let anonymous = file_manager(dir.path(), threshold, Duration::from_secs(1));
    for _ in 1..threshold {
        save_new(&anonymous, "user", "anonymous").unwrap();
    }
    for _ in 0..3 {
        let error = save_new(&anonymous, "user", "anonymous").unwrap_err();
        assert_store_full(&error, threshold);
    }

    let mut session = admin_manager.load(Some(&admin)).unwrap();
    session.insert("role", "root").unwrap();
    admin_manager.save(session).unwrap();
    let session = admin_manager.load(Some(&admin)).unwrap();
    assert_eq!(
        session.get::<String>("role").unwrap().as_deref(),
        Some("root")
    );

    std::thread::sleep(Duration::from_millis(1100));
    for _ in 1..threshold {
        save_new(&anonymous, "user", "anonymous").unwrap();
    }
    assert_eq!(user_of(&admin_manager, &admin).as_deref(), Some("admin"));
}

/// Finding 5: the SQLite database and its WAL files are readable by their owner only, whatever
/// the umask allows.
#[test]
fn sqlite_files_are_private() {
    let umask = std::process::Command::new("sh")
        .args(["-c", "umask"])
        .output()
        .unwrap();
    let umask = u32::from_str_radix(String::from_utf8(umask.stdout).unwrap().trim(), 8).unwrap();
    assert_eq!(
        umask & 0o044,
        0,
        "the test needs a umask that lets files be readable by others (e.g. 022)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    assert!(store.create("session:private", b"\x80", HOUR).unwrap());
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("sessions.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", file.display());
    }
}

/// A key no other test uses, for the stores shared with other tests.
fn unique_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("session:huge-ttl-{}-{nanos}", std::process::id())
}

/// Finding 4, store layer: every write with a lifetime past what a timestamp can hold is an
/// error; a long but legitimate lifetime (400 days) works.
fn out_of_range_lifetimes_are_errors(store: &dyn Store) {
    let key = unique_key();
    let long = Duration::from_secs(400 * 24 * 3600);
    assert!(store.create(&key, b"\x80", long).unwrap());
    let record = store.load(&key).unwrap().unwrap();
    for ttl in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(i64::MAX as u64),
        Duration::from_secs(10_000 * 366 * 24 * 3600),
    ] {
        let fresh = unique_key();
        let results = [
            store.create(&fresh, b"\x80", ttl).map(|_| ()),
            store.set(&key, b"\x81", ttl),
            store.touch(&key, ttl).map(|_| ()),
            store
                .compare_and_set(&key, &record, b"\x82", ttl)
                .map(|_| ()),
        ];
        for result in results {
            match result {
                Err(Error::Store { backend, message }) => {
                    assert_eq!(backend, store.backend());
                    assert!(message.contains("lifetime"), "{message}");
                }
                other => panic!("{}: {ttl:?} accepted: {other:?}", store.backend()),
            }
        }
        assert_eq!(store.load(&fresh).unwrap(), None);
    }
    assert_eq!(&store.load(&key).unwrap().unwrap().data[..], b"\x80");
    store.delete(&key).unwrap();
}

#[test]
fn huge_lifetime_is_an_error_in_memory() {
    out_of_range_lifetimes_are_errors(&MemoryStore::new());
}

#[test]
fn huge_lifetime_is_an_error_on_files() {
    let dir = tempfile::tempdir().unwrap();
    out_of_range_lifetimes_are_errors(&FileStore::open(&FileOptions::new(dir.path())).unwrap());
}

#[test]
fn huge_lifetime_is_an_error_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::new(dir.path().join("sessions.db"));
    out_of_range_lifetimes_are_errors(&SqliteStore::open(&options).unwrap());
}

/// The store behind `variable`'s URL, or `default`.
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "postgres",
    feature = "mysql",
    feature = "mongodb"
))]
fn server_store(variable: &str, default: &str) -> std::sync::Arc<dyn Store> {
    let url = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    Config::from_url(&url).unwrap().store.open().unwrap()
}

#[cfg(feature = "redis")]
#[test]
fn huge_lifetime_is_an_error_in_redis() {
    let store = server_store("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379/0");
    out_of_range_lifetimes_are_errors(store.as_ref());
}

#[cfg(feature = "memcached")]
#[test]
fn huge_lifetime_is_an_error_in_memcached() {
    let store = server_store("SESSIONSTORE_MEMCACHED_URL", "memcache://127.0.0.1:11211");
    out_of_range_lifetimes_are_errors(store.as_ref());
}

#[cfg(feature = "postgres")]
#[test]
fn huge_lifetime_is_an_error_in_postgres() {
    let store = server_store(
        "SESSIONSTORE_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    out_of_range_lifetimes_are_errors(store.as_ref());
}

#[cfg(feature = "mysql")]
#[test]
fn huge_lifetime_is_an_error_in_mysql() {
    let store = server_store("SESSIONSTORE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    out_of_range_lifetimes_are_errors(store.as_ref());
}

#[cfg(feature = "mongodb")]
#[test]
fn huge_lifetime_is_an_error_in_mongodb() {
    let store = server_store(
        "SESSIONSTORE_MONGODB_URL",
        "mongodb://127.0.0.1:27017/?retryWrites=false",
    );
    out_of_range_lifetimes_are_errors(store.as_ref());
}

/// A timeout past an hour in a store URL is a configuration error naming it, never a panic
/// (the connection pools add their timeout to the current time unchecked).
#[test]
fn absurd_timeouts_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/s.db", dir.path().display());
    let mut urls = vec![
        (format!("{sqlite}?pool_timeout=1e18"), "pool_timeout"),
        (format!("{sqlite}?busy_timeout=3601"), "busy_timeout"),
    ];
    if cfg!(feature = "redis") {
        urls.push((
            "redis://127.0.0.1:6379/0?pool_timeout=1e18".into(),
            "pool_timeout",
        ));
        urls.push(("redis://127.0.0.1:6379/0?timeout=1e12".into(), "timeout"));
    }
    if cfg!(feature = "memcached") {
        urls.push((
            "memcache://127.0.0.1:11211?connect_timeout=1e18".into(),
            "connect_timeout",
        ));
    }
    if cfg!(feature = "postgres") {
        urls.push((
            "postgres://postgres@127.0.0.1:5432/test?pool_timeout=1e18".into(),
            "pool_timeout",
        ));
    }
    if cfg!(feature = "mysql") {
        urls.push((
            "mysql://root@127.0.0.1:3306/test?pool_timeout=1e18".into(),
            "pool_timeout",
        ));
    }
    if cfg!(feature = "mongodb") {
        urls.push((
            "mongodb://127.0.0.1:27017/?pool_timeout=1e18".into(),
            "pool_timeout",
        ));
    }
    for (url, setting) in urls {
        let error = Config::from_url(&url)
            .and_then(SessionManager::new)
            .expect_err(&url);
        assert!(
            matches!(&error, Error::Config { key, .. } if key == setting),
            "{url}: {error}"
        );
    }
}
