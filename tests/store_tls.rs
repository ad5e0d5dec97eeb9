//! TLS to PostgreSQL, MariaDB and MongoDB (SecantusDB), each a server of the test's own with
//! TLS on (PostgreSQL and SecantusDB take TLS connections only), with certificates made by the test (net_servers/certs.rs:
//! a CA, a server certificate for `localhost` only, another CA). For each store: a session
//! round trip over TLS with the certificate verified; a certificate from the wrong CA, or for
//! another host name under `verify-full`, refused; a server without TLS refused with an error
//! naming the setting.

#![cfg(all(feature = "postgres", feature = "mysql", feature = "mongodb"))]

mod net_servers;

use net_servers::TempServer;
use net_servers::certs::TestCerts;
use sessionstore::{Config, Error, SessionManager};

/// A manager on `url`, or the error that opening the store gave.
fn open(url: &str) -> sessionstore::Result<SessionManager> {
    SessionManager::new(
        Config::builder_from_url(url)
            .and_then(|builder| builder.secret("tls test secret").build())
            .expect("valid config"),
    )
}

/// A session saved, loaded and saved again (compare-and-set) through `manager`.
fn round_trip(manager: &SessionManager) {
    let mut session = manager.load(None).unwrap();
    session.insert("user", "ann").unwrap();
    let cookie = manager.save(session).unwrap().set_cookie.expect("a cookie");
    let cookie = cookie.split(';').next().unwrap();
    let mut session = manager.load(Some(cookie)).unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ann")
    );
    session.insert("visits", 2).unwrap();
    manager.save(session).unwrap();
    let session = manager.load(Some(cookie)).unwrap();
    assert_eq!(session.get::<i64>("visits").unwrap(), Some(2));
}

/// The message of a store error (a refused certificate), checked to mention `what`.
fn refused(result: sessionstore::Result<SessionManager>, what: &str) -> String {
    match result {
        Err(Error::Store { message, .. }) => {
            let text = message.to_string();
            assert!(text.to_lowercase().contains(what), "{text}");
            text
        }
        Err(other) => panic!("expected a store error mentioning {what:?}, got {other}"),
        Ok(_) => panic!("connected although {what} should have been refused"),
    }
}

/// A configuration error naming `key`.
fn config_error(result: sessionstore::Result<SessionManager>, key: &str) {
    match result {
        Err(Error::Config {
            key: named,
            message,
        }) => assert_eq!(named, key, "{message}"),
        Err(other) => panic!("expected a configuration error naming {key}, got {other}"),
        Ok(_) => panic!("connected without TLS"),
    }
}

#[test]
fn postgres_over_tls() {
    let certs = TestCerts::generate();
    let server = TempServer::postgres_tls(&certs);
    let port = server.port();
    let (ca, other_ca) = (certs.ca(), certs.other_ca());
    let url =
        |host: &str, query: String| format!("postgres://postgres@{host}:{port}/postgres?{query}");

    let verified = open(&url(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .expect("verify-full with the right CA and host name");
    round_trip(&verified);
    // require: encrypted, the certificate unchecked.
    round_trip(&open(&url("127.0.0.1", "sslmode=require".into())).expect("require"));
    // verify-ca: any host name.
    open(&url(
        "127.0.0.1",
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .expect("verify-ca ignores the host name");
    // The server takes TLS connections only: disable is refused by the server.
    assert!(open(&url("127.0.0.1", "sslmode=disable".into())).is_err());

    let text = refused(
        open(&url(
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        )),
        "certificate",
    );
    assert!(text.contains("verify-full"), "{text}");
    refused(
        open(&url(
            "localhost",
            format!("sslmode=verify-ca&sslrootcert={}", other_ca.display()),
        )),
        "certificate",
    );

    let plain = TempServer::postgres();
    config_error(open(&format!("{}?sslmode=require", plain.url())), "sslmode");
    config_error(
        open(&format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            plain.url(),
            ca.display()
        )),
        "sslmode",
    );
}

#[test]
fn mariadb_over_tls() {
    let certs = TestCerts::generate();
    let server = TempServer::mariadb_tls(&certs);
    let port = server.port();
    let (ca, other_ca) = (certs.ca(), certs.other_ca());
    let url = |host: &str, query: String| format!("mysql://root@{host}:{port}/mysql?{query}");

    round_trip(
        &open(&url(
            "localhost",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        ))
        .expect("verify-full with the right CA and host name"),
    );
    round_trip(&open(&url("127.0.0.1", "sslmode=require".into())).expect("require"));
    open(&url(
        "127.0.0.1",
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .expect("verify-ca ignores the host name");
    let text = refused(
        open(&url(
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        )),
        "verify-full",
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    refused(
        open(&url(
            "localhost",
            format!("sslmode=verify-ca&sslrootcert={}", other_ca.display()),
        )),
        "certificate",
    );

    // The shared test MariaDB has no TLS.
    let plain = std::env::var("SESSIONSTORE_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    config_error(open(&format!("{plain}?sslmode=require")), "sslmode");
}

#[test]
fn mongodb_over_tls() {
    let certs = TestCerts::generate();
    let server = TempServer::mongodb_tls(&certs);
    let port = server.port();
    let (ca, other_ca) = (certs.ca(), certs.other_ca());
    // One server, no replica-set discovery: SecantusDB announces its members as 127.0.0.1,
    // a name the certificate (for localhost) does not hold.
    let quick = "serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&directConnection=true";
    let url = |host: &str, query: String| format!("mongodb://{host}:{port}/?{quick}&{query}");

    round_trip(
        &open(&url(
            "localhost",
            format!("tls=true&tlsCAFile={}", ca.display()),
        ))
        .expect("TLS with the right CA and host name"),
    );
    let text = refused(
        open(&url(
            "127.0.0.1",
            format!("tls=true&tlsCAFile={}", ca.display()),
        )),
        "tls",
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    refused(
        open(&url(
            "localhost",
            format!("tls=true&tlsCAFile={}", other_ca.display()),
        )),
        "certificate",
    );

    // The shared test SecantusDB speaks no TLS.
    let plain = std::env::var("SESSIONSTORE_MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".to_owned());
    let separator = if plain.contains('?') { '&' } else { '?' };
    let text = refused(
        open(&format!(
            "{plain}{separator}{quick}&tls=true&tlsCAFile={}",
            ca.display()
        )),
        "tls",
    );
    eprintln!("tls=true against a server without TLS: {text}");
}
