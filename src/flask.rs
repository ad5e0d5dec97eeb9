//! Flask-Session 0.8 setting names → [`Config`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::codec::Format;
use crate::config::{Config, parse_bool};
use crate::cookies::{CookieMode, SameSite};
use crate::error::{Error, Result};
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
    "SESSION_MONGODB_DB",
    "SESSION_MONGODB_COLLECT",
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

/// The Flask settings outside `SESSION_*` that sessions use.
const FLASK_KEYS: &[&str] = &[
    "SECRET_KEY",
    "PERMANENT_SESSION_LIFETIME",
    "SQLALCHEMY_DATABASE_URI",
];

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

pub(crate) fn config_from_pairs<I, K, V>(pairs: I) -> Result<Config>
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
        #[cfg(feature = "sqlite")]
        "sqlalchemy" => {
            let uri = settings
                .get("SQLALCHEMY_DATABASE_URI")
                .ok_or_else(|| Error::config("SQLALCHEMY_DATABASE_URI", "missing"))?;
            // SQLAlchemy: `sqlite:///relative.db`, `sqlite:////absolute.db`.
            let path = uri.strip_prefix("sqlite:///").ok_or_else(|| {
                Error::config(
                    "SQLALCHEMY_DATABASE_URI",
                    "only sqlite:/// databases are enabled in this build",
                )
            })?;
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(Error::config("SQLALCHEMY_DATABASE_URI", "no database file"));
            }
            let mut options = crate::store::sqlite::SqliteOptions::new(path);
            if let Some(table) = settings.get("SESSION_SQLALCHEMY_TABLE") {
                crate::store::sqlite::validate_table_name(table)
                    .map_err(|message| Error::config("SESSION_SQLALCHEMY_TABLE", message))?;
                options.table = table.to_owned();
            }
            Ok(StoreConfig::Sqlite(options))
        }
        other => Err(Error::config(
            "SESSION_TYPE",
            format!("{other:?} is unknown or not enabled in this build"),
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
