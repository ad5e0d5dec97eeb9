//! The SQLite store's baseline: rusqlite with the store's table and statements.

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
const CAS_DELETE: &str = "DELETE FROM sessions WHERE session_id = ?1 AND data = ?2 AND expiry > ?3";
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
            .test_on_check_out(false)
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
