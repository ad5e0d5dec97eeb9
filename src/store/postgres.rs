//! PostgreSQL store: Flask-Session's SQLAlchemy table, through an r2d2 pool of `postgres`
//! connections.
//!
//! The table (default `sessions`) has the shape Flask-Session's SQLAlchemy model creates on
//! PostgreSQL, so a Flask app and this store can share it, whichever creates it first:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "sessions" (
//!     id SERIAL PRIMARY KEY,
//!     session_id VARCHAR(255) UNIQUE NOT NULL,  -- the prefixed key
//!     data BYTEA,                               -- the encoded session
//!     expiry TIMESTAMP WITHOUT TIME ZONE        -- UTC
//! );
//! CREATE INDEX IF NOT EXISTS "sessions_expiry_idx" ON "sessions" (expiry);
//! ```
//!
//! Every statement compares `expiry` with "now" computed here in UTC and bound as a
//! parameter (never the server's `NOW()`, whose time zone is the session's), so rows past
//! their expiry are invisible until [`Store::purge_expired`] deletes them, in batches that
//! use the `expiry` index. Each pooled connection prepares the statements once; a load, a
//! compare-and-set (`UPDATE … WHERE session_id = $3 AND data = $4`), a create
//! (`INSERT … ON CONFLICT (session_id) DO UPDATE … WHERE` the old row has expired) and a
//! touch (expiry only) are one statement each. The pool checks a connection that sat idle
//! for more than 0.5 s before handing it out (an empty query, one round trip), so a
//! restarted server costs no failed request; one back from a call more recently is handed
//! out unchecked, which saves that round trip on nearly every call of a busy server.
//!
//! TLS is rustls's ([`super::tls`]): `sslmode=disable|prefer|require|verify-ca|verify-full`
//! and `sslrootcert` (a PEM file of CA certificates) mean what they mean to libpq, `prefer`
//! being the default. A server without TLS refuses `require` and the `verify-*` modes with an
//! error naming `sslmode`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, Statement};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use time::PrimitiveDateTime;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::shared::{DEFAULT_CONNECT_TIMEOUT, expiry_after, pool_timeout_message};
use super::sql::{
    ALIVE_BYPASS, PURGE_BATCH, RowStatements, now, purge_in_batches, row_record, timestamp,
};
use super::tls::{self, SslMode};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, redacted, validate_table_name};

const BACKEND: &str = "postgres";
/// The URL parameters handed to the `postgres` crate; every other one is ours or an error.
const DRIVER_PARAMS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
];

/// Options of the PostgreSQL store.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The connection URL as the `postgres` crate reads it:
    /// `postgres://user:password@host:port/database`, optionally with `sslmode`
    /// (`disable`, `prefer`, `require`, `verify-ca` or `verify-full`), `sslrootcert` (a PEM
    /// file of CA certificates), `connect_timeout` (seconds) and `application_name`.
    pub url: String,
    /// The table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters.
    pub table: String,
    /// The most connections the pool opens (at least 1).
    pub pool_size: u32,
    /// How long a call waits for a connection of the pool (all in use, or none can be
    /// opened); `None`: the connect timeout (the URL's `connect_timeout`, else 5 s).
    pub pool_timeout: Option<Duration>,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redacted(&self.url))
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .finish()
    }
}

impl PostgresOptions {
    /// Options for the database at `url` (`postgres://user@host:5432/db`) with table
    /// `sessions` and at most 8 pooled connections.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            table: "sessions".to_owned(),
            pool_size: 8,
            pool_timeout: None,
        }
    }

    /// Parses `postgres://user:password@host:port/db?table=sessions&pool_size=8&sslmode=…`,
    /// taking `table`, `pool_size`, `pool_timeout` (seconds), `sslmode`, `sslrootcert` and
    /// the driver's `connect_timeout` and `application_name`, and leaving the other
    /// parameters.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<PostgresOptions> {
        let mut connection = url.clone();
        connection.set_query(None);
        connection.set_fragment(None);
        let driver: Vec<(&str, String)> = DRIVER_PARAMS
            .iter()
            .filter_map(|name| params.take(name).map(|value| (*name, value)))
            .collect();
        if !driver.is_empty() {
            connection.query_pairs_mut().extend_pairs(driver);
        }
        let mut options = PostgresOptions::new(connection.as_str());
        if let Some(table) = params.take("table") {
            options.table = table;
        }
        if let Some(pool_size) = params.take_parsed("pool_size")? {
            options.pool_size = pool_size;
        }
        options.pool_timeout = params.take_seconds("pool_timeout")?;
        options.validate()?;
        Ok(options)
    }

    /// Checks the options and returns the driver's connection settings and the TLS ones.
    fn validate(&self) -> Result<(postgres::Config, TlsSettings)> {
        super::shared::check_timeouts(&[("pool_timeout", self.pool_timeout)])?;
        validate_table_name(&self.table).map_err(|message| Error::config("table", message))?;
        if self.pool_size == 0 {
            return Err(Error::config("pool_size", "must be at least 1"));
        }
        if self.pool_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        let (driver_url, settings) = TlsSettings::from_url(&self.url)?;
        let mut config = postgres::Config::from_str(&driver_url).map_err(|e| {
            Error::config(
                "store URL",
                format!("{} is not a PostgreSQL URL: {e}", redacted(&self.url)),
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::config(
                "store URL",
                "the PostgreSQL URL names no host (postgres://user@host:5432/db)",
            ));
        }
        let settings = settings.unwrap_or_else(|| TlsSettings {
            mode: match config.get_ssl_mode() {
                postgres::config::SslMode::Disable => SslMode::Disable,
                postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
            root_cert: None,
        });
        config.ssl_mode(match settings.mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        Ok((config, settings))
    }
}

/// The `sslmode` and `sslrootcert` of a connection URL, which the driver does not read (it
/// knows neither `verify-ca`, `verify-full` nor `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsSettings {
    mode: SslMode,
    root_cert: Option<std::path::PathBuf>,
}

impl TlsSettings {
    /// Takes them out of a `postgres://` URL: the URL for the driver, and the settings
    /// (`None` for a `key=value` connection string, whose `sslmode` the driver reads).
    fn from_url(text: &str) -> Result<(String, Option<TlsSettings>)> {
        let Ok(mut url) = url::Url::parse(text) else {
            return Ok((text.to_owned(), None));
        };
        let (mut mode, mut root_cert) = (SslMode::default(), None);
        let mut rest = Vec::new();
        for (name, value) in url.query_pairs() {
            match &*name {
                "sslmode" => mode = SslMode::parse(&value)?,
                "sslrootcert" => root_cert = tls::root_cert_path(Some(value.into_owned())),
                _ => rest.push((name.into_owned(), value.into_owned())),
            }
        }
        url.set_query(None);
        if !rest.is_empty() {
            url.query_pairs_mut().extend_pairs(rest);
        }
        Ok((url.into(), Some(TlsSettings { mode, root_cert })))
    }

    /// The TLS connector of these settings.
    fn connector(&self) -> Result<MakeRustlsConnect> {
        let root = self.root_cert.as_deref();
        let check = if self.mode == SslMode::Disable {
            tls::CertificateCheck::None
        } else {
            self.mode.check(root)
        };
        Ok(MakeRustlsConnect::new(tls::client_config(check, root)?))
    }

    /// A failed first connection as the error to report: a server without TLS under a mode
    /// that requires it is a configuration error naming `sslmode`.
    fn connect_error(&self, error: postgres::Error) -> Error {
        let text = described(&error);
        if text.contains("does not support TLS") {
            return Error::config(
                "sslmode",
                format!(
                    "sslmode={} but the server does not support TLS ({text}); use \
                     sslmode=prefer or disable, or turn ssl on in the server",
                    self.mode.name()
                ),
            );
        }
        if text.contains("certificate") {
            let text = format!(
                "{text} (sslmode={}, sslrootcert={})",
                self.mode.name(),
                self.root_cert
                    .as_deref()
                    .map_or("the system's CAs".into(), |path| path.display().to_string())
            );
            return Error::store_described(BACKEND, text, error);
        }
        driver_error(error)
    }
}

/// The SQL of each operation, with the table name spliced in once.
#[derive(Debug)]
struct Statements {
    load: String,
    create: String,
    compare_and_set: String,
    compare_and_delete: String,
    set: String,
    delete: String,
    touch: String,
    purge: String,
}

impl Statements {
    /// `table` must be validated: it is spliced (quoted) into the SQL.
    fn new(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        let upsert = format!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES ($1, $2, $3) \
             ON CONFLICT (session_id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry"
        );
        let row = RowStatements::new(&t, |n| format!("${n}"));
        Statements {
            load: row.load,
            create: format!("{upsert} WHERE {t}.expiry <= $4 OR {t}.expiry IS NULL"),
            compare_and_set: row.compare_and_set,
            compare_and_delete: row.compare_and_delete,
            set: upsert,
            delete: row.delete,
            touch: row.touch,
            // The ids come from the expiry index, the rows then by primary key; the second
            // `expiry <= $1` is re-checked on a row a concurrent touch renewed meanwhile.
            purge: format!(
                "DELETE FROM {t} WHERE id = ANY(ARRAY(\
                     SELECT id FROM {t} WHERE expiry <= $1 LIMIT {PURGE_BATCH})) \
                 AND expiry <= $1"
            ),
        }
    }

    /// The DDL that creates the table and its index if missing.
    fn schema(table: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (\
                 id SERIAL PRIMARY KEY, \
                 session_id VARCHAR(255) UNIQUE NOT NULL, \
                 data BYTEA, \
                 expiry TIMESTAMP WITHOUT TIME ZONE); \
             CREATE INDEX IF NOT EXISTS \"{table}_expiry_idx\" ON \"{table}\" (expiry);"
        )
    }
}

/// The statements prepared on one connection.
struct Prepared {
    load: Statement,
    create: Statement,
    compare_and_set: Statement,
    compare_and_delete: Statement,
    set: Statement,
    delete: Statement,
    touch: Statement,
    purge: Statement,
}

impl Prepared {
    fn new(
        client: &mut Client,
        sql: &Statements,
    ) -> std::result::Result<Prepared, postgres::Error> {
        Ok(Prepared {
            load: client.prepare(&sql.load)?,
            create: client.prepare(&sql.create)?,
            compare_and_set: client.prepare(&sql.compare_and_set)?,
            compare_and_delete: client.prepare(&sql.compare_and_delete)?,
            set: client.prepare(&sql.set)?,
            delete: client.prepare(&sql.delete)?,
            touch: client.prepare(&sql.touch)?,
            purge: client.prepare(&sql.purge)?,
        })
    }
}

/// A pooled connection with its prepared statements.
struct Connection {
    client: Client,
    prepared: Prepared,
    /// When the connection last went back to the pool in working order (or was opened).
    returned: Instant,
}

/// r2d2_postgres' manager, preparing the statements on each new connection.
struct Manager {
    inner: PostgresConnectionManager<MakeRustlsConnect>,
    sql: Arc<Statements>,
}

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = ConnectFailure;

    fn connect(&self) -> std::result::Result<Connection, ConnectFailure> {
        let mut client = self.inner.connect()?;
        let prepared = Prepared::new(&mut client, &self.sql)?;
        Ok(Connection {
            client,
            prepared,
            returned: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> std::result::Result<(), ConnectFailure> {
        if conn.returned.elapsed() < ALIVE_BYPASS {
            return Ok(());
        }
        Ok(self.inner.is_valid(&mut conn.client)?)
    }

    /// Called by the pool on every return: a connection whose call failed at the
    /// connection level is closed, hence dropped; a working one records the time.
    fn has_broken(&self, conn: &mut Connection) -> bool {
        let broken = self.inner.has_broken(&mut conn.client);
        if !broken {
            conn.returned = Instant::now();
        }
        broken
    }
}

/// Sessions in a PostgreSQL table, shared with Flask-Session; see the
/// [module documentation](self) for the schema.
///
/// ```no_run
/// use sessionstore::store::{Store, postgres::{PostgresOptions, PostgresStore}};
/// let store = PostgresStore::open(&PostgresOptions::new("postgres://app@127.0.0.1/app"))?;
/// store.create("session:k", b"\x80", std::time::Duration::from_secs(60))?;
/// # Ok::<(), sessionstore::Error>(())
/// ```
pub struct PostgresStore {
    pool: Pool<Manager>,
    table: String,
    pool_timeout: Duration,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, creates the table and its index if missing, and opens the pool.
    pub fn open(options: &PostgresOptions) -> Result<PostgresStore> {
        let (config, tls) = options.validate()?;
        let pool_timeout = options.pool_timeout.unwrap_or_else(|| {
            config
                .get_connect_timeout()
                .copied()
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
        });
        let inner = PostgresConnectionManager::new(config, tls.connector()?);
        // A direct connection first: it reports a bad address, refused login or TLS problem
        // at once, with the server's message, and creates the schema the pooled connections
        // prepare against.
        let mut client = inner.connect().map_err(|e| tls.connect_error(e))?;
        create_schema(&mut client, &options.table).map_err(driver_error)?;
        drop(client);
        let manager = Manager {
            inner,
            sql: Arc::new(Statements::new(&options.table)),
        };
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .connection_timeout(pool_timeout)
            .build(manager)
            .map_err(Error::in_store(BACKEND))?;
        Ok(PostgresStore {
            pool,
            table: options.table.clone(),
            pool_timeout,
        })
    }

    fn connection(&self) -> Result<PooledConnection<Manager>> {
        self.pool.get().map_err(|e| {
            Error::store_described(BACKEND, pool_timeout_message(self.pool_timeout, &e), e)
        })
    }

    /// The live record under `key`, read on `conn`.
    fn read(&self, conn: &mut Connection, key: &str) -> Result<Option<Record>> {
        let now = now();
        let row = conn
            .client
            .query_opt(&conn.prepared.load, &[&key, &now])
            .map_err(driver_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let data: Option<Vec<u8>> = row.try_get(0).map_err(driver_error)?;
        let expiry: Option<PrimitiveDateTime> = row.try_get(1).map_err(driver_error)?;
        let expiry = expiry.map(PrimitiveDateTime::assume_utc);
        Ok(row_record(BACKEND, key, data, expiry))
    }

    /// Runs one prepared statement, returning how many rows it changed.
    fn execute(
        &self,
        statement: impl Fn(&Prepared) -> &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let mut conn = self.connection()?;
        let conn = &mut *conn;
        conn.client
            .execute(statement(&conn.prepared), params)
            .map_err(driver_error)
    }
}

/// Creates the table and index if missing, under an advisory lock so that processes
/// starting together do not race on the catalog.
fn create_schema(client: &mut Client, table: &str) -> std::result::Result<(), postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("sessionstore schema {table}")],
    )?;
    transaction.batch_execute(&Statements::schema(table))?;
    transaction.commit()
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        let mut conn = self.connection()?;
        self.read(&mut conn, key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        let now = now();
        let written = self.execute(|p| &p.create, &[&key, &data, &expiry, &now])?;
        Ok(written == 1)
    }

    /// One transaction: one commit (and one WAL flush) for the whole batch.
    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        let mut pooled = self.connection()?;
        let conn = &mut *pooled;
        let now = now();
        let mut transaction = conn.client.transaction().map_err(driver_error)?;
        let mut stored = Vec::with_capacity(records.len());
        for (key, data, ttl) in records {
            let expiry = timestamp(expiry_after(BACKEND, *ttl)?);
            let written = transaction
                .execute(&conn.prepared.create, &[key, data, &expiry, &now])
                .map_err(driver_error)?;
            stored.push(written == 1);
        }
        transaction.commit().map_err(driver_error)?;
        Ok(stored)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let mut pooled = self.connection()?;
        let conn = &mut *pooled;
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        let now = now();
        let changed = conn
            .client
            .execute(
                &conn.prepared.compare_and_set,
                &[&data, &expiry, &key, &&expected.data[..], &now],
            )
            .map_err(driver_error)?;
        if changed == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(conn, key)?))
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let mut pooled = self.connection()?;
        let conn = &mut *pooled;
        let now = now();
        let deleted = conn
            .client
            .execute(
                &conn.prepared.compare_and_delete,
                &[&key, &&expected.data[..], &now],
            )
            .map_err(driver_error)?;
        if deleted == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(conn, key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        self.execute(|p| &p.set, &[&key, &data, &expiry])?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(|p| &p.delete, &[&key])?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        let now = now();
        let changed = self.execute(|p| &p.touch, &[&expiry, &key, &now])?;
        Ok(changed == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let mut pooled = self.connection()?;
        let conn = &mut *pooled;
        let now = now();
        purge_in_batches(|| {
            conn.client
                .execute(&conn.prepared.purge, &[&now])
                .map_err(driver_error)
        })
    }

    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let mut pooled = self.connection()?;
        let limit = limit.max(1);
        let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let page_size = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = RowStatements::new(&format!("\"{}\"", self.table), |n| format!("${n}"));
        let rows = pooled
            .client
            .query(
                &sql.list_keys,
                &[
                    &cursor.unwrap_or(prefix),
                    &length,
                    &prefix,
                    &now(),
                    &page_size,
                ],
            )
            .map_err(driver_error)?;
        let keys = rows.iter().map(|row| row.get::<_, String>(0));
        Ok(super::shared::key_page(keys, limit))
    }
}

/// The store error of a driver error, described with its cause (see [`described`]).
fn driver_error(error: postgres::Error) -> Error {
    Error::store_described(BACKEND, described(&error), error)
}

/// A driver error's text with its cause, which the `postgres` crate's own text leaves out
/// ("db error", "error connecting to server"). A server error shows its severity and
/// message, not its DETAIL, which can quote a row's values (a session key).
fn described(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{error}: {}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// A pooled connection's failure as the pool keeps it (as text: the pool reports the last
/// one when a call times out), with its cause.
#[derive(Debug)]
struct ConnectFailure(String);

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectFailure {}

impl From<postgres::Error> for ConnectFailure {
    fn from(error: postgres::Error) -> ConnectFailure {
        ConnectFailure(described(&error))
    }
}

#[cfg(test)]
mod tests {
    use postgres::NoTls;
    use std::time::Instant;

    use super::*;
    use crate::store::test_support::contract::{Fixture, Purge, store_contract_tests};
    use crate::store::test_support::store_urls::{self, rejected_key};
    use crate::store::test_support::{free_port, store_error_message, unique_name};

    const MINUTE: Duration = Duration::from_secs(60);

    /// The shared test server, as the test services start it.
    fn server_url() -> String {
        std::env::var("SESSIONSTORE_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// A table of its own for one test, dropped at the end.
    struct TestTable {
        store: PostgresStore,
        client: Client,
        table: String,
    }

    impl TestTable {
        fn new() -> TestTable {
            let table = unique_name("pg_unit");
            let options = PostgresOptions {
                table: table.clone(),
                ..PostgresOptions::new(server_url())
            };
            let store = PostgresStore::open(&options).expect("the test PostgreSQL server");
            let client = options.validate().unwrap().0.connect(NoTls).unwrap();
            TestTable {
                store,
                client,
                table,
            }
        }
    }

    impl Drop for TestTable {
        fn drop(&mut self) {
            let _ = self
                .client
                .batch_execute(&format!("DROP TABLE IF EXISTS \"{}\"", self.table));
        }
    }

    impl Fixture for TestTable {
        fn store(&self) -> &dyn Store {
            &self.store
        }
    }

    store_contract_tests! {
        mod contract;
        open: TestTable::new(),
        short_ttl: Duration::from_millis(50),
        // Expiries are stored with microsecond precision.
        precision: Duration::from_micros(1),
        purge: Purge::Counts,
    }

    fn options_from(text: &str) -> Result<PostgresOptions> {
        store_urls::options_from(text, PostgresOptions::from_url)
    }

    #[test]
    fn rows_written_by_flask_session_are_read() {
        let mut t = TestTable::new();
        let sql = format!(
            "INSERT INTO \"{}\" (session_id, data, expiry) VALUES \
             ('session:f', '\\x80'::bytea, '2099-12-31 23:59:58.25'), \
             ('session:old', '\\x80'::bytea, '2000-01-01 00:00:00'), \
             ('session:null', NULL, '2099-12-31 00:00:00')",
            t.table
        );
        t.client.batch_execute(&sql).unwrap();
        let record = t.store.load("session:f").unwrap().unwrap();
        assert_eq!(&record.data[..], b"\x80");
        assert_eq!(
            record.expires_at,
            time::macros::datetime!(2099-12-31 23:59:58.25 UTC)
        );
        assert_eq!(t.store.load("session:old").unwrap(), None);
        assert_eq!(t.store.load("session:null").unwrap(), None);
    }

    #[test]
    fn schema_matches_flask_sessions_model() {
        let mut t = TestTable::new();
        let columns: Vec<(String, String)> = t
            .client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&t.table],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let expected = [
            ("id", "integer"),
            ("session_id", "character varying"),
            ("data", "bytea"),
            ("expiry", "timestamp without time zone"),
        ];
        assert_eq!(
            columns,
            expected.map(|(c, t)| (c.to_owned(), t.to_owned())).to_vec()
        );
        let indexes: Vec<String> = t
            .client
            .query(
                "SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname",
                &[&t.table],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            indexes.iter().any(|i| i.contains("(expiry)")),
            "{indexes:?}"
        );
        assert!(
            indexes
                .iter()
                .any(|i| i.contains("UNIQUE") && i.contains("(session_id)")),
            "{indexes:?}"
        );
        // Opening again over the existing table changes nothing.
        let options = PostgresOptions {
            table: t.table.clone(),
            ..PostgresOptions::new(server_url())
        };
        PostgresStore::open(&options).unwrap();
    }

    #[test]
    fn opens_a_table_that_flask_session_created() {
        let table = unique_name("pg_flask");
        let mut client = PostgresOptions::new(server_url())
            .validate()
            .unwrap()
            .0
            .connect(NoTls)
            .unwrap();
        // What SQLAlchemy 2 emits for Flask-Session 0.8's model: no expiry index.
        client
            .batch_execute(&format!(
                "CREATE TABLE \"{table}\" (id SERIAL NOT NULL, session_id VARCHAR(255), \
                 data BYTEA, expiry TIMESTAMP WITHOUT TIME ZONE, PRIMARY KEY (id), \
                 UNIQUE (session_id))"
            ))
            .unwrap();
        let options = PostgresOptions {
            table: table.clone(),
            ..PostgresOptions::new(server_url())
        };
        let opened = PostgresStore::open(&options).and_then(|store| {
            store.create("session:a", b"x", MINUTE)?;
            store.load("session:a")
        });
        let index_count: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(expiry)'",
                &[&table],
            )
            .unwrap()
            .get(0);
        client
            .batch_execute(&format!("DROP TABLE \"{table}\""))
            .unwrap();
        assert_eq!(&opened.unwrap().unwrap().data[..], b"x");
        assert_eq!(index_count, 1, "the expiry index was added");
    }

    /// Fills the table with `live` rows expiring tomorrow and `expired` rows from yesterday,
    /// one statement each, then refreshes the planner's statistics.
    fn fill(t: &mut TestTable, live: i64, expired: i64) {
        for (kind, count, offset) in [("live", live, "+"), ("expired", expired, "-")] {
            let sql = format!(
                "INSERT INTO \"{}\" (session_id, data, expiry) \
                 SELECT '{kind}:' || n, '\\x81a178'::bytea, \
                        (now() AT TIME ZONE 'UTC') {offset} interval '1 day' \
                 FROM generate_series(1, $1::bigint) AS n",
                t.table
            );
            t.client.execute(&sql, &[&count]).unwrap();
        }
        t.client
            .batch_execute(&format!("ANALYZE \"{}\"", t.table))
            .unwrap();
    }

    /// The realistic case: a purge that runs regularly finds few expired rows among many
    /// live ones. With fresh statistics and the purge's own statement and parameter, the
    /// planner must reach the expired rows through the expiry index, not a table scan.
    #[test]
    fn purge_uses_the_expiry_index() {
        let mut t = TestTable::new();
        fill(&mut t, 50_000, 500);
        let sql = Statements::new(&t.table);
        let plan: Vec<String> = t
            .client
            .query(&format!("EXPLAIN {}", sql.purge), &[&now()])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        eprintln!("EXPLAIN {}\n{plan}", sql.purge);
        let index = format!("{}_expiry_idx", t.table);
        assert!(
            plan.contains(&format!("Index Scan using {index}"))
                || plan.contains(&format!("Bitmap Index Scan on {index}"))
                || plan.contains(&format!("Index Only Scan using {index}")),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(
            plan.contains(&format!("Index Scan using {}_pkey", t.table)),
            "then each row by primary key: {plan}"
        );
        assert_eq!(t.store.purge_expired().unwrap(), 500);
    }

    #[test]
    fn purge_of_100_000_expired_rows_keeps_live_ones() {
        let mut t = TestTable::new();
        let started = Instant::now();
        fill(&mut t, 1_000, 100_000);
        let filled = started.elapsed();
        t.store.create("session:kept", b"\x80", MINUTE).unwrap();
        let started = Instant::now();
        let purged = t.store.purge_expired().unwrap();
        let took = started.elapsed();
        eprintln!("postgres: inserted 101 000 rows in {filled:?}, purged {purged} in {took:?}");
        assert_eq!(purged, 100_000);
        let remaining: i64 = t
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\" WHERE session_id LIKE 'live:%'",
                    t.table
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(remaining, 1_000);
        assert_eq!(
            &t.store.load("session:kept").unwrap().unwrap().data[..],
            b"\x80"
        );
        assert_eq!(t.store.purge_expired().unwrap(), 0);
    }

    #[test]
    fn unreachable_server_at_open_is_a_store_error() {
        let port = free_port();
        let options = PostgresOptions::new(format!(
            "postgres://postgres@127.0.0.1:{port}/test?connect_timeout=1"
        ));
        let error = PostgresStore::open(&options);
        let source = error
            .as_ref()
            .err()
            .and_then(std::error::Error::source)
            .and_then(|source| source.downcast_ref::<postgres::Error>())
            .map(ToString::to_string);
        let message = store_error_message(error, "postgres");
        assert!(message.contains("connect"), "{message}");
        let source = source.expect("the driver's error is the source");
        assert!(message.starts_with(&source), "{message} / {source}");
    }

    #[test]
    fn from_url_takes_its_parameters() {
        let (options, mut params) = store_urls::options_and_rest(
            "postgresql://app:s3cret@db.example:6543/web?table=web_sessions&pool_size=3\
             &sslmode=disable&connect_timeout=7&application_name=shop&pool_timeout=0.5&prefix=x",
            PostgresOptions::from_url,
        );
        assert_eq!(
            options,
            PostgresOptions {
                url: "postgresql://app:s3cret@db.example:6543/web?sslmode=disable\
                      &connect_timeout=7&application_name=shop"
                    .to_owned(),
                table: "web_sessions".to_owned(),
                pool_size: 3,
                pool_timeout: Some(Duration::from_millis(500)),
            }
        );
        assert_eq!(params.take("prefix").as_deref(), Some("x"));
        let (config, tls) = options.validate().unwrap();
        assert_eq!(tls.mode, SslMode::Disable);
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_dbname(), Some("web"));
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn from_url_rejects_bad_values() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("postgres://h/db?table=x;drop"), "table");
        assert_eq!(key_of("postgres://h/db?pool_size=0"), "pool_size");
        assert_eq!(key_of("postgres://h/db?sslmode=sometimes"), "sslmode");
        assert_eq!(key_of("postgres://h/db?connect_timeout=soon"), "store URL");
        assert_eq!(key_of("postgres:///db"), "store URL");
        assert_eq!(key_of("postgres://h/db?options=x"), "options");
        assert_eq!(key_of("postgres://h/db?pool_timeout=0"), "pool_timeout");
        assert_eq!(key_of("postgres://h/db?pool_timeout=-1"), "pool_timeout");
        let default = options_from("postgres://h/db").unwrap();
        assert_eq!(
            default.validate().unwrap().0.get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        options_from("postgres://h/db?sslmode=prefer").unwrap();
    }

    #[test]
    fn tls_settings_leave_the_driver_its_parameters() {
        let options = options_from(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=a",
        )
        .unwrap();
        let (config, tls) = options.validate().unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(
            tls.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(config.get_application_name(), Some("a"));
        let (config, tls) = options_from("postgres://h/db").unwrap().validate().unwrap();
        assert_eq!(tls.mode, SslMode::Prefer);
        assert_eq!(config.get_ssl_mode(), postgres::config::SslMode::Prefer);
        let (_, tls) = PostgresOptions::new("host=h sslmode=require")
            .validate()
            .unwrap();
        assert_eq!(tls.mode, SslMode::Require);
    }
}
