//! The C ABI (cargo feature `capi`): opaque handles over [`SessionManager`](crate::SessionManager)
//! and [`Session`](crate::Session), one result enum, a thread-local last-error message.
//!
//! `build.rs` turns this module into the C header with cbindgen: it reads this file, then
//! the modules below in the order they are declared, which is the order of the header's
//! functions. The doc comments of the C items become the header's comments, so they speak C.
//! The rules every function follows (results, strings, pointers, ownership, threads) are
//! stated once at the top of the header (`header` in `cbindgen.toml`) and not repeated on
//! each function; each function's `# Safety` section says only what its own pointers must be
//! and refers to those rules, which complete its safety contract.
//! The modules only check and convert arguments and call the Rust API; every entry point
//! runs under the panic guard, so no panic crosses the boundary.
//!
//! The header is committed as `include/sessionstore.h`; after changing a C item or its doc
//! comment, `scripts/check-header.sh --update` rewrites it.
#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char};

// One module a group: rustfmt would sort a group, and cbindgen reads them in this order.

/// The result enum and the last-error message.
mod result;

/// The panic guard.
mod guard;

/// Argument checks and the limits on strings.
mod args;

/// Strings and byte buffers handed out, and their free functions.
mod owned;

/// The options handle and the C enums of its settings.
mod options;

/// The manager handle.
mod manager;

/// Saving a session.
mod save;

/// The session handle.
mod session;

/// Key lookups, removal and the key-list handle.
mod keys;

/// Typed values and MessagePack in and out.
mod values;

/// Read-modify-write through a C callback.
mod modify;

/// Sessions of an owner: binding, listing, ending them all.
mod owners;

pub use args::*;
pub use keys::*;
pub use manager::*;
pub use modify::*;
pub use options::*;
pub use owned::*;
pub use owners::*;
pub use result::*;
pub use save::*;
pub use session::*;
pub use values::*;

/// The library's version, e.g. "0.1.0" (SESSIONSTORE_VERSION is the header's).
#[unsafe(no_mangle)]
pub extern "C" fn sessionstore_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the crate version holds a NUL byte"),
        };
    guard::shielded(VERSION.as_ptr(), || VERSION.as_ptr())
}
