//! Sessions of an owner (docs/DESIGN.md §9): the per-owner index kept beside the session
//! records, listing and ending an owner's sessions, and the cap.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rmpv::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{SaveOutcome, SessionManager, back_off};
use crate::codec::Entries;
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::session::{MAX_OWNER_LEN, OWNER_KEY, Session, owner_of};
use crate::store::CasOutcome;

/// Marks an owner index key, between the prefix and the owner's hash. Like the hashed-key
/// marker it holds `:`, which no session id holds, so no cookie can name an index.
const INDEX_MARKER: &str = "owner:";

/// How long an index lives after its last change: the longest session lifetime the
/// configuration accepts (400 days).
const INDEX_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

/// How long an entry registered before its session's write may name no record before a
/// read counts it stale: far longer than any save takes.
const PENDING_GRACE_MS: i128 = 60_000;

/// How many characters of a session's hint [`SessionInfo::id_hint`] shows.
const HINT_CHARS: usize = 8;

/// One session of an owner, as [`SessionManager::sessions_of`] lists it: never the id nor
/// the cookie, only a hint that tells the sessions apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// A short, one-way digest of the session's store key, safe to show (compare with
    /// [`SessionManager::id_hint`] to mark the current session).
    pub id_hint: String,
    /// When the session was bound to the owner.
    pub bound_at: OffsetDateTime,
    /// When the session expires unless used again (its last use plus the idle lifetime).
    pub expires_at: OffsetDateTime,
}

/// One entry of an owner index: a session's store key, when it was bound (Unix
/// milliseconds), and whether its
/// record was written (an unconfirmed entry belongs to a save in flight).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    bound_at: i64,
    confirmed: bool,
}

/// The index bytes: a MessagePack array of `[key, bound_at, confirmed]` arrays.
fn encode(entries: &[Entry]) -> Vec<u8> {
    let value = Value::Array(
        entries
            .iter()
            .map(|entry| {
                Value::Array(vec![
                    Value::from(entry.key.as_str()),
                    Value::from(entry.bound_at),
                    Value::Boolean(entry.confirmed),
                ])
            })
            .collect(),
    );
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).expect("writing to a Vec does not fail");
    bytes
}

/// Reads index bytes; anything undecodable counts as an empty index (and is replaced by the
/// next change), with a warning.
fn decode(bytes: &[u8]) -> Vec<Entry> {
    let entry = |value: &Value| -> Option<Entry> {
        let fields = value.as_array()?;
        Some(Entry {
            key: fields.first()?.as_str()?.to_owned(),
            bound_at: fields.get(1)?.as_i64()?,
            confirmed: fields.get(2)?.as_bool()?,
        })
    };
    let entries: Option<Vec<Entry>> = rmpv::decode::read_value(&mut &bytes[..])
        .ok()
        .and_then(|value| value.as_array()?.iter().map(entry).collect());
    entries.unwrap_or_else(|| {
        log::warn!("owner index undecodable, starting it afresh");
        Vec::new()
    })
}

/// Refuses an owner that [`Session::set_owner`] would refuse.
fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN || owner.contains('\0') {
        return Err(Error::Value {
            key: OWNER_KEY.to_owned(),
            message: format!("an owner is 1 to {MAX_OWNER_LEN} bytes, without NUL"),
        });
    }
    Ok(())
}

/// What a save must do to the owner indexes around its write, worked out before it.
pub(super) struct IndexPlan {
    /// The owner the session is bound to after the save, and the key it is saved under: an
    /// unconfirmed entry is added before the write and confirmed after it.
    bind: Option<(String, String)>,
    /// The owner and key the loaded record was bound under, whose entry goes after the
    /// write.
    unbind: Option<(String, String)>,
}

impl SessionManager {
    /// The store key of `owner`'s index: the prefix, [`INDEX_MARKER`] and the owner's
    /// SHA-256, so any owner string fits every backend's keys.
    fn index_key(&self, owner: &str) -> String {
        let digest = Sha256::digest(owner.as_bytes());
        format!(
            "{}{INDEX_MARKER}{}",
            self.config.key_prefix,
            URL_SAFE_NO_PAD.encode(digest)
        )
    }

    /// Whether `key` (a store key under this manager's prefix) holds an owner's index rather
    /// than a session, for tools that list a store's keys.
    pub fn is_owner_index_key(&self, key: &str) -> bool {
        key.strip_prefix(self.config.key_prefix.as_str())
            .is_some_and(|rest| rest.starts_with(INDEX_MARKER))
    }

    /// The hint [`SessionInfo::id_hint`] shows for the session under `id`, to tell the
    /// current session in [`sessions_of`](SessionManager::sessions_of)'s list.
    pub fn id_hint(&self, id: &SessionId) -> String {
        hint_of_key(&self.key(id))
    }

    /// Reads `owner`'s index, applies `change` and writes it back with compare-and-set,
    /// again on a conflict (the store's cas: one key, so Redis Cluster and memcached too).
    /// `change` runs once per attempt on the entries read; an unchanged index is not
    /// written, an emptied one is deleted.
    fn update_index<T>(
        &self,
        owner: &str,
        mut change: impl FnMut(&mut Vec<Entry>) -> T,
    ) -> Result<T> {
        let key = self.index_key(owner);
        for attempt in 0..self.config.max_attempts {
            let current = self.store.load(&key)?;
            let before = current
                .as_ref()
                .map(|record| decode(&record.data))
                .unwrap_or_default();
            let mut entries = before.clone();
            let result = change(&mut entries);
            if entries == before {
                return Ok(result);
            }
            let written = match (&current, entries.is_empty()) {
                (None, true) => true,
                (None, false) => self.store.create(&key, &encode(&entries), INDEX_TTL)?,
                (Some(record), true) => {
                    self.store.compare_and_delete(&key, record)? == CasOutcome::Stored
                }
                (Some(record), false) => {
                    self.store
                        .compare_and_set(&key, record, &encode(&entries), INDEX_TTL)?
                        == CasOutcome::Stored
                }
            };
            if written {
                return Ok(result);
            }
            if attempt >= super::IMMEDIATE_RETRIES {
                back_off(attempt);
            }
        }
        Err(Error::Contention {
            attempts: self.config.max_attempts,
        })
    }

    /// The owner the record under `key` is bound to, read from its stored bytes.
    fn stored_owner(&self, key: &str, bytes: &[u8]) -> Option<String> {
        let opened = self
            .config
            .at_rest
            .open(key, bytes, self.config.max_size)
            .ok()?;
        let data = Entries::decode_shared(Bytes::copy_from_slice(&opened.value)).ok()?;
        owner_of(&data).map(str::to_owned)
    }

    /// The sessions bound to `owner`, oldest binding first. One read of the index and one
    /// of each session; entries whose session ended (expired, destroyed, emptied, bound to
    /// someone else) are pruned from the index on the way.
    pub fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>> {
        check_owner(owner)?;
        let entries = self
            .store
            .load(&self.index_key(owner))?
            .map(|record| decode(&record.data))
            .unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let mut sessions = Vec::new();
        let mut stale = Vec::new();
        for entry in entries {
            let record = self.store.load(&entry.key)?;
            match record {
                Some(record)
                    if !record.is_expired_at(now)
                        && self.stored_owner(&entry.key, &record.data).as_deref()
                            == Some(owner) =>
                {
                    sessions.push(SessionInfo {
                        id_hint: hint_of_key(&entry.key),
                        bound_at: OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(entry.bound_at) * 1_000_000,
                        )
                        .unwrap_or(now),
                        expires_at: record.expires_at,
                    });
                }
                _ if !entry.confirmed
                    && unix_ms(now) - i128::from(entry.bound_at) < PENDING_GRACE_MS => {}
                _ => stale.push(entry),
            }
        }
        if !stale.is_empty() {
            self.update_index(owner, |entries| {
                entries.retain(|entry| !stale.contains(entry))
            })?;
        }
        sessions.sort_by_key(|session| session.bound_at);
        Ok(sessions)
    }

    /// Ends every session of `owner` but `except` (log out everywhere but here); returns
    /// how many entries the index listed for them. The index is emptied first, in one
    /// compare-and-set, then each record is deleted: a save binding a session meanwhile finds
    /// its entry gone and ends its session itself.
    pub fn end_sessions_of(&self, owner: &str, except: Option<&SessionId>) -> Result<usize> {
        check_owner(owner)?;
        let keep = except.map(|id| self.key(id));
        let ended = self.update_index(owner, |entries| {
            let (kept, ended): (Vec<Entry>, Vec<Entry>) = entries
                .drain(..)
                .partition(|entry| Some(&entry.key) == keep.as_ref());
            *entries = kept;
            ended
        })?;
        for entry in &ended {
            self.delete_record(&entry.key)?;
        }
        Ok(ended.len())
    }

    /// Works out what `session`'s save does to the owner indexes, and registers a new
    /// binding before the write (so a bound record always has an entry). `None`, with no
    /// store call, when the binding does not change: the common request.
    pub(super) fn index_before_save(&self, session: &Session) -> Result<Option<IndexPlan>> {
        let owner = if session.destroyed {
            None
        } else {
            session.owner()
        };
        let loaded = session.loaded.as_ref().zip(session.loaded_owner.as_deref());
        if loaded.is_none() && owner.is_none() {
            return Ok(None);
        }
        if let Some((loaded, loaded_owner)) = loaded
            && owner == Some(loaded_owner)
            && loaded.id == session.id
        {
            return Ok(None);
        }
        let key = self.key(&session.id);
        if let Some(owner) = owner {
            let now = i64::try_from(unix_ms(OffsetDateTime::now_utc())).unwrap_or(i64::MAX);
            self.update_index(owner, |entries| {
                entries.retain(|entry| entry.key != key);
                entries.push(Entry {
                    key: key.clone(),
                    bound_at: now,
                    confirmed: false,
                });
            })?;
        }
        Ok(Some(IndexPlan {
            bind: owner.map(|owner| (owner.to_owned(), key)),
            unbind: loaded.map(|(loaded, owner)| (owner.to_owned(), loaded.key.clone())),
        }))
    }

    /// Completes `plan` after the write: confirms the new entry (unless an end-all or a
    /// cap removed it meanwhile: the session is then ended here), drops the old one, and
    /// ends the oldest sessions beyond the cap.
    pub(super) fn index_after_save(
        &self,
        session: &Session,
        plan: IndexPlan,
        outcome: SaveOutcome,
    ) -> Result<SaveOutcome> {
        let IndexPlan { bind, unbind } = plan;
        let mut outcome = outcome;
        let mut unbind = unbind;
        if let Some((owner, key)) = bind {
            // A binding carried over by regenerate stays only if the old entry does: an
            // end-all may have ended the session while it moved.
            let carried = unbind.take_if(|(old_owner, _)| *old_owner == owner);
            let cap = self.config.max_sessions_per_owner;
            let ended = outcome.ended;
            let (revoked, evicted) = self.update_index(&owner, |entries| {
                let registered = entries.iter().any(|entry| entry.key == key);
                let moved = carried
                    .as_ref()
                    .is_none_or(|(_, old)| entries.iter().any(|entry| entry.key == *old));
                if let Some((_, old)) = &carried {
                    entries.retain(|entry| entry.key != *old);
                }
                if ended || !registered || !moved {
                    entries.retain(|entry| entry.key != key);
                    return (!ended, Vec::new());
                }
                for entry in entries.iter_mut().filter(|entry| entry.key == key) {
                    entry.confirmed = true;
                }
                let mut evicted = Vec::new();
                while let Some(max) = cap
                    && entries.len() > max
                {
                    let oldest = entries
                        .iter()
                        .enumerate()
                        .filter(|(_, entry)| entry.key != key)
                        .min_by_key(|(_, entry)| entry.bound_at)
                        .map(|(at, _)| at)
                        .expect("more than one entry");
                    evicted.push(entries.remove(oldest).key);
                }
                (false, evicted)
            })?;
            for key in &evicted {
                self.delete_record(key)?;
            }
            if revoked {
                self.delete_record(&key)?;
                outcome = self.ended(session);
            }
        }
        if let Some((owner, key)) = unbind {
            self.update_index(&owner, |entries| entries.retain(|entry| entry.key != key))?;
        }
        Ok(outcome)
    }
}

/// `at` in Unix milliseconds.
fn unix_ms(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

/// The hint of a session stored under `key`: the first characters of a digest of the key.
fn hint_of_key(key: &str) -> String {
    let digest = Sha256::digest(format!("session hint\0{key}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)[..HINT_CHARS].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_bytes_round_trip_and_garbage_reads_empty() {
        let entries = vec![
            Entry {
                key: "session:abc".into(),
                bound_at: 1_700_000_000,
                confirmed: true,
            },
            Entry {
                key: "session:def".into(),
                bound_at: 1_700_000_001,
                confirmed: false,
            },
        ];
        assert_eq!(decode(&encode(&entries)), entries);
        assert_eq!(decode(b"\xc1garbage"), Vec::new());
    }

    #[test]
    fn hints_are_short_and_differ() {
        let a = hint_of_key("session:a");
        assert_eq!(a.len(), HINT_CHARS);
        assert_ne!(a, hint_of_key("session:b"));
        assert!(!a.contains("session"));
    }
}
