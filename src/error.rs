//! The one error type of the crate.

use std::fmt;

/// Everything that can go wrong in sessionstore.
///
/// Bad client input (a malformed or forged cookie, an unknown id, an undecodable stored
/// value) is *not* an error: [`SessionManager::load`](crate::SessionManager::load) answers it
/// with a fresh session. Errors are what the application has to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The store could not be reached or refused an operation.
    Store {
        /// Which backend failed (`"sqlite"`, `"filesystem"`, ...).
        backend: &'static str,
        /// What went wrong, as the driver or the operating system reported it.
        message: String,
    },
    /// A configuration value is missing or invalid.
    Config {
        /// The setting's name, as the user spelled it (`SESSION_FILE_THRESHOLD`, `threshold`, ...).
        key: String,
        /// Why the value was refused.
        message: String,
    },
    /// A value could not be converted to or from a session value.
    Value {
        /// The session key concerned.
        key: String,
        /// Why the conversion failed.
        message: String,
    },
    /// The encoded session is larger than the configured maximum; nothing was written.
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The configured maximum in bytes.
        max: usize,
    },
    /// The session breaks a configured limit (key length, number of keys); nothing was
    /// written.
    LimitExceeded {
        /// Which limit: `"key length"` or `"number of keys"`.
        what: &'static str,
        /// The offending size.
        actual: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A compare-and-set save kept conflicting with concurrent requests and gave up.
    Contention {
        /// How many attempts were made.
        attempts: u32,
    },
    /// A stored value could not be decoded (only reported by explicit decode calls; loads
    /// treat it as a missing session).
    Codec(String),
}

impl Error {
    pub(crate) fn store(backend: &'static str, cause: impl fmt::Display) -> Self {
        Error::Store {
            backend,
            message: cause.to_string(),
        }
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store { backend, message } => write!(f, "{backend} store: {message}"),
            Error::Config { key, message } => write!(f, "invalid setting {key}: {message}"),
            Error::Value { key, message } => write!(f, "session value {key:?}: {message}"),
            Error::TooLarge { size, max } => {
                write!(
                    f,
                    "session is {size} bytes encoded, above the maximum of {max}"
                )
            }
            Error::LimitExceeded { what, actual, max } => {
                write!(f, "session {what} is {actual}, above the maximum of {max}")
            }
            Error::Contention { attempts } => write!(
                f,
                "save gave up after {attempts} conflicting attempts with concurrent requests"
            ),
            Error::Codec(message) => write!(f, "stored session cannot be decoded: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Result<T, sessionstore::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
