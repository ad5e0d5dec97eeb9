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
//! connection (the pool keeps them across checkouts), and the pool pings a connection before
//! handing it out, so a restarted server costs no failed request.

use std::fmt;
use std::time::Duration;

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{CasOutcome, QueryParams, Record, Store, expiry_after, shown_key};
use crate::error::{Error, Result};

const BACKEND: &str = "mysql";
/// How long connecting, and waiting for a pooled connection, may take.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows deleted per statement by [`Store::purge_expired`].
const PURGE_BATCH: u64 = 10_000;
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
    /// How long connecting, and waiting for a free pooled connection, may take.
    pub connect_timeout: Duration,
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
        }
    }

    /// Parses `mysql://user:password@host:port/db?table=sessions&pool_size=8&connect_timeout=5`
    /// (`mariadb://` too), taking those parameters and leaving the others.
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
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        super::validate_table_name(&self.table)
            .map_err(|message| Error::config("table", message))?;
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
            return Err(Error::config("connect_timeout", "must be at least 1 second"));
        }
        Ok(())
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
            .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
            .pool_opts(
                PoolOpts::new()
                    .with_constraints(constraints)
                    .with_reset_connection(false),
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
}

impl Statements {
    /// `table` must be validated: it is spliced (quoted) into the SQL.
    fn new(table: &str) -> Statements {
        let t = format!("`{table}`");
        let insert = format!("INSERT INTO {t} (session_id, data, expiry) VALUES (?, ?, ?)");
        Statements {
            load: format!("SELECT data, expiry FROM {t} WHERE session_id = ? AND expiry > ?"),
            delete_expired: format!("DELETE FROM {t} WHERE session_id = ? AND expiry <= ?"),
            compare_and_set: format!(
                "UPDATE {t} SET data = ?, expiry = ? \
                 WHERE session_id = ? AND data = ? AND expiry > ?"
            ),
            compare_and_delete: format!(
                "DELETE FROM {t} WHERE session_id = ? AND data = ? AND expiry > ?"
            ),
            set: format!(
                "{insert} ON DUPLICATE KEY UPDATE data = VALUES(data), expiry = VALUES(expiry)"
            ),
            insert,
            delete: format!("DELETE FROM {t} WHERE session_id = ?"),
            touch: format!("UPDATE {t} SET expiry = ? WHERE session_id = ? AND expiry > ?"),
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
    connect_timeout: Duration,
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
        let pool = Pool::new(options.driver_options()).map_err(store_error)?;
        let store = MysqlStore {
            pool,
            sql: Statements::new(&options.table),
            connect_timeout: options.connect_timeout,
        };
        let mut conn = store.connection()?;
        prepare_schema(&mut conn, &options.table).map_err(store_error)?;
        Ok(store)
    }

    fn connection(&self) -> Result<PooledConn> {
        self.pool
            .try_get_conn(self.connect_timeout)
            .map_err(store_error)
    }

    /// The live record under `key`, read on `conn`.
    fn read(&self, conn: &mut PooledConn, key: &str) -> Result<Option<Record>> {
        let row: Option<(Option<Vec<u8>>, Option<PrimitiveDateTime>)> = conn
            .exec_first(&self.sql.load, (key, now()))
            .map_err(store_error)?;
        match row {
            None => Ok(None),
            Some((Some(data), Some(expiry))) => Ok(Some(Record::new(data, expiry.assume_utc()))),
            Some(_) => {
                log::warn!(
                    "mysql store: the row of {} has no data, treating it as missing",
                    shown_key(key)
                );
                Ok(None)
            }
        }
    }

    /// Runs the statement `sql` with `params` on `conn`, returning how many rows it matched.
    fn execute_on(
        conn: &mut PooledConn,
        sql: &str,
        params: impl Into<mysql::Params>,
    ) -> std::result::Result<u64, mysql::Error> {
        conn.exec_drop(sql, params)?;
        Ok(conn.affected_rows())
    }

    fn execute(&self, sql: &str, params: impl Into<mysql::Params>) -> Result<u64> {
        let mut conn = self.connection()?;
        Self::execute_on(&mut conn, sql, params).map_err(store_error)
    }

    /// Inserts a new row; `Ok(false)` if the unique key refused it.
    fn insert(&self, conn: &mut PooledConn, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let expiry = timestamp(expiry_after(ttl));
        match conn.exec_drop(&self.sql.insert, (key, data, expiry)) {
            Ok(()) => Ok(true),
            Err(mysql::Error::MySqlError(error)) if error.code == ER_DUP_ENTRY => Ok(false),
            Err(error) => Err(store_error(error)),
        }
    }
}

/// Creates the table if missing, widens a Flask-created one, and adds the expiry index,
/// under a named lock so that processes starting together do not race.
fn prepare_schema(conn: &mut PooledConn, table: &str) -> std::result::Result<(), mysql::Error> {
    let lock = format!("sessionstore schema {table}");
    let locked: Option<i64> = conn.exec_first("SELECT GET_LOCK(?, 30)", (&lock,))?;
    if locked != Some(1) {
        return Err(mysql::Error::DriverError(mysql::DriverError::Timeout));
    }
    let result = create_or_adapt(conn, table);
    let released = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,));
    result.and(released)
}

fn create_or_adapt(conn: &mut PooledConn, table: &str) -> std::result::Result<(), mysql::Error> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (\
             id INTEGER NOT NULL AUTO_INCREMENT, \
             session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             data LONGBLOB, \
             expiry DATETIME(6), \
             PRIMARY KEY (id), \
             UNIQUE KEY session_id (session_id), \
             KEY expiry_idx (expiry)\
         ) DEFAULT CHARSET = utf8mb4"
    ))?;
    let columns: Vec<(String, String, Option<u64>)> = conn.exec(
        "SELECT COLUMN_NAME, DATA_TYPE, DATETIME_PRECISION FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        (table,),
    )?;
    let mut changes = Vec::new();
    for (column, data_type, precision) in columns {
        match (column.as_str(), data_type.to_ascii_lowercase().as_str()) {
            ("data", "tinyblob" | "blob" | "mediumblob") => {
                changes.push("MODIFY data LONGBLOB");
            }
            ("expiry", "datetime") if precision.unwrap_or(0) < 6 => {
                changes.push("MODIFY expiry DATETIME(6)");
            }
            _ => {}
        }
    }
    let indexed: Option<i64> = conn.exec_first(
        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = ? AND COLUMN_NAME = 'expiry' AND SEQ_IN_INDEX = 1",
        (table,),
    )?;
    if indexed == Some(0) {
        changes.push("ADD INDEX expiry_idx (expiry)");
    }
    if !changes.is_empty() {
        log::info!(
            "mysql store: adapting table {table}: {}",
            changes.join(", ")
        );
        conn.query_drop(format!("ALTER TABLE `{table}` {}", changes.join(", ")))?;
    }
    Ok(())
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
            .map_err(store_error)?;
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
        let expiry = timestamp(expiry_after(ttl));
        let matched = Self::execute_on(
            &mut conn,
            &self.sql.compare_and_set,
            (data, expiry, key, &expected.data, now()),
        )
        .map_err(store_error)?;
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
            (key, &expected.data, now()),
        )
        .map_err(store_error)?;
        if deleted == 1 {
            Ok(CasOutcome::Stored)
        } else {
            Ok(CasOutcome::Conflict(self.read(&mut conn, key)?))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expiry = timestamp(expiry_after(ttl));
        self.execute(&self.sql.set, (key, data, expiry))?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, (key,))?;
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let expiry = timestamp(expiry_after(ttl));
        let matched = self.execute(&self.sql.touch, (expiry, key, now()))?;
        Ok(matched == 1)
    }

    fn purge_expired(&self) -> Result<u64> {
        let mut conn = self.connection()?;
        let now = now();
        let mut purged = 0;
        loop {
            let deleted =
                Self::execute_on(&mut conn, &self.sql.purge, (now,)).map_err(store_error)?;
            purged += deleted;
            if deleted < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

fn store_error(cause: impl fmt::Display) -> Error {
    Error::store(BACKEND, cause)
}

/// `at` as a `DATETIME` in UTC.
fn timestamp(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

fn now() -> PrimitiveDateTime {
    timestamp(OffsetDateTime::now_utc())
}
