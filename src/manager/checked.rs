//! The values this manager has checked or written, by store key (docs/DESIGN.md §4, "Values
//! already checked"): a load that finds exactly those bytes again takes their index instead
//! of checking the value anew.
//!
//! A session read by one request after another in the same process loads, each time, the
//! bytes the previous request wrote; checking them again proves nothing new. An entry is
//! used only when the loaded bytes are equal to the ones it indexes, compared in full, so
//! anything else (a value another process wrote, a damaged one) is checked as usual.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use foldhash::fast::RandomState;

use bytes::Bytes;

use crate::codec::Entries;
use crate::error::Result;

/// How many bytes of values the memo of one manager holds at most, all shards together.
const BUDGET: usize = 8 << 20;

/// Independent parts, each behind its own lock, so that concurrent requests rarely wait.
const SHARDS: usize = 16;

/// The largest value kept: an eighth of a shard, so that one shard always holds several.
const LARGEST: usize = BUDGET / SHARDS / 8;

/// The smallest value kept: below it, checking a value costs less than the memo's lookup,
/// comparison and bookkeeping (measured: docs/BENCHMARKS.md, "Values already checked").
const SMALLEST: usize = 1024;

/// Checked values by store key, bounded by [`BUDGET`] bytes.
pub(crate) struct CheckedValues {
    shards: [Mutex<Shard>; SHARDS],
    hasher: RandomState,
}

#[derive(Default)]
struct Shard {
    values: HashMap<String, Entries, RandomState>,
    /// The bytes the values and their keys take.
    bytes: usize,
}

impl CheckedValues {
    /// An empty memo.
    pub(crate) fn new() -> CheckedValues {
        CheckedValues {
            shards: Default::default(),
            hasher: RandomState::default(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let at = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[at]
    }

    /// Whether a value of `len` bytes is one the memo keeps: large enough to pay for it,
    /// small enough for a shard to hold several.
    pub(crate) fn keeps(len: usize) -> bool {
        (SMALLEST..=LARGEST).contains(&len)
    }

    /// The checked entries of `value`, loaded from `key`: the memo's when it holds exactly
    /// these bytes under `key`, else a check's, remembered when it passes and `remember`
    /// asks for it.
    pub(crate) fn entries_of(&self, key: &str, value: &Bytes, remember: bool) -> Result<Entries> {
        if let Some(entries) = self.get(key, value) {
            return Ok(entries);
        }
        let entries = Entries::decode_shared(value.clone())?;
        if remember {
            self.put(key, entries.clone());
        }
        Ok(entries)
    }

    /// The entries of `value` stored under `key`, if `value` is exactly the one this memo
    /// holds for `key`.
    fn get(&self, key: &str, value: &Bytes) -> Option<Entries> {
        if !CheckedValues::keeps(value.len()) {
            return None;
        }
        let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let entries = shard.values.get(key)?;
        (entries.source() == value).then(|| entries.clone())
    }

    /// Remembers `entries`, the index of the value now stored under `key` exactly as
    /// checking its source gives it (a fresh check's, or an indexed [`Entries::encode`]'s).
    /// Values the memo does not [keep](CheckedValues::keeps) are not kept (and the older
    /// value under `key` is forgotten); a shard that would exceed its part of the budget is
    /// emptied first.
    pub(crate) fn put(&self, key: &str, entries: Entries) {
        // A value read from JSON has no source: it is not indexed on its bytes.
        if !CheckedValues::keeps(entries.source().len()) {
            self.remove(key);
            return;
        }
        let size = key.len() + entries.footprint();
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.forget(key);
        if shard.bytes + size > BUDGET / SHARDS {
            shard.values.clear();
            shard.bytes = 0;
        }
        shard.bytes += size;
        shard.values.insert(key.to_owned(), entries);
    }

    /// Forgets the value stored under `key` (the record is being deleted).
    pub(crate) fn remove(&self, key: &str) {
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        shard.forget(key);
    }

    /// The bytes held, all shards together.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap().bytes)
            .sum()
    }
}

impl Shard {
    /// Removes the value under `key`, if any, from the shard and its byte count.
    fn forget(&mut self, key: &str) {
        if let Some(old) = self.values.remove(key) {
            self.bytes -= key.len() + old.footprint();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Data, Format};

    fn entries(counter: i64, filler: usize) -> Entries {
        let mut data = Data::new();
        data.insert("n".into(), counter.into());
        data.insert("filler".into(), "x".repeat(filler).into());
        let bytes = codec::encode(&data, Format::MessagePack).unwrap();
        Entries::decode_shared(Bytes::from(bytes)).unwrap()
    }

    #[test]
    fn gives_entries_only_for_the_same_bytes() {
        let memo = CheckedValues::new();
        let kept = entries(1, 2_000);
        let source = kept.source().clone();
        memo.put("session:a", kept);
        let hit = memo.get("session:a", &Bytes::copy_from_slice(&source));
        assert_eq!(hit.unwrap().get("n"), Some(&rmpv::Value::from(1)));
        // Another value under the key, one of the same length, and another key all miss.
        assert!(memo.get("session:a", entries(2, 2_000).source()).is_none());
        let mut flipped = source.to_vec();
        *flipped.last_mut().unwrap() ^= 0x01;
        assert!(memo.get("session:a", &Bytes::from(flipped)).is_none());
        assert!(memo.get("session:b", &source).is_none());
        memo.remove("session:a");
        assert!(memo.get("session:a", &source).is_none());
        assert_eq!(memo.bytes(), 0);
    }

    #[test]
    fn a_newer_value_replaces_the_older() {
        let memo = CheckedValues::new();
        memo.put("session:a", entries(1, 2_000));
        let newer = entries(2, 2_000);
        let source = newer.source().clone();
        memo.put("session:a", newer);
        assert!(memo.get("session:a", entries(1, 2_000).source()).is_none());
        assert!(memo.get("session:a", &source).is_some());
        assert_eq!(
            memo.bytes(),
            "session:a".len() + entries(2, 2_000).footprint()
        );
    }

    #[test]
    fn a_manager_remembers_what_it_writes_and_forgets_what_it_deletes() {
        use crate::store::StoreConfig;
        use crate::{Config, SessionManager};
        let config = Config::builder(StoreConfig::Memory).secret("s").build();
        let manager = SessionManager::new(config.unwrap()).unwrap();
        let mut session = manager.load(None).unwrap();
        session.insert("notes", "n".repeat(2_000)).unwrap();
        let set_cookie = manager.save(session).unwrap().set_cookie.unwrap();
        let cookie = set_cookie.split(';').next().unwrap();
        let mut session = manager.load(Some(cookie)).unwrap();
        let key = session.loaded.as_ref().unwrap().key.clone();
        let stored = manager.store().load(&key).unwrap().unwrap().data;
        assert!(manager.checked.get(&key, &stored).is_some(), "written");
        session.destroy();
        manager.save(session).unwrap();
        assert!(manager.checked.get(&key, &stored).is_none(), "deleted");
    }

    #[test]
    fn stays_within_its_budget() {
        let memo = CheckedValues::new();
        for n in 0..2_000 {
            memo.put(&format!("session:{n}"), entries(n, 20_000));
            assert!(memo.bytes() <= BUDGET);
        }
        // Too small to pay for the memo: not kept.
        let small = entries(0, 10);
        let source = small.source().clone();
        memo.put("session:small", small);
        assert!(memo.get("session:small", &source).is_none());
        // Too large to keep: not kept, and the older value under its key is forgotten.
        memo.put("session:big", entries(0, 2_000));
        memo.put("session:big", entries(1, LARGEST));
        assert!(
            memo.get("session:big", entries(0, 2_000).source())
                .is_none()
        );
        assert!(
            memo.get("session:big", entries(1, LARGEST).source())
                .is_none()
        );
    }
}
