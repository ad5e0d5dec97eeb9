//! Regression tests for the security review's findings (SECURITY.md, "Fixed issues"): the
//! absolute lifetime cannot be escaped, hashed store keys do not replay as ids, a hand-built
//! configuration is checked, and nesting is bounded on every path, even on a small stack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmpv::Value;
use sessionstore::codec::{self, Format, MAX_NESTING};
use sessionstore::store::{Store, StoreConfig};
use sessionstore::{
    CREATED_KEY, Config, ConfigBuilder, CookieMode, Error, SaveOutcome, Session, SessionId,
    SessionManager,
};
use sha2::{Digest, Sha256};

const PREFIX: &str = "sec:";

/// A manager on `store` with a secret, the test prefix and what `configure` adds.
fn manager(
    store: &Arc<dyn Store>,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> SessionManager {
    let builder = Config::builder(StoreConfig::Memory)
        .secret("test secret")
        .key_prefix(PREFIX);
    SessionManager::with_store(configure(builder).build().unwrap(), store.clone())
}

fn memory_store() -> Arc<dyn Store> {
    StoreConfig::Memory.open().unwrap()
}

/// A manager with a 2 s absolute lifetime that renews on every request.
fn short_lived(store: &Arc<dyn Store>) -> SessionManager {
    manager(store, |b| {
        b.absolute_lifetime(Duration::from_secs(2))
            .touch_interval(Duration::ZERO)
    })
}

/// One request: load with `cookie`, run `handler`, save.
fn request(
    manager: &SessionManager,
    cookie: Option<&str>,
    handler: impl FnOnce(&mut Session),
) -> SaveOutcome {
    let mut session = manager.load(cookie).unwrap();
    handler(&mut session);
    manager.save(session).unwrap()
}

/// The `name=value` pair of a `Set-Cookie` header, as the browser sends it back.
fn cookie_pair(outcome: &SaveOutcome) -> String {
    let header = outcome.set_cookie.as_deref().expect("a Set-Cookie header");
    header.split(';').next().unwrap().to_owned()
}

/// The id a `name=value` cookie pair carries (signed or not).
fn id_of(cookie: &str) -> SessionId {
    let value = cookie.split_once('=').unwrap().1;
    SessionId::parse(value.split('.').next().unwrap()).unwrap()
}

/// Sleeps until `seconds` after `started`: `_created` has whole-second precision, so a 2 s
/// absolute lifetime is surely over 3 s after the session began.
fn wait_until(started: Instant, seconds: u64) {
    std::thread::sleep(Duration::from_secs(seconds).saturating_sub(started.elapsed()));
}

/// The creation time stored for the session under `key`.
fn stored_created(store: &Arc<dyn Store>, key: &str) -> Option<i64> {
    let record = store.load(key).unwrap()?;
    codec::decode(&record.data)
        .unwrap()
        .get(CREATED_KEY)?
        .as_i64()
}

/// Writes `bytes` under a new id as another program would (Flask-Session, an older
/// version, a hostile store); returns the store key and the cookie naming it.
fn plant(store: &Arc<dyn Store>, manager: &SessionManager, bytes: &[u8]) -> (String, String) {
    let id = SessionId::generate();
    let key = format!("{PREFIX}{}", id.as_str());
    store.set(&key, bytes, Duration::from_secs(60)).unwrap();
    (
        key,
        format!("session={}", manager.config().cookie.value(&id)),
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn clear_keeps_the_absolute_deadline() {
    let store = memory_store();
    let manager = short_lived(&store);
    let started = Instant::now();
    let cookie = cookie_pair(&request(&manager, None, |s| s.insert("cart", 1).unwrap()));
    // The usual log-in: clear, regenerate, write the user.
    let cookie = cookie_pair(&request(&manager, Some(&cookie), |s| {
        s.clear();
        s.regenerate();
        s.insert("user", "ann").unwrap();
    }));
    assert!(stored_created(&store, &format!("{PREFIX}{}", id_of(&cookie).as_str())).is_some());
    wait_until(started, 3);
    let session = manager.load(Some(&cookie)).unwrap();
    assert!(
        session.is_new(),
        "alive past the absolute lifetime after clear()"
    );
}

#[test]
fn the_creation_time_is_not_writable() {
    let store = memory_store();
    let manager = short_lived(&store);
    let mut session = manager.load(None).unwrap();
    let created = session.get_value(CREATED_KEY).cloned().unwrap();
    let refused = |result: sessionstore::Result<()>| {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Value { key, .. } if key == CREATED_KEY),
            "{error}"
        );
    };
    refused(session.insert(CREATED_KEY, now() + 1_000_000));
    refused(session.insert_value(CREATED_KEY, Value::Nil));
    refused(
        session
            .modify(CREATED_KEY, |t: Option<i64>| t.unwrap_or(0) + 1_000_000)
            .map(drop),
    );
    assert_eq!(
        session.remove(CREATED_KEY),
        None,
        "removing it does nothing"
    );
    session.clear();
    assert_eq!(
        session.get_value(CREATED_KEY),
        Some(&created),
        "clear() keeps it"
    );
}

#[test]
fn a_merge_from_an_undecodable_value_keeps_the_creation_time() {
    let store = memory_store();
    let manager = short_lived(&store);
    let started = Instant::now();
    let cookie = cookie_pair(&request(&manager, None, |s| s.insert("a", 1).unwrap()));
    let key = format!("{PREFIX}{}", id_of(&cookie).as_str());
    let created = stored_created(&store, &key).unwrap();
    let mut session = manager.load(Some(&cookie)).unwrap();
    // A concurrent writer leaves a value that does not decode: the merge starts from
    // empty data.
    store
        .set(&key, b"\xc1garbage", Duration::from_secs(60))
        .unwrap();
    session.insert("b", 2).unwrap();
    assert!(!manager.save(session).unwrap().ended);
    assert_eq!(stored_created(&store, &key), Some(created));
    wait_until(started, 3);
    assert!(manager.load(Some(&cookie)).unwrap().is_new());
}

/// `{"_permanent": true, "user_id": 42}` as Flask-Session 0.8 writes it (msgspec): no
/// `_created`.
const FLASK_SESSION: &[u8] = b"\x82\xaa_permanent\xc3\xa7user_id\x2a";

#[test]
fn a_flask_written_session_is_stamped_at_its_first_save() {
    let store = memory_store();
    let manager = short_lived(&store);
    let (key, cookie) = plant(&store, &manager, FLASK_SESSION);
    let started = Instant::now();
    // A request that only reads: the stamp is still written.
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(session.get::<i64>("user_id").unwrap(), Some(42));
    assert!(session.get::<i64>(CREATED_KEY).unwrap().is_some());
    assert!(!manager.save(session).unwrap().ended);
    let created = stored_created(&store, &key).expect("stamped by the first save");
    assert!((now() - created).abs() <= 1);
    // Busy from then on (the stamp, in whole seconds, leaves it at least a second), it
    // still ends 2 s after the stamp.
    std::thread::sleep(Duration::from_millis(400));
    let outcome = request(&manager, Some(&cookie), |s| assert!(!s.is_new()));
    assert!(!outcome.ended);
    wait_until(started, 3);
    assert!(manager.load(Some(&cookie)).unwrap().is_new());
}

#[test]
fn a_session_from_before_the_absolute_lifetime_is_bounded() {
    let store = memory_store();
    let before = manager(&store, |b| b);
    let cookie = cookie_pair(&request(&before, None, |s| {
        s.insert("user", "ann").unwrap()
    }));
    let key = format!("{PREFIX}{}", id_of(&cookie).as_str());
    assert_eq!(stored_created(&store, &key), None);
    let after = short_lived(&store);
    let started = Instant::now();
    let outcome = request(&after, Some(&cookie), |s| s.insert("n", 1).unwrap());
    assert!(!outcome.ended);
    assert!(stored_created(&store, &key).is_some());
    wait_until(started, 3);
    assert!(after.load(Some(&cookie)).unwrap().is_new());
}

#[test]
fn a_creation_time_in_the_future_is_replaced() {
    let store = memory_store();
    let manager = short_lived(&store);
    let mut data = codec::Data::new();
    data.insert("user".into(), "ann".into());
    data.insert(CREATED_KEY.into(), Value::from(now() + 1_000_000_000));
    let bytes = codec::encode(&data, Format::MessagePack).unwrap();
    let (key, cookie) = plant(&store, &manager, &bytes);
    let started = Instant::now();
    assert!(!request(&manager, Some(&cookie), |_| {}).ended);
    assert!(stored_created(&store, &key).is_some_and(|t| t <= now()));
    wait_until(started, 3);
    assert!(manager.load(Some(&cookie)).unwrap().is_new());
}

#[test]
fn destroy_then_reuse_stores_nothing() {
    let store = memory_store();
    let manager = short_lived(&store);
    let cookie = cookie_pair(&request(&manager, None, |s| s.insert("a", 1).unwrap()));
    let outcome = request(&manager, Some(&cookie), |s| {
        s.destroy();
        s.insert("user", "mallory").unwrap();
    });
    assert!(outcome.ended);
    let session = manager.load(Some(&cookie)).unwrap();
    assert!(session.is_new() && session.get::<String>("user").unwrap().is_none());
    let created = session.get::<i64>(CREATED_KEY).unwrap().unwrap();
    assert!((now() - created).abs() <= 1, "a new session, created now");
}

/// The stores a key must suit: memory, files (whose names the keys become) and SQLite.
fn stores(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn Store>)> {
    use sessionstore::store::{file::FileOptions, sqlite::SqliteOptions};
    vec![
        ("memory", memory_store()),
        (
            "filesystem",
            StoreConfig::Filesystem(FileOptions::new(dir.join("files")))
                .open()
                .unwrap(),
        ),
        (
            "sqlite",
            StoreConfig::Sqlite(SqliteOptions::new(dir.join("sessions.db")))
                .open()
                .unwrap(),
        ),
    ]
}

#[test]
fn a_hashed_key_does_not_replay_as_an_id() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in stores(dir.path()) {
        let hashing = manager(&store, |b| b.hash_ids(true));
        let cookie = cookie_pair(&request(&hashing, None, |s| {
            s.insert("user", "admin").unwrap()
        }));
        // What a store dump shows: the id's hash (after the prefix and the marker).
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(id_of(&cookie).as_str()));
        // Presented as a cookie, plain or signed with the same secret, to managers without
        // hash_ids on the same store and prefix.
        let hash_as_id = SessionId::parse(&hash).expect("a hash has an id's shape");
        for mode in [CookieMode::Plain, CookieMode::Signed] {
            let plain = manager(&store, |b| b.cookie_mode(mode));
            let forged = format!("session={}", plain.config().cookie.value(&hash_as_id));
            let session = plain.load(Some(&forged)).unwrap();
            assert!(session.is_new(), "{backend} {mode:?}: the hash took over");
            assert_eq!(session.get::<String>("user").unwrap(), None);
        }
        let key = format!("{PREFIX}sha256:{hash}");
        assert!(store.load(&key).unwrap().is_some(), "{backend}: {key}");
        if backend == "filesystem" {
            assert!(dir.path().join("files").join(&key).exists());
        }
        // The hashing manager itself still finds the session.
        let session = hashing.load(Some(&cookie)).unwrap();
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("admin")
        );
    }
}

#[test]
fn session_manager_new_checks_a_hand_built_config() {
    let dir = tempfile::tempdir().unwrap();
    let valid = Config::builder(StoreConfig::Filesystem(
        sessionstore::store::file::FileOptions::new(dir.path()),
    ))
    .secret("k")
    .build()
    .unwrap();
    assert!(SessionManager::new(valid.clone()).is_ok());
    let mut cases: Vec<(&str, Config)> = Vec::new();
    let mut add = |setting, change: &dyn Fn(&mut Config)| {
        let mut config = valid.clone();
        change(&mut config);
        cases.push((setting, config));
    };
    add("cookie_path", &|c| {
        c.cookie.path = "/; Domain=evil.example".into()
    });
    add("cookie_domain", &|c| {
        c.cookie.domain = Some("example.org; Secure".into())
    });
    add("cookie_name", &|c| c.cookie.name = "__Host-sid".into());
    add("secret", &|c| c.cookie.secrets.clear());
    add("secret", &|c| {
        c.cookie
            .secrets
            .push(sessionstore::cookies::Secret::new(""))
    });
    add("lifetime", &|c| c.idle_lifetime = Duration::MAX);
    add("lifetime", &|c| c.idle_lifetime = Duration::ZERO);
    add("lifetime", &|c| {
        c.idle_lifetime = Duration::from_secs(401 * 24 * 3600)
    });
    add("absolute_lifetime", &|c| {
        c.absolute_lifetime = Some(Duration::from_secs(u64::MAX))
    });
    add("key_prefix", &|c| c.key_prefix = "a\nb".into());
    add("max_attempts", &|c| c.max_attempts = 0);
    for (setting, config) in cases {
        let error = SessionManager::new(config).unwrap_err();
        assert!(
            matches!(&error, Error::Config { key, .. } if key == setting),
            "{setting}: {error}"
        );
    }
    let longest = Config {
        idle_lifetime: sessionstore::cookies::MAX_COOKIE_AGE,
        absolute_lifetime: Some(sessionstore::cookies::MAX_COOKIE_AGE),
        ..valid
    };
    let manager = SessionManager::new(longest).unwrap();
    let outcome = request(&manager, None, |s| s.insert("a", 1).unwrap());
    let header = outcome.set_cookie.unwrap();
    let max_age: u64 = header
        .split("; Max-Age=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    // 400 days, less the part of a second `_created` rounded away.
    assert!((34_559_998..=34_560_000).contains(&max_age), "{header}");
}

/// `depth` arrays around 1.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::from(1), |value, _| Value::Array(vec![value]))
}

/// `depth` JSON arrays around 1.
fn nested_json(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::Value::from(1), |value, _| {
        serde_json::Value::Array(vec![value])
    })
}

/// A stored session `{"deep": [[...1...]]}` with `depth` arrays, as raw MessagePack.
fn nested_session(depth: usize) -> Vec<u8> {
    let mut bytes = b"\x81\xa4deep".to_vec();
    bytes.extend(std::iter::repeat_n(0x91, depth));
    bytes.push(0x01);
    bytes
}

/// Runs `check` on a thread with a 128 KiB stack, as musl gives a thread.
fn on_a_small_stack(check: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(check)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn nesting_at_the_limit_works_on_a_small_stack() {
    on_a_small_stack(|| {
        let store = memory_store();
        let manager = manager(&store, |b| b);
        let (_, cookie) = plant(&store, &manager, &nested_session(MAX_NESTING));
        let mut session = manager.load(Some(&cookie)).unwrap();
        assert!(!session.is_new());
        assert_eq!(
            session.get::<Value>("deep").unwrap(),
            Some(nested(MAX_NESTING))
        );
        assert_eq!(
            session.get::<serde_json::Value>("deep").unwrap(),
            Some(nested_json(MAX_NESTING))
        );
        session.insert("json", nested_json(MAX_NESTING)).unwrap();
        session.insert_value("raw", nested(MAX_NESTING)).unwrap();
        let c_input = codec::encode(
            &[("v".to_owned(), nested(MAX_NESTING))]
                .into_iter()
                .collect(),
            Format::MessagePack,
        )
        .unwrap();
        let from_c = codec::decode_value(&c_input[3..]).unwrap();
        session.insert_value("from_c", from_c).unwrap();
        assert!(!manager.save(session).unwrap().ended);
        let session = manager.load(Some(&cookie)).unwrap();
        for key in ["deep", "json", "raw", "from_c"] {
            assert_eq!(
                session.get::<Value>(key).unwrap(),
                Some(nested(MAX_NESTING))
            );
        }
        // The JSON format writes and reads it too.
        let json = codec::encode(
            &codec::decode(&nested_session(MAX_NESTING)).unwrap(),
            Format::Json,
        )
        .unwrap();
        assert!(codec::decode(&json).is_ok());
    });
}

#[test]
fn nesting_past_the_limit_is_refused_on_a_small_stack() {
    on_a_small_stack(|| {
        let store = memory_store();
        let manager = manager(&store, |b| b);
        // Stored past the limit, or far past it: undecodable, a fresh session.
        let json_deep = format!(
            "{{\"deep\": {}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        for stored in [
            nested_session(MAX_NESTING + 1),
            nested_session(100_000),
            json_deep.into_bytes(),
        ] {
            let (_, cookie) = plant(&store, &manager, &stored);
            let session = manager.load(Some(&cookie)).unwrap();
            assert!(session.is_new() && session.get_value("deep").is_none());
        }
        // Written past the limit: an error naming the key, nothing recorded.
        let mut session = manager.load(None).unwrap();
        let too_deep = |result: sessionstore::Result<()>, what: &str| {
            let error = result.unwrap_err();
            assert!(
                matches!(&error, Error::Value { key, .. } if key == "deep"),
                "{what}: {error}"
            );
        };
        too_deep(
            session.insert_value("deep", nested(MAX_NESTING + 1)),
            "insert_value",
        );
        too_deep(
            session.insert("deep", nested_json(MAX_NESTING + 1)),
            "insert",
        );
        too_deep(
            session
                .modify("deep", |_: Option<Value>| nested(MAX_NESTING + 1))
                .map(drop),
            "modify",
        );
        assert!(!session.is_modified() && !session.contains("deep"));
        // The C ABI's raw MessagePack input, through the codec.
        for depth in [MAX_NESTING + 1, 100_000] {
            let mut bytes = vec![0x91; depth];
            bytes.push(0x01);
            assert!(matches!(codec::decode_value(&bytes), Err(Error::Codec(_))));
        }
        let mut data = codec::Data::new();
        data.insert("deep".into(), nested(MAX_NESTING + 1));
        assert!(codec::encode(&data, Format::MessagePack).is_err());
        assert!(codec::encode(&data, Format::Json).is_err());
    });
}

/// Finding 4: every path into a manager checks the cookie attributes, so an injected
/// `Path=/; Domain=evil.example` never reaches a `Set-Cookie` header: the builder, a store
/// URL's builder, Flask settings (named by their Flask setting) and the C ABI's options.
#[test]
fn every_path_into_a_manager_refuses_an_injected_cookie_attribute() {
    const INJECTED: &str = "/; Domain=evil.example";
    let builder = Config::builder(StoreConfig::Memory)
        .secret("k")
        .cookie_path(INJECTED)
        .build();
    assert!(matches!(builder, Err(Error::Config { ref key, .. }) if key == "cookie_path"));

    let from_url = Config::builder_from_url("memory://")
        .unwrap()
        .cookie_domain("evil.example; Secure")
        .build();
    assert!(matches!(from_url, Err(Error::Config { ref key, .. }) if key == "cookie_domain"));

    let dir = tempfile::tempdir().unwrap();
    let flask = Config::from_flask([
        ("SESSION_TYPE", "filesystem"),
        ("SESSION_FILE_DIR", dir.path().to_str().unwrap()),
        ("SECRET_KEY", "k"),
        ("SESSION_COOKIE_PATH", INJECTED),
    ]);
    assert!(
        matches!(flask, Err(Error::Config { ref key, .. }) if key == "SESSION_COOKIE_PATH"),
        "{flask:?}"
    );
}

#[cfg(feature = "capi")]
#[test]
fn the_c_abi_refuses_an_injected_cookie_attribute() {
    use sessionstore::ffi::*;
    use std::ffi::{CStr, CString};
    let url = CString::new("memory://").unwrap();
    let path = CString::new("/; Domain=evil.example").unwrap();
    // SAFETY: every pointer is valid for the call; the handles are freed below.
    unsafe {
        let mut options = std::ptr::null_mut();
        assert_eq!(
            sessionstore_options_new(&mut options),
            sessionstore_result::SESSIONSTORE_OK
        );
        assert_eq!(
            sessionstore_options_set_cookie_path(options, path.as_ptr()),
            sessionstore_result::SESSIONSTORE_OK
        );
        let mut manager = std::ptr::null_mut();
        let result = sessionstore_manager_open(url.as_ptr(), options, &mut manager);
        sessionstore_options_free(options);
        assert_eq!(result, sessionstore_result::SESSIONSTORE_CONFIG);
        assert!(manager.is_null());
        let message = CStr::from_ptr(sessionstore_last_error()).to_string_lossy();
        assert!(message.contains("cookie_path"), "{message}");
    }
}

/// Finding 6 through the C ABI: `sessionstore_session_set_msgpack` takes a value at the
/// nesting limit and refuses one past it (and one nested 100 000 deep) with
/// SESSIONSTORE_INVALID_ARGUMENT, on a thread with a 128 KiB stack.
#[cfg(feature = "capi")]
#[test]
fn the_c_abi_applies_the_nesting_limit_on_a_small_stack() {
    use sessionstore::ffi::*;
    use std::ffi::CString;
    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth - 1];
        bytes.push(0x90);
        bytes
    }
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            let url = CString::new("memory://").unwrap();
            let key = CString::new("deep").unwrap();
            // SAFETY: every pointer is valid for the call; the handles are freed below.
            unsafe {
                let mut manager = std::ptr::null_mut();
                let opened =
                    sessionstore_manager_open(url.as_ptr(), std::ptr::null(), &mut manager);
                assert_eq!(opened, sessionstore_result::SESSIONSTORE_OK);
                let mut session = std::ptr::null_mut();
                let loaded = sessionstore_manager_load(manager, std::ptr::null(), &mut session);
                assert_eq!(loaded, sessionstore_result::SESSIONSTORE_OK);
                let set = |bytes: &[u8]| {
                    sessionstore_session_set_msgpack(
                        session,
                        key.as_ptr(),
                        bytes.as_ptr(),
                        bytes.len(),
                    )
                };
                assert_eq!(
                    set(&nested_arrays(MAX_NESTING)),
                    sessionstore_result::SESSIONSTORE_OK
                );
                for depth in [MAX_NESTING + 1, 100_000] {
                    assert_eq!(
                        set(&nested_arrays(depth)),
                        sessionstore_result::SESSIONSTORE_INVALID_ARGUMENT,
                        "depth {depth}"
                    );
                }
                sessionstore_session_free(session);
                sessionstore_manager_free(manager);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
