//! What the SQL stores (SQLite, PostgreSQL, MySQL) share: the statements on one row that
//! every dialect writes alike, batched purges, and how a row becomes a record.

#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::time::Duration;

use time::OffsetDateTime;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use time::{PrimitiveDateTime, UtcOffset};

use super::Record;
use super::shared::shown_key;
use crate::error::Result;

/// Rows deleted per statement by a purge, so that locks are released between batches.
pub(crate) const PURGE_BATCH: u64 = 10_000;

/// A pooled connection that went back to the pool in working order this recently is handed
/// out again without a check (HikariCP's alive-bypass window, same length): under load
/// connections come back every few milliseconds, and checking each one would add a round
/// trip to every call. One idle longer is checked before it is handed out, so a server that
/// went away and came back costs no failed call unless it did so within this window of the
/// connection's last use (then that one call fails, and the broken connection is dropped).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// The statements on one row, the same in every dialect but for how the table name is
/// quoted and how bound parameters are written.
pub(crate) struct RowStatements {
    /// Reads a live row: parameters key, now.
    pub(crate) load: String,
    /// Replaces a live row holding the expected data: parameters data, expiry, key,
    /// expected data, now.
    pub(crate) compare_and_set: String,
    /// Deletes a live row holding the expected data: parameters key, expected data, now.
    pub(crate) compare_and_delete: String,
    /// Deletes a row: parameter key.
    pub(crate) delete: String,
    /// Renews a live row's expiry: parameters expiry, key, now.
    pub(crate) touch: String,
    /// A page of live keys by keyset pagination: parameters cursor (the last key listed, or
    /// the prefix), the prefix's length in characters, the prefix, now, the page size.
    pub(crate) list_keys: String,
}

impl RowStatements {
    /// The statements for `table` (validated and quoted, it is spliced into the SQL), with
    /// the `n`-th bound parameter (from 1) written as `param(n)`.
    pub(crate) fn new(table: &str, param: impl Fn(usize) -> String) -> RowStatements {
        let [p1, p2, p3, p4, p5] = [1, 2, 3, 4, 5].map(param);
        RowStatements {
            load: format!(
                "SELECT data, expiry FROM {table} WHERE session_id = {p1} AND expiry > {p2}"
            ),
            compare_and_set: format!(
                "UPDATE {table} SET data = {p1}, expiry = {p2} \
                 WHERE session_id = {p3} AND data = {p4} AND expiry > {p5}"
            ),
            compare_and_delete: format!(
                "DELETE FROM {table} WHERE session_id = {p1} AND data = {p2} AND expiry > {p3}"
            ),
            delete: format!("DELETE FROM {table} WHERE session_id = {p1}"),
            touch: format!(
                "UPDATE {table} SET expiry = {p1} WHERE session_id = {p2} AND expiry > {p3}"
            ),
            list_keys: format!(
                "SELECT session_id FROM {table} WHERE session_id > {p1} \
                 AND substr(session_id, 1, {p2}) = {p3} AND expiry > {p4} \
                 ORDER BY session_id LIMIT {p5}"
            ),
        }
    }
}

/// Runs `delete_batch` (which deletes at most [`PURGE_BATCH`] expired rows and returns how
/// many) until a batch comes back short; returns how many rows went.
pub(crate) fn purge_in_batches(mut delete_batch: impl FnMut() -> Result<u64>) -> Result<u64> {
    let mut purged = 0;
    loop {
        let deleted = delete_batch()?;
        purged += deleted;
        if deleted < PURGE_BATCH {
            return Ok(purged);
        }
    }
}

/// The record of a live row read by `backend`, or `None` (logged) when its data or expiry
/// is missing or unreadable, so the row counts as missing.
pub(crate) fn row_record(
    backend: &str,
    key: &str,
    data: Option<Vec<u8>>,
    expiry: Option<OffsetDateTime>,
) -> Option<Record> {
    match data.zip(expiry) {
        Some((data, expires_at)) => Some(Record::new(data, expires_at)),
        None => {
            log::warn!(
                "{backend} store: the row of {} has no blob data or an unreadable expiry, \
                 treating it as missing",
                shown_key(key)
            );
            None
        }
    }
}

/// `at` as a timestamp without time zone, in UTC.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn timestamp(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// Now as a timestamp without time zone, in UTC.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn now() -> PrimitiveDateTime {
    timestamp(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_statements_follow_the_dialect() {
        let sql = RowStatements::new("\"t\"", |n| format!("${n}"));
        assert_eq!(
            sql.load,
            "SELECT data, expiry FROM \"t\" WHERE session_id = $1 AND expiry > $2"
        );
        let sql = RowStatements::new("`t`", |_| "?".to_owned());
        assert_eq!(
            sql.touch,
            "UPDATE `t` SET expiry = ? WHERE session_id = ? AND expiry > ?"
        );
    }

    #[test]
    fn purges_run_until_a_batch_is_short() {
        let mut batches = [PURGE_BATCH, PURGE_BATCH, 7].into_iter();
        let purged = purge_in_batches(|| Ok(batches.next().unwrap()));
        assert_eq!(purged.unwrap(), 2 * PURGE_BATCH + 7);
        assert_eq!(batches.next(), None);
    }
}
