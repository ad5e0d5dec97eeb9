//! The three ways to configure produce the same config; bad values are errors naming the key.

#![cfg(all(feature = "memory", feature = "filesystem", feature = "sqlite"))]

use std::time::Duration;

use sessionstore::codec::Format;
use sessionstore::store::StoreConfig;
use sessionstore::store::file::FileOptions;
use sessionstore::store::sqlite::SqliteOptions;
use sessionstore::{Config, CookieMode, Error, SameSite};

fn key_of(error: Error) -> String {
    match error {
        Error::Config { key, .. } => key,
        other => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn filesystem_three_ways_agree() {
    let mut options = FileOptions::new("/tmp/flask_session");
    options.threshold = 100;
    options.mode = 0o640;
    let built = Config::builder(StoreConfig::Filesystem(options))
        .secret("dev-secret")
        .cookie_mode(CookieMode::Flask)
        .key_prefix("app:")
        .permanent(false)
        .idle_lifetime(Duration::from_secs(3600))
        .format(Format::Json)
        .cleanup_every(50)
        .refresh_each_request(false)
        .cookie_name("sid")
        .cookie_same_site(Some(SameSite::Strict))
        .cookie_secure(true)
        .cookie_partitioned(true)
        .cookie_http_only(false)
        .cookie_domain("example.org")
        .cookie_path("/app")
        .build()
        .unwrap();
    let from_url = Config::builder_from_url(
        "file:///tmp/flask_session?threshold=100&mode=0640&prefix=app:&permanent=false\
         &lifetime=3600&format=json&cleanup_every=50&refresh=false&cookie_name=sid",
    )
    .unwrap()
    .secret("dev-secret")
    .cookie_mode(CookieMode::Flask)
    .cookie_same_site(Some(SameSite::Strict))
    .cookie_secure(true)
    .cookie_partitioned(true)
    .cookie_http_only(false)
    .cookie_domain("example.org")
    .cookie_path("/app")
    .build()
    .unwrap();
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "filesystem"),
        ("SESSION_FILE_DIR", "/tmp/flask_session"),
        ("SESSION_FILE_THRESHOLD", "100"),
        ("SESSION_FILE_MODE", "0o640"),
        ("SESSION_USE_SIGNER", "True"),
        ("SECRET_KEY", "dev-secret"),
        ("SESSION_KEY_PREFIX", "app:"),
        ("SESSION_PERMANENT", "False"),
        ("PERMANENT_SESSION_LIFETIME", "3600"),
        ("SESSION_SERIALIZATION_FORMAT", "json"),
        ("SESSION_CLEANUP_N_REQUESTS", "50"),
        ("SESSION_REFRESH_EACH_REQUEST", "false"),
        ("SESSION_COOKIE_NAME", "sid"),
        ("SESSION_COOKIE_SAMESITE", "Strict"),
        ("SESSION_COOKIE_SECURE", "true"),
        ("SESSION_COOKIE_PARTITIONED", "true"),
        ("SESSION_COOKIE_HTTPONLY", "false"),
        ("SESSION_COOKIE_DOMAIN", "example.org"),
        ("SESSION_COOKIE_PATH", "/app"),
        ("SESSION_ID_LENGTH", "32"),
        ("DEBUG", "True"),
    ])
    .unwrap();
    assert_eq!(built, from_url);
    assert_eq!(built, from_flask);
}

#[test]
fn sqlite_three_ways_agree() {
    let mut options = SqliteOptions::new("/var/tmp/app.db");
    options.table = "web_sessions".into();
    let built = Config::builder(StoreConfig::Sqlite(options))
        .build()
        .unwrap();
    let from_url = Config::from_url("sqlite:///var/tmp/app.db?table=web_sessions").unwrap();
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "sqlalchemy"),
        ("SQLALCHEMY_DATABASE_URI", "sqlite:////var/tmp/app.db"),
        ("SESSION_SQLALCHEMY_TABLE", "web_sessions"),
    ])
    .unwrap();
    assert_eq!(built, from_url);
    assert_eq!(built, from_flask);
    assert_eq!(
        built.cookie.mode,
        CookieMode::Plain,
        "Flask-Session's default: unsigned"
    );
}

#[test]
fn defaults_follow_flask() {
    let config = Config::from_url("memory://").unwrap();
    assert_eq!(config.key_prefix, "session:");
    assert_eq!(config.idle_lifetime, Duration::from_secs(31 * 86400));
    assert!(config.permanent && config.refresh_each_request);
    assert_eq!(config.cookie.name, "session");
    assert_eq!(config.cookie.path, "/");
    assert!(config.cookie.http_only);
    assert_eq!(config.format, Format::MessagePack);
    let signed = Config::builder(StoreConfig::Memory)
        .secret("s")
        .build()
        .unwrap();
    assert_eq!(
        signed.cookie.mode,
        CookieMode::Signed,
        "a secret turns signing on"
    );
}

#[test]
fn invalid_values_name_their_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_FILE_THRESHOLD", "many"),
            ],
            "SESSION_FILE_THRESHOLD",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_FILE_THRESHOLD", "0"),
            ],
            "SESSION_FILE_THRESHOLD",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_FILE_MODE", "0o1777"),
            ],
            "SESSION_FILE_MODE",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_PERMANENT", "maybe"),
            ],
            "SESSION_PERMANENT",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_USE_SIGNER", "True"),
            ],
            "SECRET_KEY",
        ),
        (
            &[("SESSION_TYPE", "filesystem"), ("SESSION_ID_LENGTH", "16")],
            "SESSION_ID_LENGTH",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_SERIALIZATION_FORMAT", "pickle"),
            ],
            "SESSION_SERIALIZATION_FORMAT",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_COOKIE_SAMESITE", "sometimes"),
            ],
            "SESSION_COOKIE_SAMESITE",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("PERMANENT_SESSION_LIFETIME", "-5"),
            ],
            "PERMANENT_SESSION_LIFETIME",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("PERMANENT_SESSION_LIFETIME", "0"),
            ],
            "PERMANENT_SESSION_LIFETIME",
        ),
        (
            &[
                ("SESSION_TYPE", "filesystem"),
                ("SESSION_COOKIE_NAME", "a;b"),
            ],
            "SESSION_COOKIE_NAME",
        ),
        (
            &[("SESSION_TYPE", "filesystem"), ("SESSION_FILE_DIRR", "x")],
            "SESSION_FILE_DIRR",
        ),
        (&[("SESSION_TYPE", "dynamodb")], "SESSION_TYPE"),
        (&[("SESSION_PERMANENT", "True")], "SESSION_TYPE"),
        (&[("SESSION_TYPE", "sqlalchemy")], "SQLALCHEMY_DATABASE_URI"),
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                ("SQLALCHEMY_DATABASE_URI", "sqlite:////x.db"),
                ("SESSION_SQLALCHEMY_TABLE", "x; drop"),
            ],
            "SESSION_SQLALCHEMY_TABLE",
        ),
    ];
    for (pairs, key) in cases {
        let error = Config::from_flask(pairs.iter().copied()).unwrap_err();
        assert!(error.to_string().contains(key), "{error}");
        assert_eq!(key_of(error), *key);
    }
    let urls = [
        ("file:///tmp/s?threshold=abc", "threshold"),
        ("file:///tmp/s?mode=999", "mode"),
        ("file:///tmp/s?colour=blue", "colour"),
        ("sqlite:///tmp/s.db?table=a-b", "table"),
        ("memory://?lifetime=soon", "lifetime"),
        ("memory://?concurrency=maybe", "concurrency"),
        ("memory://?lifetime=1&lifetime=2", "lifetime"),
        ("redis-ish://x", "store URL"),
        ("not a url", "store URL"),
    ];
    for (url, key) in urls {
        assert_eq!(key_of(Config::from_url(url).unwrap_err()), key, "{url}");
    }
    let builder_errors = [
        (
            Config::builder(StoreConfig::Memory)
                .cookie_mode(CookieMode::Signed)
                .build(),
            "secret",
        ),
        (
            Config::builder(StoreConfig::Memory).secret("").build(),
            "secret",
        ),
        (
            Config::builder(StoreConfig::Memory).max_attempts(0).build(),
            "max_attempts",
        ),
        (
            Config::builder(StoreConfig::Memory).cookie_name("").build(),
            "cookie_name",
        ),
    ];
    for (result, key) in builder_errors {
        assert_eq!(key_of(result.unwrap_err()), key);
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = Config::builder(StoreConfig::Memory)
        .secret("hunter2")
        .build()
        .unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
}
