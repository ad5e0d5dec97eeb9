//! Criterion suite of the C ABI's overhead: the same requests through the Rust API and
//! through the `extern "C"` functions (groups `capi/<store>/<request>`, functions
//! `rust/<payload>` and `c/<payload>`), on the memory store and on Redis.
//!
//! `cargo bench --all-features --bench capi`; `BENCH_QUICK=1` for short measurements.
//! docs/BENCHMARKS.md has the interleaved figures (`--bench ratios`).

mod common;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

use common::capi::{self, CycleOp};
use common::payload::SIZES;

fn capi_overhead(c: &mut Criterion) {
    for (store, url) in capi::urls() {
        let prefix = capi::prefix();
        let c_manager = capi::open_c(&url, &prefix);
        let rust_manager = capi::open_rust(&url, &prefix);
        for op in CycleOp::ALL {
            let mut group = c.benchmark_group(format!("capi/{store}/{}", op.name()));
            for (label, bytes) in SIZES {
                let c_cookie = capi::new_c_session(&c_manager, bytes);
                let rust_cookie = capi::new_rust_session(&rust_manager, bytes);
                group.bench_function(BenchmarkId::new("rust", label), |b| {
                    b.iter(|| capi::rust_request(&rust_manager, &rust_cookie, op))
                });
                group.bench_function(BenchmarkId::new("c", label), |b| {
                    b.iter(|| capi::c_request(&c_manager, &c_cookie, op))
                });
            }
            group.finish();
        }
    }
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
    targets = capi_overhead
}
criterion_main!(benches);
