//! The PostgreSQL, MySQL and MongoDB stores configured three ways (builder, store URL,
//! Flask-Session settings) to the same `Config`, and their invalid settings named.

#![cfg(all(feature = "postgres", feature = "mysql", feature = "mongodb"))]

use sessionstore::store::StoreConfig;
use sessionstore::store::mongodb::MongoOptions;
use sessionstore::store::mysql::MysqlOptions;
use sessionstore::store::postgres::PostgresOptions;
use sessionstore::{Config, CookieMode, Error};

fn key_of(error: Error) -> String {
    match error {
        Error::Config { key, .. } => key,
        other => panic!("not a config error: {other:?}"),
    }
}

#[test]
fn postgres_three_ways_agree() {
    let options = PostgresOptions {
        table: "web_sessions".to_owned(),
        ..PostgresOptions::new("postgres://app:pw@db.example:5433/shop")
    };
    let built = Config::builder(StoreConfig::Postgres(options))
        .key_prefix("shop:")
        .build()
        .unwrap();
    let from_url =
        Config::from_url("postgres://app:pw@db.example:5433/shop?table=web_sessions&prefix=shop:")
            .unwrap();
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "sqlalchemy"),
        (
            "SQLALCHEMY_DATABASE_URI",
            "postgresql+psycopg2://app:pw@db.example:5433/shop",
        ),
        ("SESSION_SQLALCHEMY_TABLE", "web_sessions"),
        ("SESSION_KEY_PREFIX", "shop:"),
    ])
    .unwrap();
    assert_eq!(built, from_url);
    assert_eq!(built, from_flask);
}

#[test]
fn mysql_three_ways_agree() {
    let options = MysqlOptions {
        port: 3307,
        user: Some("app".to_owned()),
        password: Some("p@ss".to_owned()),
        table: "web_sessions".to_owned(),
        ..MysqlOptions::new("db.example", "shop")
    };
    let built = Config::builder(StoreConfig::Mysql(options))
        .build()
        .unwrap();
    let from_url =
        Config::from_url("mysql://app:p%40ss@db.example:3307/shop?table=web_sessions").unwrap();
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "sqlalchemy"),
        (
            "SQLALCHEMY_DATABASE_URI",
            "mysql+pymysql://app:p%40ss@db.example:3307/shop?charset=utf8mb4",
        ),
        ("SESSION_SQLALCHEMY_TABLE", "web_sessions"),
    ])
    .unwrap();
    assert_eq!(built, from_url);
    assert_eq!(built, from_flask);
    assert_eq!(
        Config::from_url("mariadb://app:p%40ss@db.example:3307/shop?table=web_sessions").unwrap(),
        built
    );
}

#[test]
fn mongodb_three_ways_agree() {
    let options = MongoOptions {
        database: "shop".to_owned(),
        collection: "web_sessions".to_owned(),
        ..MongoOptions::new("mongodb://db.example:27018/?replicaSet=rs0")
    };
    let built = Config::builder(StoreConfig::Mongodb(options))
        .secret("k")
        .cookie_mode(CookieMode::Flask)
        .build()
        .unwrap();
    let from_url = Config::builder_from_url(
        "mongodb://db.example:27018/?db=shop&collection=web_sessions&replicaSet=rs0",
    )
    .unwrap()
    .secret("k")
    .cookie_mode(CookieMode::Flask)
    .build()
    .unwrap();
    let from_flask = Config::from_flask([
        ("SESSION_TYPE", "mongodb"),
        (
            "SESSION_MONGODB",
            "mongodb://db.example:27018/?replicaSet=rs0",
        ),
        ("SESSION_MONGODB_DB", "shop"),
        ("SESSION_MONGODB_COLLECT", "web_sessions"),
        ("SECRET_KEY", "k"),
        ("SESSION_USE_SIGNER", "True"),
    ])
    .unwrap();
    assert_eq!(built, from_url);
    assert_eq!(built, from_flask);
    let defaults = Config::from_flask([("SESSION_TYPE", "mongodb")]).unwrap();
    assert_eq!(
        defaults.store,
        StoreConfig::Mongodb(MongoOptions::new("mongodb://localhost:27017/"))
    );
}

#[test]
fn invalid_settings_are_named() {
    let flask_cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                ("SQLALCHEMY_DATABASE_URI", "oracle://h/db"),
            ],
            "SQLALCHEMY_DATABASE_URI",
        ),
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                (
                    "SQLALCHEMY_DATABASE_URI",
                    "postgresql://h/db?sslmode=always",
                ),
            ],
            "sslmode",
        ),
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                ("SQLALCHEMY_DATABASE_URI", "mysql+pymysql://h/"),
            ],
            "SQLALCHEMY_DATABASE_URI",
        ),
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                ("SQLALCHEMY_DATABASE_URI", "mysql://h/db?charset=latin1"),
            ],
            "SQLALCHEMY_DATABASE_URI",
        ),
        (
            &[
                ("SESSION_TYPE", "sqlalchemy"),
                ("SQLALCHEMY_DATABASE_URI", "postgresql://h/db"),
                ("SESSION_SQLALCHEMY_TABLE", "a b"),
            ],
            "SESSION_SQLALCHEMY_TABLE",
        ),
        (
            &[("SESSION_TYPE", "mongodb"), ("SESSION_MONGODB_DB", "a.b")],
            "SESSION_MONGODB_DB",
        ),
        (
            &[
                ("SESSION_TYPE", "mongodb"),
                ("SESSION_MONGODB_COLLECT", "system.x"),
            ],
            "SESSION_MONGODB_COLLECT",
        ),
    ];
    for (pairs, key) in flask_cases {
        let error = Config::from_flask(pairs.iter().copied()).unwrap_err();
        assert_eq!(key_of(error), *key, "{pairs:?}");
    }
    let urls = [
        ("postgres://h/db?sslmode=always", "sslmode"),
        ("postgres://h/db?pool_size=0", "pool_size"),
        ("postgres://h/db?table=x-y", "table"),
        ("mysql://h/db?connect_timeout=0", "connect_timeout"),
        ("mysql://h", "store URL"),
        ("mongodb://h/?db=", "db"),
        ("mongodb://h/?colection=x", "colection"),
    ];
    for (url, key) in urls {
        assert_eq!(key_of(Config::from_url(url).unwrap_err()), key, "{url}");
    }
}
