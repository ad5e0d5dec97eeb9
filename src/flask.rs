//! Flask-Session 0.8 setting names → [`Config`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::at_rest::DataKey;
use crate::codec::Format;
use crate::config::Config;
use crate::cookies::{CookieMode, SameSite};
use crate::error::{Error, Result};
#[cfg(any(
    feature = "redis",
    feature = "memcached",
    feature = "postgres",
    feature = "mysql"
))]
use crate::parse::QueryParams;
use crate::parse::parse_bool;
#[cfg(any(feature = "redis", feature = "memcached"))]
use crate::parse::parse_store_url;
#[cfg(sql_store)]
use crate::parse::validate_table_name;
use crate::store::StoreConfig;

/// Every `SESSION_*` key this crate understands; any other is refused as a likely typo.
const SESSION_KEYS: &[&str] = &[
    "SESSION_TYPE",
    "SESSION_PERMANENT",
    "SESSION_USE_SIGNER",
    "SESSION_KEY_PREFIX",
    "SESSION_ID_LENGTH",
    "SESSION_SERIALIZATION_FORMAT",
    "SESSION_FILE_DIR",
    "SESSION_FILE_THRESHOLD",
    "SESSION_FILE_MODE",
    "SESSION_MONGODB",
    "SESSION_MONGODB_DB",
    "SESSION_MONGODB_COLLECT",
    "SESSION_REDIS",
    "SESSION_MEMCACHED",
    "SESSION_SQLALCHEMY_TABLE",
    "SESSION_CLEANUP_N_REQUESTS",
    "SESSION_REFRESH_EACH_REQUEST",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
];

/// The Flask settings outside `SESSION_*` that sessions use, and this crate's own settings
/// that Flask-Session has no name for (encryption and compression at rest, which
/// Flask-Session cannot read: docs/DESIGN.md §4).
const FLASK_KEYS: &[&str] = &[
    "SECRET_KEY",
    "PERMANENT_SESSION_LIFETIME",
    "SQLALCHEMY_DATABASE_URI",
    "SESSIONSTORE_DATA_KEYS",
    "SESSIONSTORE_DECRYPT_ONLY",
    "SESSIONSTORE_COMPRESS_THRESHOLD",
];

impl Config {
    /// Builds a configuration from Flask-Session settings, so a Flask app's settings carry
    /// over unchanged. Keys not starting with `SESSION_` and not used by sessions (any other
    /// Flask setting) are ignored; unknown `SESSION_*` keys are errors.
    ///
    /// ```
    /// use sessionstore::{Config, CookieMode};
    /// let config = Config::from_flask([
    ///     ("SESSION_TYPE", "filesystem"),
    ///     ("SESSION_FILE_DIR", "/tmp/flask_session"),
    ///     ("SESSION_USE_SIGNER", "True"),
    ///     ("SECRET_KEY", "dev-secret"),
    /// ]).unwrap();
    /// assert_eq!(config.cookie.mode, CookieMode::Flask);
    /// ```
    pub fn from_flask<I, K, V>(settings: I) -> Result<Config>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        config_from_pairs(settings)
    }
}

struct Settings(BTreeMap<String, String>);

impl Settings {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key).map(|v| parse_bool(key, v)).transpose()
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| Error::config(key, format!("{v:?} is not a valid number")))
            })
            .transpose()
    }
}

fn config_from_pairs<I, K, V>(pairs: I) -> Result<Config>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        let key = key.as_ref();
        if key.starts_with("SESSION_") && !SESSION_KEYS.contains(&key) {
            return Err(Error::config(key, "unknown Flask-Session setting"));
        }
        if key.starts_with("SESSION_") || FLASK_KEYS.contains(&key) {
            map.insert(key.to_owned(), value.as_ref().to_owned());
        }
    }
    let settings = Settings(map);
    let mut builder = Config::builder(store_from_settings(&settings)?);

    if let Some(secret) = settings.get("SECRET_KEY") {
        builder = builder.secret(secret);
    }
    let use_signer = settings.bool("SESSION_USE_SIGNER")?.unwrap_or(false);
    if use_signer && settings.get("SECRET_KEY").is_none_or(str::is_empty) {
        return Err(Error::config(
            "SECRET_KEY",
            "SESSION_USE_SIGNER needs a non-empty SECRET_KEY",
        ));
    }
    builder = builder.cookie_mode(if use_signer {
        CookieMode::Flask
    } else {
        CookieMode::Plain
    });
    if let Some(permanent) = settings.bool("SESSION_PERMANENT")? {
        builder = builder.permanent(permanent);
    }
    if let Some(prefix) = settings.get("SESSION_KEY_PREFIX") {
        builder = builder.key_prefix(prefix);
    }
    if let Some(length) = settings.number::<u32>("SESSION_ID_LENGTH")?
        && length != 32
    {
        return Err(Error::config(
            "SESSION_ID_LENGTH",
            "ids are always 32 random bytes (Flask-Session's default); only 32 is accepted",
        ));
    }
    if let Some(name) = settings.get("SESSION_SERIALIZATION_FORMAT") {
        let format = Format::from_name(name).ok_or_else(|| {
            Error::config("SESSION_SERIALIZATION_FORMAT", "expected msgpack or json")
        })?;
        builder = builder.format(format);
    }
    if let Some(n) = settings.number::<u64>("SESSION_CLEANUP_N_REQUESTS")? {
        builder = builder.cleanup_every(n);
    }
    if let Some(seconds) = settings.number::<u64>("PERMANENT_SESSION_LIFETIME")? {
        builder = builder.idle_lifetime(Duration::from_secs(seconds));
    }
    if let Some(refresh) = settings.bool("SESSION_REFRESH_EACH_REQUEST")? {
        builder = builder.refresh_each_request(refresh);
    }
    if let Some(name) = settings.get("SESSION_COOKIE_NAME") {
        builder = builder.cookie_name(name);
    }
    if let Some(domain) = settings
        .get("SESSION_COOKIE_DOMAIN")
        .filter(|d| !d.is_empty())
    {
        builder = builder.cookie_domain(domain);
    }
    if let Some(path) = settings.get("SESSION_COOKIE_PATH") {
        builder = builder.cookie_path(path);
    }
    if let Some(on) = settings.bool("SESSION_COOKIE_HTTPONLY")? {
        builder = builder.cookie_http_only(on);
    }
    if let Some(on) = settings.bool("SESSION_COOKIE_SECURE")? {
        builder = builder.cookie_secure(on);
    }
    if let Some(on) = settings.bool("SESSION_COOKIE_PARTITIONED")? {
        builder = builder.cookie_partitioned(on);
    }
    if let Some(keys) = settings.get("SESSIONSTORE_DATA_KEYS") {
        for key in keys.split(',') {
            builder = builder.data_key(DataKey::from_base64("SESSIONSTORE_DATA_KEYS", key)?);
        }
    }
    if let Some(on) = settings.bool("SESSIONSTORE_DECRYPT_ONLY")? {
        builder = builder.decrypt_only(on);
    }
    if let Some(bytes) = settings.number::<usize>("SESSIONSTORE_COMPRESS_THRESHOLD")? {
        builder = builder.compress_threshold(bytes);
    }
    if let Some(same_site) = settings.get("SESSION_COOKIE_SAMESITE") {
        let parsed = match same_site {
            "" => None,
            name => Some(SameSite::from_name(name).ok_or_else(|| {
                Error::config(
                    "SESSION_COOKIE_SAMESITE",
                    "expected Lax, Strict, None or empty",
                )
            })?),
        };
        builder = builder.cookie_same_site(parsed);
    }
    builder.build().map_err(|error| match error {
        Error::Config { key, message } => Error::Config {
            key: flask_name(&key).to_owned(),
            message,
        },
        other => other,
    })
}

/// Names builder-level errors by the Flask setting the user wrote.
fn flask_name(key: &str) -> &str {
    match key {
        "secret" => "SECRET_KEY",
        "cookie_name" => "SESSION_COOKIE_NAME",
        "key_prefix" => "SESSION_KEY_PREFIX",
        "lifetime" => "PERMANENT_SESSION_LIFETIME",
        "cleanup_every" => "SESSION_CLEANUP_N_REQUESTS",
        "cookie_path" => "SESSION_COOKIE_PATH",
        "cookie_domain" => "SESSION_COOKIE_DOMAIN",
        "cookie_partitioned" => "SESSION_COOKIE_PARTITIONED",
        "data_keys" => "SESSIONSTORE_DATA_KEYS",
        "compress_threshold" => "SESSIONSTORE_COMPRESS_THRESHOLD",
        other => other,
    }
}

fn store_from_settings(settings: &Settings) -> Result<StoreConfig> {
    let kind = settings
        .get("SESSION_TYPE")
        .ok_or_else(|| Error::config("SESSION_TYPE", "missing"))?;
    match kind {
        #[cfg(feature = "filesystem")]
        "filesystem" => {
            let mut options = crate::store::file::FileOptions::new(
                settings.get("SESSION_FILE_DIR").unwrap_or("flask_session"),
            );
            if let Some(threshold) = settings.number::<usize>("SESSION_FILE_THRESHOLD")? {
                if threshold == 0 {
                    return Err(Error::config(
                        "SESSION_FILE_THRESHOLD",
                        "must be at least 1",
                    ));
                }
                options.threshold = threshold;
            }
            if let Some(mode) = settings.get("SESSION_FILE_MODE") {
                options.mode = parse_file_mode(mode).ok_or_else(|| {
                    Error::config("SESSION_FILE_MODE", format!("{mode:?} is not a file mode"))
                })?;
            }
            Ok(StoreConfig::Filesystem(options))
        }
        #[cfg(sql_store)]
        "sqlalchemy" => sqlalchemy_store(settings),
        #[cfg(feature = "mongodb")]
        "mongodb" => {
            // Flask-Session takes a MongoClient; here its connection string (MongoClient()
            // connects to localhost:27017).
            let mut options = crate::store::mongodb::MongoOptions::new(
                settings
                    .get("SESSION_MONGODB")
                    .unwrap_or("mongodb://localhost:27017/"),
            );
            if let Some(database) = settings.get("SESSION_MONGODB_DB") {
                options.database = database.to_owned();
            }
            if let Some(collection) = settings.get("SESSION_MONGODB_COLLECT") {
                options.collection = collection.to_owned();
            }
            options.validate().map_err(|error| match error {
                Error::Config { key, message } => Error::Config {
                    key: match key.as_str() {
                        "db" => "SESSION_MONGODB_DB",
                        "collection" => "SESSION_MONGODB_COLLECT",
                        _ => "SESSION_MONGODB",
                    }
                    .to_owned(),
                    message,
                },
                other => other,
            })?;
            Ok(StoreConfig::Mongodb(options))
        }
        // Flask-Session takes a redis.Redis client; here its URL (`Redis()` connects to
        // localhost:6379, database 0). `redis+cluster://h1:p1,h2:p2` names a Cluster.
        #[cfg(feature = "redis")]
        "redis" => {
            let url = settings
                .get("SESSION_REDIS")
                .unwrap_or("redis://localhost:6379/0");
            let (url, mut params) = store_url("SESSION_REDIS", url)?;
            let options = crate::store::redis::RedisOptions::from_url(&url, &mut params)
                .and_then(|options| params.finish().map(|()| options))
                .map_err(|error| renamed("SESSION_REDIS", error))?;
            Ok(StoreConfig::Redis(options))
        }
        // Flask-Session takes a memcache client; here its servers, `host:port,host:port` (or
        // a `memcache://` URL). Its own default client connects to 127.0.0.1:11211.
        #[cfg(feature = "memcached")]
        "memcached" => {
            let servers = settings
                .get("SESSION_MEMCACHED")
                .unwrap_or("127.0.0.1:11211");
            let url = if servers.starts_with("memcache://") {
                servers.to_owned()
            } else {
                format!("memcache://{servers}")
            };
            let (url, mut params) = store_url("SESSION_MEMCACHED", &url)?;
            let options = crate::store::memcached::MemcachedOptions::from_url(&url, &mut params)
                .and_then(|options| params.finish().map(|()| options))
                .map_err(|error| renamed("SESSION_MEMCACHED", error))?;
            Ok(StoreConfig::Memcached(options))
        }
        other => Err(Error::config(
            "SESSION_TYPE",
            format!("{other:?} is unknown or not enabled in this build"),
        )),
    }
}

/// Parses the server URL given in the Flask setting `key`.
#[cfg(any(feature = "redis", feature = "memcached"))]
fn store_url(key: &str, url: &str) -> Result<(url::Url, QueryParams)> {
    parse_store_url(url).map_err(|error| renamed(key, error))
}

/// A store URL error named by the Flask setting `key` that gave the URL (the URL parameter
/// at fault, if any, leads the message).
#[cfg(any(feature = "redis", feature = "memcached"))]
fn renamed(key: &str, error: Error) -> Error {
    match error {
        Error::Config {
            key: inner,
            message,
        } if inner == "store URL" => Error::config(key, message),
        Error::Config {
            key: inner,
            message,
        } => Error::config(key, format!("{inner}: {message}")),
        other => other,
    }
}

/// The store `SQLALCHEMY_DATABASE_URI` names: `sqlite:///relative.db` or
/// `sqlite:////absolute.db`, `postgresql[+driver]://user@host/db`,
/// `mysql[+driver]://user:pass@host/db` (`mariadb` too), with `SESSION_SQLALCHEMY_TABLE`.
#[cfg(sql_store)]
fn sqlalchemy_store(settings: &Settings) -> Result<StoreConfig> {
    const URI: &str = "SQLALCHEMY_DATABASE_URI";
    let uri = settings
        .get(URI)
        .ok_or_else(|| Error::config(URI, "missing"))?;
    let table = settings.get("SESSION_SQLALCHEMY_TABLE");
    if let Some(table) = table {
        validate_table_name(table)
            .map_err(|message| Error::config("SESSION_SQLALCHEMY_TABLE", message))?;
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| Error::config(URI, "expected dialect://…"))?;
    let dialect = scheme.split('+').next().unwrap_or_default();
    // The URL parsers name their own errors "store URL"; here the setting is this one.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    let renamed = |error: Error| match error {
        Error::Config { key, message } if key == "store URL" => Error::config(URI, message),
        other => other,
    };
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    let parse = |scheme: &str| -> Result<(url::Url, QueryParams)> {
        let url = url::Url::parse(&format!("{scheme}://{rest}"))
            .map_err(|e| Error::config(URI, format!("not a URL: {e}")))?;
        let params = QueryParams::from_url(&url)?;
        Ok((url, params))
    };
    match dialect {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let path = rest.strip_prefix('/').unwrap_or_default();
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(Error::config(URI, "no database file"));
            }
            let mut options = crate::store::sqlite::SqliteOptions::new(path);
            if let Some(table) = table {
                options.table = table.to_owned();
            }
            Ok(StoreConfig::Sqlite(options))
        }
        #[cfg(feature = "postgres")]
        "postgresql" | "postgres" => {
            let (url, mut params) = parse("postgres")?;
            let mut options = crate::store::postgres::PostgresOptions::from_url(&url, &mut params)
                .map_err(renamed)?;
            params.finish()?;
            if let Some(table) = table {
                options.table = table.to_owned();
            }
            Ok(StoreConfig::Postgres(options))
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            let (url, mut params) = parse("mysql")?;
            // SQLAlchemy URLs often carry the connection character set: always utf8mb4 here.
            if let Some(charset) = params.take("charset")
                && !charset.starts_with("utf8")
            {
                return Err(Error::config(URI, "only the utf8mb4 character set is used"));
            }
            let mut options =
                crate::store::mysql::MysqlOptions::from_url(&url, &mut params).map_err(renamed)?;
            params.finish()?;
            if let Some(table) = table {
                options.table = table.to_owned();
            }
            Ok(StoreConfig::Mysql(options))
        }
        other => Err(Error::config(
            URI,
            format!("the {other:?} database is unknown or not enabled in this build"),
        )),
    }
}

/// Python writes file modes in octal (`0o600`, `0600`) or as the decimal int (`384`).
#[cfg(feature = "filesystem")]
fn parse_file_mode(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.starts_with('0') {
        crate::store::file::parse_mode(text).ok()
    } else {
        text.parse().ok().filter(|mode| *mode <= 0o777)
    }
}

#[cfg(all(test, feature = "filesystem"))]
mod tests {
    use super::*;

    #[test]
    fn file_modes_parse_like_python_writes_them() {
        assert_eq!(parse_file_mode("0o600"), Some(0o600));
        assert_eq!(parse_file_mode("0600"), Some(0o600));
        assert_eq!(parse_file_mode("384"), Some(0o600));
        assert_eq!(parse_file_mode("0o1777"), None);
        assert_eq!(parse_file_mode("rw"), None);
    }
}
