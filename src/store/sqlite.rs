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
//! Each pooled connection uses WAL journaling, `synchronous=NORMAL` and a 5 s busy timeout.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{CasOutcome, QueryParams, Record, Store, expiry_after};
use crate::error::{Error, Result};

const BACKEND: &str = "sqlite";
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows deleted per statement by [`Store::purge_expired`], so the write lock is released
/// between batches.
const PURGE_BATCH: usize = 10_000;
/// How many characters of a key logs show.
const SHOWN_KEY_CHARS: usize = 16;

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
}

impl SqliteOptions {
    /// Options for the database at `path` with table `sessions` and 8 pooled connections.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            table: "sessions".to_owned(),
            pool_size: 8,
        }
    }

    /// Parses `sqlite:///abs/path.db` (absolute) or `sqlite:relative/path.db` (relative),
    /// taking the `table` and `pool_size` parameters and leaving the others.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<SqliteOptions> {
        let path = if url.cannot_be_a_base() {
            percent_decode(url.path())
        } else {
            if let Some(host) = url.host_str().filter(|h| !h.is_empty() && *h != "localhost") {
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
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
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
        Ok(())
    }
}

/// Checks that `table` is `[A-Za-z_][A-Za-z0-9_]{0,62}`, the only names spliced into SQL.
pub(crate) fn validate_table_name(table: &str) -> std::result::Result<(), String> {
    let mut bytes = table.bytes();
    let valid = table.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{table:?} is not a table name: 1 to 63 characters of [A-Za-z0-9_], not starting \
             with a digit"
        ))
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i..] {
            [b'%', high, low, ..] => hex_digit(high).zip(hex_digit(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                decoded.push(high << 4 | low);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(decoded))
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The SQL of each operation, with the table name spliced in once.
#[derive(Debug)]
struct Statements {
    load: String,
    create: String,
    compare_and_set: String,
    set: String,
    delete: String,
    touch: String,
    purge: String,
}

impl Statements {
    /// `table` must be validated: it is spliced (quoted) into the SQL.
    fn new(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        let upsert = format!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES (?1, ?2, ?3) \
             ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, expiry = excluded.expiry"
        );
        Statements {
            load: format!("SELECT data, expiry FROM {t} WHERE session_id = ?1 AND expiry > ?2"),
            create: format!("{upsert} WHERE {t}.expiry <= ?4 OR {t}.expiry IS NULL"),
            compare_and_set: format!(
                "UPDATE {t} SET data = ?1, expiry = ?2 \
                 WHERE session_id = ?3 AND data = ?4 AND expiry > ?5"
            ),
            set: upsert,
            delete: format!("DELETE FROM {t} WHERE session_id = ?1"),
            touch: format!("UPDATE {t} SET expiry = ?1 WHERE session_id = ?2 AND expiry > ?3"),
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
/// assert_eq!(store.load("session:k").unwrap().unwrap().data, b"\x80");
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    sql: Statements,
}

impl SqliteStore {
    /// Opens the pool and creates the table and its index if missing.
    pub fn open(options: &SqliteOptions) -> Result<SqliteStore> {
        options.validate()?;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(OpenFlags::default().difference(OpenFlags::SQLITE_OPEN_URI))
            .with_init(init_connection);
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .connection_timeout(CONNECTION_TIMEOUT)
            .build(manager)
            .map_err(|e| {
                store_error(format!("cannot open {}: {e}", options.path.display()))
            })?;
        let table = &options.table;
        pool.get()
            .map_err(store_error)?
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (\
                     id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     session_id VARCHAR(255) UNIQUE NOT NULL, \
                     data BLOB, \
                     expiry DATETIME); \
                 CREATE INDEX IF NOT EXISTS \"{table}_expiry_idx\" ON \"{table}\"(expiry);"
            ))
            .map_err(store_error)?;
        Ok(SqliteStore {
            pool,
            sql: Statements::new(table),
        })
    }

    fn connection(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        self.pool.get().map_err(store_error)
    }

    /// The live record under `key`, read on `conn`.
    fn read(&self, conn: &Connection, key: &str) -> Result<Option<Record>> {
        let now = now_text()?;
        let mut statement = conn.prepare_cached(&self.sql.load).map_err(store_error)?;
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
                Ok(data.zip(expiry))
            })
            .optional()
            .map_err(store_error)?;
        match row {
            Some(Some((data, expires_at))) => Ok(Some(Record::new(data, expires_at))),
            Some(None) => {
                log::warn!(
                    "sqlite store: the row of {} has no blob data or an unreadable expiry, \
                     treating it as missing",
                    shown(key)
                );
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Runs the statement `sql` with `params`, returning how many rows it changed.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.connection()?
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(store_error)
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
        let expiry = expiry_text(expiry_after(ttl))?;
        let now = now_text()?;
        let written = self.execute(&self.sql.create, params![key, data, expiry, now])?;
        Ok(written == 1)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let conn = self.connection()?;
        let expiry = expiry_text(expiry_after(ttl))?;
        let now = now_text()?;
        let changed = conn
            .prepare_cached(&self.sql.compare_and_set)
            .and_then(|mut statement| {
                statement.execute(params![data, expiry, key, expected.data, now])
            })
            .map_err(store_error)?;
        if changed == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&conn, key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expiry = expiry_text(expiry_after(ttl))?;
        self.execute(&self.sql.set, params![key, data, expiry])?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, params![key])?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiry = expiry_text(expiry_after(ttl))?;
        let now = now_text()?;
        let changed = self.execute(&self.sql.touch, params![expiry, key, now])?;
        Ok(changed == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let conn = self.connection()?;
        let mut statement = conn.prepare_cached(&self.sql.purge).map_err(store_error)?;
        let now = now_text()?;
        let mut purged = 0;
        loop {
            let deleted = statement.execute(params![now]).map_err(store_error)?;
            purged += deleted as u64;
            if deleted < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

/// Sets up a new pooled connection.
fn init_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")
}

fn store_error(cause: impl fmt::Display) -> Error {
    Error::store(BACKEND, cause)
}

/// `at` in the stored expiry format.
fn expiry_text(at: OffsetDateTime) -> Result<String> {
    at.to_offset(UtcOffset::UTC)
        .format(EXPIRY_FORMAT)
        .map_err(|e| store_error(format!("cannot format the expiry {at}: {e}")))
}

fn now_text() -> Result<String> {
    expiry_text(OffsetDateTime::now_utc())
}

fn parse_expiry(text: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?;
    let at = PrimitiveDateTime::parse(text, EXPIRY_PARSE_FORMAT).ok()?;
    Some(at.assume_utc())
}

/// The start of `key`, quoted, for logs.
fn shown(key: &str) -> String {
    let mut chars = key.chars();
    let head: String = chars.by_ref().take(SHOWN_KEY_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}
