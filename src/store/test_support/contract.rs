//! The contract of [`Store`], written once and run against every backend: each backend's
//! tests module invokes [`store_contract_tests!`] with a way to open a fresh store, which
//! makes one `#[test]` per rule of [`Contract`].
//!
//! Every rule works on keys of its own ([`unique_key`]), so the rules can run in parallel
//! against one shared server.

#[cfg(any(feature = "filesystem", feature = "sqlite"))]
use std::path::Path;
use std::thread;
use std::time::Duration;

use time::OffsetDateTime;

use super::unique_name;
use crate::store::{CasOutcome, Record, Store};

/// A TTL that outlives every test.
const LONG: Duration = Duration::from_secs(60);
/// Threads of the concurrency rule.
const THREADS: usize = 8;
/// Compare-and-set increments each thread of the concurrency rule makes.
const INCREMENTS: usize = 50;

/// What a test opens: a store, or a store with what must live as long as it (a temporary
/// directory, a table dropped at the end).
pub(crate) trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> Fixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// A store keeping its files in a temporary directory, removed after the test.
#[cfg(any(feature = "filesystem", feature = "sqlite"))]
pub(crate) struct InTempDir<S> {
    store: S,
    _dir: tempfile::TempDir,
}

#[cfg(any(feature = "filesystem", feature = "sqlite"))]
impl<S: Store> InTempDir<S> {
    /// The store `open` opens in a fresh temporary directory.
    pub(crate) fn open(open: impl FnOnce(&Path) -> S) -> InTempDir<S> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        InTempDir {
            store: open(dir.path()),
            _dir: dir,
        }
    }
}

#[cfg(any(feature = "filesystem", feature = "sqlite"))]
impl<S: Store> Fixture for InTempDir<S> {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

/// Who removes expired records, which decides what [`Store::purge_expired`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "each variant is for some backends: a build without them leaves it unused"
)]
pub(crate) enum Purge {
    /// Only the purge: it reports exactly the expired records it removed.
    Counts,
    /// The purge, and the server on its own schedule (MongoDB's TTL index): the purge
    /// reports at most the expired records, those the server had not removed yet.
    CountsWhatTheServerLeft,
    /// The server alone (Redis, memcached): the purge has nothing to do and reports 0.
    ServerExpires,
}

/// How a backend keeps time, for the rules about expiry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contract {
    /// A TTL the backend honours and the test waits out: whole seconds for memcached.
    pub(crate) short_ttl: Duration,
    /// How far a stored expiry may be from the exact one: the backend's time resolution
    /// (microseconds in SQL, milliseconds in BSON and Redis, seconds rounded up in memcached).
    pub(crate) precision: Duration,
    /// What the purge does.
    pub(crate) purge: Purge,
    /// Whether the store lists its keys ([`Store::list_keys`]); memcached cannot.
    pub(crate) lists: bool,
}

/// A store key no other test uses.
pub(crate) fn unique_key() -> String {
    unique_name("contract")
}

impl Contract {
    /// Sleeps until a record written with `short_ttl` now has expired, whatever the rounding.
    fn wait_for_expiry(&self) {
        thread::sleep(self.short_ttl * 2 + self.precision);
    }

    /// A new record as a load returns it, after which it expires: rewritten with the same
    /// data and `short_ttl`, so that the loaded record matches it in all but the expiry.
    fn expired_record(&self, store: &dyn Store) -> (String, Record) {
        let key = unique_key();
        store.create(&key, b"v1", LONG).unwrap();
        let loaded = store.load(&key).unwrap().unwrap();
        store.set(&key, b"v1", self.short_ttl).unwrap();
        self.wait_for_expiry();
        (key, loaded)
    }

    /// A load of a key never written finds nothing.
    pub(crate) fn load_of_a_missing_key_is_none(&self, store: &dyn Store) {
        assert_eq!(store.load(&unique_key()).unwrap(), None);
    }

    /// A created record loads with its data and an expiry `ttl` from the create.
    pub(crate) fn create_then_load_returns_the_data_and_expiry(&self, store: &dyn Store) {
        let key = unique_key();
        let before = OffsetDateTime::now_utc();
        assert!(store.create(&key, b"\x81\xa1x\x01", LONG).unwrap());
        let record = store.load(&key).unwrap().unwrap();
        let after = OffsetDateTime::now_utc();
        assert_eq!(&record.data[..], b"\x81\xa1x\x01");
        assert!(
            record.expires_at >= before + LONG - self.precision,
            "{} expires before {before} + {LONG:?}",
            record.expires_at
        );
        assert!(
            record.expires_at <= after + LONG + self.precision,
            "{} expires after {after} + {LONG:?}",
            record.expires_at
        );
    }

    /// A create over a live record stores nothing and says so.
    pub(crate) fn create_on_a_live_record_is_false_and_keeps_it(&self, store: &dyn Store) {
        let key = unique_key();
        assert!(store.create(&key, b"first", LONG).unwrap());
        assert!(!store.create(&key, b"second", LONG).unwrap());
        assert_eq!(&store.load(&key).unwrap().unwrap().data[..], b"first");
    }

    /// An expired record does not block a create of its key.
    pub(crate) fn create_over_an_expired_record_succeeds(&self, store: &dyn Store) {
        let key = unique_key();
        assert!(store.create(&key, b"old", self.short_ttl).unwrap());
        self.wait_for_expiry();
        assert_eq!(store.load(&key).unwrap(), None);
        assert!(store.create(&key, b"new", LONG).unwrap());
        assert_eq!(&store.load(&key).unwrap().unwrap().data[..], b"new");
    }

    /// A compare-and-set with the loaded record stores; one with a stale record conflicts
    /// with the current record and leaves it; the stored record gets the new TTL.
    pub(crate) fn compare_and_set_stores_once_then_conflicts(&self, store: &dyn Store) {
        let key = unique_key();
        store.create(&key, b"v1", LONG).unwrap();
        let stale = store.load(&key).unwrap().unwrap();
        assert_eq!(
            store.compare_and_set(&key, &stale, b"v2", LONG).unwrap(),
            CasOutcome::Stored
        );
        let current = store.load(&key).unwrap().unwrap();
        assert_eq!(&current.data[..], b"v2");
        assert_eq!(
            store.compare_and_set(&key, &stale, b"v3", LONG).unwrap(),
            CasOutcome::Conflict(Some(current.clone()))
        );
        assert_eq!(store.load(&key).unwrap(), Some(current.clone()));
        assert_eq!(
            store
                .compare_and_set(&key, &current, b"v4", self.short_ttl)
                .unwrap(),
            CasOutcome::Stored
        );
        self.wait_for_expiry();
        assert_eq!(store.load(&key).unwrap(), None, "the new TTL applies");
    }

    /// A compare-and-set finding the record deleted or expired conflicts with `None` and
    /// writes nothing.
    pub(crate) fn compare_and_set_on_a_gone_record_conflicts_with_none(&self, store: &dyn Store) {
        let key = unique_key();
        store.create(&key, b"v1", LONG).unwrap();
        let loaded = store.load(&key).unwrap().unwrap();
        store.delete(&key).unwrap();
        assert_eq!(
            store.compare_and_set(&key, &loaded, b"v2", LONG).unwrap(),
            CasOutcome::Conflict(None)
        );
        assert_eq!(store.load(&key).unwrap(), None);

        let (key, loaded) = self.expired_record(store);
        assert_eq!(
            store.compare_and_set(&key, &loaded, b"v2", LONG).unwrap(),
            CasOutcome::Conflict(None)
        );
        assert_eq!(store.load(&key).unwrap(), None);
    }

    /// A compare-and-delete with a stale record conflicts with the current one and keeps
    /// it; with the current one it deletes; on a deleted or expired record it conflicts
    /// with `None`.
    pub(crate) fn compare_and_delete_checks_the_record(&self, store: &dyn Store) {
        let key = unique_key();
        store.create(&key, b"v1", LONG).unwrap();
        let stale = store.load(&key).unwrap().unwrap();
        store.compare_and_set(&key, &stale, b"v2", LONG).unwrap();
        let current = store.load(&key).unwrap().unwrap();
        assert_eq!(
            store.compare_and_delete(&key, &stale).unwrap(),
            CasOutcome::Conflict(Some(current.clone()))
        );
        assert_eq!(store.load(&key).unwrap(), Some(current.clone()));
        assert_eq!(
            store.compare_and_delete(&key, &current).unwrap(),
            CasOutcome::Stored
        );
        assert_eq!(store.load(&key).unwrap(), None);
        assert_eq!(
            store.compare_and_delete(&key, &current).unwrap(),
            CasOutcome::Conflict(None)
        );
        assert_eq!(
            store.compare_and_set(&key, &current, b"v3", LONG).unwrap(),
            CasOutcome::Conflict(None)
        );

        let (key, loaded) = self.expired_record(store);
        assert_eq!(
            store.compare_and_delete(&key, &loaded).unwrap(),
            CasOutcome::Conflict(None)
        );
    }

    /// A touch sets a new expiry, `ttl` from now, longer or shorter, and keeps the data.
    pub(crate) fn touch_renews_the_expiry_and_keeps_the_data(&self, store: &dyn Store) {
        let key = unique_key();
        store.create(&key, b"data", LONG).unwrap();
        let before = store.load(&key).unwrap().unwrap();
        assert!(store.touch(&key, LONG * 2).unwrap());
        let after = store.load(&key).unwrap().unwrap();
        assert_eq!(&after.data[..], b"data");
        assert!(
            after.expires_at > before.expires_at + LONG / 2,
            "touched to {}, was {}",
            after.expires_at,
            before.expires_at
        );
        assert!(store.touch(&key, self.short_ttl).unwrap());
        self.wait_for_expiry();
        assert_eq!(store.load(&key).unwrap(), None, "the shorter TTL applies");
    }

    /// A touch finds nothing to renew under a missing or expired key, and brings nothing
    /// back.
    pub(crate) fn touch_of_a_missing_or_expired_record_is_false(&self, store: &dyn Store) {
        assert!(!store.touch(&unique_key(), LONG).unwrap());
        let key = unique_key();
        store.create(&key, b"data", self.short_ttl).unwrap();
        self.wait_for_expiry();
        assert!(!store.touch(&key, LONG).unwrap());
        assert_eq!(store.load(&key).unwrap(), None);
    }

    /// A set writes under a missing key, and over a live record, its TTL included.
    pub(crate) fn set_overwrites_unconditionally(&self, store: &dyn Store) {
        let fresh = unique_key();
        store.set(&fresh, b"one", LONG).unwrap();
        assert_eq!(&store.load(&fresh).unwrap().unwrap().data[..], b"one");
        let key = unique_key();
        store.create(&key, b"one", self.short_ttl).unwrap();
        store.set(&key, b"two", LONG).unwrap();
        self.wait_for_expiry();
        assert_eq!(&store.load(&key).unwrap().unwrap().data[..], b"two");
    }

    /// A delete removes the record; deleting a missing key is no error.
    pub(crate) fn delete_removes_and_tolerates_a_missing_key(&self, store: &dyn Store) {
        let key = unique_key();
        store.create(&key, b"data", LONG).unwrap();
        store.delete(&key).unwrap();
        assert_eq!(store.load(&key).unwrap(), None);
        store.delete(&key).unwrap();
        store.delete(&unique_key()).unwrap();
    }

    /// A purge removes the expired records (see [`Purge`] for what it reports) and keeps
    /// the live ones.
    pub(crate) fn purge_removes_only_expired_records(&self, store: &dyn Store) {
        let expiring = [unique_key(), unique_key()];
        let live = unique_key();
        for key in &expiring {
            store.create(key, b"x", self.short_ttl).unwrap();
        }
        store.create(&live, b"x", LONG).unwrap();
        self.wait_for_expiry();
        let purged = store.purge_expired().unwrap();
        match self.purge {
            Purge::Counts => assert_eq!(purged, 2),
            Purge::CountsWhatTheServerLeft => assert!(purged <= 2, "{purged}"),
            Purge::ServerExpires => assert_eq!(purged, 0),
        }
        assert_eq!(store.purge_expired().unwrap(), 0);
        for key in &expiring {
            assert_eq!(store.load(key).unwrap(), None);
        }
        assert!(store.load(&live).unwrap().is_some());
    }

    /// The listing of a prefix, page by page, gives each of its live keys, no expired one and
    /// nothing outside it; a store that cannot list says so with an error of its own.
    pub(crate) fn list_keys_pages_through_the_live_keys_of_a_prefix(&self, store: &dyn Store) {
        let prefix = format!("{}:", unique_name("listed"));
        let listing = |limit: usize| -> crate::Result<Vec<String>> {
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = store.list_keys(&prefix, cursor.as_deref(), limit)?;
                keys.extend(page.keys);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            keys.sort();
            keys.dedup();
            Ok(keys)
        };
        if !self.lists {
            match listing(10) {
                Err(crate::Error::Store { backend, message }) => {
                    assert_eq!(backend, store.backend());
                    assert!(message.contains("cannot list"), "{message}");
                }
                other => panic!("listed: {other:?}"),
            }
            return;
        }
        let mut live: Vec<String> = (0..23).map(|n| format!("{prefix}{n:02}")).collect();
        for key in &live {
            store.create(key, b"x", LONG).unwrap();
        }
        let expired = format!("{prefix}expired");
        store.create(&expired, b"x", self.short_ttl).unwrap();
        store
            .create(&format!("{prefix}-other"), b"x", LONG)
            .unwrap();
        live.push(format!("{prefix}-other"));
        store.create(&unique_name("unlisted"), b"x", LONG).unwrap();
        self.wait_for_expiry();
        live.sort();
        assert_eq!(listing(5).unwrap(), live);
        assert_eq!(listing(1000).unwrap(), live);
        let page = store
            .list_keys(&format!("{prefix}nothing"), None, 10)
            .unwrap();
        assert!(page.keys.is_empty(), "{page:?}");
    }

    /// Concurrent compare-and-set increments on one store lose nothing.
    pub(crate) fn concurrent_compare_and_set_loses_nothing(&self, store: &dyn Store) {
        concurrent_increments_lose_nothing(&[store]);
    }
}

/// [`THREADS`] threads, taking the `stores` in turn (handles on the same sessions, as
/// several processes would open them), each add 1 to a counter [`INCREMENTS`] times by
/// compare-and-set, merging into the fresher value on a conflict: no increment is lost.
pub(crate) fn concurrent_increments_lose_nothing(stores: &[&dyn Store]) {
    let key = unique_key();
    assert!(stores[0].create(&key, b"0", LONG).unwrap());
    thread::scope(|scope| {
        for n in 0..THREADS {
            let store = stores[n % stores.len()];
            let key = key.as_str();
            scope.spawn(move || increment(store, key, INCREMENTS));
        }
    });
    let total = (THREADS * INCREMENTS).to_string();
    assert_eq!(
        stores[0].load(&key).unwrap().unwrap().data,
        total.as_bytes()
    );
}

/// Adds 1 to the decimal counter under `key` `times` times by compare-and-set.
fn increment(store: &dyn Store, key: &str, times: usize) {
    let mut current = store.load(key).unwrap().unwrap();
    for _ in 0..times {
        loop {
            let n: u64 = std::str::from_utf8(&current.data).unwrap().parse().unwrap();
            let next = (n + 1).to_string();
            match store
                .compare_and_set(key, &current, next.as_bytes(), LONG)
                .unwrap()
            {
                CasOutcome::Stored => {
                    // Versioned by its bytes: a store with tokens matches them to its own.
                    current = Record::new(next.into_bytes(), current.expires_at);
                    break;
                }
                CasOutcome::Conflict(fresher) => current = fresher.expect("the counter exists"),
            }
        }
    }
}

/// Makes one `#[test]` per rule of [`Contract`] in a module `$module`, each on the fixture
/// (a [`Fixture`]) that `$open` makes.
///
/// ```ignore
/// store_contract_tests! {
///     mod contract;
///     open: MemoryStore::new(),
///     short_ttl: Duration::from_millis(50),
///     precision: Duration::ZERO,
///     purge: Purge::Counts,
/// }
/// ```
macro_rules! store_contract_tests {
    (
        mod $module:ident;
        open: $open:expr,
        short_ttl: $short_ttl:expr,
        precision: $precision:expr,
        purge: $purge:expr
        $(, lists: $lists:expr)? $(,)?
    ) => {
        mod $module {
            use super::*;

            const CONTRACT: $crate::store::test_support::contract::Contract =
                $crate::store::test_support::contract::Contract {
                    short_ttl: $short_ttl,
                    precision: $precision,
                    purge: $purge,
                    lists: $crate::store::test_support::contract::store_contract_tests!(
                        @lists $($lists)?
                    ),
                };

            $crate::store::test_support::contract::store_contract_tests!(
                @rules $open;
                load_of_a_missing_key_is_none,
                create_then_load_returns_the_data_and_expiry,
                create_on_a_live_record_is_false_and_keeps_it,
                create_over_an_expired_record_succeeds,
                compare_and_set_stores_once_then_conflicts,
                compare_and_set_on_a_gone_record_conflicts_with_none,
                compare_and_delete_checks_the_record,
                touch_renews_the_expiry_and_keeps_the_data,
                touch_of_a_missing_or_expired_record_is_false,
                set_overwrites_unconditionally,
                delete_removes_and_tolerates_a_missing_key,
                purge_removes_only_expired_records,
                concurrent_compare_and_set_loses_nothing,
                list_keys_pages_through_the_live_keys_of_a_prefix,
            );
        }
    };
    (@lists) => { true };
    (@lists $lists:expr) => { $lists };
    (@rules $open:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                let fixture = $open;
                CONTRACT.$rule($crate::store::test_support::contract::Fixture::store(&fixture));
            }
        )*
    };
}

pub(crate) use store_contract_tests;
