//! Redis Sentinel: finding the current master of a monitored service, for each new pooled
//! connection.
//!
//! A connection is opened as the Sentinel client guidelines describe: each sentinel in turn
//! is asked `SENTINEL GET-MASTER-ADDR-BY-NAME <service>`; the address it names is connected
//! to and must answer `ROLE` with `master` (a sentinel can still name a master that is
//! down or was demoted). The first master found serves the connection; when none is, the
//! error of the last attempt is reported. Every step runs under the store's connect and
//! reply timeouts, so a sentinel that hangs delays a connection by at most those.
//!
//! The lookup is ours rather than redis-rs's `SentinelClient`: that one opens its sentinel
//! and `ROLE` connections without any timeout and serializes every pool connect behind one
//! lock, where a connection here costs two short-lived sockets of its own.
//!
//! After a failover the pooled connections to the old master fail (the process is gone) or
//! answer `READONLY` (it came back as a replica); either renews the pool (see the parent
//! module), whose new connections ask the sentinels again.

use std::fmt;
use std::time::Duration;

use ::redis::{Client, Connection, ConnectionLike, RedisError, RedisResult, Value, cmd};
use r2d2::ManageConnection;

use super::RedisOptions;
use crate::error::{Error, Result};
use crate::parse::QueryParams;
use crate::store::net::url_hosts;

/// Sentinels' default port.
pub(super) const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// The master the sentinels are asked for, and how to log in to it.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelOptions {
    /// The master's name in the sentinels' configuration (`sentinel monitor <name> …`).
    pub service: String,
    /// The master's user name (Redis ACL), if it asks for one.
    pub username: Option<String>,
    /// The master's password, if it asks for one.
    pub password: Option<String>,
    /// The database number on the master.
    pub database: u32,
}

impl fmt::Debug for SentinelOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelOptions")
            .field("service", &self.service)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .finish()
    }
}

impl SentinelOptions {
    /// The master named `service`, database 0, no login.
    pub fn new(service: impl Into<String>) -> SentinelOptions {
        SentinelOptions {
            service: service.into(),
            username: None,
            password: None,
            database: 0,
        }
    }

    /// Checks the service name (what a sentinel URL's path holds).
    pub(super) fn validate(&self) -> Result<()> {
        if self.service.is_empty() || self.service.contains(['/', ' ']) {
            return Err(Error::config(
                "store URL",
                format!(
                    "{:?} is not a Sentinel service name (redis+sentinel://host:26379/mymaster/0)",
                    self.service
                ),
            ));
        }
        Ok(())
    }

    /// The URL of the master at `host`:`port`, over TLS when `tls`.
    fn master_url(&self, host: &str, port: u16, tls: bool) -> RedisResult<String> {
        let scheme = if tls { "rediss" } else { "redis" };
        let mut url = url::Url::parse(&format!("{scheme}://master/{}", self.database))
            .map_err(|e| invalid("master URL", e.to_string()))?;
        let set = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => url.set_ip_host(ip).map_err(|()| "bad address".to_owned()),
            Err(_) => url.set_host(Some(host)).map_err(|e| e.to_string()),
        };
        set.map_err(|e| invalid("master address", format!("{host}: {e}")))?;
        url.set_port(Some(port))
            .map_err(|()| invalid("master address", format!("{host}:{port}")))?;
        if let Some(username) = &self.username {
            url.set_username(username)
                .map_err(|()| invalid("master URL", "bad user name".to_owned()))?;
        }
        if let Some(password) = &self.password {
            url.set_password(Some(password))
                .map_err(|()| invalid("master URL", "bad password".to_owned()))?;
        }
        Ok(url.into())
    }
}

/// Parses `redis+sentinel://[[user]:password@]host1:26379,host2:26379,…/service[/db]` and
/// `rediss+sentinel://…` (TLS to the sentinels and the master), taking the
/// `sentinel_username` and `sentinel_password` parameters (the sentinels' own login; the
/// URL's is the master's).
pub(super) fn sentinel_from_url(url: &url::Url, params: &mut QueryParams) -> Result<RedisOptions> {
    let base = if url.scheme().starts_with("rediss") {
        "rediss"
    } else {
        "redis"
    };
    let hosts = url_hosts(
        url,
        params,
        DEFAULT_SENTINEL_PORT,
        "the Sentinel URL has no host",
    )?;
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| Error::config("store URL", "the login is not UTF-8"))
    };
    let mut path = url.path().trim_start_matches('/').splitn(2, '/');
    let mut master = SentinelOptions::new(decode(path.next().unwrap_or_default())?);
    master.database = match path.next().map(|db| db.trim_end_matches('/')) {
        None | Some("") => 0,
        Some(text) => text.parse::<u32>().map_err(|_| {
            Error::config("store URL", format!("{text:?} is not a database number"))
        })?,
    };
    if !url.username().is_empty() {
        master.username = Some(decode(url.username())?);
    }
    master.password = url.password().map(decode).transpose()?;
    let mut sentinel_login = url::Url::parse(&format!("{base}://sentinel/"))
        .map_err(|e| Error::config("store URL", e.to_string()))?;
    if let Some(username) = params.take("sentinel_username") {
        sentinel_login
            .set_username(&username)
            .map_err(|()| Error::config("sentinel_username", "not a user name"))?;
    }
    if let Some(password) = params.take("sentinel_password") {
        sentinel_login
            .set_password(Some(&password))
            .map_err(|()| Error::config("sentinel_password", "not a password"))?;
    }
    let login = match (sentinel_login.username(), sentinel_login.password()) {
        ("", None) => String::new(),
        (user, Some(password)) => format!("{user}:{password}@"),
        (user, None) => format!("{user}@"),
    };
    master.validate()?;
    Ok(RedisOptions::sentinel(
        hosts.iter().map(|host| format!("{base}://{login}{host}")),
        master,
    ))
}

fn invalid(what: &'static str, detail: String) -> RedisError {
    RedisError::from((::redis::ErrorKind::InvalidClientConfig, what, detail))
}

/// Opens connections to the current master of a Sentinel-monitored service.
#[derive(Clone)]
pub(super) struct SentinelConnector {
    /// One client per sentinel, in the configured order.
    pub(super) sentinels: Vec<Client>,
    pub(super) master: SentinelOptions,
    /// Whether the master is reached over TLS (`rediss+sentinel://`).
    pub(super) tls: bool,
    pub(super) connect_timeout: Duration,
    pub(super) timeout: Duration,
}

impl SentinelConnector {
    /// A connection with the store's timeouts.
    fn open(&self, client: &Client) -> RedisResult<Connection> {
        let conn = client.get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Asks `sentinel` for the master, and connects to it if it is one.
    fn master_from(&self, sentinel: &Client) -> RedisResult<Connection> {
        let service = &self.master.service;
        let address: Option<(String, u16)> = cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(service)
            .query(&mut self.open(sentinel)?)?;
        let (host, port) = address.ok_or_else(|| {
            RedisError::from((
                ::redis::ErrorKind::MasterNameNotFoundBySentinel,
                "no such master",
                format!("the sentinel does not monitor {service:?}"),
            ))
        })?;
        let client = Client::open(self.master.master_url(&host, port, self.tls)?)?;
        let mut conn = self.open(&client)?;
        let role: Value = cmd("ROLE").query(&mut conn)?;
        match role {
            Value::Array(items) if matches!(items.first(), Some(Value::BulkString(role)) if role == b"master") => {
                Ok(conn)
            }
            _ => Err(RedisError::from((
                ::redis::ErrorKind::MasterNameNotFoundBySentinel,
                "not the master (yet)",
                format!("{host}:{port}, named by the sentinel for {service:?}, is not a master"),
            ))),
        }
    }
}

impl ManageConnection for SentinelConnector {
    type Connection = Connection;
    type Error = RedisError;

    fn connect(&self) -> RedisResult<Connection> {
        let mut last = None;
        for sentinel in &self.sentinels {
            match self.master_from(sentinel) {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| invalid("sentinels", "none configured".to_owned())))
    }

    fn is_valid(&self, conn: &mut Connection) -> RedisResult<()> {
        cmd("PING").query(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::store_urls::{self, rejected_key};

    fn options_from(text: &str) -> Result<RedisOptions> {
        store_urls::options_from(text, RedisOptions::from_url)
    }

    #[test]
    fn sentinel_urls() {
        let options = options_from(
            "redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380/mymaster/2?wait_replicas=1\
             &sentinel_password=sp&wait_timeout=0.5",
        )
        .unwrap();
        assert_eq!(
            options.nodes,
            ["redis://:sp@10.0.0.1:26379", "redis://:sp@10.0.0.2:26380"]
        );
        let master = options.sentinel.as_ref().unwrap();
        assert_eq!(master.service, "mymaster");
        assert_eq!(master.database, 2);
        assert_eq!(master.password.as_deref(), Some("pw"));
        assert_eq!(master.username, None);
        assert_eq!(options.wait_replicas, 1);
        assert_eq!(options.wait_timeout, Duration::from_millis(500));
        assert!(!options.uses_tls());
        let options = options_from("rediss+sentinel://ann:p%40w@s1/cache").unwrap();
        assert_eq!(options.nodes, ["rediss://s1:26379"]);
        assert!(options.uses_tls());
        let master = options.sentinel.unwrap();
        assert_eq!(
            (master.username.as_deref(), master.password.as_deref()),
            (Some("ann"), Some("p@w"))
        );
        assert_eq!(master.database, 0);
    }

    #[test]
    fn bad_sentinel_urls_name_the_setting() {
        let key_of = |text: &str| rejected_key(text, options_from);
        assert_eq!(key_of("redis+sentinel://h1,h2/"), "store URL");
        assert_eq!(key_of("redis+sentinel://h1/m/x"), "store URL");
        assert_eq!(
            key_of("redis+sentinel://h1/m/0?wait_replicas=1&wait_timeout=9"),
            "wait_timeout"
        );
        assert_eq!(
            key_of("redis+cluster://h1:1?wait_replicas=1"),
            "wait_replicas"
        );
    }

    #[test]
    fn master_urls_carry_login_database_and_tls() {
        let mut master = SentinelOptions::new("mymaster");
        master.password = Some("p@ss word".to_owned());
        master.database = 3;
        assert_eq!(
            master.master_url("10.0.0.5", 6380, false).unwrap(),
            "redis://:p%40ss%20word@10.0.0.5:6380/3"
        );
        master.username = Some("ann".to_owned());
        assert_eq!(
            master.master_url("::1", 6379, true).unwrap(),
            "rediss://ann:p%40ss%20word@[::1]:6379/3"
        );
        assert_eq!(
            SentinelOptions::new("m")
                .master_url("cache.local", 1, false)
                .unwrap(),
            "redis://cache.local:1/0"
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let mut master = SentinelOptions::new("mymaster");
        master.password = Some("s3cret".to_owned());
        let shown = format!("{master:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("mymaster"),
            "{shown}"
        );
    }

    #[test]
    fn service_names_are_checked() {
        assert!(SentinelOptions::new("mymaster").validate().is_ok());
        assert!(SentinelOptions::new("").validate().is_err());
        assert!(SentinelOptions::new("a/b").validate().is_err());
    }
}
