//! The C ABI's request cycle next to the Rust API's: the same requests, one through
//! `manager.load` / `session.modify` / `manager.save`, the other through the
//! `extern "C"` functions a C server calls (`sessionstore_manager_load`,
//! `sessionstore_session_incr`, `sessionstore_session_save`, `sessionstore_string_free`),
//! with C strings made once up front as a C server has them. What differs is the boundary:
//! argument checks, string conversions, the handles' allocations, `catch_unwind`, the
//! thread-local error, and the copies handed to C.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use sessionstore::SessionManager;
use sessionstore::ffi::*;

use super::payload::{self, COUNTER};
use super::setup::TTL;

/// The requests compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleOp {
    /// Load, read an integer, save that writes nothing.
    Unmodified,
    /// Load, increment a counter, compare-and-set save.
    Modified,
}

impl CycleOp {
    pub const ALL: [CycleOp; 2] = [CycleOp::Unmodified, CycleOp::Modified];

    pub fn name(self) -> &'static str {
        match self {
            CycleOp::Unmodified => "unmodified",
            CycleOp::Modified => "modified",
        }
    }
}

fn check(result: sessionstore_result, what: &str) {
    if result != sessionstore_result::SESSIONSTORE_OK {
        // SAFETY: the library's thread-local message, valid until the next call.
        let message = unsafe { CStr::from_ptr(sessionstore_last_error()) };
        panic!("{what}: {result:?}: {}", message.to_string_lossy());
    }
}

/// A manager opened through the C ABI, freed on drop.
pub struct CManager(*mut sessionstore_manager);

impl Drop for CManager {
    fn drop(&mut self) {
        // SAFETY: a live handle from sessionstore_manager_open, released once.
        unsafe { sessionstore_manager_free(self.0) };
    }
}

/// The settings both sides use: the benchmark secret, `prefix`, the benchmark TTL, and a
/// touch interval long enough that an unmodified request writes nothing.
pub fn open_c(url: &str, prefix: &str) -> CManager {
    let text = |s: &str| CString::new(s).expect("no NUL");
    let mut options = ptr::null_mut();
    let mut manager = ptr::null_mut();
    // SAFETY: every pointer is a live local or a handle just created.
    unsafe {
        check(sessionstore_options_new(&mut options), "options");
        check(
            sessionstore_options_add_secret(options, text("benchmark secret").as_ptr()),
            "secret",
        );
        check(
            sessionstore_options_set_prefix(options, text(prefix).as_ptr()),
            "prefix",
        );
        check(
            sessionstore_options_set_idle_lifetime(options, TTL.as_secs()),
            "lifetime",
        );
        check(
            sessionstore_options_set_touch_interval(options, TTL.as_secs()),
            "touch interval",
        );
        let opened = sessionstore_manager_open(text(url).as_ptr(), options, &mut manager);
        sessionstore_options_free(options);
        check(opened, "open");
    }
    CManager(manager)
}

/// The Rust manager matching [`open_c`].
pub fn open_rust(url: &str, prefix: &str) -> SessionManager {
    SessionManager::new(
        sessionstore::Config::builder_from_url(url)
            .expect("a store URL")
            .secret("benchmark secret")
            .key_prefix(prefix)
            .idle_lifetime(TTL)
            .touch_interval(TTL)
            .build()
            .expect("a valid configuration"),
    )
    .expect("the store opens")
}

/// Stores a session of about `bytes` through the C ABI; returns its `Cookie:` header.
pub fn new_c_session(manager: &CManager, bytes: usize) -> CString {
    let mut session = ptr::null_mut();
    let mut saved = sessionstore_saved {
        set_cookie: ptr::null_mut(),
        vary_cookie: false,
        ended: false,
    };
    // SAFETY: live handles and locals; the session is consumed by the save.
    let header = unsafe {
        check(
            sessionstore_manager_load(manager.0, ptr::null(), &mut session),
            "load",
        );
        for (key, value) in payload::data(bytes) {
            let mut encoded = Vec::new();
            rmpv::encode::write_value(&mut encoded, &value).expect("encodes");
            let key = CString::new(key).expect("no NUL");
            check(
                sessionstore_session_set_msgpack(
                    session,
                    key.as_ptr(),
                    encoded.as_ptr(),
                    encoded.len(),
                ),
                "set",
            );
        }
        check(sessionstore_session_save(session, &mut saved), "save");
        let header = CStr::from_ptr(saved.set_cookie)
            .to_str()
            .expect("ASCII")
            .split(';')
            .next()
            .expect("name=value")
            .to_owned();
        sessionstore_string_free(saved.set_cookie);
        header
    };
    CString::new(header).expect("no NUL")
}

/// Stores a session of about `bytes` through the Rust API; returns its `Cookie:` header.
pub fn new_rust_session(manager: &SessionManager, bytes: usize) -> String {
    super::setup::new_session(manager, bytes)
}

const COUNTER_C: &CStr = c"n";
const USER_ID_C: &CStr = c"user_id";

/// One request through the C ABI.
pub fn c_request(manager: &CManager, cookie: &CStr, op: CycleOp) {
    let mut session = ptr::null_mut();
    let mut saved = sessionstore_saved {
        set_cookie: ptr::null_mut(),
        vary_cookie: false,
        ended: false,
    };
    // SAFETY: live handles and locals; the session is consumed by the save, the cookie
    // string released once.
    unsafe {
        check(
            sessionstore_manager_load(manager.0, cookie.as_ptr() as *const c_char, &mut session),
            "load",
        );
        match op {
            CycleOp::Unmodified => {
                let mut user = 0i64;
                check(
                    sessionstore_session_get_i64(session, USER_ID_C.as_ptr(), &mut user),
                    "get",
                );
                std::hint::black_box(user);
            }
            CycleOp::Modified => check(
                sessionstore_session_incr(session, COUNTER_C.as_ptr(), 1, ptr::null_mut()),
                "incr",
            ),
        }
        check(sessionstore_session_save(session, &mut saved), "save");
        std::hint::black_box(saved.vary_cookie);
        sessionstore_string_free(saved.set_cookie);
    }
}

/// The same request through the Rust API.
pub fn rust_request(manager: &SessionManager, cookie: &str, op: CycleOp) {
    let mut session = manager.load(Some(cookie)).expect("load");
    match op {
        CycleOp::Unmodified => {
            std::hint::black_box(session.get::<i64>("user_id").expect("an integer"));
        }
        CycleOp::Modified => {
            session
                .modify(COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
                .expect("modify");
        }
    }
    std::hint::black_box(manager.save(session).expect("save"));
}

/// The stores the comparison runs on: memory (where the boundary's share is largest) and,
/// when compiled in, Redis (a network store as deployed).
pub fn urls() -> Vec<(&'static str, String)> {
    let mut urls = vec![("memory", "memory://".to_owned())];
    if cfg!(feature = "redis") {
        let redis = std::env::var("SESSIONSTORE_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
        urls.push(("redis", format!("{redis}?pool_size=8")));
    }
    urls
}

/// A key prefix of this run.
pub fn prefix() -> String {
    format!(
        "bench-capi:{}:",
        &sessionstore::SessionId::generate().as_str()[..8]
    )
}
