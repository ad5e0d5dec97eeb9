//! docs/DESIGN.md §4, encryption and compression at rest, on every store: round trips, records
//! that must not open (moved, altered, truncated, of an unknown envelope version, under an
//! unknown or a wrong key, a compression bomb), key rotation, version-1 records
//! (XChaCha20-Poly1305) read and rewritten as version 2 (XAES-256-GCM), and compare-and-set
//! over ciphertext.
//! tests/log_privacy.rs checks that each refused record is logged, without ids or keys.

use crate::backend_tests;
use crate::common;

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use common::{Harness, cookie_pair, harness, request};
use sessionstore::at_rest::{
    AtRest, DataKey, FLAG_COMPRESSED, FLAG_ENCRYPTED, LEGACY_VERSION, MAGIC, VERSION,
};
use sessionstore::{Config, ConfigBuilder, SessionManager};

/// The suite, run on each backend below.
macro_rules! at_rest_suite {
    ($backend:ident) => {
        backend_tests!(
            $backend,
            [
                encrypted_sessions_round_trip,
                compressed_sessions_round_trip,
                encrypted_and_compressed_sessions_round_trip,
                a_record_moved_to_another_key_is_a_fresh_session,
                damaged_records_are_fresh_sessions,
                unknown_and_wrong_keys_give_fresh_sessions,
                a_compression_bomb_is_a_fresh_session,
                rotation_reads_the_old_key_and_saves_with_the_new,
                version_1_records_are_read_and_rewritten_as_version_2,
                plain_records_are_read_and_encrypted_by_the_next_request,
                decrypt_only_reads_encrypted_records_and_writes_them_plain,
                concurrent_increments_of_an_encrypted_session_are_exact,
            ]
        );
    };
}

at_rest_suite!(memory);
at_rest_suite!(filesystem);
at_rest_suite!(sqlite);
#[cfg(feature = "postgres")]
at_rest_suite!(postgres);
#[cfg(feature = "mysql")]
at_rest_suite!(mysql);
#[cfg(feature = "mongodb")]
at_rest_suite!(mongodb);
#[cfg(feature = "redis")]
at_rest_suite!(redis);
#[cfg(feature = "redis")]
at_rest_suite!(redis_cluster);
#[cfg(feature = "memcached")]
at_rest_suite!(memcached);

fn key(n: u8) -> DataKey {
    DataKey::from_bytes([n; 32])
}

fn encrypting(b: ConfigBuilder) -> ConfigBuilder {
    b.data_key(key(1))
}

fn compressing(b: ConfigBuilder) -> ConfigBuilder {
    b.compress_threshold(256)
}

/// Another manager on `h`'s store and key prefix, with other at-rest settings.
fn sharing(h: &Harness, at_rest: AtRest, configure: impl FnOnce(&mut Config)) -> SessionManager {
    let mut config = h.manager.config().clone();
    config.at_rest = at_rest;
    configure(&mut config);
    SessionManager::with_store(config, h.manager.store().clone())
}

fn keys(keys: &[u8]) -> AtRest {
    AtRest {
        keys: keys.iter().map(|n| key(*n)).collect(),
        compress_threshold: None,
        decrypt_only: false,
    }
}

/// A cart that compresses well, `len` bytes of text.
fn cart(len: usize) -> String {
    "item-4711;qty=1;".repeat(len / 16 + 1)[..len].to_owned()
}

/// Saves a session with a 200 B, 2 KB or 20 KB cart, reads it back, changes it, reads it
/// again; returns the last stored bytes.
fn round_trip(h: &Harness, len: usize) -> Vec<u8> {
    let cookie = cookie_pair(&h.request(None, |s| {
        s.insert("user", "ann").unwrap();
        s.insert("cart", cart(len)).unwrap();
    }));
    h.request(Some(&cookie), |s| {
        assert!(!s.is_new(), "{len}");
        assert_eq!(s.get::<String>("cart").unwrap(), Some(cart(len)));
        s.insert("user", "bob").unwrap();
    });
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("bob")
    );
    assert_eq!(session.get::<String>("cart").unwrap(), Some(cart(len)));
    h.stored(&cookie).expect("stored").data.to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn encrypted_sessions_round_trip(backend: &str) {
    let h = harness(backend, encrypting);
    for len in [200, 2_000, 20_000] {
        let stored = round_trip(&h, len);
        assert_eq!(stored[..MAGIC.len()], MAGIC);
        assert_eq!(stored[4], VERSION, "saves write the current version");
        assert_eq!(stored[5] & 0b10, 0b10, "encrypted");
        assert!(!contains(&stored, b"item-4711") && !contains(&stored, b"bob"));
        assert!(stored.len() > len, "not compressed");
    }
}

fn compressed_sessions_round_trip(backend: &str) {
    let h = harness(backend, compressing);
    let small = round_trip(&h, 100);
    assert!(contains(&small, b"item-4711"), "below the threshold: plain");
    assert_ne!(small[..MAGIC.len()], MAGIC);
    for len in [2_000, 20_000] {
        let stored = round_trip(&h, len);
        assert_eq!(
            stored[..6],
            [&MAGIC[..], &[VERSION, FLAG_COMPRESSED]].concat()
        );
        assert!(stored.len() < len / 4, "{} bytes for {len}", stored.len());
    }
}

fn encrypted_and_compressed_sessions_round_trip(backend: &str) {
    let h = harness(backend, |b| compressing(encrypting(b)));
    let small = round_trip(&h, 200);
    assert_eq!(small[5], 0b10, "below the threshold: encrypted only");
    for len in [2_000, 20_000] {
        let stored = round_trip(&h, len);
        assert_eq!(stored[5], 0b11, "compressed and encrypted ({len})");
        assert!(stored.len() < len / 2, "{} bytes for {len}", stored.len());
        assert!(!contains(&stored, b"item-4711"));
    }
}

fn a_record_moved_to_another_key_is_a_fresh_session(backend: &str) {
    let h = harness(backend, encrypting);
    let victim = cookie_pair(&h.request(None, |s| s.insert("user", "admin").unwrap()));
    let attacker = cookie_pair(&h.request(None, |s| s.insert("user", "eve").unwrap()));
    let record = h.stored(&victim).unwrap();
    h.manager
        .store()
        .set(&h.key_of(&attacker), &record.data, Duration::from_secs(60))
        .unwrap();
    let session = h.manager.load(Some(&attacker)).unwrap();
    assert!(session.is_new());
    assert_eq!(session.get::<String>("user").unwrap(), None);
    // The record itself still opens where it belongs.
    let session = h.manager.load(Some(&victim)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("admin")
    );
}

/// Stores `bytes` under the session `cookie` names and checks that it loads as a fresh one.
fn assert_fresh(h: &Harness, manager: &SessionManager, cookie: &str, bytes: &[u8], what: &str) {
    h.manager
        .store()
        .set(&h.key_of(cookie), bytes, Duration::from_secs(60))
        .unwrap();
    let session = manager.load(Some(cookie)).unwrap();
    assert!(session.is_new(), "{what}");
    assert_eq!(session.get::<String>("user").unwrap(), None, "{what}");
}

fn damaged_records_are_fresh_sessions(backend: &str) {
    let h = harness(backend, |b| compressing(encrypting(b)));
    let cookie = cookie_pair(&h.request(None, |s| {
        s.insert("user", "ann").unwrap();
        s.insert("cart", cart(2_000)).unwrap();
    }));
    let sealed = h.stored(&cookie).unwrap().data.to_vec();
    for at in [5, 6, 12, 40, sealed.len() / 2, sealed.len() - 1] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 0x20;
        assert_fresh(&h, &h.manager, &cookie, &flipped, &format!("byte {at}"));
    }
    for len in [5, 20, 40, sealed.len() - 1] {
        assert_fresh(
            &h,
            &h.manager,
            &cookie,
            &sealed[..len],
            &format!("{len} bytes"),
        );
    }
    // An envelope version this library does not know, and a record relabelled as version 1
    // (the version is authenticated).
    for (version, what) in [(3, "version 3"), (LEGACY_VERSION, "relabelled")] {
        let mut relabelled = sealed.clone();
        relabelled[4] = version;
        assert_fresh(&h, &h.manager, &cookie, &relabelled, what);
    }
    // The intact record still opens.
    h.manager
        .store()
        .set(&h.key_of(&cookie), &sealed, Duration::from_secs(60))
        .unwrap();
    assert!(!h.manager.load(Some(&cookie)).unwrap().is_new(), "intact");
}

fn unknown_and_wrong_keys_give_fresh_sessions(backend: &str) {
    let h = harness(backend, encrypting);
    let cookie = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    let sealed = h.stored(&cookie).unwrap().data.to_vec();
    let other = sharing(&h, keys(&[2]), |_| {});
    let session = other.load(Some(&cookie)).unwrap();
    assert!(session.is_new(), "unknown key id");
    // The other key's id on the record: the id is known, the key does not authenticate.
    let mut forged = sealed.clone();
    forged[6..10].copy_from_slice(&key(2).id());
    assert_fresh(&h, &other, &cookie, &forged, "wrong key");
    // Without keys, an encrypted record does not open either.
    h.manager
        .store()
        .set(&h.key_of(&cookie), &sealed, Duration::from_secs(60))
        .unwrap();
    let plain = sharing(&h, AtRest::default(), |_| {});
    assert!(plain.load(Some(&cookie)).unwrap().is_new(), "no keys");
    assert!(!h.manager.load(Some(&cookie)).unwrap().is_new(), "intact");
}

fn a_compression_bomb_is_a_fresh_session(backend: &str) {
    let h = harness(backend, compressing);
    let cookie = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    // Claims 4 GiB, holds a few bytes: refused before anything is allocated.
    let mut bomb = MAGIC.to_vec();
    bomb.extend_from_slice(&[VERSION, FLAG_COMPRESSED]);
    bomb.extend_from_slice(&u32::MAX.to_le_bytes());
    bomb.extend_from_slice(&[0x1f, 0, 0, 0, 0, 0]);
    assert_fresh(&h, &h.manager, &cookie, &bomb, "bomb");
    // An honest, encrypted record that decompresses past the reader's max_size.
    let big = AtRest {
        keys: vec![key(1)],
        compress_threshold: Some(256),
        decrypt_only: false,
    };
    let writer = sharing(&h, big.clone(), |c| c.max_size = 8 << 20);
    let cookie = cookie_pair(&request(&writer, None, |s| {
        s.insert("blob", "x".repeat(3 << 20)).unwrap();
    }));
    assert!(h.stored(&cookie).unwrap().data.len() < 64 << 10);
    let reader = sharing(&h, big, |c| c.max_size = 1 << 20);
    assert!(
        reader.load(Some(&cookie)).unwrap().is_new(),
        "over max_size"
    );
    assert!(!writer.load(Some(&cookie)).unwrap().is_new());
}

fn rotation_reads_the_old_key_and_saves_with_the_new(backend: &str) {
    let h = harness(backend, encrypting);
    let modified = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    let unmodified = cookie_pair(&h.request(None, |s| s.insert("user", "bob").unwrap()));
    let key_id = |cookie: &str| h.stored(cookie).unwrap().data[6..10].to_vec();
    assert_eq!(key_id(&modified), key(1).id());
    let rotated = sharing(&h, keys(&[2, 1]), |_| {});
    request(&rotated, Some(&modified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
        s.insert("theme", "dark").unwrap();
    });
    assert_eq!(key_id(&modified), key(2).id(), "a modified save");
    // An unmodified request rewrites the record too, so rotation needs no change.
    request(&rotated, Some(&unmodified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("bob"));
    });
    assert_eq!(key_id(&unmodified), key(2).id(), "an unmodified request");
    let written = h.stored(&unmodified).unwrap();
    request(&rotated, Some(&unmodified), |_| {});
    assert_eq!(h.stored(&unmodified).unwrap().data, written.data, "once");
    // Key 1 can now be dropped.
    let only_new = sharing(&h, keys(&[2]), |_| {});
    for cookie in [&modified, &unmodified] {
        assert!(!only_new.load(Some(cookie)).unwrap().is_new());
    }
}

/// A record written before version 2: XChaCha20-Poly1305 (RustCrypto's, as the first
/// implementation sealed it), with the envelope header and the store key as associated data.
fn version_1_record(key: [u8; 32], store_key: &str, value: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let nonce = [0x6b; 24];
    let mut record = MAGIC.to_vec();
    record.extend_from_slice(&[LEGACY_VERSION, FLAG_ENCRYPTED]);
    record.extend_from_slice(&DataKey::from_bytes(key).id());
    record.extend_from_slice(&nonce);
    let header_len = record.len();
    let mut data = record.clone();
    data.extend_from_slice(store_key.as_bytes());
    record.extend_from_slice(value);
    let tag = chacha20poly1305::XChaCha20Poly1305::new(&key.into())
        .encrypt_inout_detached(&nonce.into(), &data, (&mut record[header_len..]).into())
        .unwrap();
    record.extend_from_slice(&tag);
    record
}

/// Version-1 records still open, and their session's next request, even one that changes
/// nothing, rewrites them as version 2 (once).
fn version_1_records_are_read_and_rewritten_as_version_2(backend: &str) {
    let h = harness(backend, encrypting);
    let modified = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    let unmodified = cookie_pair(&h.request(None, |s| s.insert("user", "bob").unwrap()));
    for cookie in [&modified, &unmodified] {
        // The session's own value, sealed in version 1 instead.
        let current = h.stored(cookie).unwrap().data;
        let value = h
            .manager
            .config()
            .at_rest
            .open(&h.key_of(cookie), &current, 1 << 20)
            .unwrap()
            .value
            .into_owned();
        let old = version_1_record([1; 32], &h.key_of(cookie), &value);
        h.manager
            .store()
            .set(&h.key_of(cookie), &old, Duration::from_secs(60))
            .unwrap();
        assert_eq!(h.stored(cookie).unwrap().data[4], LEGACY_VERSION);
    }
    h.request(Some(&modified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
        s.insert("theme", "dark").unwrap();
    });
    h.request(Some(&unmodified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("bob"));
    });
    for cookie in [&modified, &unmodified] {
        let stored = h.stored(cookie).unwrap().data;
        assert_eq!(stored[4], VERSION, "rewritten");
        assert_eq!(stored[6..10], key(1).id());
    }
    let written = h.stored(&unmodified).unwrap();
    h.request(Some(&unmodified), |_| {});
    assert_eq!(h.stored(&unmodified).unwrap().data, written.data, "once");
    let session = h.manager.load(Some(&modified)).unwrap();
    assert_eq!(
        session.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
}

fn plain_records_are_read_and_encrypted_by_the_next_request(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    assert!(contains(&h.stored(&cookie).unwrap().data, b"ann"));
    let encrypted = sharing(&h, keys(&[1]), |_| {});
    request(&encrypted, Some(&cookie), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
    });
    let stored = h.stored(&cookie).unwrap().data;
    assert_eq!(stored[..MAGIC.len()], MAGIC);
    assert!(!contains(&stored, b"ann"));
}

/// Turning encryption off: with the keys decrypt-only, encrypted records are read and the
/// next request, modified or not, writes them plain; then the keys can go.
fn decrypt_only_reads_encrypted_records_and_writes_them_plain(backend: &str) {
    let h = harness(backend, encrypting);
    let modified = cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()));
    let unmodified = cookie_pair(&h.request(None, |s| s.insert("user", "bob").unwrap()));
    let off = sharing(&h, keys(&[1]), |c| c.at_rest.decrypt_only = true);
    request(&off, Some(&modified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
        s.insert("theme", "dark").unwrap();
    });
    request(&off, Some(&unmodified), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("bob"));
    });
    for (cookie, user) in [(&modified, b"ann"), (&unmodified, b"bob")] {
        let stored = h.stored(cookie).unwrap().data;
        assert_ne!(stored[..MAGIC.len()], MAGIC, "written plain");
        assert!(contains(&stored, user));
    }
    let keyless = sharing(&h, AtRest::default(), |_| {});
    for cookie in [&modified, &unmodified] {
        assert!(!keyless.load(Some(cookie)).unwrap().is_new());
    }
}

fn concurrent_increments_of_an_encrypted_session_are_exact(backend: &str) {
    const THREADS: usize = 8;
    const INCREMENTS: i64 = 200;
    let h = harness(backend, |b| compressing(encrypting(b)));
    let cookie = cookie_pair(&h.request(None, |s| {
        s.insert("cart", cart(1_000)).unwrap();
    }));
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..INCREMENTS {
                    let outcome = h.request(Some(&cookie), |s| {
                        s.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)
                            .unwrap();
                    });
                    assert!(!outcome.ended);
                }
            });
        }
    });
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<i64>("visits").unwrap(),
        Some(THREADS as i64 * INCREMENTS)
    );
    assert_eq!(h.stored(&cookie).unwrap().data[5], 0b11);
}

/// The settings reach the configuration on every path, and what cannot work is refused.
#[test]
fn settings_on_every_path() {
    let key_a = key(1).to_base64();
    let key_b = key(2).to_base64().replace('+', "-").replace('/', "_");
    let from_url = Config::from_url(&format!(
        "memory://?data_keys={},{}&compress_threshold=512",
        key_a.replace('+', "%2B").replace('/', "%2F"),
        key_b
    ))
    .unwrap();
    let expected = AtRest {
        keys: vec![key(1), key(2)],
        compress_threshold: Some(512),
        decrypt_only: false,
    };
    assert_eq!(from_url.at_rest, expected);
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "filesystem"),
        ("SESSION_FILE_DIR", "/tmp/sessionstore-at-rest-settings"),
        (
            "SESSIONSTORE_DATA_KEYS",
            &format!("{}, {key_b}", key_a.as_str()),
        ),
        ("SESSIONSTORE_COMPRESS_THRESHOLD", "512"),
    ])
    .unwrap();
    assert_eq!(from_flask.at_rest, expected);
    let built = Config::builder(sessionstore::store::StoreConfig::Memory)
        .data_key(key(1))
        .data_key(key(2))
        .compress_threshold(512)
        .build()
        .unwrap();
    assert_eq!(built.at_rest, expected);

    let refused = |result: sessionstore::Result<Config>, setting: &str, words: &str| match result {
        Err(sessionstore::Error::Config { key, message }) => {
            assert_eq!(key, setting, "{message}");
            assert!(message.contains(words), "{message}");
        }
        other => panic!("expected a config error on {setting}, got {other:?}"),
    };
    // Decrypt-only on every path, and allowed in the flask cookie mode (saves are plain).
    let decrypting = AtRest {
        keys: vec![key(1)],
        compress_threshold: None,
        decrypt_only: true,
    };
    let from_url = Config::from_url(&format!(
        "memory://?data_keys={}&decrypt_only=true",
        key_a.replace('+', "%2B").replace('/', "%2F")
    ))
    .unwrap();
    assert_eq!(from_url.at_rest, decrypting);
    let flask_mode = Config::from_flask([
        ("SESSION_TYPE", "filesystem"),
        ("SECRET_KEY", "s"),
        ("SESSION_USE_SIGNER", "True"),
        ("SESSIONSTORE_DATA_KEYS", key_a.as_str()),
        ("SESSIONSTORE_DECRYPT_ONLY", "True"),
    ])
    .unwrap();
    assert_eq!(flask_mode.at_rest, decrypting);
    let built = Config::builder(sessionstore::store::StoreConfig::Memory)
        .data_key(key(1))
        .decrypt_only(true)
        .build()
        .unwrap();
    assert_eq!(built.at_rest, decrypting);

    refused(
        Config::from_url("memory://?data_keys=c2hvcnQ"),
        "data_keys",
        "32 bytes",
    );
    refused(
        Config::from_url(&format!("memory://?data_keys={key_b},{key_b}")),
        "data_keys",
        "same key id",
    );
    refused(
        Config::from_flask([
            ("SESSION_TYPE", "filesystem"),
            ("SECRET_KEY", "s"),
            ("SESSION_USE_SIGNER", "True"),
            ("SESSIONSTORE_DATA_KEYS", key_a.as_str()),
        ]),
        "SESSIONSTORE_DATA_KEYS",
        "Flask-Session cannot read",
    );
    refused(
        Config::from_flask([
            ("SESSION_TYPE", "filesystem"),
            ("SECRET_KEY", "s"),
            ("SESSION_USE_SIGNER", "True"),
            ("SESSIONSTORE_COMPRESS_THRESHOLD", "100"),
        ]),
        "SESSIONSTORE_COMPRESS_THRESHOLD",
        "Flask-Session cannot read",
    );
    refused(
        Config::from_flask([
            ("SESSION_TYPE", "filesystem"),
            ("SESSIONSTORE_DATA_KEYS", "not base64!"),
        ]),
        "SESSIONSTORE_DATA_KEYS",
        "base64",
    );
    refused(
        Config::builder(sessionstore::store::StoreConfig::Memory)
            .secret("s")
            .cookie_mode(sessionstore::CookieMode::Flask)
            .data_key(key(1))
            .build(),
        "data_keys",
        "Flask-Session cannot read",
    );
}
