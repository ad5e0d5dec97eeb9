//! A `Cookie:` header from an attacker, read in all three cookie modes: never a panic, and
//! an accepted id always has the id shape and re-signs to a value the same config accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::cookies::{CookieConfig, CookieId, CookieMode, Secret};
use sessionstore::SessionId;

fuzz_target!(|header: &str| {
    for mode in [CookieMode::Plain, CookieMode::Signed, CookieMode::Flask] {
        let config = CookieConfig {
            mode,
            secrets: vec![Secret::new("fuzz secret"), Secret::new("old secret")],
            ..CookieConfig::default()
        };
        if let CookieId::Valid(id) = config.read(Some(header)) {
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(&id));
            assert_eq!(config.verify(&config.value(&id)), Some(id));
        }
        let _ = config.verify(header);
    }
});
