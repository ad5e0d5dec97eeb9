//! A session's values: typed getters and setters for the C types, raw MessagePack in and out
//! for everything else, and the increment that survives concurrent requests.

use std::ffi::c_char;

use rmpv::Value;

use super::args::{byte_buffer, key_arg, optional_out, out_ptr, output, string};
use super::guard::call;
use super::owned::{owned_bytes, owned_string};
use super::result::sessionstore_result::{
    self, SESSIONSTORE_CODEC, SESSIONSTORE_NOT_FOUND, SESSIONSTORE_TYPE_MISMATCH,
};
use super::result::{Failure, Outcome};
use super::session::{session_mut, session_ref, sessionstore_session};
use crate::codec::TIMESTAMP_EXT;

/// The type of the value under a key, from sessionstore_session_get_type().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_value_type {
    /// MessagePack nil (Python's None).
    SESSIONSTORE_TYPE_NIL = 0,
    /// A boolean.
    SESSIONSTORE_TYPE_BOOL = 1,
    /// An integer (read with sessionstore_session_get_i64() when it fits in int64_t).
    SESSIONSTORE_TYPE_INT = 2,
    /// A floating-point number.
    SESSIONSTORE_TYPE_FLOAT = 3,
    /// A string.
    SESSIONSTORE_TYPE_STRING = 4,
    /// A byte string.
    SESSIONSTORE_TYPE_BYTES = 5,
    /// An array (read it with sessionstore_session_get_msgpack()).
    SESSIONSTORE_TYPE_ARRAY = 6,
    /// A map (read it with sessionstore_session_get_msgpack()).
    SESSIONSTORE_TYPE_MAP = 7,
    /// A MessagePack timestamp (extension type -1).
    SESSIONSTORE_TYPE_TIMESTAMP = 8,
    /// Another MessagePack extension type.
    SESSIONSTORE_TYPE_EXT = 9,
}

fn value_type(value: &Value) -> sessionstore_value_type {
    use sessionstore_value_type::*;
    match value {
        Value::Nil => SESSIONSTORE_TYPE_NIL,
        Value::Boolean(_) => SESSIONSTORE_TYPE_BOOL,
        Value::Integer(_) => SESSIONSTORE_TYPE_INT,
        Value::F32(_) | Value::F64(_) => SESSIONSTORE_TYPE_FLOAT,
        Value::String(_) => SESSIONSTORE_TYPE_STRING,
        Value::Binary(_) => SESSIONSTORE_TYPE_BYTES,
        Value::Array(_) => SESSIONSTORE_TYPE_ARRAY,
        Value::Map(_) => SESSIONSTORE_TYPE_MAP,
        Value::Ext(TIMESTAMP_EXT, _) => SESSIONSTORE_TYPE_TIMESTAMP,
        Value::Ext(..) => SESSIONSTORE_TYPE_EXT,
    }
}

fn type_name(value_type: sessionstore_value_type) -> &'static str {
    use sessionstore_value_type::*;
    match value_type {
        SESSIONSTORE_TYPE_NIL => "nil",
        SESSIONSTORE_TYPE_BOOL => "a boolean",
        SESSIONSTORE_TYPE_INT => "an integer",
        SESSIONSTORE_TYPE_FLOAT => "a float",
        SESSIONSTORE_TYPE_STRING => "a string",
        SESSIONSTORE_TYPE_BYTES => "a byte string",
        SESSIONSTORE_TYPE_ARRAY => "an array",
        SESSIONSTORE_TYPE_MAP => "a map",
        SESSIONSTORE_TYPE_TIMESTAMP => "a timestamp",
        SESSIONSTORE_TYPE_EXT => "a MessagePack extension",
    }
}

fn missing(key: &str) -> Failure {
    Failure::new(
        SESSIONSTORE_NOT_FOUND,
        format!("the session has no key {key:?}"),
    )
}

fn mismatch(key: &str, expected: &str, found: &Value) -> Failure {
    Failure::new(
        SESSIONSTORE_TYPE_MISMATCH,
        format!(
            "session value {key:?} is {}, not {expected}",
            type_name(value_type(found))
        ),
    )
}

/// Runs `read` on the value under `key`; SESSIONSTORE_NOT_FOUND when there is none.
unsafe fn with_value(
    session: *const sessionstore_session,
    key: *const c_char,
    read: impl FnOnce(&str, &Value) -> Outcome,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        let value = session.get_value(key).ok_or_else(|| missing(key))?;
        read(key, value)
    })
}

/// Reads the value under `key` as a `T`, with the Rust API's conversions.
unsafe fn get_typed<T: serde::de::DeserializeOwned>(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut T,
    empty: T,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { output(out, "out", empty) }?;
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        *out = session.get::<T>(key)?.ok_or_else(|| missing(key))?;
        Ok(())
    })
}

/// Hands out in `*out` / `*out_len` the bytes `encode` makes of the value under `key`;
/// SESSIONSTORE_NOT_FOUND when there is none.
unsafe fn get_encoded(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
    encode: impl FnOnce(&str, &Value) -> Outcome<Vec<u8>>,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let len = unsafe { output(out_len, "out_len", 0) }?;
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        let value = session.get_value(key).ok_or_else(|| missing(key))?;
        (*out, *len) = owned_bytes(encode(key, value)?);
        Ok(())
    })
}

/// Stores `value` under `key`.
unsafe fn set_value(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: impl FnOnce() -> Outcome<Value>,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let session = unsafe { session_mut(session) }?;
        let key = unsafe { key_arg(key) }?;
        session.insert_value(key, value()?)?;
        Ok(())
    })
}

/// Puts the type of the value under `key` in `*out`; SESSIONSTORE_NOT_FOUND if there is none.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_type(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut sessionstore_value_type,
) -> sessionstore_result {
    if out.is_null() {
        return call(|| Err(Failure::null("out")));
    }
    // SAFETY: checked above; `with_value` checks the rest.
    unsafe {
        out.write(sessionstore_value_type::SESSIONSTORE_TYPE_NIL);
        with_value(session, key, |_, value| {
            *out = value_type(value);
            Ok(())
        })
    }
}

/// Reads the string under `key` into `*out` (NUL-terminated) and its length in bytes into
/// `*out_len`, which may be NULL. SESSIONSTORE_NOT_FOUND if there is no such key,
/// SESSIONSTORE_TYPE_MISMATCH if it holds something else (or a string with a NUL byte).
///
/// `*out` is released with sessionstore_string_free().
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable, `out_len`
/// NULL or writable; the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_string(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let len = unsafe { optional_out(out_len, 0) };
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        let text: String = session.get(key)?.ok_or_else(|| missing(key))?;
        *out = owned_string(&text, &format!("session value {key:?}"))?;
        if let Some(len) = len {
            *len = text.len();
        }
        Ok(())
    })
}

/// Reads the byte string under `key` into `*out` / `*out_len` (`*out` is NULL when the length
/// is 0). SESSIONSTORE_NOT_FOUND if there is no such key, SESSIONSTORE_TYPE_MISMATCH if it
/// holds something else.
///
/// `*out` is released with sessionstore_bytes_free(*out, *out_len).
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` and `out_len` writable;
/// the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_bytes(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get_encoded(session, key, out, out_len, |key, value| match value {
            Value::Binary(bytes) => Ok(bytes.clone()),
            other => Err(mismatch(key, "a byte string", other)),
        })
    }
}

/// Reads the integer under `key` into `*out`. SESSIONSTORE_NOT_FOUND if there is no such
/// key, SESSIONSTORE_TYPE_MISMATCH if it holds something else or an integer beyond int64_t.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_i64(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut i64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { get_typed(session, key, out, 0) }
}

/// Reads the number under `key` into `*out` (integers are converted, as in the Rust API).
/// SESSIONSTORE_NOT_FOUND if there is no such key, SESSIONSTORE_TYPE_MISMATCH if it holds
/// something else.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_f64(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut f64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { get_typed(session, key, out, 0.0) }
}

/// Reads the boolean under `key` into `*out`. SESSIONSTORE_NOT_FOUND if there is no such
/// key, SESSIONSTORE_TYPE_MISMATCH if it holds something else.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` writable; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_bool(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { get_typed(session, key, out, false) }
}

/// Succeeds (SESSIONSTORE_OK) when `key` holds nil (Python's None);
/// SESSIONSTORE_NOT_FOUND if there is no such key, SESSIONSTORE_TYPE_MISMATCH if it holds
/// something else.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_nil(
    session: *const sessionstore_session,
    key: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_value(session, key, |key, value| match value {
            Value::Nil => Ok(()),
            other => Err(mismatch(key, "nil", other)),
        })
    }
}

/// Reads the value under `key`, whatever its type (arrays, maps, timestamps...), encoded as
/// one MessagePack value, into `*out` / `*out_len`. SESSIONSTORE_NOT_FOUND if there is no
/// such key.
///
/// `*out` is released with sessionstore_bytes_free(*out, *out_len).
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out` and `out_len` writable;
/// the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_msgpack(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        get_encoded(session, key, out, out_len, |_, value| {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, value)
                .map_err(|error| Failure::new(SESSIONSTORE_CODEC, error.to_string()))?;
            Ok(bytes)
        })
    }
}

/// Stores the string `value` under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` and `value` NUL-terminated strings; the general rules
/// in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_string(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::from(string(value, "value")?))) }
}

/// Stores the `len` bytes at `data` as a byte string under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `data` `len` readable bytes
/// (NULL if `len` is 0); the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_bytes(
    session: *mut sessionstore_session,
    key: *const c_char,
    data: *const u8,
    len: usize,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_value(session, key, || {
            Ok(Value::Binary(byte_buffer(data, len, "data")?.to_vec()))
        })
    }
}

/// Stores the integer `value` under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_i64(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: i64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::from(value))) }
}

/// Stores the number `value` under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_f64(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: f64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::F64(value))) }
}

/// Stores the boolean `value` under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_bool(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::Boolean(value))) }
}

/// Stores nil (Python's None) under `key`.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_nil(
    session: *mut sessionstore_session,
    key: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::Nil)) }
}

/// Stores under `key` the one MessagePack value encoded in the `len` bytes at `data` (any
/// type: arrays, maps, timestamps...). Malformed MessagePack, or bytes left after the value,
/// give SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `data` `len` readable bytes
/// (NULL if `len` is 0); the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_msgpack(
    session: *mut sessionstore_session,
    key: *const c_char,
    data: *const u8,
    len: usize,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_value(session, key, || {
            single_msgpack_value(byte_buffer(data, len, "data")?)
        })
    }
}

/// Adds `delta` to the integer under `key` (a missing key counts as 0) and puts the result in
/// `*out_value`, which may be NULL. The operation itself is recorded, not its result: if a
/// concurrent request changed the session, the save re-runs it on the fresher value, so no
/// increment is lost (8 threads x 1000 increments of one key end at exactly 8000).
/// SESSIONSTORE_TYPE_MISMATCH if the key holds something else than an int64_t,
/// SESSIONSTORE_INVALID_ARGUMENT if the sum overflows (a replay saturates instead).
///
/// # Safety
/// `session` is a live session handle, `key` a NUL-terminated string, `out_value` NULL or writable;
/// the general rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_incr(
    session: *mut sessionstore_session,
    key: *const c_char,
    delta: i64,
    out_value: *mut i64,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let result = unsafe { optional_out(out_value, 0) };
        let session = unsafe { session_mut(session) }?;
        let key = unsafe { key_arg(key) }?;
        // Anything but an integer is refused by `modify` below, which then records nothing.
        let current = session.get_value(key).and_then(Value::as_i64);
        if current.unwrap_or(0).checked_add(delta).is_none() {
            return Err(Failure::invalid(format!(
                "adding {delta} to session value {key:?} overflows"
            )));
        }
        let value = session.modify(key, move |n: Option<i64>| {
            n.unwrap_or(0).saturating_add(delta)
        })?;
        if let Some(result) = result {
            *result = value;
        }
        Ok(())
    })
}

/// The one MessagePack value in `bytes`, with nothing after it and nested no deeper than
/// the codec's limit (docs/DESIGN.md §4).
pub(super) fn single_msgpack_value(bytes: &[u8]) -> Outcome<Value> {
    crate::codec::decode_value(bytes).map_err(|error| match error {
        crate::Error::Codec(message) => {
            Failure::invalid(format!("data is not MessagePack: {message}"))
        }
        other => other.into(),
    })
}
