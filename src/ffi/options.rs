//! The options handle: settings collected by the `sessionstore_options_set_*` functions and
//! applied over the store URL's by sessionstore_manager_open(), with the C enums they take.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use super::args::{CEnum, out_ptr, string};
use super::guard::{call, shielded};
use super::result::{Failure, Outcome, sessionstore_result};
use crate::at_rest::DataKey;
use crate::codec::Format;
use crate::{Concurrency, ConfigBuilder, CookieMode, SameSite};

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

/// The Rust value of each sessionstore_cookie_mode.
const COOKIE_MODES: CEnum<CookieMode> = {
    use sessionstore_cookie_mode::*;
    CEnum {
        name: "sessionstore_cookie_mode",
        values: &[
            (SESSIONSTORE_COOKIE_PLAIN as c_int, CookieMode::Plain),
            (SESSIONSTORE_COOKIE_SIGNED as c_int, CookieMode::Signed),
            (SESSIONSTORE_COOKIE_FLASK as c_int, CookieMode::Flask),
        ],
    }
};

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

/// The Rust value of each sessionstore_same_site (`None`: no attribute).
const SAME_SITES: CEnum<Option<SameSite>> = {
    use sessionstore_same_site::*;
    CEnum {
        name: "sessionstore_same_site",
        values: &[
            (SESSIONSTORE_SAME_SITE_LAX as c_int, Some(SameSite::Lax)),
            (
                SESSIONSTORE_SAME_SITE_STRICT as c_int,
                Some(SameSite::Strict),
            ),
            (SESSIONSTORE_SAME_SITE_NONE as c_int, Some(SameSite::None)),
            (SESSIONSTORE_SAME_SITE_OMIT as c_int, None),
        ],
    }
};

/// How saves treat concurrent requests of one session, for sessionstore_options_set_concurrency().
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_concurrency {
    /// Compare-and-set with merge and retry: no request's changes are lost (the default).
    SESSIONSTORE_NO_LOST_UPDATES = 0,
    /// Plain overwrite, exactly Flask-Session's behaviour: faster, loses concurrent changes.
    SESSIONSTORE_LAST_WRITER_WINS = 1,
}

/// The Rust value of each sessionstore_concurrency.
const CONCURRENCIES: CEnum<Concurrency> = {
    use sessionstore_concurrency::*;
    CEnum {
        name: "sessionstore_concurrency",
        values: &[
            (
                SESSIONSTORE_NO_LOST_UPDATES as c_int,
                Concurrency::NoLostUpdates,
            ),
            (
                SESSIONSTORE_LAST_WRITER_WINS as c_int,
                Concurrency::LastWriterWins,
            ),
        ],
    }
};

/// The format written to the store, for sessionstore_options_set_format(). Reads accept both.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionstore_format {
    /// A MessagePack map, as Flask-Session 0.8 writes it (the default).
    SESSIONSTORE_FORMAT_MSGPACK = 0,
    /// A JSON object (Flask-Session's `json` format).
    SESSIONSTORE_FORMAT_JSON = 1,
}

/// The Rust value of each sessionstore_format.
const FORMATS: CEnum<Format> = {
    use sessionstore_format::*;
    CEnum {
        name: "sessionstore_format",
        values: &[
            (SESSIONSTORE_FORMAT_MSGPACK as c_int, Format::MessagePack),
            (SESSIONSTORE_FORMAT_JSON as c_int, Format::Json),
        ],
    }
};

/// Settings for sessionstore_manager_open(), collected by the sessionstore_options_set_*()
/// functions. Unset settings keep the store URL's value or the default.
///
/// Created by sessionstore_options_new(), released by sessionstore_options_free().
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
    data_keys: Vec<DataKey>,
    decrypt_only: Option<bool>,
    compress_threshold: Option<usize>,
    max_sessions_per_owner: Option<usize>,
}

impl sessionstore_options {
    /// Applies the settings that were set over `builder`'s.
    pub(super) fn apply(&self, mut builder: ConfigBuilder) -> ConfigBuilder {
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
        for key in &self.data_keys {
            builder = builder.data_key(key.clone());
        }
        if let Some(on) = self.decrypt_only {
            builder = builder.decrypt_only(on);
        }
        if let Some(bytes) = self.compress_threshold {
            builder = builder.compress_threshold(bytes);
        }
        if let Some(sessions) = self.max_sessions_per_owner {
            builder = builder.max_sessions_per_owner(sessions);
        }
        builder
    }
}

/// The options handle behind `ptr`; SESSIONSTORE_NULL_ARGUMENT for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle from sessionstore_options_new().
unsafe fn options_mut<'a>(ptr: *mut sessionstore_options) -> Outcome<&'a mut sessionstore_options> {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null("options"))
}

/// The body of a `sessionstore_options_set_*` function: checks the options handle, then
/// stores `Some(value)` in its field (`value` may return early with `?`). The form
/// `field = string(argument)` stores a copy of the C string `argument`, checked (and named
/// in errors) after the handle.
macro_rules! set_option {
    ($options:ident . $field:ident = string($argument:ident)) => {{
        let (argument, name) = ($argument, stringify!($argument));
        set_option!(
            $options.$field = {
                // SAFETY: a C string from the caller, valid by the header's rules for pointers.
                unsafe { string(argument, name) }?.to_owned()
            }
        )
    }};
    ($options:ident . $field:ident = $value:expr) => {{
        let options = $options;
        call(|| {
            // SAFETY: the caller's handle, valid by the header's rules for pointers.
            let options = unsafe { options_mut(options) }?;
            options.$field = Some($value);
            Ok(())
        })
    }};
}

/// Creates an empty set of options (every setting at its default) in `*out`, to release with
/// sessionstore_options_free(). sessionstore_manager_open() only reads it.
///
/// # Safety
/// `out` is writable; the general rules in the header's preamble (Pointers) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_new(
    out: *mut *mut sessionstore_options,
) -> sessionstore_result {
    call(|| {
        // SAFETY: checked by `out_ptr`.
        let out = unsafe { out_ptr(out) }?;
        *out = Box::into_raw(Box::<sessionstore_options>::default());
        Ok(())
    })
}

/// Releases options.
///
/// # Safety
/// `options` is NULL or a live options handle, not used afterwards; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_free(options: *mut sessionstore_options) {
    shielded((), || {
        if !options.is_null() {
            // SAFETY: the handle came from Box::into_raw in sessionstore_options_new.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Adds a secret for signing cookies. The first secret added signs; all of them verify, so
/// to rotate, add the new secret first and keep the old one until its cookies have expired.
/// Adding a secret makes the cookie mode SESSIONSTORE_COOKIE_SIGNED unless a mode is set.
///
/// # Safety
/// `options` is a live options handle, `secret` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_add_secret(
    options: *mut sessionstore_options,
    secret: *const c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: the caller's pointers, valid by the header's rules for pointers.
        let options = unsafe { options_mut(options) }?;
        let secret = unsafe { string(secret, "secret") }?;
        options.secrets.push(secret.to_owned());
        Ok(())
    })
}

/// Sets how the id is carried in the cookie: one of sessionstore_cookie_mode.
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_mode(
    options: *mut sessionstore_options,
    mode: c_int,
) -> sessionstore_result {
    set_option!(options.cookie_mode = COOKIE_MODES.value(mode)?)
}

/// Sets the cookie name (default "session"). An invalid name is refused by
/// sessionstore_manager_open().
///
/// # Safety
/// `options` is a live options handle, `name` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_name(
    options: *mut sessionstore_options,
    name: *const c_char,
) -> sessionstore_result {
    set_option!(options.cookie_name = string(name))
}

/// Sets the cookie's Domain attribute (default none: the exact host).
///
/// # Safety
/// `options` is a live options handle, `domain` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_domain(
    options: *mut sessionstore_options,
    domain: *const c_char,
) -> sessionstore_result {
    set_option!(options.cookie_domain = string(domain))
}

/// Sets the cookie's Path attribute (default "/").
///
/// # Safety
/// `options` is a live options handle, `path` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_path(
    options: *mut sessionstore_options,
    path: *const c_char,
) -> sessionstore_result {
    set_option!(options.cookie_path = string(path))
}

/// Sets the cookie's HttpOnly attribute (default on).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_http_only(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.cookie_http_only = on)
}

/// Sets the cookie's Secure attribute (default off; turn it on behind HTTPS).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_secure(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.cookie_secure = on)
}

/// Sets the cookie's SameSite attribute: one of sessionstore_same_site (default Lax).
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_same_site(
    options: *mut sessionstore_options,
    same_site: c_int,
) -> sessionstore_result {
    set_option!(options.cookie_same_site = SAME_SITES.value(same_site)?)
}

/// Sets the cookie's Partitioned attribute (CHIPS; default off).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cookie_partitioned(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.cookie_partitioned = on)
}

/// Sets the prefix of store keys (default "session:", as Flask-Session).
///
/// # Safety
/// `options` is a live options handle, `prefix` a NUL-terminated string; the general rules in the
/// header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_prefix(
    options: *mut sessionstore_options,
    prefix: *const c_char,
) -> sessionstore_result {
    set_option!(options.key_prefix = string(prefix))
}

/// Sets the format written to the store: one of sessionstore_format (default MessagePack).
/// Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_format(
    options: *mut sessionstore_options,
    format: c_int,
) -> sessionstore_result {
    set_option!(options.format = FORMATS.value(format)?)
}

/// Sets whether new sessions are permanent, i.e. get a cookie with Expires and Max-Age
/// (Flask-Session's SESSION_PERMANENT; default on).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_permanent(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.permanent = on)
}

/// Sets the idle lifetime in seconds, renewed by writes and touches (default 31 days).
/// 0 is refused by sessionstore_manager_open().
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_idle_lifetime(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    set_option!(options.idle_lifetime = Duration::from_secs(seconds))
}

/// Sets an absolute lifetime in seconds, counted from the session's creation (default none).
/// 0 is refused by sessionstore_manager_open().
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_absolute_lifetime(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    set_option!(options.absolute_lifetime = Duration::from_secs(seconds))
}

/// Sets whether requests that change nothing renew the session's expiry (default on).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_refresh_each_request(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.refresh_each_request = on)
}

/// Sets the minimum time in seconds between two renewals of an unmodified session
/// (default 60).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_touch_interval(
    options: *mut sessionstore_options,
    seconds: u64,
) -> sessionstore_result {
    set_option!(options.touch_interval = Duration::from_secs(seconds))
}

/// Sets how saves treat concurrent requests: one of sessionstore_concurrency (default
/// SESSIONSTORE_NO_LOST_UPDATES). Any other value gives SESSIONSTORE_INVALID_ARGUMENT.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_concurrency(
    options: *mut sessionstore_options,
    mode: c_int,
) -> sessionstore_result {
    set_option!(options.concurrency = CONCURRENCIES.value(mode)?)
}

/// Sets how many times a conflicting save is attempted before SESSIONSTORE_CONTENTION
/// (default 1000). 0 is refused by sessionstore_manager_open().
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_max_attempts(
    options: *mut sessionstore_options,
    attempts: u32,
) -> sessionstore_result {
    set_option!(options.max_attempts = attempts)
}

/// Purges expired records every `loads` loads (Flask-Session's SESSION_CLEANUP_N_REQUESTS;
/// default never). 0 is refused by sessionstore_manager_open().
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_cleanup_every(
    options: *mut sessionstore_options,
    loads: u64,
) -> sessionstore_result {
    set_option!(options.cleanup_every = loads)
}

/// Sets the largest encoded session a save accepts, in bytes (default 4 MiB).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_max_size(
    options: *mut sessionstore_options,
    bytes: usize,
) -> sessionstore_result {
    set_option!(options.max_size = bytes)
}

/// Adds a data key for encryption at rest: 32 bytes (256 bits) in base64, standard or
/// URL-safe (`openssl rand -base64 32` makes one). The first key added encrypts every save;
/// all of them decrypt, so to rotate, add the new key first and keep the old ones until their
/// records have been rewritten (each session's next request does it) or have expired.
/// Flask-Session cannot read encrypted records, so sessionstore_manager_open() refuses
/// encryption with SESSIONSTORE_COOKIE_FLASK. A key that is not 32 bytes of base64 gives
/// SESSIONSTORE_CONFIG.
///
/// # Safety
/// `options` is a live options handle, `key_base64` a NUL-terminated string; the general
/// rules in the header's preamble (Pointers, Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_add_data_key(
    options: *mut sessionstore_options,
    key_base64: *const c_char,
) -> sessionstore_result {
    call(|| {
        // SAFETY: the caller's pointers, valid by the header's rules for pointers.
        let options = unsafe { options_mut(options) }?;
        let key_base64 = unsafe { string(key_base64, "key_base64") }?;
        options
            .data_keys
            .push(DataKey::from_base64("data_key", key_base64)?);
        Ok(())
    })
}

/// Decrypt-only (default false): the data keys decrypt, and saves are written plain. The way
/// to turn encryption off without losing sessions: records still encrypted are read, and each
/// session's next request rewrites its record plain; remove the keys once that happened or
/// the records expired. Allowed with SESSIONSTORE_COOKIE_FLASK (saves are plain records).
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_decrypt_only(
    options: *mut sessionstore_options,
    on: bool,
) -> sessionstore_result {
    set_option!(options.decrypt_only = on)
}

/// Compresses (LZ4) encoded sessions of at least `bytes` bytes when that makes them smaller
/// (default: never). Flask-Session cannot read compressed records, so
/// sessionstore_manager_open() refuses compression with SESSIONSTORE_COOKIE_FLASK.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_compress_threshold(
    options: *mut sessionstore_options,
    bytes: usize,
) -> sessionstore_result {
    set_option!(options.compress_threshold = bytes)
}

/// Caps the sessions of one owner (sessionstore_session_set_owner()): binding one more ends
/// the owner's oldest (default no limit). 0 makes sessionstore_manager_open() fail with
/// SESSIONSTORE_CONFIG.
///
/// # Safety
/// `options` is a live options handle; the general rules in the header's preamble (Pointers,
/// Threads) apply.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sessionstore_options_set_max_sessions_per_owner(
    options: *mut sessionstore_options,
    sessions: usize,
) -> sessionstore_result {
    set_option!(options.max_sessions_per_owner = sessions)
}
