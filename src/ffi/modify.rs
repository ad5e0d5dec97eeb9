//! Read-modify-write through a C callback: sessionstore_session_modify() records the
//! callback in the session's change log, so a conflicting save replays it on the fresher
//! value (docs/DESIGN.md §6), as the Rust API's `Session::modify` does.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use rmpv::Value;

use super::args::{byte_buffer, key_arg};
use super::guard::call;
use super::result::{Failure, sessionstore_result};
use super::session::{session_mut, sessionstore_session};
use super::values::single_msgpack_value;
use crate::Error;

/// Where a sessionstore_modify_fn puts the value it computes, with
/// sessionstore_modify_out_set().
///
/// Ownership: created and released by the library around each call of the callback; valid
/// only during that call. Threads: the callback's thread only.
#[derive(Debug, Default)]
pub struct sessionstore_modify_out {
    value: Option<Value>,
}

/// A read-modify-write callback for sessionstore_session_modify(): computes the new value of
/// a key from its current value.
///
/// `current` / `current_len` hold the current value encoded as one MessagePack value, or
/// are NULL / 0 when the key is absent. They are borrowed for the call. The callback puts
/// the new value in `out` with sessionstore_modify_out_set() (the library copies it; the
/// callback keeps and frees its own buffers) and returns 0; any other return value is a
/// failure. It runs on the thread calling sessionstore_session_modify() or
/// sessionstore_session_save(), once per call and once more for each conflicting save
/// attempt, so it must compute the same function each time (no side effects that must
/// happen once). Inside the callback, call no function on the session being modified or
/// on its manager; sessionstore_modify_out_set() and the functions that do not take a
/// handle are allowed.
pub type sessionstore_modify_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        current: *const u8,
        current_len: usize,
        out: *mut sessionstore_modify_out,
    ) -> c_int,
>;

/// Releases the `user_data` of sessionstore_session_modify() once the library no longer
/// needs it.
pub type sessionstore_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A C callback recorded in a session's change log, with the data it needs.
struct ModifyCallback {
    callback: sessionstore_modify_fn,
    user_data: *mut c_void,
    release: sessionstore_release_fn,
}

// SAFETY: sessionstore_session_modify() documents that the callback and `user_data` are used
// by whichever thread calls modify, save or free on the session, one at a time (a session is
// used by one thread at a time).
unsafe impl Send for ModifyCallback {}
// SAFETY: as above; the change log is never run by two threads at once.
unsafe impl Sync for ModifyCallback {}

impl Drop for ModifyCallback {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the caller of sessionstore_session_modify() gave `release` for this
            // `user_data`; it runs exactly once, here.
            unsafe { release(self.user_data) };
        }
    }
}

impl ModifyCallback {
    /// Runs the callback on the current value of `key`; its failure is a value error naming
    /// the key (as a replay of the Rust API's `Session::modify` failing to convert).
    fn run(&self, key: &str, current: Option<&Value>) -> crate::Result<Value> {
        let failed = |message: String| Error::Value {
            key: key.to_owned(),
            message,
        };
        let callback = self
            .callback
            .ok_or_else(|| failed("the modify callback is NULL".into()))?;
        let encoded = match current {
            Some(value) => {
                let mut bytes = Vec::new();
                rmpv::encode::write_value(&mut bytes, value)
                    .map_err(|error| Error::Codec(error.to_string()))?;
                Some(bytes)
            }
            None => None,
        };
        let (current_ptr, current_len) = encoded
            .as_deref()
            .map_or((ptr::null(), 0), |bytes| (bytes.as_ptr(), bytes.len()));
        let mut out = sessionstore_modify_out::default();
        // SAFETY: the caller of sessionstore_session_modify() vouches for the callback and
        // `user_data`; `current` is valid for the call and `out` lives on this stack.
        let status = unsafe { callback(self.user_data, current_ptr, current_len, &mut out) };
        if status != 0 {
            return Err(failed(format!(
                "the modify callback failed (returned {status}); nothing was stored"
            )));
        }
        out.value.ok_or_else(|| {
            failed(
                "the modify callback returned 0 without calling sessionstore_modify_out_set".into(),
            )
        })
    }
}

/// Replaces the value under `key` with the one `callback` computes from the current value
/// (a read-modify-write), like the Rust API's `Session::modify`: the operation itself is
/// recorded, not its result, so when a concurrent request changed the session the save
/// re-runs `callback` on the fresher value and no update is lost.
///
/// `callback(user_data, current, current_len, out)` runs once before this function returns,
/// on this thread, and again on the thread calling sessionstore_session_save() for each
/// conflicting save attempt (see sessionstore_modify_fn). The new value must be one
/// MessagePack value, set with sessionstore_modify_out_set().
///
/// When the callback fails (returns non-zero, or returns 0 without setting a value): here,
/// this function returns SESSIONSTORE_TYPE_MISMATCH naming the key and the session is left
/// unchanged; during a save, the save returns SESSIONSTORE_TYPE_MISMATCH and stores nothing.
///
/// Ownership: `user_data` stays the caller's; the library only passes it to `callback`.
/// `release`, which may be NULL, is called with `user_data` exactly once, when the library
/// no longer needs it: before this function returns if it fails, otherwise when the session
/// is saved or freed (on the thread doing that). Without `release`, keep `user_data` valid
/// until the session is saved or freed.
///
/// Threads: one thread at a time per session (it may move between threads; the callback
/// then runs on the thread that saves).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `callback` a function
/// that behaves as described, usable with `user_data` until `release` is called or the
/// session is saved or freed; the general rules in the header's preamble (Pointers, Threads)
/// apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_modify(
    session: *mut sessionstore_session,
    key: *const c_char,
    callback: sessionstore_modify_fn,
    user_data: *mut c_void,
    release: sessionstore_release_fn,
) -> sessionstore_result {
    // Owned from the start, so that every early return releases `user_data`.
    let operation = ModifyCallback {
        callback,
        user_data,
        release,
    };
    call(|| {
        if operation.callback.is_none() {
            return Err(Failure::null("callback"));
        }
        // SAFETY: checked helpers over the caller's pointers.
        let session = unsafe { session_mut(session) }?;
        let key = unsafe { key_arg(key) }?;
        let owned_key = key.to_owned();
        session.modify_value(key, move |current| operation.run(&owned_key, current))?;
        Ok(())
    })
}

/// Sets the value a sessionstore_modify_fn computed: the one MessagePack value encoded in
/// the `len` bytes at `data` (any type). Malformed MessagePack, or bytes left after the
/// value, give SESSIONSTORE_INVALID_ARGUMENT. A second call replaces the first.
///
/// Ownership: the bytes are copied; `out` stays the library's.
///
/// Threads: the callback's thread, during the callback.
///
/// # Safety
/// `out` is the handle passed to the running callback; `data` `len` readable bytes; the
/// general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_modify_out_set(
    out: *mut sessionstore_modify_out,
    data: *const u8,
    len: usize,
) -> sessionstore_result {
    call(|| {
        // SAFETY: the caller passes the handle given to its callback, or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::null("out"))?;
        // SAFETY: checked helper over the caller's buffer.
        let bytes = unsafe { byte_buffer(data, len, "data") }?;
        out.value = Some(single_msgpack_value(bytes)?);
        Ok(())
    })
}
