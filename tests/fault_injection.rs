//! Fault injection, one test per network store: while 4 threads run request cycles (load,
//! modify or create, save) on sessions of their own, the test kills the store's server (a
//! private one from tests/net_servers, on its own loopback port; PostgreSQL gets its
//! immediate shutdown, SIGQUIT; of a Redis Cluster, one node of three), keeps it down for
//! 2 s and starts it again on the same port with the same files. Asserted:
//!
//! - no call panics (each call runs under `catch_unwind`, each thread is joined);
//! - every failed call is an `Error::Store` naming the store;
//! - no save that returned success is missing: each thread keeps, per session, the value of
//!   its last successful save (and the values of failed saves since, which the server may or
//!   may not have applied) and checks every load against it, and all its sessions once the
//!   run is over. The servers are made durable (Redis: append-only file fsynced before each
//!   reply; SecantusDB: on disk, synced at each commit; PostgreSQL, MariaDB: their logs).
//!   Memcached cannot persist: there, sessions saved before the restart may come back
//!   empty (never stale or half-written), and every save after it must survive;
//! - calls succeed again within 2 s of the server's return (port open; for PostgreSQL,
//!   sessions accepted; for a Redis Cluster node, its `cluster_state:ok`), in every thread,
//!   and no call started more than 2 s after the return fails.
//!
//! The stores are configured to give up on a call after 1 s (`connect_timeout`,
//! `pool_timeout`, MongoDB's `serverSelectionTimeoutMS`), so that every thread meets the
//! outage as errors rather than waits. With the default 5 s, calls wait through a 2 s
//! outage and succeed after it; r2d2 retries a failed connect with a backoff capped at
//! `pool_timeout` / 2, which bounds the recovery time.
//!
//! The figures of each run are printed (`cargo nextest run --no-capture -E
//! 'binary(fault_injection)'`).

#![cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "postgres",
    feature = "mysql",
    feature = "mongodb"
))]

mod net_servers;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use net_servers::TempServer;
use sessionstore::{Config, Error, Session, SessionManager};

/// Threads running request cycles.
const THREADS: u64 = 4;
/// Sessions each thread keeps.
const SESSIONS: usize = 8;
/// Load before the stop.
const WARM_UP: Duration = Duration::from_secs(1);
/// How long the server stays down.
const DOWN: Duration = Duration::from_secs(2);
/// The promise: calls succeed again this soon after the server is back.
const RECOVERY: Duration = Duration::from_secs(2);
/// Load after the server is back (RECOVERY and then some).
const AFTER: Duration = Duration::from_secs(3);
/// A pause between cycles, so that four threads leave the server and its restart room on a
/// two-core machine.
const PACE: Duration = Duration::from_millis(5);

/// When the server went down and when it was back.
#[derive(Default)]
struct Timeline {
    down: OnceLock<Instant>,
    back: OnceLock<Instant>,
    over: AtomicBool,
}

/// One session a thread owns.
struct Tracked {
    cookie: String,
    /// The value of its last successful save, and when that save returned.
    confirmed: u64,
    confirmed_at: Instant,
    /// Values of saves that failed since: the server may have applied them.
    uncertain: Vec<u64>,
}

impl Tracked {
    fn accepts(&self, value: u64) -> bool {
        value == self.confirmed || self.uncertain.contains(&value)
    }
}

/// A request cycle's end and whether all its calls succeeded.
struct Cycle {
    started: Instant,
    ended: Instant,
    ok: bool,
}

/// What one thread saw.
#[derive(Default)]
struct ThreadReport {
    cycles: Vec<Cycle>,
    /// Failed calls: how many, the longest, and their messages by count.
    failures: u64,
    slowest_failure: Duration,
    messages: BTreeMap<String, u64>,
    /// Problems: panics, errors of the wrong kind, lost or stale sessions.
    violations: Vec<String>,
    /// Sessions found empty after the restart of a store that cannot persist.
    forgotten: u64,
    /// Sessions checked at the end with their last saved value.
    verified: u64,
}

impl ThreadReport {
    /// Checks a failed call's error: `Error::Store` naming `backend`.
    fn failed(&mut self, what: &str, backend: &str, error: &Error, took: Duration) {
        self.failures += 1;
        self.slowest_failure = self.slowest_failure.max(took);
        match error {
            Error::Store {
                backend: named,
                message,
            } if *named == backend
                && !message.is_empty()
                && error.to_string().starts_with(&format!("{backend} store: ")) =>
            {
                *self.messages.entry(shorten(message)).or_default() += 1;
            }
            other => self
                .violations
                .push(format!("{what}: not a {backend} store error: {other:?}")),
        }
    }
}

/// A message with digits and long ids blanked, so that similar failures count together.
fn shorten(message: &str) -> String {
    let blanked: String = message
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    blanked.chars().take(120).collect()
}

/// Runs `f`, a call into the library, catching a panic.
fn call<T>(
    report: &mut ThreadReport,
    what: &str,
    f: impl FnOnce() -> sessionstore::Result<T>,
) -> Option<(sessionstore::Result<T>, Duration)> {
    let started = Instant::now();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => Some((result, started.elapsed())),
        Err(_) => {
            report.violations.push(format!("{what} panicked"));
            None
        }
    }
}

/// The store under test and what it promises.
struct Target<'a> {
    name: &'static str,
    /// The backend name errors carry.
    backend: &'static str,
    url: String,
    /// Whether the server keeps its data across a restart (all but memcached).
    persists: bool,
    /// Whether the outage is partial (one Cluster node of three): then a thread whose
    /// sessions all live on the other nodes sees no failure.
    partial: bool,
    /// Stops the server.
    stop: Box<dyn FnOnce() + 'a>,
    /// Starts it again and returns once it serves.
    start: Box<dyn FnOnce() + 'a>,
}

/// What every thread shares.
struct Run<'a> {
    manager: &'a SessionManager,
    /// The backend name errors carry.
    backend: &'a str,
    /// Whether the server keeps its data across a restart.
    persists: bool,
    timeline: &'a Timeline,
}

/// One thread's request cycles until the run is over, then the check of its sessions.
fn worker(run: &Run, thread: u64) -> ThreadReport {
    let Run {
        manager,
        backend,
        timeline,
        ..
    } = *run;
    let mut report = ThreadReport::default();
    let mut sessions: Vec<Tracked> = Vec::new();
    let mut seq = 0u64;
    while !timeline.over.load(Ordering::SeqCst) {
        seq += 1;
        let value = thread * 1_000_000 + seq;
        let started = Instant::now();
        let index = (sessions.len() >= SESSIONS
            || (!seq.is_multiple_of(4) && !sessions.is_empty()))
        .then(|| seq as usize % sessions.len());
        let ok = cycle(run, &mut report, &mut sessions, index, value);
        report.cycles.push(Cycle {
            started,
            ended: Instant::now(),
            ok,
        });
        thread::sleep(PACE);
    }
    // The run is over and the server has been back for a while: every session this thread
    // saved holds its last saved value.
    for tracked in &sessions {
        let Some((result, took)) = call(&mut report, "final load", || {
            manager.load(Some(&tracked.cookie))
        }) else {
            continue;
        };
        match result {
            Ok(session) if session.is_new() => report.violations.push(format!(
                "final load: session saved with {} is missing",
                tracked.confirmed
            )),
            Ok(session) => match session.get::<u64>("v") {
                Ok(Some(v)) if tracked.accepts(v) => report.verified += 1,
                other => report.violations.push(format!(
                    "final load: {other:?}, last saved {} (then failed {:?})",
                    tracked.confirmed, tracked.uncertain
                )),
            },
            Err(error) => report.failed("final load", backend, &error, took),
        }
    }
    report
}

/// One request: load (a tracked session, or none for a new one), set `v`, save. Returns
/// whether every call succeeded.
fn cycle(
    run: &Run,
    report: &mut ThreadReport,
    sessions: &mut Vec<Tracked>,
    index: Option<usize>,
    value: u64,
) -> bool {
    let Run {
        manager,
        backend,
        persists,
        timeline,
    } = *run;
    let cookie = index.map(|i| sessions[i].cookie.clone());
    let Some((loaded, took)) = call(report, "load", || manager.load(cookie.as_deref())) else {
        return false;
    };
    let mut session: Session = match loaded {
        Ok(session) => session,
        Err(error) => {
            report.failed("load", backend, &error, took);
            return false;
        }
    };
    if let Some(i) = index {
        let tracked = &mut sessions[i];
        if session.is_new() {
            let before_restart = timeline
                .back
                .get()
                .is_some_and(|back| tracked.confirmed_at < *back);
            if !persists && before_restart {
                // Memcached lost it with the restart; the next save makes it anew.
                report.forgotten += 1;
                sessions.remove(i);
            } else {
                report.violations.push(format!(
                    "load: session saved with {} is missing",
                    tracked.confirmed
                ));
                sessions.remove(i);
            }
            return true;
        }
        match session.get::<u64>("v") {
            Ok(Some(v)) if tracked.accepts(v) => {
                tracked.confirmed = v;
                tracked.uncertain.clear();
            }
            other => {
                report.violations.push(format!(
                    "load: {other:?}, last saved {} (then failed {:?})",
                    tracked.confirmed, tracked.uncertain
                ));
                return false;
            }
        }
    }
    session.insert("v", value).expect("an integer is a value");
    let Some((saved, took)) = call(report, "save", || manager.save(session)) else {
        return false;
    };
    match (saved, index) {
        (Ok(outcome), _) if outcome.ended => {
            report
                .violations
                .push("save: the session ended, nobody deleted it".to_owned());
            false
        }
        (Ok(_), Some(i)) => {
            sessions[i].confirmed = value;
            sessions[i].confirmed_at = Instant::now();
            sessions[i].uncertain.clear();
            true
        }
        (Ok(outcome), None) => {
            let header = outcome.set_cookie.expect("a new session sets its cookie");
            sessions.push(Tracked {
                cookie: header.split(';').next().expect("name=value").to_owned(),
                confirmed: value,
                confirmed_at: Instant::now(),
                uncertain: Vec::new(),
            });
            true
        }
        (Err(error), index) => {
            report.failed("save", backend, &error, took);
            if let Some(i) = index {
                sessions[i].uncertain.push(value);
            }
            false
        }
    }
}

/// Runs the 4 threads against `target` through warm-up, outage and recovery, prints the
/// figures and asserts them.
fn fault_injection(target: Target) {
    let manager = SessionManager::new(
        Config::builder_from_url(&target.url)
            .and_then(|builder| builder.secret("fault injection").build())
            .expect("valid config"),
    )
    .unwrap_or_else(|e| panic!("{}: {e:?}", target.name));
    let timeline = Timeline::default();
    let (stop, start) = (target.stop, target.start);
    let run = Run {
        manager: &manager,
        backend: target.backend,
        persists: target.persists,
        timeline: &timeline,
    };
    let reports: Vec<ThreadReport> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|n| {
                let run = &run;
                scope.spawn(move || worker(run, n))
            })
            .collect();
        thread::sleep(WARM_UP);
        timeline.down.set(Instant::now()).expect("once");
        stop();
        thread::sleep(DOWN);
        start();
        timeline.back.set(Instant::now()).expect("once");
        thread::sleep(AFTER);
        timeline.over.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .map(|worker| worker.join().expect("no thread panicked"))
            .collect()
    });

    let down = *timeline.down.get().expect("stopped");
    let back = *timeline.back.get().expect("restarted");
    let since_back = |at: Instant| at.saturating_duration_since(back);
    println!(
        "{}: down {:?} (stop and start included)",
        target.name,
        back - down
    );
    let mut messages = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, report) in reports.iter().enumerate() {
        let failed_during = report
            .cycles
            .iter()
            .filter(|c| !c.ok && c.started > down && c.started < back)
            .count();
        let ok_during = report
            .cycles
            .iter()
            .filter(|c| c.ok && c.started > down && c.ended < back)
            .count();
        let first_success = report
            .cycles
            .iter()
            .find(|c| c.ok && c.ended >= back)
            .map(|c| since_back(c.ended));
        let last_failure = report
            .cycles
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.ended)
            .max()
            .filter(|ended| *ended > back)
            .map(since_back);
        let late_failures = report
            .cycles
            .iter()
            .filter(|c| !c.ok && c.started > back + RECOVERY)
            .count();
        println!(
            "  thread {n}: {} cycles ({} ok), {} failed calls (slowest {:?}), while down \
             {failed_during} failed and {ok_during} ok cycles, first success \
             {first_success:?} after the return, last failure {last_failure:?} after it, {} \
             sessions verified, {} forgotten",
            report.cycles.len(),
            report.cycles.iter().filter(|c| c.ok).count(),
            report.failures,
            report.slowest_failure,
            report.verified,
            report.forgotten,
        );
        for (message, count) in &report.messages {
            *messages.entry(message.clone()).or_insert(0) += count;
        }
        problems.extend(report.violations.iter().map(|v| format!("thread {n}: {v}")));
        match first_success {
            Some(after) if after <= RECOVERY => {}
            other => problems.push(format!(
                "thread {n}: first success {other:?} after the return, above {RECOVERY:?}"
            )),
        }
        if late_failures > 0 {
            problems.push(format!(
                "thread {n}: {late_failures} cycles started more than {RECOVERY:?} after \
                 the return failed"
            ));
        }
        if report.verified == 0 {
            problems.push(format!("thread {n}: no session verified"));
        }
        if failed_during == 0 && !target.partial {
            problems.push(format!(
                "thread {n}: no call failed while the server was down"
            ));
        }
    }
    let failures: u64 = reports.iter().map(|r| r.failures).sum();
    if failures == 0 {
        problems.push("no call failed: the outage went unnoticed".to_owned());
    }
    for (message, count) in &messages {
        println!("  {count} x {message}");
    }
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        target.name,
        problems.join("\n")
    );
}

#[cfg(feature = "redis")]
#[test]
fn redis_server_killed_and_restarted() {
    let server = std::cell::RefCell::new(TempServer::redis_durable());
    let url = format!(
        "{}?connect_timeout=1&pool_timeout=1&timeout=1",
        server.borrow().url()
    );
    fault_injection(Target {
        name: "redis",
        backend: "redis",
        url,
        persists: true,
        partial: false,
        stop: Box::new(|| server.borrow_mut().stop()),
        start: Box::new(|| server.borrow_mut().start_again()),
    });
}

/// One node of three is killed: the common partial outage. The sessions on the other two
/// keep working meanwhile; those on the killed node fail until it is back and serving
/// (a restarted master waits 2 s for the others' news before it serves, by Redis's design,
/// so its return is its `cluster_state:ok`). Killing all three would be the single server's
/// test again.
#[cfg(feature = "redis")]
#[test]
fn redis_cluster_node_killed_and_restarted() {
    let cluster = std::cell::RefCell::new(net_servers::TempCluster::start());
    let url = format!(
        "{}?connect_timeout=1&pool_timeout=1&timeout=1",
        cluster.borrow().url()
    );
    fault_injection(Target {
        name: "redis cluster",
        backend: "redis",
        url,
        persists: true,
        partial: true,
        stop: Box::new(|| cluster.borrow_mut().node(0).stop()),
        start: Box::new(|| {
            let started = Instant::now();
            cluster.borrow_mut().node(0).start_again();
            let port_open = started.elapsed();
            cluster.borrow().wait_until_serving(0);
            println!(
                "redis cluster: node 0's port open {port_open:?} after its start, serving {:?} \
                 after",
                started.elapsed()
            );
        }),
    });
}

#[cfg(feature = "memcached")]
#[test]
fn memcached_killed_and_restarted() {
    let server = std::cell::RefCell::new(TempServer::memcached());
    let url = format!(
        "{}?connect_timeout=1&pool_timeout=1&timeout=1",
        server.borrow().url()
    );
    fault_injection(Target {
        name: "memcached",
        backend: "memcached",
        url,
        persists: false,
        partial: false,
        stop: Box::new(|| server.borrow_mut().stop()),
        start: Box::new(|| server.borrow_mut().start_again()),
    });
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_shut_down_immediately_and_restarted() {
    let server = std::cell::RefCell::new(TempServer::postgres());
    let url = format!("{}?connect_timeout=1&pool_timeout=1", server.borrow().url());
    fault_injection(Target {
        name: "postgres",
        backend: "postgres",
        url,
        persists: true,
        partial: false,
        stop: Box::new(|| server.borrow_mut().stop()),
        start: Box::new(|| server.borrow_mut().start_again()),
    });
}

#[cfg(feature = "mysql")]
#[test]
fn mariadb_killed_and_restarted() {
    let server = std::cell::RefCell::new(TempServer::mariadb());
    let url = format!("{}?connect_timeout=1&pool_timeout=1", server.borrow().url());
    fault_injection(Target {
        name: "mariadb",
        backend: "mysql",
        url,
        persists: true,
        partial: false,
        stop: Box::new(|| server.borrow_mut().stop()),
        start: Box::new(|| server.borrow_mut().start_again()),
    });
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_killed_and_restarted() {
    let server = std::cell::RefCell::new(TempServer::mongodb());
    let url = format!(
        "{}?retryWrites=false&serverSelectionTimeoutMS=1000&pool_timeout=1",
        server.borrow().url()
    );
    fault_injection(Target {
        name: "mongodb (SecantusDB)",
        backend: "mongodb",
        url,
        persists: true,
        partial: false,
        stop: Box::new(|| server.borrow_mut().stop()),
        start: Box::new(|| server.borrow_mut().start_again()),
    });
}
