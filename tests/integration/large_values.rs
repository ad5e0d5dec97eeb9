//! Values of 1 MiB stored, compared-and-set and read back on every store, and a clear
//! error above the configurable maximum (`max_size`, default 4 MiB) that writes nothing.
//!
//! Memcached refuses items over its `-I` limit, 1 MiB by default, and a 1 MiB value plus its
//! key and encoding is over it: the memcached tests run a private server started with
//! `-I 2m` for the round trip, and one with the default limit to show the refusal is a
//! store error, not a silent loss.

use crate::backend_tests;
use crate::common;
#[cfg(feature = "memcached")]
use crate::net_servers;

use common::{cookie_pair, harness};
use sessionstore::{Error, SessionManager};

const MIB: usize = 1 << 20;

/// `len` bytes of pseudo-random letters and digits (nothing a store could shortcut).
fn blob(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

macro_rules! large_values_suite {
    ($backend:ident) => {
        backend_tests!(
            $backend,
            [
                one_mebibyte_value_round_trips,
                above_the_maximum_is_a_clear_error
            ]
        );
    };
}

large_values_suite!(memory);
large_values_suite!(filesystem);
large_values_suite!(sqlite);
#[cfg(feature = "postgres")]
large_values_suite!(postgres);
#[cfg(feature = "mysql")]
large_values_suite!(mysql);
#[cfg(feature = "mongodb")]
large_values_suite!(mongodb);
#[cfg(feature = "redis")]
large_values_suite!(redis);

fn one_mebibyte_value_round_trips(backend: &str) {
    let h = harness(backend, |b| b);
    round_trip(&h.manager);
}

/// Creates a session holding 1 MiB, reads it back, changes it by compare-and-set (the
/// 1 MiB stored value is what is compared) and reads it back again.
fn round_trip(manager: &SessionManager) {
    let big = blob(MIB, 1);
    let mut session = manager.load(None).unwrap();
    session.insert("blob", &big).unwrap();
    let cookie = cookie_pair(&manager.save(session).unwrap());

    let mut session = manager.load(Some(&cookie)).unwrap();
    assert!(!session.is_new(), "the 1 MiB session was stored");
    assert_eq!(
        session.get::<String>("blob").unwrap().as_deref(),
        Some(&*big)
    );
    session.insert("n", 1).unwrap();
    manager.save(session).unwrap();

    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(session.get::<i64>("n").unwrap(), Some(1));
    assert_eq!(
        session.get::<String>("blob").unwrap().as_deref(),
        Some(&*big)
    );
    let key = format!("{}{}", manager.config().key_prefix, session.id().as_str());
    let stored = manager.store().load(&key).unwrap().expect("stored");
    assert!(stored.data.len() > MIB, "{} bytes", stored.data.len());
}

fn above_the_maximum_is_a_clear_error(backend: &str) {
    let h = harness(backend, |b| b.max_size(2 * MIB));
    let mut session = h.manager.load(None).unwrap();
    session.insert("first", blob(MIB, 2)).unwrap();
    let cookie = cookie_pair(&h.manager.save(session).unwrap());
    let before = h.stored(&cookie).unwrap();

    let mut session = h.manager.load(Some(&cookie)).unwrap();
    session.insert("second", blob(MIB + MIB / 2, 3)).unwrap();
    let error = h.manager.save(session).unwrap_err();
    match &error {
        Error::TooLarge { size, max } => {
            assert_eq!(*max, 2 * MIB);
            assert!(*size > 2 * MIB + MIB / 2, "{size}");
        }
        other => panic!("not TooLarge: {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains(&format!("above the maximum of {}", 2 * MIB)),
        "{error}"
    );
    assert_eq!(h.stored(&cookie).unwrap(), before, "nothing was written");
}

/// Memcached's item limit, on private servers.
#[cfg(feature = "memcached")]
mod memcached_item_limit {
    use sessionstore::store::StoreConfig;
    use sessionstore::{Config, Error, SessionManager};

    use super::common::unique_prefix;
    use super::net_servers::TempServer;
    use super::{MIB, blob, round_trip};

    /// A manager on the private memcached `server`.
    fn manager(server: &TempServer) -> SessionManager {
        let store: StoreConfig = Config::from_url(server.url()).unwrap().store;
        SessionManager::new(
            Config::builder(store)
                .secret("test secret")
                .key_prefix(unique_prefix())
                .build()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn memcached_with_a_two_mebibyte_item_limit_round_trips() {
        let server = TempServer::memcached_with(&["-I", "2m"]);
        round_trip(&manager(&server));
    }

    #[test]
    fn memcached_default_item_limit_refuses_one_mebibyte_as_a_store_error() {
        let server = TempServer::memcached();
        let manager = manager(&server);
        let mut session = manager.load(None).unwrap();
        session.insert("blob", blob(MIB, 4)).unwrap();
        match manager.save(session) {
            Err(Error::Store { backend, message }) => {
                assert_eq!(backend, "memcached");
                assert!(!message.is_empty());
            }
            other => panic!("a 1 MiB item under memcached's default 1 MiB limit: {other:?}"),
        }
    }
}
