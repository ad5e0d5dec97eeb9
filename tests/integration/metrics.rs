//! Metrics: known traffic gives exact counts (loads and saves by outcome, a forced conflict,
//! a save that gives up, a store outage), and the demo's `/metrics` scrape parses as
//! Prometheus text with the same counts.

use std::collections::HashMap;

use sessionstore::metrics::{Operation, Stats};
use sessionstore::store::StoreConfig;
use sessionstore::{Config, SessionManager};

use super::common::{cookie_pair, request};
use super::net_servers::TempServer;

fn manager(store: StoreConfig, max_attempts: u32) -> SessionManager {
    let config = Config::builder(store)
        .secret("metrics test")
        .max_attempts(max_attempts)
        .metrics(true)
        .build()
        .unwrap();
    SessionManager::new(config).unwrap()
}

fn calls(stats: &Stats, operation: Operation) -> u64 {
    stats.store[operation as usize].calls
}

/// Counts nothing, and reports nothing, unless asked.
#[test]
fn off_by_default() {
    let manager =
        SessionManager::new(Config::builder(StoreConfig::Memory).build().unwrap()).unwrap();
    request(&manager, None, |session| session.insert("n", 1).unwrap());
    assert_eq!(manager.stats(), None);
}

#[test]
fn known_traffic_gives_exact_counts() {
    let manager = manager(StoreConfig::Memory, 1000);
    // A new session: no cookie, created.
    let cookie = cookie_pair(&request(&manager, None, |session| {
        session.insert("n", 1).unwrap()
    }));
    // Two hits: one unchanged (renewed a minute ago at most: no touch), one updated.
    request(&manager, Some(&cookie), |_| {});
    request(&manager, Some(&cookie), |session| {
        session.insert("n", 2).unwrap()
    });
    // A forced conflict: two loads, two saves; the second retries once.
    let mut first = manager.load(Some(&cookie)).unwrap();
    let mut second = manager.load(Some(&cookie)).unwrap();
    first.insert("a", 1).unwrap();
    second.insert("b", 2).unwrap();
    manager.save(first).unwrap();
    manager.save(second).unwrap();
    // A regeneration, then the old cookie misses; a forged cookie is invalid.
    let regenerated = cookie_pair(&request(&manager, Some(&cookie), |session| {
        session.regenerate()
    }));
    assert!(manager.load(Some(&cookie)).unwrap().is_new());
    assert!(
        manager
            .load(Some("session=forged.cookie"))
            .unwrap()
            .is_new()
    );
    // The end.
    request(&manager, Some(&regenerated), |session| session.destroy());

    let stats = manager.stats().unwrap();
    let loads: HashMap<_, _> = stats.loads().into_iter().collect();
    let expected_loads = HashMap::from([
        ("hit", 6),
        ("miss", 1),
        ("no_cookie", 1),
        ("invalid_cookie", 1),
        ("expired", 0),
        ("undecodable", 0),
    ]);
    assert_eq!(loads, expected_loads);
    let saves: HashMap<_, _> = stats.saves().into_iter().collect();
    let expected_saves = HashMap::from([
        ("unchanged", 1),
        ("touched", 0),
        ("created", 1),
        ("updated", 3),
        ("regenerated", 1),
        ("ended", 1),
        ("gave_up", 0),
    ]);
    assert_eq!(saves, expected_saves);
    assert_eq!(stats.conflict_retries, 1);
    // Store calls: a load per hit or miss; creates of the new and the regenerated session;
    // compare-and-sets of the three updates, one of them twice; the regeneration's
    // compare-and-delete; the end's delete.
    assert_eq!(calls(&stats, Operation::Load), 7);
    assert_eq!(calls(&stats, Operation::Create), 2);
    assert_eq!(calls(&stats, Operation::CompareAndSet), 4);
    assert_eq!(calls(&stats, Operation::CompareAndDelete), 1);
    assert_eq!(calls(&stats, Operation::Delete), 1);
    assert_eq!(calls(&stats, Operation::Touch), 0);
    for operation in stats.store {
        assert_eq!(operation.errors, 0);
        assert_eq!(
            operation.latency_buckets.iter().sum::<u64>(),
            operation.calls
        );
    }
    assert!(stats.bytes_read > 0 && stats.bytes_written > 0);
}

/// A save that conflicts on its only attempt gives up, and says so in the counts.
#[test]
fn a_save_that_gives_up_is_counted() {
    let manager = manager(StoreConfig::Memory, 1);
    let cookie = cookie_pair(&request(&manager, None, |session| {
        session.insert("n", 1).unwrap()
    }));
    let mut first = manager.load(Some(&cookie)).unwrap();
    let mut second = manager.load(Some(&cookie)).unwrap();
    first.insert("n", 2).unwrap();
    second.insert("n", 3).unwrap();
    manager.save(first).unwrap();
    assert!(matches!(
        manager.save(second),
        Err(sessionstore::Error::Contention { attempts: 1 })
    ));
    let stats = manager.stats().unwrap();
    assert_eq!((stats.saves_updated, stats.saves_gave_up), (1, 1));
    assert_eq!(stats.conflict_retries, 1);
}

/// With the store down, a load fails and counts as a store error, not as a load.
#[test]
fn a_store_outage_counts_as_store_errors() {
    let mut server = TempServer::redis();
    let url = format!("{}?timeout=1&connect_timeout=1", server.url());
    let config = Config::builder_from_url(&url)
        .unwrap()
        .secret("s")
        .metrics(true);
    let manager = SessionManager::new(config.build().unwrap()).unwrap();
    let cookie = cookie_pair(&request(&manager, None, |session| {
        session.insert("n", 1).unwrap()
    }));
    server.stop();
    assert!(manager.load(Some(&cookie)).is_err());
    let mut fresh = manager.load(None).unwrap();
    fresh.insert("n", 1).unwrap();
    assert!(manager.save(fresh).is_err());
    let stats = manager.stats().unwrap();
    let load = stats.store[Operation::Load as usize];
    let create = stats.store[Operation::Create as usize];
    assert_eq!((load.calls, load.errors), (1, 1));
    assert_eq!((create.calls, create.errors), (2, 1));
    assert_eq!(stats.loads_hit + stats.loads_miss, 0);
    assert_eq!((stats.loads_no_cookie, stats.saves_created), (2, 1));
}

/// The text format parses, with the counts of the snapshot.
#[test]
fn the_prometheus_text_parses() {
    let manager = manager(StoreConfig::Memory, 1000);
    let cookie = cookie_pair(&request(&manager, None, |session| {
        session.insert("n", 1).unwrap()
    }));
    request(&manager, Some(&cookie), |_| {});
    let text = manager.stats().unwrap().to_prometheus("memory");
    let samples = parse(&text);
    assert_eq!(
        samples[r#"sessionstore_loads_total{backend="memory",outcome="hit"}"#],
        1.0
    );
    assert_eq!(
        samples[r#"sessionstore_saves_total{backend="memory",outcome="created"}"#],
        1.0
    );
    assert_eq!(
        samples[r#"sessionstore_store_duration_seconds_count{backend="memory",operation="load"}"#],
        1.0
    );
}

/// Samples of a Prometheus text scrape, by `name{label="value",...}` (labels sorted; a
/// histogram's buckets as `name_bucket{...,le="..."}`).
fn parse(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let mut samples = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        labels.sort();
        let labels: Vec<String> = labels
            .iter()
            .map(|(name, value)| format!("{name}=\"{value}\""))
            .collect();
        let name = format!("{}{{{}}}", sample.metric, labels.join(","));
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => {
                samples.insert(name, v);
            }
            prometheus_parse::Value::Histogram(buckets) => {
                for bucket in buckets {
                    samples.insert(format!("{name}[le={}]", bucket.less_than), bucket.count);
                }
            }
            prometheus_parse::Value::Summary(_) => {}
        }
    }
    samples
}

/// The `/metrics` of the demo and of the C server, scraped after known requests.
#[cfg(all(feature = "rouille", feature = "sqlite", feature = "capi"))]
#[test]
fn the_demo_and_the_c_server_serve_metrics() {
    use super::common::web;
    type Start = dyn Fn(&[&str]) -> web::HttpServer;
    let demo = |args: &[&str]| web::demo(args);
    let c_server = |args: &[&str]| web::c_server(args);
    let servers: [&Start; 2] = [&demo, &c_server];
    for start in servers {
        let dir = tempfile::tempdir().unwrap();
        let store = web::sqlite_store(&dir, "s.db");
        let server = start(&["--store", &store]);
        let browser = web::browser();
        web::get(&browser, &server.url("/visit"));
        web::get(&browser, &server.url("/visit"));
        web::get(&browser, &server.url("/whoami"));
        let text = ureq::get(&server.url("/metrics"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        let samples = parse(&text);
        let count = |name: &str, outcome: &str| {
            samples[&format!("{name}{{backend=\"sqlite\",outcome=\"{outcome}\"}}")]
        };
        assert_eq!(
            count("sessionstore_loads_total", "no_cookie"),
            1.0,
            "{text}"
        );
        assert_eq!(count("sessionstore_loads_total", "hit"), 2.0);
        assert_eq!(count("sessionstore_saves_total", "created"), 1.0);
        assert_eq!(count("sessionstore_saves_total", "updated"), 1.0);
        assert_eq!(count("sessionstore_saves_total", "unchanged"), 1.0);
        let loads =
            r#"sessionstore_store_duration_seconds_count{backend="sqlite",operation="load"}"#;
        assert_eq!(samples[loads], 2.0);
    }
}
