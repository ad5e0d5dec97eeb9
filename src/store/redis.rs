//! Redis store, one server or a Redis Cluster, shared with Flask-Session's `RedisSessionInterface`.
//!
//! A session is the string `key_prefix + id` holding the encoded value with a TTL, exactly as
//! Flask-Session writes it (`SET key value EX lifetime`; we write `PX`, the same TTL in
//! milliseconds). Every operation touches one key, so it all works on a Cluster.
//!
//! | operation | Redis | round trips |
//! |---|---|---|
//! | load | `GET` + `PEXPIRETIME`, pipelined | 1 |
//! | compare-and-set | `EVALSHA` of a script: `GET`, compare with the bytes the load saw, `SET … PX` when equal, else return the current value and expiry | 1, even on a conflict |
//! | compare-and-delete | the same script with `DEL` | 1 |
//! | create | `SET key value NX PX ttl` | 1 |
//! | set (last-writer-wins) | `SET key value PX ttl` | 1 |
//! | touch | `PEXPIRE key ttl` | 1 |
//! | delete | `DEL key` | 1 |
//!
//! A load is plain commands, not a script: a Lua script returning the value costs the
//! server two more copies of it (about twice the time of a `GET` for a 20 KB session). The
//! write script runs by its SHA1; a server that does not know it yet (`NOSCRIPT`) gets its
//! source once (`SCRIPT LOAD`, then `EVALSHA`). Redis expires keys itself, so
//! [`Store::purge_expired`] has nothing to do. Needs Redis 7.0 or later (`PEXPIRETIME`;
//! Valkey 7.2 too). The expiry a load reports is the server's absolute expiry
//! time, so the application's and Redis's clocks are assumed in sync (NTP).
//!
//! Redis Sentinel (`redis+sentinel://`) follows the master through a failover: each new
//! connection asks the sentinels for the current master ([`sentinel`]). A save is
//! acknowledged once the master has it; with `wait_replicas` = N, only once N replicas have
//! it too (`WAIT`), so that it survives the master's loss (see [`RedisOptions::wait_replicas`]).
//!
//! Connections come from an r2d2 pool (redis-rs's own r2d2 support). When a connection
//! breaks (the server restarted, say), the pool is replaced, so that the following calls
//! connect afresh instead of finding the other dead connections one failure at a time; the
//! call itself is sent again on a fresh connection when that is safe (load, create, set,
//! touch, delete) and reports the error otherwise (compare-and-set: the first attempt may
//! have been applied, and merging into it would apply this request's changes twice).

use std::fmt;
use std::time::Duration;

use ::redis::cluster::ClusterClient;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{
    Client, ConnectionLike, IntoConnectionInfo, RedisError, RedisResult, Script, Value, cmd,
};
use r2d2::{ManageConnection, Pool};
use time::OffsetDateTime;

use super::net::{DEFAULT_IO_TIMEOUT, Renewable, renewal_due, url_hosts};
use super::shared::{DEFAULT_CONNECT_TIMEOUT, expiry_after, pool_timeout_message, shown_key};
use super::{CasOutcome, Record, Store};
use crate::error::{Error, Result};
use crate::parse::{QueryParams, redacted};

pub mod sentinel;

pub use sentinel::SentinelOptions;
use sentinel::{SentinelConnector, sentinel_from_url};

const BACKEND: &str = "redis";
/// Redis's default port.
const DEFAULT_PORT: u16 = 6379;
/// Attempts of a Cluster command across redirections and node failures.
const CLUSTER_RETRIES: u32 = 3;
/// How long a write waits for its replicas by default (`wait_timeout`).
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Compare-and-set (ARGV: expected value, new value, TTL in ms) or compare-and-delete (ARGV:
/// expected value). Returns 1 when done, 0 when the key is gone, else the current value and
/// its absolute expiry, so that a conflicting save can merge without reading again.
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

/// Options of the Redis store.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// The server's URL (`redis://[[user]:password@]host:port/db`, `rediss://` for TLS), or
    /// for a Cluster the URLs of its seed nodes (database 0).
    pub nodes: Vec<String>,
    /// Whether `nodes` are Redis Cluster nodes.
    pub cluster: bool,
    /// The most connections the pool opens (at least 1). For a Cluster, one pooled
    /// connection holds a socket to each node.
    pub pool_size: u32,
    /// The time allowed to open a connection.
    pub connect_timeout: Duration,
    /// The time a call waits for a connection of the pool (all in use, or none can be
    /// opened); `None`: `connect_timeout`.
    pub pool_timeout: Option<Duration>,
    /// The time allowed for one reply.
    pub timeout: Duration,
    /// Redis Sentinel: the monitored master to use; `nodes` are then the sentinels' URLs
    /// (`redis://[[user]:password@]host:26379`, `rediss://` for TLS to the sentinels and
    /// the master).
    pub sentinel: Option<SentinelOptions>,
    /// How many replicas must have a write before it is acknowledged (`WAIT`); 0, the
    /// default, acknowledges a write once the master has it. Without it, a write the
    /// master acknowledged but had not yet sent to a replica is lost if the master fails
    /// and a replica is promoted; with it, a write that could not reach that many replicas
    /// within `wait_timeout` is reported as an error (it is applied on the master all the
    /// same). Not for a Cluster.
    pub wait_replicas: u32,
    /// How long a write waits for `wait_replicas` replicas; less than `timeout`.
    pub wait_timeout: Duration,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|node| redacted(node)).collect();
        f.debug_struct("RedisOptions")
            .field("nodes", &nodes)
            .field("cluster", &self.cluster)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_timeout", &self.pool_timeout)
            .field("timeout", &self.timeout)
            .field("sentinel", &self.sentinel)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

impl RedisOptions {
    /// One server at `url` (`redis://localhost:6379/0`), 16 pooled connections, 5 s timeouts.
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            nodes: vec![url.into()],
            cluster: false,
            pool_size: 16,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_timeout: None,
            timeout: DEFAULT_IO_TIMEOUT,
            sentinel: None,
            wait_replicas: 0,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }

    /// The master `service` of the Redis Sentinels at `sentinel_urls`
    /// (`redis://127.0.0.1:26379`, ...); the master's login and database in `master`.
    pub fn sentinel<I, S>(sentinel_urls: I, master: SentinelOptions) -> RedisOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisOptions {
            nodes: sentinel_urls.into_iter().map(Into::into).collect(),
            sentinel: Some(master),
            ..RedisOptions::new("")
        }
    }

    /// A Redis Cluster reached through the seed nodes `urls` (`redis://127.0.0.1:7001`, ...).
    pub fn cluster<I, S>(urls: I) -> RedisOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisOptions {
            nodes: urls.into_iter().map(Into::into).collect(),
            cluster: true,
            ..RedisOptions::new("")
        }
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS),
    /// `redis+cluster://[[user]:password@]host1:port1,host2:port2,…`,
    /// `rediss+cluster://…`, and
    /// `redis+sentinel://[[user]:password@]host1:26379,host2:26379,…/service[/db]` (the
    /// login is the master's; `sentinel_username` and `sentinel_password` log in to the
    /// sentinels) and `rediss+sentinel://…`, taking the `pool_size`, `connect_timeout`,
    /// `pool_timeout`, `timeout` and `wait_timeout` (seconds) and `wait_replicas`
    /// parameters.
    pub(crate) fn from_url(url: &url::Url, params: &mut QueryParams) -> Result<RedisOptions> {
        let mut options = if url.scheme().ends_with("+sentinel") {
            sentinel_from_url(url, params)?
        } else {
            RedisOptions::nodes_from_url(url, params)?
        };
        if let Some(size) = params.take_pool_size()? {
            options.pool_size = size;
        }
        if let Some(timeout) = params.take_seconds("connect_timeout")? {
            options.connect_timeout = timeout;
        }
        options.pool_timeout = params.take_seconds("pool_timeout")?;
        if let Some(timeout) = params.take_seconds("timeout")? {
            options.timeout = timeout;
        }
        if let Some(replicas) = params.take_parsed("wait_replicas")? {
            options.wait_replicas = replicas;
        }
        if let Some(timeout) = params.take_seconds("wait_timeout")? {
            options.wait_timeout = timeout;
        }
        options.validate()?;
        Ok(options)
    }

    /// One server or a Cluster, from its URL.
    fn nodes_from_url(url: &url::Url, params: &mut QueryParams) -> Result<RedisOptions> {
        let scheme = url.scheme();
        let cluster = scheme.ends_with("+cluster");
        let base = if scheme.starts_with("rediss") {
            "rediss"
        } else {
            "redis"
        };
        let hosts = url_hosts(url, params, DEFAULT_PORT, "the Redis URL has no host")?;
        if !cluster && hosts.len() > 1 {
            return Err(Error::config(
                "store URL",
                "several hosts: use redis+cluster:// for a Redis Cluster",
            ));
        }
        let database = match url.path().trim_start_matches('/') {
            "" => 0,
            text => text.parse::<u32>().map_err(|_| {
                Error::config("store URL", format!("{text:?} is not a database number"))
            })?,
        };
        if cluster && database != 0 {
            return Err(Error::config(
                "store URL",
                "a Redis Cluster has only database 0",
            ));
        }
        let user_info = match url.password() {
            Some(password) => format!("{}:{password}@", url.username()),
            None if !url.username().is_empty() => format!("{}@", url.username()),
            None => String::new(),
        };
        let mut options = RedisOptions::cluster(
            hosts
                .iter()
                .map(|host| format!("{base}://{user_info}{host}/{database}")),
        );
        options.cluster = cluster;
        Ok(options)
    }

    fn validate(&self) -> Result<()> {
        super::shared::check_timeouts(&[
            ("connect_timeout", Some(self.connect_timeout)),
            ("pool_timeout", self.pool_timeout),
            ("timeout", Some(self.timeout)),
        ])?;
        let several_allowed = self.cluster || self.sentinel.is_some();
        if self.nodes.is_empty() || (!several_allowed && self.nodes.len() > 1) {
            return Err(Error::config(
                "nodes",
                "one server URL, or the seed nodes of a Cluster, or the sentinels",
            ));
        }
        if let Some(master) = &self.sentinel {
            if self.cluster {
                return Err(Error::config("sentinel", "not with a Cluster"));
            }
            master.validate()?;
            let schemes: Vec<bool> = self
                .nodes
                .iter()
                .map(|n| n.starts_with("rediss:"))
                .collect();
            if schemes.iter().any(|tls| *tls != schemes[0]) {
                return Err(Error::config(
                    "nodes",
                    "the sentinels are reached all over TLS (rediss://) or all without",
                ));
            }
        }
        if self.wait_replicas > 0 {
            if self.cluster {
                return Err(Error::config(
                    "wait_replicas",
                    "not supported with a Redis Cluster",
                ));
            }
            if self.wait_timeout.is_zero() || self.wait_timeout >= self.timeout {
                return Err(Error::config(
                    "wait_timeout",
                    format!(
                        "must be positive and less than timeout ({:?})",
                        self.timeout
                    ),
                ));
            }
        }
        for node in &self.nodes {
            node.as_str()
                .into_connection_info()
                .map_err(|e| Error::config("store URL", format!("{}: {e}", redacted(node))))?;
        }
        if self.pool_size == 0 {
            return Err(Error::config("pool_size", "must be at least 1"));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config("connect_timeout", "must be positive"));
        }
        if self.pool_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(Error::config("pool_timeout", "must be positive"));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("timeout", "must be positive"));
        }
        Ok(())
    }

    /// How long a call waits for a pooled connection.
    fn pool_wait(&self) -> Duration {
        self.pool_timeout.unwrap_or(self.connect_timeout)
    }

    fn uses_tls(&self) -> bool {
        self.nodes.iter().any(|node| node.starts_with("rediss:"))
    }

    fn shown_nodes(&self) -> String {
        self.nodes
            .iter()
            .map(|node| redacted(node))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Opens single-server connections with the configured timeouts.
#[derive(Clone)]
struct ServerConnector {
    client: Client,
    connect_timeout: Duration,
    timeout: Duration,
}

impl ManageConnection for ServerConnector {
    type Connection = ::redis::Connection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<::redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut ::redis::Connection) -> RedisResult<()> {
        cmd("PING").query(conn)
    }

    fn has_broken(&self, conn: &mut ::redis::Connection) -> bool {
        !conn.is_open()
    }
}

/// The pool of the deployment: one server, a Cluster, or the master the sentinels name.
enum Nodes {
    Server(Renewable<Pool<ServerConnector>>),
    Cluster(Renewable<Pool<ClusterClient>>),
    Sentinel(Renewable<Pool<SentinelConnector>>),
}

/// Sessions in Redis or a Redis Cluster, shared with Flask-Session; see the
/// [module documentation](self).
///
/// ```no_run
/// use sessionstore::store::{Store, redis::{RedisOptions, RedisStore}};
/// let store = RedisStore::open(&RedisOptions::new("redis://127.0.0.1:6379/0"))?;
/// assert!(store.create("session:k", b"\x80", std::time::Duration::from_secs(60))?);
/// assert_eq!(&store.load("session:k")?.unwrap().data[..], b"\x80");
/// # Ok::<(), sessionstore::Error>(())
/// ```
pub struct RedisStore {
    nodes: Nodes,
    /// How long a call waits for a pooled connection.
    pool_timeout: Duration,
    /// The compare-and-set / compare-and-delete script.
    write: Script,
    /// The replicas each write waits for (`WAIT`), and how long; none when 0.
    wait: (u32, u64),
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.nodes {
            Nodes::Server(_) => "server",
            Nodes::Cluster(_) => "cluster",
            Nodes::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisStore").field("nodes", &kind).finish()
    }
}

impl RedisStore {
    /// Connects (failing at once if the server cannot be reached or is older than Redis 7)
    /// and sets up the pool.
    pub fn open(options: &RedisOptions) -> Result<RedisStore> {
        options.validate()?;
        if options.uses_tls() {
            // redis-rs's rustls needs a process-wide crypto provider; keep one installed
            // earlier by the application.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let cannot_open = |e: RedisError| {
            Error::store_caused_by(BACKEND, format!("cannot open {}", options.shown_nodes()), e)
        };
        let nodes = if options.cluster {
            let client = ClusterClient::builder(options.nodes.iter().map(String::as_str))
                .connection_timeout(options.connect_timeout)
                .response_timeout(options.timeout)
                .retries(CLUSTER_RETRIES)
                .build()
                .map_err(cannot_open)?;
            client.connect().map_err(cannot_open)?;
            Nodes::Cluster(renewable_pool(client, options))
        } else if let Some(master) = &options.sentinel {
            let sentinels = options
                .nodes
                .iter()
                .map(|node| Client::open(node.as_str()))
                .collect::<RedisResult<Vec<Client>>>()
                .map_err(cannot_open)?;
            let connector = SentinelConnector {
                sentinels,
                master: master.clone(),
                tls: options.uses_tls(),
                connect_timeout: options.connect_timeout,
                timeout: options.timeout,
            };
            connector.connect().map_err(cannot_open)?;
            Nodes::Sentinel(renewable_pool(connector, options))
        } else {
            let connector = ServerConnector {
                client: Client::open(options.nodes[0].as_str()).map_err(cannot_open)?,
                connect_timeout: options.connect_timeout,
                timeout: options.timeout,
            };
            connector.connect().map_err(cannot_open)?;
            Nodes::Server(renewable_pool(connector, options))
        };
        let store = RedisStore {
            nodes,
            pool_timeout: options.pool_wait(),
            write: Script::new(WRITE_SCRIPT),
            wait: (
                options.wait_replicas,
                u64::try_from(options.wait_timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
        };
        // Checks that the server runs the commands the store needs.
        store
            .load("sessionstore:open-check")
            .map_err(|error| match &error {
                Error::Store { message, .. } if message.contains("unknown command") => {
                    let text = format!("Redis 7.0 or later is needed (PEXPIRETIME): {message}");
                    Error::store_described(BACKEND, text, error.clone())
                }
                _ => error,
            })?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection. When the connection broke, the pool is renewed,
    /// and an operation that is [`Resend::Safe`] runs once more on a fresh connection.
    fn run<T>(
        &self,
        operation: &str,
        key: &str,
        resend: Resend,
        f: impl Fn(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        let attempt = || match &self.nodes {
            Nodes::Server(pool) => with_connection(pool, |conn| f(conn)),
            Nodes::Cluster(pool) => with_connection(pool, |conn| f(conn)),
            Nodes::Sentinel(pool) => with_connection(pool, |conn| f(conn)),
        };
        let result = match attempt() {
            Err(Failure::Broken(_)) if resend == Resend::Safe => attempt(),
            other => other,
        };
        result.map_err(|failure| self.failed(format!("{operation} {}", shown_key(key)), failure))
    }

    /// The store error of `failure` while doing `what`.
    fn failed(&self, what: String, failure: Failure) -> Error {
        match failure {
            Failure::Broken(cause) | Failure::Other(cause) => {
                Error::store_caused_by(BACKEND, what, cause)
            }
            Failure::NoConnection(cause) => {
                let message = pool_timeout_message(self.pool_timeout, &cause);
                Error::store_described(BACKEND, format!("{what}: {message}"), cause)
            }
        }
    }

    /// The addresses of the Cluster's primaries (`CLUSTER NODES`), in a stable order: the
    /// nodes a listing scans one after the other.
    fn cluster_primaries(
        &self,
        pool: &Renewable<Pool<ClusterClient>>,
    ) -> Result<Vec<(String, u16)>> {
        let reply = with_connection(pool, |conn| {
            conn.route_command(
                cmd("CLUSTER").arg("NODES"),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
        })
        .map_err(|failure| self.failed("list the Cluster nodes".to_owned(), failure))?;
        let text: String = ::redis::from_redis_value(reply)
            .map_err(|e| Error::store_caused_by(BACKEND, "CLUSTER NODES: unexpected reply", e))?;
        let mut primaries: Vec<(String, u16)> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let flags = fields.get(2)?;
                let is_primary = flags.split(',').any(|flag| flag == "master")
                    && !flags
                        .split(',')
                        .any(|flag| flag == "fail" || flag == "noaddr");
                let address = fields.get(1)?.split(['@', ',']).next()?;
                let (host, port) = address.rsplit_once(':')?;
                let port = port.parse().ok().filter(|port| *port != 0)?;
                is_primary.then(|| (host.to_owned(), port))
            })
            .collect();
        primaries.sort();
        Ok(primaries)
    }

    /// One `SCAN` step: the next cursor and the keys matching `pattern`.
    fn scan_command(cursor: u64, pattern: &str, limit: usize) -> ::redis::Cmd {
        let mut scan = cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(limit.max(1));
        scan
    }

    /// [`run`](Self::run) for a write: with `wait_replicas`, the write is acknowledged
    /// once that many replicas have it (`WAIT` on the same connection), else it fails.
    fn run_write<T>(
        &self,
        operation: &str,
        key: &str,
        resend: Resend,
        f: impl Fn(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        let (replicas, millis) = self.wait;
        if replicas == 0 {
            return self.run(operation, key, resend, f);
        }
        self.run(operation, key, resend, |conn| {
            let reply = f(conn)?;
            let reached: u32 = cmd("WAIT").arg(replicas).arg(millis).query(conn)?;
            if reached < replicas {
                return Err(RedisError::from((
                    ::redis::ErrorKind::Client,
                    "not acknowledged by enough replicas",
                    format!(
                        "the write reached {reached} of wait_replicas {replicas} within \
                         wait_timeout {millis} ms (it is on the master)"
                    ),
                )));
            }
            Ok(reply)
        })
    }

    /// Runs the write script and reads its answer.
    fn write(&self, operation: &str, key: &str, args: &[&[u8]]) -> Result<CasOutcome> {
        let reply: Value = self.run_write(operation, key, Resend::Never, |conn| {
            let mut invocation = self.write.key(key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke(conn)
        })?;
        match reply {
            Value::Int(1) => Ok(CasOutcome::Stored),
            Value::Int(0) => Ok(CasOutcome::Conflict(None)),
            other => Ok(CasOutcome::Conflict(Some(record_from(other).ok_or_else(
                || {
                    Error::store(
                        BACKEND,
                        format!("{operation}: unexpected reply from the script"),
                    )
                },
            )?))),
        }
    }
}

/// A pool of `manager`'s connections, sized by `options`, replaced when one breaks.
fn renewable_pool<M>(manager: M, options: &RedisOptions) -> Renewable<Pool<M>>
where
    M: ManageConnection + Clone,
{
    let (size, wait) = (options.pool_size, options.pool_wait());
    Renewable::new(move || {
        Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            // A check-out costs no PING; a broken connection is found by its failing call.
            .test_on_check_out(false)
            .connection_timeout(wait)
            .build_unchecked(manager.clone())
    })
}

/// Whether an operation may be sent again after its connection broke, when it may or may
/// not have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Running it twice does what running it once does (reads, plain writes, deletes), or
    /// at worst leaves an unused record to expire (create).
    Safe,
    /// A second run could see the first one's effect as someone else's and merge it again
    /// (compare-and-set).
    Never,
}

/// Why a call failed.
enum Failure {
    /// The connection broke (the pool was renewed).
    Broken(RedisError),
    /// The pool handed out no connection within its timeout.
    NoConnection(r2d2::Error),
    /// Anything else: an error reply.
    Other(RedisError),
}

/// Runs `f` on one of `pool`'s connections; renews the pool when the connection broke.
fn with_connection<M, T>(
    pool: &Renewable<Pool<M>>,
    f: impl FnOnce(&mut M::Connection) -> RedisResult<T>,
) -> std::result::Result<T, Failure>
where
    M: ManageConnection,
{
    let (generation, current) = pool.get();
    let mut conn = current.get().map_err(Failure::NoConnection)?;
    f(&mut conn).map_err(|e| {
        // READONLY: the server was a master and is now a replica (after a failover).
        let demoted = e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::ReadOnly);
        if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || demoted {
            drop(conn);
            pool.renew(generation);
            Failure::Broken(e)
        } else {
            Failure::Other(e)
        }
    })
}

/// A record from a script's `{value, expiry in Unix ms}` reply.
fn record_from(reply: Value) -> Option<Record> {
    match reply {
        Value::Array(items) => match <[Value; 2]>::try_from(items).ok()? {
            [Value::BulkString(data), Value::Int(expiry)] => {
                Some(Record::new(data, expiry_from_millis(expiry)))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The expiry `PEXPIRETIME` reported; a key without one (written without a TTL by another
/// client) is due for renewal, which gives it one.
fn expiry_from_millis(millis: i64) -> OffsetDateTime {
    if millis < 0 {
        return renewal_due();
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or_else(|_| renewal_due())
}

/// A TTL in whole milliseconds, at least 1; an error when the expiry would fall past the year
/// 9999 (below that, the milliseconds fit Redis' 64-bit expiry easily).
fn millis(ttl: Duration) -> Result<u64> {
    expiry_after(BACKEND, ttl)?;
    u64::try_from(ttl.as_millis())
        .map(|millis| millis.max(1))
        .map_err(|_| Error::store(BACKEND, format!("lifetime {ttl:?} is out of range")))
}

impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn load(&self, key: &str) -> Result<Option<Record>> {
        // Two commands in one round trip, not a transaction: a write between them only makes
        // the expiry newer than the value (a touch is then skipped that the write made
        // needless), and a delete makes it -2, "due for renewal", whose touch or
        // compare-and-set then finds the session gone. Sent as packed commands: redis-rs's
        // `Pipeline::query` refuses Cluster connections, whose `req_packed_commands` routes
        // a one-key batch to the key's node.
        let mut pipeline = ::redis::pipe();
        pipeline.cmd("GET").arg(key).cmd("PEXPIRETIME").arg(key);
        let packed = pipeline.get_packed_pipeline();
        let replies = self.run("load", key, Resend::Safe, |conn| {
            conn.req_packed_commands(&packed, 0, 2)
        })?;
        let (data, expiry): (Option<Vec<u8>>, i64) =
            ::redis::from_redis_value(Value::Array(replies))
                .map_err(|e| Error::store_caused_by(BACKEND, "load: unexpected reply", e))?;
        Ok(data.map(|data| Record::new(data, expiry_from_millis(expiry))))
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let ttl = millis(ttl)?;
        // Sent again, a create that was applied finds its own record and reports `false`: the
        // manager then creates under another id, leaving an unused record to expire.
        let reply: Value = self.run_write("create", key, Resend::Safe, |conn| {
            cmd("SET")
                .arg(key)
                .arg(data)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query(conn)
        })?;
        Ok(reply == Value::Okay)
    }

    /// One pipeline of `SET … NX PX` on a single server; one by one on a Cluster (whose
    /// keys live on different nodes).
    fn create_many(&self, records: &[(&str, &[u8], Duration)]) -> Result<Vec<bool>> {
        let Nodes::Server(pool) = &self.nodes else {
            return records
                .iter()
                .map(|(key, data, ttl)| self.create(key, data, *ttl))
                .collect();
        };
        let mut pipeline = ::redis::pipe();
        for (key, data, ttl) in records {
            pipeline
                .cmd("SET")
                .arg(*key)
                .arg(*data)
                .arg("NX")
                .arg("PX")
                .arg(millis(*ttl)?);
        }
        let replies: Vec<Value> = with_connection(pool, |conn| pipeline.query(conn))
            .map_err(|failure| self.failed(format!("create {} records", records.len()), failure))?;
        Ok(replies.iter().map(|reply| *reply == Value::Okay).collect())
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let ttl = millis(ttl)?.to_string();
        self.write(
            "compare-and-set",
            key,
            &[&expected.data, data, ttl.as_bytes()],
        )
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        self.write("compare-and-delete", key, &[&expected.data])
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let ttl = millis(ttl)?;
        self.run_write("set", key, Resend::Safe, |conn| {
            cmd("SET").arg(key).arg(data).arg("PX").arg(ttl).query(conn)
        })
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.run_write("delete", key, Resend::Safe, |conn| {
            cmd("DEL").arg(key).query(conn)
        })
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let ttl = millis(ttl)?;
        self.run_write("touch", key, Resend::Safe, |conn| {
            cmd("PEXPIRE").arg(key).arg(ttl).query(conn)
        })
    }
    /// `SCAN … MATCH prefix*`; on a Cluster, on each primary in turn, the cursor naming the
    /// node (`node:cursor`).
    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let pattern = format!("{}*", glob_escaped(prefix));
        let bad_cursor = || Error::store(BACKEND, "list keys: not a cursor of this store");
        let what = || format!("list keys {}*", shown_key(prefix));
        // One server (or the master the sentinels name): one SCAN cursor.
        let server_cursor = || match cursor {
            Some(cursor) => cursor.parse::<u64>().map_err(|_| bad_cursor()),
            None => Ok(0),
        };
        let server_page =
            |scanned: std::result::Result<(u64, Vec<String>), Failure>| -> Result<super::KeyPage> {
                let (next, keys) = scanned.map_err(|failure| self.failed(what(), failure))?;
                Ok(super::KeyPage {
                    keys,
                    next: (next != 0).then(|| next.to_string()),
                })
            };
        match &self.nodes {
            Nodes::Server(pool) => {
                let start = server_cursor()?;
                server_page(with_connection(pool, |conn| {
                    Self::scan_command(start, &pattern, limit).query(conn)
                }))
            }
            Nodes::Sentinel(pool) => {
                let start = server_cursor()?;
                server_page(with_connection(pool, |conn| {
                    Self::scan_command(start, &pattern, limit).query(conn)
                }))
            }
            Nodes::Cluster(pool) => {
                let (node, start) = match cursor {
                    Some(cursor) => cursor
                        .split_once(':')
                        .and_then(|(node, start)| Some((node.parse().ok()?, start.parse().ok()?)))
                        .ok_or_else(bad_cursor)?,
                    None => (0usize, 0u64),
                };
                let primaries = self.cluster_primaries(pool)?;
                let Some((host, port)) = primaries.get(node) else {
                    return Ok(super::KeyPage::default());
                };
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let reply = with_connection(pool, |conn| {
                    conn.route_command(&Self::scan_command(start, &pattern, limit), routing)
                })
                .map_err(|failure| self.failed(what(), failure))?;
                let (next, keys): (u64, Vec<String>) = ::redis::from_redis_value(reply)
                    .map_err(|e| Error::store_caused_by(BACKEND, "SCAN: unexpected reply", e))?;
                let next = if next != 0 {
                    Some(format!("{node}:{next}"))
                } else {
                    (node + 1 < primaries.len()).then(|| format!("{}:0", node + 1))
                };
                Ok(super::KeyPage { keys, next })
            }
        }
    }
}

/// `text` with the characters of a `MATCH` pattern escaped.
fn glob_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::contract::{Purge, store_contract_tests};
    use crate::store::test_support::store_urls::{self, rejected_key};

    fn options_from(text: &str) -> Result<RedisOptions> {
        store_urls::options_from(text, RedisOptions::from_url)
    }

    /// The store on the shared test server at `var`, else at `default` (the test services).
    fn test_server(var: &str, default: &str) -> RedisStore {
        let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        RedisStore::open(&options_from(&url).expect(var)).expect("the test Redis server")
    }

    store_contract_tests! {
        mod server_contract;
        open: test_server("SESSIONSTORE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        short_ttl: Duration::from_millis(50),
        // Expiries are whole milliseconds (PX, PEXPIRETIME).
        precision: Duration::from_millis(1),
        purge: Purge::ServerExpires,
    }

    store_contract_tests! {
        mod cluster_contract;
        open: test_server(
            "SESSIONSTORE_REDIS_CLUSTER_URL",
            "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
        ),
        short_ttl: Duration::from_millis(50),
        precision: Duration::from_millis(1),
        purge: Purge::ServerExpires,
    }

    #[test]
    fn single_server_urls() {
        let options = options_from("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(options.nodes, ["redis://127.0.0.1:6379/2"]);
        assert!(!options.cluster);
        assert_eq!(options.pool_size, 16);
        let options = options_from("redis://:s3cret@cache.local/").unwrap();
        assert_eq!(options.nodes, ["redis://:s3cret@cache.local:6379/0"]);
        let options = options_from("rediss://ann:pw@cache.local:6380").unwrap();
        assert_eq!(options.nodes, ["rediss://ann:pw@cache.local:6380/0"]);
        assert!(options.uses_tls());
    }

    #[test]
    fn cluster_urls() {
        let options =
            options_from("redis+cluster://:pw@10.0.0.1:7001,10.0.0.2:7002,10.0.0.3:7003").unwrap();
        assert!(options.cluster);
        assert_eq!(
            options.nodes,
            [
                "redis://:pw@10.0.0.1:7001/0",
                "redis://:pw@10.0.0.2:7002/0",
                "redis://:pw@10.0.0.3:7003/0"
            ]
        );
        let options = options_from("rediss+cluster://h1:7001/?pool_size=4").unwrap();
        assert_eq!(options.nodes, ["rediss://h1:7001/0"]);
        assert_eq!(options.pool_size, 4);
    }

    #[test]
    fn pool_and_timeouts_are_url_parameters() {
        let (options, mut params) = store_urls::options_and_rest(
            "redis://h:1/0?pool_size=3&connect_timeout=0.5&timeout=2&prefix=x",
            RedisOptions::from_url,
        );
        assert_eq!(options.pool_size, 3);
        assert_eq!(options.connect_timeout, Duration::from_millis(500));
        assert_eq!(options.pool_timeout, None);
        assert_eq!(options.pool_wait(), Duration::from_millis(500));
        assert_eq!(options.timeout, Duration::from_secs(2));
        let options = options_from("redis://h:1/0?connect_timeout=0.5&pool_timeout=3").unwrap();
        assert_eq!(options.pool_timeout, Some(Duration::from_secs(3)));
        assert_eq!(options.pool_wait(), Duration::from_secs(3));
        // `prefix` is left for the config layer.
        assert_eq!(params.take("prefix").as_deref(), Some("x"));
    }

    #[test]
    fn bad_urls_name_the_setting() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("redis://h1:1,h2:2/0"), "store URL");
        assert_eq!(key_of("redis+cluster://h1:1,h2:2/3"), "store URL");
        assert_eq!(key_of("redis://h/zero"), "store URL");
        assert_eq!(key_of("redis://h/0?pool_size=0"), "pool_size");
        assert_eq!(key_of("redis://h/0?timeout=0"), "timeout");
        assert_eq!(key_of("redis://h/0?pool_timeout=0"), "pool_timeout");
        assert_eq!(
            key_of("redis://h/0?connect_timeout=soon"),
            "connect_timeout"
        );
        assert_eq!(key_of("redis+cluster://h1:1,,h2:2"), "store URL");
    }

    #[test]
    fn debug_hides_passwords() {
        let options = options_from("redis+cluster://:s3cret@h1:1,h2:2").unwrap();
        let shown = format!("{options:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("h2:2"), "{shown}");
    }

    #[test]
    fn script_replies() {
        let record = record_from(Value::Array(vec![
            Value::BulkString(b"\x80".to_vec()),
            Value::Int(4_102_444_800_000),
        ]))
        .unwrap();
        assert_eq!(&record.data[..], b"\x80");
        assert_eq!(
            record.expires_at,
            time::macros::datetime!(2100-01-01 0:00 UTC)
        );
        assert!(record_from(Value::Array(vec![Value::Int(1)])).is_none());
        assert!(record_from(Value::Okay).is_none());
        let due = record_from(Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::Int(-1),
        ]))
        .unwrap();
        assert!(due.expires_at <= OffsetDateTime::now_utc() + Duration::from_secs(1));
    }

    #[test]
    fn ttls_are_whole_milliseconds() {
        assert_eq!(millis(Duration::from_secs(2)).unwrap(), 2000);
        assert_eq!(millis(Duration::from_micros(10)).unwrap(), 1);
        assert!(millis(Duration::MAX).is_err());
    }
}
