//! What the network stores (Redis, Memcached) share: host lists, a connection pool that is
//! replaced as a whole when a connection breaks, and the expiry of a record whose store cannot
//! tell it.

use std::sync::RwLock;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::parse::QueryParams;

/// Default time allowed for one reply.
pub(crate) const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// `host` (`name`, `name:port`, `[v6]`, `[v6]:port`) with `port` added when it has none.
fn with_default_port(host: &str, port: u16) -> String {
    let has_port = match host.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => host.contains(':'),
    };
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

/// The `host:port` addresses of a store URL: its `host` parameters, else the URL's own
/// host; `default_port` where a host names none. `no_host` is the error's message when there
/// is neither.
pub(crate) fn url_hosts(
    url: &url::Url,
    params: &mut QueryParams,
    default_port: u16,
    no_host: &str,
) -> Result<Vec<String>> {
    let mut hosts: Vec<String> = params
        .take_hosts()
        .iter()
        .map(|host| with_default_port(host, default_port))
        .collect();
    if hosts.is_empty() {
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| Error::config("store URL", no_host.to_owned()))?;
        hosts.push(format!("{host}:{}", url.port().unwrap_or(default_port)));
    }
    Ok(hosts)
}

/// The expiry reported for a live record whose store cannot tell when it expires: one second
/// from now. The record is live, and the manager, which renews a record's expiry at most once
/// per touch interval judging by this value, sees a renewal as due.
pub(crate) fn renewal_due() -> OffsetDateTime {
    OffsetDateTime::now_utc().saturating_add(time::Duration::SECOND)
}

/// A client (a pool of connections) that is rebuilt when one of its connections breaks.
///
/// A pooled connection to a server that restarted is dead, and so is every other idle one;
/// the pools cannot always tell. The failing call reports its error; [`Renewable::renew`]
/// then replaces the whole client, so the next calls connect afresh instead of finding the
/// other dead connections one failure at a time.
pub(crate) struct Renewable<T: Clone> {
    make: Box<dyn Fn() -> T + Send + Sync>,
    /// The client and its generation, counted up at each renewal.
    current: RwLock<(u64, T)>,
}

impl<T: Clone> Renewable<T> {
    /// A renewable client built by `make` (also called for each renewal).
    pub(crate) fn new(make: impl Fn() -> T + Send + Sync + 'static) -> Renewable<T> {
        let first = make();
        Renewable {
            make: Box::new(make),
            current: RwLock::new((0, first)),
        }
    }

    /// The current client and its generation.
    pub(crate) fn get(&self) -> (u64, T) {
        // A panic cannot leave the pair half-written: it is replaced in one assignment.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the client of `generation` (the one that failed) with a fresh one; a client
    /// already replaced by another thread is left alone.
    pub(crate) fn renew(&self, generation: u64) {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 == generation {
            *current = (generation + 1, (self.make)());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn hosts_get_the_default_port() {
        assert_eq!(with_default_port("h", 11211), "h:11211");
        assert_eq!(with_default_port("h:1", 11211), "h:1");
        assert_eq!(with_default_port("10.0.0.2", 6379), "10.0.0.2:6379");
        assert_eq!(with_default_port("[::1]", 6379), "[::1]:6379");
        assert_eq!(with_default_port("[::1]:7001", 6379), "[::1]:7001");
    }

    #[test]
    fn renewal_replaces_only_the_failed_generation() {
        let built = Arc::new(AtomicU32::new(0));
        let counter = built.clone();
        let client = Renewable::new(move || counter.fetch_add(1, Ordering::SeqCst));
        assert_eq!(client.get(), (0, 0));
        client.renew(0);
        assert_eq!(client.get(), (1, 1));
        // A second thread that saw the same failure does not replace the fresh client.
        client.renew(0);
        assert_eq!(client.get(), (1, 1));
        assert_eq!(built.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn renewal_due_is_live_and_near() {
        let now = OffsetDateTime::now_utc();
        let due = renewal_due();
        assert!(due > now && due <= now.saturating_add(time::Duration::seconds(2)));
    }
}
