//! Session ids and store keys never reach a log in full (SECURITY.md): a logger installed
//! through the `log` facade captures every record, of every level and every crate, while
//! the test drives each path that logs — a refused cookie, an undecodable stored value
//! (with plain and with hashed ids), a row without data (SQLite), a session file without a
//! header (filesystem), a concurrent logout, an undecodable value met while merging, a
//! failing store (the periodic cleanup), and records that do not open at rest (altered,
//! under an unknown key, of an unknown envelope version, a compression bomb) — and then checks that no line holds a full
//! 43-character id (or id hash) or a full store key, and that each path did log.

#![cfg(all(feature = "sqlite", feature = "filesystem"))]

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use log::{LevelFilter, Log, Metadata, Record};
use sessionstore::at_rest::{DataKey, FLAG_COMPRESSED, MAGIC, VERSION};
use sessionstore::store::StoreConfig;
use sessionstore::store::file::FileOptions;
use sessionstore::store::sqlite::SqliteOptions;
use sessionstore::{Config, ConfigBuilder, SessionManager};

/// Every log line so far, as `LEVEL target: message`.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

fn lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The id in a `Set-Cookie` header or `Cookie` pair (`session=<id>.<sig>`).
fn id_of(cookie: &str) -> String {
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    value.split('.').next().unwrap().to_owned()
}

fn manager(
    store: StoreConfig,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> SessionManager {
    let builder = Config::builder(store)
        .secret("log privacy")
        .key_prefix("session:");
    SessionManager::new(configure(builder).build().unwrap()).unwrap()
}

/// Saves a new session holding `user`; returns its `name=value` cookie.
fn new_session(manager: &SessionManager, user: &str) -> String {
    let mut session = manager.load(None).unwrap();
    session.insert("user", user).unwrap();
    let header = manager.save(session).unwrap().set_cookie.unwrap();
    header.split(';').next().unwrap().to_owned()
}

/// Runs of 43 or more id characters (`[A-Za-z0-9_-]`) in `line`: a whole id or id hash.
fn long_runs(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|run| run.len() >= 43)
        .collect()
}

#[test]
fn ids_and_keys_are_never_logged_in_full() {
    log::set_logger(&LOGGER).expect("the only logger of this test binary");
    log::set_max_level(LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let sqlite = || StoreConfig::Sqlite(SqliteOptions::new(&db));
    let ttl = Duration::from_secs(60);
    // Every id and key the test makes, to look for in the logs.
    let mut secrets: Vec<String> = Vec::new();

    // A refused cookie: a real id with a wrong signature.
    let plain = manager(sqlite(), |b| b);
    let cookie = new_session(&plain, "ann");
    let id = id_of(&cookie);
    let forged = format!("session={id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(plain.load(Some(&forged)).unwrap().is_new());
    secrets.extend([id.clone(), format!("session:{id}")]);

    // An undecodable stored value.
    plain
        .store()
        .set(&format!("session:{id}"), b"\xc1 not MessagePack", ttl)
        .unwrap();
    assert!(plain.load(Some(&cookie)).unwrap().is_new());

    // The same with hashed ids: neither the id nor its hash (the key) is logged.
    let hashed = manager(sqlite(), |b| b.hash_ids(true));
    let cookie = new_session(&hashed, "bob");
    let id = id_of(&cookie);
    let key = {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(id.as_bytes());
        format!(
            "session:sha256:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        )
    };
    assert!(
        hashed.store().load(&key).unwrap().is_some(),
        "the hashed key"
    );
    hashed.store().set(&key, b"\xc1", ttl).unwrap();
    assert!(hashed.load(Some(&cookie)).unwrap().is_new());
    secrets.extend([id, key.clone(), key["session:".len()..].to_owned()]);

    // A row without data.
    let cookie = new_session(&plain, "cy");
    let id = id_of(&cookie);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE sessions SET data = NULL WHERE session_id = ?1",
            [format!("session:{id}")],
        )
        .unwrap();
    assert!(plain.load(Some(&cookie)).unwrap().is_new());
    secrets.extend([id.clone(), format!("session:{id}")]);

    // A concurrent logout: the other request's save finds the session gone.
    let cookie = new_session(&plain, "dee");
    let id = id_of(&cookie);
    let mut logout = plain.load(Some(&cookie)).unwrap();
    let mut other = plain.load(Some(&cookie)).unwrap();
    logout.destroy();
    plain.save(logout).unwrap();
    other.insert("theme", "dark").unwrap();
    assert!(plain.save(other).unwrap().ended);
    secrets.extend([id.clone(), format!("session:{id}")]);

    // An undecodable value met while merging a conflicting save.
    let cookie = new_session(&plain, "eve");
    let id = id_of(&cookie);
    let mut session = plain.load(Some(&cookie)).unwrap();
    plain
        .store()
        .set(&format!("session:{id}"), b"\xc1 concurrent", ttl)
        .unwrap();
    session.insert("theme", "light").unwrap();
    plain.save(session).unwrap();
    secrets.extend([id.clone(), format!("session:{id}")]);

    // Records that do not open at rest: each is a fresh session and a log line.
    let key = DataKey::from_bytes([5; 32]);
    let sealed = manager(sqlite(), |b| b.data_key(key.clone()).compress_threshold(64));
    let cookie = new_session(&sealed, "hal");
    let id = id_of(&cookie);
    let store_key = format!("session:{id}");
    let mut record = sealed
        .store()
        .load(&store_key)
        .unwrap()
        .unwrap()
        .data
        .to_vec();
    let last = record.len() - 1;
    record[last] ^= 1;
    sealed.store().set(&store_key, &record, ttl).unwrap();
    assert!(sealed.load(Some(&cookie)).unwrap().is_new(), "altered");
    record[last] ^= 1;
    record[MAGIC.len()] = VERSION + 1;
    sealed.store().set(&store_key, &record, ttl).unwrap();
    assert!(
        sealed.load(Some(&cookie)).unwrap().is_new(),
        "unknown version"
    );
    let cookie = new_session(&sealed, "ida");
    let other_key = manager(sqlite(), |b| b.data_key(DataKey::from_bytes([6; 32])));
    assert!(
        other_key.load(Some(&cookie)).unwrap().is_new(),
        "unknown key"
    );
    let mut bomb = MAGIC.to_vec();
    bomb.extend_from_slice(&[VERSION, FLAG_COMPRESSED]);
    bomb.extend_from_slice(&u32::MAX.to_le_bytes());
    bomb.extend_from_slice(&[0x1f, 0, 0, 0, 0]);
    let compressing = manager(sqlite(), |b| b.compress_threshold(64));
    let bomb_key = format!("session:{}", id_of(&cookie));
    compressing.store().set(&bomb_key, &bomb, ttl).unwrap();
    assert!(compressing.load(Some(&cookie)).unwrap().is_new(), "bomb");
    secrets.extend([
        id,
        store_key,
        id_of(&cookie),
        bomb_key,
        key.to_base64().to_string(),
    ]);

    // A session file without a readable header.
    let files = dir.path().join("files");
    let filesystem = manager(StoreConfig::Filesystem(FileOptions::new(&files)), |b| b);
    let cookie = new_session(&filesystem, "fay");
    let id = id_of(&cookie);
    let file = std::fs::read_dir(&files)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| !path.file_name().unwrap().to_string_lossy().starts_with('.'))
        .expect("the session file");
    std::fs::write(&file, b"no header").unwrap();
    assert!(filesystem.load(Some(&cookie)).unwrap().is_new());
    secrets.extend([id.clone(), format!("session:{id}")]);

    // A failing store: the periodic cleanup runs into a dropped table.
    let cleaning = manager(sqlite(), |b| b.cleanup_every(1));
    let cookie = new_session(&cleaning, "gus");
    let id = id_of(&cookie);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE sessions")
        .unwrap();
    let error = cleaning.load(Some(&cookie)).unwrap_err().to_string();
    secrets.extend([id.clone(), format!("session:{id}")]);
    for secret in &secrets {
        assert!(!error.contains(secret.as_str()), "{error}");
    }

    let lines = lines();
    for expected in [
        "session cookie refused",
        "holds an undecodable value",
        "has no blob data",
        "ended by a concurrent request",
        "concurrent value undecodable",
        "has no readable header",
        "periodic cleanup failed",
        "at rest: authentication failed",
        "at rest: no configured data key",
        "unsupported envelope version",
        "over max_size",
    ] {
        assert!(
            lines.iter().any(|line| line.contains(expected)),
            "nothing logged {expected:?}:\n{}",
            lines.join("\n")
        );
    }
    for line in &lines {
        assert!(long_runs(line).is_empty(), "a full id or hash: {line}");
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "{secret} logged: {line}");
        }
    }
}
