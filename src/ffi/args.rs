//! Argument checks shared by the entry points: strings and byte buffers read within their
//! limits, output pointers checked and reset, C enum values converted.

use std::ffi::{c_char, c_int};
use std::ptr;

use super::result::{Failure, Outcome};

/// The longest key accepted, in bytes.
pub const SESSIONSTORE_MAX_KEY_LEN: usize = 1024;

/// The longest string (other than a key) or byte buffer accepted, in bytes (16 MiB).
pub const SESSIONSTORE_MAX_LEN: usize = 16 << 20;

/// Reads a NUL-terminated UTF-8 string of at most `max` bytes, never reading past the limit.
///
/// # Safety
/// `ptr` is NULL or points to readable memory up to its NUL or `max + 1` bytes.
unsafe fn text<'a>(ptr: *const c_char, name: &str, max: usize) -> Outcome<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    let mut len = 0;
    // SAFETY: the caller guarantees the bytes up to the NUL (or the limit) are readable.
    while unsafe { *ptr.add(len) } != 0 {
        if len == max {
            return Err(Failure::invalid(format!(
                "{name} is longer than {max} bytes"
            )));
        }
        len += 1;
    }
    // SAFETY: the `len` bytes before the NUL were just read.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes)
        .map_err(|error| Failure::invalid(format!("{name} is not valid UTF-8: {error}")))
}

/// A key: a string of at most SESSIONSTORE_MAX_KEY_LEN bytes.
pub(super) unsafe fn key_arg<'a>(ptr: *const c_char) -> Outcome<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { text(ptr, "key", SESSIONSTORE_MAX_KEY_LEN) }
}

/// Any other string argument.
pub(super) unsafe fn string<'a>(ptr: *const c_char, name: &str) -> Outcome<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { text(ptr, name, SESSIONSTORE_MAX_LEN) }
}

/// A (pointer, length) byte buffer; the pointer may be NULL only for length 0.
pub(super) unsafe fn byte_buffer<'a>(ptr: *const u8, len: usize, name: &str) -> Outcome<&'a [u8]> {
    if len > SESSIONSTORE_MAX_LEN {
        return Err(Failure::invalid(format!(
            "{name} is longer than {SESSIONSTORE_MAX_LEN} bytes"
        )));
    }
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Checks an output pointer and stores `empty` in it first.
pub(super) unsafe fn output<'a, T>(ptr: *mut T, name: &str, empty: T) -> Outcome<&'a mut T> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: the caller guarantees `ptr` points to writable storage for a `T`.
    unsafe {
        ptr.write(empty);
        Ok(&mut *ptr)
    }
}

/// An optional output pointer: NULL means the caller does not want the value.
pub(super) unsafe fn optional_out<'a, T>(ptr: *mut T, empty: T) -> Option<&'a mut T> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: as in `output`.
    unsafe {
        ptr.write(empty);
        Some(&mut *ptr)
    }
}

/// The output parameter `out` of a function handing out a pointer, reset to NULL.
pub(super) unsafe fn out_ptr<'a, T>(ptr: *mut *mut T) -> Outcome<&'a mut *mut T> {
    // SAFETY: forwarded from the caller.
    unsafe { output(ptr, "out", ptr::null_mut()) }
}

/// A C enum whose values are passed as `int` (so that an out-of-range value is an error, not
/// undefined behaviour): its name and the Rust value of each of its values.
pub(super) struct CEnum<T: 'static> {
    pub(super) name: &'static str,
    pub(super) values: &'static [(c_int, T)],
}

impl<T: Copy> CEnum<T> {
    /// The Rust value of `value`; SESSIONSTORE_INVALID_ARGUMENT if it is not one of the enum's.
    pub(super) fn value(&self, value: c_int) -> Outcome<T> {
        self.values
            .iter()
            .find(|(code, _)| *code == value)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| Failure::invalid(format!("{value} is not a valid {}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::result::sessionstore_result::SESSIONSTORE_INVALID_ARGUMENT;

    #[test]
    fn strings_are_read_up_to_the_limit_only() {
        let buffer = *b"abcdef\0";
        let ptr = buffer.as_ptr().cast::<c_char>();
        // SAFETY: `buffer` is NUL-terminated.
        unsafe {
            assert_eq!(text(ptr, "s", 6).ok(), Some("abcdef"));
            let failure = text(ptr, "s", 5).err().unwrap();
            assert_eq!(failure.code, SESSIONSTORE_INVALID_ARGUMENT);
            assert_eq!(failure.message, "s is longer than 5 bytes");
        }
    }
}
