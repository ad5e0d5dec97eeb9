//! SQLite store: Flask-Session's SQLAlchemy table in a database file, through a connection pool.
//!
//! The table (default `sessions`) is the one Flask-Session's SQLAlchemy model creates, so both
//! can share a database:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "sessions" (
//!     id INTEGER PRIMARY KEY AUTOINCREMENT,
//!     session_id VARCHAR(255) UNIQUE NOT NULL,  -- the prefixed key
//!     data BLOB,                                -- the encoded session
//!     expiry DATETIME                           -- UTC, 'YYYY-MM-DD HH:MM:SS.ffffff'
//! );
//! CREATE INDEX IF NOT EXISTS "sessions_expiry_idx" ON "sessions"(expiry);
//! ```
//!
//! The expiry is text in SQLAlchemy's SQLite `DateTime` format, which orders as it compares;
//! every statement compares it with "now" bound in the same format, so rows past their expiry
//! are invisible until [`Store::purge_expired`] deletes them. Compare-and-set is
//! `UPDATE … WHERE session_id = ? AND data = ?`. The table name, validated, is the only text
//! spliced into SQL; every value is a bound parameter.
//!
//! A database file the store creates is readable and writable by its owner only (0600,
//! whatever the umask); SQLite creates the `-wal` and `-shm` files with the same mode. The
//! mode of an existing file is left as it is.
//!
//! Each pooled connection uses WAL journaling, `synchronous=NORMAL` and a busy timeout (5 s
//! by default, `busy_timeout` in the URL). A call waits at most `pool_timeout` (5 s by
//! default) for a connection of the pool.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::shared::{DEFAULT_POOL_TIMEOUT, expiry_after, pool_timeout_message};
use super::sql::{PURGE_BATCH, RowStatements, purge_in_batches, row_record};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, validate_table_name};

const BACKEND: &str = "sqlite";
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// SQLAlchemy's SQLite `DateTime` storage format.
const EXPIRY_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]");
/// What reads accept: the same, with any number of fraction digits or none.
const EXPIRY_PARSE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]");

/// Options of the SQLite store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file, created if missing.
    pub path: PathBuf,
    /// The table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters.
    pub table: String,
    /// The most connections the pool opens (at least 1).
    pub pool_size: u32,
    /// How long a write waits for another connection's write lock before failing with
    /// "database is locked" (SQLite's busy timeout; default 5 s).
    pub busy_timeout: Duration,
    /// How long a call waits for a connection of the pool when all are in use (default 5 s).
    pub pool_timeout: Duration,
}

impl SqliteOptions {
    /// Options for the database at `path` with table `sessions` and 8 pooled connections.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            table: "sessions".to_owned(),
            pool_size: 8,
            busy_timeout: BUSY_TIMEOUT,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
        }
    }

    /// Parses `sqlite:///abs/path.db` (absolute) or `sqlite:relative/path.db` (relative),
    /// taking the `table`, `pool_size`, `busy_timeout` and `pool_timeout` (seconds)
    /// parameters and leaving the others.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<SqliteOptions> {
        let path = if url.cannot_be_a_base() {
            PathBuf::from(OsString::from_vec(
                percent_encoding::percent_decode_str(url.path()).collect(),
            ))
        } else {
            if let Some(host) = url
                .host_str()
                .filter(|h| !h.is_empty() && *h != "localhost")
            {
                return Err(Error::config(
                    "store URL",
                    format!("sqlite URL with host {host:?}: only local files are supported"),
                ));
            }
            url.to_file_path()
                .map_err(|()| Error::config("store URL", "the sqlite URL is not a local path"))?
        };
        let mut options = SqliteOptions::new(path);
        if let Some(table) = params.take("table") {
            options.table = table;
        }
        if let Some(pool_size) = params.take_parsed("pool_size")? {
            options.pool_size = pool_size;
        }
        if let Some(seconds) = params.take_parsed::<u64>("busy_timeout")? {
            options.busy_timeout = Duration::from_secs(seconds);
        }
        if let Some(timeout) = params.take_seconds("pool_timeout")? {
            options.pool_timeout = timeout;
        }
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        super::shared::check_timeouts(&[
            ("busy_timeout", Some(self.busy_timeout)),
            ("pool_timeout", Some(self.pool_timeout)),
        ])?;
        let path = self.path.as_os_str();
        if path.is_empty() || path == ":memory:" {
            return Err(Error::config(
                "path",
                "the sqlite store needs a database file (use the memory store for no file)",
            ));
        }
        validate_table_name(&self.table).map_err(|message| Error::config("table", message))?;
        if self.pool_size == 0 {
            return Err(Error::config("pool_size", "must be at least 1"));
        }
        if self.pool_timeout.is_zero() {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        Ok(())
    }
}

/// The SQL of each operation, with the table name spliced in once.
#[derive(Debug)]
struct Statements {
    load: String,
    create: String,
    compare_and_set: String,
    compare_and_delete: String,
    set: String,
    delete: String,
    touch: String,
    purge: String,
    list_keys: String,
}

impl Statements {
    /// `table` must be validated: it is spliced (quoted) into the SQL.
    fn new(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        let upsert = format!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES (?1, ?2, ?3) \
             ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry"
        );
        let row = RowStatements::new(&t, |n| format!("?{n}"));
        Statements {
            load: row.load,
            create: format!("{upsert} WHERE {t}.expiry <= ?4 OR {t}.expiry IS NULL"),
            compare_and_set: row.compare_and_set,
            compare_and_delete: row.compare_and_delete,
            set: upsert,
            delete: row.delete,
            touch: row.touch,
            list_keys: row.list_keys,
            purge: format!(
                "DELETE FROM {t} WHERE id IN \
                 (SELECT id FROM {t} WHERE expiry <= ?1 LIMIT {PURGE_BATCH})"
            ),
        }
    }
}

/// Sessions in an SQLite table, shared with Flask-Session; see the
/// [module documentation](self) for the schema.
///
/// ```
/// use sessionstore::store::{Store, sqlite::{SqliteOptions, SqliteStore}};
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("sessions.db"))).unwrap();
/// assert!(store.create("session:k", b"\x80", std::time::Duration::from_secs(60)).unwrap());
/// assert_eq!(&store.load("session:k").unwrap().unwrap().data[..], b"\x80");
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    sql: Statements,
    pool_timeout: Duration,
}

impl SqliteStore {
    /// Opens the pool and creates the database file (mode 0600) and the table and its index
    /// if missing.
    pub fn open(options: &SqliteOptions) -> Result<SqliteStore> {
        options.validate()?;
        create_private(&options.path).map_err(|e| {
            Error::store_caused_by(
                BACKEND,
                format!("cannot create {}", options.path.display()),
                e,
            )
        })?;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_URI))
            .with_init({
                let busy_timeout = options.busy_timeout;
                move |conn| init_connection(conn, busy_timeout)
            });
        // One direct connection first: it reports a bad path at once, with SQLite's message,
        // where the pool would retry until its timeout.
        let table = &options.table;
        manager
            .connect()
            .and_then(|conn| {
                conn.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS \"{table}\" (\
                         id INTEGER PRIMARY KEY AUTOINCREMENT, \
                         session_id VARCHAR(255) UNIQUE NOT NULL, \
                         data BLOB, \
                         expiry DATETIME); \
                     CREATE INDEX IF NOT EXISTS \"{table}_expiry_idx\" ON \"{table}\"(expiry);"
                ))
            })
            .map_err(|e| {
                Error::store_caused_by(
                    BACKEND,
                    format!("cannot open {}", options.path.display()),
                    e,
                )
            })?;
        // Connections to a local file never go stale: no idle timeout, no maximum lifetime,
        // hence no reaper job, so the pool's helper threads end as soon as the store is
        // dropped (with a pending reaper they would linger up to 30 s, e.g. in a C program).
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(options.pool_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .build(manager)
            .map_err(|e| {
                Error::store_caused_by(
                    BACKEND,
                    format!("cannot open {}", options.path.display()),
                    e,
                )
            })?;
        Ok(SqliteStore {
            pool,
            sql: Statements::new(table),
            pool_timeout: options.pool_timeout,
        })
    }

    fn connection(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        self.pool.get().map_err(|e| {
            Error::store_described(BACKEND, pool_timeout_message(self.pool_timeout, &e), e)
        })
    }

    /// The live record under `key`, read on `conn`.
    fn read(&self, conn: &Connection, key: &str) -> Result<Option<Record>> {
        let now = now_text()?;
        let mut statement = conn
            .prepare_cached(&self.sql.load)
            .map_err(Error::in_store(BACKEND))?;
        let row = statement
            .query_row(params![key, now], |row| {
                let data = match row.get_ref(0)? {
                    ValueRef::Blob(data) => Some(data.to_vec()),
                    _ => None,
                };
                let expiry = match row.get_ref(1)? {
                    ValueRef::Text(text) => parse_expiry(text),
                    _ => None,
                };
                Ok((data, expiry))
            })
            .optional()
            .map_err(Error::in_store(BACKEND))?;
        Ok(row.and_then(|(data, expiry)| row_record(BACKEND, key, data, expiry)))
    }

    /// Runs the statement `sql` with `params`, returning how many rows it changed.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.connection()?
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(Error::in_store(BACKEND))
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        let conn = self.connection()?;
        self.read(&conn, key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let expiry = expiry_text(expiry_after(BACKEND, ttl)?)?;
        let now = now_text()?;
        let written = self.execute(&self.sql.create, params![key, data, expiry, now])?;
        Ok(written == 1)
    }

    /// One transaction: one commit for the whole batch.
    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        let mut conn = self.connection()?;
        let now = now_text()?;
        let transaction = conn.transaction().map_err(Error::in_store(BACKEND))?;
        let mut stored = Vec::with_capacity(records.len());
        {
            let mut statement = transaction
                .prepare_cached(&self.sql.create)
                .map_err(Error::in_store(BACKEND))?;
            for (key, data, ttl) in records {
                let expiry = expiry_text(expiry_after(BACKEND, *ttl)?)?;
                let written = statement
                    .execute(params![key, data, expiry, now])
                    .map_err(Error::in_store(BACKEND))?;
                stored.push(written == 1);
            }
        }
        transaction.commit().map_err(Error::in_store(BACKEND))?;
        Ok(stored)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let conn = self.connection()?;
        let expiry = expiry_text(expiry_after(BACKEND, ttl)?)?;
        let now = now_text()?;
        let changed = conn
            .prepare_cached(&self.sql.compare_and_set)
            .and_then(|mut statement| {
                statement.execute(params![data, expiry, key, &expected.data[..], now])
            })
            .map_err(Error::in_store(BACKEND))?;
        if changed == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&conn, key)?))
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let conn = self.connection()?;
        let now = now_text()?;
        let deleted = conn
            .prepare_cached(&self.sql.compare_and_delete)
            .and_then(|mut statement| statement.execute(params![key, &expected.data[..], now]))
            .map_err(Error::in_store(BACKEND))?;
        if deleted == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&conn, key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expiry = expiry_text(expiry_after(BACKEND, ttl)?)?;
        self.execute(&self.sql.set, params![key, data, expiry])?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, params![key])?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiry = expiry_text(expiry_after(BACKEND, ttl)?)?;
        let now = now_text()?;
        let changed = self.execute(&self.sql.touch, params![expiry, key, now])?;
        Ok(changed == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let conn = self.connection()?;
        let mut statement = conn
            .prepare_cached(&self.sql.purge)
            .map_err(Error::in_store(BACKEND))?;
        let now = now_text()?;
        purge_in_batches(|| {
            let deleted = statement
                .execute(params![now])
                .map_err(Error::in_store(BACKEND))?;
            Ok(deleted as u64)
        })
    }

    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let conn = self.connection()?;
        let mut statement = conn
            .prepare_cached(&self.sql.list_keys)
            .map_err(Error::in_store(BACKEND))?;
        let limit = limit.max(1);
        let keys = statement
            .query_map(
                params![
                    cursor.unwrap_or(prefix),
                    prefix.chars().count() as i64,
                    prefix,
                    now_text()?,
                    limit as i64
                ],
                |row| row.get::<_, String>(0),
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(Error::in_store(BACKEND))?;
        Ok(super::shared::key_page(keys, limit))
    }
}

/// Creates the database file readable and writable by its owner only, whatever the umask, if
/// it does not exist; an existing file keeps its mode. SQLite gives the `-wal` and `-shm`
/// files the database file's mode.
fn create_private(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // A missing directory is reported by SQLite's own open, with its message.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sets up a new pooled connection.
fn init_connection(conn: &mut Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")
}

/// `at` in the stored expiry format.
fn expiry_text(at: OffsetDateTime) -> Result<String> {
    at.to_offset(UtcOffset::UTC)
        .format(EXPIRY_FORMAT)
        .map_err(|e| Error::store_caused_by(BACKEND, format!("cannot format the expiry {at}"), e))
}

fn now_text() -> Result<String> {
    expiry_text(OffsetDateTime::now_utc())
}

fn parse_expiry(text: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?;
    let at = PrimitiveDateTime::parse(text, EXPIRY_PARSE_FORMAT).ok()?;
    Some(at.assume_utc())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::test_support::contract::{
        InTempDir, Purge, concurrent_increments_lose_nothing, store_contract_tests,
    };
    use crate::store::test_support::store_error_message;
    use crate::store::test_support::store_urls::{self, rejected_key};

    const MINUTE: Duration = Duration::from_secs(60);

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(&SqliteOptions::new(dir.join("sessions.db"))).unwrap()
    }

    store_contract_tests! {
        mod contract;
        open: InTempDir::open(open),
        short_ttl: Duration::from_millis(50),
        // Expiries are stored with microsecond precision.
        precision: Duration::from_micros(1),
        purge: Purge::Counts,
    }

    /// A second pool on the same database stands in for another process.
    #[test]
    fn stores_on_one_database_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (open(dir.path()), open(dir.path()));
        concurrent_increments_lose_nothing(&[&first, &second]);
    }

    /// Writes a row directly, as Flask-Session would.
    fn insert_raw(dir: &Path, key: &str, data: &[u8], expiry: &str) {
        Connection::open(dir.join("sessions.db"))
            .unwrap()
            .execute(
                "INSERT INTO sessions (session_id, data, expiry) VALUES (?1, ?2, ?3)",
                params![key, data, expiry],
            )
            .unwrap();
    }

    fn options_from(text: &str) -> Result<SqliteOptions> {
        store_urls::options_from(text, SqliteOptions::from_url)
    }

    #[test]
    fn expired_rows_are_invisible_to_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        insert_raw(
            dir.path(),
            "session:old",
            b"stale",
            "2000-01-01 00:00:00.000000",
        );
        assert_eq!(store.load("session:old").unwrap(), None);
        assert!(!store.touch("session:old", MINUTE).unwrap());
        assert!(store.create("session:old", b"fresh", MINUTE).unwrap());
        assert_eq!(
            &store.load("session:old").unwrap().unwrap().data[..],
            b"fresh"
        );
    }

    #[test]
    fn reads_rows_written_by_flask_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        insert_raw(
            dir.path(),
            "session:f",
            b"\x80",
            "2099-12-31 23:59:58.250000",
        );
        insert_raw(dir.path(), "session:g", b"\x80", "2099-12-31 23:59:59");
        let record = store.load("session:f").unwrap().unwrap();
        assert_eq!(
            record.expires_at,
            time::macros::datetime!(2099-12-31 23:59:58.25 UTC)
        );
        let record = store.load("session:g").unwrap().unwrap();
        assert_eq!(
            record.expires_at,
            time::macros::datetime!(2099-12-31 23:59:59 UTC)
        );
    }

    #[test]
    fn expiry_is_stored_in_sqlalchemy_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.set("session:a", b"x", MINUTE).unwrap();
        let expiry: String = Connection::open(dir.path().join("sessions.db"))
            .unwrap()
            .query_row(
                "SELECT expiry FROM sessions WHERE session_id = 'session:a'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let shape = expiry
            .bytes()
            .map(|b| if b.is_ascii_digit() { b'9' } else { b })
            .collect::<Vec<_>>();
        assert_eq!(shape, b"9999-99-99 99:99:99.999999", "{expiry}");
    }

    #[test]
    fn schema_has_the_expiry_index() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            table: "web_sessions".to_owned(),
            ..SqliteOptions::new(dir.path().join("sessions.db"))
        };
        SqliteStore::open(&options).unwrap();
        // Opening again finds everything in place.
        let store = SqliteStore::open(&options).unwrap();
        store.create("session:a", b"x", MINUTE).unwrap();
        let conn = Connection::open(&options.path).unwrap();
        let index: String = conn
            .query_row(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?1",
                ["web_sessions_expiry_idx"],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(index, "web_sessions");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn from_url_absolute_and_relative_paths() {
        assert_eq!(
            options_from("sqlite:///var/lib/app/sessions.db").unwrap(),
            SqliteOptions::new("/var/lib/app/sessions.db")
        );
        assert_eq!(
            options_from("sqlite://localhost/a%20b/s.db").unwrap(),
            SqliteOptions::new("/a b/s.db")
        );
        assert_eq!(
            options_from("sqlite:relative/path.db").unwrap(),
            SqliteOptions::new("relative/path.db")
        );
        assert_eq!(
            options_from("sqlite:data%20dir/s.db").unwrap(),
            SqliteOptions::new("data dir/s.db")
        );
    }

    #[test]
    fn from_url_takes_table_pool_size_and_busy_timeout() {
        let (options, mut params) = store_urls::options_and_rest(
            "sqlite:///tmp/s.db?table=web_sessions&pool_size=3&busy_timeout=30&pool_timeout=0.5\
             &x=1",
            SqliteOptions::from_url,
        );
        assert_eq!(
            options,
            SqliteOptions {
                path: PathBuf::from("/tmp/s.db"),
                table: "web_sessions".to_owned(),
                pool_size: 3,
                busy_timeout: Duration::from_secs(30),
                pool_timeout: Duration::from_millis(500),
            }
        );
        assert_eq!(params.take("x").as_deref(), Some("1"));
    }

    #[test]
    fn from_url_rejects_bad_values() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("sqlite:///tmp/s.db?table=x;drop"), "table");
        assert_eq!(key_of("sqlite:///tmp/s.db?table=1abc"), "table");
        assert_eq!(key_of("sqlite:///tmp/s.db?table="), "table");
        assert_eq!(
            key_of(&format!("sqlite:///tmp/s.db?table={}", "t".repeat(64))),
            "table"
        );
        assert_eq!(key_of("sqlite:///tmp/s.db?pool_size=0"), "pool_size");
        assert_eq!(key_of("sqlite:///tmp/s.db?pool_size=many"), "pool_size");
        assert_eq!(key_of("sqlite:///tmp/s.db?pool_timeout=0"), "pool_timeout");
        assert_eq!(
            key_of("sqlite:///tmp/s.db?pool_timeout=soon"),
            "pool_timeout"
        );
        assert_eq!(key_of("sqlite://db.example.com/s.db"), "store URL");
        assert_eq!(key_of("sqlite:"), "path");
        assert_eq!(key_of("sqlite::memory:"), "path");
    }

    #[test]
    fn table_names() {
        for good in ["sessions", "_t", "T9_x", &"t".repeat(63)] {
            assert_eq!(validate_table_name(good), Ok(()), "{good}");
        }
        for bad in ["", "9t", "x;drop", "a b", "\"q\"", "é", &"t".repeat(64)] {
            assert!(validate_table_name(bad).is_err(), "{bad}");
        }
    }

    /// A new database file is private; an existing one keeps the mode its owner gave it.
    #[test]
    fn new_database_file_is_private_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode_of = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        open(dir.path());
        assert_eq!(mode_of(&dir.path().join("sessions.db")), 0o600);
        let shared = dir.path().join("shared.db");
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        SqliteStore::open(&SqliteOptions::new(&shared)).unwrap();
        assert_eq!(mode_of(&shared), 0o640);
    }

    #[test]
    fn unreachable_database_is_a_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new(dir.path().join("missing/dir/sessions.db"));
        let message = store_error_message(SqliteStore::open(&options), "sqlite");
        assert!(message.contains("sessions.db"), "{message}");
    }

    #[test]
    fn store_errors_keep_the_drivers_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new(dir.path().join("missing/dir/sessions.db"));
        let error = SqliteStore::open(&options).unwrap_err();
        let source = std::error::Error::source(&error).expect("the driver's error");
        let driver = source.downcast_ref::<rusqlite::Error>();
        assert!(driver.is_some(), "{source:?}");
        assert!(error.to_string().ends_with(&driver.unwrap().to_string()));
    }
}
