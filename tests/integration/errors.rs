//! Store failures are errors naming the backend, never panics, and the manager works again
//! once the store is back.

#![cfg(all(feature = "memory", feature = "filesystem", feature = "sqlite"))]

use sessionstore::store::StoreConfig;
use sessionstore::store::file::FileOptions;
use sessionstore::store::sqlite::SqliteOptions;
use sessionstore::{Config, Error, SessionManager};

fn backend_of(error: &Error) -> &'static str {
    match error {
        Error::Store { backend, .. } => backend,
        other => panic!("expected a store error, got {other}"),
    }
}

/// A manager on `store` holding one saved session (`user` = "ann"), and its cookie's
/// `name=value` pair.
fn manager_with_a_session(store: StoreConfig) -> (SessionManager, String) {
    let manager = SessionManager::new(Config::builder(store).build().unwrap()).unwrap();
    let mut session = manager.load(None).unwrap();
    session.insert("user", "ann").unwrap();
    let cookie = manager.save(session).unwrap().set_cookie.unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (manager, cookie)
}

#[test]
fn filesystem_failure_is_an_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    let (manager, cookie) =
        manager_with_a_session(StoreConfig::Filesystem(FileOptions::new(&sessions)));

    // The directory disappears and a plain file takes its place.
    std::fs::remove_dir_all(&sessions).unwrap();
    std::fs::write(&sessions, b"not a directory").unwrap();
    let mut session = manager.load(None).unwrap();
    session.insert("user", "bob").unwrap();
    let error = manager.save(session).unwrap_err();
    assert_eq!(backend_of(&error), "filesystem", "{error}");
    let error = manager.load(Some(&cookie)).unwrap_err();
    assert_eq!(backend_of(&error), "filesystem", "{error}");

    std::fs::remove_file(&sessions).unwrap();
    std::fs::create_dir(&sessions).unwrap();
    let mut session = manager.load(None).unwrap();
    session.insert("user", "carol").unwrap();
    assert!(
        manager.save(session).unwrap().set_cookie.is_some(),
        "works again"
    );
}

#[test]
fn sqlite_failure_is_an_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let (manager, cookie) = manager_with_a_session(StoreConfig::Sqlite(SqliteOptions::new(&path)));

    // Another program drops the table under our feet.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("DROP TABLE sessions").unwrap();
    let error = manager.load(Some(&cookie)).unwrap_err();
    assert_eq!(backend_of(&error), "sqlite", "{error}");
    assert!(error.to_string().contains("sessions"), "{error}");

    other
        .execute_batch(
            "CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             session_id VARCHAR(255) UNIQUE NOT NULL, data BLOB, expiry DATETIME)",
        )
        .unwrap();
    let mut session = manager.load(Some(&cookie)).unwrap();
    assert!(session.is_new(), "the record went with the table");
    session.insert("user", "ann").unwrap();
    assert!(manager.save(session).is_ok(), "works again");
}

#[test]
fn unopenable_stores_are_errors() {
    let error = SessionManager::open("sqlite:///proc/no/such/dir/sessions.db").unwrap_err();
    assert_eq!(backend_of(&error), "sqlite", "{error}");
    let error = SessionManager::open("file:///proc/no-such-dir/sessions").unwrap_err();
    assert_eq!(backend_of(&error), "filesystem", "{error}");
}

#[test]
fn contention_gives_up_with_a_clear_error_and_writes_nothing_wrong() {
    let manager = SessionManager::new(
        Config::builder(StoreConfig::Memory)
            .max_attempts(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut session = manager.load(None).unwrap();
    session.insert("n", 0).unwrap();
    let cookie = manager.save(session).unwrap().set_cookie.unwrap();
    let cookie = cookie.split(';').next().unwrap();
    let mut slow = manager.load(Some(cookie)).unwrap();
    let mut fast = manager.load(Some(cookie)).unwrap();
    fast.insert("n", 1).unwrap();
    manager.save(fast).unwrap();
    slow.insert("m", 2).unwrap();
    let error = manager.save(slow).unwrap_err();
    assert_eq!(error, Error::Contention { attempts: 1 });
    let session = manager.load(Some(cookie)).unwrap();
    assert_eq!(session.get::<i64>("n").unwrap(), Some(1));
    assert_eq!(session.get::<i64>("m").unwrap(), None);
}
