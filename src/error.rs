//! The one error type of the crate.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

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
        /// What went wrong, as the driver or the operating system reported it. The
        /// driver's error itself is the error's [`source`](std::error::Error::source).
        message: StoreMessage,
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

/// The driver's or the operating system's error behind a store error.
type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// The text of a store error, with the error that caused it, if any. Reads as the text
/// (`&str`, `Display`); [`Error::source`](std::error::Error::source) returns the cause.
#[derive(Clone)]
pub struct StoreMessage {
    text: String,
    cause: Option<Cause>,
}

impl StoreMessage {
    /// The message's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Deref for StoreMessage {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for StoreMessage {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for StoreMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Shows the text only, as a `String` field would.
impl fmt::Debug for StoreMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// Messages are equal when their texts are (causes are not comparable).
impl PartialEq for StoreMessage {
    fn eq(&self, other: &StoreMessage) -> bool {
        self.text == other.text
    }
}

impl Eq for StoreMessage {}

impl PartialEq<str> for StoreMessage {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for StoreMessage {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl Error {
    /// A store error that no other error caused (a refused key, an unexpected reply).
    pub(crate) fn store(backend: &'static str, message: impl fmt::Display) -> Self {
        Error::Store {
            backend,
            message: StoreMessage {
                text: message.to_string(),
                cause: None,
            },
        }
    }

    /// A store error caused by `cause`, the driver's or the operating system's error, which
    /// becomes the error's [`source`](std::error::Error::source). The message is
    /// `"{what}: {cause}"`, or the cause's text alone when `what` is empty.
    #[cfg(external_store)]
    pub(crate) fn store_caused_by<E>(
        backend: &'static str,
        what: impl fmt::Display,
        cause: E,
    ) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let what = what.to_string();
        let text = if what.is_empty() {
            cause.to_string()
        } else {
            format!("{what}: {cause}")
        };
        Error::store_described(backend, text, cause)
    }

    /// A store error caused by `cause` (kept as the error's
    /// [`source`](std::error::Error::source)), whose whole message is `text`: for a driver
    /// error whose own text leaves out what matters.
    #[cfg(external_store)]
    pub(crate) fn store_described<E>(backend: &'static str, text: String, cause: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Store {
            backend,
            message: StoreMessage {
                text,
                cause: Some(Arc::new(cause)),
            },
        }
    }

    /// [`Error::store_caused_by`] without context, for `map_err`: the driver's error text
    /// is the message.
    #[cfg(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb"
    ))]
    pub(crate) fn in_store<E>(backend: &'static str) -> impl Fn(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |cause| Error::store_caused_by(backend, "", cause)
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Store { message, .. } => message
                .cause
                .as_deref()
                .map(|cause| cause as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}

/// Shorthand for `Result<T, sessionstore::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[cfg(external_store)]
    #[test]
    fn store_errors_keep_their_cause_as_source() {
        use std::io;

        let cause = io::Error::new(io::ErrorKind::PermissionDenied, "no access");
        let error = Error::store_caused_by("filesystem", "cannot write /x", cause);
        assert_eq!(
            error.to_string(),
            "filesystem store: cannot write /x: no access"
        );
        for error in [error.clone(), error] {
            let source = error.source().expect("the cause");
            let io = source.downcast_ref::<io::Error>().expect("an io::Error");
            assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        }
        let bare = Error::store_caused_by("sqlite", "", io::Error::other("disk full"));
        assert_eq!(bare.to_string(), "sqlite store: disk full");
    }

    #[test]
    fn errors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Error>();
    }

    #[test]
    fn other_errors_have_no_source() {
        assert!(Error::store("redis", "unexpected reply").source().is_none());
        assert!(Error::config("lifetime", "zero").source().is_none());
    }

    #[test]
    fn store_messages_read_as_their_text() {
        let Error::Store { message, .. } = Error::store("memory", "gone") else {
            panic!("not a store error");
        };
        assert_eq!(message, "gone");
        assert_eq!(format!("{message} {message:?}"), "gone \"gone\"");
        assert!(message.starts_with("go"));
    }
}
