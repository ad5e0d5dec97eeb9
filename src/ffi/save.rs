//! Saving a session, and what the response must carry afterwards.

use std::ffi::c_char;
use std::ptr;

use super::args::optional_out;
use super::guard::call;
use super::owned::owned_string;
use super::result::{Failure, sessionstore_result};
use super::session::sessionstore_session;

/// What the response must carry, filled in by sessionstore_session_save().
#[repr(C)]
#[derive(Debug)]
pub struct sessionstore_saved {
    /// The value of a `Set-Cookie:` header to send, or NULL when the cookie need not change.
    /// Owned by the caller: release it with sessionstore_string_free().
    pub set_cookie: *mut c_char,
    /// Whether to send `Vary: Cookie` (the response depends on the session).
    pub vary_cookie: bool,
    /// Whether the session ended: destroyed, emptied, or deleted by a concurrent request (a
    /// logout elsewhere) before this save, which then wrote nothing.
    pub ended: bool,
}

/// Writes what the request changed and fills `*out` with what the response must carry: a
/// Set-Cookie value (or NULL), whether to send `Vary: Cookie`, and whether the session ended.
/// In the default SESSIONSTORE_NO_LOST_UPDATES mode the write is a compare-and-set: if
/// another request of the same user saved in between, this request's changes (including
/// sessionstore_session_incr() operations) are replayed on the fresher value and retried.
///
/// Consumes `session` whenever it is not NULL, whatever the result, even when `out` is NULL:
/// never use or free it afterwards. `out->set_cookie` is released with
/// sessionstore_string_free().
///
/// # Safety
/// `session` is a live session handle (consumed: not used afterwards), `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_save(
    session: *mut sessionstore_session,
    out: *mut sessionstore_saved,
) -> sessionstore_result {
    call(|| {
        let empty = sessionstore_saved {
            set_cookie: ptr::null_mut(),
            vary_cookie: false,
            ended: false,
        };
        // SAFETY: checked helper over the caller's pointer.
        let out = unsafe { optional_out(out, empty) };
        if session.is_null() {
            return Err(Failure::null("session"));
        }
        // SAFETY: the handle came from Box::into_raw in sessionstore_manager_load.
        let handle = unsafe { Box::from_raw(session) };
        let out = out.ok_or_else(|| Failure::null("out"))?;
        let sessionstore_session { manager, session } = *handle;
        let saved = manager.manager.save(session)?;
        let set_cookie = match saved.set_cookie {
            Some(cookie) => owned_string(&cookie, "Set-Cookie")?,
            None => ptr::null_mut(),
        };
        *out = sessionstore_saved {
            set_cookie,
            vary_cookie: saved.vary_cookie,
            ended: saved.ended,
        };
        Ok(())
    })
}
