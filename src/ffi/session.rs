//! The session handle: one request's session, its id, flags and lifecycle changes.

use std::ffi::c_char;
use std::sync::Arc;

use super::args::{out_ptr, output};
use super::guard::{call, shielded};
use super::manager::sessionstore_manager;
use super::owned::owned_string;
use super::result::{Failure, Outcome, sessionstore_result};
use crate::Session;

/// One request's session.
///
/// Created by sessionstore_manager_load(), consumed by sessionstore_session_save() or
/// released unsaved by sessionstore_session_free().
#[derive(Debug)]
pub struct sessionstore_session {
    pub(super) manager: Arc<sessionstore_manager>,
    pub(super) session: Session,
}

/// The session behind the handle `ptr`; SESSIONSTORE_NULL_ARGUMENT for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle from sessionstore_manager_load().
pub(super) unsafe fn session_ref<'a>(ptr: *const sessionstore_session) -> Outcome<&'a Session> {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr.as_ref() }
        .map(|handle| &handle.session)
        .ok_or_else(|| Failure::null("session"))
}

/// The session behind the handle `ptr`, to change; SESSIONSTORE_NULL_ARGUMENT for NULL.
///
/// # Safety
/// As for [`session_ref`], and no other reference to the session is in use.
pub(super) unsafe fn session_mut<'a>(ptr: *mut sessionstore_session) -> Outcome<&'a mut Session> {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr.as_mut() }
        .map(|handle| &mut handle.session)
        .ok_or_else(|| Failure::null("session"))
}

/// Reads one boolean property of a session into `*out`.
unsafe fn session_flag(
    session: *const sessionstore_session,
    out: *mut bool,
    read: impl FnOnce(&Session) -> bool,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { output(out, "out", false) }?;
        *out = read(unsafe { session_ref(session) }?);
        Ok(())
    })
}

/// Applies one change that cannot fail to a session.
unsafe fn change_session(
    session: *mut sessionstore_session,
    change: impl FnOnce(&mut Session),
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helper over the caller's pointer.
        change(unsafe { session_mut(session) }?);
        Ok(())
    })
}

/// Releases a session without saving it: nothing is written, nothing changes in the store.
///
/// # Safety
/// `session` is NULL or a live session handle, not used afterwards; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_free(session: *mut sessionstore_session) {
    shielded((), || {
        if !session.is_null() {
            // SAFETY: the handle came from Box::into_raw in sessionstore_manager_load.
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

/// Puts the session's id (43 characters; after sessionstore_session_regenerate(), the new
/// one) in `*out`, to release with sessionstore_string_free(). The id is a credential: do
/// not log it.
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_id(
    session: *const sessionstore_session,
    out: *mut *mut c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let session = unsafe { session_ref(session) }?;
        *out = owned_string(session.id().as_str(), "id")?;
        Ok(())
    })
}

/// Sets `*out` to whether the session was not found in the store (no cookie, a bad cookie,
/// an unknown or expired id): it will be stored under a new id once something is written.
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_is_new(
    session: *const sessionstore_session,
    out: *mut bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { session_flag(session, out, Session::is_new) }
}

/// Sets `*out` to whether this request changed anything (data, permanence, id).
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_is_modified(
    session: *const sessionstore_session,
    out: *mut bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { session_flag(session, out, Session::is_modified) }
}

/// Sets `*out` to whether the session holds no data besides the reserved keys `_permanent`
/// and `_created` (an empty session is never stored).
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_is_empty(
    session: *const sessionstore_session,
    out: *mut bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { session_flag(session, out, Session::is_empty) }
}

/// Sets `*out` to whether the session is permanent (its cookie has Expires and Max-Age).
///
/// # Safety
/// `session` is a live session handle, `out` writable; the general rules in the header's preamble
/// (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_is_permanent(
    session: *const sessionstore_session,
    out: *mut bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { session_flag(session, out, Session::is_permanent) }
}

/// Makes the session permanent (cookie with Expires and Max-Age) or a browser-session one.
///
/// # Safety
/// `session` is a live session handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_permanent(
    session: *mut sessionstore_session,
    permanent: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { change_session(session, |session| session.set_permanent(permanent)) }
}

/// Gives the session a new id on save, keeping its data; the old record is deleted. Call it
/// when the user logs in (defeats session fixation).
///
/// # Safety
/// `session` is a live session handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_regenerate(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { change_session(session, Session::regenerate) }
}

/// Ends the session: on save its record is deleted and the cookie expired (a logout).
///
/// # Safety
/// `session` is a live session handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_destroy(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { change_session(session, Session::destroy) }
}

/// Removes every key; unless something is written afterwards, the save then ends the session.
///
/// # Safety
/// `session` is a live session handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_clear(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { change_session(session, Session::clear) }
}
