//! The result enum, how a Rust error becomes one, and the thread-local last-error message
//! with the functions that read it.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr;

use super::guard::shielded;
use crate::Error;

/// What every fallible function returns. SESSIONSTORE_OK is 0; on any other value
/// sessionstore_last_error() says what went wrong.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_result {
    /// Success.
    SESSIONSTORE_OK = 0,
    /// A pointer argument that must not be NULL was NULL.
    SESSIONSTORE_NULL_ARGUMENT = 1,
    /// An argument was refused: a string that is not UTF-8 or is too long, malformed
    /// MessagePack, an unknown enum value, an integer overflow.
    SESSIONSTORE_INVALID_ARGUMENT = 2,
    /// The session has no such key.
    SESSIONSTORE_NOT_FOUND = 3,
    /// The key holds a value of another type than asked for, or a value cannot be converted
    /// (a NaN with the JSON format, a string holding a NUL byte read as a C string).
    SESSIONSTORE_TYPE_MISMATCH = 4,
    /// A configuration value is missing or invalid; the message names the setting.
    SESSIONSTORE_CONFIG = 5,
    /// The store failed or could not be reached; the message names the backend and the cause.
    SESSIONSTORE_STORE = 6,
    /// The session breaks a configured limit (encoded size, key length, number of keys);
    /// nothing was written.
    SESSIONSTORE_TOO_LARGE = 7,
    /// A save kept conflicting with concurrent requests and gave up (see max_attempts).
    SESSIONSTORE_CONTENTION = 8,
    /// Session data could not be encoded in the configured format.
    SESSIONSTORE_CODEC = 9,
    /// A bug inside the library (a Rust panic), caught at the boundary. The handles used in
    /// the call should be freed and not used otherwise.
    SESSIONSTORE_PANIC = 10,
}

use sessionstore_result::*;

/// Why a call failed: the code returned and the message sessionstore_last_error() gives.
pub(super) struct Failure {
    pub(super) code: sessionstore_result,
    pub(super) message: String,
}

/// What the body of an entry point returns.
pub(super) type Outcome<T = ()> = Result<T, Failure>;

impl Failure {
    pub(super) fn new(code: sessionstore_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A pointer argument named `name` was NULL.
    pub(super) fn null(name: &str) -> Failure {
        Failure::new(SESSIONSTORE_NULL_ARGUMENT, format!("{name} is NULL"))
    }

    /// An argument was refused.
    pub(super) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(SESSIONSTORE_INVALID_ARGUMENT, message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let code = match &error {
            Error::Store { .. } => SESSIONSTORE_STORE,
            Error::Config { .. } => SESSIONSTORE_CONFIG,
            Error::Value { .. } => SESSIONSTORE_TYPE_MISMATCH,
            Error::TooLarge { .. } | Error::LimitExceeded { .. } => SESSIONSTORE_TOO_LARGE,
            Error::Contention { .. } => SESSIONSTORE_CONTENTION,
            Error::Codec(_) => SESSIONSTORE_CODEC,
        };
        Failure::new(code, error.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Replaces this thread's last-error message; "" clears it.
pub(super) fn set_last_error(message: &str) {
    // During thread teardown the slot may be gone already; the message is then dropped.
    let _ = LAST_ERROR.try_with(|last| {
        let mut last = last.borrow_mut();
        if message.is_empty() {
            // Every successful call clears the message: no allocation when it is clear.
            if !last.as_bytes().is_empty() {
                *last = CString::default();
            }
        } else {
            *last = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        }
    });
}

/// The message describing how this thread's last call of a function returning a
/// sessionstore_result failed, or "" if that call succeeded. Never NULL.
///
/// The string is borrowed: valid until this thread's next call into the library (other than
/// sessionstore_last_error() and sessionstore_last_error_copy()). Copy it to keep it.
#[unsafe(no_mangle)]
pub extern "C" fn sessionstore_last_error() -> *const c_char {
    shielded(c"".as_ptr(), || {
        LAST_ERROR
            .try_with(|last| last.borrow().as_ptr())
            .unwrap_or(c"".as_ptr())
    })
}

/// Copies this thread's last-error message into `buffer` (at most `capacity` bytes including
/// the terminating NUL, cut short if needed) and returns the message's full length in bytes,
/// not counting the NUL, like snprintf. `buffer` may be NULL when `capacity` is 0, to ask
/// for the length.
///
/// # Safety
/// `buffer` is NULL or points to `capacity` writable bytes; the general rules in the header's
/// preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_last_error_copy(
    buffer: *mut c_char,
    capacity: usize,
) -> usize {
    shielded(0, || {
        LAST_ERROR
            .try_with(|last| {
                let last = last.borrow();
                let message = last.as_bytes();
                if !buffer.is_null() && capacity > 0 {
                    let n = message.len().min(capacity - 1);
                    // SAFETY: the caller guarantees `capacity` writable bytes.
                    unsafe {
                        ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buffer, n);
                        *buffer.add(n) = 0;
                    }
                }
                message.len()
            })
            .unwrap_or(0)
    })
}

/// The name of a result code, e.g. "SESSIONSTORE_NOT_FOUND"; "unknown result" for a value
/// that is not a sessionstore_result.
#[unsafe(no_mangle)]
pub extern "C" fn sessionstore_result_name(result: c_int) -> *const c_char {
    shielded(c"unknown result".as_ptr(), || result_name(result).as_ptr())
}

fn result_name(result: c_int) -> &'static CStr {
    match result {
        0 => c"SESSIONSTORE_OK",
        1 => c"SESSIONSTORE_NULL_ARGUMENT",
        2 => c"SESSIONSTORE_INVALID_ARGUMENT",
        3 => c"SESSIONSTORE_NOT_FOUND",
        4 => c"SESSIONSTORE_TYPE_MISMATCH",
        5 => c"SESSIONSTORE_CONFIG",
        6 => c"SESSIONSTORE_STORE",
        7 => c"SESSIONSTORE_TOO_LARGE",
        8 => c"SESSIONSTORE_CONTENTION",
        9 => c"SESSIONSTORE_CODEC",
        10 => c"SESSIONSTORE_PANIC",
        _ => c"unknown result",
    }
}

/// This thread's last-error message, as sessionstore_last_error() gives it, for tests.
#[cfg(test)]
pub(super) fn last_error_text() -> String {
    // SAFETY: sessionstore_last_error never returns NULL.
    unsafe { CStr::from_ptr(sessionstore_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::guard::call;

    #[test]
    fn error_kinds_map_to_their_codes() {
        let cases = [
            (Error::store("sqlite", "down"), SESSIONSTORE_STORE),
            (Error::config("lifetime", "zero"), SESSIONSTORE_CONFIG),
            (Error::TooLarge { size: 2, max: 1 }, SESSIONSTORE_TOO_LARGE),
            (Error::Contention { attempts: 3 }, SESSIONSTORE_CONTENTION),
            (Error::Codec("bad".into()), SESSIONSTORE_CODEC),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            assert_eq!(call(|| Err(error.into())), code);
            assert_eq!(last_error_text(), message);
        }
    }

    #[test]
    fn messages_with_nul_bytes_stay_whole() {
        set_last_error("a\0b");
        assert_eq!(last_error_text(), "a\\0b");
    }
}
