//! Stored bytes from a corrupt or hostile store, read the way a request reads them: through
//! `SessionManager::load`, whose decoder (run on the session's first observation, here
//! `is_new`) indexes the stored map and leaves each value encoded until it is read. Whatever the bytes, the load never panics, and the session it hands out
//! holds exactly what the full decoder (`codec::decode`) reads from them, or is a fresh one
//! when the full decoder refuses them. The corpus holds values at and past the nesting limit
//! (`codec::MAX_NESTING`): both decoders draw the line at the same place.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sessionstore::codec::{self, Data, Format};
use sessionstore::store::{Store, StoreConfig, memory::MemoryStore};
use sessionstore::{Config, SessionId, SessionManager};

const PREFIX: &str = "fuzz:";

/// One store and one manager (plain cookies, no secret) for the whole run.
static SETUP: LazyLock<(Arc<MemoryStore>, SessionManager)> = LazyLock::new(|| {
    let store = Arc::new(MemoryStore::new());
    let config = Config::builder(StoreConfig::Memory)
        .key_prefix(PREFIX)
        .build()
        .expect("a valid configuration");
    let manager = SessionManager::with_store(config, store.clone());
    (store, manager)
});

/// `data` encoded, to compare values as bytes (a NaN is not equal to itself).
fn encoded(data: &Data) -> Vec<u8> {
    codec::encode(data, Format::MessagePack).expect("decoded data encodes")
}

fuzz_target!(|bytes: &[u8]| {
    let (store, manager) = &*SETUP;
    let id = SessionId::generate();
    let key = format!("{PREFIX}{}", id.as_str());
    store
        .set(&key, bytes, Duration::from_secs(60))
        .expect("the memory store takes any bytes");
    let session = manager
        .load(Some(&format!("session={}", id.as_str())))
        .expect("a load from the memory store does not fail");
    match codec::decode(bytes) {
        Ok(expected) => {
            assert!(
                !session.is_new(),
                "a decodable stored value was not adopted"
            );
            let read: Data = session
                .keys()
                .map(|key| {
                    let value = session.get_value(key).expect("a listed key has a value");
                    (key.to_owned(), value.clone())
                })
                .collect();
            assert_eq!(encoded(&read), encoded(&expected));
        }
        Err(_) => assert!(session.is_new(), "an undecodable stored value was adopted"),
    }
    store.delete(&key).expect("the memory store deletes");
});
