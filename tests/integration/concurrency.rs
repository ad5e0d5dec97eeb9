//! docs/DESIGN.md §6, no lost updates, on every embedded store: concurrent requests of one user.

use crate::backend_tests;
use crate::common;

use std::sync::Barrier;
use std::thread;

use common::{Harness, cookie_pair, harness, is_removal};
use sessionstore::Concurrency;

/// The suite, run on each backend below.
macro_rules! concurrency_suite {
    ($backend:ident) => {
        backend_tests!(
            $backend,
            [
                eight_threads_times_a_thousand_increments,
                concurrent_writes_to_different_keys_all_survive,
                destroyed_session_is_not_recreated,
                removed_key_stays_removed_while_others_write,
                last_writer_wins_mode_overwrites,
            ]
        );
    };
}

concurrency_suite!(memory);
concurrency_suite!(filesystem);
concurrency_suite!(sqlite);
#[cfg(feature = "postgres")]
concurrency_suite!(postgres);
#[cfg(feature = "mysql")]
concurrency_suite!(mysql);
#[cfg(feature = "mongodb")]
concurrency_suite!(mongodb);
#[cfg(feature = "redis")]
concurrency_suite!(redis);
#[cfg(feature = "redis")]
concurrency_suite!(redis_cluster);
#[cfg(feature = "memcached")]
concurrency_suite!(memcached);

const THREADS: usize = 8;

fn start(h: &Harness) -> String {
    cookie_pair(&h.request(None, |s| s.insert("user", "ann").unwrap()))
}

fn eight_threads_times_a_thousand_increments(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = start(&h);
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..1000 {
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
    assert_eq!(session.get::<i64>("visits").unwrap(), Some(8000));
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
}

fn concurrent_writes_to_different_keys_all_survive(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = start(&h);
    let barrier = Barrier::new(THREADS);
    thread::scope(|scope| {
        for thread_no in 0..THREADS {
            let (h, cookie, barrier) = (&h, &cookie, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for round in 0..50 {
                    h.request(Some(cookie), |s| {
                        s.insert(&format!("key{thread_no}"), round).unwrap();
                    });
                }
            });
        }
    });
    let session = h.manager.load(Some(&cookie)).unwrap();
    for thread_no in 0..THREADS {
        assert_eq!(
            session.get::<i64>(&format!("key{thread_no}")).unwrap(),
            Some(49)
        );
    }
}

fn destroyed_session_is_not_recreated(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = start(&h);
    let mut slow = h.manager.load(Some(&cookie)).unwrap();
    let logout = h.request(Some(&cookie), |s| s.destroy());
    assert!(is_removal(&logout));
    slow.insert("cart", vec![1, 2, 3]).unwrap();
    let outcome = h.manager.save(slow).unwrap();
    assert!(outcome.ended, "the save reports that the session ended");
    assert!(is_removal(&outcome), "and expires the cookie");
    assert!(h.stored(&cookie).is_none(), "the logout stands");
}

fn removed_key_stays_removed_while_others_write(backend: &str) {
    let h = harness(backend, |b| b);
    let cookie = start(&h);
    h.request(Some(&cookie), |s| s.insert("flash", "hello").unwrap());
    let mut reader = h.manager.load(Some(&cookie)).unwrap();
    h.request(Some(&cookie), |s| s.insert("theme", "dark").unwrap());
    assert_eq!(
        reader
            .remove("flash")
            .and_then(|v| v.as_str().map(String::from))
            .as_deref(),
        Some("hello")
    );
    assert!(!h.manager.save(reader).unwrap().ended);
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert!(!session.contains("flash"));
    assert_eq!(
        session.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
}

fn last_writer_wins_mode_overwrites(backend: &str) {
    let h = harness(backend, |b| b.concurrency(Concurrency::LastWriterWins));
    let cookie = start(&h);
    for _ in 0..3 {
        h.request(Some(&cookie), |s| {
            s.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1)
                .unwrap();
        });
    }
    let mut first = h.manager.load(Some(&cookie)).unwrap();
    let mut second = h.manager.load(Some(&cookie)).unwrap();
    first.insert("a", 1).unwrap();
    second.insert("b", 2).unwrap();
    h.manager.save(first).unwrap();
    h.manager.save(second).unwrap();
    let session = h.manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<i64>("visits").unwrap(),
        Some(3),
        "sequential requests work"
    );
    assert_eq!(session.get::<i64>("b").unwrap(), Some(2));
    assert!(
        !session.contains("a"),
        "plain SET: the earlier writer's change is lost, as in Flask-Session"
    );
}
