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

use super::shared::{DEFAULT_POOL_TIMEOUT, expiry_after, expiry_from, pool_timeout_message};
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
        // Nor is a connection tested on check-out: r2d2_sqlite's test is an empty
        // `execute_batch`, which cannot find anything wrong with an open connection but costs
        // about 6,600 instructions, twice per modified request (callgrind; issue 14).
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .test_on_check_out(false)
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
        let now = ExpiryText::now()?;
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
        let (expiry, now) = expiry_and_now(ttl)?;
        let written = self.execute(&self.sql.create, params![key, data, expiry, now])?;
        Ok(written == 1)
    }

    /// One transaction: one commit for the whole batch.
    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        let mut conn = self.connection()?;
        let now = ExpiryText::now()?;
        let transaction = conn.transaction().map_err(Error::in_store(BACKEND))?;
        let mut stored = Vec::with_capacity(records.len());
        {
            let mut statement = transaction
                .prepare_cached(&self.sql.create)
                .map_err(Error::in_store(BACKEND))?;
            for (key, data, ttl) in records {
                let expiry = ExpiryText::new(expiry_after(BACKEND, *ttl)?)?;
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
        let (expiry, now) = expiry_and_now(ttl)?;
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
        let now = ExpiryText::now()?;
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
        let expiry = ExpiryText::new(expiry_after(BACKEND, ttl)?)?;
        self.execute(&self.sql.set, params![key, data, expiry])?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, params![key])?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let (expiry, now) = expiry_and_now(ttl)?;
        let changed = self.execute(&self.sql.touch, params![expiry, key, now])?;
        Ok(changed == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let conn = self.connection()?;
        let mut statement = conn
            .prepare_cached(&self.sql.purge)
            .map_err(Error::in_store(BACKEND))?;
        let now = ExpiryText::now()?;
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
                    ExpiryText::now()?,
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

/// `at` in the stored expiry format, from the `time` crate's format description: the
/// reference [`ExpiryText`] is checked against, and the writer of the instants it does not
/// handle (years before 0).
fn format_expiry_slow(at: OffsetDateTime) -> Result<String> {
    at.to_offset(UtcOffset::UTC)
        .format(EXPIRY_FORMAT)
        .map_err(|e| Error::store_caused_by(BACKEND, format!("cannot format the expiry {at}"), e))
}

/// The texts of the expiry `ttl` from now and of now, from one reading of the clock.
fn expiry_and_now(ttl: Duration) -> Result<(ExpiryText, ExpiryText)> {
    let now = OffsetDateTime::now_utc();
    let expiry = ExpiryText::new(expiry_from(BACKEND, now, ttl)?)?;
    Ok((expiry, ExpiryText::new(now)?))
}

/// An instant in the stored expiry format ([`EXPIRY_FORMAT`]), `YYYY-MM-DD HH:MM:SS.ffffff`
/// in UTC, bound as text.
///
/// The digits are written by hand into a 26-byte array on the stack, from the calendar
/// components the `time` crate computes: its formatter interprets the format description
/// item by item and allocates a `String`: about 1,850 instructions per text, this about 240
/// (callgrind; a modified request formats three: issue 14). Years before 0
/// (or past 9999, which the stores' expiry bound excludes) take the `time` crate's
/// formatter, so every text is byte-identical to [`EXPIRY_FORMAT`]'s; the tests compare
/// both on many instants.
enum ExpiryText {
    Fixed([u8; 26]),
    Formatted(String),
}

impl ExpiryText {
    fn new(at: OffsetDateTime) -> Result<ExpiryText> {
        let utc = at.to_offset(UtcOffset::UTC);
        let (year, month, day) = utc.to_calendar_date();
        let Ok(year) = u16::try_from(year) else {
            return format_expiry_slow(at).map(ExpiryText::Formatted);
        };
        if year > 9999 {
            return format_expiry_slow(at).map(ExpiryText::Formatted);
        }
        let (hour, minute, second, micro) = utc.to_hms_micro();
        let mut text = *b"0000-00-00 00:00:00.000000";
        write_digits(&mut text[0..4], u32::from(year));
        write_digits(&mut text[5..7], u32::from(u8::from(month)));
        write_digits(&mut text[8..10], u32::from(day));
        write_digits(&mut text[11..13], u32::from(hour));
        write_digits(&mut text[14..16], u32::from(minute));
        write_digits(&mut text[17..19], u32::from(second));
        write_digits(&mut text[20..26], micro);
        Ok(ExpiryText::Fixed(text))
    }

    fn now() -> Result<ExpiryText> {
        ExpiryText::new(OffsetDateTime::now_utc())
    }

    fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and separators are written.
            ExpiryText::Fixed(text) => std::str::from_utf8(text).unwrap_or_default(),
            ExpiryText::Formatted(text) => text,
        }
    }
}

impl rusqlite::ToSql for ExpiryText {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Text(
            self.as_str().as_bytes(),
        )))
    }
}

/// Writes `value` in decimal into all of `out`, zero-padded (`value` must fit).
fn write_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The value of `digits`, ASCII digits (at most 9) checked by the caller.
fn digits_value(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |value, &digit| value * 10 + u32::from(digit - b'0'))
}

/// A stored expiry, read as [`EXPIRY_PARSE_FORMAT`] reads it: `YYYY-MM-DD HH:MM:SS`, then
/// nothing or `.` and 1 to 32 digits (nanosecond precision, further digits ignored), a valid
/// date and time (no leap second), in UTC.
///
/// The fixed-width fields are read by hand and the `time` crate checks the calendar
/// (`Date::from_calendar_date`, `Time::from_hms_nano`): its parser of the format
/// description costs about 1,600 instructions per row, this about 350 (callgrind). A year
/// with a sign (which the format description also reads, with up to 6 digits when the
/// `time` crate has its `large-dates` feature) takes that parser; the tests check both
/// agree on valid, mutated and malformed texts.
fn parse_expiry(text: &[u8]) -> Option<OffsetDateTime> {
    if matches!(text.first(), Some(b'+' | b'-')) {
        return parse_expiry_slow(text);
    }
    /// The fixed fields: `d` a digit, anything else itself.
    const LAYOUT: &[u8; 19] = b"dddd-dd-dd dd:dd:dd";
    let (fields, fraction) = text.split_at_checked(LAYOUT.len())?;
    let fits = |(&byte, &shape): (&u8, &u8)| match shape {
        b'd' => byte.is_ascii_digit(),
        _ => byte == shape,
    };
    if !fields.iter().zip(LAYOUT).all(fits) {
        return None;
    }
    let nanosecond = match fraction {
        [] => 0,
        [b'.', digits @ ..]
            if (1..=32).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            let significant = &digits[..digits.len().min(9)];
            digits_value(significant) * 10u32.pow(9 - significant.len() as u32)
        }
        _ => return None,
    };
    let field = |range: std::ops::Range<usize>| digits_value(&fields[range]);
    let two = |range| field(range) as u8;
    let month = time::Month::try_from(two(5..7)).ok()?;
    let date = time::Date::from_calendar_date(field(0..4) as i32, month, two(8..10)).ok()?;
    let time = time::Time::from_hms_nano(two(11..13), two(14..16), two(17..19), nanosecond).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// [`parse_expiry`] by the `time` crate's parser of [`EXPIRY_PARSE_FORMAT`].
fn parse_expiry_slow(text: &[u8]) -> Option<OffsetDateTime> {
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

    /// A fixed-seed generator (SplitMix64), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The text the `time` crate's format description gives.
    fn reference_text(at: OffsetDateTime) -> String {
        format_expiry_slow(at).unwrap()
    }

    fn fast_text(at: OffsetDateTime) -> String {
        ExpiryText::new(at).unwrap().as_str().to_owned()
    }

    /// An instant of `rng` between the years `first` and `last`, at nanosecond precision.
    fn random_instant(rng: &mut Rng, first: i32, last: i32) -> OffsetDateTime {
        let start = time::Date::from_calendar_date(first, time::Month::January, 1)
            .unwrap()
            .midnight()
            .assume_utc();
        let end = time::Date::from_calendar_date(last, time::Month::December, 31)
            .unwrap()
            .with_hms_nano(23, 59, 59, 999_999_999)
            .unwrap()
            .assume_utc();
        let span = (end - start).whole_nanoseconds() as u128;
        let offset = ((u128::from(rng.next()) << 64) | u128::from(rng.next())) % (span + 1);
        start + time::Duration::nanoseconds_i128(offset as i128)
    }

    /// Instants at the edges that matter: microsecond and second boundaries, month and
    /// year ends, leap days (2000, 2024: leap; 1900, 2100: not), the first and last years.
    fn edge_instants() -> Vec<OffsetDateTime> {
        use time::macros::datetime;
        let mut instants = vec![
            datetime!(0000-01-01 00:00:00 UTC),
            datetime!(0001-01-01 00:00:00 UTC),
            datetime!(1970-01-01 00:00:00 UTC),
            datetime!(1900-02-28 23:59:59.999999999 UTC),
            datetime!(2000-02-29 12:00:00.000001 UTC),
            datetime!(2024-02-29 23:59:59.999999 UTC),
            datetime!(2025-12-31 23:59:59.9999995 UTC),
            datetime!(2026-01-01 00:00:00.000000999 UTC),
            datetime!(2100-02-28 23:59:59.999999999 UTC),
            datetime!(9999-12-31 23:59:59.999999999 UTC),
        ];
        for nanosecond in [0, 1, 999, 1_000, 1_001, 999_999, 1_000_000, 999_999_000] {
            instants.push(
                datetime!(2026-12-02 14:04:05 UTC)
                    .replace_nanosecond(nanosecond)
                    .unwrap(),
            );
        }
        // An instant given in another offset is written in UTC.
        instants.push(datetime!(2026-12-31 23:30:00.5 -01:00));
        instants
    }

    #[test]
    fn expiry_text_is_the_time_crates_format() {
        let mut rng = Rng(14);
        let mut instants = edge_instants();
        instants.extend((0..100_000).map(|_| random_instant(&mut rng, 0, 9999)));
        instants.extend((0..20_000).map(|_| random_instant(&mut rng, 1990, 2200)));
        for at in instants {
            assert_eq!(fast_text(at), reference_text(at), "{at}");
            assert!(matches!(ExpiryText::new(at).unwrap(), ExpiryText::Fixed(_)));
        }
        // Years before 0 take the `time` crate's formatter.
        for at in [
            time::macros::datetime!(-0001-12-31 23:59:59.5 UTC),
            time::macros::datetime!(-9999-01-01 00:00:00 UTC),
        ] {
            assert_eq!(fast_text(at), reference_text(at), "{at}");
        }
    }

    #[test]
    fn expiry_text_round_trips_at_microsecond_precision() {
        let mut rng = Rng(1414);
        let mut instants = edge_instants();
        instants.extend((0..50_000).map(|_| random_instant(&mut rng, 0, 9999)));
        for at in instants {
            let text = fast_text(at);
            let utc = at.to_offset(UtcOffset::UTC);
            let truncated = utc
                .replace_nanosecond(utc.nanosecond() / 1_000 * 1_000)
                .unwrap();
            assert_eq!(parse_expiry(text.as_bytes()), Some(truncated), "{text}");
        }
    }

    /// Both parsers agree on `text`: the same instant, or both refuse it.
    fn assert_parsers_agree(text: &[u8]) {
        assert_eq!(
            parse_expiry(text),
            parse_expiry_slow(text),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }

    #[test]
    fn expiry_parse_accepts_what_the_format_description_accepts() {
        for text in [
            "2099-12-31 23:59:59",
            "2099-12-31 23:59:59.2",
            "2099-12-31 23:59:59.25",
            "2099-12-31 23:59:59.250000",
            "2099-12-31 23:59:59.123456789",
            "2099-12-31 23:59:59.1234567891",
            "2099-12-31 23:59:59.12345678901234567890123456789012",
            "2024-02-29 00:00:00.000000",
            "0000-01-01 00:00:00",
            "+2024-02-29 00:00:00.5",
            "-0001-01-01 00:00:00",
        ] {
            assert!(parse_expiry_slow(text.as_bytes()).is_some(), "{text}");
            assert_parsers_agree(text.as_bytes());
        }
        assert_eq!(
            parse_expiry(b"2099-12-31 23:59:59.1234567891"),
            Some(time::macros::datetime!(2099-12-31 23:59:59.123456789 UTC))
        );
        assert_eq!(
            parse_expiry(b"2099-12-31 23:59:59.2"),
            Some(time::macros::datetime!(2099-12-31 23:59:59.2 UTC))
        );
    }

    #[test]
    fn malformed_expiries_are_refused() {
        for text in [
            "",
            "2099",
            "2099-12-31",
            "2099-12-31 23:59",
            "2099-12-31 23:59:5",
            "2099-12-31 23:59:59.",
            "2099-12-31 23:59:59.123456789012345678901234567890123",
            "2099-12-31 23:59:59.12a",
            "2099-12-31 23:59:59Z",
            "2099-12-31 23:59:59 ",
            " 2099-12-31 23:59:59",
            "2099-12-31T23:59:59",
            "2099/12/31 23:59:59",
            "99-12-31 23:59:59",
            "20991-12-31 23:59:59",
            "2099-1-31 23:59:59",
            "2099-00-10 00:00:00",
            "2099-13-10 00:00:00",
            "2099-12-00 00:00:00",
            "2099-12-32 00:00:00",
            "2023-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2099-04-31 00:00:00",
            "2099-12-31 24:00:00",
            "2099-12-31 23:60:00",
            "2099-12-31 23:59:60",
            "2099-12-31 23:59:60.000000",
            "+2099-12-31",
            "-2099-12-31 23:59:5",
            "2099-12-31 23:59:59.1\u{e9}",
            "\u{663}099-12-31 23:59:59",
        ] {
            assert_eq!(parse_expiry(text.as_bytes()), None, "{text}");
            assert_parsers_agree(text.as_bytes());
        }
        assert_eq!(parse_expiry(b"2099-12-31 23:59:59\xff"), None);
        assert_eq!(parse_expiry(b"\xff099-12-31 23:59:59"), None);
    }

    /// Texts near the valid ones: each byte changed, removed or doubled, for many instants
    /// and fraction lengths; both parsers give the same answer on every one.
    #[test]
    fn expiry_parse_agrees_with_the_format_description_on_mutated_texts() {
        const BYTES: &[u8] = b"0123456789 -+:.T Z\xc3\xa9";
        let mut rng = Rng(0x5e55);
        for round in 0..2_000 {
            let at = random_instant(&mut rng, if round % 2 == 0 { 0 } else { 1990 }, 9999);
            let base = reference_text(at);
            let fraction_digits = rng.below(36) as usize;
            let mut text = base.as_bytes()[..19].to_vec();
            if fraction_digits > 0 {
                text.push(b'.');
                text.extend((0..fraction_digits).map(|_| b'0' + rng.below(10) as u8));
            }
            assert_parsers_agree(&text);
            for position in 0..text.len() {
                let mut changed = text.clone();
                changed[position] = BYTES[rng.below(BYTES.len() as u64) as usize];
                assert_parsers_agree(&changed);
                let mut removed = text.clone();
                removed.remove(position);
                assert_parsers_agree(&removed);
                let mut doubled = text.clone();
                doubled.insert(position, text[position]);
                assert_parsers_agree(&doubled);
            }
            let mut signed = text.clone();
            signed.insert(0, if round % 2 == 0 { b'+' } else { b'-' });
            assert_parsers_agree(&signed);
        }
    }

    /// Random field values, in and out of range, in the fixed layout.
    #[test]
    fn expiry_parse_agrees_with_the_format_description_on_random_fields() {
        let mut rng = Rng(2026);
        for _ in 0..100_000 {
            let text = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                rng.below(10_000),
                rng.below(14),
                rng.below(33),
                rng.below(26),
                rng.below(62),
                rng.below(62)
            );
            assert_parsers_agree(text.as_bytes());
        }
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
