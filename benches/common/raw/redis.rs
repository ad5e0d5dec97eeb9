//! The Redis store's baseline, single node and Cluster: redis-rs with the store's commands.

use std::time::Duration;

use r2d2::{ManageConnection, Pool};
use redis::cluster::ClusterClient;
use redis::{Client, ConnectionLike, Script, Value};

use super::{Raw, RawCas, RawRecord, fail};

/// The store's compare-and-set / compare-and-delete script, word for word.
const WRITE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  if #ARGV == 3 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('DEL', KEYS[1])
  end
  return 1
end
if not current then
  return 0
end
return {current, redis.call('PEXPIRETIME', KEYS[1])}
";

enum Pools {
    Server(Pool<Client>),
    Cluster(Pool<ClusterClient>),
}

/// redis-rs on an r2d2 pool (its own r2d2 support) without a check on check-out, as the
/// store's: loads are a `GET` + `PTTL` pipeline, compare-and-set the store's script by
/// `EVALSHA`, create `SET NX PX`, set `SET PX`, touch `PEXPIRE`.
pub struct RedisRaw {
    pools: Pools,
    write: Script,
}

fn pool<M: ManageConnection>(manager: M, size: u32) -> Pool<M> {
    Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .build(manager)
        .unwrap_or_else(|e| fail("redis", "pool", e))
}

fn ms(ttl: Duration) -> u64 {
    ttl.as_millis() as u64
}

impl RedisRaw {
    pub fn open(url: &str, pool_size: u32) -> RedisRaw {
        let client = Client::open(url).unwrap_or_else(|e| fail("redis", url, e));
        client
            .get_connection()
            .unwrap_or_else(|e| fail("redis", &format!("connecting to {url}"), e));
        RedisRaw {
            pools: Pools::Server(pool(client, pool_size)),
            write: Script::new(WRITE_SCRIPT),
        }
    }

    pub fn open_cluster(nodes: &[String], pool_size: u32) -> RedisRaw {
        let client = ClusterClient::new(nodes.to_vec())
            .unwrap_or_else(|e| fail("redis cluster", "client", e));
        client
            .get_connection()
            .unwrap_or_else(|e| fail("redis cluster", &format!("connecting to {nodes:?}"), e));
        RedisRaw {
            pools: Pools::Cluster(pool(client, pool_size)),
            write: Script::new(WRITE_SCRIPT),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>) -> T {
        let result = match &self.pools {
            Pools::Server(pool) => {
                f(&mut *pool.get().unwrap_or_else(|e| fail("redis", "check-out", e)))
            }
            Pools::Cluster(pool) => {
                f(&mut *pool.get().unwrap_or_else(|e| fail("redis", "check-out", e)))
            }
        };
        result.unwrap_or_else(|e| fail("redis", "command", e))
    }

    fn script(&self, key: &str, args: &[&[u8]]) -> RawCas {
        let reply: Value = self.with(|conn| {
            let mut invocation = self.write.key(key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke(conn)
        });
        match reply {
            Value::Int(1) => RawCas::Stored,
            Value::Int(0) => RawCas::Conflict(None),
            Value::Array(mut items) => match items.swap_remove(0) {
                Value::BulkString(data) => RawCas::Conflict(Some(RawRecord::new(data))),
                other => fail("redis", "script", format!("{other:?}")),
            },
            other => fail("redis", "script", format!("{other:?}")),
        }
    }
}

impl Raw for RedisRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        // Sent as packed commands, which Cluster connections route by key too
        // (`Pipeline::query` refuses them).
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key).cmd("PTTL").arg(key);
        let packed = pipe.get_packed_pipeline();
        let replies = self.with(|conn| conn.req_packed_commands(&packed, 0, 2));
        let (data, ttl): (Option<Vec<u8>>, i64) = redis::from_redis_value(Value::Array(replies))
            .unwrap_or_else(|e| fail("redis", "GET + PTTL", e));
        std::hint::black_box(ttl);
        data.map(RawRecord::new)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let reply: Value = self.with(|conn| {
            redis::cmd("SET")
                .arg(key)
                .arg(data)
                .arg("NX")
                .arg("PX")
                .arg(ms(ttl))
                .query(conn)
        });
        reply == Value::Okay
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let ttl = ms(ttl).to_string();
        self.script(key, &[&expected.data, data, ttl.as_bytes()])
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        self.script(key, &[&expected.data])
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        self.with(|conn| {
            redis::cmd("SET")
                .arg(key)
                .arg(data)
                .arg("PX")
                .arg(ms(ttl))
                .query::<()>(conn)
        });
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        self.with(|conn| redis::cmd("PEXPIRE").arg(key).arg(ms(ttl)).query(conn))
    }
}
