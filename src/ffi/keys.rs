//! A session's keys: whether one is there, removing one, and the key-list handle (a snapshot
//! of every key).

use std::ffi::{CString, c_char};
use std::ptr;

use super::args::{key_arg, optional_out, out_ptr, output};
use super::guard::{call, shielded};
use super::result::sessionstore_result;
use super::session::{session_mut, session_ref, sessionstore_session};

/// A snapshot of a session's keys, in sorted order.
///
/// Created by sessionstore_session_keys(), released by sessionstore_keys_free().
/// It does not change when the session does.
#[derive(Debug)]
pub struct sessionstore_keys {
    keys: Vec<CString>,
}

/// Sets `*out` to whether the session has `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_contains(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut bool,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { output(out, "out", false) }?;
        let session = unsafe { session_ref(session) }?;
        *out = session.contains(unsafe { key_arg(key) }?);
        Ok(())
    })
}

/// Removes `key` and sets `*out_existed` (which may be NULL) to whether it was there. The
/// removal is replayed on a conflicting save even if the key was absent, since a concurrent
/// request may have added it.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out_existed` NULL or
/// writable; the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_remove(
    session: *mut sessionstore_session,
    key: *const c_char,
    out_existed: *mut bool,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let existed = unsafe { optional_out(out_existed, false) };
        let session = unsafe { session_mut(session) }?;
        let removed = session.remove(unsafe { key_arg(key) }?).is_some();
        if let Some(existed) = existed {
            *existed = removed;
        }
        Ok(())
    })
}

/// Puts a snapshot of the session's keys, reserved ones included, in sorted order, in
/// `*out`; read it with sessionstore_keys_count() and sessionstore_keys_get(). Keys holding
/// a NUL byte, which C cannot name, are left out.
///
/// `*out` is released with sessionstore_keys_free(); it stays valid after the session is
/// saved or freed.
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_keys(
    session: *const sessionstore_session,
    out: *mut *mut sessionstore_keys,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let session = unsafe { session_ref(session) }?;
        let keys = session
            .keys()
            .filter_map(|key| CString::new(key).ok())
            .collect();
        *out = Box::into_raw(Box::new(sessionstore_keys { keys }));
        Ok(())
    })
}

/// The number of keys in a snapshot; 0 for NULL.
///
/// # Safety
/// `keys` is NULL or a live keys handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_keys_count(keys: *const sessionstore_keys) -> usize {
    // SAFETY: the caller passes a live handle or NULL.
    shielded(0, || unsafe { keys.as_ref() }.map_or(0, |k| k.keys.len()))
}

/// The key at `index` (0-based, in sorted order), or NULL when `keys` is NULL or `index` is
/// not below sessionstore_keys_count(). The string is borrowed from `keys`: valid until
/// sessionstore_keys_free(keys).
///
/// # Safety
/// `keys` is NULL or a live keys handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_keys_get(
    keys: *const sessionstore_keys,
    index: usize,
) -> *const c_char {
    shielded(ptr::null(), || {
        // SAFETY: the caller passes a live handle or NULL.
        unsafe { keys.as_ref() }
            .and_then(|k| k.keys.get(index))
            .map_or(ptr::null(), |key| key.as_ptr())
    })
}

/// Releases a key snapshot, and with it the strings sessionstore_keys_get() gave.
///
/// # Safety
/// `keys` is NULL or a live keys handle, not used afterwards (nor are the strings from
/// sessionstore_keys_get()); the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_keys_free(keys: *mut sessionstore_keys) {
    shielded((), || {
        if !keys.is_null() {
            // SAFETY: the handle came from Box::into_raw in sessionstore_session_keys.
            drop(unsafe { Box::from_raw(keys) });
        }
    })
}
