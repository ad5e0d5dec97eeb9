//! What the stores share: default timeouts, the expiry of a write, and how keys and pool
//! timeouts appear in messages.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// How long opening a connection to a server may take unless the store's URL says otherwise.
#[cfg(server_store)]
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call of the SQLite or MongoDB store waits for a pooled connection unless
/// `pool_timeout` says otherwise (the other pooled stores wait their connect timeout).
#[cfg(any(feature = "sqlite", feature = "mongodb"))]
pub(crate) const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait a store accepts for a timeout (connect, pool, I/O, busy): an hour. A longer
/// one is a configuration mistake, and the connection pools add it to the current time
/// without checking.
#[cfg(pooled_store)]
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Refuses any of `timeouts` (a setting's name and its value, if set) longer than
/// [`MAX_TIMEOUT`], naming the setting.
#[cfg(pooled_store)]
pub(crate) fn check_timeouts(timeouts: &[(&str, Option<Duration>)]) -> Result<()> {
    for (name, timeout) in timeouts {
        if timeout.is_some_and(|timeout| timeout > MAX_TIMEOUT) {
            return Err(Error::config(
                *name,
                format!("at most {} seconds", MAX_TIMEOUT.as_secs()),
            ));
        }
    }
    Ok(())
}

/// The latest expiry a store accepts: the end of the year 9999, the last that every backend's
/// timestamp (and Python's `datetime`, for Flask-Session reading the same store) can hold.
const LATEST_EXPIRY: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// The expiry a write with `ttl` sets, from now. A lifetime that reaches past
/// [`LATEST_EXPIRY`] is an error of `backend`, never a panic; the manager's own bound on
/// lifetimes keeps every configured one far below it.
pub(crate) fn expiry_after(backend: &'static str, ttl: Duration) -> Result<OffsetDateTime> {
    expiry_from(backend, OffsetDateTime::now_utc(), ttl)
}

/// [`expiry_after`] counted from `now`, for a store that reads the clock once per call.
pub(crate) fn expiry_from(
    backend: &'static str,
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<OffsetDateTime> {
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .filter(|at| *at <= LATEST_EXPIRY)
        .ok_or_else(|| {
            Error::store(
                backend,
                format!("lifetime {ttl:?} puts the expiry past the year 9999"),
            )
        })
}

/// The instant `timeout` from now, for the pools that count their own wait. A timeout past
/// what the clock holds waits a year instead: never a panic.
#[cfg(any(feature = "mysql", feature = "mongodb"))]
pub(crate) fn deadline_after(timeout: Duration) -> std::time::Instant {
    const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(LONGEST_WAIT))
        .unwrap_or(now)
}

/// The message of a call that got no connection from its pool within `timeout` (all in
/// use, or none could be opened), with the pool's own `cause`.
#[cfg(pooled_store)]
pub(crate) fn pool_timeout_message(timeout: Duration, cause: impl std::fmt::Display) -> String {
    format!("no connection from the pool within pool_timeout {timeout:?}: {cause}")
}

/// A key as logs and errors show it: the prefix and the first few characters of the id,
/// never the whole id. (Every backend but memory reports keys.)
#[cfg(external_store)]
pub(crate) fn shown_key(key: &str) -> String {
    const SHOWN_CHARS: usize = 16;
    let mut chars = key.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// The page of the first `limit` (at least 1) of `sorted` keys, which all come after the
/// cursor: its last key is the next cursor when the page is full.
#[cfg(any(
    feature = "memory",
    feature = "filesystem",
    sql_store,
    feature = "mongodb"
))]
pub(crate) fn key_page(sorted: impl IntoIterator<Item = String>, limit: usize) -> super::KeyPage {
    let limit = limit.max(1);
    let keys: Vec<String> = sorted.into_iter().take(limit).collect();
    let next = (keys.len() == limit).then(|| keys[limit - 1].clone());
    super::KeyPage { keys, next }
}
