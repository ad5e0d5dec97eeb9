//! docs/DESIGN.md §5, the request lifecycle: each rule a test of its own, on every embedded store.

use crate::backend_tests;
use crate::common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use common::{cookie_pair, harness, is_removal};
use sessionstore::{CookieMode, Session, SessionId, SessionManager};

/// The suite, run on each backend below.
macro_rules! lifecycle_suite {
    ($backend:ident) => {
        backend_tests!(
            $backend,
            [
                no_cookie_gives_a_fresh_session,
                bad_signature_gives_a_fresh_session,
                malformed_id_gives_a_fresh_session,
                unknown_id_is_never_adopted,
                expired_record_gives_a_fresh_session,
                corrupt_stored_value_gives_a_fresh_session,
                deferred_check_never_surfaces_a_half_read_value,
                unobserved_session_is_not_checked_until_it_must_be,
                values_already_checked_are_trusted_only_byte_for_byte,
                empty_session_is_never_stored,
                emptied_session_is_deleted_and_cookie_expired,
                modified_request_reads_once_and_writes_once,
                unmodified_request_writes_nothing,
                touch_honours_the_interval,
                touch_is_off_without_refresh,
                regenerate_deletes_the_old_record_and_keeps_data,
                destroy_expires_the_cookie,
                absolute_lifetime_ends_a_busy_session,
                permanent_and_browser_session_cookies,
                vary_cookie_when_read,
                oversized_save_is_refused_and_loses_nothing,
                key_limits_are_refused_and_lose_nothing,
                hashed_ids_keep_ids_out_of_the_store,
                rotated_secret_still_verifies,
                stored_value_is_flask_msgpack,
            ]
        );
    };
}

lifecycle_suite!(memory);
lifecycle_suite!(filesystem);
lifecycle_suite!(sqlite);
#[cfg(feature = "postgres")]
lifecycle_suite!(postgres);
#[cfg(feature = "mysql")]
lifecycle_suite!(mysql);
#[cfg(feature = "mongodb")]
lifecycle_suite!(mongodb);
#[cfg(feature = "redis")]
lifecycle_suite!(redis);
#[cfg(feature = "redis")]
lifecycle_suite!(redis_cluster);
#[cfg(feature = "memcached")]
lifecycle_suite!(memcached);

fn logged_in(h: &common::Harness) -> String {
    cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()))
}

fn no_cookie_gives_a_fresh_session(backend: &str) {
    let h = harness(backend, |b| b);
    let session = h.manager.load(None).unwrap();
    assert!(session.is_new() && session.is_empty());
    assert_eq!(h.counts.reads(), 0, "no cookie, no store access");
}

fn bad_signature_gives_a_fresh_session(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let (id, _) = cookie.split_once('.').unwrap();
    h.counts.reset();
    for forged in [format!("{id}.AAAA"), id.to_owned(), format!("{cookie}x")] {
        let session = h.manager.load(Some(&forged)).unwrap();
        assert!(session.is_new(), "{forged}");
        assert_eq!(session.get::<String>("user").unwrap(), None);
        assert_ne!(format!("session={}", session.id().as_str()), id);
    }
    assert_eq!(
        h.counts.reads(),
        0,
        "a forged cookie never reaches the store"
    );
}

fn malformed_id_gives_a_fresh_session(backend: &str) {
    let h = harness(backend, |b| b.cookie_mode(CookieMode::Plain));
    for value in [
        "../../etc/passwd",
        "session:x",
        "a b",
        "",
        "%00",
        &"A".repeat(44),
    ] {
        let header = format!("session={value}");
        let session = h.manager.load(Some(&header)).unwrap();
        assert!(session.is_new(), "{value:?}");
    }
    assert_eq!(h.counts.reads(), 0, "malformed ids never reach the store");
}

fn unknown_id_is_never_adopted(backend: &str) {
    let h = harness(backend, |b| b.cookie_mode(CookieMode::Plain));
    let unknown = SessionId::generate();
    let header = format!("session={}", unknown.as_str());
    let mut session = h.manager.load(Some(&header)).unwrap();
    assert!(session.is_new());
    assert_ne!(session.id(), &unknown, "strict mode: a fresh id");
    session.insert("k", 1).unwrap();
    let cookie = cookie_pair(&h.manager.save(session).unwrap());
    assert!(!cookie.contains(unknown.as_str()));
    assert!(
        h.manager
            .store()
            .load(&format!("session:{}", unknown.as_str()))
            .unwrap()
            .is_none()
    );
}

fn expired_record_gives_a_fresh_session(backend: &str) {
    let h = harness(backend, |b| b.idle_lifetime(Duration::from_secs(1)));
    let cookie = logged_in(&h);
    // Memcached keeps expiry times in whole seconds (rounded up): wait past the next one.
    std::thread::sleep(Duration::from_millis(2100));
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert!(session.is_new());
    assert_eq!(session.get::<String>("user").unwrap(), None);
}

fn corrupt_stored_value_gives_a_fresh_session(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let key = h.key_of(&cookie);
    for garbage in [&b"\xc1\xc1"[..], b"not json", b"\x92\x01\x02", b"[1]"] {
        h.manager
            .store()
            .set(&key, garbage, Duration::from_secs(60))
            .unwrap();
        let session = h.manager.load(Some(&cookie)).unwrap();
        assert!(session.is_new(), "{garbage:?}");
    }
}

/// Stored values damaged after an intact entry `a` = "kept": cut short, a later string
/// that is not UTF-8, a later value nested too deep, bytes after the map.
fn damaged_values() -> Vec<(&'static str, Vec<u8>)> {
    let intact = b"\x82\xa1a\xa4kept\xa1z\xa6abcdef".to_vec();
    let mut too_deep = b"\x82\xa1a\xa4kept\xa1z".to_vec();
    too_deep.extend([0x91; 40]);
    too_deep.push(0xc0);
    vec![
        ("cut short", intact[..intact.len() - 2].to_vec()),
        ("not UTF-8", b"\x82\xa1a\xa4kept\xa1z\xa2\xff\xfe".to_vec()),
        ("nested too deep", too_deep),
        ("bytes after the map", [&intact[..], b"\x01"].concat()),
    ]
}

/// A way for a request to first observe its session, and its name.
type Observation = (&'static str, fn(&mut Session));

/// Every way a request can first observe its session.
fn observations() -> Vec<Observation> {
    vec![
        ("id", |s| {
            black_box(s.id().clone());
        }),
        ("is_new", |s| {
            black_box(s.is_new());
        }),
        ("is_empty", |s| {
            black_box(s.is_empty());
        }),
        ("get", |s| {
            black_box(s.get::<String>("a").unwrap());
        }),
        ("get_value", |s| {
            black_box(s.get_value("a").cloned());
        }),
        ("contains", |s| {
            black_box(s.contains("a"));
        }),
        ("keys", |s| {
            black_box(s.keys().count());
        }),
        ("is_permanent", |s| {
            black_box(s.is_permanent());
        }),
        ("owner", |s| {
            black_box(s.owner().map(str::to_owned));
        }),
        ("Debug", |s| {
            black_box(format!("{s:?}"));
        }),
        ("insert", |s| s.insert("b", 1).unwrap()),
        ("remove", |s| {
            black_box(s.remove("b"));
        }),
        ("modify", |s| {
            black_box(s.modify("n", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap());
        }),
        ("clear", |s| s.clear()),
        ("set_permanent", |s| s.set_permanent(true)),
        ("set_permanent(false)", |s| s.set_permanent(false)),
        ("regenerate", |s| s.regenerate()),
        ("set_owner", |s| s.set_owner("ann").unwrap()),
        ("destroy", |s| s.destroy()),
    ]
}

/// A load leaves the stored value's check to the session's first observation
/// (docs/DESIGN.md §4): whichever comes first, a damaged value is never seen, not even the
/// intact entry before the damage, and the session is fresh under a new id; an intact one
/// reads as stored.
fn deferred_check_never_surfaces_a_half_read_value(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let key = h.key_of(&cookie);
    let id = cookie.split(['=', '.']).nth(1).unwrap().to_owned();
    let store = h.manager.store();
    for (damage, value) in damaged_values() {
        for (first, observe) in observations() {
            store.set(&key, &value, Duration::from_secs(60)).unwrap();
            let mut session = h.manager.load(Some(&cookie)).unwrap();
            observe(&mut session);
            let what = format!("{damage}, first observed by {first}");
            assert!(session.is_new(), "{what}");
            assert_ne!(session.id().as_str(), id, "{what}");
            assert_eq!(session.get_value("a"), None, "{what}");
            assert_eq!(session.get::<String>("user").unwrap(), None, "{what}");
        }
    }
    store
        .set(
            &key,
            b"\x82\xa1a\xa4kept\xa4user\xa3ann",
            Duration::from_secs(60),
        )
        .unwrap();
    for (first, observe) in observations().into_iter().take(10) {
        let mut session = h.manager.load(Some(&cookie)).unwrap();
        observe(&mut session);
        assert!(!session.is_new(), "intact, first observed by {first}");
        assert_eq!(session.id().as_str(), id, "{first}");
        assert_eq!(session.get::<String>("a").unwrap().as_deref(), Some("kept"));
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ann")
        );
    }
}

/// A request that neither reads nor changes its session leaves a damaged value unchecked
/// and untouched, unless its save must renew the session: the check then runs, and the
/// save ends the session as it ends any it cannot use.
fn unobserved_session_is_not_checked_until_it_must_be(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let key = h.key_of(&cookie);
    let lifetime = h.manager.config().idle_lifetime;
    let store = h.manager.store();
    for (damage, value) in damaged_values() {
        // Just renewed: nothing to do.
        store.set(&key, &value, lifetime).unwrap();
        h.counts.reset();
        let outcome = h.request(Some(&cookie), |_| {});
        assert_eq!(outcome.set_cookie, None, "{damage}");
        assert_eq!(h.counts.writes(), 0, "{damage}");
        assert_eq!(&h.stored(&cookie).unwrap().data[..], &value[..], "{damage}");
        // Renewed a lifetime minus a minute ago: the touch is due, the check runs first.
        store.set(&key, &value, Duration::from_secs(60)).unwrap();
        h.counts.reset();
        let outcome = h.request(Some(&cookie), |_| {});
        assert!(is_removal(&outcome), "{damage}: {outcome:?}");
        assert_eq!(h.counts.writes(), 0, "{damage}");
    }
}

/// A manager skips the check of a value it checked or wrote itself when a load finds the
/// same bytes again (docs/DESIGN.md §4): a value changed since, by damage or by another
/// process, is read or refused as it stands, never taken for the one remembered.
fn values_already_checked_are_trusted_only_byte_for_byte(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    // Large enough for the memo to keep (it leaves values under 1 KiB to the check).
    h.request(Some(&cookie), |s| {
        s.insert("notes", "n".repeat(2_000)).unwrap()
    });
    let key = h.key_of(&cookie);
    let store = h.manager.store();
    let user = |manager: &SessionManager| {
        let session = manager.load(Some(&cookie)).unwrap();
        (session.is_new(), session.get::<String>("user").unwrap())
    };
    // Written by this manager, then read back twice: as stored.
    for _ in 0..2 {
        assert_eq!(user(&h.manager), (false, Some("ann".to_owned())));
    }
    // Another process (a manager of its own on the same store) changes it: read as changed,
    // in both directions.
    let other = SessionManager::with_store(h.manager.config().clone(), Arc::clone(store));
    common::request(&other, Some(&cookie), |s| s.insert("user", "bob").unwrap());
    assert_eq!(user(&h.manager), (false, Some("bob".to_owned())));
    h.request(Some(&cookie), |s| s.insert("user", "cyd").unwrap());
    assert_eq!(user(&other), (false, Some("cyd".to_owned())));
    assert_eq!(user(&h.manager), (false, Some("cyd".to_owned())));
    // Damaged in place, same length, after this manager wrote and read it: refused.
    let mut damaged = h.stored(&cookie).unwrap().data.to_vec();
    let at = damaged.windows(3).position(|w| w == b"cyd").unwrap();
    damaged[at..at + 3].copy_from_slice(b"\xff\xfe\xfd");
    store.set(&key, &damaged, Duration::from_secs(60)).unwrap();
    assert_eq!(user(&h.manager), (true, None));
    // Put back as this manager wrote it: read again.
    damaged[at..at + 3].copy_from_slice(b"cyd");
    store.set(&key, &damaged, Duration::from_secs(60)).unwrap();
    assert_eq!(user(&h.manager), (false, Some("cyd".to_owned())));
}

fn empty_session_is_never_stored(backend: &str) {
    let h = harness(backend, |b| b);
    let mut session = h.manager.load(None).unwrap();
    let id = session.id().clone();
    session.insert("tmp", 1).unwrap();
    session.remove("tmp");
    let outcome = h.manager.save(session).unwrap();
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.counts.writes(), 0);
    assert!(
        h.manager
            .store()
            .load(&format!("session:{}", id.as_str()))
            .unwrap()
            .is_none()
    );
}

fn emptied_session_is_deleted_and_cookie_expired(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let outcome = h.request(Some(&cookie), |s| {
        s.remove("user");
    });
    assert!(is_removal(&outcome) && outcome.ended);
    assert!(h.stored(&cookie).is_none());
}

fn modified_request_reads_once_and_writes_once(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    h.counts.reset();
    h.request(Some(&cookie), |s| s.insert("theme", "dark").unwrap());
    assert_eq!((h.counts.reads(), h.counts.writes()), (1, 1));
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
}

fn unmodified_request_writes_nothing(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let before = h.stored(&cookie).unwrap();
    h.counts.reset();
    let outcome = h.request(Some(&cookie), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
    });
    assert_eq!((h.counts.reads(), h.counts.writes()), (1, 0));
    assert_eq!(outcome.set_cookie, None);
    assert_eq!(h.stored(&cookie).unwrap(), before);
}

fn touch_honours_the_interval(backend: &str) {
    let h = harness(backend, |b| b.touch_interval(Duration::from_secs(1)));
    let cookie = logged_in(&h);
    let first = h.stored(&cookie).unwrap();
    h.counts.reset();
    h.request(Some(&cookie), |_| {});
    assert_eq!(h.counts.touches(), 0, "within the interval: no touch");
    // Memcached keeps expiry times in whole seconds (rounded up), so the last renewal may
    // look up to a second later than it was: wait the interval plus that second.
    std::thread::sleep(Duration::from_millis(2100));
    let outcome = h.request(Some(&cookie), |_| {});
    assert_eq!(h.counts.touches(), 1, "interval passed: one touch");
    assert_eq!(h.counts.writes(), 1, "the touch is the only write");
    assert!(
        outcome.set_cookie.is_some(),
        "permanent cookie renewed with the store"
    );
    let touched = h.stored(&cookie).unwrap();
    assert!(touched.expires_at > first.expires_at);
    assert_eq!(touched.data, first.data);
    h.request(Some(&cookie), |_| {});
    assert_eq!(h.counts.touches(), 1, "just touched: no second touch");
}

fn touch_is_off_without_refresh(backend: &str) {
    let h = harness(backend, |b| {
        b.touch_interval(Duration::ZERO).refresh_each_request(false)
    });
    let cookie = logged_in(&h);
    h.counts.reset();
    h.request(Some(&cookie), |_| {});
    assert_eq!(h.counts.writes(), 0);
}

fn regenerate_deletes_the_old_record_and_keeps_data(backend: &str) {
    let h = harness(backend, |b| b);
    let old = logged_in(&h);
    let outcome = h.request(Some(&old), |s| {
        s.regenerate();
        s.insert("role", "admin").unwrap();
    });
    let new = cookie_pair(&outcome);
    assert_ne!(h.key_of(&new), h.key_of(&old));
    assert!(h.stored(&old).is_none(), "old record deleted");
    let session = h.manager.load(Some(&new)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
    assert_eq!(
        session.get::<String>("role").unwrap().as_deref(),
        Some("admin")
    );
    assert!(h.manager.load(Some(&old)).unwrap().is_new());
}

fn destroy_expires_the_cookie(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = logged_in(&h);
    let outcome = h.request(Some(&cookie), |s| s.destroy());
    assert!(is_removal(&outcome) && outcome.ended);
    assert!(h.stored(&cookie).is_none());
    assert!(h.manager.load(Some(&cookie)).unwrap().is_new());
}

fn absolute_lifetime_ends_a_busy_session(backend: &str) {
    let h = harness(backend, |b| {
        b.absolute_lifetime(Duration::from_secs(3))
            .touch_interval(Duration::ZERO)
    });
    let started = std::time::Instant::now();
    let cookie = logged_in(&h);
    for expected in 1..=2 {
        std::thread::sleep(Duration::from_millis(600));
        let mut session = h.manager.load(Some(&cookie)).unwrap();
        assert!(!session.is_new(), "alive before the absolute lifetime");
        let n = session
            .modify("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .unwrap();
        assert_eq!(n, expected);
        assert!(!h.manager.save(session).unwrap().ended);
    }
    // `_created` has whole-second precision: wait the lifetime plus that second.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert!(session.is_new(), "over after 3 s despite activity");
    assert!(h.stored(&cookie).is_none(), "and its record is gone");
}

fn permanent_and_browser_session_cookies(backend: &str) {
    let h = harness(backend, |b| b);
    let permanent = h.request(None, |s| s.insert("a", 1).unwrap());
    let header = permanent.set_cookie.unwrap();
    assert!(
        header.contains("Max-Age=") && header.contains("Expires="),
        "{header}"
    );
    let h = harness(backend, |b| b.permanent(false));
    let outcome = h.request(None, |s| s.insert("a", 1).unwrap());
    let header = outcome.set_cookie.clone().unwrap();
    assert!(
        !header.contains("Max-Age") && !header.contains("Expires"),
        "{header}"
    );
    let stored = h
        .stored(&cookie_pair(&outcome))
        .expect("still stored with the idle TTL");
    assert!(stored.expires_at > time::OffsetDateTime::now_utc() + Duration::from_secs(30 * 86400));
    let turned = h.request(Some(&cookie_pair(&outcome)), |s| s.set_permanent(true));
    assert!(turned.set_cookie.unwrap().contains("Max-Age="));
}

fn vary_cookie_when_read(backend: &str) {
    let h = harness(backend, |b| b);
    assert!(
        !h.request(None, |_| {}).vary_cookie,
        "untouched session: no Vary"
    );
    let cookie = logged_in(&h);
    let read = h.request(Some(&cookie), |s| {
        s.contains("user");
    });
    assert!(read.vary_cookie);
}

fn oversized_save_is_refused_and_loses_nothing(backend: &str) {
    let h = harness(backend, |b| b.max_size(1024));
    let cookie = logged_in(&h);
    let before = h.stored(&cookie).unwrap();
    let mut session = h.manager.load(Some(&cookie)).unwrap();
    session.insert("blob", "x".repeat(2000)).unwrap();
    let error = h.manager.save(session).unwrap_err();
    assert!(
        matches!(error, sessionstore::Error::TooLarge { max: 1024, .. }),
        "{error}"
    );
    assert_eq!(h.stored(&cookie).unwrap().data, before.data);
}

fn key_limits_are_refused_and_lose_nothing(backend: &str) {
    let h = harness(backend, |b| b.max_key_length(12).max_keys(3));
    let cookie = logged_in(&h);
    let before = h.stored(&cookie).unwrap();
    let mut session = h.manager.load(Some(&cookie)).unwrap();
    session.insert("much_too_long_key", 1).unwrap();
    let error = h.manager.save(session).unwrap_err();
    assert!(
        matches!(
            error,
            sessionstore::Error::LimitExceeded {
                what: "key length",
                actual: 17,
                max: 12
            }
        ),
        "{error}"
    );
    let mut session = h.manager.load(Some(&cookie)).unwrap();
    session.insert("b", 1).unwrap();
    session.insert("c", 1).unwrap();
    let error = h.manager.save(session).unwrap_err();
    assert!(
        matches!(
            error,
            sessionstore::Error::LimitExceeded {
                what: "number of keys",
                actual: 4,
                max: 3
            }
        ),
        "{error}"
    );
    assert_eq!(
        h.stored(&cookie).unwrap().data,
        before.data,
        "nothing written"
    );
}

fn hashed_ids_keep_ids_out_of_the_store(backend: &str) {
    let h = harness(backend, |b| b.hash_ids(true));
    let cookie = logged_in(&h);
    assert!(h.stored(&cookie).is_none(), "the plain id is not a key");
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
    let logout = h.request(Some(&cookie), |s| s.destroy());
    assert!(is_removal(&logout));
    assert!(h.manager.load(Some(&cookie)).unwrap().is_new());
}

fn rotated_secret_still_verifies(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::store_config(backend, dir.path());
    let old = sessionstore::SessionManager::new(
        sessionstore::Config::builder(store.clone())
            .secret("old")
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut session = old.load(None).unwrap();
    session.insert("user", "ann").unwrap();
    let cookie = cookie_pair(&old.save(session).unwrap());
    let rotated = sessionstore::SessionManager::with_store(
        sessionstore::Config::builder(store)
            .secret("new")
            .secret("old")
            .build()
            .unwrap(),
        old.store().clone(),
    );
    let session = rotated.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
}

fn stored_value_is_flask_msgpack(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = cookie_pair(&h.request(None, |s| s.insert("user_id", 42).unwrap()));
    let stored = h.stored(&cookie).unwrap();
    assert_eq!(
        &stored.data[..],
        b"\x82\xaa_permanent\xc3\xa7user_id\x2a",
        "Flask-Session 0.8's msgspec encoding"
    );
}
