//! The manager handle: opened from a store URL and options or from Flask-Session settings,
//! shared by every thread; it loads sessions and purges expired records.

use std::ffi::c_char;
use std::sync::Arc;

use super::args::{optional_out, out_ptr, string};
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
