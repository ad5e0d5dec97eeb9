//! `rediss://`: the Redis store over TLS, against a redis-server of the test's own that speaks
//! only TLS, with a certificate from a CA made for the test. The store trusts the system's
//! root certificates; `SSL_CERT_FILE` points them at the test CA. In a test binary of its
//! own, so that setting the variable races with no other test.

#![cfg(feature = "redis")]

mod net_servers;

use std::time::Duration;

use net_servers::TempServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sessionstore::store::redis::{RedisOptions, RedisStore};
use sessionstore::store::{CasOutcome, Store};

#[test]
fn rediss_urls_connect_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, server_cert.pem()).unwrap();
    std::fs::write(&key_file, server_key.serialize_pem()).unwrap();
    // SAFETY: this binary's only test, before any other thread of it exists.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca_file) };

    let server = TempServer::redis_tls(&cert_file, &key_file);
    let store = RedisStore::open(&RedisOptions::new(format!(
        "rediss://localhost:{}/0",
        server.port()
    )))
    .expect("TLS connection verified with the test CA");
    let ttl = Duration::from_secs(60);
    assert!(store.create("session:tls", b"\x81\xa1a\x01", ttl).unwrap());
    let record = store.load("session:tls").unwrap().unwrap();
    assert_eq!(&record.data[..], b"\x81\xa1a\x01");
    assert_eq!(
        store
            .compare_and_set("session:tls", &record, b"\x81\xa1a\x02", ttl)
            .unwrap(),
        CasOutcome::Stored
    );

    // Without TLS, the same server is not reachable.
    let plain = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(500),
        ..RedisOptions::new(format!("redis://localhost:{}/0", server.port()))
    };
    assert!(RedisStore::open(&plain).is_err());
}
