//! Sessions of an owner: binding a session, listing and ending an owner's sessions.

use std::ffi::c_char;

use super::args::{optional_out, out_ptr, string};
use super::guard::call;
use super::manager::{manager_ref, sessionstore_manager};
use super::owned::owned_string;
use super::result::{Failure, sessionstore_result};
use super::session::{session_mut, session_ref, sessionstore_session};
use crate::SessionId;

/// Binds the session to `owner`, the application's user id (1 to 256 bytes of UTF-8), from
/// its save on; the manager can then list and end every session of that owner. The binding
/// survives sessionstore_session_regenerate(); sessionstore_session_destroy(),
/// sessionstore_session_clear() and expiry end it. An invalid owner gives
/// SESSIONSTORE_TYPE_MISMATCH and changes nothing.
///
/// # Safety
/// `session` is a live session handle, `owner` a NUL-terminated string; the general rules in
/// the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_owner(
    session: *mut sessionstore_session,
    owner: *const c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let owner = unsafe { string(owner, "owner") }?;
        unsafe { session_mut(session) }?.set_owner(owner)?;
        Ok(())
    })
}

/// Puts the owner the session is bound to in `*out`, to release with
/// sessionstore_string_free(); NULL when it is bound to nobody.
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's
/// preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_owner(
    session: *const sessionstore_session,
    out: *mut *mut c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let session = unsafe { session_ref(session) }?;
        if let Some(owner) = session.owner() {
            *out = owned_string(owner, "owner")?;
        }
        Ok(())
    })
}

/// Puts the session's id hint in `*out` (8 characters, to release with
/// sessionstore_string_free()): the "id_hint" that sessionstore_manager_sessions_of() lists
/// for this session, to mark the current device. The hint reveals nothing usable.
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's
/// preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_id_hint(
    session: *const sessionstore_session,
    out: *mut *mut c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        // SAFETY: as above; the handle keeps its manager alive.
        let handle = unsafe { session.as_ref() }.ok_or_else(|| Failure::null("session"))?;
        let hint = handle.manager.manager.id_hint(handle.session.id());
        *out = owned_string(&hint, "id hint")?;
        Ok(())
    })
}

/// Lists the sessions bound to `owner` as a JSON array in `*out` (to release with
/// sessionstore_string_free()), oldest binding first:
/// `[{"id_hint":"Ab3dE5gH","bound_at":1767225600,"expires_at":1769904000}, ...]`, times in
/// Unix seconds. Never the ids or cookies. Reads the owner's index and each session, and
/// prunes from the index the entries of sessions that ended.
///
/// # Safety
/// `manager` is a live manager handle, `owner` a NUL-terminated string, `out` writable; the
/// general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_sessions_of(
    manager: *const sessionstore_manager,
    owner: *const c_char,
    out: *mut *mut c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let owner = unsafe { string(owner, "owner") }?;
        let manager = unsafe { manager_ref(manager) }?;
        let sessions: Vec<serde_json::Value> = manager
            .manager
            .sessions_of(owner)?
            .into_iter()
            .map(|info| {
                serde_json::json!({
                    "id_hint": info.id_hint,
                    "bound_at": info.bound_at.unix_timestamp(),
                    "expires_at": info.expires_at.unix_timestamp(),
                })
            })
            .collect();
        *out = owned_string(&serde_json::Value::from(sessions).to_string(), "list")?;
        Ok(())
    })
}

/// Ends every session of `owner` except the one whose id is `except_id` (NULL: all of them;
/// log out everywhere but here), and puts how many it ended in `*out_count`, which may be
/// NULL. An `except_id` that is no session id gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `manager` is a live manager handle, `owner` a NUL-terminated string, `except_id` NULL or
/// one, `out_count` NULL or writable; the general rules in the header's preamble (Pointers)
/// apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_manager_end_sessions_of(
    manager: *const sessionstore_manager,
    owner: *const c_char,
    except_id: *const c_char,
    out_count: *mut u64,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let count = unsafe { optional_out(out_count, 0) };
        let owner = unsafe { string(owner, "owner") }?;
        let except = if except_id.is_null() {
            None
        } else {
            let id = unsafe { string(except_id, "except_id") }?;
            Some(
                SessionId::parse(id)
                    .ok_or_else(|| Failure::invalid("except_id is no session id"))?,
            )
        };
        let manager = unsafe { manager_ref(manager) }?;
        let ended = manager.manager.end_sessions_of(owner, except.as_ref())?;
        if let Some(count) = count {
            *count = u64::try_from(ended).unwrap_or(u64::MAX);
        }
        Ok(())
    })
}
