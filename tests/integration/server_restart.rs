//! PostgreSQL, MariaDB and MongoDB (SecantusDB) going away and coming back, one call at a
//! time, on private servers (tests/net_servers): while the server is down, loads, saves
//! (compare-and-set and create) and purges fail soon with `Error::Store` naming the backend;
//! once it is back on the same port, the pool serves requests again and the data saved
//! before the stop is still there. tests/fault_injection.rs does the same under load.

#![cfg(any(feature = "postgres", feature = "mysql", feature = "mongodb"))]

use crate::net_servers;

use std::time::{Duration, Instant};

use net_servers::TempServer;
use sessionstore::{Config, Error, SaveOutcome, SessionManager};

fn cookie_of(outcome: SaveOutcome) -> String {
    let header = outcome.set_cookie.expect("a Set-Cookie header");
    header.split(';').next().expect("name=value").to_owned()
}

/// Runs sessions through the store at `url` while `server` goes away and comes back.
fn down_and_back(url: &str, backend: &str, server: &mut TempServer) {
    let manager = SessionManager::new(
        Config::builder_from_url(url)
            .and_then(|builder| builder.build())
            .expect("valid config"),
    )
    .expect("the store opens");
    let mut session = manager.load(None).unwrap();
    session.insert("user", "ann").unwrap();
    let cookie = cookie_of(manager.save(session).unwrap());
    let mut pending = manager.load(Some(&cookie)).unwrap();
    pending.insert("theme", "dark").unwrap();
    let mut fresh = manager.load(None).unwrap();
    fresh.insert("user", "bob").unwrap();

    server.stop();
    let started = Instant::now();
    let failures = [
        manager.load(Some(&cookie)).map(drop).unwrap_err(),
        manager.save(pending).map(drop).unwrap_err(),
        manager.save(fresh).map(drop).unwrap_err(),
        manager.purge_expired().map(drop).unwrap_err(),
    ];
    for error in failures {
        match &error {
            Error::Store {
                backend: named,
                message,
            } => {
                assert_eq!(*named, backend);
                assert!(!message.is_empty());
                assert!(
                    error.to_string().starts_with(&format!("{backend} store: ")),
                    "{error}"
                );
            }
            other => panic!("not a store error: {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failures come within the timeouts, took {:?}",
        started.elapsed()
    );

    server.start_again();
    let session = manager.load(Some(&cookie)).expect("served again");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann"),
        "the session saved before the stop survives"
    );
    let mut session = manager.load(None).unwrap();
    session.insert("user", "cy").unwrap();
    let cookie = cookie_of(manager.save(session).expect("saved again"));
    let session = manager.load(Some(&cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("cy")
    );
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_down_is_an_error_and_the_pool_recovers() {
    let mut server = TempServer::postgres();
    let url = format!("{}?pool_size=2&connect_timeout=2", server.url());
    down_and_back(&url, "postgres", &mut server);
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_down_is_an_error_and_the_pool_recovers() {
    let mut server = TempServer::mariadb();
    let url = format!("{}?pool_size=2&connect_timeout=2", server.url());
    down_and_back(&url, "mysql", &mut server);
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_down_is_an_error_and_the_client_recovers() {
    let mut server = TempServer::mongodb();
    let url = format!(
        "{}?serverSelectionTimeoutMS=1000&retryWrites=false",
        server.url()
    );
    down_and_back(&url, "mongodb", &mut server);
}
