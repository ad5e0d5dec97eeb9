//! The PostgreSQL store's baseline: the `postgres` crate with the store's table and statements.

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};
use r2d2::{ManageConnection, Pool};
use r2d2_postgres::PostgresConnectionManager;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{Raw, RawCas, RawRecord, fail, utc};

/// A connection with the statements prepared on it.
pub struct Connection {
    client: Client,
    load: Statement,
    create: Statement,
    cas: Statement,
    cas_delete: Statement,
    set: Statement,
    touch: Statement,
}

struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    table: String,
}

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        let mut client = self.inner.connect()?;
        let t = &self.table;
        let upsert = format!(
            "INSERT INTO {t} (session_id, data, expiry) VALUES ($1, $2, $3) ON CONFLICT \
             (session_id) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry"
        );
        Ok(Connection {
            load: client.prepare(&format!(
                "SELECT data, expiry FROM {t} WHERE session_id = $1 AND expiry > $2"
            ))?,
            create: client.prepare(&format!(
                "{upsert} WHERE {t}.expiry <= $4 OR {t}.expiry IS NULL"
            ))?,
            cas: client.prepare(&format!(
                "UPDATE {t} SET data = $1, expiry = $2 \
                 WHERE session_id = $3 AND data = $4 AND expiry > $5"
            ))?,
            cas_delete: client.prepare(&format!(
                "DELETE FROM {t} WHERE session_id = $1 AND data = $2 AND expiry > $3"
            ))?,
            set: client.prepare(&upsert)?,
            touch: client.prepare(&format!(
                "UPDATE {t} SET expiry = $1 WHERE session_id = $2 AND expiry > $3"
            ))?,
            client,
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.inner.has_broken(&mut conn.client)
    }
}

/// `postgres` on an r2d2 pool (r2d2_postgres), statements prepared once per connection.
/// `check_out_test`: whether the pool runs r2d2_postgres' validity query (an empty
/// simple query, one round trip) before handing out a connection, as r2d2 does by
/// default.
pub struct PostgresRaw {
    pool: Pool<Manager>,
}

impl PostgresRaw {
    pub fn open(url: &str, table: &str, pool_size: u32, check_out_test: bool) -> PostgresRaw {
        let config = postgres::Config::from_str(url).unwrap_or_else(|e| fail("postgres", "URL", e));
        let inner = PostgresConnectionManager::new(config, NoTls);
        let mut client = inner
            .connect()
            .unwrap_or_else(|e| fail("postgres", &format!("connecting to {url}"), e));
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id SERIAL PRIMARY KEY, \
                 session_id VARCHAR(255) UNIQUE NOT NULL, data BYTEA, \
                 expiry TIMESTAMP WITHOUT TIME ZONE); \
                 CREATE INDEX IF NOT EXISTS {table}_expiry_idx ON {table} (expiry);"
            ))
            .unwrap_or_else(|e| fail("postgres", "create table", e));
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .test_on_check_out(check_out_test)
            .build(Manager {
                inner,
                table: table.to_owned(),
            })
            .unwrap_or_else(|e| fail("postgres", "pool", e));
        PostgresRaw { pool }
    }

    fn conn(&self) -> r2d2::PooledConnection<Manager> {
        self.pool
            .get()
            .unwrap_or_else(|e| fail("postgres", "check-out", e))
    }

    fn read(conn: &mut Connection, key: &str) -> Option<RawRecord> {
        let now = utc(OffsetDateTime::now_utc());
        conn.client
            .query_opt(&conn.load, &[&key, &now])
            .unwrap_or_else(|e| fail("postgres", "load", e))
            .map(|row| {
                let expiry: PrimitiveDateTime = row.get(1);
                std::hint::black_box(expiry);
                RawRecord::new(row.get(0))
            })
    }
}

impl Raw for PostgresRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        Self::read(&mut self.conn(), key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let now = OffsetDateTime::now_utc();
        let conn = &mut *self.conn();
        conn.client
            .execute(&conn.create, &[&key, &data, &utc(now + ttl), &utc(now)])
            .unwrap_or_else(|e| fail("postgres", "create", e))
            == 1
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let now = OffsetDateTime::now_utc();
        let conn = &mut *self.conn();
        let changed = conn
            .client
            .execute(
                &conn.cas,
                &[&data, &utc(now + ttl), &key, &expected.data, &utc(now)],
            )
            .unwrap_or_else(|e| fail("postgres", "compare-and-set", e));
        if changed == 1 {
            RawCas::Stored
        } else {
            RawCas::Conflict(Self::read(conn, key))
        }
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        let now = utc(OffsetDateTime::now_utc());
        let conn = &mut *self.conn();
        let deleted = conn
            .client
            .execute(&conn.cas_delete, &[&key, &expected.data, &now])
            .unwrap_or_else(|e| fail("postgres", "compare-and-delete", e));
        if deleted == 1 {
            RawCas::Stored
        } else {
            RawCas::Conflict(Self::read(conn, key))
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        let expiry = utc(OffsetDateTime::now_utc() + ttl);
        let conn = &mut *self.conn();
        conn.client
            .execute(&conn.set, &[&key, &data, &expiry])
            .unwrap_or_else(|e| fail("postgres", "set", e));
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        let now = OffsetDateTime::now_utc();
        let conn = &mut *self.conn();
        conn.client
            .execute(&conn.touch, &[&utc(now + ttl), &key, &utc(now)])
            .unwrap_or_else(|e| fail("postgres", "touch", e))
            == 1
    }
}
