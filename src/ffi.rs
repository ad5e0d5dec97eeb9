//! The C ABI (cargo feature `capi`): opaque handles over [`SessionManager`] and [`Session`],
//! one result enum, a thread-local last-error message.
//!
//! `build.rs` turns this file into `include/sessionstore.h` with cbindgen; the doc comments
//! below become the header's comments, so they speak C. The conventions every function
//! follows (strings, ownership, threads) are stated once at the top of the header
//! (`cbindgen.toml`). This module only checks and converts arguments and calls the Rust API;
//! every entry point runs under `catch_unwind`, so no panic crosses the boundary.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;

use crate::codec::{Format, TIMESTAMP_EXT};
use crate::{
    Concurrency, Config, ConfigBuilder, CookieMode, Error, SameSite, Session, SessionManager,
};

/// The longest key accepted, in bytes.
pub const SESSIONSTORE_MAX_KEY_LEN: usize = 1024;

/// The longest string (other than a key) or byte buffer accepted, in bytes (16 MiB).
pub const SESSIONSTORE_MAX_LEN: usize = 16 << 20;

/// The most Flask settings sessionstore_manager_open_flask() accepts in one call.
pub const SESSIONSTORE_MAX_SETTINGS: usize = 256;

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

/// How the session id is carried in the cookie value, for sessionstore_options_set_cookie_mode().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_cookie_mode {
    /// The bare id (Flask-Session's default).
    SESSIONSTORE_COOKIE_PLAIN = 0,
    /// `id.signature`, HMAC-SHA256 with the first secret (the default once a secret is added).
    SESSIONSTORE_COOKIE_SIGNED = 1,
    /// itsdangerous' format, as Flask-Session writes it with `SESSION_USE_SIGNER = True`.
    SESSIONSTORE_COOKIE_FLASK = 2,
}

/// The cookie's SameSite attribute, for sessionstore_options_set_cookie_same_site().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_same_site {
    /// `SameSite=Lax` (the default).
    SESSIONSTORE_SAME_SITE_LAX = 0,
    /// `SameSite=Strict`.
    SESSIONSTORE_SAME_SITE_STRICT = 1,
    /// `SameSite=None` (the cookie is then also marked Secure).
    SESSIONSTORE_SAME_SITE_NONE = 2,
    /// No SameSite attribute at all.
    SESSIONSTORE_SAME_SITE_OMIT = 3,
}

/// How saves treat concurrent requests of one session, for sessionstore_options_set_concurrency().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_concurrency {
    /// Compare-and-set with merge and retry: no request's changes are lost (the default).
    SESSIONSTORE_NO_LOST_UPDATES = 0,
    /// Plain overwrite, exactly Flask-Session's behaviour: faster, loses concurrent changes.
    SESSIONSTORE_LAST_WRITER_WINS = 1,
}

/// The format written to the store, for sessionstore_options_set_format(). Reads accept both.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_format {
    /// A MessagePack map, as Flask-Session 0.8 writes it (the default).
    SESSIONSTORE_FORMAT_MSGPACK = 0,
    /// A JSON object (Flask-Session's `json` format).
    SESSIONSTORE_FORMAT_JSON = 1,
}

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

/// Settings for sessionstore_manager_open(), collected by the sessionstore_options_set_*()
/// functions. Unset settings keep the store URL's value or the default.
///
/// Ownership: created by sessionstore_options_new(), released by sessionstore_options_free().
/// Threads: not to be changed by two threads at once.
#[derive(Debug, Default)]
pub struct sessionstore_options {
    secrets: Vec<String>,
    cookie_mode: Option<CookieMode>,
    cookie_name: Option<String>,
    cookie_domain: Option<String>,
    cookie_path: Option<String>,
    cookie_http_only: Option<bool>,
    cookie_secure: Option<bool>,
    cookie_same_site: Option<Option<SameSite>>,
    cookie_partitioned: Option<bool>,
    key_prefix: Option<String>,
    format: Option<Format>,
    permanent: Option<bool>,
    idle_lifetime: Option<Duration>,
    absolute_lifetime: Option<Duration>,
    refresh_each_request: Option<bool>,
    touch_interval: Option<Duration>,
    concurrency: Option<Concurrency>,
    max_attempts: Option<u32>,
    cleanup_every: Option<u64>,
    max_size: Option<usize>,
}

impl sessionstore_options {
    fn apply(&self, mut builder: ConfigBuilder) -> ConfigBuilder {
        for secret in &self.secrets {
            builder = builder.secret(secret);
        }
        if let Some(mode) = self.cookie_mode {
            builder = builder.cookie_mode(mode);
        }
        if let Some(name) = &self.cookie_name {
            builder = builder.cookie_name(name);
        }
        if let Some(domain) = &self.cookie_domain {
            builder = builder.cookie_domain(domain);
        }
        if let Some(path) = &self.cookie_path {
            builder = builder.cookie_path(path);
        }
        if let Some(on) = self.cookie_http_only {
            builder = builder.cookie_http_only(on);
        }
        if let Some(on) = self.cookie_secure {
            builder = builder.cookie_secure(on);
        }
        if let Some(same_site) = self.cookie_same_site {
            builder = builder.cookie_same_site(same_site);
        }
        if let Some(on) = self.cookie_partitioned {
            builder = builder.cookie_partitioned(on);
        }
        if let Some(prefix) = &self.key_prefix {
            builder = builder.key_prefix(prefix);
        }
        if let Some(format) = self.format {
            builder = builder.format(format);
        }
        if let Some(on) = self.permanent {
            builder = builder.permanent(on);
        }
        if let Some(lifetime) = self.idle_lifetime {
            builder = builder.idle_lifetime(lifetime);
        }
        if let Some(lifetime) = self.absolute_lifetime {
            builder = builder.absolute_lifetime(lifetime);
        }
        if let Some(on) = self.refresh_each_request {
            builder = builder.refresh_each_request(on);
        }
        if let Some(interval) = self.touch_interval {
            builder = builder.touch_interval(interval);
        }
        if let Some(mode) = self.concurrency {
            builder = builder.concurrency(mode);
        }
        if let Some(attempts) = self.max_attempts {
            builder = builder.max_attempts(attempts);
        }
        if let Some(n) = self.cleanup_every {
            builder = builder.cleanup_every(n);
        }
        if let Some(bytes) = self.max_size {
            builder = builder.max_size(bytes);
        }
        builder
    }
}

/// Loads and saves sessions: one per application, shared by every thread.
///
/// Ownership: created by sessionstore_manager_open() or sessionstore_manager_open_flask(),
/// released by sessionstore_manager_free(). Threads: safe to use from any number of threads
/// at once.
#[derive(Debug)]
pub struct sessionstore_manager {
    manager: SessionManager,
}

/// One request's session.
///
/// Ownership: created by sessionstore_manager_load(), consumed by sessionstore_session_save()
/// or released unsaved by sessionstore_session_free(). Threads: one thread at a time.
#[derive(Debug)]
pub struct sessionstore_session {
    manager: Arc<sessionstore_manager>,
    session: Session,
}

/// A snapshot of a session's keys, in sorted order.
///
/// Ownership: created by sessionstore_session_keys(), released by sessionstore_keys_free().
/// It does not change when the session does.
#[derive(Debug)]
pub struct sessionstore_keys {
    keys: Vec<CString>,
}

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

// ---------------------------------------------------------------------------------------
// Errors, the last-error message and the panic guard.

/// Why a call failed: the code returned and the message sessionstore_last_error() gives.
struct Failure {
    code: sessionstore_result,
    message: String,
}

type Outcome<T = ()> = Result<T, Failure>;

impl Failure {
    fn new(code: sessionstore_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn null(name: &str) -> Failure {
        Failure::new(SESSIONSTORE_NULL_ARGUMENT, format!("{name} is NULL"))
    }

    fn invalid(message: impl Into<String>) -> Failure {
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

fn set_last_error(message: &str) {
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

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("internal error (Rust panic) inside sessionstore: {text}")
}

/// Runs one entry point: sets the last-error message, turns a panic into SESSIONSTORE_PANIC.
fn call(body: impl FnOnce() -> Outcome) -> sessionstore_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            SESSIONSTORE_OK
        }
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.code
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            SESSIONSTORE_PANIC
        }
    }
}

/// Runs an entry point that cannot report a result (free functions, accessors): a panic
/// gives `fallback` and is recorded as the last error.
fn shielded<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        set_last_error(&panic_message(payload.as_ref()));
        fallback
    })
}

// ---------------------------------------------------------------------------------------
// Argument checking and output.

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
unsafe fn key_arg<'a>(ptr: *const c_char) -> Outcome<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { text(ptr, "key", SESSIONSTORE_MAX_KEY_LEN) }
}

/// Any other string argument.
unsafe fn string<'a>(ptr: *const c_char, name: &str) -> Outcome<&'a str> {
    // SAFETY: forwarded from the caller.
    unsafe { text(ptr, name, SESSIONSTORE_MAX_LEN) }
}

/// A (pointer, length) byte buffer; the pointer may be NULL only for length 0.
unsafe fn byte_buffer<'a>(ptr: *const u8, len: usize, name: &str) -> Outcome<&'a [u8]> {
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
unsafe fn output<'a, T>(ptr: *mut T, name: &str, empty: T) -> Outcome<&'a mut T> {
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
unsafe fn optional_out<'a, T>(ptr: *mut T, empty: T) -> Option<&'a mut T> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: as in `output`.
    unsafe {
        ptr.write(empty);
        Some(&mut *ptr)
    }
}

unsafe fn options_mut<'a>(ptr: *mut sessionstore_options) -> Outcome<&'a mut sessionstore_options> {
    // SAFETY: the caller passes a handle from sessionstore_options_new() or NULL.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null("options"))
}

unsafe fn manager_ref<'a>(ptr: *const sessionstore_manager) -> Outcome<&'a sessionstore_manager> {
    // SAFETY: the caller passes a handle from sessionstore_manager_open*() or NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null("manager"))
}

unsafe fn session_ref<'a>(ptr: *const sessionstore_session) -> Outcome<&'a Session> {
    // SAFETY: the caller passes a handle from sessionstore_manager_load() or NULL.
    unsafe { ptr.as_ref() }
        .map(|handle| &handle.session)
        .ok_or_else(|| Failure::null("session"))
}

unsafe fn session_mut<'a>(ptr: *mut sessionstore_session) -> Outcome<&'a mut Session> {
    // SAFETY: as in `session_ref`.
    unsafe { ptr.as_mut() }
        .map(|handle| &mut handle.session)
        .ok_or_else(|| Failure::null("session"))
}

/// Hands a string to the caller (release with sessionstore_string_free()).
fn owned_string(text: &str, what: &str) -> Outcome<*mut c_char> {
    CString::new(text).map(CString::into_raw).map_err(|_| {
        Failure::new(
            SESSIONSTORE_TYPE_MISMATCH,
            format!("{what} contains a NUL byte; read it with sessionstore_session_get_msgpack"),
        )
    })
}

/// Hands bytes to the caller (release with sessionstore_bytes_free()); NULL when empty.
fn owned_bytes(bytes: Vec<u8>) -> (*mut u8, usize) {
    let len = bytes.len();
    if len == 0 {
        return (ptr::null_mut(), 0);
    }
    (Box::into_raw(bytes.into_boxed_slice()).cast::<u8>(), len)
}

fn enum_value<T: Copy>(value: c_int, name: &str, choices: &[(c_int, T)]) -> Outcome<T> {
    choices
        .iter()
        .find(|(code, _)| *code == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| Failure::invalid(format!("{value} is not a valid {name}")))
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

// ---------------------------------------------------------------------------------------
// Library-wide functions.

/// The library's version, e.g. "0.1.0" (SESSIONSTORE_VERSION is the header's).
///
/// Ownership: a static string; do not free it. Threads: any.
#[unsafe(no_mangle)]
pub extern "C" fn sessionstore_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the crate version holds a NUL byte"),
        };
    shielded(VERSION.as_ptr(), || VERSION.as_ptr())
}

/// The message describing how this thread's last call of a function returning a
/// sessionstore_result failed, or "" if that call succeeded. Never NULL.
///
/// Ownership: borrowed; valid until this thread's next call into the library (other than
/// sessionstore_last_error() and sessionstore_last_error_copy()). Copy it to keep it.
/// Threads: each thread has its own message.
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
/// Ownership: the buffer is the caller's. Threads: each thread has its own message.
///
/// # Safety
/// `buffer` must point to `capacity` writable bytes.
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
///
/// Ownership: a static string; do not free it. Threads: any.
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

/// Releases a string the library handed out. NULL is ignored.
///
/// Ownership: takes `string` back; it must come from this library and not be used again.
///
/// Threads: any.
///
/// # Safety
/// `string` is NULL or a string this library returned and that was not released yet.
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
/// NULL is ignored.
///
/// Ownership: takes `data` back; it must not be used again.
///
/// Threads: any.
///
/// # Safety
/// `data` is NULL or a buffer this library returned with exactly `len` bytes, not released yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_bytes_free(data: *mut u8, len: usize) {
    shielded((), || {
        if !data.is_null() {
            // SAFETY: the caller hands back a boxed slice of `len` bytes from `owned_bytes`.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)) });
        }
    })
}

// ---------------------------------------------------------------------------------------
// Options.

/// Creates an empty set of options (every setting at its default) in `*out`.
///
/// Ownership: `*out` is the caller's; release it with sessionstore_options_free(). It is
/// only read by sessionstore_manager_open(), which does not take it over.
///
/// Threads: any.
///
/// # Safety
/// `out` must point to writable storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_new(
    out: *mut *mut sessionstore_options,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked by `out`.
        let out = unsafe { out_ptr(out) }?;
        *out = Box::into_raw(Box::<sessionstore_options>::default());
        Ok(())
    })
}

/// Releases options. NULL is ignored.
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is NULL or a handle from sessionstore_options_new() not released yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_free(options: *mut sessionstore_options) {
    shielded((), || {
        if !options.is_null() {
            // SAFETY: the handle came from Box::into_raw in sessionstore_options_new.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

unsafe fn out_ptr<'a, T>(ptr: *mut *mut T) -> Outcome<&'a mut *mut T> {
    // SAFETY: forwarded from the caller.
    unsafe { output(ptr, "out", ptr::null_mut()) }
}

/// Sets one option from a string argument.
unsafe fn set_text_option(
    options: *mut sessionstore_options,
    value: *const c_char,
    name: &str,
    apply: impl FnOnce(&mut sessionstore_options, String),
) -> sessionstore_result {
    call(|| {
        // SAFETY: forwarded from the caller.
        let options = unsafe { options_mut(options) }?;
        let value = unsafe { string(value, name) }?;
        apply(options, value.to_owned());
        Ok(())
    })
}

/// Sets one option from a plain value.
unsafe fn set_option(
    options: *mut sessionstore_options,
    apply: impl FnOnce(&mut sessionstore_options) -> Outcome,
) -> sessionstore_result {
    call(|| {
        // SAFETY: forwarded from the caller.
        apply(unsafe { options_mut(options) }?)
    })
}

/// Adds a secret for signing cookies. The first secret added signs; all of them verify, so
/// to rotate, add the new secret first and keep the old one until its cookies have expired.
/// Adding a secret makes the cookie mode SESSIONSTORE_COOKIE_SIGNED unless a mode is set.
///
/// Ownership: `secret` is copied. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle; `secret` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_add_secret(
    options: *mut sessionstore_options,
    secret: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_text_option(options, secret, "secret", |o, v| o.secrets.push(v)) }
}

/// Sets how the id is carried in the cookie: one of sessionstore_cookie_mode.
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_mode(
    options: *mut sessionstore_options,
    mode: c_int,
) -> sessionstore_result {
    use sessionstore_cookie_mode::*;
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cookie_mode = Some(enum_value(
                mode,
                "sessionstore_cookie_mode",
                &[
                    (SESSIONSTORE_COOKIE_PLAIN as c_int, CookieMode::Plain),
                    (SESSIONSTORE_COOKIE_SIGNED as c_int, CookieMode::Signed),
                    (SESSIONSTORE_COOKIE_FLASK as c_int, CookieMode::Flask),
                ],
            )?);
            Ok(())
        })
    }
}

/// Sets the cookie name (default "session").
///
/// Ownership: `name` is copied. An invalid name is refused by sessionstore_manager_open().
///
/// Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle; `name` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_name(
    options: *mut sessionstore_options,
    name: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_text_option(options, name, "name", |o, v| o.cookie_name = Some(v)) }
}

/// Sets the cookie's Domain attribute (default none: the exact host).
///
/// Ownership: `domain` is copied.
///
/// Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle; `domain` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_domain(
    options: *mut sessionstore_options,
    domain: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_text_option(options, domain, "domain", |o, v| o.cookie_domain = Some(v)) }
}

/// Sets the cookie's Path attribute (default "/").
///
/// Ownership: `path` is copied.
///
/// Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle; `path` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_path(
    options: *mut sessionstore_options,
    path: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_text_option(options, path, "path", |o, v| o.cookie_path = Some(v)) }
}

/// Sets the cookie's HttpOnly attribute (default on).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_http_only(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cookie_http_only = Some(on);
            Ok(())
        })
    }
}

/// Sets the cookie's Secure attribute (default off; turn it on behind HTTPS).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_secure(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cookie_secure = Some(on);
            Ok(())
        })
    }
}

/// Sets the cookie's SameSite attribute: one of sessionstore_same_site (default Lax).
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_same_site(
    options: *mut sessionstore_options,
    same_site: c_int,
) -> sessionstore_result {
    use sessionstore_same_site::*;
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cookie_same_site = Some(enum_value(
                same_site,
                "sessionstore_same_site",
                &[
                    (SESSIONSTORE_SAME_SITE_LAX as c_int, Some(SameSite::Lax)),
                    (
                        SESSIONSTORE_SAME_SITE_STRICT as c_int,
                        Some(SameSite::Strict),
                    ),
                    (SESSIONSTORE_SAME_SITE_NONE as c_int, Some(SameSite::None)),
                    (SESSIONSTORE_SAME_SITE_OMIT as c_int, None),
                ],
            )?);
            Ok(())
        })
    }
}

/// Sets the cookie's Partitioned attribute (CHIPS; default off).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_partitioned(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cookie_partitioned = Some(on);
            Ok(())
        })
    }
}

/// Sets the prefix of store keys (default "session:", as Flask-Session).
///
/// Ownership: `prefix` is copied.
///
/// Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle; `prefix` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_prefix(
    options: *mut sessionstore_options,
    prefix: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_text_option(options, prefix, "prefix", |o, v| o.key_prefix = Some(v)) }
}

/// Sets the format written to the store: one of sessionstore_format (default MessagePack).
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_format(
    options: *mut sessionstore_options,
    format: c_int,
) -> sessionstore_result {
    use sessionstore_format::*;
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.format = Some(enum_value(
                format,
                "sessionstore_format",
                &[
                    (SESSIONSTORE_FORMAT_MSGPACK as c_int, Format::MessagePack),
                    (SESSIONSTORE_FORMAT_JSON as c_int, Format::Json),
                ],
            )?);
            Ok(())
        })
    }
}

/// Sets whether new sessions are permanent, i.e. get a cookie with Expires and Max-Age
/// (Flask-Session's SESSION_PERMANENT; default on).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_permanent(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.permanent = Some(on);
            Ok(())
        })
    }
}

/// Sets the idle lifetime in seconds, renewed by writes and touches (default 31 days).
/// 0 is refused by sessionstore_manager_open().
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_idle_lifetime(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.idle_lifetime = Some(Duration::from_secs(seconds));
            Ok(())
        })
    }
}

/// Sets an absolute lifetime in seconds, counted from the session's creation (default none).
/// 0 is refused by sessionstore_manager_open().
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_absolute_lifetime(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.absolute_lifetime = Some(Duration::from_secs(seconds));
            Ok(())
        })
    }
}

/// Sets whether requests that change nothing renew the session's expiry (default on).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_refresh_each_request(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.refresh_each_request = Some(on);
            Ok(())
        })
    }
}

/// Sets the minimum time in seconds between two renewals of an unmodified session
/// (default 60).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_touch_interval(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.touch_interval = Some(Duration::from_secs(seconds));
            Ok(())
        })
    }
}

/// Sets how saves treat concurrent requests: one of sessionstore_concurrency (default
/// SESSIONSTORE_NO_LOST_UPDATES). Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_concurrency(
    options: *mut sessionstore_options,
    mode: c_int,
) -> sessionstore_result {
    use sessionstore_concurrency::*;
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.concurrency = Some(enum_value(
                mode,
                "sessionstore_concurrency",
                &[
                    (
                        SESSIONSTORE_NO_LOST_UPDATES as c_int,
                        Concurrency::NoLostUpdates,
                    ),
                    (
                        SESSIONSTORE_LAST_WRITER_WINS as c_int,
                        Concurrency::LastWriterWins,
                    ),
                ],
            )?);
            Ok(())
        })
    }
}

/// Sets how many times a conflicting save is attempted before SESSIONSTORE_CONTENTION
/// (default 64). 0 is refused by sessionstore_manager_open().
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_max_attempts(
    options: *mut sessionstore_options,
    attempts: u32,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.max_attempts = Some(attempts);
            Ok(())
        })
    }
}

/// Purges expired records every `loads` loads (Flask-Session's SESSION_CLEANUP_N_REQUESTS;
/// default never). 0 is refused by sessionstore_manager_open().
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cleanup_every(
    options: *mut sessionstore_options,
    loads: u64,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.cleanup_every = Some(loads);
            Ok(())
        })
    }
}

/// Sets the largest encoded session a save accepts, in bytes (default 4 MiB).
///
/// Ownership: borrows `options` for the call. Threads: one thread at a time per options handle.
///
/// # Safety
/// `options` is a live options handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_max_size(
    options: *mut sessionstore_options,
    bytes: usize,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe {
        set_option(options, |o| {
            o.max_size = Some(bytes);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// The manager.

fn hand_out_manager(manager: SessionManager, out: &mut *mut sessionstore_manager) {
    *out = Arc::into_raw(Arc::new(sessionstore_manager { manager })).cast_mut();
}

/// Opens the store named by `store_url` (e.g. "sqlite:///var/lib/app/sessions.db",
/// "memory://"; see the README for every backend and URL parameter), with `options` (NULL:
/// defaults and the URL's parameters), and puts the manager in `*out`.
///
/// Errors: SESSIONSTORE_CONFIG for an invalid URL or setting (the message names it),
/// SESSIONSTORE_STORE when the store cannot be opened.
///
/// Ownership: `store_url` and `options` are only read; `*out` is the caller's, released with
/// sessionstore_manager_free(). Threads: the manager may be used by every thread at once.
///
/// # Safety
/// `store_url` is a NUL-terminated string; `options` NULL or a live options handle; `out`
/// points to writable storage for a pointer.
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
///
/// Ownership: the arrays and strings are only read; `*out` is the caller's, released with
/// sessionstore_manager_free(). Threads: the manager may be used by every thread at once.
///
/// # Safety
/// `names` and `values` point to `count` NUL-terminated strings each; `out` points to
/// writable storage for a pointer.
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

/// Releases the caller's reference to a manager. NULL is ignored. Sessions still out keep
/// the store open until they are saved or freed; the store closes with the last of them.
///
/// Ownership: takes `manager` back; it must not be used again.
///
/// Threads: any number of threads at once.
///
/// # Safety
/// `manager` is NULL or a handle from sessionstore_manager_open*() not released yet.
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
/// Ownership: `cookie_header` is only read; `*out` is the caller's, to hand to
/// sessionstore_session_save() or sessionstore_session_free(). Threads: any number of
/// threads may load through one manager at once.
///
/// # Safety
/// `manager` is a live manager handle; `cookie_header` NULL or a NUL-terminated string; `out`
/// points to writable storage for a pointer.
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
/// Threads: any.
///
/// Ownership: borrows the arguments for the call.
///
/// # Safety
/// `manager` is a live manager handle; `out_count` NULL or writable.
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

// ---------------------------------------------------------------------------------------
// The session: lifecycle.

/// Writes what the request changed and fills `*out` with what the response must carry: a
/// Set-Cookie value (or NULL), whether to send `Vary: Cookie`, and whether the session ended.
/// In the default SESSIONSTORE_NO_LOST_UPDATES mode the write is a compare-and-set: if
/// another request of the same user saved in between, this request's changes (including
/// sessionstore_session_incr() operations) are replayed on the fresher value and retried.
///
/// Ownership: consumes `session` whenever it is not NULL, whatever the result, even when
/// `out` is NULL: never use or free it afterwards. `out->set_cookie` is the caller's, released
/// with sessionstore_string_free(). Threads: any number of saves may run at once.
///
/// # Safety
/// `session` is NULL or a live session handle; `out` NULL or writable.
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

/// Releases a session without saving it: nothing is written, nothing changes in the store.
/// NULL is ignored.
///
/// Ownership: takes `session` back; it must not be used again.
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is NULL or a live session handle.
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
/// one) in `*out`. The id is a credential: do not log it.
///
/// Ownership: `*out` is the caller's, released with sessionstore_string_free().
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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

/// Sets `*out` to whether the session was not found in the store (no cookie, a bad cookie,
/// an unknown or expired id): it will be stored under a new id once something is written.
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_permanent(
    session: *mut sessionstore_session,
    permanent: bool,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helper over the caller's pointer.
        unsafe { session_mut(session) }?.set_permanent(permanent);
        Ok(())
    })
}

/// Gives the session a new id on save, keeping its data; the old record is deleted. Call it
/// when the user logs in (defeats session fixation).
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_regenerate(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helper over the caller's pointer.
        unsafe { session_mut(session) }?.regenerate();
        Ok(())
    })
}

/// Ends the session: on save its record is deleted and the cookie expired (a logout).
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_destroy(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helper over the caller's pointer.
        unsafe { session_mut(session) }?.destroy();
        Ok(())
    })
}

/// Removes every key; unless something is written afterwards, the save then ends the session.
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_clear(
    session: *mut sessionstore_session,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helper over the caller's pointer.
        unsafe { session_mut(session) }?.clear();
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// The session: keys.

/// Sets `*out` to whether the session has `key`.
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out_existed` NULL or
/// writable.
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
/// Ownership: `*out` is the caller's, released with sessionstore_keys_free(); it stays valid
/// after the session is saved or freed.
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `out` writable.
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
/// Ownership: borrows `keys` for the call. Threads: one thread at a time per key list.
///
/// # Safety
/// `keys` is NULL or a live keys handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_keys_count(keys: *const sessionstore_keys) -> usize {
    // SAFETY: the caller passes a live handle or NULL.
    shielded(0, || unsafe { keys.as_ref() }.map_or(0, |k| k.keys.len()))
}

/// The key at `index` (0-based, in sorted order), or NULL when `keys` is NULL or `index` is
/// not below sessionstore_keys_count().
///
/// Ownership: borrowed from `keys`: valid until sessionstore_keys_free(keys).
///
/// Threads: one thread at a time per key list.
///
/// # Safety
/// `keys` is NULL or a live keys handle.
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

/// Releases a key snapshot. NULL is ignored.
///
/// Ownership: takes `keys` back; it and the strings it gave must not be used again.
///
/// Threads: one thread at a time per key list.
///
/// # Safety
/// `keys` is NULL or a live keys handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_keys_free(keys: *mut sessionstore_keys) {
    shielded((), || {
        if !keys.is_null() {
            // SAFETY: the handle came from Box::into_raw in sessionstore_session_keys.
            drop(unsafe { Box::from_raw(keys) });
        }
    })
}

// ---------------------------------------------------------------------------------------
// The session: typed values.

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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable.
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
/// Ownership: `*out` is the caller's, released with sessionstore_string_free().
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable;
/// `out_len` NULL or writable.
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
/// Ownership: `*out` is the caller's, released with sessionstore_bytes_free(*out, *out_len).
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` and `out_len`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_bytes(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let len = unsafe { output(out_len, "out_len", 0) }?;
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        match session.get_value(key) {
            None => Err(missing(key)),
            Some(Value::Binary(bytes)) => {
                (*out, *len) = owned_bytes(bytes.clone());
                Ok(())
            }
            Some(other) => Err(mismatch(key, "a byte string", other)),
        }
    })
}

/// Reads the integer under `key` into `*out`. SESSIONSTORE_NOT_FOUND if there is no such
/// key, SESSIONSTORE_TYPE_MISMATCH if it holds something else or an integer beyond int64_t.
///
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` writable.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string.
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
/// Ownership: `*out` is the caller's, released with sessionstore_bytes_free(*out, *out_len).
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out` and `out_len`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_get_msgpack(
    session: *const sessionstore_session,
    key: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked helpers over the caller's pointers.
        let out = unsafe { out_ptr(out) }?;
        let len = unsafe { output(out_len, "out_len", 0) }?;
        let session = unsafe { session_ref(session) }?;
        let key = unsafe { key_arg(key) }?;
        let value = session.get_value(key).ok_or_else(|| missing(key))?;
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, value)
            .map_err(|error| Failure::new(SESSIONSTORE_CODEC, error.to_string()))?;
        (*out, *len) = owned_bytes(bytes);
        Ok(())
    })
}

/// Stores the string `value` under `key`.
///
/// Ownership: `value` is copied.
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` and `value` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_session_set_string(
    session: *mut sessionstore_session,
    key: *const c_char,
    value: *const c_char,
) -> sessionstore_result {
    // SAFETY: forwarded from the caller.
    unsafe { set_value(session, key, || Ok(Value::from(string(value, "value")?))) }
}

/// Stores the `len` bytes at `data` as a byte string under `key` (`data` may be NULL when
/// `len` is 0).
///
/// Ownership: the bytes are copied.
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `data` `len` readable
/// bytes.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string.
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string.
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
/// Ownership: the bytes are copied.
///
/// Threads: one thread at a time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `data` `len` readable
/// bytes.
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
            let mut rest = byte_buffer(data, len, "data")?;
            let value = rmpv::decode::read_value(&mut rest)
                .map_err(|error| Failure::invalid(format!("data is not MessagePack: {error}")))?;
            if !rest.is_empty() {
                return Err(Failure::invalid(format!(
                    "data holds {} bytes after its MessagePack value",
                    rest.len()
                )));
            }
            Ok(value)
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
/// Ownership: borrows `session` (and the strings passed) for the call. Threads: one thread at a
/// time per session (it may move between threads).
///
/// # Safety
/// `session` is a live session handle; `key` a NUL-terminated string; `out_value` NULL or
/// writable.
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

// ---- session modify (issue 13) ----

use std::ffi::c_void;

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

/// One MessagePack value, with nothing after it.
fn single_msgpack_value(mut bytes: &[u8]) -> Outcome<Value> {
    let value = rmpv::decode::read_value(&mut bytes)
        .map_err(|error| Failure::invalid(format!("data is not MessagePack: {error}")))?;
    if !bytes.is_empty() {
        return Err(Failure::invalid(format!(
            "data holds {} bytes after its MessagePack value",
            bytes.len()
        )));
    }
    Ok(value)
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
/// session is saved or freed.
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
/// `out` is the handle passed to the running callback; `data` `len` readable bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: sessionstore_last_error never returns NULL.
        unsafe { CStr::from_ptr(sessionstore_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_result_and_a_message() {
        let result = call(|| panic!("boom"));
        assert_eq!(result, SESSIONSTORE_PANIC);
        assert!(last_error().contains("boom"), "{}", last_error());
        assert_eq!(shielded(7, || panic!("again")), 7);
        assert!(last_error().contains("again"));
        assert_eq!(call(|| Ok(())), SESSIONSTORE_OK);
        assert_eq!(last_error(), "");
    }

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
            assert_eq!(last_error(), message);
        }
    }

    #[test]
    fn messages_with_nul_bytes_stay_whole() {
        set_last_error("a\0b");
        assert_eq!(last_error(), "a\\0b");
    }

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
