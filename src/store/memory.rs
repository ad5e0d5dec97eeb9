//! In-memory store: a map behind a lock, for tests, demos and single-process servers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::shared::{expiry_after, expiry_from};
use super::{CasOutcome, Record, Store};
use crate::error::Result;

const BACKEND: &str = "memory";

/// Sessions in a process-local map. Expired entries are dropped when read and by
/// [`Store::purge_expired`]; compare-and-set compares under the lock.
///
/// ```
/// use sessionstore::store::{Store, memory::MemoryStore};
/// let store = MemoryStore::new();
/// assert!(store.create("session:k", b"\x80", std::time::Duration::from_secs(60)).unwrap());
/// assert_eq!(&store.load("session:k").unwrap().unwrap().data[..], b"\x80");
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Locks the map. A panic in another thread cannot leave a record half-written (every
    /// update is a single insert or remove), so a poisoned lock is still safe to use.
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live record under `key` at `now`, evicting it if it has expired.
    fn live<'a>(
        entries: &'a mut HashMap<String, Record>,
        key: &str,
        now: OffsetDateTime,
    ) -> Option<&'a mut Record> {
        if entries.get(key).is_some_and(|r| r.is_expired_at(now)) {
            entries.remove(key);
        }
        entries.get_mut(key)
    }
}

/// Whether `current` holds what `expected` holds: the same buffer (what a load handed out,
/// the usual case, decided without reading it), else the same bytes.
fn same_data(current: &Record, expected: &Record) -> bool {
    let (current, expected) = (&current.data, &expected.data);
    (current.as_ptr() == expected.as_ptr() && current.len() == expected.len())
        || current == expected
}

impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// One lookup of the key (the usual case: present and live).
    fn load(&self, key: &str) -> Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        let mut entries = self.entries();
        Ok(match entries.get(key) {
            Some(record) if !record.is_expired_at(now) => Some(record.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        })
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> Result<bool> {
        let now = OffsetDateTime::now_utc();
        let expires_at = expiry_from(BACKEND, now, ttl)?;
        let mut entries = self.entries();
        if Self::live(&mut entries, key, now).is_some() {
            return Ok(false);
        }
        entries.insert(key.to_owned(), Record::new(data.to_vec(), expires_at));
        Ok(true)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: &Record,
        data: &[u8],
        ttl: Duration,
    ) -> Result<CasOutcome> {
        let now = OffsetDateTime::now_utc();
        let expires_at = expiry_from(BACKEND, now, ttl)?;
        let mut entries = self.entries();
        match Self::live(&mut entries, key, now) {
            Some(current) if same_data(current, expected) => {
                *current = Record::new(data.to_vec(), expires_at);
                Ok(CasOutcome::Stored)
            }
            current => Ok(CasOutcome::Conflict(current.cloned())),
        }
    }

    fn compare_and_delete(&self, key: &str, expected: &Record) -> Result<CasOutcome> {
        let mut entries = self.entries();
        match Self::live(&mut entries, key, OffsetDateTime::now_utc()) {
            Some(current) if same_data(current, expected) => {
                entries.remove(key);
                Ok(CasOutcome::Stored)
            }
            current => Ok(CasOutcome::Conflict(current.cloned())),
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) -> Result<()> {
        let expires_at = expiry_after(BACKEND, ttl)?;
        self.entries()
            .insert(key.to_owned(), Record::new(data.to_vec(), expires_at));
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.entries().remove(key);
        Ok(())
    }

    fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        let now = OffsetDateTime::now_utc();
        let expires_at = expiry_from(BACKEND, now, ttl)?;
        Ok(match Self::live(&mut self.entries(), key, now) {
            Some(record) => {
                record.expires_at = expires_at;
                true
            }
            None => false,
        })
    }

    fn purge_expired(&self) -> Result<u64> {
        let now = OffsetDateTime::now_utc();
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|_, record| !record.is_expired_at(now));
        Ok((before - entries.len()) as u64)
    }

    fn list_keys(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<super::KeyPage> {
        let now = OffsetDateTime::now_utc();
        let entries = self.entries();
        let mut keys: Vec<&String> = entries
            .iter()
            .filter(|(key, record)| {
                key.starts_with(prefix)
                    && cursor.is_none_or(|after| key.as_str() > after)
                    && !record.is_expired_at(now)
            })
            .map(|(key, _)| key)
            .collect();
        keys.sort_unstable();
        Ok(super::shared::key_page(keys.into_iter().cloned(), limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::contract::{Purge, store_contract_tests};

    store_contract_tests! {
        mod contract;
        open: MemoryStore::new(),
        short_ttl: Duration::from_millis(50),
        precision: Duration::ZERO,
        purge: Purge::Counts,
    }
}
