//! Store URLs as a user or an environment variable might give them: parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::Config;

fuzz_target!(|url: &str| {
    let _ = Config::from_url(url);
});
