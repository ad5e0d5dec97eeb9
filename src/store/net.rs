//! What the network stores (Redis, Memcached) share: URL timeouts, a connection pool that is
//! replaced as a whole when a connection breaks, and the expiry of a record whose store cannot
//! tell it.

use std::sync::RwLock;
use std::time::Duration;

use time::OffsetDateTime;

use super::QueryParams;
use crate::error::{Error, Result};

/// Default time allowed to open a connection (and to wait for a pooled one).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for one reply.
pub(crate) const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes a duration in seconds (`2`, `0.25`) from the URL parameter `name`; it must be
/// positive.
pub(crate) fn take_seconds(params: &mut QueryParams, name: &str) -> Result<Option<Duration>> {
    params.take_seconds(name)
}

/// Takes the pool size (at least 1) from the URL parameter `pool_size`.
pub(crate) fn take_pool_size(params: &mut QueryParams) -> Result<Option<u32>> {
    match params.take_parsed::<u32>("pool_size")? {
        Some(0) => Err(Error::config("pool_size", "must be at least 1")),
        size => Ok(size),
    }
}

/// `host` (`name`, `name:port`, `[v6]`, `[v6]:port`) with `port` added when it has none.
pub(crate) fn with_default_port(host: &str, port: u16) -> String {
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

/// The expiry reported for a live record whose store cannot tell when it expires: one second
/// from now. The record is live, and the manager, which renews a record's expiry at most once
/// per touch interval judging by this value, sees a renewal as due.
pub(crate) fn renewal_due() -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::from_secs(1)
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

    fn params(query: &str) -> QueryParams {
        QueryParams::from_url(&url::Url::parse(&format!("redis://h/?{query}")).unwrap()).unwrap()
    }

    #[test]
    fn seconds_are_positive_decimals() {
        let mut p = params("a=2&b=0.25&c=0&d=-1&e=x&f=inf");
        assert_eq!(
            take_seconds(&mut p, "a").unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            take_seconds(&mut p, "b").unwrap(),
            Some(Duration::from_millis(250))
        );
        for name in ["c", "d", "e", "f"] {
            match take_seconds(&mut p, name) {
                Err(Error::Config { key, .. }) => assert_eq!(key, name),
                other => panic!("{name} accepted: {other:?}"),
            }
        }
        assert_eq!(take_seconds(&mut p, "absent").unwrap(), None);
    }

    #[test]
    fn hosts_get_the_default_port() {
        assert_eq!(with_default_port("h", 11211), "h:11211");
        assert_eq!(with_default_port("h:1", 11211), "h:1");
        assert_eq!(with_default_port("10.0.0.2", 6379), "10.0.0.2:6379");
        assert_eq!(with_default_port("[::1]", 6379), "[::1]:6379");
        assert_eq!(with_default_port("[::1]:7001", 6379), "[::1]:7001");
    }

    #[test]
    fn pool_size_is_at_least_one() {
        assert_eq!(take_pool_size(&mut params("pool_size=3")).unwrap(), Some(3));
        assert_eq!(take_pool_size(&mut params("")).unwrap(), None);
        assert!(take_pool_size(&mut params("pool_size=0")).is_err());
        assert!(take_pool_size(&mut params("pool_size=-2")).is_err());
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
        assert!(due > now && due <= now + Duration::from_secs(2));
    }
}
