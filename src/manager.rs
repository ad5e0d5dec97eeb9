//! The request lifecycle (docs/DESIGN.md §5) and the no-lost-update saves (docs/DESIGN.md §6)
//! on top of any store.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rmpv::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::codec::Entries;
use crate::config::{Concurrency, Config};
use crate::cookies::CookieId;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::metrics::{LoadOutcome, Metered, Metrics, SaveKind, Stats};
use crate::session::{
    CREATED_KEY, Loaded, PERMANENT_KEY, Session, Unchecked, fresh_entries, holds_data,
    log_undecodable,
};
use crate::store::{CasOutcome, Record, Store};

mod checked;
mod owners;

pub(crate) use checked::CheckedValues;

pub use owners::SessionInfo;

/// What the response must carry after [`SessionManager::save`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaveOutcome {
    /// A `Set-Cookie:` header value to send, if the cookie must be set, renewed or removed.
    pub set_cookie: Option<String>,
    /// Whether to send `Vary: Cookie` (the response depends on the session).
    pub vary_cookie: bool,
    /// Whether the session ended: destroyed, emptied, or deleted by a concurrent request
    /// (a logout elsewhere) before this save, which then wrote nothing.
    pub ended: bool,
}

/// Loads and saves sessions for every request; share one per application (it is `Sync`).
///
/// ```
/// use sessionstore::{Config, SessionManager, store::StoreConfig};
///
/// let manager = SessionManager::new(
///     Config::builder(StoreConfig::Memory).secret("change me").build().unwrap(),
/// ).unwrap();
///
/// // First request: no cookie.
/// let mut session = manager.load(None).unwrap();
/// session.insert("user", "ann").unwrap();
/// let cookie = manager.save(session).unwrap().set_cookie.unwrap();
///
/// // Next request sends the cookie back.
/// let header = cookie.split(';').next().unwrap();
/// let session = manager.load(Some(header)).unwrap();
/// assert_eq!(session.get::<String>("user").unwrap().as_deref(), Some("ann"));
/// ```
pub struct SessionManager {
    config: Config,
    store: Arc<dyn Store>,
    loads: AtomicU64,
    /// The counters, when the configuration asks for metrics.
    metrics: Option<Arc<Metrics>>,
    /// The values this manager checked or wrote, whose check a load of the same bytes skips
    /// (docs/DESIGN.md §4).
    checked: Arc<CheckedValues>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("backend", &self.store.backend())
            .field("config", &self.config)
            .finish()
    }
}

impl SessionManager {
    /// Checks the configuration, a hand-built one too (cookie attributes and secrets as
    /// [`CookieConfig::validate`](crate::CookieConfig::validate) does, lifetimes from one
    /// second to 400 days, the key prefix), then opens the configured store.
    pub fn new(config: Config) -> Result<SessionManager> {
        config.validate()?;
        let store = config.store.open()?;
        Ok(SessionManager::with_store(config, store))
    }

    /// Opens a store URL with default settings (see [`Config::from_url`]).
    pub fn open(url: &str) -> Result<SessionManager> {
        SessionManager::new(Config::from_url(url)?)
    }

    /// Uses an already opened store (to share one store between managers, or a custom one).
    /// `config.store` is then only informative.
    /// With metrics on, the store is wrapped to count and time its calls.
    pub fn with_store(config: Config, store: Arc<dyn Store>) -> SessionManager {
        let metrics = config
            .metrics
            .then(|| Arc::new(Metrics::new(store.backend())));
        let store = match &metrics {
            Some(metrics) => Arc::new(Metered::new(store, Arc::clone(metrics))),
            None => store,
        };
        SessionManager {
            config,
            store,
            loads: AtomicU64::new(0),
            metrics,
            checked: Arc::new(CheckedValues::new()),
        }
    }

    /// What this manager did so far (docs/DESIGN.md §10); `None` unless the configuration
    /// turned metrics on ([`ConfigBuilder::metrics`](crate::ConfigBuilder::metrics)).
    pub fn stats(&self) -> Option<Stats> {
        self.metrics.as_ref().map(|metrics| metrics.snapshot())
    }

    /// Counts a load ending in `outcome`, when metrics are on.
    #[inline]
    fn count_load(&self, outcome: LoadOutcome) {
        if let Some(metrics) = &self.metrics {
            metrics.loaded(outcome);
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key under which the session `id` is stored (for tools that read the store
    /// directly, such as the `sessionstore` command).
    pub fn store_key(&self, id: &SessionId) -> String {
        self.key(id)
    }

    /// The store key of a session: the prefix and the id, or, when `hash_ids` is on, the
    /// prefix, [`HASHED_KEY_MARKER`] and the id's SHA-256 (docs/DESIGN.md §4).
    fn key(&self, id: &SessionId) -> String {
        let prefix = &self.config.key_prefix;
        // Written into one string sized once (no formatting machinery, no regrowth).
        if self.config.hash_ids {
            let digest = Sha256::digest(id.as_str().as_bytes());
            let mut key = String::with_capacity(prefix.len() + HASHED_KEY_MARKER.len() + 43);
            key.push_str(prefix);
            key.push_str(HASHED_KEY_MARKER);
            URL_SAFE_NO_PAD.encode_string(digest, &mut key);
            key
        } else {
            let mut key = String::with_capacity(prefix.len() + id.as_str().len());
            key.push_str(prefix);
            key.push_str(id.as_str());
            key
        }
    }

    /// Loads the session named by a request's `Cookie:` header (`None`: no header).
    ///
    /// No cookie, a bad signature, a malformed or unknown id, an expired record or an
    /// undecodable stored value all give a fresh, empty session under a new id. Exactly one
    /// store read. Errors only when the store fails.
    ///
    /// The stored value is checked on the session's first use (a read, a change, `id()`,
    /// `is_new()`, a save that writes or renews), so an undecodable one shows as a fresh
    /// session from then on and is never seen in part (docs/DESIGN.md §4).
    pub fn load(&self, cookie_header: Option<&str>) -> Result<Session> {
        self.cleanup_if_due();
        let (cookie, cookie_value) = self.config.cookie.read_current(cookie_header);
        let id = match cookie {
            CookieId::Absent => {
                self.count_load(LoadOutcome::NoCookie);
                return Ok(self.fresh(false));
            }
            CookieId::Invalid => {
                log::debug!("session cookie refused (malformed or bad signature)");
                self.count_load(LoadOutcome::InvalidCookie);
                return Ok(self.fresh(true));
            }
            CookieId::Valid(id) => id,
        };
        let key = self.key(&id);
        let now = OffsetDateTime::now_utc();
        let Some(record) = self.store.load(&key)? else {
            self.count_load(LoadOutcome::Miss);
            return Ok(self.fresh(true));
        };
        if record.is_expired_at(now) {
            self.count_load(LoadOutcome::Expired);
            return Ok(self.fresh(true));
        }
        let opened = self
            .config
            .at_rest
            .open(&key, &record.data, self.config.max_size);
        let undecodable = |error: Error| {
            log_undecodable(self.store.backend(), &id, &error);
            self.count_load(LoadOutcome::Undecodable);
            Ok(self.fresh(true))
        };
        let (value, sealed_as_configured) = match opened {
            Ok(opened) => (shared(&record.data, opened.value), opened.current),
            Err(error) => return undecodable(error),
        };
        let Some(lifetime) = self.config.absolute_lifetime else {
            // Nothing to read from the value before the application does: its check waits
            // for the session's first observation (docs/DESIGN.md §4).
            let unchecked = Unchecked::new(
                value,
                self.config.permanent,
                self.store.backend(),
                self.metrics.clone(),
                Arc::clone(&self.checked),
            );
            let mut session = Session::from_unchecked(id, key, record, Some(unchecked));
            session.reseal = !sealed_as_configured;
            session.cookie_value = cookie_value;
            return Ok(session);
        };
        let mut data = match self.checked.entries_of(&key, &value, true) {
            Ok(data) => data,
            Err(error) => return undecodable(error),
        };
        let mut created_stamped = false;
        match created_at(&data, now) {
            Some(created) if deadline(created, lifetime) <= now => {
                self.delete_record(&key)?;
                self.count_load(LoadOutcome::Expired);
                return Ok(self.fresh(true));
            }
            Some(_) => {}
            // Written by Flask-Session, or before the absolute lifetime was configured:
            // bounded from now on, and the save writes the stamp (docs/DESIGN.md §5).
            None => {
                data.insert(CREATED_KEY, Value::from(now.unix_timestamp()));
                created_stamped = true;
            }
        }
        let mut session = Session::from_record(id, key, data, record);
        session.created_stamped = created_stamped;
        session.reseal = !sealed_as_configured;
        session.cookie_value = cookie_value;
        self.count_load(LoadOutcome::Hit);
        Ok(session)
    }

    fn fresh(&self, cookie_sent: bool) -> Session {
        let created = self
            .config
            .absolute_lifetime
            .map(|_| OffsetDateTime::now_utc().unix_timestamp());
        Session::fresh(fresh_entries(self.config.permanent, created), cookie_sent)
    }

    fn absolute_deadline(&self, data: &Entries) -> Option<OffsetDateTime> {
        let lifetime = self.config.absolute_lifetime?;
        let created = created_at(data, OffsetDateTime::now_utc())?;
        Some(deadline(created, lifetime))
    }

    /// Gives `data`, which this request's changes were replayed on, the session's creation
    /// time when an absolute lifetime is set: the earlier of the one `data` holds and the
    /// session's own, so that no merge loses or postpones it.
    fn keep_created(&self, data: &mut Entries, session: &Session) {
        if self.config.absolute_lifetime.is_none() {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let stored = created_at(data, now);
        let earliest = [stored, created_at(&session.data, now)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        if stored != Some(earliest) {
            data.insert(CREATED_KEY, Value::from(earliest.unix_timestamp()));
        }
    }

    /// This request's changes, applied in order on a fresher stored value (stored under
    /// `key`).
    fn replay(&self, key: &str, session: &Session, current: &Record) -> Result<Entries> {
        let opened = self
            .config
            .at_rest
            .open(key, &current.data, self.config.max_size);
        let decoded =
            opened.and_then(|opened| Entries::decode_shared(shared(&current.data, opened.value)));
        let mut data = decoded.unwrap_or_else(|error| {
            log::warn!("concurrent value undecodable, replacing it: {error}");
            Entries::new()
        });
        for change in &session.changes {
            change.apply(&mut data)?;
        }
        self.keep_created(&mut data, session);
        Ok(data)
    }

    /// The store TTL for `data`: the idle lifetime, cut short by the absolute lifetime.
    fn ttl(&self, data: &Entries) -> Duration {
        let idle = self.config.idle_lifetime;
        match self.absolute_deadline(data) {
            Some(deadline) => {
                let left = deadline - OffsetDateTime::now_utc();
                idle.min(left.try_into().unwrap_or(Duration::from_secs(1)))
                    .max(Duration::from_secs(1))
            }
            None => idle,
        }
    }

    fn cleanup_if_due(&self) {
        let Some(every) = self.config.cleanup_every else {
            return;
        };
        if (self.loads.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every) {
            match self.store.purge_expired() {
                Ok(purged) => {
                    log::debug!("{} store: purged {purged} expired", self.store.backend())
                }
                Err(error) => log::warn!("periodic cleanup failed: {error}"),
            }
        }
    }

    /// Deletes expired records (for backends without their own expiry); returns how many.
    pub fn purge_expired(&self) -> Result<u64> {
        self.store.purge_expired()
    }

    /// Writes what the request changed and tells the response which headers to send.
    ///
    /// In the default [`Concurrency::NoLostUpdates`] mode the write is a compare-and-set: if
    /// another request of the same user saved in between, this request's changes are
    /// replayed on the fresher value and the write retried, so both requests' changes stay.
    ///
    /// A save that binds the session to an owner, moves a bound session to a new id or
    /// ends one updates the owner's index around the write (docs/DESIGN.md §9).
    pub fn save(&self, mut session: Session) -> Result<SaveOutcome> {
        if session.unobserved()
            && !session.reseal
            && let Some(loaded) = &session.loaded
            && !self.touch_due(loaded, self.config.idle_lifetime)
        {
            // Nothing read, nothing changed, no renewal due: the value's check waits for a
            // request that reads it (docs/DESIGN.md §4). Without an absolute lifetime (the
            // only case a check waits), the TTL is the idle lifetime.
            if let Some(metrics) = &self.metrics {
                metrics.saved(SaveKind::Unchanged);
            }
            return Ok(SaveOutcome::default());
        }
        session.settle();
        let vary_cookie = session.accessed.get();
        let index_plan = self.index_before_save(&session)?;
        let (kind, result) = if session.destroyed {
            let deleted = match &session.loaded {
                Some(loaded) => self.delete_record(&loaded.key),
                None => Ok(()),
            };
            (SaveKind::Ended, deleted.map(|()| self.ended(&session)))
        } else if session.regenerated {
            (SaveKind::Regenerated, self.save_regenerated(&session))
        } else if session.changes.is_empty() && !session.created_stamped && !session.reseal {
            (SaveKind::Unchanged, self.save_unmodified(&session))
        } else if session.loaded.is_none() {
            (SaveKind::Created, self.save_new(&session))
        } else {
            (SaveKind::Updated, self.save_modified(&session))
        };
        if let Some(metrics) = &self.metrics
            && let Some(kind) = SaveKind::of(kind, &result)
        {
            metrics.saved(kind);
        }
        let outcome = result?;
        let mut outcome = match index_plan {
            Some(plan) => self.index_after_save(&session, plan, outcome)?,
            None => outcome,
        };
        outcome.vary_cookie = vary_cookie || outcome.set_cookie.is_some();
        Ok(outcome)
    }

    fn ended(&self, session: &Session) -> SaveOutcome {
        SaveOutcome {
            set_cookie: session
                .cookie_sent
                .then(|| self.config.cookie.removal_cookie()),
            vary_cookie: false,
            ended: true,
        }
    }

    /// The outcome of a save that leaves the session live under `id`; `cookie_value` is the
    /// request's cookie value for `id` if it is the one to write (see `Session::cookie_value`).
    fn live(&self, id: &SessionId, data: &Entries, cookie_value: Option<&str>) -> SaveOutcome {
        let max_age = data
            .get(PERMANENT_KEY)
            .is_some_and(|v| *v == Value::Boolean(true))
            .then(|| self.ttl(data));
        let cookie = &self.config.cookie;
        let set_cookie = match cookie_value {
            Some(value) => cookie.set_cookie_value(value, max_age),
            None => cookie.set_cookie(id, max_age),
        };
        SaveOutcome {
            set_cookie: Some(set_cookie),
            vary_cookie: true,
            ended: false,
        }
    }

    /// The bytes to store for `data` under `key`: checked against the limits, encoded,
    /// then compressed and encrypted as configured (docs/DESIGN.md §4).
    fn encode(&self, key: &str, data: &Entries) -> Result<Encoded> {
        if data.len() > self.config.max_keys {
            return Err(Error::LimitExceeded {
                what: "number of keys",
                actual: data.len(),
                max: self.config.max_keys,
            });
        }
        if let Some(longest) = data.keys().map(str::len).max()
            && longest > self.config.max_key_length
        {
            return Err(Error::LimitExceeded {
                what: "key length",
                actual: longest,
                max: self.config.max_key_length,
            });
        }
        // Indexed for the memo when the value may be of a size it keeps: judged by the loaded
        // value's (the written one is not known yet); a new session's always, which happens
        // once per session.
        let loaded = data.source().len();
        let indexed = loaded == 0 || CheckedValues::keeps(loaded);
        let (bytes, written) = data.encode(self.config.format, indexed)?;
        if bytes.len() > self.config.max_size {
            return Err(Error::TooLarge {
                size: bytes.len(),
                max: self.config.max_size,
            });
        }
        let stored = if self.config.at_rest.is_on() {
            // Without a copy unless the memo's index shares the buffer.
            Bytes::from(self.config.at_rest.seal(key, Vec::from(bytes))?)
        } else {
            bytes
        };
        Ok(Encoded { stored, written })
    }

    /// Deletes the session record under `key`, forgetting its value in the memo of checked
    /// values first. Every deletion of a session record goes through here or
    /// [`compare_and_delete_record`](SessionManager::compare_and_delete_record).
    fn delete_record(&self, key: &str) -> Result<()> {
        self.checked.remove(key);
        self.store.delete(key)
    }

    /// The store's compare-and-delete of the session record under `key`, forgetting its
    /// value in the memo of checked values first.
    fn compare_and_delete_record(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        self.checked.remove(key);
        self.store.compare_and_delete(key, expected)
    }

    /// Remembers what a write that succeeded stored under `key`, so that the next load of
    /// these bytes skips their check.
    fn wrote(&self, key: &str, encoded: Encoded) {
        if let Some(written) = encoded.written {
            self.checked.put(key, written);
        }
    }

    fn save_unmodified(&self, session: &Session) -> Result<SaveOutcome> {
        let Some(loaded) = &session.loaded else {
            // Nothing stored and nothing to store; drop a cookie we could not use.
            return Ok(if session.cookie_sent {
                self.ended(session)
            } else {
                SaveOutcome::default()
            });
        };
        if !self.config.refresh_each_request {
            return Ok(SaveOutcome::default());
        }
        let ttl = self.ttl(&session.data);
        if !self.touch_due(loaded, ttl) {
            return Ok(SaveOutcome::default());
        }
        if self.store.touch(&loaded.key, ttl)? {
            Ok(self.live(&loaded.id, &session.data, session.cookie_value.as_deref()))
        } else {
            Ok(self.ended(session))
        }
    }

    /// Whether an unchanged session loaded as `loaded`, kept for `ttl`, is due for renewal:
    /// renewals are on (`refresh_each_request`) and the last one is `touch_interval` ago.
    fn touch_due(&self, loaded: &Loaded, ttl: Duration) -> bool {
        if !self.config.refresh_each_request {
            return false;
        }
        // The load returned the expiry; the last renewal was one TTL before it.
        let renewed_at = time::Duration::try_from(ttl)
            .ok()
            .and_then(|ttl| loaded.record.expires_at.checked_sub(ttl));
        !renewed_at.is_some_and(|renewed_at| {
            OffsetDateTime::now_utc() - renewed_at < self.config.touch_interval
        })
    }

    fn save_new(&self, session: &Session) -> Result<SaveOutcome> {
        if session.is_empty() {
            return self.save_unmodified(session);
        }
        Ok(self.create(&session.id, &session.data)?.1)
    }

    /// Stores `data` as a new record under `id`; returns the id used and the outcome.
    fn create(&self, id: &SessionId, data: &Entries) -> Result<(SessionId, SaveOutcome)> {
        let ttl = self.ttl(data);
        let mut id = id.clone();
        // A collision of 256-bit random ids does not happen; the loop only makes sure
        // that a colliding create could never overwrite someone else's session. The
        // value is sealed for each key, which the encryption binds it to.
        for _ in 0..3 {
            let key = self.key(&id);
            let encoded = self.encode(&key, data)?;
            if self.store.create(&key, &encoded.stored, ttl)? {
                self.wrote(&key, encoded);
                let outcome = self.live(&id, data, None);
                return Ok((id, outcome));
            }
            id = SessionId::generate();
        }
        Err(Error::store(
            self.store.backend(),
            "could not create a session under a new id",
        ))
    }

    fn save_modified(&self, session: &Session) -> Result<SaveOutcome> {
        let loaded = session.loaded.as_ref().expect("checked by save");
        let key = &loaded.key;
        if self.config.concurrency == Concurrency::LastWriterWins {
            return if session.is_empty() {
                self.delete_record(key)?;
                Ok(self.ended(session))
            } else {
                let encoded = self.encode(key, &session.data)?;
                self.store
                    .set(key, &encoded.stored, self.ttl(&session.data))?;
                self.wrote(key, encoded);
                Ok(self.live(&loaded.id, &session.data, session.cookie_value.as_deref()))
            };
        }
        // The session's own data and the record it was loaded from, until a conflict
        // replaces them with this request's changes replayed on a fresher record.
        let mut expected = Cow::Borrowed(&loaded.record);
        let mut replayed: Option<Entries> = None;
        for attempt in 0..self.config.max_attempts {
            let data = replayed.as_ref().unwrap_or(&session.data);
            // An emptied session is deleted, but only if nobody wrote to it meanwhile.
            let (result, encoded) = if holds_data(data) {
                let encoded = self.encode(key, data)?;
                let ttl = self.ttl(data);
                let result = self
                    .store
                    .compare_and_set(key, &expected, &encoded.stored, ttl)?;
                (result, Some(encoded))
            } else {
                (self.compare_and_delete_record(key, &expected)?, None)
            };
            match result {
                CasOutcome::Stored if let Some(encoded) = encoded => {
                    self.wrote(key, encoded);
                    let cookie_value = session.cookie_value.as_deref();
                    return Ok(self.live(&loaded.id, data, cookie_value));
                }
                CasOutcome::Stored => return Ok(self.ended(session)),
                CasOutcome::Conflict(None) => {
                    log::debug!("session {:?} ended by a concurrent request", loaded.id);
                    return Ok(self.ended(session));
                }
                CasOutcome::Conflict(Some(mut current)) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.conflict_retry();
                    }
                    // Retry with `current`, as fresh as a new read would be; after a few
                    // conflicts in a row, wait a random moment first (and read again, since
                    // the wait made `current` stale), so that the requests of one busy
                    // session stop overtaking each other in lockstep, where one of them
                    // could lose every round.
                    if attempt >= IMMEDIATE_RETRIES {
                        back_off(attempt);
                        match self.store.load(key)? {
                            Some(fresher) => current = fresher,
                            None => return Ok(self.ended(session)),
                        }
                    }
                    replayed = Some(self.replay(key, session, &current)?);
                    expected = Cow::Owned(current);
                }
            }
        }
        Err(Error::Contention {
            attempts: self.config.max_attempts,
        })
    }

    /// Moves the session to its new id: the session's data goes under the new id, then the
    /// old record is deleted if nobody changed it since the load; if somebody did, this
    /// request's changes are replayed on their version, which replaces the new record, and
    /// the deletion is tried again, so their change is moved over too.
    fn save_regenerated(&self, session: &Session) -> Result<SaveOutcome> {
        let Some(loaded) = &session.loaded else {
            return self.save_new(session);
        };
        let old_key = &loaded.key;
        let mut current = Cow::Borrowed(&loaded.record);
        let mut replayed: Option<Entries> = None;
        // The new id is not known to any client yet, so it is written unconditionally
        // once created.
        let mut created: Option<SessionId> = None;
        for _ in 0..self.config.max_attempts {
            let data = replayed.as_ref().unwrap_or(&session.data);
            let outcome = match (&created, holds_data(data)) {
                (None, true) => {
                    let (id, outcome) = self.create(&session.id, data)?;
                    created = Some(id);
                    outcome
                }
                (Some(id), true) => {
                    let key = self.key(id);
                    let encoded = self.encode(&key, data)?;
                    self.store.set(&key, &encoded.stored, self.ttl(data))?;
                    self.wrote(&key, encoded);
                    self.live(id, data, None)
                }
                (Some(id), false) => {
                    self.delete_record(&self.key(id))?;
                    created = None;
                    self.ended(session)
                }
                (None, false) => self.ended(session),
            };
            match self.compare_and_delete_record(old_key, &current)? {
                CasOutcome::Stored | CasOutcome::Conflict(None) => return Ok(outcome),
                CasOutcome::Conflict(Some(fresher)) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.conflict_retry();
                    }
                    replayed = Some(self.replay(old_key, session, &fresher)?);
                    current = Cow::Owned(fresher);
                }
            }
        }
        Err(Error::Contention {
            attempts: self.config.max_attempts,
        })
    }
}

/// A value ready to store: its bytes as stored, and the index of what they hold, if
/// indexed (MessagePack), for the memo of checked values.
struct Encoded {
    stored: Bytes,
    written: Option<Entries>,
}

/// The opened value as a shared buffer: the record's own when opening left it as it was
/// stored (no encryption or compression at rest), without a copy.
fn shared(stored: &Bytes, opened: Cow<'_, [u8]>) -> Bytes {
    match opened {
        Cow::Borrowed(part)
            if stored.as_ptr_range().start <= part.as_ptr()
                && part.as_ptr_range().end <= stored.as_ptr_range().end =>
        {
            stored.slice_ref(part)
        }
        Cow::Borrowed(part) => Bytes::copy_from_slice(part),
        Cow::Owned(value) => Bytes::from(value),
    }
}

/// Conflicting saves retried at once before [`back_off`] starts.
const IMMEDIATE_RETRIES: u32 = 2;

/// Waits a random moment of up to 50 µs × 2^`attempt` (at most about 13 ms) before the retry
/// that follows conflict number `attempt`. Short enough that a request of a busy session
/// retries often; random, so that the contenders stop colliding in lockstep.
pub(crate) fn back_off(attempt: u32) {
    let most = 50u64 << attempt.min(8);
    let wait = u64::from(getrandom::u32().unwrap_or(0)) % most;
    std::thread::sleep(Duration::from_micros(wait));
}

/// Marks a hashed store key, between the prefix and the hash. It holds `:`, which no id
/// holds, so a hash taken from a store dump and presented as a cookie to a manager without
/// `hash_ids` (same store, same prefix) names no record; and it suits every backend's keys
/// (the filesystem store's `[A-Za-z0-9_.:-]`, memcached's no spaces, SQL's 255 characters).
pub(crate) const HASHED_KEY_MARKER: &str = "sha256:";

/// The creation time `data` holds, if valid: whole Unix seconds, not after `now`. Anything
/// else counts as none, and the session is stamped anew.
fn created_at(data: &Entries, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let seconds = data.get(CREATED_KEY)?.as_i64()?;
    let created = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    (created <= now).then_some(created)
}

/// When a session created at `created` ends under an absolute `lifetime` (the end of time,
/// should the sum leave the calendar).
fn deadline(created: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    time::Duration::try_from(lifetime)
        .ok()
        .and_then(|lifetime| created.checked_add(lifetime))
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}
