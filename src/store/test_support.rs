//! Unit-test support for the stores: the contract every store keeps ([`contract`]), names
//! no other test uses, and a port nobody listens on. Tests that need a server of their own
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
