//! Criterion suite: the cost of binding a session to an owner (docs/DESIGN.md §9). One group
//! per store (`<store>/owner_modified`): a modified request (one `modify` of a counter, 1 KB
//! session) on an unbound session and on one bound to an owner, side by side, plus the store
//! calls each makes, counted through a wrapper: a bound session's request must make exactly
//! the calls of an unbound one (no extra round trip). Also `<store>/owner_login`, a login
//! that binds (the index updates), for scale.
//!
//! `cargo bench --all-features --bench owners`, `BENCH_STORES=redis,postgres` for some
//! stores, `BENCH_QUICK=1` for short measurements.

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sessionstore::{Config, SessionManager};

use common::payload::COUNTER;
use common::setup;

/// A new 1 KB session through `manager`, bound to `owner` if given; its cookie pair.
fn session(manager: &SessionManager, owner: Option<&str>) -> String {
    let cookie = setup::new_session(manager, 1024);
    let Some(owner) = owner else {
        return cookie;
    };
    let mut session = manager.load(Some(&cookie)).expect("load");
    session.set_owner(owner).expect("a valid owner");
    manager.save(session).expect("save");
    cookie
}

/// One modified request.
fn modified(manager: &SessionManager, cookie: &str) {
    let mut session = manager.load(Some(cookie)).expect("load");
    session
        .modify(COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
        .expect("modify");
    std::hint::black_box(manager.save(session).expect("save"));
}

fn owners(c: &mut Criterion) {
    for name in setup::selected() {
        let target = setup::open(name);
        let counting = Arc::new(setup::Counting::new(target.store.clone()));
        let base = target.manager(setup::Mode::Cas);
        let config: Config = base.config().clone();
        let manager = SessionManager::with_store(config, counting.clone());
        let owner = format!(
            "bench-owner-{}",
            sessionstore::SessionId::generate().as_str()
        );
        let unbound = session(&manager, None);
        let bound = session(&manager, Some(&owner));
        let mut calls = [0; 2];
        for (count, cookie) in calls.iter_mut().zip([&unbound, &bound]) {
            counting.reset();
            modified(&manager, cookie);
            *count = counting.calls();
        }
        assert_eq!(
            calls[0], calls[1],
            "{name}: a bound session's modified request makes extra store calls"
        );
        eprintln!(
            "{name}/owner_modified: store calls unbound {}, bound {}",
            calls[0], calls[1]
        );
        let mut group = c.benchmark_group(format!("{name}/owner_modified"));
        group.bench_function("unbound", |b| b.iter(|| modified(&manager, &unbound)));
        group.bench_function("bound", |b| b.iter(|| modified(&manager, &bound)));
        group.finish();
        let mut group = c.benchmark_group(format!("{name}/owner_login"));
        group.bench_function("bind_new_session", |b| {
            b.iter(|| std::hint::black_box(session(&manager, Some(&owner))))
        });
        group.finish();
        manager.end_sessions_of(&owner, None).expect("end all");
    }
}

fn config() -> Criterion {
    let (warm_up, measurement, samples) = if setup::quick() {
        (Duration::from_millis(100), Duration::from_millis(300), 10)
    } else {
        (Duration::from_millis(300), Duration::from_secs(1), 20)
    };
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
}

criterion_group! {
    name = benches;
    config = config();
    targets = owners
}
criterion_main!(benches);
