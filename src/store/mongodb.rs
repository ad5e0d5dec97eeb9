//! MongoDB store: Flask-Session's documents, through the `mongodb` crate's synchronous API
//! and its connection pool.
//!
//! One document per session, as Flask-Session 0.8 writes them, in database `flask_session`,
//! collection `sessions` (both configurable):
//!
//! ```text
//! { id: "session:<id>", val: BinData(0, <MessagePack>), expiration: ISODate(<UTC>) }
//! ```
//!
//! Opening the store creates the TTL index on `expiration` (`expireAfterSeconds: 0`, the
//! same index Flask-Session creates) and a unique index on `id`, which Flask-Session lacks
//! (its issue #139) and which makes a create fail on a live session. The server's TTL sweep
//! runs only about once a minute, so every read, compare-and-set and touch also filters on
//! `expiration > now` (now computed here, in UTC). Compare-and-set is one `update_one`
//! filtered on `{id, val: <expected bytes>, expiration > now}`; a create is an upsert
//! filtered on `{id, expiration <= now}`, so it replaces only an expired document and the
//! unique index refuses it when a live one exists.
//!
//! The driver's pool (`maxPoolSize` connections, 10 by default) makes a call wait for a free
//! connection without a limit (it ignores `waitQueueTimeoutMS`), so the store lets at most
//! `maxPoolSize` calls reach the driver at once and a call waits at most `pool_timeout`
//! (5 s by default) for its turn.

use std::fmt;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::sync::{Client, Collection};
use time::OffsetDateTime;

use super::shared::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_TIMEOUT, deadline_after, expiry_after,
    pool_timeout_message, shown_key,
};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, redacted};

const BACKEND: &str = "mongodb";
/// How long an operation waits for a reachable server, unless the URL's
/// `serverSelectionTimeoutMS` says otherwise (the driver's own default is 30 s).
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's error code for a duplicate unique key.
const DUPLICATE_KEY: i32 = 11000;
/// The driver's pool size unless the URL's `maxPoolSize` says otherwise.
const DRIVER_POOL_SIZE: u32 = 10;

/// The MongoDB connection-string options handed to the driver; the URL's other parameters
/// are this crate's (`db`, `collection`, and the session settings).
const DRIVER_OPTIONS: &[&str] = &[
    "appName",
    "authMechanism",
    "authMechanismProperties",
    "authSource",
    "compressors",
    "connectTimeoutMS",
    "directConnection",
    "heartbeatFrequencyMS",
    "journal",
    "loadBalanced",
    "localThresholdMS",
    "maxConnecting",
    "maxIdleTimeMS",
    "maxPoolSize",
    "maxStalenessSeconds",
    "minPoolSize",
    "readConcernLevel",
    "readPreference",
    "readPreferenceTags",
    "replicaSet",
    "retryReads",
    "retryWrites",
    "serverMonitoringMode",
    "serverSelectionTimeoutMS",
    "socketTimeoutMS",
    "ssl",
    "timeoutMS",
    "tls",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
    "tlsInsecure",
    "w",
    "waitQueueTimeoutMS",
    "wTimeoutMS",
    "zlibCompressionLevel",
];

/// Options of the MongoDB store.
#[derive(Clone, PartialEq, Eq)]
pub struct MongoOptions {
    /// The connection string handed to the driver (`mongodb://user:pass@host:27017/?…`),
    /// without this crate's parameters.
    pub uri: String,
    /// The database (Flask-Session's `SESSION_MONGODB_DB`, default `flask_session`).
    pub database: String,
    /// The collection (Flask-Session's `SESSION_MONGODB_COLLECT`, default `sessions`).
    pub collection: String,
    /// How long a call waits for one of the pool's connections when all are in use
    /// (default 5 s).
    pub pool_timeout: Duration,
}

impl fmt::Debug for MongoOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoOptions")
            .field("uri", &redacted(&self.uri))
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("pool_timeout", &self.pool_timeout)
            .finish()
    }
}

impl MongoOptions {
    /// Options for the server at `uri` (`mongodb://127.0.0.1:27017/`), database
    /// `flask_session`, collection `sessions`, as Flask-Session's defaults.
    pub fn new(uri: impl Into<String>) -> MongoOptions {
        MongoOptions {
            uri: uri.into(),
            database: "flask_session".to_owned(),
            collection: "sessions".to_owned(),
            pool_timeout: DEFAULT_POOL_TIMEOUT,
        }
    }

    /// Parses `mongodb://host:port/?db=flask_session&collection=sessions&…`: takes `db`,
    /// `collection`, `pool_timeout` (seconds) and the driver's connection-string options (such as
    /// `serverSelectionTimeoutMS` or `maxPoolSize`, spelled as MongoDB documents them), and
    /// leaves the other parameters.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<MongoOptions> {
        let mut uri = url.clone();
        uri.set_query(None);
        uri.set_fragment(None);
        if uri.path().is_empty() {
            uri.set_path("/");
        }
        let driver: Vec<(&str, String)> = DRIVER_OPTIONS
            .iter()
            .filter_map(|name| params.take(name).map(|value| (*name, value)))
            .collect();
        if !driver.is_empty() {
            uri.query_pairs_mut().extend_pairs(driver);
        }
        let mut options = MongoOptions::new(uri.as_str());
        if let Some(database) = params.take("db") {
            options.database = database;
        }
        if let Some(collection) = params.take("collection") {
            options.collection = collection;
        }
        if let Some(timeout) = params.take_seconds("pool_timeout")? {
            options.pool_timeout = timeout;
        }
        options.validate()?;
        Ok(options)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        super::shared::check_timeouts(&[("pool_timeout", Some(self.pool_timeout))])?;
        // MongoDB's rules: no empty names, none of these characters in a database name.
        if self.database.is_empty()
            || self
                .database
                .contains(['/', '\\', '.', ' ', '"', '$', '\0'])
        {
            return Err(Error::config(
                "db",
                format!("{:?} is not a MongoDB database name", self.database),
            ));
        }
        if self.collection.is_empty()
            || self.collection.contains(['$', '\0'])
            || self.collection.starts_with("system.")
        {
            return Err(Error::config(
                "collection",
                format!("{:?} is not a MongoDB collection name", self.collection),
            ));
        }
        if self.pool_timeout.is_zero() {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        Ok(())
    }

    /// The driver's options: the URI's, with shorter timeouts than the driver's defaults
    /// unless the URI sets them.
    fn client_options(&self) -> Result<ClientOptions> {
        let mut options = ClientOptions::parse(&self.uri).run().map_err(|e| {
            Error::config("store URL", format!("not a MongoDB connection string: {e}"))
        })?;
        options
            .server_selection_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        options
            .connect_timeout
            .get_or_insert(DEFAULT_CONNECT_TIMEOUT);
        Ok(options)
    }
}

/// Sessions in a MongoDB collection, shared with Flask-Session; see the
/// [module documentation](self) for the documents and indexes.
///
/// ```no_run
/// use sessionstore::store::{Store, mongodb::{MongoOptions, MongoStore}};
/// let store = MongoStore::open(&MongoOptions::new("mongodb://127.0.0.1:27017/"))?;
/// store.create("session:k", b"\x80", std::time::Duration::from_secs(60))?;
/// # Ok::<(), sessionstore::Error>(())
/// ```
pub struct MongoStore {
    collection: Collection<Document>,
    checkout: Checkout,
}

/// Lets at most the pool's size of calls reach the driver at once, each waiting at most
/// `timeout` for its turn.
struct Checkout {
    free: Mutex<u32>,
    returned: Condvar,
    size: u32,
    timeout: Duration,
}

/// A call's turn, given back when dropped.
struct Turn<'a>(&'a Checkout);

impl Checkout {
    fn new(size: u32, timeout: Duration) -> Checkout {
        Checkout {
            free: Mutex::new(size),
            returned: Condvar::new(),
            size,
            timeout,
        }
    }

    fn take(&self) -> Result<Turn<'_>> {
        let deadline = deadline_after(self.timeout);
        // The count is changed in single statements: a panic cannot leave it half-written.
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(Error::store(
                    BACKEND,
                    pool_timeout_message(
                        self.timeout,
                        format!("all {} connections (maxPoolSize) in use", self.size),
                    ),
                ));
            };
            free = self
                .returned
                .wait_timeout(free, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        Ok(Turn(self))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.returned.notify_one();
    }
}

impl fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoStore")
            .field("collection", &self.collection.namespace().to_string())
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// Connects and creates the TTL index on `expiration` and the unique index on `id` if
    /// missing.
    pub fn open(options: &MongoOptions) -> Result<MongoStore> {
        options.validate()?;
        let client_options = options.client_options()?;
        let pool_size = client_options
            .max_pool_size
            .unwrap_or(DRIVER_POOL_SIZE)
            .max(1);
        // A connection that fails over TLS says so, and with which CA file.
        let tls = match &client_options.tls {
            Some(mongodb::options::Tls::Enabled(tls)) => format!(
                " (tls=true, tlsCAFile={})",
                tls.ca_file_path
                    .as_deref()
                    .map_or("none: the system's CAs".into(), |path| path
                        .display()
                        .to_string())
            ),
            _ => String::new(),
        };
        let client = Client::with_options(client_options).map_err(Error::in_store(BACKEND))?;
        let collection = client
            .database(&options.database)
            .collection::<Document>(&options.collection);
        let indexes = [
            IndexModel::builder()
                .keys(doc! { "expiration": 1 })
                .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                .build(),
            IndexModel::builder()
                .keys(doc! { "id": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        ];
        collection.create_indexes(indexes).run().map_err(|e| {
            Error::store_caused_by(BACKEND, format!("cannot create the indexes{tls}"), e)
        })?;
        Ok(MongoStore {
            collection,
            checkout: Checkout::new(pool_size, options.pool_timeout),
        })
    }

    /// Runs one driver call once it has its turn.
    fn call<T>(
        &self,
        f: impl FnOnce() -> mongodb::error::Result<T>,
    ) -> Result<mongodb::error::Result<T>> {
        let _turn = self.checkout.take()?;
        Ok(f())
    }

    /// Writes `data` expiring at `expiration` to the document `filter` selects, creating it
    /// (with the filter's `id`) if `upsert`. Returns whether a document was matched or
    /// created.
    fn write(
        &self,
        filter: Document,
        data: &[u8],
        expiration: DateTime,
        upsert: bool,
    ) -> mongodb::error::Result<bool> {
        let update = doc! { "$set": { "val": binary(data), "expiration": expiration } };
        let result = self
            .collection
            .update_one(filter, update)
            .upsert(upsert)
            .run()?;
        Ok(result.matched_count == 1 || result.upserted_id.is_some())
    }
}

impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        let found = self
            .call(|| {
                self.collection
                    .find_one(doc! { "id": key, "expiration": { "$gt": DateTime::now() } })
                    .projection(doc! { "_id": 0, "val": 1, "expiration": 1 })
                    .run()
            })?
            .map_err(Error::in_store(BACKEND))?;
        let Some(document) = found else {
            return Ok(None);
        };
        let data = match document.get("val") {
            Some(Bson::Binary(binary)) => binary.bytes.clone(),
            _ => {
                log::warn!(
                    "mongodb store: the document of {} has no binary val, treating it as missing",
                    shown_key(key)
                );
                return Ok(None);
            }
        };
        let expiration = document.get_datetime("expiration").map_err(|e| {
            Error::store_caused_by(BACKEND, format!("the expiration of {}", shown_key(key)), e)
        })?;
        Ok(Some(Record::new(data, offset_date_time(*expiration)?)))
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let expiration = date(expiry_after(BACKEND, ttl)?);
        let only_expired = doc! { "id": key, "expiration": { "$lte": DateTime::now() } };
        match self.call(|| self.write(only_expired, data, expiration, true))? {
            Ok(written) => Ok(written),
            // A live document holds the key: the upsert's insert hit the unique index.
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(Error::store_caused_by(BACKEND, "", error)),
        }
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let expiration = date(expiry_after(BACKEND, ttl)?);
        let filter = doc! {
            "id": key,
            "val": binary(&expected.data),
            "expiration": { "$gt": DateTime::now() },
        };
        if self
            .call(|| self.write(filter, data, expiration, false))?
            .map_err(Error::in_store(BACKEND))?
        {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.load(key)?))
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let filter = doc! {
            "id": key,
            "val": binary(&expected.data),
            "expiration": { "$gt": DateTime::now() },
        };
        let deleted = self
            .call(|| self.collection.delete_one(filter).run())?
            .map_err(Error::in_store(BACKEND))?
            .deleted_count;
        if deleted == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.load(key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        // Two upserts of a new key at once: the unique index refuses the second insert, which
        // then finds the document and updates it.
        let expiration = date(expiry_after(BACKEND, ttl)?);
        match self.call(|| self.write(doc! { "id": key }, data, expiration, true))? {
            Err(error) if is_duplicate_key(&error) => {
                self.call(|| self.write(doc! { "id": key }, data, expiration, true))?
                    .map_err(Error::in_store(BACKEND))?;
                Ok(())
            }
            other => other.map(drop).map_err(Error::in_store(BACKEND)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.call(|| self.collection.delete_one(doc! { "id": key }).run())?
            .map_err(Error::in_store(BACKEND))?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiration = date(expiry_after(BACKEND, ttl)?);
        let result = self
            .call(|| {
                self.collection
                    .update_one(
                        doc! { "id": key, "expiration": { "$gt": DateTime::now() } },
                        doc! { "$set": { "expiration": expiration } },
                    )
                    .run()
            })?
            .map_err(Error::in_store(BACKEND))?;
        Ok(result.matched_count == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let result = self
            .call(|| {
                self.collection
                    .delete_many(doc! { "expiration": { "$lte": DateTime::now() } })
                    .run()
            })?
            .map_err(Error::in_store(BACKEND))?;
        Ok(result.deleted_count)
    }

    /// Keyset pagination on the `id` index: the ids after the cursor that start with the
    /// prefix (an anchored regular expression, which the index serves), in order.
    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let limit = limit.max(1);
        let filter = doc! {
            "id": { "$gt": cursor.unwrap_or(prefix), "$regex": format!("^{}", regex_escaped(prefix)) },
            "expiration": { "$gt": DateTime::now() },
        };
        let keys = self
            .call(|| {
                let documents = self
                    .collection
                    .find(filter)
                    .sort(doc! { "id": 1 })
                    .limit(i64::try_from(limit).unwrap_or(i64::MAX))
                    .projection(doc! { "_id": 0, "id": 1 })
                    .run()?;
                documents
                    .map(|document| {
                        Ok(document?
                            .get_str("id")
                            .map(str::to_owned)
                            .unwrap_or_default())
                    })
                    .collect::<mongodb::error::Result<Vec<String>>>()
            })?
            .map_err(Error::in_store(BACKEND))?;
        Ok(super::shared::key_page(keys, limit))
    }
}

/// `text` with the characters a regular expression gives a meaning escaped.
fn regex_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == DUPLICATE_KEY,
        ErrorKind::Command(failure) => failure.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Bytes as Flask-Session's pymongo writes them: BSON binary, generic subtype.
fn binary(data: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: data.to_vec(),
    }
}

/// A BSON date (milliseconds since the epoch, UTC).
fn date(at: OffsetDateTime) -> DateTime {
    let millis = at.unix_timestamp_nanos() / 1_000_000;
    DateTime::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}

fn offset_date_time(at: DateTime) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.timestamp_millis()) * 1_000_000)
        .map_err(|e| Error::store_caused_by(BACKEND, "expiration out of range", e))
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::store::test_support::contract::{Fixture, Purge, store_contract_tests};
    use crate::store::test_support::store_urls::{self, rejected_key};
    use crate::store::test_support::{free_port, store_error_message, unique_name};

    const MINUTE: Duration = Duration::from_secs(60);
    const SHORT: Duration = Duration::from_millis(50);

    /// A collection of its own on the shared test server, dropped at the end.
    struct TestCollection {
        store: MongoStore,
        raw: Collection<Document>,
    }

    impl TestCollection {
        fn new() -> TestCollection {
            // SecantusDB spends ~25 ms on each retryable write's bookkeeping, ~1 ms without.
            let uri = std::env::var("SESSIONSTORE_MONGODB_URL")
                .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?retryWrites=false".to_owned());
            let options = MongoOptions {
                database: "sessionstore_unit".to_owned(),
                collection: unique_name("sessions"),
                ..MongoOptions::new(uri)
            };
            let store = MongoStore::open(&options).expect("the test MongoDB server");
            let raw = store.collection.clone();
            TestCollection { store, raw }
        }

        /// How many documents the collection holds for `key`, expired or not.
        fn count(&self, key: &str) -> u64 {
            self.raw.count_documents(doc! { "id": key }).run().unwrap()
        }
    }

    impl Drop for TestCollection {
        fn drop(&mut self) {
            let _ = self.raw.drop().run();
        }
    }

    impl Fixture for TestCollection {
        fn store(&self) -> &dyn Store {
            &self.store
        }
    }

    store_contract_tests! {
        mod contract;
        open: TestCollection::new(),
        short_ttl: SHORT,
        // BSON dates have millisecond precision.
        precision: Duration::from_millis(1),
        // The server's TTL monitor may sweep expired documents before the purge does.
        purge: Purge::CountsWhatTheServerLeft,
    }

    fn expire() {
        thread::sleep(SHORT * 2);
    }

    fn options_from(text: &str) -> Result<MongoOptions> {
        store_urls::options_from(text, MongoOptions::from_url)
    }

    /// A create over an expired document replaces it: one document per key.
    #[test]
    fn create_over_expired_document_replaces_it() {
        let t = TestCollection::new();
        assert!(t.store.create("session:a", b"old", SHORT).unwrap());
        expire();
        assert!(t.store.create("session:a", b"new", MINUTE).unwrap());
        assert_eq!(
            &t.store.load("session:a").unwrap().unwrap().data[..],
            b"new"
        );
        assert_eq!(t.count("session:a"), 1, "replaced, not duplicated");
    }

    /// The purge deletes the expired documents the server's TTL monitor has not swept yet,
    /// and only those.
    #[test]
    fn purge_deletes_expired_documents() {
        let t = TestCollection::new();
        t.store.set("session:old", b"x", SHORT).unwrap();
        t.store.set("session:live", b"x", MINUTE).unwrap();
        expire();
        t.store.purge_expired().unwrap();
        assert_eq!(t.count("session:old"), 0, "the expired document is gone");
        assert_eq!(t.count("session:live"), 1, "the live one stays");
    }

    #[test]
    fn concurrent_creates_of_one_key_store_one() {
        let t = TestCollection::new();
        let created: Vec<bool> = thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|n| {
                    let store = &t.store;
                    scope.spawn(move || store.create("session:race", &[n], MINUTE).unwrap())
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    }

    #[test]
    fn documents_have_flask_sessions_shape_and_indexes() {
        let t = TestCollection::new();
        t.store.set("session:a", b"\x80", MINUTE).unwrap();
        let document = t
            .raw
            .find_one(doc! { "id": "session:a" })
            .projection(doc! { "_id": 0 })
            .run()
            .unwrap()
            .unwrap();
        let mut keys: Vec<&str> = document.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["expiration", "id", "val"]);
        assert_eq!(document.get("val"), Some(&Bson::Binary(binary(b"\x80"))));
        assert!(matches!(
            document.get("expiration"),
            Some(Bson::DateTime(_))
        ));
        let indexes: Vec<IndexModel> = t
            .raw
            .list_indexes()
            .run()
            .unwrap()
            .collect::<mongodb::error::Result<_>>()
            .unwrap();
        let find = |key: &str| {
            indexes
                .iter()
                .find(|index| index.keys.contains_key(key))
                .and_then(|index| index.options.clone())
                .unwrap_or_else(|| panic!("no index on {key}: {indexes:?}"))
        };
        assert_eq!(find("expiration").expire_after, Some(Duration::ZERO));
        assert_eq!(find("id").unique, Some(true));
    }

    #[test]
    fn documents_written_by_flask_session_are_read() {
        let t = TestCollection::new();
        let far = date(time::macros::datetime!(2099-12-31 23:59:58.25 UTC));
        let past = date(time::macros::datetime!(2000-01-01 0:00 UTC));
        t.raw
            .insert_many([
                doc! { "id": "session:f", "val": binary(b"\x80"), "expiration": far },
                doc! { "id": "session:old", "val": binary(b"\x80"), "expiration": past },
                doc! { "id": "session:str", "val": "text", "expiration": far },
            ])
            .run()
            .unwrap();
        let record = t.store.load("session:f").unwrap().unwrap();
        assert_eq!(&record.data[..], b"\x80");
        assert_eq!(
            record.expires_at,
            time::macros::datetime!(2099-12-31 23:59:58.25 UTC)
        );
        assert_eq!(
            t.store.load("session:old").unwrap(),
            None,
            "expired, not yet swept"
        );
        assert_eq!(t.store.load("session:str").unwrap(), None);
    }

    #[test]
    fn unreachable_server_at_open_is_a_store_error() {
        let port = free_port();
        let options = MongoOptions::new(format!(
            "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500"
        ));
        let message = store_error_message(MongoStore::open(&options), "mongodb");
        assert!(message.contains("indexes"), "{message}");
    }

    #[test]
    fn from_url_separates_driver_options() {
        let (options, mut params) = store_urls::options_and_rest(
            "mongodb://app:s3cret@db.example:27018/admin?db=web&collection=web_sessions\
             &replicaSet=rs0&serverSelectionTimeoutMS=2000&pool_timeout=0.5&prefix=x",
            MongoOptions::from_url,
        );
        assert_eq!(
            options,
            MongoOptions {
                uri: "mongodb://app:s3cret@db.example:27018/admin?replicaSet=rs0\
                      &serverSelectionTimeoutMS=2000"
                    .to_owned(),
                database: "web".to_owned(),
                collection: "web_sessions".to_owned(),
                pool_timeout: Duration::from_millis(500),
            }
        );
        assert_eq!(params.take("prefix").as_deref(), Some("x"));
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
        let client = options.client_options().unwrap();
        assert_eq!(
            client.server_selection_timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(client.repl_set_name.as_deref(), Some("rs0"));
        let defaults = options_from("mongodb://127.0.0.1").unwrap();
        assert_eq!(defaults, MongoOptions::new("mongodb://127.0.0.1/"));
        assert_eq!(
            defaults.client_options().unwrap().server_selection_timeout,
            Some(DEFAULT_SERVER_SELECTION_TIMEOUT)
        );
    }

    #[test]
    fn checkout_waits_at_most_the_pool_timeout() {
        let checkout = Checkout::new(1, Duration::from_millis(200));
        let first = checkout.take().unwrap();
        let started = std::time::Instant::now();
        let message = store_error_message(checkout.take().map(drop), "mongodb");
        assert!(message.contains("pool_timeout 200ms"), "{message}");
        assert!(message.contains("all 1 connections"), "{message}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        // A turn given back is taken by a waiting call.
        thread::scope(|scope| {
            let waiting = scope.spawn(|| checkout.take().map(drop));
            thread::sleep(Duration::from_millis(50));
            drop(first);
            waiting.join().unwrap().expect("the freed turn");
        });
    }

    #[test]
    fn from_url_rejects_bad_values() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("mongodb://h/?db=a.b"), "db");
        assert_eq!(key_of("mongodb://h/?db="), "db");
        assert_eq!(key_of("mongodb://h/?collection=system.x"), "collection");
        assert_eq!(key_of("mongodb://h/?pool_timeout=0"), "pool_timeout");
        assert_eq!(key_of("mongodb://h/?collection=a$b"), "collection");
        assert_eq!(key_of("mongodb://h/?table=x"), "table");
        let bad_option = options_from("mongodb://h/?serverSelectionTimeoutMS=soon").unwrap();
        match bad_option.client_options() {
            Err(Error::Config { key, .. }) => assert_eq!(key, "store URL"),
            other => panic!("accepted: {other:?}"),
        }
    }
}
