//! MySQL / MariaDB store: Flask-Session's SQLAlchemy table, through the `mysql` crate's pool.
//!
//! The table (default `sessions`) has the shape of Flask-Session's SQLAlchemy model, so a
//! Flask app and this store can share it:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS `sessions` (
//!     id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
//!     session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL UNIQUE,
//!     data LONGBLOB,          -- not BLOB: that stops at 64 KiB
//!     expiry DATETIME(6),     -- UTC, microseconds
//!     KEY expiry_idx (expiry)
//! );
//! ```
//!
//! SQLAlchemy creates `data BLOB` and `expiry DATETIME` (whole seconds) for the same model;
//! when this store finds such a table it widens the two columns to `LONGBLOB` and
//! `DATETIME(6)` (both still read the same by SQLAlchemy) and adds the expiry index. Its
//! `session_id` keeps the database's default collation, usually case-insensitive, which is
//! harmless for random ids.
//!
//! Every statement compares `expiry` with "now" computed here in UTC and bound as a
//! parameter (never the server's `NOW()`, which follows the session time zone). The
//! connections set `CLIENT_FOUND_ROWS`, so an `UPDATE`'s affected-row count is the number of
//! rows it *matched*: a compare-and-set (`UPDATE … WHERE session_id = ? AND data = ?`) or a
//! touch that rewrites identical values still counts as done. A create is a plain `INSERT`;
//! when the unique key refuses it, an expired row under that key is deleted and the insert
//! tried once more, so a live row is never replaced. Statements are prepared once per
//! connection (the pool keeps them across checkouts). A connection that went back to the
//! pool in working order within the last half second is handed out again as it is; one idle
//! longer is pinged first (a dead one is dropped), so a restarted server costs no failed
//! request, and a busy store does not pay a ping's round trip on every call (the `mysql`
//! crate's own health check, off here, pings on every check-out).

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn, SslOpts};
use time::PrimitiveDateTime;

use super::shared::{DEFAULT_CONNECT_TIMEOUT, deadline_after, expiry_after, pool_timeout_message};
use super::sql::{
    ALIVE_BYPASS, PURGE_BATCH, RowStatements, now, purge_in_batches, row_record, timestamp,
};
use super::tls::{self, CertificateCheck, SslMode};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, validate_table_name};

mod schema;

const BACKEND: &str = "mysql";
/// The server's error for a duplicate unique key.
const ER_DUP_ENTRY: u16 = 1062;

/// Options of the MySQL / MariaDB store.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlOptions {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name, if any.
    pub user: Option<String>,
    /// Password, if any.
    pub password: Option<String>,
    /// The database that holds the table.
    pub database: String,
    /// The table name: `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters.
    pub table: String,
    /// The most connections the pool opens (at least 1).
    pub pool_size: u32,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a call waits for a connection of the pool when all are in use; `None`: the
    /// connect timeout.
    pub pool_timeout: Option<Duration>,
    /// TLS (rustls): [`SslMode::Disable`] (the default), `Require`, `VerifyCa` or
    /// `VerifyFull`; `Prefer` (TLS when offered) is not available for MySQL.
    pub ssl_mode: SslMode,
    /// A PEM file of CA certificates to trust besides the well-known ones (`sslrootcert`).
    pub ssl_root_cert: Option<PathBuf>,
}

impl fmt::Debug for MysqlOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_timeout", &self.pool_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

impl MysqlOptions {
    /// Options for `database` on `host:3306` as `root` without password, table `sessions`,
    /// at most 8 pooled connections.
    pub fn new(host: impl Into<String>, database: impl Into<String>) -> MysqlOptions {
        MysqlOptions {
            host: host.into(),
            port: 3306,
            user: Some("root".to_owned()),
            password: None,
            database: database.into(),
            table: "sessions".to_owned(),
            pool_size: 8,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_timeout: None,
            ssl_mode: SslMode::Disable,
            ssl_root_cert: None,
        }
    }

    /// Parses `mysql://user:password@host:port/db?table=sessions&pool_size=8&connect_timeout=5`
    /// (`mariadb://` too), taking those parameters, `pool_timeout` (seconds), `sslmode`
    /// (`disable`, `require`, `verify-ca`, `verify-full`) and `sslrootcert`, and leaving
    /// the others.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<MysqlOptions> {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| Error::config("store URL", "the user or password is not UTF-8"))
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| {
                Error::config(
                    "store URL",
                    "the MySQL URL names no host (mysql://user@host:3306/db)",
                )
            })?;
        let database = decode(url.path().trim_start_matches('/'))?;
        let mut options = MysqlOptions::new(host.trim_matches(['[', ']']), database);
        options.port = url.port().unwrap_or(3306);
        options.user = Some(url.username())
            .filter(|user| !user.is_empty())
            .map(decode)
            .transpose()?;
        options.password = url.password().map(decode).transpose()?;
        if let Some(table) = params.take("table") {
            options.table = table;
        }
        if let Some(pool_size) = params.take_parsed("pool_size")? {
            options.pool_size = pool_size;
        }
        if let Some(seconds) = params.take_parsed::<u64>("connect_timeout")? {
            options.connect_timeout = Duration::from_secs(seconds);
        }
        options.pool_timeout = params.take_seconds("pool_timeout")?;
        if let Some(mode) = params.take("sslmode") {
            options.ssl_mode = SslMode::parse(&mode)?;
        }
        options.ssl_root_cert = tls::root_cert_path(params.take("sslrootcert"));
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        super::shared::check_timeouts(&[
            ("connect_timeout", Some(self.connect_timeout)),
            ("pool_timeout", self.pool_timeout),
        ])?;
        validate_table_name(&self.table).map_err(|message| Error::config("table", message))?;
        if self.database.is_empty() || self.database.contains('/') {
            return Err(Error::config(
                "store URL",
                "the MySQL URL needs a database: mysql://user@host:3306/db",
            ));
        }
        if self.pool_size == 0 {
            return Err(Error::config("pool_size", "must be at least 1"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "connect_timeout",
                "must be at least 1 second",
            ));
        }
        if self.pool_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        if self.ssl_mode == SslMode::Prefer {
            return Err(Error::config(
                "sslmode",
                "prefer is not available for MySQL: use require (or verify-ca, verify-full) \
                 or disable",
            ));
        }
        Ok(())
    }

    /// The driver's TLS settings (rustls, ring provider), if TLS is on.
    fn ssl_opts(&self) -> Option<SslOpts> {
        if self.ssl_mode == SslMode::Disable {
            return None;
        }
        let check = self.ssl_mode.check(self.ssl_root_cert.as_deref());
        Some(
            SslOpts::default()
                .with_root_cert_path(self.ssl_root_cert.clone())
                .with_danger_accept_invalid_certs(check == CertificateCheck::None)
                .with_danger_skip_domain_validation(check == CertificateCheck::Ca),
        )
    }

    /// A failure to open the pool; a server without TLS under `sslmode` is a configuration
    /// error naming it.
    fn open_error(&self, error: mysql::Error) -> Error {
        match error {
            mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => Error::config(
                "sslmode",
                format!(
                    "sslmode={} but the server does not support TLS; use sslmode=disable, \
                     or give the server a certificate (ssl-cert, ssl-key)",
                    self.ssl_mode.name()
                ),
            ),
            other => {
                let text = format!("cannot connect (sslmode={}): {other}", self.ssl_mode.name());
                Error::store_described(BACKEND, text, other)
            }
        }
    }

    fn driver_options(&self) -> OptsBuilder {
        let constraints = PoolConstraints::new(1, self.pool_size as usize)
            .unwrap_or_else(PoolConstraints::new_const::<1, 1>);
        OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(Some(self.database.clone()))
            .tcp_connect_timeout(Some(self.connect_timeout))
            .ssl_opts(self.ssl_opts())
            .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
            .pool_opts(
                PoolOpts::new()
                    .with_constraints(constraints)
                    .with_reset_connection(false)
                    .with_check_health(false),
            )
    }
}

/// The SQL of each operation, with the table name spliced in once.
#[derive(Debug)]
struct Statements {
    load: String,
    insert: String,
    delete_expired: String,
    compare_and_set: String,
    compare_and_delete: String,
    set: String,
    delete: String,
    touch: String,
    purge: String,
    list_keys: String,
}

impl Statements {
    /// `table` must be validated: it is spliced (quoted) into the SQL.
    fn new(table: &str) -> Statements {
        let t = format!("`{table}`");
        let insert = format!("INSERT INTO {t} (session_id, data, expiry) VALUES (?, ?, ?)");
        let row = RowStatements::new(&t, |_| "?".to_owned());
        Statements {
            load: row.load,
            delete_expired: format!("DELETE FROM {t} WHERE session_id = ? AND expiry <= ?"),
            compare_and_set: row.compare_and_set,
            compare_and_delete: row.compare_and_delete,
            set: format!(
                "{insert} ON DUPLICATE KEY UPDATE data = VALUES(data), expiry = VALUES(expiry)"
            ),
            insert,
            delete: row.delete,
            touch: row.touch,
            list_keys: row.list_keys,
            purge: format!("DELETE FROM {t} WHERE expiry <= ? LIMIT {PURGE_BATCH}"),
        }
    }
}

/// Sessions in a MySQL or MariaDB table, shared with Flask-Session; see the
/// [module documentation](self) for the schema.
///
/// ```no_run
/// use sessionstore::store::{Store, mysql::{MysqlOptions, MysqlStore}};
/// let store = MysqlStore::open(&MysqlOptions::new("127.0.0.1", "app"))?;
/// store.create("session:k", b"\x80", std::time::Duration::from_secs(60))?;
/// # Ok::<(), sessionstore::Error>(())
/// ```
pub struct MysqlStore {
    pool: Pool,
    sql: Statements,
    pool_timeout: Duration,
    /// When each pooled connection (by its server connection id) last went back to the pool
    /// in working order.
    returned: Mutex<HashMap<u32, Instant>>,
}

/// A pooled connection checked out for one call. Back in the pool it records the time, or,
/// when a statement failed at the connection level, is dropped by the pool.
struct Checkout<'a> {
    conn: PooledConn,
    returned: &'a Mutex<HashMap<u32, Instant>>,
    broken: bool,
}

impl Checkout<'_> {
    /// Runs `statement` on the connection, noting a connection-level failure.
    fn run<T>(
        &mut self,
        statement: impl FnOnce(&mut PooledConn) -> std::result::Result<T, mysql::Error>,
    ) -> std::result::Result<T, mysql::Error> {
        let result = statement(&mut self.conn);
        if let Err(error) = &result
            && error.is_connectivity_error()
        {
            self.broken = true;
            // On its return the pool resets it, which fails, and so drops it.
            self.conn.reset_connection(true);
        }
        result
    }
}

impl Deref for Checkout<'_> {
    type Target = PooledConn;
    fn deref(&self) -> &PooledConn {
        &self.conn
    }
}

impl DerefMut for Checkout<'_> {
    fn deref_mut(&mut self) -> &mut PooledConn {
        &mut self.conn
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let id = self.conn.connection_id();
        let mut returned = lock(self.returned);
        if self.broken {
            returned.remove(&id);
        } else {
            returned.insert(id, Instant::now());
        }
    }
}

fn lock(returned: &Mutex<HashMap<u32, Instant>>) -> MutexGuard<'_, HashMap<u32, Instant>> {
    returned.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlStore")
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

impl MysqlStore {
    /// Opens the pool (one connection at once, which reports a bad address or login), then
    /// creates or adapts the table and its index.
    pub fn open(options: &MysqlOptions) -> Result<MysqlStore> {
        options.validate()?;
        if options.ssl_mode != SslMode::Disable {
            // The driver builds its TLS settings on the process-wide provider: ours.
            tls::provider();
        }
        let pool = Pool::new(options.driver_options()).map_err(|e| options.open_error(e))?;
        let store = MysqlStore {
            pool,
            sql: Statements::new(&options.table),
            pool_timeout: options.pool_timeout.unwrap_or(options.connect_timeout),
            returned: Mutex::default(),
        };
        {
            let mut conn = store.connection()?;
            schema::prepare(&mut conn, &options.table).map_err(Error::in_store(BACKEND))?;
        }
        Ok(store)
    }

    /// A working connection: one back from a call within [`ALIVE_BYPASS`] as it is, any
    /// other after a ping; connections that fail the ping are dropped and the next one tried,
    /// until the pool has none to give within the pool timeout.
    fn connection(&self) -> Result<Checkout<'_>> {
        let deadline = deadline_after(self.pool_timeout);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut conn = self.pool.try_get_conn(wait).map_err(|e| match e {
                mysql::Error::DriverError(mysql::DriverError::Timeout) => {
                    Error::store_described(BACKEND, pool_timeout_message(self.pool_timeout, &e), e)
                }
                other => Error::store_caused_by(BACKEND, "", other),
            })?;
            let id = conn.connection_id();
            let recent = {
                let mut returned = lock(&self.returned);
                // Forget connections the pool no longer holds, now and then.
                if returned.len() > 64 {
                    returned.retain(|_, at| at.elapsed() < ALIVE_BYPASS);
                }
                returned
                    .get(&id)
                    .is_some_and(|at| at.elapsed() < ALIVE_BYPASS)
            };
            if recent || conn.as_mut().ping().is_ok() {
                return Ok(Checkout {
                    conn,
                    returned: &self.returned,
                    broken: false,
                });
            }
            log::debug!("mysql store: a pooled connection failed its ping; dropped");
            lock(&self.returned).remove(&id);
            conn.reset_connection(true);
        }
    }

    /// The live record under `key`, read on `conn`.
    fn read(&self, conn: &mut Checkout<'_>, key: &str) -> Result<Option<Record>> {
        let row: Option<(Option<Vec<u8>>, Option<PrimitiveDateTime>)> = conn
            .run(|conn| conn.exec_first(&self.sql.load, (key, now())))
            .map_err(Error::in_store(BACKEND))?;
        Ok(row.and_then(|(data, expiry)| {
            row_record(
                BACKEND,
                key,
                data,
                expiry.map(PrimitiveDateTime::assume_utc),
            )
        }))
    }

    /// Runs the statement `sql` with `params` on `conn`, returning how many rows it matched.
    fn execute_on(
        conn: &mut Checkout<'_>,
        sql: &str,
        params: impl Into<mysql::Params>,
    ) -> std::result::Result<u64, mysql::Error> {
        conn.run(|conn| conn.exec_drop(sql, params))?;
        Ok(conn.affected_rows())
    }

    fn execute(&self, sql: &str, params: impl Into<mysql::Params>) -> Result<u64> {
        let mut conn = self.connection()?;
        Self::execute_on(&mut conn, sql, params).map_err(Error::in_store(BACKEND))
    }

    /// Inserts a new row; `Ok(false)` if the unique key refused it.
    fn insert(
        &self,
        conn: &mut Checkout<'_>,
        key: &str,
        data: &[u8],
        ttl: Duration,
    ) -> Result<bool> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        match conn.run(|conn| conn.exec_drop(&self.sql.insert, (key, data, expiry))) {
            Ok(()) => Ok(true),
            Err(mysql::Error::MySqlError(error)) if error.code == ER_DUP_ENTRY => Ok(false),
            Err(error) => Err(Error::store_caused_by(BACKEND, "", error)),
        }
    }
}

impl Store for MysqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        let mut conn = self.connection()?;
        self.read(&mut conn, key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let mut conn = self.connection()?;
        if self.insert(&mut conn, key, data, ttl)? {
            return Ok(true);
        }
        // The key is taken: by a live row (not created), or by an expired one, which goes.
        let removed = Self::execute_on(&mut conn, &self.sql.delete_expired, (key, now()))
            .map_err(Error::in_store(BACKEND))?;
        if removed == 0 {
            return Ok(false);
        }
        self.insert(&mut conn, key, data, ttl)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let mut conn = self.connection()?;
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        let matched = Self::execute_on(
            &mut conn,
            &self.sql.compare_and_set,
            (data, expiry, key, &expected.data[..], now()),
        )
        .map_err(Error::in_store(BACKEND))?;
        if matched == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&mut conn, key)?))
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let mut conn = self.connection()?;
        let deleted = Self::execute_on(
            &mut conn,
            &self.sql.compare_and_delete,
            (key, &expected.data[..], now()),
        )
        .map_err(Error::in_store(BACKEND))?;
        if deleted == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&mut conn, key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        self.execute(&self.sql.set, (key, data, expiry))?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, (key,))?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiry = timestamp(expiry_after(BACKEND, ttl)?);
        let matched = self.execute(&self.sql.touch, (expiry, key, now()))?;
        Ok(matched == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let mut conn = self.connection()?;
        let now = now();
        purge_in_batches(|| {
            Self::execute_on(&mut conn, &self.sql.purge, (now,)).map_err(Error::in_store(BACKEND))
        })
    }

    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let mut conn = self.connection()?;
        let limit = limit.max(1);
        let params = (
            cursor.unwrap_or(prefix),
            prefix.chars().count() as u64,
            prefix,
            now(),
            limit as u64,
        );
        let keys: Vec<String> = conn
            .run(|conn| conn.exec(&self.sql.list_keys, params))
            .map_err(Error::in_store(BACKEND))?;
        Ok(super::shared::key_page(keys, limit))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::test_support::contract::{Fixture, Purge, store_contract_tests};
    use crate::store::test_support::store_urls::{self, rejected_key};
    use crate::store::test_support::{free_port, store_error_message, unique_name};

    const MINUTE: Duration = Duration::from_secs(60);

    /// The shared test server, as the test services start it.
    fn server_options() -> MysqlOptions {
        let url = std::env::var("SESSIONSTORE_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
        options_from(&url).expect("SESSIONSTORE_MYSQL_URL")
    }

    fn options_from(text: &str) -> Result<MysqlOptions> {
        store_urls::options_from(text, MysqlOptions::from_url)
    }

    /// A direct connection for checks behind the store's back.
    fn direct(options: &MysqlOptions) -> mysql::Conn {
        mysql::Conn::new(options.driver_options()).expect("the test MySQL server")
    }

    /// A table of its own for one test, dropped at the end.
    struct TestTable {
        store: MysqlStore,
        conn: mysql::Conn,
        table: String,
    }

    impl TestTable {
        fn new() -> TestTable {
            let options = MysqlOptions {
                table: unique_name("my_unit"),
                ..server_options()
            };
            TestTable {
                store: MysqlStore::open(&options).expect("the test MySQL server"),
                conn: direct(&options),
                table: options.table,
            }
        }
    }

    impl Drop for TestTable {
        fn drop(&mut self) {
            let _ = self
                .conn
                .query_drop(format!("DROP TABLE IF EXISTS `{}`", self.table));
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
        // Expiries are stored with microsecond precision (DATETIME(6)).
        precision: Duration::from_micros(1),
        purge: Purge::Counts,
    }

    #[test]
    fn keys_are_case_sensitive() {
        let t = TestTable::new();
        assert!(t.store.create("session:abc", b"lower", MINUTE).unwrap());
        assert!(t.store.create("session:ABC", b"upper", MINUTE).unwrap());
        assert_eq!(
            &t.store.load("session:abc").unwrap().unwrap().data[..],
            b"lower"
        );
        assert_eq!(
            &t.store.load("session:ABC").unwrap().unwrap().data[..],
            b"upper"
        );
    }

    /// With `CLIENT_FOUND_ROWS`, rewriting identical values still counts as a match.
    #[test]
    fn identical_rewrites_count_as_done() {
        let mut t = TestTable::new();
        t.conn
            .query_drop(format!(
                "INSERT INTO `{}` (session_id, data, expiry) \
                 VALUES ('session:a', 'same', '2099-01-01 00:00:00')",
                t.table
            ))
            .unwrap();
        let loaded = t.store.load("session:a").unwrap().unwrap();
        // A TTL that lands exactly on the stored expiry, to the microsecond, is what a
        // changed-rows count would report as 0 rows.
        let mut conn = t.store.connection().unwrap();
        let matched = MysqlStore::execute_on(
            &mut conn,
            &t.store.sql.compare_and_set,
            (
                &b"same"[..],
                timestamp(loaded.expires_at),
                "session:a",
                &loaded.data[..],
                now(),
            ),
        )
        .unwrap();
        assert_eq!(matched, 1);
    }

    #[test]
    fn schema_matches_flask_sessions_model() {
        let mut t = TestTable::new();
        let columns: Vec<(String, String)> = t
            .conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&t.table,),
            )
            .unwrap();
        let expected = [
            ("id", "int(11)"),
            ("session_id", "varchar(255)"),
            ("data", "longblob"),
            ("expiry", "datetime(6)"),
        ];
        assert_eq!(
            columns,
            expected.map(|(c, t)| (c.to_owned(), t.to_owned())).to_vec()
        );
        let indexes: Vec<(String, String, i64)> = t
            .conn
            .exec(
                "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME",
                (&t.table,),
            )
            .unwrap();
        assert!(
            indexes.contains(&("expiry_idx".to_owned(), "expiry".to_owned(), 1)),
            "{indexes:?}"
        );
        assert!(
            indexes.contains(&("session_id".to_owned(), "session_id".to_owned(), 0)),
            "{indexes:?}"
        );
        // Opening again over the existing table changes nothing.
        MysqlStore::open(&MysqlOptions {
            table: t.table.clone(),
            ..server_options()
        })
        .unwrap();
    }

    #[test]
    fn adapts_a_table_that_flask_session_created() {
        let options = MysqlOptions {
            table: unique_name("my_flask"),
            ..server_options()
        };
        let mut conn = direct(&options);
        // What SQLAlchemy 2 emits for Flask-Session 0.8's model on MySQL.
        conn.query_drop(format!(
            "CREATE TABLE `{}` (id INTEGER NOT NULL AUTO_INCREMENT, session_id VARCHAR(255), \
             data BLOB, expiry DATETIME, PRIMARY KEY (id), UNIQUE (session_id))",
            options.table
        ))
        .unwrap();
        let big = vec![7u8; 100_000];
        let opened = MysqlStore::open(&options).and_then(|store| {
            store.create("session:a", &big, MINUTE)?;
            store.load("session:a")
        });
        let columns: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (&options.table,),
            )
            .unwrap();
        let indexed: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = \
                 DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'expiry'",
                (&options.table,),
            )
            .unwrap();
        conn.query_drop(format!("DROP TABLE `{}`", options.table))
            .unwrap();
        assert_eq!(
            opened.unwrap().unwrap().data,
            big,
            "values over BLOB's 64 KiB fit"
        );
        assert!(columns.contains(&("data".to_owned(), "longblob".to_owned())));
        assert!(columns.contains(&("expiry".to_owned(), "datetime(6)".to_owned())));
        assert_eq!(indexed, Some(1));
    }

    /// Fills the table with `live` rows expiring tomorrow and `expired` rows from yesterday,
    /// in multi-row inserts of 5 000 rows, then refreshes the optimizer's statistics.
    fn fill(t: &mut TestTable, live: usize, expired: usize) {
        for (kind, count, offset) in [("live", live, "+"), ("expired", expired, "-")] {
            let mut start = 0;
            while start < count {
                let end = count.min(start + 5_000);
                let rows: Vec<String> = (start..end)
                    .map(|n| {
                        format!(
                            "('{kind}:{n}', x'81a178', \
                             UTC_TIMESTAMP(6) {offset} INTERVAL 1 DAY)"
                        )
                    })
                    .collect();
                t.conn
                    .query_drop(format!(
                        "INSERT INTO `{}` (session_id, data, expiry) VALUES {}",
                        t.table,
                        rows.join(", ")
                    ))
                    .unwrap();
                start = end;
            }
        }
        t.conn
            .query_drop(format!("ANALYZE TABLE `{}`", t.table))
            .unwrap();
    }

    /// The realistic case: a purge that runs regularly finds few expired rows among many
    /// live ones. The optimizer must reach them through the expiry index (a range scan).
    #[test]
    fn purge_uses_the_expiry_index() {
        let mut t = TestTable::new();
        fill(&mut t, 50_000, 500);
        let sql = Statements::new(&t.table);
        let plan: Vec<mysql::Row> = t
            .conn
            .exec(format!("EXPLAIN {}", sql.purge), (now(),))
            .unwrap();
        let columns = |row: &mysql::Row, name: &str| -> Option<String> {
            row.get_opt::<Option<String>, _>(name)
                .and_then(|value| value.ok())
                .flatten()
        };
        let shown: Vec<String> = plan
            .iter()
            .map(|row| {
                ["table", "type", "possible_keys", "key", "rows", "Extra"]
                    .map(|name| format!("{name}={:?}", columns(row, name)))
                    .join(" ")
            })
            .collect();
        eprintln!("EXPLAIN {}\n{}", sql.purge, shown.join("\n"));
        assert_eq!(plan.len(), 1, "{shown:?}");
        assert_eq!(
            columns(&plan[0], "key").as_deref(),
            Some("expiry_idx"),
            "{shown:?}"
        );
        assert_eq!(
            columns(&plan[0], "type").as_deref(),
            Some("range"),
            "{shown:?}"
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
        eprintln!("mysql: inserted 101 000 rows in {filled:?}, purged {purged} in {took:?}");
        assert_eq!(purged, 100_000);
        let remaining: Option<i64> = t
            .conn
            .query_first(format!(
                "SELECT COUNT(*) FROM `{}` WHERE session_id LIKE 'live:%'",
                t.table
            ))
            .unwrap();
        assert_eq!(remaining, Some(1_000));
        assert_eq!(
            &t.store.load("session:kept").unwrap().unwrap().data[..],
            b"\x80"
        );
        assert_eq!(t.store.purge_expired().unwrap(), 0);
    }

    #[test]
    fn from_url_takes_its_parameters() {
        let (options, mut params) = store_urls::options_and_rest(
            "mariadb://app:s%40cret@db.example:3307/web?table=web_sessions&pool_size=3\
             &connect_timeout=7&pool_timeout=0.5&prefix=x",
            MysqlOptions::from_url,
        );
        assert_eq!(
            options,
            MysqlOptions {
                host: "db.example".to_owned(),
                port: 3307,
                user: Some("app".to_owned()),
                password: Some("s@cret".to_owned()),
                database: "web".to_owned(),
                table: "web_sessions".to_owned(),
                pool_size: 3,
                connect_timeout: Duration::from_secs(7),
                pool_timeout: Some(Duration::from_millis(500)),
                ssl_mode: SslMode::Disable,
                ssl_root_cert: None,
            }
        );
        assert_eq!(params.take("prefix").as_deref(), Some("x"));
        let shown = format!("{options:?}");
        assert!(
            !shown.contains("s@cret") && shown.contains("***"),
            "{shown}"
        );
        let plain = options_from("mysql://127.0.0.1/test").unwrap();
        assert_eq!((plain.port, plain.user, plain.password), (3306, None, None));
    }

    #[test]
    fn tls_parameters() {
        let options =
            options_from("mysql://h/db?sslmode=verify-ca&sslrootcert=/etc/ca.pem").unwrap();
        assert_eq!(options.ssl_mode, SslMode::VerifyCa);
        assert_eq!(options.ssl_root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let tls = options.ssl_opts().unwrap();
        assert!(tls.skip_domain_validation() && !tls.accept_invalid_certs());
        let tls = options_from("mysql://h/db?sslmode=require")
            .unwrap()
            .ssl_opts()
            .unwrap();
        assert!(tls.accept_invalid_certs());
        let tls = options_from("mysql://h/db?sslmode=verify-full")
            .unwrap()
            .ssl_opts()
            .unwrap();
        assert!(!tls.skip_domain_validation() && !tls.accept_invalid_certs());
        assert!(options_from("mysql://h/db").unwrap().ssl_opts().is_none());
        assert_eq!(
            rejected_key("mysql://h/db?sslmode=prefer", options_from),
            "sslmode"
        );
    }

    #[test]
    fn from_url_rejects_bad_values() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("mysql://h/db?table=x;drop"), "table");
        assert_eq!(key_of("mysql://h/db?pool_size=0"), "pool_size");
        assert_eq!(key_of("mysql://h/db?connect_timeout=0"), "connect_timeout");
        assert_eq!(key_of("mysql://h/db?pool_timeout=0"), "pool_timeout");
        assert_eq!(key_of("mysql://h/"), "store URL");
        assert_eq!(key_of("mysql://h/a/b"), "store URL");
        assert_eq!(key_of("mysql:///db"), "store URL");
        assert_eq!(key_of("mysql://h/db?sslmode=x"), "sslmode");
    }

    #[test]
    fn unreachable_server_at_open_is_a_store_error() {
        let port = free_port();
        let options = options_from(&format!("mysql://root@127.0.0.1:{port}/test")).unwrap();
        let message = store_error_message(MysqlStore::open(&options), "mysql");
        assert!(!message.is_empty());
    }
}
