//! A fixed number of requests on the memory store, for counting the library's own work in
//! instructions (`scripts/profile.sh` runs it under callgrind, which counts instructions
//! whatever the machine's load; docs/BENCHMARKS.md).
//!
//! `request_instructions REQUEST PAYLOAD COUNT [AT_REST]`: REQUEST is `load` (load a stored
//! session), `modified` (load, increment the counter, compare-and-set save) or
//! `modified_alternating` (the same, by two managers on one store taking turns, as two
//! processes would: each load finds the other's write, so none skips its check), PAYLOAD
//! `200B`, `2KB` or `20KB` (the benchmark payloads, benches/common/payload.rs), COUNT the
//! requests to run after one unmeasured request, AT_REST `plain` (the default) or
//! `encrypted` (one data key: a load decrypts, a save encrypts; docs/DESIGN.md §4). Runs with
//! a COUNT of 0 measure the setup, which the script subtracts.

#[path = "../benches/common/payload.rs"]
#[allow(dead_code)] // the benchmarks' payload module; this program uses part of it
mod payload;

use std::sync::Arc;
use std::time::Duration;

use sessionstore::at_rest::DataKey;
use sessionstore::store::StoreConfig;
use sessionstore::{Config, SessionManager};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (request, size, count, at_rest) = match &args[..] {
        [request, size, count] => (request, size, count, "plain"),
        [request, size, count, at_rest] => (request, size, count, at_rest.as_str()),
        _ => {
            eprintln!(
                "usage: request_instructions load|modified|modified_alternating 200B|2KB|20KB COUNT \
                 [plain|encrypted]"
            );
            std::process::exit(2);
        }
    };
    let bytes = payload::SIZES
        .iter()
        .find(|(label, _)| label == size)
        .map(|(_, bytes)| *bytes)
        .expect("PAYLOAD: 200B, 2KB or 20KB");
    let count: u32 = count.parse().expect("COUNT: a number");
    let builder = Config::builder(StoreConfig::Memory)
        .secret("benchmark secret")
        .touch_interval(Duration::from_secs(3600));
    let builder = match at_rest {
        "plain" => builder,
        "encrypted" => builder.data_key(DataKey::from_bytes([7; 32])),
        other => panic!("AT_REST: plain or encrypted, not {other:?}"),
    };
    let config = builder.build().expect("a valid configuration");
    let store = config.store.open().expect("the memory store opens");
    let manager = SessionManager::with_store(config.clone(), Arc::clone(&store));
    let other = SessionManager::with_store(config, store);
    let mut session = manager.load(None).expect("load without a cookie");
    for (key, value) in payload::data(bytes) {
        session.insert_value(&key, value).expect("insert");
    }
    let set_cookie = manager.save(session).expect("first save").set_cookie;
    let set_cookie = set_cookie.expect("a Set-Cookie header");
    let cookie = set_cookie.split(';').next().expect("name=value");
    let modified = |manager: &SessionManager, cookie: &str| {
        let mut session = manager.load(Some(cookie)).expect("load");
        session
            .modify(payload::COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
            .expect("modify");
        std::hint::black_box(manager.save(session).expect("save"));
    };
    let run = |turn: u32, cookie: &str| match request.as_str() {
        "load" => {
            std::hint::black_box(manager.load(Some(cookie)).expect("load"));
        }
        "modified" => modified(&manager, cookie),
        "modified_alternating" if turn.is_multiple_of(2) => modified(&manager, cookie),
        "modified_alternating" => modified(&other, cookie),
        other => panic!("REQUEST: load, modified or modified_alternating, not {other:?}"),
    };
    run(1, cookie);
    for turn in 0..count {
        run(turn, cookie);
    }
}
