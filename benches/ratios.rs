//! The ratio table of docs/BENCHMARKS.md: every request cycle on every store, library and raw
//! driver baseline measured interleaved (alternating blocks of about 20 ms, the order
//! rotating each round), so both see the same machine load even on a busy machine.
//!
//! For each cycle and payload it prints the median time per request of the baseline and of
//! the library (medians of the block means) and the median of the per-round ratios. For
//! PostgreSQL and MySQL a third column times the baseline on a pool that checks every
//! connection on check-out (r2d2's and the mysql crate's default), to show that check's cost.
//!
//! The whole measurement is repeated in several passes (3 by default), each with the stores
//! opened afresh, and each figure is the median over the passes: on a small VM a round trip
//! takes several times longer when the server's worker (a PostgreSQL backend, a MariaDB
//! thread: one per connection) runs on the other vCPU, and where a connection's worker
//! lands sticks for seconds, so one pass can favour either side.
//!
//! With Redis selected, a table compares the modified request with encryption and
//! compression at rest on and off against the raw driver's (docs/BENCHMARKS.md, "At rest").
//!
//! With the `capi` feature, a further table compares the C ABI with the Rust API on the same
//! requests (memory and Redis), interleaved the same way.
//!
//! `cargo bench --all-features --bench ratios`; `BENCH_STORES=redis,postgres`,
//! `BENCH_QUICK=1` (one pass of fewer, shorter rounds), `BENCH_PASSES=N`.

mod common;

use std::time::{Duration, Instant};

use common::machine;
use common::payload::SIZES;
use common::setup::{self, Op, Target};

/// One way of running a request, with its timings.
struct Variant<'a> {
    run: Box<dyn FnMut() + 'a>,
    /// Mean time per request of each block.
    blocks: Vec<f64>,
}

impl<'a> Variant<'a> {
    fn new(run: impl FnMut() + 'a) -> Variant<'a> {
        Variant {
            run: Box::new(run),
            blocks: Vec::new(),
        }
    }

    /// Requests per block of about `block`, from a short warm-up.
    fn calibrate(&mut self, block: Duration) -> u32 {
        let started = Instant::now();
        let mut runs = 0u32;
        while started.elapsed() < block || runs < 3 {
            (self.run)();
            runs += 1;
        }
        let each = started.elapsed().as_secs_f64() / f64::from(runs);
        ((block.as_secs_f64() / each) as u32).max(1)
    }

    fn block(&mut self, requests: u32) -> f64 {
        let started = Instant::now();
        for _ in 0..requests {
            (self.run)();
        }
        let mean = started.elapsed().as_secs_f64() / f64::from(requests);
        self.blocks.push(mean);
        mean
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Seconds as microseconds, with the digits that matter.
fn micros(seconds: f64) -> String {
    common::micros(seconds * 1e6)
}

/// Runs `variants` interleaved for `rounds` rounds; returns each one's median time per
/// request and the median over the rounds of the second one's time over the first one's.
fn interleave(mut variants: Vec<Variant<'_>>, rounds: usize, block: Duration) -> (Vec<f64>, f64) {
    let sizes: Vec<u32> = variants.iter_mut().map(|v| v.calibrate(block)).collect();
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let count = variants.len();
        let mut means = vec![0.0; count];
        for step in 0..count {
            let which = (round + step) % count;
            means[which] = variants[which].block(sizes[which]);
        }
        ratios.push(means[1] / means[0]);
    }
    let medians = variants.iter_mut().map(|v| median(&mut v.blocks)).collect();
    (medians, median(&mut ratios))
}

fn block() -> Duration {
    if setup::quick() {
        Duration::from_millis(5)
    } else {
        Duration::from_millis(20)
    }
}

/// The figures of one table row: the baseline's, the library's and the checked baseline's
/// time per request, and the library / baseline ratio.
#[derive(Default)]
struct Row {
    raw: Vec<f64>,
    library: Vec<f64>,
    ratio: Vec<f64>,
    checked: Vec<f64>,
    checked_ratio: Vec<f64>,
}

impl Row {
    fn format(&mut self, store: &str, op: Op, label: &str) -> String {
        let checked = if self.checked.is_empty() {
            "– | –".to_owned()
        } else {
            format!(
                "{} | {:.2}×",
                micros(median(&mut self.checked)),
                median(&mut self.checked_ratio)
            )
        };
        format!(
            "| {store} | {} | {label} | {} | {} | **{:.2}×** | {checked} |",
            op.name(),
            micros(median(&mut self.raw)),
            micros(median(&mut self.library)),
            median(&mut self.ratio),
        )
    }
}

/// Runs the library, the baseline and (where there is one) the checked baseline of `op`
/// interleaved; adds the figures to `row`.
fn measure(target: &Target, op: Op, bytes: usize, rounds: usize, row: &mut Row) {
    let manager = target.manager(op.mode());
    let mut cookie = if op.sized() {
        setup::new_session(&manager, bytes)
    } else {
        setup::missing_cookie(&manager)
    };
    let raw_key = |raw: &dyn common::raw::Raw| {
        if op.sized() {
            setup::new_raw_record(target, raw, bytes)
        } else {
            target.raw_key()
        }
    };
    let mut key = raw_key(&*target.raw);
    let checked = target.raw_checked.as_deref();
    let mut checked_key = checked.map(raw_key);
    let mut variants = vec![
        Variant::new(|| setup::raw_request(target, &*target.raw, op, &mut key)),
        Variant::new(|| setup::library_request(&manager, op, &mut cookie)),
    ];
    if let (Some(raw), Some(key)) = (checked, checked_key.as_mut()) {
        variants.push(Variant::new(move || {
            setup::raw_request(target, raw, op, key)
        }));
    }
    let (medians, ratio) = interleave(variants, rounds, block());
    row.raw.push(medians[0]);
    row.library.push(medians[1]);
    row.ratio.push(ratio);
    if let Some(checked) = medians.get(2) {
        row.checked.push(*checked);
        row.checked_ratio.push(medians[1] / checked);
    }
}

/// The rows of one store: each cycle with each payload (a miss has none).
fn rows_of(name: &str) -> Vec<(Op, &'static str, usize)> {
    let mut rows = Vec::new();
    for op in Op::ALL {
        if op.skipped_on(name).is_some() {
            continue;
        }
        if op.sized() {
            rows.extend(SIZES.iter().map(|&(label, bytes)| (op, label, bytes)));
        } else {
            rows.push((op, "–", 0));
        }
    }
    rows
}

/// The modified request on Redis with each at-rest setting, interleaved with the raw
/// driver's; prints the table.
fn at_rest_table(rounds: usize) {
    println!("\n# At rest on Redis: modified request, interleaved\n");
    println!("| payload | raw driver | plain | encrypted | compressed | both |");
    println!("|---|---|---|---|---|---|");
    let target = setup::open("redis");
    for (label, bytes) in SIZES {
        let managers: Vec<_> = setup::at_rest_variants()
            .into_iter()
            .map(|(_, at_rest)| target.manager_at_rest(at_rest))
            .collect();
        let mut cookies: Vec<String> = managers
            .iter()
            .map(|manager| setup::new_session(manager, bytes))
            .collect();
        let mut key = setup::new_raw_record(&target, &*target.raw, bytes);
        let mut variants = vec![Variant::new(|| {
            setup::raw_request(&target, &*target.raw, Op::Modified, &mut key)
        })];
        for (manager, cookie) in managers.iter().zip(cookies.iter_mut()) {
            variants.push(Variant::new(move || {
                setup::library_request(manager, Op::Modified, cookie)
            }));
        }
        let (medians, _) = interleave(variants, rounds, block());
        let cells: Vec<String> = medians[1..]
            .iter()
            .map(|m| format!("{} ({:.2}×)", micros(*m), m / medians[0]))
            .collect();
        println!(
            "| {label} | {} | {} |",
            micros(medians[0]),
            cells.join(" | ")
        );
    }
}

/// The C ABI against the Rust API, same requests, interleaved; prints the table.
#[cfg(feature = "capi")]
fn capi_table(rounds: usize) {
    use common::capi::{self, CycleOp};
    println!("\n# C ABI / Rust API, interleaved\n");
    println!("| store | request | payload | Rust API | C ABI | C / Rust |");
    println!("|---|---|---|---|---|---|");
    for (store, url) in capi::urls() {
        let prefix = capi::prefix();
        let c_manager = capi::open_c(&url, &prefix);
        let rust_manager = capi::open_rust(&url, &prefix);
        for op in CycleOp::ALL {
            for (label, bytes) in SIZES {
                let c_cookie = capi::new_c_session(&c_manager, bytes);
                let rust_cookie = capi::new_rust_session(&rust_manager, bytes);
                let variants = vec![
                    Variant::new(|| capi::rust_request(&rust_manager, &rust_cookie, op)),
                    Variant::new(|| capi::c_request(&c_manager, &c_cookie, op)),
                ];
                let (medians, ratio) = interleave(variants, rounds, block());
                println!(
                    "| {store} | {} | {label} | {} | {} | **{ratio:.3}×** |",
                    op.name(),
                    micros(medians[0]),
                    micros(medians[1])
                );
            }
        }
    }
}

fn main() {
    // `cargo test --benches` runs bench targets without `--bench`: one quick round then.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let (rounds, passes) = if smoke {
        (1, 1)
    } else if setup::quick() {
        (5, 1)
    } else {
        let passes = std::env::var("BENCH_PASSES")
            .map(|text| text.parse().expect("BENCH_PASSES: a number"))
            .unwrap_or(3);
        (21, passes)
    };
    println!("# Library / raw driver, interleaved\n");
    println!("Machine at the start:\n{}\n", machine::describe());
    println!("Passes: {passes}, rounds per pass: {rounds}.\n");
    let mut calls = Vec::new();
    let mut notes = Vec::new();
    println!(
        "| store | request | payload | raw driver | library | library / raw | raw, pool checks \
         each check-out | library / that |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for name in setup::selected() {
        let rows = rows_of(name);
        let mut figures: Vec<Row> = rows.iter().map(|_| Row::default()).collect();
        for _ in 0..passes {
            let target = setup::open(name);
            for (&(op, _, bytes), row) in rows.iter().zip(&mut figures) {
                measure(&target, op, bytes, rounds, row);
            }
        }
        for (&(op, label, _), row) in rows.iter().zip(&mut figures) {
            println!("{}", row.format(name, op, label));
        }
        calls.push((name, setup::open(name).count_calls(2_000)));
        for op in Op::ALL {
            if let Some(reason) = op.skipped_on(name) {
                notes.push(format!("{name} {}: not measured: {reason}.", op.name()));
            }
        }
    }
    for note in &notes {
        println!("\n{note}");
    }
    if setup::selected().contains(&"redis") {
        at_rest_table(rounds);
    }
    #[cfg(feature = "capi")]
    capi_table(rounds);
    println!(
        "\nLoad average at the end (1, 5, 15 min): {}\n",
        machine::load_average()
    );
    println!("Store calls per library request (reads + writes):\n");
    let header: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
    println!("| store | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    for (name, rows) in calls {
        let cells: Vec<String> = rows
            .iter()
            .map(|(_, reads, writes)| format!("{reads} + {writes}"))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
