//! What a manager did, counted (docs/DESIGN.md §10): loads and saves by outcome, conflict
//! retries, and per store operation its calls, errors, bytes and latency.
//!
//! Off unless the configuration asks for it ([`ConfigBuilder::metrics`](crate::ConfigBuilder::metrics),
//! `metrics=on` in a store URL): a manager without metrics pays one untaken branch per load
//! and save. With metrics, the manager counts in relaxed atomics of its own and wraps its
//! store in `Metered`, which times each call; [`SessionManager::stats`](crate::SessionManager::stats)
//! reads them, [`Stats::to_prometheus`] renders them. With the `metrics` cargo feature every
//! count and latency also goes to the `metrics` crate's recorder, labelled by backend.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::store::{CasOutcome, KeyPage, Record, Store};

/// A store operation, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Operation {
    /// [`Store::load`].
    Load = 0,
    /// [`Store::create`].
    Create = 1,
    /// [`Store::compare_and_set`].
    CompareAndSet = 2,
    /// [`Store::compare_and_delete`].
    CompareAndDelete = 3,
    /// [`Store::set`].
    Set = 4,
    /// [`Store::delete`].
    Delete = 5,
    /// [`Store::touch`].
    Touch = 6,
    /// [`Store::purge_expired`].
    Purge = 7,
}

/// How many [`Operation`]s there are.
pub const OPERATIONS: usize = 8;

impl Operation {
    /// Every operation, in the order of [`Stats::store`].
    pub const ALL: [Operation; OPERATIONS] = [
        Operation::Load,
        Operation::Create,
        Operation::CompareAndSet,
        Operation::CompareAndDelete,
        Operation::Set,
        Operation::Delete,
        Operation::Touch,
        Operation::Purge,
    ];

    /// The operation's label in metrics (`load`, `compare_and_set`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Load => "load",
            Operation::Create => "create",
            Operation::CompareAndSet => "compare_and_set",
            Operation::CompareAndDelete => "compare_and_delete",
            Operation::Set => "set",
            Operation::Delete => "delete",
            Operation::Touch => "touch",
            Operation::Purge => "purge",
        }
    }
}

/// The upper bounds of the latency histogram's buckets, in microseconds; one more bucket
/// counts the slower calls.
pub const LATENCY_BOUNDS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// How many latency buckets there are: one per bound, and the slower calls.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MICROS.len() + 1;

/// How a load ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadOutcome {
    /// The session was found and decoded.
    Hit,
    /// A valid cookie named no stored session.
    Miss,
    /// No session cookie.
    NoCookie,
    /// A malformed cookie or a bad signature.
    InvalidCookie,
    /// The record was past its expiry, or past the absolute lifetime.
    Expired,
    /// The stored value could not be decoded (or decrypted).
    Undecodable,
}

/// How a save ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveKind {
    /// Nothing written.
    Unchanged,
    /// Only the expiry renewed.
    Touched,
    /// A new session stored.
    Created,
    /// A changed session stored.
    Updated,
    /// The session moved to a new id.
    Regenerated,
    /// The session ended (destroyed, emptied, or deleted concurrently).
    Ended,
    /// The compare-and-set kept conflicting; nothing written.
    GaveUp,
}

/// The figures of one store operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Their total latency, in nanoseconds.
    pub latency_nanos: u64,
    /// Calls per latency bucket (see [`LATENCY_BOUNDS_MICROS`]), not cumulative.
    pub latency_buckets: [u64; LATENCY_BUCKETS],
}

/// A snapshot of a manager's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Loads that found their session.
    pub loads_hit: u64,
    /// Loads whose valid cookie named no stored session.
    pub loads_miss: u64,
    /// Loads without a session cookie.
    pub loads_no_cookie: u64,
    /// Loads with a malformed or badly signed cookie.
    pub loads_invalid_cookie: u64,
    /// Loads that found an expired session (past its expiry or its absolute lifetime).
    pub loads_expired: u64,
    /// Loads that found a value they could not decode.
    pub loads_undecodable: u64,
    /// Saves that wrote nothing.
    pub saves_unchanged: u64,
    /// Saves that only renewed the expiry.
    pub saves_touched: u64,
    /// Saves that stored a new session.
    pub saves_created: u64,
    /// Saves that stored a changed session.
    pub saves_updated: u64,
    /// Saves that moved a session to a new id.
    pub saves_regenerated: u64,
    /// Saves that ended the session.
    pub saves_ended: u64,
    /// Saves that gave up after conflicting on every attempt.
    pub saves_gave_up: u64,
    /// Compare-and-set conflicts that made a save retry.
    pub conflict_retries: u64,
    /// Bytes of stored values read.
    pub bytes_read: u64,
    /// Bytes of values written.
    pub bytes_written: u64,
    /// Per store operation, in the order of [`Operation::ALL`].
    pub store: [OperationStats; OPERATIONS],
}

/// The live counters of one manager.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// The backend's name, which labels the `metrics` crate's series.
    #[cfg_attr(
        not(feature = "metrics"),
        allow(dead_code, reason = "only the metrics crate's series carry it")
    )]
    backend: &'static str,
    loads: [AtomicU64; 6],
    saves: [AtomicU64; 7],
    conflict_retries: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    store: [OperationCounters; OPERATIONS],
}

#[derive(Debug, Default)]
struct OperationCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_nanos: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS],
}

impl SaveKind {
    /// What a save of `kind` (as its session's state chose) ended as: ended when the
    /// outcome says so, unchanged when it sends no cookie (nothing was written), touched
    /// when an unchanged session was renewed, gave up on contention; `None` on another error
    /// (counted by the store call that failed).
    pub(crate) fn of(kind: SaveKind, result: &Result<crate::SaveOutcome>) -> Option<SaveKind> {
        match result {
            Err(crate::Error::Contention { .. }) => Some(SaveKind::GaveUp),
            Err(_) => None,
            Ok(outcome) if outcome.ended => Some(SaveKind::Ended),
            Ok(outcome) if outcome.set_cookie.is_none() => Some(SaveKind::Unchanged),
            Ok(_) if kind == SaveKind::Unchanged => Some(SaveKind::Touched),
            Ok(_) => Some(kind),
        }
    }
}

const LOAD_OUTCOMES: [(LoadOutcome, &str); 6] = [
    (LoadOutcome::Hit, "hit"),
    (LoadOutcome::Miss, "miss"),
    (LoadOutcome::NoCookie, "no_cookie"),
    (LoadOutcome::InvalidCookie, "invalid_cookie"),
    (LoadOutcome::Expired, "expired"),
    (LoadOutcome::Undecodable, "undecodable"),
];

const SAVE_KINDS: [(SaveKind, &str); 7] = [
    (SaveKind::Unchanged, "unchanged"),
    (SaveKind::Touched, "touched"),
    (SaveKind::Created, "created"),
    (SaveKind::Updated, "updated"),
    (SaveKind::Regenerated, "regenerated"),
    (SaveKind::Ended, "ended"),
    (SaveKind::GaveUp, "gave_up"),
];

impl Metrics {
    /// Counters for a manager on `backend`.
    pub(crate) fn new(backend: &'static str) -> Metrics {
        Metrics {
            backend,
            ..Metrics::default()
        }
    }

    /// Counts a load.
    pub(crate) fn loaded(&self, outcome: LoadOutcome) {
        self.loads[outcome as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        ::metrics::counter!("sessionstore_loads_total", "backend" => self.backend,
            "outcome" => LOAD_OUTCOMES[outcome as usize].1)
        .increment(1);
    }

    /// Counts a save.
    pub(crate) fn saved(&self, kind: SaveKind) {
        self.saves[kind as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        ::metrics::counter!("sessionstore_saves_total", "backend" => self.backend,
            "outcome" => SAVE_KINDS[kind as usize].1)
        .increment(1);
    }

    /// Counts a conflict that makes a save retry.
    pub(crate) fn conflict_retry(&self) {
        self.conflict_retries.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        ::metrics::counter!("sessionstore_conflict_retries_total", "backend" => self.backend)
            .increment(1);
    }

    /// Counts a store call of `elapsed`, failed or not, that read and wrote these bytes.
    fn called(
        &self,
        operation: Operation,
        elapsed: Duration,
        failed: bool,
        read: usize,
        written: usize,
    ) {
        let counters = &self.store[operation as usize];
        counters.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        counters.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
        let micros = nanos / 1_000;
        let bucket = LATENCY_BOUNDS_MICROS
            .iter()
            .position(|bound| micros < *bound || (micros == *bound && nanos % 1_000 == 0))
            .unwrap_or(LATENCY_BOUNDS_MICROS.len());
        counters.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        if read > 0 {
            self.bytes_read.fetch_add(read as u64, Ordering::Relaxed);
        }
        if written > 0 {
            self.bytes_written
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        {
            let (backend, name) = (self.backend, operation.name());
            ::metrics::histogram!("sessionstore_store_duration_seconds",
                "backend" => backend, "operation" => name)
            .record(elapsed.as_secs_f64());
            if failed {
                ::metrics::counter!("sessionstore_store_errors_total",
                    "backend" => backend, "operation" => name)
                .increment(1);
            }
            ::metrics::counter!("sessionstore_store_read_bytes_total", "backend" => backend)
                .increment(read as u64);
            ::metrics::counter!("sessionstore_store_written_bytes_total", "backend" => backend)
                .increment(written as u64);
        }
    }

    /// The counters as they are now.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let loads = self.loads.each_ref().map(get);
        let saves = self.saves.each_ref().map(get);
        Stats {
            loads_hit: loads[LoadOutcome::Hit as usize],
            loads_miss: loads[LoadOutcome::Miss as usize],
            loads_no_cookie: loads[LoadOutcome::NoCookie as usize],
            loads_invalid_cookie: loads[LoadOutcome::InvalidCookie as usize],
            loads_expired: loads[LoadOutcome::Expired as usize],
            loads_undecodable: loads[LoadOutcome::Undecodable as usize],
            saves_unchanged: saves[SaveKind::Unchanged as usize],
            saves_touched: saves[SaveKind::Touched as usize],
            saves_created: saves[SaveKind::Created as usize],
            saves_updated: saves[SaveKind::Updated as usize],
            saves_regenerated: saves[SaveKind::Regenerated as usize],
            saves_ended: saves[SaveKind::Ended as usize],
            saves_gave_up: saves[SaveKind::GaveUp as usize],
            conflict_retries: get(&self.conflict_retries),
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
            store: self.store.each_ref().map(|counters| OperationStats {
                calls: get(&counters.calls),
                errors: get(&counters.errors),
                latency_nanos: get(&counters.latency_nanos),
                latency_buckets: counters.buckets.each_ref().map(get),
            }),
        }
    }
}

impl Stats {
    /// Loads by outcome label (`hit`, `miss`, `no_cookie`, `invalid_cookie`, `expired`,
    /// `undecodable`).
    pub fn loads(&self) -> [(&'static str, u64); 6] {
        let counts = [
            self.loads_hit,
            self.loads_miss,
            self.loads_no_cookie,
            self.loads_invalid_cookie,
            self.loads_expired,
            self.loads_undecodable,
        ];
        std::array::from_fn(|n| (LOAD_OUTCOMES[n].1, counts[n]))
    }

    /// Saves by outcome label (`unchanged`, `touched`, `created`, `updated`, `regenerated`,
    /// `ended`, `gave_up`).
    pub fn saves(&self) -> [(&'static str, u64); 7] {
        let counts = [
            self.saves_unchanged,
            self.saves_touched,
            self.saves_created,
            self.saves_updated,
            self.saves_regenerated,
            self.saves_ended,
            self.saves_gave_up,
        ];
        std::array::from_fn(|n| (SAVE_KINDS[n].1, counts[n]))
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4), every series
    /// labelled `backend="…"`.
    pub fn to_prometheus(&self, backend: &str) -> String {
        let b = backend
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, series: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{{backend=\"{b}\"{labels}}} {value}");
            }
        };
        let by_outcome = |counts: &[(&str, u64)]| -> Vec<(String, f64)> {
            counts
                .iter()
                .map(|(label, n)| (format!(",outcome=\"{label}\""), *n as f64))
                .collect()
        };
        let single = |n: u64| [(String::new(), n as f64)];
        family(
            "sessionstore_loads_total",
            "counter",
            "Session loads by outcome.",
            &by_outcome(&self.loads()),
        );
        family(
            "sessionstore_saves_total",
            "counter",
            "Session saves by outcome.",
            &by_outcome(&self.saves()),
        );
        family(
            "sessionstore_conflict_retries_total",
            "counter",
            "Compare-and-set conflicts that made a save retry.",
            &single(self.conflict_retries),
        );
        family(
            "sessionstore_store_read_bytes_total",
            "counter",
            "Bytes of stored values read.",
            &single(self.bytes_read),
        );
        family(
            "sessionstore_store_written_bytes_total",
            "counter",
            "Bytes of values written to the store.",
            &single(self.bytes_written),
        );
        let by_operation = |value: &dyn Fn(&OperationStats) -> f64| -> Vec<(String, f64)> {
            Operation::ALL
                .iter()
                .zip(&self.store)
                .map(|(operation, stats)| {
                    (format!(",operation=\"{}\"", operation.name()), value(stats))
                })
                .collect()
        };
        family(
            "sessionstore_store_calls_total",
            "counter",
            "Store calls by operation.",
            &by_operation(&|stats| stats.calls as f64),
        );
        family(
            "sessionstore_store_errors_total",
            "counter",
            "Failed store calls by operation.",
            &by_operation(&|stats| stats.errors as f64),
        );
        let _ = writeln!(
            out,
            "# HELP sessionstore_store_duration_seconds Store call latency by operation.\n\
             # TYPE sessionstore_store_duration_seconds histogram"
        );
        for (operation, stats) in Operation::ALL.iter().zip(&self.store) {
            let labels = format!("backend=\"{b}\",operation=\"{}\"", operation.name());
            let mut cumulative = 0;
            for (n, count) in stats.latency_buckets.iter().enumerate() {
                cumulative += count;
                let le = match LATENCY_BOUNDS_MICROS.get(n) {
                    Some(micros) => (*micros as f64 / 1e6).to_string(),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "sessionstore_store_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "sessionstore_store_duration_seconds_sum{{{labels}}} {}\n\
                 sessionstore_store_duration_seconds_count{{{labels}}} {}",
                stats.latency_nanos as f64 / 1e9,
                stats.calls
            );
        }
        out
    }
}

/// A store whose calls are counted and timed in a manager's [`Metrics`].
pub(crate) struct Metered {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Metered {
    /// Wraps `inner`, counting into `metrics`.
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Metered {
        Metered { inner, metrics }
    }

    /// Runs `call` as `operation`, counting it with the bytes `read` says it read and
    /// `written` it wrote.
    fn timed<T>(
        &self,
        operation: Operation,
        written: usize,
        read: impl Fn(&T) -> usize,
        call: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = call();
        let elapsed = started.elapsed();
        let bytes = result.as_ref().map_or(0, &read);
        let written = if result.is_ok() { written } else { 0 };
        self.metrics
            .called(operation, elapsed, result.is_err(), bytes, written);
        result
    }
}

fn conflict_bytes(outcome: &CasOutcome) -> usize {
    match outcome {
        CasOutcome::Conflict(Some(record)) => record.data.len(),
        _ => 0,
    }
}

impl Store for Metered {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        self.timed(
            Operation::Load,
            0,
            |record: &Option<Record>| record.as_ref().map_or(0, |r| r.data.len()),
            || self.inner.load(key),
        )
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        self.timed(
            Operation::Create,
            data.len(),
            |_| 0,
            || self.inner.create(key, data, ttl),
        )
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        self.timed(Operation::CompareAndSet, data.len(), conflict_bytes, || {
            self.inner.compare_and_set(key, expected, data, ttl)
        })
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        self.timed(Operation::CompareAndDelete, 0, conflict_bytes, || {
            self.inner.compare_and_delete(key, expected)
        })
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        self.timed(
            Operation::Set,
            data.len(),
            |_| 0,
            || self.inner.set(key, data, ttl),
        )
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.timed(Operation::Delete, 0, |_| 0, || self.inner.delete(key))
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.timed(Operation::Touch, 0, |_| 0, || self.inner.touch(key, ttl))
    }

    fn purge_expired(&self) -> Result<u64> {
        self.timed(Operation::Purge, 0, |_| 0, || self.inner.purge_expired())
    }

    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        self.inner.create_many(records)
    }

    fn list_keys(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<KeyPage> {
        self.inner.list_keys(prefix, cursor, limit)
    }
}
