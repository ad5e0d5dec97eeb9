//! One request's view of a session: its data, and the log of what this request changed.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, Entries};
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::manager::CheckedValues;
use crate::metrics::{LoadOutcome, Metrics};
use crate::store::Record;

/// Reserved key marking a permanent session (Flask's `session.permanent`).
pub const PERMANENT_KEY: &str = "_permanent";
/// Reserved key holding the creation time (Unix seconds) when an absolute lifetime is set.
pub const CREATED_KEY: &str = "_created";
/// Reserved key holding the owner a session is bound to (docs/DESIGN.md §9), set by
/// [`Session::set_owner`]. Flask-Session round-trips it as any other key.
pub const OWNER_KEY: &str = "_owner";
/// The longest owner [`Session::set_owner`] accepts, in bytes.
pub const MAX_OWNER_LEN: usize = 256;

/// Keys that sessionstore manages itself. A session holding nothing else counts as empty.
/// Other keys starting with `_` (Flask's `_flashes`, Flask-Login's `_user_id`) are data.
fn is_reserved(key: &str) -> bool {
    key == PERMANENT_KEY || key == CREATED_KEY
}

/// Refuses a write to `_created`: the creation time bounds the absolute lifetime, so only
/// the manager sets it (docs/DESIGN.md §5); and to `_owner`, which only
/// [`Session::set_owner`] sets, since the owner index must follow it (docs/DESIGN.md §9).
fn check_writable(key: &str) -> Result<()> {
    if key == OWNER_KEY {
        return Err(Error::Value {
            key: key.to_owned(),
            message: "reserved: bind the session with set_owner".into(),
        });
    }
    if key == CREATED_KEY {
        return Err(Error::Value {
            key: key.to_owned(),
            message: "reserved: the creation time is kept by sessionstore, not the application"
                .into(),
        });
    }
    Ok(())
}

/// Removes every key but the creation time, which outlives a `clear` (docs/DESIGN.md §5).
fn clear_keeping_created(data: &mut Entries) {
    let created = data.remove(CREATED_KEY);
    data.clear();
    if let Some(created) = created {
        data.insert(CREATED_KEY, created);
    }
}

/// A fresh session's entries: `_permanent` when sessions start permanent, and `_created`
/// when the session's creation time (Unix seconds) is kept for an absolute lifetime.
pub(crate) fn fresh_entries(permanent: bool, created: Option<i64>) -> Entries {
    let mut data = Entries::new();
    if permanent {
        data.insert(PERMANENT_KEY, Value::Boolean(true));
    }
    if let Some(created) = created {
        data.insert(CREATED_KEY, Value::from(created));
    }
    data
}

/// Logs a stored value that failed the check, which the session then replaces afresh.
pub(crate) fn log_undecodable(backend: &str, id: &SessionId, error: &Error) {
    log::warn!(
        "{backend} store: session {id:?} holds an undecodable value, starting afresh: {error}"
    );
}

/// Whether `data` holds anything besides reserved keys (an empty session is never stored).
pub(crate) fn holds_data(data: &Entries) -> bool {
    data.keys().any(|key| !is_reserved(key))
}

/// A recorded [`Session::modify`]: the key, then its current value.
type Operation = Arc<dyn Fn(&str, Option<&Value>) -> Result<Value> + Send + Sync>;

/// Runs `operation` on `current`, the value under `key`, refusing a result nested deeper
/// than the codec's limit.
fn run(operation: &Operation, key: &str, current: Option<&Value>) -> Result<Value> {
    let value = operation(key, current)?;
    codec::check_nesting(key, &value)?;
    Ok(value)
}

/// One change made by this request, replayed on a fresher value when a save conflicts.
#[derive(Clone)]
pub(crate) enum Change {
    Set(String, Value),
    Remove(String),
    Clear,
    Modify(String, Operation),
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Set(key, value) => write!(f, "Set({key:?}, {value})"),
            Change::Remove(key) => write!(f, "Remove({key:?})"),
            Change::Clear => f.write_str("Clear"),
            Change::Modify(key, _) => write!(f, "Modify({key:?})"),
        }
    }
}

impl Change {
    pub(crate) fn apply(&self, data: &mut Entries) -> Result<()> {
        match self {
            Change::Set(key, value) => {
                data.insert(key, value.clone());
            }
            Change::Remove(key) => {
                data.remove(key);
            }
            Change::Clear => clear_keeping_created(data),
            Change::Modify(key, operation) => {
                let value = run(operation, key, data.get(key))?;
                data.insert(key, value);
            }
        }
        Ok(())
    }
}

/// The record a session was loaded from: the id it lives under and the version seen.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) id: SessionId,
    /// The store key of `id`, computed by the load and kept for the save.
    pub(crate) key: String,
    pub(crate) record: Record,
}

/// A loaded value whose check waits for the session's first observation (docs/DESIGN.md
/// §4): every read, change, `id()` or `is_new()` runs it first, so a value that fails it is
/// never seen, not even in part, and the session is then fresh, as if the load had found
/// nothing. A request that neither reads nor changes its session skips the check.
pub(crate) struct Unchecked {
    /// The stored value, opened (decrypted, decompressed) but not checked.
    source: Bytes,
    /// Whether a fresh session starts permanent (the manager's setting).
    permanent: bool,
    /// The store's backend name, for the log line of a value that fails the check.
    backend: &'static str,
    /// Where the load's outcome is counted, once: when the check runs, or, if it never
    /// does, as a hit when the session is dropped.
    metrics: Cell<Option<Arc<Metrics>>>,
    /// The manager's values already checked: the check looks there first and adds to it.
    memo: Arc<CheckedValues>,
    checked: OnceCell<Checked>,
}

/// What the check of an [`Unchecked`] value found.
enum Checked {
    /// A well-formed value: its entries and the owner they bind the session to.
    Intact {
        data: Entries,
        owner: Option<String>,
    },
    /// A value that fails the check, and the fresh session that replaces it.
    Refused(Box<Session>),
}

impl Unchecked {
    pub(crate) fn new(
        source: Bytes,
        permanent: bool,
        backend: &'static str,
        metrics: Option<Arc<Metrics>>,
        memo: Arc<CheckedValues>,
    ) -> Unchecked {
        Unchecked {
            source,
            permanent,
            backend,
            metrics: Cell::new(metrics),
            memo,
            checked: OnceCell::new(),
        }
    }

    fn checked(&self, loaded: &Loaded) -> &Checked {
        self.checked.get_or_init(|| self.check(loaded, true))
    }

    /// Checks the value of the session `loaded` and indexes its entries (exactly the eager
    /// load's work, the memo of checked values included, which it adds to if `remember`),
    /// counting the load's outcome.
    fn check(&self, loaded: &Loaded, remember: bool) -> Checked {
        let id = &loaded.id;
        match self.memo.entries_of(&loaded.key, &self.source, remember) {
            Ok(data) => {
                self.count(LoadOutcome::Hit);
                let owner = owner_of(&data).map(str::to_owned);
                Checked::Intact { data, owner }
            }
            Err(error) => {
                log_undecodable(self.backend, id, &error);
                self.count(LoadOutcome::Undecodable);
                // Deferred only without an absolute lifetime: no `_created` to stamp.
                let data = fresh_entries(self.permanent, None);
                Checked::Refused(Box::new(Session::fresh(data, true)))
            }
        }
    }

    fn count(&self, outcome: LoadOutcome) {
        if let Some(metrics) = self.metrics.take() {
            metrics.loaded(outcome);
        }
    }
}

impl Drop for Unchecked {
    fn drop(&mut self) {
        self.count(LoadOutcome::Hit);
    }
}

/// A session for the length of one request.
///
/// Get one from [`SessionManager::load`](crate::SessionManager::load), read and change it,
/// then hand it to [`SessionManager::save`](crate::SessionManager::save).
///
/// ```
/// # use sessionstore::{Config, SessionManager, store::StoreConfig};
/// # let manager = SessionManager::new(Config::builder(StoreConfig::Memory).build().unwrap()).unwrap();
/// let mut session = manager.load(None).unwrap();
/// session.insert("user", "ann").unwrap();
/// session.modify("visits", |n: Option<i64>| n.unwrap_or(0) + 1).unwrap();
/// assert_eq!(session.get::<String>("user").unwrap().as_deref(), Some("ann"));
/// let saved = manager.save(session).unwrap();
/// assert!(saved.set_cookie.is_some());
/// ```
pub struct Session {
    pub(crate) id: SessionId,
    pub(crate) data: Entries,
    pub(crate) loaded: Option<Loaded>,
    pub(crate) changes: Vec<Change>,
    pub(crate) accessed: Cell<bool>,
    pub(crate) regenerated: bool,
    pub(crate) destroyed: bool,
    pub(crate) cookie_sent: bool,
    /// The load gave the session the creation time its record lacked (an absolute lifetime
    /// is configured): the save must write it even if the request changed nothing.
    pub(crate) created_stamped: bool,
    /// The record is not sealed as the at-rest settings seal a save (an old data key, or
    /// not encrypted while keys are configured): the save rewrites it even if the request
    /// changed nothing, so a key rotation completes with each session's next request.
    pub(crate) reseal: bool,
    /// The owner the stored record was bound to when loaded (docs/DESIGN.md §9).
    pub(crate) loaded_owner: Option<String>,
    /// The request's cookie value when it is the one a save would write for the loaded id
    /// (signed with the first secret): the save writes it again instead of signing anew.
    pub(crate) cookie_value: Option<String>,
    /// The loaded value, while its check waits for the first observation; `data` and
    /// `loaded_owner` are empty until [`settle`](Session::settle) fills them.
    pub(crate) unchecked: Option<Unchecked>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", self.id())
            .field("keys", &self.entries().keys().collect::<Vec<_>>())
            .field("changes", &self.changes)
            .field("new", &self.is_new())
            .finish()
    }
}

impl Session {
    pub(crate) fn fresh(data: Entries, cookie_sent: bool) -> Session {
        Session {
            id: SessionId::generate(),
            data,
            loaded: None,
            changes: Vec::new(),
            accessed: Cell::new(false),
            regenerated: false,
            destroyed: false,
            cookie_sent,
            created_stamped: false,
            reseal: false,
            loaded_owner: None,
            cookie_value: None,
            unchecked: None,
        }
    }

    /// The session stored under `key` with `data`, checked.
    pub(crate) fn from_record(
        id: SessionId,
        key: String,
        data: Entries,
        record: Record,
    ) -> Session {
        let loaded_owner = owner_of(&data).map(str::to_owned);
        Session {
            data,
            loaded_owner,
            ..Session::from_unchecked(id, key, record, None)
        }
    }

    /// The session stored under `key`, its value not checked yet (see [`Unchecked`]).
    pub(crate) fn from_unchecked(
        id: SessionId,
        key: String,
        record: Record,
        unchecked: Option<Unchecked>,
    ) -> Session {
        Session {
            id: id.clone(),
            data: Entries::new(),
            loaded: Some(Loaded { id, key, record }),
            changes: Vec::new(),
            accessed: Cell::new(false),
            regenerated: false,
            destroyed: false,
            cookie_sent: true,
            created_stamped: false,
            reseal: false,
            loaded_owner: None,
            cookie_value: None,
            unchecked,
        }
    }

    /// The outcome of the deferred check, running it if it has not run.
    fn checked(&self) -> Option<&Checked> {
        let unchecked = self.unchecked.as_ref()?;
        let loaded = self.loaded.as_ref()?;
        Some(unchecked.checked(loaded))
    }

    /// The session's data as observed: the checked entries, or a fresh session's.
    fn entries(&self) -> &Entries {
        match self.checked() {
            None => &self.data,
            Some(Checked::Intact { data, .. }) => data,
            Some(Checked::Refused(fresh)) => &fresh.data,
        }
    }

    /// Whether a deferred check is still waiting: nothing has observed the session.
    pub(crate) fn unobserved(&self) -> bool {
        self.unchecked
            .as_ref()
            .is_some_and(|unchecked| unchecked.checked.get().is_none())
    }

    /// Runs the deferred check, if any, and makes its outcome the session's own state: the
    /// checked entries, or the fresh session that replaces a value that failed it. Every
    /// change and every save starts here.
    pub(crate) fn settle(&mut self) {
        self.settle_remembering(true);
    }

    /// [`settle`](Session::settle) before a change: the check does not remember the loaded
    /// value in the manager's memo, since the save that writes the change remembers what it
    /// writes instead.
    fn settle_for_change(&mut self) {
        self.settle_remembering(false);
    }

    fn settle_remembering(&mut self, remember: bool) {
        let Some(mut unchecked) = self.unchecked.take() else {
            return;
        };
        let checked = match (unchecked.checked.take(), &self.loaded) {
            (Some(checked), _) => checked,
            (None, Some(loaded)) => unchecked.check(loaded, remember),
            // A value waits for its check only in a loaded session.
            (None, None) => return,
        };
        match checked {
            Checked::Intact { data, owner } => {
                self.data = data;
                self.loaded_owner = owner;
            }
            Checked::Refused(fresh) => {
                let accessed = self.accessed.get();
                *self = *fresh;
                self.accessed.set(accessed);
            }
        }
    }

    /// The session's id (after [`regenerate`](Session::regenerate), the new one).
    pub fn id(&self) -> &SessionId {
        match self.checked() {
            Some(Checked::Refused(fresh)) => &fresh.id,
            _ => &self.id,
        }
    }

    /// Whether the session was not found in the store (no cookie, bad cookie, unknown or
    /// expired id, a stored value that fails its check): it will be stored under a new id
    /// once something is written to it.
    pub fn is_new(&self) -> bool {
        match self.checked() {
            Some(Checked::Refused(_)) => true,
            _ => self.loaded.is_none(),
        }
    }

    /// Whether this request changed anything (data, permanence, id).
    pub fn is_modified(&self) -> bool {
        !self.changes.is_empty() || self.regenerated || self.destroyed
    }

    /// Whether the session holds no data besides the reserved keys.
    pub fn is_empty(&self) -> bool {
        !holds_data(self.entries())
    }

    fn touch(&self) {
        self.accessed.set(true);
    }

    /// Reads `key` as a `T`; `Ok(None)` if absent, an error if it holds another type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_value(key)
            .map(|value| decode_value(key, value.clone()))
            .transpose()
    }

    /// Reads the raw MessagePack value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.touch();
        self.entries().get(key)
    }

    /// Stores `value` under `key` (any serde-serializable value).
    ///
    /// Fails, recording nothing, for the reserved key `_created` and for a value whose
    /// arrays and maps nest deeper than [`MAX_NESTING`](crate::codec::MAX_NESTING).
    pub fn insert<T: Serialize>(&mut self, key: &str, value: T) -> Result<()> {
        let value = encode_value(key, &value)?;
        self.insert_value(key, value)
    }

    /// Stores a raw MessagePack value under `key`; fails as [`insert`](Session::insert) does.
    pub fn insert_value(&mut self, key: &str, value: Value) -> Result<()> {
        self.settle_for_change();
        check_writable(key)?;
        codec::check_nesting(key, &value)?;
        self.set(key, value);
        Ok(())
    }

    /// Sets `key` to a value already checked, and records the change.
    fn set(&mut self, key: &str, value: Value) {
        self.settle_for_change();
        self.touch();
        self.data.insert(key, value.clone());
        self.changes.push(Change::Set(key.to_owned(), value));
    }

    /// Removes `key`, returning its former value. The reserved `_created` and `_owner` cannot
    /// be removed: removing them does nothing and returns `None`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.settle_for_change();
        self.touch();
        if key == CREATED_KEY || key == OWNER_KEY {
            return None;
        }
        // Recorded even when the key is absent here: a concurrent request may have added
        // it, and this request's intent is that it be gone.
        self.changes.push(Change::Remove(key.to_owned()));
        self.data.remove(key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.touch();
        self.entries().contains_key(key)
    }

    /// All keys, reserved ones included, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.touch();
        self.entries().keys()
    }

    /// Removes every key but the creation time `_created`; the owner goes too (the session
    /// then ends unless something is written after; a login that clears, regenerates and
    /// writes keeps the session's absolute deadline).
    pub fn clear(&mut self) {
        self.settle_for_change();
        self.touch();
        self.changes.push(Change::Clear);
        clear_keeping_created(&mut self.data);
    }

    /// Replaces the value under `key` with `f(current)`. Unlike `insert`, the operation
    /// itself is recorded: if a concurrent request changed the session, the save re-runs `f`
    /// on the fresher value, so no increment is lost.
    ///
    /// Returns the new value. Fails, recording nothing, if the current value is not a `T`,
    /// and as [`insert`](Session::insert) does.
    pub fn modify<T, F>(&mut self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        // The key is handed to the operation, not captured: one allocation less.
        let new_value = self.record_modify(
            key,
            Arc::new(move |key: &str, current: Option<&Value>| {
                let current = current
                    .map(|value| decode_value(key, value.clone()))
                    .transpose()?;
                encode_value(key, &f(current))
            }),
        )?;
        decode_value(key, new_value.clone())
    }

    /// [`modify`](Session::modify) on raw MessagePack values: replaces the value under `key`
    /// with `operation(current)` (`None` when the key is absent) and records the operation,
    /// which a conflicting save re-runs on the fresher value. An error from `operation`
    /// changes and records nothing here, and fails the save when a replay returns it.
    ///
    /// Returns the new value. Fails, recording nothing, for the reserved `_created` and for a
    /// value nested deeper than the codec's limit (a replay then fails the save).
    pub fn modify_value<F>(&mut self, key: &str, operation: F) -> Result<&Value>
    where
        F: Fn(Option<&Value>) -> Result<Value> + Send + Sync + 'static,
    {
        self.record_modify(key, Arc::new(move |_: &str, current| operation(current)))
    }

    /// Runs `operation` on the value under `key`, stores its result and records it.
    fn record_modify(&mut self, key: &str, operation: Operation) -> Result<&Value> {
        self.settle_for_change();
        check_writable(key)?;
        self.touch();
        let new_value = run(&operation, key, self.data.get(key))?;
        self.changes.push(Change::Modify(key.to_owned(), operation));
        Ok(self.data.insert(key, new_value))
    }

    /// Whether the session outlives the browser session (`_permanent`).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.entries().get(PERMANENT_KEY),
            Some(Value::Boolean(true))
        )
    }

    /// Makes the session permanent (cookie with Expires/Max-Age) or a browser-session one.
    pub fn set_permanent(&mut self, permanent: bool) {
        if permanent {
            self.settle_for_change();
            self.touch();
            self.data.insert(PERMANENT_KEY, Value::Boolean(true));
            self.changes
                .push(Change::Set(PERMANENT_KEY.to_owned(), Value::Boolean(true)));
        } else {
            self.remove(PERMANENT_KEY);
        }
    }

    /// Gives the session a new id on save, keeping its data; the old record is deleted.
    /// Call it when the user logs in (defeats session fixation).
    pub fn regenerate(&mut self) {
        self.settle_for_change();
        self.touch();
        self.regenerated = true;
        self.id = SessionId::generate();
    }

    /// The owner the session is bound to (docs/DESIGN.md §9), if any.
    pub fn owner(&self) -> Option<&str> {
        owner_of(self.entries())
    }

    /// Binds the session to `owner`, the application's user id, from this save on: the
    /// manager can then list and end all sessions of that owner. The binding survives
    /// [`regenerate`](Session::regenerate); [`destroy`](Session::destroy),
    /// [`clear`](Session::clear) and expiry end it. Binding to the current owner changes
    /// nothing. Fails, recording nothing, for an empty owner, one longer than
    /// [`MAX_OWNER_LEN`] bytes, or one holding a NUL character (which the C ABI cannot pass).
    pub fn set_owner(&mut self, owner: &str) -> Result<()> {
        if owner.is_empty() || owner.len() > MAX_OWNER_LEN || owner.contains('\0') {
            return Err(Error::Value {
                key: OWNER_KEY.to_owned(),
                message: format!("an owner is 1 to {MAX_OWNER_LEN} bytes, without NUL"),
            });
        }
        if self.owner() != Some(owner) {
            self.set(OWNER_KEY, Value::from(owner));
        }
        Ok(())
    }

    /// Ends the session: on save the record is deleted and the cookie expired.
    pub fn destroy(&mut self) {
        self.settle_for_change();
        self.touch();
        self.destroyed = true;
        self.data.clear();
    }
}

/// The owner `data` is bound to: its `_owner` string, if any.
pub(crate) fn owner_of(data: &Entries) -> Option<&str> {
    data.get(OWNER_KEY).and_then(Value::as_str)
}

fn decode_value<T: DeserializeOwned>(key: &str, value: Value) -> Result<T> {
    rmpv::ext::from_value(value).map_err(|e| Error::Value {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// Converts `value` to a MessagePack value; the callers check its nesting once.
fn encode_value<T: Serialize>(key: &str, value: &T) -> Result<Value> {
    let value = rmpv::ext::to_value(value).map_err(|e| Error::Value {
        key: key.to_owned(),
        message: e.to_string(),
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::fresh(Entries::new(), false)
    }

    #[test]
    fn typed_values_round_trip_through_serde() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Cart {
            items: Vec<String>,
            total: f64,
        }
        let mut s = session();
        let cart = Cart {
            items: vec!["tea".into()],
            total: 2.5,
        };
        s.insert("cart", &cart).unwrap();
        s.insert("n", 7u64).unwrap();
        assert_eq!(s.get::<Cart>("cart").unwrap(), Some(cart));
        assert_eq!(s.get::<i64>("n").unwrap(), Some(7));
        assert_eq!(s.get::<i64>("missing").unwrap(), None);
        assert_eq!(s.keys().collect::<Vec<_>>(), ["cart", "n"]);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        let mut s = session();
        s.insert("name", "ann").unwrap();
        let error = s.get::<i64>("name").unwrap_err();
        assert!(
            matches!(&error, Error::Value { key, .. } if key == "name"),
            "{error}"
        );
        let error = s
            .modify("name", |n: Option<i64>| n.unwrap_or(0) + 1)
            .unwrap_err();
        assert!(matches!(error, Error::Value { .. }));
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("ann"));
        assert_eq!(s.changes.len(), 1, "a failed modify records nothing");
    }

    #[test]
    fn changes_are_logged_in_order_and_replay_to_the_same_data() {
        let mut s = session();
        s.insert("a", 1).unwrap();
        s.modify("n", |n: Option<i64>| n.unwrap_or(10) * 2).unwrap();
        s.remove("a");
        s.set_permanent(true);
        assert!(s.is_permanent() && s.is_modified() && !s.is_empty());
        let mut replayed = Entries::new();
        for change in &s.changes {
            change.apply(&mut replayed).unwrap();
        }
        assert_eq!(replayed, s.data);
        s.clear();
        assert!(s.is_empty() && !s.is_permanent());
    }

    #[test]
    fn raw_operations_are_recorded_and_replayed() {
        let mut s = session();
        let append = |current: Option<&Value>| -> Result<Value> {
            let mut items = match current {
                None => Vec::new(),
                Some(Value::Array(items)) => items.clone(),
                Some(_) => {
                    return Err(Error::Value {
                        key: "log".into(),
                        message: "not an array".into(),
                    });
                }
            };
            items.push(Value::from("seen"));
            Ok(Value::Array(items))
        };
        assert_eq!(
            s.modify_value("log", append).unwrap(),
            &Value::Array(vec![Value::from("seen")])
        );
        let mut fresher = Entries::new();
        fresher.insert("log", Value::Array(vec![Value::from("other")]));
        for change in &s.changes {
            change.apply(&mut fresher).unwrap();
        }
        assert_eq!(
            fresher.get("log"),
            Some(&Value::Array(vec![
                Value::from("other"),
                Value::from("seen")
            ]))
        );
        s.insert("name", "ann").unwrap();
        assert!(s.modify_value("name", append).is_err());
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("ann"));
        assert_eq!(s.changes.len(), 2, "a failed operation records nothing");
    }

    #[test]
    fn reading_marks_the_session_accessed() {
        let s = session();
        assert!(!s.accessed.get());
        assert!(!s.contains("x"));
        assert!(s.accessed.get());
    }

    #[test]
    fn regenerate_changes_the_id_and_destroy_empties() {
        let mut s = session();
        let before = s.id().clone();
        s.insert("user", "ann").unwrap();
        s.regenerate();
        assert_ne!(s.id(), &before);
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ann"));
        s.destroy();
        assert!(s.is_empty() && s.is_modified());
    }
}
