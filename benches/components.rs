//! Criterion suite of the library's own work in a request, without any store: a full decode
//! and encode of the session payloads, checking the cookie, writing the `Set-Cookie` header,
//! and whole requests on the memory store (whose own work is a map lookup and a copy), for
//! both payload shapes, and the same modified request with encryption and compression at
//! rest on and off (and sealing and opening alone), and with metrics off and on. It explains the ratios of
//! docs/BENCHMARKS.md: whatever a request costs beyond the raw driver is in here.
//!
//! `cargo bench --all-features --bench components` (no server needed).

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sessionstore::codec::{self, Format};
use sessionstore::store::StoreConfig;
use sessionstore::{Config, SessionId, SessionManager};

use common::payload::{self, SIZES};

/// A full decode and encode of the payloads (`codec::decode` / `codec::encode`, what the
/// library did on every load and save before it kept values encoded until read).
fn codec_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (label, bytes) in SIZES {
        let data = payload::data(bytes);
        let encoded = payload::encoded(&data);
        group.bench_function(BenchmarkId::new("decode", label), |b| {
            b.iter(|| codec::decode(std::hint::black_box(&encoded)).unwrap())
        });
        group.bench_function(BenchmarkId::new("encode", label), |b| {
            b.iter(|| codec::encode(std::hint::black_box(&data), Format::MessagePack).unwrap())
        });
    }
    group.finish();
}

fn cookie_benches(c: &mut Criterion) {
    let config = Config::builder(StoreConfig::Memory)
        .secret("benchmark secret")
        .build()
        .unwrap();
    let id = SessionId::generate();
    let header = format!("session={}", config.cookie.value(&id));
    let mut group = c.benchmark_group("cookie");
    group.bench_function("verify", |b| {
        b.iter(|| config.cookie.read(Some(std::hint::black_box(&header))))
    });
    group.bench_function("set_cookie", |b| {
        b.iter(|| {
            config
                .cookie
                .set_cookie(&id, Some(Duration::from_secs(3600)))
        })
    });
    group.bench_function("new_id", |b| b.iter(SessionId::generate));
    group.finish();
}

/// Makes a payload of at least the given size.
type Payload = fn(usize) -> sessionstore::codec::Data;

fn request_benches(c: &mut Criterion) {
    let manager = SessionManager::new(
        Config::builder(StoreConfig::Memory)
            .secret("benchmark secret")
            .touch_interval(Duration::from_secs(3600))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut group = c.benchmark_group("memory_request");
    let shapes: [(&str, Payload); 2] = [("", payload::data), ("flat_", payload::flat_data)];
    for (shape, make) in shapes {
        for (label, bytes) in SIZES {
            let cookie = common::setup::store_session(&manager, make(bytes));
            let label = format!("{shape}{label}");
            group.bench_function(BenchmarkId::new("load", &label), |b| {
                b.iter(|| manager.load(Some(&cookie)).unwrap())
            });
            group.bench_function(BenchmarkId::new("load_modify_save", &label), |b| {
                b.iter(|| {
                    let mut session = manager.load(Some(&cookie)).unwrap();
                    session
                        .modify(payload::COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
                        .unwrap();
                    manager.save(session).unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A modified request (load, increment, compare-and-set save) on the memory store with each
/// at-rest setting: what encryption and compression add to the library's own work.
fn at_rest_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("at_rest_modified");
    for (variant, at_rest) in common::setup::at_rest_variants() {
        let mut config = Config::builder(StoreConfig::Memory)
            .secret("benchmark secret")
            .touch_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        config.at_rest = at_rest;
        let manager = SessionManager::new(config).unwrap();
        for (label, bytes) in SIZES {
            let cookie = common::setup::store_session(&manager, payload::data(bytes));
            group.bench_function(BenchmarkId::new(variant, label), |b| {
                b.iter(|| {
                    let mut session = manager.load(Some(&cookie)).unwrap();
                    session
                        .modify(payload::COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
                        .unwrap();
                    manager.save(session).unwrap()
                })
            });
        }
    }
    group.finish();
}

/// A modified request and an unmodified one on the memory store, metrics off (the default)
/// and on: what counting and timing every store call costs (docs/DESIGN.md §10).
fn metrics_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    for on in [false, true] {
        let manager = SessionManager::new(
            Config::builder(StoreConfig::Memory)
                .secret("benchmark secret")
                .touch_interval(Duration::from_secs(3600))
                .metrics(on)
                .build()
                .unwrap(),
        )
        .unwrap();
        let variant = if on { "on" } else { "off" };
        let (label, bytes) = SIZES[0];
        let cookie = common::setup::store_session(&manager, payload::data(bytes));
        group.bench_function(
            BenchmarkId::new(format!("load_save_{variant}"), label),
            |b| {
                b.iter(|| {
                    let session = manager.load(Some(&cookie)).unwrap();
                    manager.save(session).unwrap()
                })
            },
        );
        group.bench_function(
            BenchmarkId::new(format!("load_modify_save_{variant}"), label),
            |b| {
                b.iter(|| {
                    let mut session = manager.load(Some(&cookie)).unwrap();
                    session
                        .modify(payload::COUNTER, |n: Option<i64>| n.unwrap_or(0) + 1)
                        .unwrap();
                    manager.save(session).unwrap()
                })
            },
        );
    }
    group.finish();
}

/// Sealing and opening alone (no session, no store), per payload and setting.
fn seal_open_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("at_rest_seal_open");
    for (variant, at_rest) in common::setup::at_rest_variants().into_iter().skip(1) {
        for (label, bytes) in SIZES {
            let encoded = payload::encoded(&payload::data(bytes));
            let sealed = at_rest.seal("session:bench", encoded.clone()).unwrap();
            group.bench_function(BenchmarkId::new(format!("seal_{variant}"), label), |b| {
                b.iter(|| at_rest.seal("session:bench", encoded.clone()).unwrap())
            });
            group.bench_function(BenchmarkId::new(format!("open_{variant}"), label), |b| {
                b.iter(|| at_rest.open("session:bench", &sealed, 1 << 22).unwrap())
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    let (warm_up, measurement, samples) = if common::setup::quick() {
        (Duration::from_millis(100), Duration::from_millis(300), 10)
    } else {
        (Duration::from_millis(300), Duration::from_secs(1), 30)
    };
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .sample_size(samples)
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec_benches, cookie_benches, request_benches, at_rest_benches, seal_open_benches,
        metrics_benches
}
criterion_main!(benches);
