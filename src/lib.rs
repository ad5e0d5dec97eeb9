//! Server-side web sessions shared by Rust, C and Flask.
//!
//! The browser keeps a random id in a cookie; the session's data lives in a store (SQLite,
//! the filesystem or memory in this build's default features). Stored values are
//! byte-compatible with Flask-Session 0.8, cookies can be signed the way Flask-Session signs
//! them, and saves are compare-and-set so two concurrent requests of one user never lose
//! each other's changes.
//!
//! ```
//! use sessionstore::{Config, SessionManager, store::StoreConfig};
//!
//! let manager = SessionManager::new(
//!     Config::builder(StoreConfig::Memory).secret("change me").build()?,
//! )?;
//! let mut session = manager.load(None)?; // the request's Cookie header, if any
//! session.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)?;
//! let saved = manager.save(session)?;
//! assert!(saved.set_cookie.unwrap().starts_with("session="));
//! # Ok::<(), sessionstore::Error>(())
//! ```

pub mod at_rest;
pub mod codec;
mod config;
pub mod cookies;
mod error;
#[cfg(feature = "capi")]
pub mod ffi;
mod flask;
mod id;
mod manager;
pub mod metrics;
mod parse;
#[cfg(feature = "rouille")]
pub mod rouille;
mod session;
pub mod store;

pub use config::{Concurrency, Config, ConfigBuilder, DEFAULT_LIFETIME};
pub use cookies::{CookieConfig, CookieMode, SameSite};
pub use error::{Error, Result, StoreMessage};
pub use id::SessionId;
pub use manager::{SaveOutcome, SessionInfo, SessionManager};
pub use session::{CREATED_KEY, MAX_OWNER_LEN, OWNER_KEY, PERMANENT_KEY, Session};
