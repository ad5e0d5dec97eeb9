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

fn fail(backend: &str, what: &str, error: impl std::fmt::Display) -> ! {
    panic!("{backend} baseline: {what} failed: {error}")
}

#[cfg(feature = "memory")]
pub use memory::MemoryRaw;
#[cfg(feature = "memory")]
mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::{Raw, RawCas, RawRecord};

    /// A `Mutex<HashMap>` of bytes and expiry, as the memory store keeps them.
    #[derive(Default)]
    pub struct MemoryRaw {
        map: Mutex<HashMap<String, (Vec<u8>, OffsetDateTime)>>,
    }

    fn live(
        map: &HashMap<String, (Vec<u8>, OffsetDateTime)>,
        key: &str,
    ) -> Option<(Vec<u8>, OffsetDateTime)> {
        let now = OffsetDateTime::now_utc();
        map.get(key).filter(|(_, at)| *at > now).cloned()
    }

    impl Raw for MemoryRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            let map = self.map.lock().unwrap();
            live(&map, key).map(|(data, _)| RawRecord::new(data))
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let mut map = self.map.lock().unwrap();
            if live(&map, key).is_some() {
                return false;
            }
            map.insert(
                key.to_owned(),
                (data.to_vec(), OffsetDateTime::now_utc() + ttl),
            );
            true
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let mut map = self.map.lock().unwrap();
            match map.get_mut(key) {
                Some(entry) if entry.1 > OffsetDateTime::now_utc() && entry.0 == expected.data => {
                    *entry = (data.to_vec(), OffsetDateTime::now_utc() + ttl);
                    RawCas::Stored
                }
                _ => RawCas::Conflict(live(&map, key).map(|(data, _)| RawRecord::new(data))),
            }
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let mut map = self.map.lock().unwrap();
            match live(&map, key) {
                Some((data, _)) if data == expected.data => {
                    map.remove(key);
                    RawCas::Stored
                }
                current => RawCas::Conflict(current.map(|(data, _)| RawRecord::new(data))),
            }
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            self.map.lock().unwrap().insert(
                key.to_owned(),
                (data.to_vec(), OffsetDateTime::now_utc() + ttl),
            );
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            match self.map.lock().unwrap().get_mut(key) {
                Some(entry) if entry.1 > OffsetDateTime::now_utc() => {
                    entry.1 = OffsetDateTime::now_utc() + ttl;
                    true
                }
                _ => false,
            }
        }
    }
}

#[cfg(feature = "filesystem")]
pub use file::FileRaw;
#[cfg(feature = "filesystem")]
mod file {
    use std::fs::{self, File, OpenOptions, Permissions};
    use std::io::{ErrorKind, Write};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::{Raw, RawCas, RawRecord, fail};

    const MODE: u32 = 0o600;

    /// `std::fs`: one file per key holding a 16-byte expiry header and the value, replaced
    /// through a temporary file and a rename, writes under a mutex and an `flock` on a lock
    /// file, and a directory count before each create (the store's file threshold).
    pub struct FileRaw {
        dir: PathBuf,
        lock: Mutex<File>,
        temp: AtomicU64,
    }

    impl FileRaw {
        pub fn open(dir: &Path) -> FileRaw {
            fs::create_dir_all(dir).unwrap_or_else(|e| fail("filesystem", "mkdir", e));
            let lock = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(".lock"))
                .unwrap_or_else(|e| fail("filesystem", "open lock", e));
            FileRaw {
                dir: dir.to_owned(),
                lock: Mutex::new(lock),
                temp: AtomicU64::new(0),
            }
        }

        fn read(&self, path: &Path) -> Option<Vec<u8>> {
            let mut bytes = match fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => return None,
                Err(e) => fail("filesystem", "read", e),
            };
            let seconds = i64::from_be_bytes(bytes[4..12].try_into().unwrap());
            if seconds <= OffsetDateTime::now_utc().unix_timestamp() {
                return None;
            }
            bytes.drain(..16);
            Some(bytes)
        }

        fn write(&self, path: &Path, data: &[u8], ttl: Duration) {
            let temp = self.dir.join(format!(
                ".tmp.{}.{}",
                std::process::id(),
                self.temp.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(MODE)
                .open(&temp)
                .unwrap_or_else(|e| fail("filesystem", "create", e));
            let at = OffsetDateTime::now_utc() + ttl;
            let mut header = [0u8; 16];
            header[..4].copy_from_slice(b"SSF1");
            header[4..12].copy_from_slice(&at.unix_timestamp().to_be_bytes());
            header[12..].copy_from_slice(&at.nanosecond().to_be_bytes());
            file.set_permissions(Permissions::from_mode(MODE))
                .and_then(|()| file.write_all(&header))
                .and_then(|()| file.write_all(data))
                .and_then(|()| fs::rename(&temp, path))
                .unwrap_or_else(|e| fail("filesystem", "write", e));
        }

        fn locked<T>(&self, f: impl FnOnce() -> T) -> T {
            let file = self.lock.lock().unwrap();
            file.lock()
                .unwrap_or_else(|e| fail("filesystem", "lock", e));
            let result = f();
            file.unlock()
                .unwrap_or_else(|e| fail("filesystem", "unlock", e));
            result
        }
    }

    impl Raw for FileRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            self.read(&self.dir.join(key)).map(RawRecord::new)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let path = self.dir.join(key);
            self.locked(|| {
                if self.read(&path).is_some() {
                    return false;
                }
                let files = fs::read_dir(&self.dir)
                    .unwrap_or_else(|e| fail("filesystem", "list", e))
                    .count();
                std::hint::black_box(files);
                self.write(&path, data, ttl);
                true
            })
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let path = self.dir.join(key);
            self.locked(|| match self.read(&path) {
                Some(current) if current == expected.data => {
                    self.write(&path, data, ttl);
                    RawCas::Stored
                }
                current => RawCas::Conflict(current.map(RawRecord::new)),
            })
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let path = self.dir.join(key);
            self.locked(|| match self.read(&path) {
                Some(current) if current == expected.data => {
                    fs::remove_file(&path).unwrap_or_else(|e| fail("filesystem", "delete", e));
                    RawCas::Stored
                }
                current => RawCas::Conflict(current.map(RawRecord::new)),
            })
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            let path = self.dir.join(key);
            self.locked(|| {
                let files = fs::read_dir(&self.dir)
                    .unwrap_or_else(|e| fail("filesystem", "list", e))
                    .count();
                std::hint::black_box(files);
                self.write(&path, data, ttl);
            })
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            let path = self.dir.join(key);
            self.locked(|| match self.read(&path) {
                Some(current) => {
                    self.write(&path, &current, ttl);
                    true
                }
                None => false,
            })
        }
    }
}

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRaw;
#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;
    use std::time::Duration;

    use r2d2::Pool;
    use r2d2_sqlite::SqliteConnectionManager;
    use rusqlite::{OptionalExtension, params};
    use time::OffsetDateTime;
    use time::format_description::FormatItem;
    use time::macros::format_description;

    use super::{Raw, RawCas, RawRecord, fail};

    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
    const LOAD: &str = "SELECT data, expiry FROM sessions WHERE session_id = ?1 AND expiry > ?2";
    const CREATE: &str = "INSERT INTO sessions (session_id, data, expiry) VALUES (?1, ?2, ?3) \
        ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry \
        WHERE sessions.expiry <= ?4 OR sessions.expiry IS NULL";
    const CAS: &str = "UPDATE sessions SET data = ?1, expiry = ?2 \
        WHERE session_id = ?3 AND data = ?4 AND expiry > ?5";
    const CAS_DELETE: &str =
        "DELETE FROM sessions WHERE session_id = ?1 AND data = ?2 AND expiry > ?3";
    const SET: &str = "INSERT INTO sessions (session_id, data, expiry) VALUES (?1, ?2, ?3) \
        ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry";
    const TOUCH: &str = "UPDATE sessions SET expiry = ?1 WHERE session_id = ?2 AND expiry > ?3";

    /// rusqlite on an r2d2 pool of WAL connections, the store's table and statements.
    pub struct SqliteRaw {
        pool: Pool<SqliteConnectionManager>,
    }

    fn text(at: OffsetDateTime) -> String {
        at.format(FORMAT).unwrap()
    }

    impl SqliteRaw {
        pub fn open(path: &Path, pool_size: u32) -> SqliteRaw {
            let manager = SqliteConnectionManager::file(path).with_init(|conn| {
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "NORMAL")
            });
            let pool = Pool::builder()
                .max_size(pool_size)
                .idle_timeout(None)
                .max_lifetime(None)
                .build(manager)
                .unwrap_or_else(|e| fail("sqlite", "open", e));
            pool.get()
                .unwrap()
                .execute_batch(
                    "CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     session_id VARCHAR(255) UNIQUE NOT NULL, data BLOB, expiry DATETIME); \
                     CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions(expiry);",
                )
                .unwrap_or_else(|e| fail("sqlite", "create table", e));
            SqliteRaw { pool }
        }

        fn read(conn: &rusqlite::Connection, key: &str) -> Option<RawRecord> {
            conn.prepare_cached(LOAD)
                .and_then(|mut statement| {
                    statement
                        .query_row(params![key, text(OffsetDateTime::now_utc())], |row| {
                            let expiry: String = row.get(1)?;
                            std::hint::black_box(expiry);
                            Ok(RawRecord::new(row.get(0)?))
                        })
                        .optional()
                })
                .unwrap_or_else(|e| fail("sqlite", "load", e))
        }

        fn execute(&self, sql: &str, params: impl rusqlite::Params) -> usize {
            self.pool
                .get()
                .unwrap_or_else(|e| fail("sqlite", "check-out", e))
                .prepare_cached(sql)
                .and_then(|mut statement| statement.execute(params))
                .unwrap_or_else(|e| fail("sqlite", "statement", e))
        }
    }

    impl Raw for SqliteRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            let conn = self
                .pool
                .get()
                .unwrap_or_else(|e| fail("sqlite", "check-out", e));
            Self::read(&conn, key)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let now = OffsetDateTime::now_utc();
            self.execute(CREATE, params![key, data, text(now + ttl), text(now)]) == 1
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let conn = self
                .pool
                .get()
                .unwrap_or_else(|e| fail("sqlite", "check-out", e));
            let now = OffsetDateTime::now_utc();
            let changed = conn
                .prepare_cached(CAS)
                .and_then(|mut statement| {
                    statement.execute(params![
                        data,
                        text(now + ttl),
                        key,
                        expected.data,
                        text(now)
                    ])
                })
                .unwrap_or_else(|e| fail("sqlite", "compare-and-set", e));
            if changed == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(Self::read(&conn, key))
            }
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let conn = self
                .pool
                .get()
                .unwrap_or_else(|e| fail("sqlite", "check-out", e));
            let now = text(OffsetDateTime::now_utc());
            let deleted = conn
                .prepare_cached(CAS_DELETE)
                .and_then(|mut statement| statement.execute(params![key, expected.data, now]))
                .unwrap_or_else(|e| fail("sqlite", "compare-and-delete", e));
            if deleted == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(Self::read(&conn, key))
            }
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            self.execute(
                SET,
                params![key, data, text(OffsetDateTime::now_utc() + ttl)],
            );
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            let now = OffsetDateTime::now_utc();
            self.execute(TOUCH, params![text(now + ttl), key, text(now)]) == 1
        }
    }
}

/// `at` as a `TIMESTAMP WITHOUT TIME ZONE` / `DATETIME` in UTC.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn utc(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    time::PrimitiveDateTime::new(at.date(), at.time())
}

#[cfg(feature = "postgres")]
pub use postgres::PostgresRaw;
#[cfg(feature = "postgres")]
mod postgres {
    use std::str::FromStr;
    use std::time::Duration;

    use postgres::{Client, NoTls, Statement};
    use r2d2::{ManageConnection, Pool};
    use r2d2_postgres::PostgresConnectionManager;
    use time::{OffsetDateTime, PrimitiveDateTime};

    use super::{Raw, RawCas, RawRecord, fail, utc};

    /// A connection with the statements prepared on it.
    pub struct Connection {
        client: Client,
        load: Statement,
        create: Statement,
        cas: Statement,
        cas_delete: Statement,
        set: Statement,
        touch: Statement,
    }

    struct Manager {
        inner: PostgresConnectionManager<NoTls>,
        table: String,
    }

    impl ManageConnection for Manager {
        type Connection = Connection;
        type Error = postgres::Error;

        fn connect(&self) -> Result<Connection, postgres::Error> {
            let mut client = self.inner.connect()?;
            let t = &self.table;
            let upsert = format!(
                "INSERT INTO {t} (session_id, data, expiry) VALUES ($1, $2, $3) ON CONFLICT \
                 (session_id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry"
            );
            Ok(Connection {
                load: client.prepare(&format!(
                    "SELECT data, expiry FROM {t} WHERE session_id = $1 AND expiry > $2"
                ))?,
                create: client.prepare(&format!(
                    "{upsert} WHERE {t}.expiry <= $4 OR {t}.expiry IS NULL"
                ))?,
                cas: client.prepare(&format!(
                    "UPDATE {t} SET data = $1, expiry = $2 \
                     WHERE session_id = $3 AND data = $4 AND expiry > $5"
                ))?,
                cas_delete: client.prepare(&format!(
                    "DELETE FROM {t} WHERE session_id = $1 AND data = $2 AND expiry > $3"
                ))?,
                set: client.prepare(&upsert)?,
                touch: client.prepare(&format!(
                    "UPDATE {t} SET expiry = $1 WHERE session_id = $2 AND expiry > $3"
                ))?,
                client,
            })
        }

        fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
            self.inner.is_valid(&mut conn.client)
        }

        fn has_broken(&self, conn: &mut Connection) -> bool {
            self.inner.has_broken(&mut conn.client)
        }
    }

    /// `postgres` on an r2d2 pool (r2d2_postgres), statements prepared once per connection.
    /// `check_out_test`: whether the pool runs r2d2_postgres' validity query (an empty
    /// simple query, one round trip) before handing out a connection, as r2d2 does by
    /// default.
    pub struct PostgresRaw {
        pool: Pool<Manager>,
    }

    impl PostgresRaw {
        pub fn open(url: &str, table: &str, pool_size: u32, check_out_test: bool) -> PostgresRaw {
            let config =
                postgres::Config::from_str(url).unwrap_or_else(|e| fail("postgres", "URL", e));
            let inner = PostgresConnectionManager::new(config, NoTls);
            let mut client = inner
                .connect()
                .unwrap_or_else(|e| fail("postgres", &format!("connecting to {url}"), e));
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} (id SERIAL PRIMARY KEY, \
                     session_id VARCHAR(255) UNIQUE NOT NULL, data BYTEA, \
                     expiry TIMESTAMP WITHOUT TIME ZONE); \
                     CREATE INDEX IF NOT EXISTS {table}_expiry_idx ON {table} (expiry);"
                ))
                .unwrap_or_else(|e| fail("postgres", "create table", e));
            let pool = Pool::builder()
                .max_size(pool_size)
                .min_idle(Some(1))
                .test_on_check_out(check_out_test)
                .build(Manager {
                    inner,
                    table: table.to_owned(),
                })
                .unwrap_or_else(|e| fail("postgres", "pool", e));
            PostgresRaw { pool }
        }

        fn conn(&self) -> r2d2::PooledConnection<Manager> {
            self.pool
                .get()
                .unwrap_or_else(|e| fail("postgres", "check-out", e))
        }

        fn read(conn: &mut Connection, key: &str) -> Option<RawRecord> {
            let now = utc(OffsetDateTime::now_utc());
            conn.client
                .query_opt(&conn.load, &[&key, &now])
                .unwrap_or_else(|e| fail("postgres", "load", e))
                .map(|row| {
                    let expiry: PrimitiveDateTime = row.get(1);
                    std::hint::black_box(expiry);
                    RawRecord::new(row.get(0))
                })
        }
    }

    impl Raw for PostgresRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            Self::read(&mut self.conn(), key)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let now = OffsetDateTime::now_utc();
            let conn = &mut *self.conn();
            conn.client
                .execute(&conn.create, &[&key, &data, &utc(now + ttl), &utc(now)])
                .unwrap_or_else(|e| fail("postgres", "create", e))
                == 1
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let now = OffsetDateTime::now_utc();
            let conn = &mut *self.conn();
            let changed = conn
                .client
                .execute(
                    &conn.cas,
                    &[&data, &utc(now + ttl), &key, &expected.data, &utc(now)],
                )
                .unwrap_or_else(|e| fail("postgres", "compare-and-set", e));
            if changed == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(Self::read(conn, key))
            }
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let now = utc(OffsetDateTime::now_utc());
            let conn = &mut *self.conn();
            let deleted = conn
                .client
                .execute(&conn.cas_delete, &[&key, &expected.data, &now])
                .unwrap_or_else(|e| fail("postgres", "compare-and-delete", e));
            if deleted == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(Self::read(conn, key))
            }
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            let expiry = utc(OffsetDateTime::now_utc() + ttl);
            let conn = &mut *self.conn();
            conn.client
                .execute(&conn.set, &[&key, &data, &expiry])
                .unwrap_or_else(|e| fail("postgres", "set", e));
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            let now = OffsetDateTime::now_utc();
            let conn = &mut *self.conn();
            conn.client
                .execute(&conn.touch, &[&utc(now + ttl), &key, &utc(now)])
                .unwrap_or_else(|e| fail("postgres", "touch", e))
                == 1
        }
    }
}

#[cfg(feature = "mysql")]
pub use mysql::MysqlRaw;
#[cfg(feature = "mysql")]
mod mysql {
    use std::time::Duration;

    use mysql::consts::CapabilityFlags;
    use mysql::prelude::Queryable;
    use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn};
    use time::{OffsetDateTime, PrimitiveDateTime};

    use super::{Raw, RawCas, RawRecord, fail, utc};

    /// The `mysql` crate's own pool, statements prepared once per connection (its statement
    /// cache), `CLIENT_FOUND_ROWS` as the store sets it. `check_health`: whether the pool
    /// pings a connection before handing it out (the crate's default).
    pub struct MysqlRaw {
        pool: Pool,
        load: String,
        insert: String,
        delete_expired: String,
        cas: String,
        cas_delete: String,
        set: String,
        touch: String,
    }

    impl MysqlRaw {
        pub fn open(url: &str, table: &str, pool_size: usize, check_health: bool) -> MysqlRaw {
            let opts = Opts::from_url(url).unwrap_or_else(|e| fail("mysql", "URL", e));
            let builder = OptsBuilder::from_opts(opts)
                .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
                .pool_opts(
                    PoolOpts::new()
                        .with_constraints(PoolConstraints::new(1, pool_size).unwrap())
                        .with_reset_connection(false)
                        .with_check_health(check_health),
                );
            let pool = Pool::new(builder)
                .unwrap_or_else(|e| fail("mysql", &format!("connecting to {url}"), e));
            pool.get_conn()
                .and_then(|mut conn| {
                    conn.query_drop(format!(
                        "CREATE TABLE IF NOT EXISTS `{table}` (id INTEGER NOT NULL AUTO_INCREMENT, \
                         session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                         data LONGBLOB, expiry DATETIME(6), PRIMARY KEY (id), \
                         UNIQUE KEY session_id (session_id), KEY expiry_idx (expiry)\
                         ) DEFAULT CHARSET = utf8mb4"
                    ))
                })
                .unwrap_or_else(|e| fail("mysql", "create table", e));
            let t = format!("`{table}`");
            let insert = format!("INSERT INTO {t} (session_id, data, expiry) VALUES (?, ?, ?)");
            MysqlRaw {
                pool,
                load: format!("SELECT data, expiry FROM {t} WHERE session_id = ? AND expiry > ?"),
                delete_expired: format!("DELETE FROM {t} WHERE session_id = ? AND expiry <= ?"),
                cas: format!(
                    "UPDATE {t} SET data = ?, expiry = ? \
                     WHERE session_id = ? AND data = ? AND expiry > ?"
                ),
                cas_delete: format!(
                    "DELETE FROM {t} WHERE session_id = ? AND data = ? AND expiry > ?"
                ),
                set: format!(
                    "{insert} ON DUPLICATE KEY UPDATE data = VALUES(data), expiry = VALUES(expiry)"
                ),
                insert,
                touch: format!("UPDATE {t} SET expiry = ? WHERE session_id = ? AND expiry > ?"),
            }
        }

        fn conn(&self) -> PooledConn {
            self.pool
                .get_conn()
                .unwrap_or_else(|e| fail("mysql", "check-out", e))
        }

        fn read(&self, conn: &mut PooledConn, key: &str) -> Option<RawRecord> {
            let row: Option<(Vec<u8>, PrimitiveDateTime)> = conn
                .exec_first(&self.load, (key, utc(OffsetDateTime::now_utc())))
                .unwrap_or_else(|e| fail("mysql", "load", e));
            row.map(|(data, expiry)| {
                std::hint::black_box(expiry);
                RawRecord::new(data)
            })
        }

        fn affected(
            &self,
            conn: &mut PooledConn,
            sql: &str,
            params: impl Into<mysql::Params>,
        ) -> u64 {
            conn.exec_drop(sql, params)
                .unwrap_or_else(|e| fail("mysql", "statement", e));
            conn.affected_rows()
        }

        fn insert(&self, conn: &mut PooledConn, key: &str, data: &[u8], ttl: Duration) -> bool {
            let expiry = utc(OffsetDateTime::now_utc() + ttl);
            match conn.exec_drop(&self.insert, (key, data, expiry)) {
                Ok(()) => true,
                Err(mysql::Error::MySqlError(e)) if e.code == 1062 => false,
                Err(e) => fail("mysql", "insert", e),
            }
        }
    }

    impl Raw for MysqlRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            self.read(&mut self.conn(), key)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let mut conn = self.conn();
            if self.insert(&mut conn, key, data, ttl) {
                return true;
            }
            let now = utc(OffsetDateTime::now_utc());
            self.affected(&mut conn, &self.delete_expired, (key, now)) == 1
                && self.insert(&mut conn, key, data, ttl)
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let mut conn = self.conn();
            let now = OffsetDateTime::now_utc();
            let matched = self.affected(
                &mut conn,
                &self.cas,
                (data, utc(now + ttl), key, &expected.data, utc(now)),
            );
            if matched == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(self.read(&mut conn, key))
            }
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let mut conn = self.conn();
            let now = utc(OffsetDateTime::now_utc());
            if self.affected(&mut conn, &self.cas_delete, (key, &expected.data, now)) == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(self.read(&mut conn, key))
            }
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            let expiry = utc(OffsetDateTime::now_utc() + ttl);
            self.affected(&mut self.conn(), &self.set, (key, data, expiry));
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            let now = OffsetDateTime::now_utc();
            self.affected(
                &mut self.conn(),
                &self.touch,
                (utc(now + ttl), key, utc(now)),
            ) == 1
        }
    }
}

#[cfg(feature = "mongodb")]
pub use mongo::MongoRaw;
#[cfg(feature = "mongodb")]
mod mongo {
    use std::time::Duration;

    use mongodb::IndexModel;
    use mongodb::bson::spec::BinarySubtype;
    use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
    use mongodb::error::{ErrorKind, WriteFailure};
    use mongodb::options::{ClientOptions, IndexOptions};
    use mongodb::sync::{Client, Collection};

    use super::{Raw, RawCas, RawRecord, fail};

    /// The `mongodb` crate's sync API (its own pool): the store's filters, updates and
    /// projection on a collection with the same indexes.
    pub struct MongoRaw {
        collection: Collection<Document>,
    }

    fn binary(data: &[u8]) -> Binary {
        Binary {
            subtype: BinarySubtype::Generic,
            bytes: data.to_vec(),
        }
    }

    fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
        match error.kind.as_ref() {
            ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == 11000,
            ErrorKind::Command(failure) => failure.code == 11000,
            _ => false,
        }
    }

    fn date_after(ttl: Duration) -> DateTime {
        DateTime::from_millis(DateTime::now().timestamp_millis() + ttl.as_millis() as i64)
    }

    impl MongoRaw {
        pub fn open(uri: &str, database: &str, collection: &str) -> MongoRaw {
            let options = ClientOptions::parse(uri)
                .run()
                .unwrap_or_else(|e| fail("mongodb", "URI", e));
            let client =
                Client::with_options(options).unwrap_or_else(|e| fail("mongodb", "client", e));
            let collection = client.database(database).collection::<Document>(collection);
            collection
                .create_indexes([
                    IndexModel::builder()
                        .keys(doc! { "expiration": 1 })
                        .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                        .build(),
                    IndexModel::builder()
                        .keys(doc! { "id": 1 })
                        .options(IndexOptions::builder().unique(true).build())
                        .build(),
                ])
                .run()
                .unwrap_or_else(|e| fail("mongodb", &format!("indexes on {uri}"), e));
            MongoRaw { collection }
        }

        fn write(&self, filter: Document, data: &[u8], ttl: Duration, upsert: bool) -> bool {
            let update = doc! { "$set": { "val": binary(data), "expiration": date_after(ttl) } };
            let result = self
                .collection
                .update_one(filter, update)
                .upsert(upsert)
                .run();
            match result {
                Ok(result) => result.matched_count == 1 || result.upserted_id.is_some(),
                Err(e) if is_duplicate_key(&e) => false,
                Err(e) => fail("mongodb", "update", e),
            }
        }
    }

    impl Raw for MongoRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            let mut document = self
                .collection
                .find_one(doc! { "id": key, "expiration": { "$gt": DateTime::now() } })
                .projection(doc! { "_id": 0, "val": 1, "expiration": 1 })
                .run()
                .unwrap_or_else(|e| fail("mongodb", "find", e))?;
            std::hint::black_box(document.get_datetime("expiration").ok());
            match document.remove("val") {
                Some(Bson::Binary(binary)) => Some(RawRecord::new(binary.bytes)),
                _ => None,
            }
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            self.write(
                doc! { "id": key, "expiration": { "$lte": DateTime::now() } },
                data,
                ttl,
                true,
            )
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let filter = doc! {
                "id": key,
                "val": binary(&expected.data),
                "expiration": { "$gt": DateTime::now() },
            };
            if self.write(filter, data, ttl, false) {
                RawCas::Stored
            } else {
                RawCas::Conflict(self.load(key))
            }
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            let filter = doc! {
                "id": key,
                "val": binary(&expected.data),
                "expiration": { "$gt": DateTime::now() },
            };
            let deleted = self
                .collection
                .delete_one(filter)
                .run()
                .unwrap_or_else(|e| fail("mongodb", "delete", e))
                .deleted_count;
            if deleted == 1 {
                RawCas::Stored
            } else {
                RawCas::Conflict(self.load(key))
            }
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            if !self.write(doc! { "id": key }, data, ttl, true) {
                self.write(doc! { "id": key }, data, ttl, true);
            }
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            self.collection
                .update_one(
                    doc! { "id": key, "expiration": { "$gt": DateTime::now() } },
                    doc! { "$set": { "expiration": date_after(ttl) } },
                )
                .run()
                .unwrap_or_else(|e| fail("mongodb", "touch", e))
                .matched_count
                == 1
        }
    }
}

#[cfg(feature = "redis")]
pub use self::redis::RedisRaw;
#[cfg(feature = "redis")]
mod redis {
    use std::time::Duration;

    use r2d2::{ManageConnection, Pool};
    use redis::cluster::ClusterClient;
    use redis::{Client, ConnectionLike, Script, Value};

    use super::{Raw, RawCas, RawRecord, fail};

    /// The store's compare-and-set / compare-and-delete script, word for word.
    const WRITE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  if #ARGV == 3 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
if not current then
  return 0
end
return {current, redis.call('PEXPIRETIME', KEYS[1])}
";

    enum Pools {
        Server(Pool<Client>),
        Cluster(Pool<ClusterClient>),
    }

    /// redis-rs on an r2d2 pool (its own r2d2 support) without a check on check-out, as the
    /// store's: loads are a `GET` + `PTTL` pipeline, compare-and-set the store's script by
    /// `EVALSHA`, create `SET NX PX`, set `SET PX`, touch `PEXPIRE`.
    pub struct RedisRaw {
        pools: Pools,
        write: Script,
    }

    fn pool<M: ManageConnection>(manager: M, size: u32) -> Pool<M> {
        Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build(manager)
            .unwrap_or_else(|e| fail("redis", "pool", e))
    }

    fn ms(ttl: Duration) -> u64 {
        ttl.as_millis() as u64
    }

    impl RedisRaw {
        pub fn open(url: &str, pool_size: u32) -> RedisRaw {
            let client = Client::open(url).unwrap_or_else(|e| fail("redis", url, e));
            client
                .get_connection()
                .unwrap_or_else(|e| fail("redis", &format!("connecting to {url}"), e));
            RedisRaw {
                pools: Pools::Server(pool(client, pool_size)),
                write: Script::new(WRITE_SCRIPT),
            }
        }

        pub fn open_cluster(nodes: &[String], pool_size: u32) -> RedisRaw {
            let client = ClusterClient::new(nodes.to_vec())
                .unwrap_or_else(|e| fail("redis cluster", "client", e));
            client
                .get_connection()
                .unwrap_or_else(|e| fail("redis cluster", &format!("connecting to {nodes:?}"), e));
            RedisRaw {
                pools: Pools::Cluster(pool(client, pool_size)),
                write: Script::new(WRITE_SCRIPT),
            }
        }

        fn with<T>(&self, f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>) -> T {
            let result = match &self.pools {
                Pools::Server(pool) => {
                    f(&mut *pool.get().unwrap_or_else(|e| fail("redis", "check-out", e)))
                }
                Pools::Cluster(pool) => {
                    f(&mut *pool.get().unwrap_or_else(|e| fail("redis", "check-out", e)))
                }
            };
            result.unwrap_or_else(|e| fail("redis", "command", e))
        }

        fn script(&self, key: &str, args: &[&[u8]]) -> RawCas {
            let reply: Value = self.with(|conn| {
                let mut invocation = self.write.key(key);
                for arg in args {
                    invocation.arg(*arg);
                }
                invocation.invoke(conn)
            });
            match reply {
                Value::Int(1) => RawCas::Stored,
                Value::Int(0) => RawCas::Conflict(None),
                Value::Array(mut items) => match items.swap_remove(0) {
                    Value::BulkString(data) => RawCas::Conflict(Some(RawRecord::new(data))),
                    other => fail("redis", "script", format!("{other:?}")),
                },
                other => fail("redis", "script", format!("{other:?}")),
            }
        }
    }

    impl Raw for RedisRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            // Sent as packed commands, which Cluster connections route by key too
            // (`Pipeline::query` refuses them).
            let mut pipe = redis::pipe();
            pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
            let packed = pipe.get_packed_pipeline();
            let replies = self.with(|conn| conn.req_packed_commands(&packed, 0, 2));
            let (data, ttl): (Option<Vec<u8>>, i64) =
                redis::from_redis_value(Value::Array(replies))
                    .unwrap_or_else(|e| fail("redis", "GET + PTTL", e));
            std::hint::black_box(ttl);
            data.map(RawRecord::new)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let reply: Value = self.with(|conn| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(data)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms(ttl))
                    .query(conn)
            });
            reply == Value::Okay
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let ttl = ms(ttl).to_string();
            self.script(key, &[&expected.data, data, ttl.as_bytes()])
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            self.script(key, &[&expected.data])
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            self.with(|conn| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(data)
                    .arg("PX")
                    .arg(ms(ttl))
                    .query::<()>(conn)
            });
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            self.with(|conn| redis::cmd("PEXPIRE").arg(key).arg(ms(ttl)).query(conn))
        }
    }
}

#[cfg(feature = "memcached")]
pub use memcached::MemcachedRaw;
#[cfg(feature = "memcached")]
mod memcached {
    use std::io::{self, Write};
    use std::time::Duration;

    use memcache::{Client, CommandError, MemcacheError, Stream, ToMemcacheValue};
    use time::OffsetDateTime;

    use super::{Raw, RawCas, RawRecord, fail};

    /// An absolute exptime in the past: the item expires at once.
    const EXPIRED: u32 = 30 * 24 * 3600 + 1;

    /// A value with the expiry in its client flags, as the store writes it.
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

    /// The `memcache` crate (binary protocol) on an r2d2 pool without a check on check-out:
    /// `get` (value, flags, cas token), `cas`, `add`, `set`; the expiry kept in the flags as
    /// the store keeps it, so a touch is a `get` and a `cas` as in the store.
    pub struct MemcachedRaw {
        client: Client,
    }

    fn expiry(ttl: Duration) -> (u32, u32) {
        let at = OffsetDateTime::now_utc().unix_timestamp() as u64 + ttl.as_secs() + 1;
        (ttl.as_secs().max(1) as u32, at as u32)
    }

    type Fetched = (Vec<u8>, u32, Option<u64>);

    impl MemcachedRaw {
        pub fn open(server: &str, pool_size: u32) -> MemcachedRaw {
            let url = url::Url::parse(&format!("memcache://{server}?timeout=5"))
                .unwrap_or_else(|e| fail("memcached", server, e));
            let pool = r2d2::Pool::builder()
                .max_size(pool_size)
                .min_idle(Some(0))
                .test_on_check_out(false)
                .build_unchecked(memcache::ConnectionManager::new(url));
            let client = Client::with_pool(pool).unwrap_or_else(|e| fail("memcached", "client", e));
            client
                .version()
                .unwrap_or_else(|e| fail("memcached", &format!("connecting to {server}"), e));
            MemcachedRaw { client }
        }

        fn fetch(&self, key: &str) -> Option<RawRecord> {
            let (data, flags, token) = self
                .client
                .get::<Fetched>(key)
                .unwrap_or_else(|e| fail("memcached", "get", e))?;
            if i64::from(flags) <= OffsetDateTime::now_utc().unix_timestamp() {
                return None;
            }
            Some(RawRecord {
                data,
                token: token.expect("memcached gives cas tokens"),
            })
        }

        fn cas_item(
            &self,
            key: &str,
            expected: &RawRecord,
            item: Item<'_>,
            exptime: u32,
        ) -> RawCas {
            if self
                .client
                .cas(key, item, exptime, expected.token)
                .unwrap_or_else(|e| fail("memcached", "cas", e))
            {
                RawCas::Stored
            } else {
                RawCas::Conflict(self.fetch(key))
            }
        }
    }

    impl Raw for MemcachedRaw {
        fn load(&self, key: &str) -> Option<RawRecord> {
            self.fetch(key)
        }

        fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
            let (exptime, flags) = expiry(ttl);
            match self.client.add(key, Item { data, flags }, exptime) {
                Ok(()) => true,
                Err(MemcacheError::CommandError(CommandError::KeyExists)) => false,
                Err(e) => fail("memcached", "add", e),
            }
        }

        fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
            let (exptime, flags) = expiry(ttl);
            self.cas_item(key, expected, Item { data, flags }, exptime)
        }

        fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
            self.cas_item(
                key,
                expected,
                Item {
                    data: b"",
                    flags: 0,
                },
                EXPIRED,
            )
        }

        fn set(&self, key: &str, data: &[u8], ttl: Duration) {
            let (exptime, flags) = expiry(ttl);
            self.client
                .set(key, Item { data, flags }, exptime)
                .unwrap_or_else(|e| fail("memcached", "set", e));
        }

        fn touch(&self, key: &str, ttl: Duration) -> bool {
            let Some(current) = self.fetch(key) else {
                return false;
            };
            let (exptime, flags) = expiry(ttl);
            let item = Item {
                data: &current.data,
                flags,
            };
            !matches!(
                self.cas_item(key, &current, item, exptime),
                RawCas::Conflict(None)
            )
        }
    }
}
