//! Configuration, three ways that produce the same [`Config`]: a builder, a store URL, and
//! Flask-Session's own setting names (read by `Config::from_flask`, in the flask module).

use std::time::Duration;

use crate::at_rest::{AtRest, DataKey};
use crate::codec::Format;
use crate::cookies::{CookieConfig, CookieMode, MAX_COOKIE_AGE, SameSite, Secret};
use crate::error::{Error, Result};
use crate::parse::{parse_bool, parse_store_url};
use crate::store::StoreConfig;

/// Flask's `PERMANENT_SESSION_LIFETIME` default: 31 days.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// How saves deal with concurrent requests of the same session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// Compare-and-set with merge and retry: no request's changes are lost (the default).
    #[default]
    NoLostUpdates,
    /// Plain overwrite, exactly Flask-Session's behaviour: faster, loses concurrent changes.
    LastWriterWins,
}

/// Everything a [`SessionManager`](crate::SessionManager) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Which store, with its options.
    pub store: StoreConfig,
    /// Cookie name, attributes, signing mode and secrets.
    pub cookie: CookieConfig,
    /// Prepended to the id to form the store key (default `session:`).
    pub key_prefix: String,
    /// Format written to the store (reads accept both).
    pub format: Format,
    /// Whether new sessions are permanent (Flask-Session's `SESSION_PERMANENT`, default true).
    pub permanent: bool,
    /// Idle lifetime, renewed by writes and touches (default 31 days).
    pub idle_lifetime: Duration,
    /// Optional hard limit counted from the session's creation.
    pub absolute_lifetime: Option<Duration>,
    /// Renew the expiry on requests that change nothing (default true).
    pub refresh_each_request: bool,
    /// Minimum time between two renewals of an unmodified session (default 60 s).
    pub touch_interval: Duration,
    /// Compare-and-set (default) or last writer wins.
    pub concurrency: Concurrency,
    /// How many times a conflicting save is tried before giving up (default 1000).
    pub max_attempts: u32,
    /// Purge expired records every N loads (`SESSION_CLEANUP_N_REQUESTS`; default never).
    pub cleanup_every: Option<u64>,
    /// Largest encoded session accepted by save (default 4 MiB).
    pub max_size: usize,
    /// Longest key accepted by save, in bytes (default 256).
    pub max_key_length: usize,
    /// Most keys a session may hold, reserved ones included (default 1000).
    pub max_keys: usize,
    /// Store `prefix + base64url(SHA-256(id))` instead of `prefix + id`, so a leaked store
    /// dump holds no usable session ids (default off: Flask-Session stores the id itself).
    pub hash_ids: bool,
    /// Encryption and compression of stored values (default neither; docs/DESIGN.md §4).
    pub at_rest: AtRest,
    /// Count loads, saves and store calls, for [`SessionManager::stats`](crate::SessionManager::stats)
    /// (default off; docs/DESIGN.md §10).
    pub metrics: bool,
    /// Most sessions one owner may have; binding one more ends the oldest (default no
    /// limit; docs/DESIGN.md §9).
    pub max_sessions_per_owner: Option<usize>,
}

impl Config {
    /// Starts a builder with every default, for the given store.
    ///
    /// ```
    /// use sessionstore::{Config, CookieMode, store::StoreConfig};
    /// let config = Config::builder(StoreConfig::Memory)
    ///     .secret("change me")
    ///     .cookie_mode(CookieMode::Signed)
    ///     .key_prefix("app:")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.key_prefix, "app:");
    /// ```
    pub fn builder(store: StoreConfig) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                store,
                cookie: CookieConfig::default(),
                key_prefix: "session:".into(),
                format: Format::MessagePack,
                permanent: true,
                idle_lifetime: DEFAULT_LIFETIME,
                absolute_lifetime: None,
                refresh_each_request: true,
                touch_interval: Duration::from_secs(60),
                concurrency: Concurrency::NoLostUpdates,
                max_attempts: 1000,
                cleanup_every: None,
                max_size: 4 << 20,
                max_key_length: 256,
                max_keys: 1000,
                hash_ids: false,
                at_rest: AtRest::default(),
                metrics: false,
                max_sessions_per_owner: None,
            },
            mode_set: false,
        }
    }

    /// Builds a configuration from a store URL; settings not in the URL take their defaults.
    ///
    /// Besides each backend's own parameters (`table`, `threshold`, `mode`, `pool_size`),
    /// the URL accepts `prefix`, `format`, `permanent`, `lifetime`, `absolute_lifetime`,
    /// `refresh`, `touch_interval` (seconds), `concurrency` (`cas` or `lww`),
    /// `cleanup_every`, `max_size`, `max_key_length`, `max_keys`, `hash_ids`,
    /// `cookie_name`, `data_keys` (comma-separated base64 data keys, the first encrypts; use
    /// URL-safe base64 or percent-encode `+` and `/`), `decrypt_only` (the keys decrypt,
    /// saves are plain), `compress_threshold` (bytes), `metrics` and
    /// `max_sessions_per_owner`.
    ///
    /// ```
    /// use sessionstore::Config;
    /// let config = Config::from_url("file:///tmp/sessions?threshold=100&prefix=app:").unwrap();
    /// assert_eq!(config.key_prefix, "app:");
    /// ```
    pub fn from_url(url: &str) -> Result<Config> {
        Config::builder_from_url(url)?.build()
    }

    /// Checks every setting, as [`SessionManager::new`](crate::SessionManager::new) does for
    /// a configuration built by hand: the cookie's attributes
    /// ([`CookieConfig::validate`]), the secrets, lifetimes from one second to 400 days (the
    /// longest cookie lifetime browsers keep), the key prefix and the retry and cleanup
    /// counts, and the at-rest settings (distinct data keys; no encryption or compression
    /// in the `flask` cookie mode, whose point is sharing records with Flask-Session, which
    /// cannot read them; decrypt-only keys are allowed there, since saves write plain
    /// records). The builder, store URLs, Flask settings and the C ABI all end here.
    pub fn validate(&self) -> Result<()> {
        self.cookie.validate()?;
        self.at_rest.validate()?;
        if self.at_rest.seals() && self.cookie.mode == CookieMode::Flask {
            let setting = if self.at_rest.compress_threshold.is_some() {
                "compress_threshold"
            } else {
                "data_keys"
            };
            return Err(Error::config(
                setting,
                "Flask-Session cannot read encrypted or compressed records, and the flask \
                 cookie mode exists to share them with it: choose one",
            ));
        }
        let lifetimes = [
            ("lifetime", Some(self.idle_lifetime)),
            ("absolute_lifetime", self.absolute_lifetime),
        ];
        for (name, lifetime) in lifetimes {
            if lifetime.is_some_and(|d| d < Duration::from_secs(1) || d > MAX_COOKIE_AGE) {
                return Err(Error::config(
                    name,
                    "must be from one second to 400 days (the longest cookie lifetime browsers \
                     keep)",
                ));
            }
        }
        if self.key_prefix.len() > 100 || self.key_prefix.chars().any(char::is_control) {
            return Err(Error::config(
                "key_prefix",
                "at most 100 characters, no control characters",
            ));
        }
        if self.max_sessions_per_owner == Some(0) {
            return Err(Error::config(
                "max_sessions_per_owner",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::config("max_attempts", "must be at least 1"));
        }
        if self.cleanup_every == Some(0) {
            return Err(Error::config("cleanup_every", "must be at least 1"));
        }
        Ok(())
    }

    /// A builder preset from a store URL, to add secrets and cookie settings.
    pub fn builder_from_url(url: &str) -> Result<ConfigBuilder> {
        let (parsed, mut params) = parse_store_url(url)?;
        let store = StoreConfig::from_url(&parsed, &mut params)?;
        let mut builder = Config::builder(store);
        if let Some(prefix) = params.take("prefix") {
            builder = builder.key_prefix(prefix);
        }
        if let Some(format) = params.take("format") {
            let format = Format::from_name(&format)
                .ok_or_else(|| Error::config("format", "expected msgpack or json"))?;
            builder = builder.format(format);
        }
        if let Some(permanent) = params.take("permanent") {
            builder = builder.permanent(parse_bool("permanent", &permanent)?);
        }
        if let Some(seconds) = params.take_parsed::<u64>("lifetime")? {
            builder = builder.idle_lifetime(Duration::from_secs(seconds));
        }
        if let Some(seconds) = params.take_parsed::<u64>("absolute_lifetime")? {
            builder = builder.absolute_lifetime(Duration::from_secs(seconds));
        }
        if let Some(refresh) = params.take("refresh") {
            builder = builder.refresh_each_request(parse_bool("refresh", &refresh)?);
        }
        if let Some(seconds) = params.take_parsed::<u64>("touch_interval")? {
            builder = builder.touch_interval(Duration::from_secs(seconds));
        }
        if let Some(mode) = params.take("concurrency") {
            builder = builder.concurrency(match mode.as_str() {
                "cas" => Concurrency::NoLostUpdates,
                "lww" => Concurrency::LastWriterWins,
                _ => return Err(Error::config("concurrency", "expected cas or lww")),
            });
        }
        if let Some(n) = params.take_parsed::<u64>("cleanup_every")? {
            builder = builder.cleanup_every(n);
        }
        if let Some(bytes) = params.take_parsed::<usize>("max_size")? {
            builder = builder.max_size(bytes);
        }
        if let Some(bytes) = params.take_parsed::<usize>("max_key_length")? {
            builder = builder.max_key_length(bytes);
        }
        if let Some(keys) = params.take_parsed::<usize>("max_keys")? {
            builder = builder.max_keys(keys);
        }
        if let Some(on) = params.take("hash_ids") {
            builder = builder.hash_ids(parse_bool("hash_ids", &on)?);
        }
        if let Some(name) = params.take("cookie_name") {
            builder = builder.cookie_name(name);
        }
        if let Some(keys) = params.take("data_keys") {
            for key in keys.split(',') {
                builder = builder.data_key(DataKey::from_base64("data_keys", key)?);
            }
        }
        if let Some(on) = params.take("decrypt_only") {
            builder = builder.decrypt_only(parse_bool("decrypt_only", &on)?);
        }
        if let Some(bytes) = params.take_parsed::<usize>("compress_threshold")? {
            builder = builder.compress_threshold(bytes);
        }
        if let Some(on) = params.take("metrics") {
            builder = builder.metrics(parse_bool("metrics", &on)?);
        }
        if let Some(sessions) = params.take_parsed::<usize>("max_sessions_per_owner")? {
            builder = builder.max_sessions_per_owner(sessions);
        }
        params.finish()?;
        Ok(builder)
    }
}

/// Builds a [`Config`]; see [`Config::builder`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
    mode_set: bool,
}

impl ConfigBuilder {
    /// Adds a signing secret; the first one added signs, all verify. Adding a secret makes
    /// the cookie mode `Signed` unless a mode was chosen explicitly.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.config
            .cookie
            .secrets
            .push(Secret::new(secret.as_ref()));
        self
    }

    /// How the cookie value is signed.
    pub fn cookie_mode(mut self, mode: CookieMode) -> Self {
        self.config.cookie.mode = mode;
        self.mode_set = true;
        self
    }

    /// Cookie name (default `session`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.cookie.name = name.into();
        self
    }

    /// Cookie `Domain`.
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.config.cookie.domain = Some(domain.into());
        self
    }

    /// Cookie `Path` (default `/`).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.config.cookie.path = path.into();
        self
    }

    /// Cookie `HttpOnly` (default on).
    pub fn cookie_http_only(mut self, on: bool) -> Self {
        self.config.cookie.http_only = on;
        self
    }

    /// Cookie `Secure` (default off).
    pub fn cookie_secure(mut self, on: bool) -> Self {
        self.config.cookie.secure = on;
        self
    }

    /// Cookie `SameSite` (default `Lax`; `None` leaves the attribute out).
    pub fn cookie_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.config.cookie.same_site = same_site;
        self
    }

    /// Cookie `Partitioned` (default off).
    pub fn cookie_partitioned(mut self, on: bool) -> Self {
        self.config.cookie.partitioned = on;
        self
    }

    /// Store key prefix (default `session:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// Stored format (default MessagePack).
    pub fn format(mut self, format: Format) -> Self {
        self.config.format = format;
        self
    }

    /// Whether new sessions are permanent (default true).
    pub fn permanent(mut self, on: bool) -> Self {
        self.config.permanent = on;
        self
    }

    /// Idle lifetime (default 31 days).
    pub fn idle_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.idle_lifetime = lifetime;
        self
    }

    /// Absolute lifetime from creation (default none).
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.absolute_lifetime = Some(lifetime);
        self
    }

    /// Renew the expiry on unmodified requests (default true).
    pub fn refresh_each_request(mut self, on: bool) -> Self {
        self.config.refresh_each_request = on;
        self
    }

    /// Minimum time between renewals of an unmodified session (default 60 s).
    pub fn touch_interval(mut self, interval: Duration) -> Self {
        self.config.touch_interval = interval;
        self
    }

    /// No-lost-updates (default) or last-writer-wins saves.
    pub fn concurrency(mut self, mode: Concurrency) -> Self {
        self.config.concurrency = mode;
        self
    }

    /// Attempts of a conflicting save before [`Error::Contention`] (default 1000).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// Purge expired records every `n` loads.
    pub fn cleanup_every(mut self, n: u64) -> Self {
        self.config.cleanup_every = Some(n);
        self
    }

    /// Largest encoded session a save accepts (default 4 MiB).
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.config.max_size = bytes;
        self
    }

    /// Longest session key a save accepts (default 256 bytes).
    pub fn max_key_length(mut self, bytes: usize) -> Self {
        self.config.max_key_length = bytes;
        self
    }

    /// Most keys a session may hold (default 1000).
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.config.max_keys = keys;
        self
    }

    /// Store a SHA-256 hash of the id rather than the id (default off; breaks sharing
    /// with Flask-Session, which stores the id itself).
    pub fn hash_ids(mut self, on: bool) -> Self {
        self.config.hash_ids = on;
        self
    }

    /// Adds a data key for encryption at rest. The first key added encrypts every save; all
    /// of them decrypt, so to rotate, add the new key first and keep the old ones until
    /// their records have been rewritten or have expired (docs/DESIGN.md §4).
    pub fn data_key(mut self, key: DataKey) -> Self {
        self.config.at_rest.keys.push(key);
        self
    }

    /// Decrypt-only (default off): the data keys decrypt, saves are written plain; the way
    /// to turn encryption off without losing sessions (each session's next request rewrites
    /// its record plain; remove the keys once that happened or the records expired). Allowed
    /// with the `flask` cookie mode, whose records Flask-Session can then read again.
    pub fn decrypt_only(mut self, on: bool) -> Self {
        self.config.at_rest.decrypt_only = on;
        self
    }

    /// Compresses encoded sessions of at least `bytes` bytes (LZ4), when that makes them
    /// smaller (default: never).
    pub fn compress_threshold(mut self, bytes: usize) -> Self {
        self.config.at_rest.compress_threshold = Some(bytes);
        self
    }

    /// Counts loads, saves and store calls for [`SessionManager::stats`](crate::SessionManager::stats)
    /// (default off: a manager without metrics does not time its store calls).
    pub fn metrics(mut self, on: bool) -> Self {
        self.config.metrics = on;
        self
    }

    /// Caps the sessions of one owner: binding a session beyond `sessions` ends the owner's
    /// oldest (docs/DESIGN.md §9). At least 1.
    pub fn max_sessions_per_owner(mut self, sessions: usize) -> Self {
        self.config.max_sessions_per_owner = Some(sessions);
        self
    }

    /// Checks the settings together and returns the configuration.
    pub fn build(mut self) -> Result<Config> {
        let config = &mut self.config;
        if !self.mode_set && !config.cookie.secrets.is_empty() {
            config.cookie.mode = CookieMode::Signed;
        }
        self.config.validate()?;
        Ok(self.config)
    }
}
