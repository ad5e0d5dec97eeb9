//! The MySQL store's baseline: the `mysql` crate with the store's table and statements.

use std::time::Duration;

use mysql::consts::CapabilityFlags;
use mysql::prelude::Queryable;
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{Raw, RawCas, RawRecord, fail, utc};

/// The `mysql` crate's own pool, statements prepared once per connection (its statement
/// cache), `CLIENT_FOUND_ROWS` as the store sets it. `check_health`: whether the pool
/// pings a connection before handing it out (the crate's default).
pub struct MysqlRaw {
    pool: Pool,
    load: String,
    insert: String,
    delete_expired: String,
    cas: String,
    cas_delete: String,
    set: String,
    touch: String,
}

impl MysqlRaw {
    pub fn open(url: &str, table: &str, pool_size: usize, check_health: bool) -> MysqlRaw {
        let opts = Opts::from_url(url).unwrap_or_else(|e| fail("mysql", "URL", e));
        let builder = OptsBuilder::from_opts(opts)
            .additional_capabilities(CapabilityFlags::CLIENT_FOUND_ROWS)
            .pool_opts(
                PoolOpts::new()
                    .with_constraints(PoolConstraints::new(1, pool_size).unwrap())
                    .with_reset_connection(false)
                    .with_check_health(check_health),
            );
        let pool = Pool::new(builder)
            .unwrap_or_else(|e| fail("mysql", &format!("connecting to {url}"), e));
        pool.get_conn()
            .and_then(|mut conn| {
                conn.query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS `{table}` (id INTEGER NOT NULL AUTO_INCREMENT, \
                     session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                     data LONGBLOB, expiry DATETIME(6), PRIMARY KEY (id), \
                     UNIQUE KEY session_id (session_id), KEY expiry_idx (expiry)\
                     ) DEFAULT CHARSET = utf8mb4"
                ))
            })
            .unwrap_or_else(|e| fail("mysql", "create table", e));
        let t = format!("`{table}`");
        let insert = format!("INSERT INTO {t} (session_id, data, expiry) VALUES (?, ?, ?)");
        MysqlRaw {
            pool,
            load: format!("SELECT data, expiry FROM {t} WHERE session_id = ? AND expiry > ?"),
            delete_expired: format!("DELETE FROM {t} WHERE session_id = ? AND expiry <= ?"),
            cas: format!(
                "UPDATE {t} SET data = ?, expiry = ? \
                 WHERE session_id = ? AND data = ? AND expiry > ?"
            ),
            cas_delete: format!("DELETE FROM {t} WHERE session_id = ? AND data = ? AND expiry > ?"),
            set: format!(
                "{insert} ON DUPLICATE KEY UPDATE data = VALUES(data), expiry = VALUES(expiry)"
            ),
            insert,
            touch: format!("UPDATE {t} SET expiry = ? WHERE session_id = ? AND expiry > ?"),
        }
    }

    fn conn(&self) -> PooledConn {
        self.pool
            .get_conn()
            .unwrap_or_else(|e| fail("mysql", "check-out", e))
    }

    fn read(&self, conn: &mut PooledConn, key: &str) -> Option<RawRecord> {
        let row: Option<(Vec<u8>, PrimitiveDateTime)> = conn
            .exec_first(&self.load, (key, utc(OffsetDateTime::now_utc())))
            .unwrap_or_else(|e| fail("mysql", "load", e));
        row.map(|(data, expiry)| {
            std::hint::black_box(expiry);
            RawRecord::new(data)
        })
    }

    fn affected(&self, conn: &mut PooledConn, sql: &str, params: impl Into<mysql::Params>) -> u64 {
        conn.exec_drop(sql, params)
            .unwrap_or_else(|e| fail("mysql", "statement", e));
        conn.affected_rows()
    }

    fn insert(&self, conn: &mut PooledConn, key: &str, data: &[u8], ttl: Duration) -> bool {
        let expiry = utc(OffsetDateTime::now_utc() + ttl);
        match conn.exec_drop(&self.insert, (key, data, expiry)) {
            Ok(()) => true,
            Err(mysql::Error::MySqlError(e)) if e.code == 1062 => false,
            Err(e) => fail("mysql", "insert", e),
        }
    }
}

impl Raw for MysqlRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        self.read(&mut self.conn(), key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let mut conn = self.conn();
        if self.insert(&mut conn, key, data, ttl) {
            return true;
        }
        let now = utc(OffsetDateTime::now_utc());
        self.affected(&mut conn, &self.delete_expired, (key, now)) == 1
            && self.insert(&mut conn, key, data, ttl)
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let mut conn = self.conn();
        let now = OffsetDateTime::now_utc();
        let matched = self.affected(
            &mut conn,
            &self.cas,
            (data, utc(now + ttl), key, &expected.data, utc(now)),
        );
        if matched == 1 {
            RawCas::Stored
        } else {
            RawCas::Conflict(self.read(&mut conn, key))
        }
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        let mut conn = self.conn();
        let now = utc(OffsetDateTime::now_utc());
        if self.affected(&mut conn, &self.cas_delete, (key, &expected.data, now)) == 1 {
            RawCas::Stored
        } else {
            RawCas::Conflict(self.read(&mut conn, key))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        let expiry = utc(OffsetDateTime::now_utc() + ttl);
        self.affected(&mut self.conn(), &self.set, (key, data, expiry));
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        let now = OffsetDateTime::now_utc();
        self.affected(
            &mut self.conn(),
            &self.touch,
            (utc(now + ttl), key, utc(now)),
        ) == 1
    }
}
