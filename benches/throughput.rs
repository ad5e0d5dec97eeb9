//! Throughput harness: 1, 2, 4 and 8 threads doing full modified request cycles (load,
//! increment a counter, save; 2 KB sessions) for a fixed time, each thread on its own session
//! or all on one shared session, in both saving modes (no-lost-updates compare-and-set and
//! last-writer-wins), through the library and through the raw driver baseline. Prints
//! requests per second, median and 99th-percentile latency, and for a shared session how
//! many increments were lost.
//!
//! `cargo bench --all-features --bench throughput`; `BENCH_STORES=redis,postgres`,
//! `BENCH_SECONDS=2` (per run; default 1), `BENCH_QUICK=1` (0.2 s runs).

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::machine;
use common::payload::{self, COUNTER};
use common::setup::{self, Mode, Op, Target};

const THREADS: [usize; 4] = [1, 2, 4, 8];
const BYTES: usize = 2_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sessions {
    Distinct,
    Shared,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Library,
    Raw,
}

/// Slices each run is cut into, raw and library alternating.
const SLICES: usize = 4;

#[derive(Default)]
struct Run {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<u32>,
    lost: Option<i64>,
}

impl Run {
    /// Adds the figures of another slice.
    fn add(&mut self, other: Run) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.lost = match (self.lost, other.lost) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[at]) / 1000.0
}

/// Runs `threads` threads of modified requests for `duration`.
fn run(
    target: &Target,
    mode: Mode,
    sessions: Sessions,
    side: Side,
    threads: usize,
    duration: Duration,
) -> Run {
    let manager = target.manager(mode);
    let op = if mode == Mode::Lww {
        Op::ModifiedLww
    } else {
        Op::Modified
    };
    let raw = &*target.raw;
    let new_handle = || match side {
        Side::Library => setup::new_session(&manager, BYTES),
        Side::Raw => setup::new_raw_record(target, raw, BYTES),
    };
    let handles: Vec<String> = match sessions {
        Sessions::Distinct => (0..threads).map(|_| new_handle()).collect(),
        Sessions::Shared => vec![new_handle(); threads],
    };
    let counter = |handle: &String| -> i64 {
        match side {
            Side::Library => manager
                .load(Some(handle))
                .expect("load")
                .get::<i64>(COUNTER)
                .expect("counter")
                .unwrap_or(0),
            Side::Raw => payload::counter_of(&raw.load(handle).expect("stored").data) as i64,
        }
    };
    let before = counter(&handles[0]);
    let barrier = Barrier::new(threads);
    let started = Instant::now();
    let results: Vec<(u64, u64, Vec<u32>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = handles
            .iter()
            .map(|handle| {
                let (barrier, manager) = (&barrier, &manager);
                let mut handle = handle.clone();
                scope.spawn(move || {
                    barrier.wait();
                    let until = Instant::now() + duration;
                    let (mut requests, mut errors) = (0u64, 0u64);
                    let mut latencies = Vec::with_capacity(1 << 16);
                    while Instant::now() < until {
                        let begun = Instant::now();
                        match side {
                            Side::Library => {
                                match setup::try_library_request(manager, op, &mut handle) {
                                    Ok(()) => requests += 1,
                                    Err(_) => errors += 1,
                                }
                            }
                            Side::Raw => {
                                setup::raw_request(target, raw, op, &mut handle);
                                requests += 1;
                            }
                        }
                        let nanos = begun.elapsed().as_nanos();
                        latencies.push(u32::try_from(nanos).unwrap_or(u32::MAX));
                    }
                    (requests, errors, latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let elapsed = started.elapsed();
    let requests = results.iter().map(|r| r.0).sum();
    let errors = results.iter().map(|r| r.1).sum();
    let latencies: Vec<u32> = results.into_iter().flat_map(|r| r.2).collect();
    let lost =
        (sessions == Sessions::Shared).then(|| before + requests as i64 - counter(&handles[0]));
    Run {
        requests,
        errors,
        elapsed,
        latencies,
        lost,
    }
}

fn main() {
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let duration = match std::env::var("BENCH_SECONDS") {
        Ok(text) => Duration::from_secs_f64(text.parse().expect("BENCH_SECONDS: seconds")),
        Err(_) if smoke => Duration::from_millis(20),
        Err(_) if setup::quick() => Duration::from_millis(200),
        Err(_) => Duration::from_secs(1),
    };
    let threads: &[usize] = if smoke { &[1, 2] } else { &THREADS };
    println!("# Throughput: modified requests, {BYTES} B sessions, {duration:?} per run\n");
    println!("Machine at the start:\n{}\n", machine::describe());
    for name in setup::selected() {
        let target = setup::open(name);
        println!("## {name}\n");
        println!(
            "| mode | sessions | threads | side | requests/s | p50 | p99 | errors | lost updates |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for mode in [Mode::Cas, Mode::Lww] {
            for sessions in [Sessions::Distinct, Sessions::Shared] {
                for &count in threads {
                    // Raw and library alternate in short slices, so that both meet the
                    // same machine (on a small VM, where a thread lands changes a round
                    // trip's time severalfold).
                    let mut results = [Run::default(), Run::default()];
                    for slice in 0..SLICES {
                        for step in 0..2 {
                            let which = (slice + step) % 2;
                            let side = [Side::Raw, Side::Library][which];
                            let slice_time = duration / SLICES as u32;
                            results[which]
                                .add(run(&target, mode, sessions, side, count, slice_time));
                        }
                    }
                    for (side, mut result) in [Side::Raw, Side::Library].into_iter().zip(results) {
                        result.latencies.sort_unstable();
                        println!(
                            "| {} | {} | {count} | {} | {:.0} | {} | {} | {} | {} |",
                            if mode == Mode::Lww { "lww" } else { "cas" },
                            if sessions == Sessions::Shared {
                                "one shared"
                            } else {
                                "one each"
                            },
                            if side == Side::Raw { "raw" } else { "library" },
                            result.requests as f64 / result.elapsed.as_secs_f64(),
                            common::micros(percentile(&result.latencies, 0.50)),
                            common::micros(percentile(&result.latencies, 0.99)),
                            result.errors,
                            result.lost.map_or("–".to_owned(), |n| n.to_string()),
                        );
                    }
                }
            }
        }
        println!();
    }
    println!(
        "Load average at the end (1, 5, 15 min): {}",
        machine::load_average()
    );
}
