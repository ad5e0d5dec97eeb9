//! The memcached store's baseline: the `memcache` crate with the store's commands.

use std::io::{self, Write};
use std::time::Duration;

use memcache::{Client, CommandError, MemcacheError, Stream, ToMemcacheValue};
use time::OffsetDateTime;

use super::{Raw, RawCas, RawRecord, fail};

/// An absolute exptime in the past: the item expires at once.
const EXPIRED: u32 = 30 * 24 * 3600 + 1;

/// A value with the expiry in its client flags, as the store writes it.
struct Item<'a> {
    data: &'a [u8],
    flags: u32,
}

impl ToMemcacheValue<Stream> for Item<'_> {
    fn get_flags(&self) -> u32 {
        self.flags
    }
    fn get_length(&self) -> usize {
        self.data.len()
    }
    fn write_to(&self, stream: &mut Stream) -> io::Result<()> {
        stream.write_all(self.data)
    }
}

/// The `memcache` crate (binary protocol) on an r2d2 pool without a check on check-out:
/// `get` (value, flags, cas token), `cas`, `add`, `set`; the expiry kept in the flags as
/// the store keeps it, so a touch is a `get` and a `cas` as in the store.
pub struct MemcachedRaw {
    client: Client,
}

fn expiry(ttl: Duration) -> (u32, u32) {
    let at = OffsetDateTime::now_utc().unix_timestamp() as u64 + ttl.as_secs() + 1;
    (ttl.as_secs().max(1) as u32, at as u32)
}

type Fetched = (Vec<u8>, u32, Option<u64>);

impl MemcachedRaw {
    pub fn open(server: &str, pool_size: u32) -> MemcachedRaw {
        let url = url::Url::parse(&format!("memcache://{server}?timeout=5"))
            .unwrap_or_else(|e| fail("memcached", server, e));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .build_unchecked(memcache::ConnectionManager::new(url));
        let client = Client::with_pool(pool).unwrap_or_else(|e| fail("memcached", "client", e));
        client
            .version()
            .unwrap_or_else(|e| fail("memcached", &format!("connecting to {server}"), e));
        MemcachedRaw { client }
    }

    fn fetch(&self, key: &str) -> Option<RawRecord> {
        let (data, flags, token) = self
            .client
            .get::<Fetched>(key)
            .unwrap_or_else(|e| fail("memcached", "get", e))?;
        if i64::from(flags) <= OffsetDateTime::now_utc().unix_timestamp() {
            return None;
        }
        Some(RawRecord {
            data,
            token: token.expect("memcached gives cas tokens"),
        })
    }

    fn cas_item(&self, key: &str, expected: &RawRecord, item: Item<'_>, exptime: u32) -> RawCas {
        if self
            .client
            .cas(key, item, exptime, expected.token)
            .unwrap_or_else(|e| fail("memcached", "cas", e))
        {
            RawCas::Stored
        } else {
            RawCas::Conflict(self.fetch(key))
        }
    }
}

impl Raw for MemcachedRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        self.fetch(key)
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let (exptime, flags) = expiry(ttl);
        match self.client.add(key, Item { data, flags }, exptime) {
            Ok(()) => true,
            Err(MemcacheError::CommandError(CommandError::KeyExists)) => false,
            Err(e) => fail("memcached", "add", e),
        }
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let (exptime, flags) = expiry(ttl);
        self.cas_item(key, expected, Item { data, flags }, exptime)
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        self.cas_item(
            key,
            expected,
            Item {
                data: b"",
                flags: 0,
            },
            EXPIRED,
        )
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        let (exptime, flags) = expiry(ttl);
        self.client
            .set(key, Item { data, flags }, exptime)
            .unwrap_or_else(|e| fail("memcached", "set", e));
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        let Some(current) = self.fetch(key) else {
            return false;
        };
        let (exptime, flags) = expiry(ttl);
        let item = Item {
            data: &current.data,
            flags,
        };
        !matches!(
            self.cas_item(key, &current, item, exptime),
            RawCas::Conflict(None)
        )
    }
}
