//! The memory store's baseline: a locked map of bytes and expiries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Raw, RawCas, RawRecord};

/// A `Mutex<HashMap>` of bytes and expiry, as the memory store keeps them.
#[derive(Default)]
pub struct MemoryRaw {
    map: Mutex<HashMap<String, (Vec<u8>, OffsetDateTime)>>,
}

fn live(
    map: &HashMap<String, (Vec<u8>, OffsetDateTime)>,
    key: &str,
) -> Option<(Vec<u8>, OffsetDateTime)> {
    let now = OffsetDateTime::now_utc();
    map.get(key).filter(|(_, at)| *at > now).cloned()
}

impl Raw for MemoryRaw {
    fn load(&self, key: &str) -> Option<RawRecord> {
        let map = self.map.lock().unwrap();
        live(&map, key).map(|(data, _)| RawRecord::new(data))
    }

    fn create(&self, key: &str, data: &[u8], ttl: Duration) -> bool {
        let mut map = self.map.lock().unwrap();
        if live(&map, key).is_some() {
            return false;
        }
        map.insert(
            key.to_owned(),
            (data.to_vec(), OffsetDateTime::now_utc() + ttl),
        );
        true
    }

    fn cas(&self, key: &str, expected: &RawRecord, data: &[u8], ttl: Duration) -> RawCas {
        let mut map = self.map.lock().unwrap();
        match map.get_mut(key) {
            Some(entry) if entry.1 > OffsetDateTime::now_utc() && entry.0 == expected.data => {
                *entry = (data.to_vec(), OffsetDateTime::now_utc() + ttl);
                RawCas::Stored
            }
            _ => RawCas::Conflict(live(&map, key).map(|(data, _)| RawRecord::new(data))),
        }
    }

    fn cas_delete(&self, key: &str, expected: &RawRecord) -> RawCas {
        let mut map = self.map.lock().unwrap();
        match live(&map, key) {
            Some((data, _)) if data == expected.data => {
                map.remove(key);
                RawCas::Stored
            }
            current => RawCas::Conflict(current.map(|(data, _)| RawRecord::new(data))),
        }
    }

    fn set(&self, key: &str, data: &[u8], ttl: Duration) {
        self.map.lock().unwrap().insert(
            key.to_owned(),
            (data.to_vec(), OffsetDateTime::now_utc() + ttl),
        );
    }

    fn touch(&self, key: &str, ttl: Duration) -> bool {
        match self.map.lock().unwrap().get_mut(key) {
            Some(entry) if entry.1 > OffsetDateTime::now_utc() => {
                entry.1 = OffsetDateTime::now_utc() + ttl;
                true
            }
            _ => false,
        }
    }
}
