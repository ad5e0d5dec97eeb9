//! The manager handle: opened from a store URL and options or from Flask-Session settings,
//! shared by every thread; it loads sessions and purges expired records.

use std::ffi::c_char;
use std::sync::Arc;

use super::args::{optional_out, out_ptr, output, string};
use super::guard::{call, shielded};
use super::options::sessionstore_options;
use super::result::{Failure, Outcome, sessionstore_result};
use super::session::sessionstore_session;
use crate::{Config, SessionManager};

/// The most Flask settings sessionstore_manager_open_flask() accepts in one call.
pub const SESSIONSTORE_MAX_SETTINGS: usize = 256;

/// Loads and saves sessions: one per application, shared by every thread.
///
/// Created by sessionstore_manager_open() or sessionstore_manager_open_flask(), released by
/// sessionstore_manager_free().
#[derive(Debug)]
pub struct sessionstore_manager {
    pub(super) manager: SessionManager,
}

/// The manager handle behind `ptr`; SESSIONSTORE_NULL_ARGUMENT for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle from sessionstore_manager_open*().
pub(super) unsafe fn manager_ref<'a>(
    ptr: *const sessionstore_manager,
) -> Outcome<&'a sessionstore_manager> {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null("manager"))
}

fn hand_out_manager(manager: SessionManager, out: &mut *mut sessionstore_manager) {
    *out = Arc::into_raw(Arc::new(sessionstore_manager { manager })).cast_mut();
}

/// Opens the store named by `store_url` (e.g. "sqlite:///var/lib/app/sessions.db",
/// "memory://"; see the README for every backend and URL parameter), with `options` (NULL:
/// defaults and the URL's parameters), and puts the manager in `*out`, to release with
/// sessionstore_manager_free().
///
/// Errors: SESSIONSTORE_CONFIG for an invalid URL or setting (the message names it),
/// SESSIONSTORE_STORE when the store cannot be opened.
///
/// # Safety
/// `store_url` is a NUL-terminated string, `options` NULL or a live options handle, `out` writable;
/// the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_open(
    store_url: *const c_char,
    options: *const sessionstore_options,
    out: *mut *mut sessionstore_manager,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let url = unsafe { string(store_url, "store_url") }?;
        let options = unsafe { options.as_ref() };
        let mut builder = Config::builder_from_url(url)?;
        if let Some(options) = options {
            builder = options.apply(builder);
        }
        hand_out_manager(SessionManager::new(builder.build()?)?, out);
        Ok(())
    })
}

/// Opens a manager from Flask-Session settings, so a Flask app's configuration carries over:
/// `names[i]` = `values[i]` for i < `count`, e.g. SESSION_TYPE = "sqlalchemy",
/// SQLALCHEMY_DATABASE_URI = "sqlite:////var/lib/app/sessions.db", SECRET_KEY = "...",
/// SESSION_USE_SIGNER = "True". Values are strings as Python would print them ("True",
/// "2678400"). Settings outside SESSION_* that sessions do not use are ignored; an unknown
/// SESSION_* name is refused (SESSIONSTORE_CONFIG naming it). At most
/// SESSIONSTORE_MAX_SETTINGS settings; `names` and `values` may be NULL when `count` is 0.
/// The manager goes in `*out`, to release with sessionstore_manager_free().
///
/// # Safety
/// `names` and `values` each point to `count` NUL-terminated strings (or are NULL if `count` is 0),
/// `out` is writable; the general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_open_flask(
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    out: *mut *mut sessionstore_manager,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        if count > SESSIONSTORE_MAX_SETTINGS {
            return Err(Failure::invalid(format!(
                "{count} settings, more than {SESSIONSTORE_MAX_SETTINGS}"
            )));
        }
        if count > 0 && names.is_null() {
            return Err(Failure::null("names"));
        }
        if count > 0 && values.is_null() {
            return Err(Failure::null("values"));
        }
        let mut settings = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller guarantees `count` entries in each array.
            let (name, value) = unsafe { (*names.add(i), *values.add(i)) };
            let name = unsafe { string(name, &format!("names[{i}]")) }?;
            let value = unsafe { string(value, &format!("values[{i}]")) }?;
            settings.push((name, value));
        }
        hand_out_manager(SessionManager::new(Config::from_flask(settings)?)?, out);
        Ok(())
    })
}

/// Releases the caller's reference to a manager. Sessions still out keep the store open
/// until they are saved or freed; the store closes with the last of them.
///
/// # Safety
/// `manager` is NULL or a live manager handle, not used afterwards; the general rules in the
/// header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_free(manager: *mut sessionstore_manager) {
    shielded((), || {
        if !manager.is_null() {
            // SAFETY: the handle came from Arc::into_raw in hand_out_manager.
            drop(unsafe { Arc::from_raw(manager.cast_const()) });
        }
    })
}

/// Loads the session named by a request's `Cookie:` header value (e.g. "a=1; session=...");
/// NULL means the request had no Cookie header. A missing, forged, malformed, unknown or
/// expired cookie gives a fresh empty session (check with sessionstore_session_is_new());
/// only a failing store is an error (SESSIONSTORE_STORE). Makes one store read.
///
/// `*out` is to hand to sessionstore_session_save() or sessionstore_session_free().
///
/// # Safety
/// `manager` is a live manager handle, `cookie_header` NULL or a NUL-terminated string, `out`
/// writable; the general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_load(
    manager: *const sessionstore_manager,
    cookie_header: *const c_char,
    out: *mut *mut sessionstore_session,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        unsafe { manager_ref(manager) }?;
        let header = if cookie_header.is_null() {
            None
        } else {
            Some(unsafe { string(cookie_header, "cookie_header") }?)
        };
        // SAFETY: `manager` is a live handle from Arc::into_raw; this takes one more reference.
        let manager = unsafe {
            Arc::increment_strong_count(manager);
            Arc::from_raw(manager)
        };
        let session = manager.manager.load(header)?;
        *out = Box::into_raw(Box::new(sessionstore_session { manager, session }));
        Ok(())
    })
}

/// Deletes expired records (for stores without their own expiry: SQL, filesystem) and puts
/// how many in `*out_count`, which may be NULL.
///
/// # Safety
/// `manager` is a live manager handle, `out_count` NULL or writable; the general rules in the
/// header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_purge_expired(
    manager: *const sessionstore_manager,
    out_count: *mut u64,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let count = unsafe { optional_out(out_count, 0) };
        let purged = unsafe { manager_ref(manager) }?.manager.purge_expired()?;
        if let Some(count) = count {
            *count = purged;
        }
        Ok(())
    })
}

/// Store operations in sessionstore_stats (load, create, compare_and_set,
/// compare_and_delete, set, delete, touch, purge, in this order).
pub const SESSIONSTORE_STATS_OPERATIONS: usize = 8;

/// Latency buckets per operation in sessionstore_stats: calls under 100 µs, 250 µs, 500 µs,
/// 1 ms, 2.5 ms, 5 ms, 10 ms, 25 ms, 50 ms, 100 ms, 250 ms, 1 s, and slower (not cumulative).
pub const SESSIONSTORE_STATS_BUCKETS: usize = 13;

// Written out for cbindgen, which does not evaluate paths; the Rust figures they must match.
const _: () = assert!(
    SESSIONSTORE_STATS_OPERATIONS == crate::metrics::OPERATIONS
        && SESSIONSTORE_STATS_BUCKETS == crate::metrics::LATENCY_BUCKETS
);

/// A snapshot of a manager's metrics (docs/DESIGN.md §10), filled by
/// sessionstore_manager_stats(). The arrays are indexed by operation, in the order of
/// SESSIONSTORE_STATS_OPERATIONS.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sessionstore_stats {
    /// Loads that found their session.
    pub loads_hit: u64,
    /// Loads whose valid cookie named no stored session.
    pub loads_miss: u64,
    /// Loads without a session cookie.
    pub loads_no_cookie: u64,
    /// Loads with a malformed or badly signed cookie.
    pub loads_invalid_cookie: u64,
    /// Loads that found an expired session.
    pub loads_expired: u64,
    /// Loads that found a value they could not decode.
    pub loads_undecodable: u64,
    /// Saves that wrote nothing.
    pub saves_unchanged: u64,
    /// Saves that only renewed the expiry.
    pub saves_touched: u64,
    /// Saves that stored a new session.
    pub saves_created: u64,
    /// Saves that stored a changed session.
    pub saves_updated: u64,
    /// Saves that moved a session to a new id.
    pub saves_regenerated: u64,
    /// Saves that ended the session.
    pub saves_ended: u64,
    /// Saves that gave up after conflicting on every attempt.
    pub saves_gave_up: u64,
    /// Compare-and-set conflicts that made a save retry.
    pub conflict_retries: u64,
    /// Bytes of stored values read.
    pub bytes_read: u64,
    /// Bytes of values written.
    pub bytes_written: u64,
    /// Store calls per operation.
    pub store_calls: [u64; SESSIONSTORE_STATS_OPERATIONS],
    /// Failed store calls per operation.
    pub store_errors: [u64; SESSIONSTORE_STATS_OPERATIONS],
    /// Total latency of the store calls per operation, in nanoseconds.
    pub store_latency_nanos: [u64; SESSIONSTORE_STATS_OPERATIONS],
    /// Store calls per operation and latency bucket.
    pub store_latency_buckets: [[u64; SESSIONSTORE_STATS_BUCKETS]; SESSIONSTORE_STATS_OPERATIONS],
}

/// The manager's metrics, or SESSIONSTORE_CONFIG when they are off.
fn stats_of(manager: &sessionstore_manager) -> Outcome<crate::metrics::Stats> {
    manager.manager.stats().ok_or_else(|| {
        Failure::new(
            sessionstore_result::SESSIONSTORE_CONFIG,
            "metrics are off: open the manager with metrics=on in the store URL",
        )
    })
}

/// Puts a snapshot of the manager's metrics in `*out` (zeroed first). Errors:
/// SESSIONSTORE_CONFIG when the manager was opened without metrics (`metrics=on` in the
/// store URL turns them on).
///
/// # Safety
/// `manager` is a live manager handle, `out` writable; the general rules in the header's
/// preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_stats(
    manager: *const sessionstore_manager,
    out: *mut sessionstore_stats,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { output(out, "out", sessionstore_stats::default()) }?;
        let stats = stats_of(unsafe { manager_ref(manager) }?)?;
        *out = sessionstore_stats {
            loads_hit: stats.loads_hit,
            loads_miss: stats.loads_miss,
            loads_no_cookie: stats.loads_no_cookie,
            loads_invalid_cookie: stats.loads_invalid_cookie,
            loads_expired: stats.loads_expired,
            loads_undecodable: stats.loads_undecodable,
            saves_unchanged: stats.saves_unchanged,
            saves_touched: stats.saves_touched,
            saves_created: stats.saves_created,
            saves_updated: stats.saves_updated,
            saves_regenerated: stats.saves_regenerated,
            saves_ended: stats.saves_ended,
            saves_gave_up: stats.saves_gave_up,
            conflict_retries: stats.conflict_retries,
            bytes_read: stats.bytes_read,
            bytes_written: stats.bytes_written,
            store_calls: stats.store.map(|op| op.calls),
            store_errors: stats.store.map(|op| op.errors),
            store_latency_nanos: stats.store.map(|op| op.latency_nanos),
            store_latency_buckets: stats.store.map(|op| op.latency_buckets),
        };
        Ok(())
    })
}

/// Puts the manager's metrics in the Prometheus text format in `*out` (NULL first), to
/// release with sessionstore_string_free(): what a `/metrics` endpoint serves. Errors:
/// SESSIONSTORE_CONFIG when the manager was opened without metrics.
///
/// # Safety
/// `manager` is a live manager handle, `out` writable; the general rules in the header's
/// preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_metrics_text(
    manager: *const sessionstore_manager,
    out: *mut *mut c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let manager = unsafe { manager_ref(manager) }?;
        let text = stats_of(manager)?.to_prometheus(manager.manager.store().backend());
        *out = super::owned::owned_string(&text, "the metrics text")?;
        Ok(())
    })
}
