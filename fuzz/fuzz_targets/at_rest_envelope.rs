//! Stored bytes from a corrupt or hostile store, read as an at-rest envelope
//! (docs/DESIGN.md §4), of either version (the corpus holds valid records of both, under the
//! first key and `session:fuzz`): parsing and opening never panic and never allocate past
//! `max_size` for a compressed value; whatever opens under a store key does not open under
//! another; an encrypted version-1 record that opens is never current (its next save rewrites
//! it); and any value sealed with encryption and compression opens to itself, sealed in the
//! current version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::at_rest::{AtRest, DataKey, Envelope, LEGACY_VERSION, VERSION};

const MAX_SIZE: usize = 64 << 10;

fuzz_target!(|bytes: &[u8]| {
    let at_rest = AtRest {
        keys: vec![DataKey::from_bytes([7; 32]), DataKey::from_bytes([9; 32])],
        compress_threshold: Some(16),
        decrypt_only: false,
    };
    let parsed = Envelope::parse(bytes);
    if let Ok(opened) = at_rest.open("session:fuzz", bytes, MAX_SIZE) {
        assert!(opened.value.len() <= MAX_SIZE.max(bytes.len()));
        if let Ok(Some(envelope)) = parsed
            && envelope.encryption.is_some()
        {
            assert!(at_rest.open("session:other", bytes, MAX_SIZE).is_err());
            if envelope.version == LEGACY_VERSION {
                assert!(!opened.current);
            }
        }
    }
    let sealed = at_rest
        .seal("session:fuzz", bytes.to_vec())
        .expect("sealing never fails");
    let opened = at_rest
        .open("session:fuzz", &sealed, bytes.len())
        .expect("a sealed value opens");
    assert_eq!(opened.value, bytes);
    assert!(opened.current);
    let envelope = Envelope::parse(&sealed).expect("a sealed value parses");
    assert_eq!(envelope.map(|envelope| envelope.version), Some(VERSION));
});
