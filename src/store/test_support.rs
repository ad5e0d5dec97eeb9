//! Unit-test support for the stores: the contract every store keeps ([`contract`]), names
//! no other test uses, a port nobody listens on, and the checks of store URLs and store
//! errors that every store's tests make. Tests that need a server of their own
//! (to stop and restart it) are integration tests, with their servers in tests/net_servers.

pub(crate) mod contract;

#[cfg(any(feature = "postgres", feature = "mysql", feature = "mongodb"))]
use std::net::TcpListener;

/// `prefix` plus random lowercase letters and digits: a table or collection of one test.
pub(crate) fn unique_name(prefix: &str) -> String {
    let id = crate::SessionId::generate();
    let suffix: String = id
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    format!("{prefix}_{suffix}")
}

/// A loopback port nobody listens on right now.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "mongodb"))]
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Reading store URLs as configuration does, for the stores that take one.
#[cfg(external_store)]
pub(crate) mod store_urls {
    use crate::parse::{QueryParams, parse_store_url};

    /// The options `from_url` reads from the store URL `text`, failing as configuration does
    /// when a parameter is left over.
    pub(crate) fn options_from<T>(
        text: &str,
        from_url: fn(&url::Url, &mut QueryParams) -> crate::Result<T>,
    ) -> crate::Result<T> {
        let (url, mut params) = parse_store_url(text)?;
        let options = from_url(&url, &mut params)?;
        params.finish()?;
        Ok(options)
    }

    /// The options `from_url` reads from the store URL `text`, which it must accept, and
    /// the parameters it leaves for the configuration to take.
    pub(crate) fn options_and_rest<T: std::fmt::Debug>(
        text: &str,
        from_url: fn(&url::Url, &mut QueryParams) -> crate::Result<T>,
    ) -> (T, QueryParams) {
        let (url, mut params) = parse_store_url(text).unwrap();
        let options = from_url(&url, &mut params).unwrap();
        (options, params)
    }

    /// The setting named by the configuration error `options_from` gives for `text`; panics
    /// when `text` is accepted or fails otherwise.
    pub(crate) fn rejected_key<T: std::fmt::Debug>(
        text: &str,
        options_from: impl Fn(&str) -> crate::Result<T>,
    ) -> String {
        match options_from(text) {
            Err(crate::Error::Config { key, .. }) => key,
            other => panic!("{text} accepted: {other:?}"),
        }
    }
}

/// The message of the store error `result` must be, after checking that it comes from
/// `expected_backend`; panics on anything else.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "mongodb"
))]
pub(crate) fn store_error_message<T: std::fmt::Debug>(
    result: crate::Result<T>,
    expected_backend: &str,
) -> String {
    match result {
        Err(crate::Error::Store { backend, message }) => {
            assert_eq!(backend, expected_backend);
            message.to_string()
        }
        other => panic!("not a {expected_backend} store error: {other:?}"),
    }
}
