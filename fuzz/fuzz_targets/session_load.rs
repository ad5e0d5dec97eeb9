//! Stored bytes from a corrupt or hostile store, read the way a request reads them: through
//! `SessionManager::load`, whose decoder (run on the session's first observation, here
//! `is_new`) indexes the stored map and leaves each value encoded until it is read.
//! Whatever the bytes, the load never panics, and the session it hands out holds exactly
//! what the full decoder (`codec::decode`) reads from them (from a plain at-rest envelope's
//! payload, which a load opens without a key), or is a fresh one when the full decoder
//! refuses them. Loaded again, the session comes from the manager's memo of checked
//! values and reads the same; a change saved, the memo's index of the written value reads
//! what the full decoder reads from the stored bytes. The corpus holds values at and past
//! the nesting limit (`codec::MAX_NESTING`): both decoders draw the line at the same place.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sessionstore::at_rest::AtRest;
use sessionstore::codec::{self, Data, Format};
use sessionstore::store::{Store, StoreConfig, memory::MemoryStore};
use sessionstore::{Config, Session, SessionId, SessionManager};

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

/// Everything `session` holds, read key by key.
fn read(session: &Session) -> Data {
    session
        .keys()
        .map(|key| {
            let value = session.get_value(key).expect("a listed key has a value");
            (key.to_owned(), value.clone())
        })
        .collect()
}

fuzz_target!(|bytes: &[u8]| {
    let (store, manager) = &*SETUP;
    let id = SessionId::generate();
    let key = format!("{PREFIX}{}", id.as_str());
    store
        .set(&key, bytes, Duration::from_secs(60))
        .expect("the memory store takes any bytes");
    let cookie = format!("session={}", id.as_str());
    let load = || {
        manager
            .load(Some(&cookie))
            .expect("a load from the memory store does not fail")
    };
    // What the full decoder reads from the value the load opens: the bytes, or a plain
    // at-rest envelope's payload (which needs no key).
    let opened = AtRest::default().open(&key, bytes, manager.config().max_size);
    let decoded = opened
        .ok()
        .and_then(|opened| codec::decode(&opened.value).ok());
    match decoded {
        Some(expected) => {
            // Checked, then taken from the manager's memo of checked values.
            for _ in 0..2 {
                let session = load();
                assert!(
                    !session.is_new(),
                    "a decodable stored value was not adopted"
                );
                assert_eq!(encoded(&read(&session)), encoded(&expected));
            }
            // A change saved: the memo's index of what the save wrote reads what the full
            // decoder reads from the stored bytes.
            let mut session = load();
            if session.insert("fuzz", 1).is_ok() && manager.save(session).is_ok() {
                let stored = store.load(&key).expect("a load").expect("the saved value");
                let expected = codec::decode(&stored.data).expect("a saved value decodes");
                let session = load();
                assert!(!session.is_new(), "the saved value was not adopted");
                assert_eq!(encoded(&read(&session)), encoded(&expected));
            }
        }
        None => assert!(load().is_new(), "an undecodable stored value was adopted"),
    }
    store.delete(&key).expect("the memory store deletes");
});
