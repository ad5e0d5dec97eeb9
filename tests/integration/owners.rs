//! docs/DESIGN.md §9, sessions of an owner, on every store: binding, listing, ending all but
//! one, the cap, and the owner index under concurrent logins and logouts.

use crate::backend_tests;
use crate::common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use common::{Harness, cookie_pair, harness, is_removal};
use sessionstore::{SessionId, SessionManager};

/// The suite, run on each backend below.
macro_rules! owners_suite {
    ($backend:ident) => {
        backend_tests!(
            $backend,
            [
                three_devices_listed_and_ended_but_the_caller,
                cap_ends_the_oldest,
                binding_survives_regenerate_and_destroy_unbinds,
                stale_entries_are_pruned_when_read,
                concurrent_logins_logouts_and_end_all,
            ]
        );
    };
}

owners_suite!(memory);
owners_suite!(filesystem);
owners_suite!(sqlite);
#[cfg(feature = "postgres")]
owners_suite!(postgres);
#[cfg(feature = "mysql")]
owners_suite!(mysql);
#[cfg(feature = "mongodb")]
owners_suite!(mongodb);
#[cfg(feature = "redis")]
owners_suite!(redis);
#[cfg(feature = "redis")]
owners_suite!(redis_cluster);
#[cfg(feature = "memcached")]
owners_suite!(memcached);

const OWNER: &str = "42";

/// A login on a new device: binds a fresh session to `owner`; returns its cookie.
fn log_in(h: &Harness, owner: &str) -> String {
    cookie_pair(&h.request(None, |s| {
        s.insert("user", owner).unwrap();
        s.set_owner(owner).unwrap();
    }))
}

/// The session id a `name=value` cookie pair carries.
fn id_of(cookie: &str) -> SessionId {
    let value = cookie.split_once('=').expect("name=value").1;
    SessionId::parse(value.split('.').next().expect("id")).expect("a session id")
}

/// Whether the next request with `cookie` is anonymous.
fn anonymous(h: &Harness, cookie: &str) -> bool {
    h.manager.load(Some(cookie)).unwrap().is_new()
}

/// The session keys `owner`'s index lists, read straight from the store.
fn index_keys(manager: &SessionManager, owner: &str) -> Vec<String> {
    let key = format!(
        "{}owner:{}",
        manager.config().key_prefix,
        URL_SAFE_NO_PAD.encode(Sha256::digest(owner.as_bytes()))
    );
    let Some(record) = manager.store().load(&key).unwrap() else {
        return Vec::new();
    };
    let value = rmpv::decode::read_value(&mut &record.data[..]).expect("index bytes");
    value
        .as_array()
        .expect("an array of entries")
        .iter()
        .map(|entry| entry[0].as_str().expect("a key").to_owned())
        .collect()
}

fn three_devices_listed_and_ended_but_the_caller(backend: &str) {
    let h = harness(backend, |b| b);
    let devices: Vec<String> = (0..3).map(|_| log_in(&h, OWNER)).collect();
    let listed = h.manager.sessions_of(OWNER).unwrap();
    assert_eq!(listed.len(), 3);
    let caller = id_of(&devices[0]);
    let hints: Vec<&str> = listed.iter().map(|s| s.id_hint.as_str()).collect();
    assert!(hints.contains(&h.manager.id_hint(&caller).as_str()));
    for info in &listed {
        assert!(!devices.iter().any(|d| d.contains(&info.id_hint)));
        assert!(info.expires_at > info.bound_at);
    }
    assert_eq!(h.manager.end_sessions_of(OWNER, Some(&caller)).unwrap(), 2);
    assert!(anonymous(&h, &devices[1]));
    assert!(anonymous(&h, &devices[2]));
    assert!(!anonymous(&h, &devices[0]), "the caller stays logged in");
    assert_eq!(h.manager.sessions_of(OWNER).unwrap().len(), 1);
    assert_eq!(h.manager.end_sessions_of(OWNER, None).unwrap(), 1);
    assert!(anonymous(&h, &devices[0]));
    assert!(index_keys(&h.manager, OWNER).is_empty());
}

fn cap_ends_the_oldest(backend: &str) {
    let h = harness(backend, |b| b.max_sessions_per_owner(2));
    let devices: Vec<String> = (0..3)
        .map(|_| {
            let cookie = log_in(&h, OWNER);
            // Bindings within one millisecond would tie on their time.
            thread::sleep(Duration::from_millis(3));
            cookie
        })
        .collect();
    assert!(anonymous(&h, &devices[0]), "the oldest was ended");
    assert!(!anonymous(&h, &devices[1]));
    assert!(!anonymous(&h, &devices[2]));
    assert_eq!(h.manager.sessions_of(OWNER).unwrap().len(), 2);
    log_in(&h, "7");
    assert_eq!(h.manager.sessions_of(OWNER).unwrap().len(), 2, "per owner");
}

fn binding_survives_regenerate_and_destroy_unbinds(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = log_in(&h, OWNER);
    let moved = cookie_pair(&h.request(Some(&cookie), |s| s.regenerate()));
    assert!(anonymous(&h, &cookie));
    let session = h.manager.load(Some(&moved)).unwrap();
    assert_eq!(session.owner(), Some(OWNER));
    let listed = h.manager.sessions_of(OWNER).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id_hint, h.manager.id_hint(&id_of(&moved)));
    assert_eq!(
        index_keys(&h.manager, OWNER).len(),
        1,
        "the old key is gone"
    );
    assert!(is_removal(&h.request(Some(&moved), |s| s.destroy())));
    assert!(h.manager.sessions_of(OWNER).unwrap().is_empty());
    assert!(index_keys(&h.manager, OWNER).is_empty());
    let mut session = h.manager.load(None).unwrap();
    assert!(session.insert("_owner", "1").is_err(), "set_owner only");
    assert!(session.set_owner("").is_err());
}

fn stale_entries_are_pruned_when_read(backend: &str) {
    let h = harness(backend, |b| b);
    let kept = log_in(&h, OWNER);
    let lost = log_in(&h, OWNER);
    let cleared = log_in(&h, OWNER);
    // Gone behind the manager's back, as an expired record is.
    h.manager.store().delete(&h.key_of(&lost)).unwrap();
    // Rewritten without an owner by a Flask-Session logout, which knows nothing of the
    // index: the bytes of an anonymous session.
    let anonymous_cookie = cookie_pair(&h.request(None, |s| s.insert("flash", "bye").unwrap()));
    let bytes = h.stored(&anonymous_cookie).unwrap().data;
    h.manager
        .store()
        .set(&h.key_of(&cleared), &bytes, Duration::from_secs(60))
        .unwrap();
    assert_eq!(index_keys(&h.manager, OWNER).len(), 3);
    let listed = h.manager.sessions_of(OWNER).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id_hint, h.manager.id_hint(&id_of(&kept)));
    assert_eq!(index_keys(&h.manager, OWNER), vec![h.key_of(&kept)]);
}

fn concurrent_logins_logouts_and_end_all(backend: &str) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 8;
    let h = harness(backend, |b| b);
    let logins = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // Every login that is still logged in by its thread, with when the login returned.
    let alive: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());
    let (end_began, end_returned) = thread::scope(|scope| {
        for thread_no in 0..THREADS {
            let (h, logins, stop, alive) = (&h, &logins, &stop, &alive);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let outcome = h.request(None, |s| s.set_owner(OWNER).unwrap());
                    let returned = Instant::now();
                    logins.fetch_add(1, Ordering::SeqCst);
                    if outcome.ended {
                        // Ended by the end-all while it was being bound.
                        assert!(outcome.set_cookie.is_none());
                        continue;
                    }
                    let cookie = cookie_pair(&outcome);
                    if (thread_no + round) % 2 == 0 {
                        h.request(Some(&cookie), |s| s.destroy());
                    } else {
                        alive.lock().unwrap().push((cookie, returned));
                    }
                    if stop.load(Ordering::SeqCst) && round >= ROUNDS / 2 {
                        break;
                    }
                }
            });
        }
        while logins.load(Ordering::SeqCst) < THREADS * 2 {
            thread::yield_now();
        }
        let began = Instant::now();
        h.manager.end_sessions_of(OWNER, None).unwrap();
        let returned = Instant::now();
        stop.store(true, Ordering::SeqCst);
        (began, returned)
    });
    assert!(end_returned >= end_began);
    let alive = alive.into_inner().unwrap();
    let before: Vec<&String> = alive
        .iter()
        .filter(|(_, at)| *at < end_began)
        .map(|(cookie, _)| cookie)
        .collect();
    assert!(
        !before.is_empty(),
        "some logins returned before the end-all"
    );
    for cookie in &before {
        assert!(anonymous(&h, cookie), "a login before the end-all survived");
    }
    // Every session still alive is listed; after this one read, the index names only
    // records that exist.
    let survivors = alive
        .iter()
        .filter(|(cookie, _)| !anonymous(&h, cookie))
        .count();
    assert_eq!(h.manager.sessions_of(OWNER).unwrap().len(), survivors);
    for key in index_keys(&h.manager, OWNER) {
        assert!(
            h.manager.store().load(&key).unwrap().is_some(),
            "stale {key}"
        );
    }
}
