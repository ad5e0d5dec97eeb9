//! Flask-Session settings as key/value pairs (newline-separated `KEY=VALUE` lines): parsing
//! never panics, and an accepted config names a secret whenever it signs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::{Config, CookieMode};

fuzz_target!(|text: &str| {
    let pairs = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect::<Vec<_>>();
    if let Ok(config) = Config::from_flask(pairs) {
        assert!(config.cookie.mode == CookieMode::Plain || !config.cookie.secrets.is_empty());
    }
});
