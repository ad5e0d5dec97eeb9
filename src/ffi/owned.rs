//! What the library hands out besides handles: strings and byte buffers, and the functions
//! that take them back.

use std::ffi::{CString, c_char};
use std::ptr;

use super::guard::shielded;
use super::result::sessionstore_result::SESSIONSTORE_TYPE_MISMATCH;
use super::result::{Failure, Outcome};

/// Hands a string to the caller (released with sessionstore_string_free()).
pub(super) fn owned_string(text: &str, what: &str) -> Outcome<*mut c_char> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Failure::new(
            SESSIONSTORE_TYPE_MISMATCH,
            format!("{what} contains a NUL byte; read it with sessionstore_session_get_msgpack"),
        )
    })
}

/// Hands bytes to the caller (released with sessionstore_bytes_free()); NULL when empty.
pub(super) fn owned_bytes(bytes: Vec<u8>) -> (*mut u8, usize) {
    let len = bytes.len();
    if len == 0 {
        return (ptr::null_mut(), 0);
    }
    (Box::into_raw(bytes.into_boxed_slice()).cast::<u8>(), len)
}

/// Releases a `char *` string the library handed out.
///
/// # Safety
/// `string` is NULL or a string this library handed out, not released yet; the general rules in the
/// header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_string_free(string: *mut c_char) {
    shielded((), || {
        if !string.is_null() {
            // SAFETY: the caller hands back a pointer from CString::into_raw.
            drop(unsafe { CString::from_raw(string) });
        }
    })
}

/// Releases a byte buffer the library handed out, with the length it was handed out with.
///
/// # Safety
/// `data` is NULL or a buffer this library handed out, not released yet, with exactly `len` bytes;
/// the general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_bytes_free(data: *mut u8, len: usize) {
    shielded((), || {
        if !data.is_null() {
            // SAFETY: the caller hands back a boxed slice of `len` bytes from `owned_bytes`.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)) });
        }
    })
}
