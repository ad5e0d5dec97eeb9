//! Criterion suite: every request cycle on every store, through the library and through the
//! raw driver doing the same round trips, side by side in one group per store and cycle
//! (`<store>/<cycle>`, functions `library/<payload>` and `raw/<payload>`).
//!
//! `cargo bench --all-features --bench request_cycle` (all stores; the servers of
//! scripts/services.sh must run), `BENCH_STORES=redis,postgres` for some stores,
//! `BENCH_QUICK=1` for short measurements, and criterion's own filter after `--`.

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use common::payload::SIZES;
use common::setup::{self, Op};

fn request_cycle(c: &mut Criterion) {
    for name in setup::selected() {
        let target = setup::open(name);
        for op in Op::ALL {
            if let Some(reason) = op.skipped_on(name) {
                eprintln!("{name}/{}: not measured: {reason}", op.name());
                continue;
            }
            let mut group = c.benchmark_group(format!("{name}/{}", op.name()));
            let sizes: &[(&str, usize)] = if op.sized() { &SIZES } else { &[("none", 0)] };
            for &(label, bytes) in sizes {
                let manager = target.manager(op.mode());
                let mut cookie = if op.sized() {
                    setup::new_session(&manager, bytes)
                } else {
                    setup::missing_cookie(&manager)
                };
                group.bench_function(BenchmarkId::new("library", label), |b| {
                    b.iter(|| setup::library_request(&manager, op, &mut cookie))
                });
                let mut key = if op.sized() {
                    setup::new_raw_record(&target, &*target.raw, bytes)
                } else {
                    target.raw_key()
                };
                group.bench_function(BenchmarkId::new("raw", label), |b| {
                    b.iter(|| setup::raw_request(&target, &*target.raw, op, &mut key))
                });
            }
            group.finish();
        }
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
    targets = request_cycle
}
criterion_main!(benches);
