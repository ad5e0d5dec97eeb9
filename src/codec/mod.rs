//! The stored value: a MessagePack map with string keys, exactly as Flask-Session 0.8 writes
//! it, with a JSON object accepted on read (Flask-Session's `json` serialization format).
//!
//! ```
//! use sessionstore::codec::{self, Data, Format};
//! let mut data = Data::new();
//! data.insert("_permanent".into(), true.into());
//! data.insert("user_id".into(), 42.into());
//! let bytes = codec::encode(&data, Format::MessagePack).unwrap();
//! assert_eq!(bytes[0], 0x82); // a map of two entries
//! assert_eq!(codec::decode(&bytes).unwrap(), data);
//! ```

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rmp::Marker;
use rmpv::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

mod reader;

use reader::{length, read, skip, take};

/// A session's data: string keys to MessagePack values.
pub type Data = BTreeMap<String, Value>;

/// MessagePack's extension type for timestamps.
pub const TIMESTAMP_EXT: i8 = -1;

/// How deep arrays and maps may nest in one session value (docs/DESIGN.md §4): an array or
/// map under a session key is level 1, one inside it level 2, and so on. Every decoder
/// refuses a stored value that nests deeper (the session then starts afresh) and every
/// write refuses such a value, so no recursion over a value, in this crate, rmpv or serde,
/// goes deeper than this: a hostile stored value cannot overflow a request thread's stack.
///
/// 32: in a debug build serde's deserializer into a `serde_json::Value` takes about 2.8 KiB
/// of stack per level, so 32 levels of it fit a 128 KiB thread stack (musl's default) with
/// room to spare, where 64 would not. Session data rarely nests more than a few levels.
pub const MAX_NESTING: usize = 32;

/// How session data is written to the store. Reading accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// MessagePack map (Flask-Session 0.8's default `msgpack`).
    #[default]
    MessagePack,
    /// JSON object (Flask-Session's `json`): bytes become base64 strings, timestamps RFC 3339.
    Json,
}

impl Format {
    /// Parses Flask-Session's `SESSION_SERIALIZATION_FORMAT` spelling (`msgpack` or `json`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "msgpack" | "messagepack" => Some(Format::MessagePack),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Encodes session data in the given format.
///
/// Fails for a value nested deeper than [`MAX_NESTING`], and for values JSON cannot carry
/// (non-finite floats, extension types other than timestamps) when `format` is
/// [`Format::Json`].
pub fn encode(data: &Data, format: Format) -> Result<Vec<u8>> {
    for (key, value) in data {
        check_nesting(key, value)?;
    }
    match format {
        Format::MessagePack => {
            let mut out = Vec::with_capacity(64);
            write_map_len(&mut out, data.len())?;
            for (key, value) in data {
                write_entry(&mut out, key, value)?;
            }
            Ok(out)
        }
        Format::Json => to_json_object(data.iter().map(|(key, value)| (key.as_str(), value))),
    }
}

fn encoding_failed(e: &dyn fmt::Display) -> Error {
    Error::Codec(format!("MessagePack encoding failed: {e}"))
}

/// Writes the header of a MessagePack map of `len` entries.
fn write_map_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|e| encoding_failed(&e))?;
    rmp::encode::write_map_len(out, len).map_err(|e| encoding_failed(&e))?;
    Ok(())
}

/// Writes one map entry straight into `out` (no intermediate tree).
fn write_entry(out: &mut Vec<u8>, key: &str, value: &Value) -> Result<()> {
    write_key(out, key)?;
    write_value(out, value)
}

/// Writes a map entry's key.
fn write_key(out: &mut Vec<u8>, key: &str) -> Result<()> {
    rmp::encode::write_str(out, key).map_err(|e| encoding_failed(&e))
}

/// Writes a map entry's value.
fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    rmpv::encode::write_value(out, value).map_err(|e| encoding_failed(&e))
}

fn to_json_object<'a>(entries: impl Iterator<Item = (&'a str, &'a Value)>) -> Result<Vec<u8>> {
    let mut object = serde_json::Map::new();
    for (key, value) in entries {
        object.insert(key.to_owned(), to_json(key, value)?);
    }
    serde_json::to_vec(&object).map_err(|e| Error::Codec(e.to_string()))
}

/// Decodes a stored session: MessagePack first, then a JSON object.
pub fn decode(bytes: &[u8]) -> Result<Data> {
    match decode_msgpack(bytes) {
        Ok(data) => Ok(data),
        Err(msgpack_error) => decode_json(bytes)
            .map_err(|json_error| Error::Codec(format!("{msgpack_error}; {json_error}"))),
    }
}

fn decode_msgpack(bytes: &[u8]) -> std::result::Result<Data, String> {
    // The session's map is one level more than its values.
    let mut rest = bytes;
    let value = read(&mut rest, MAX_NESTING + 1)?;
    if !rest.is_empty() {
        return Err(format!(
            "not MessagePack: {} bytes after the value",
            rest.len()
        ));
    }
    let Value::Map(entries) = value else {
        return Err("MessagePack value is not a map".into());
    };
    let mut data = Data::new();
    for (key, value) in entries {
        match key {
            Value::String(s) if s.is_str() => {
                data.insert(s.into_str().unwrap_or_default(), value);
            }
            other => return Err(format!("MessagePack map key {other} is not a string")),
        }
    }
    Ok(data)
}

/// Why a value with a string that is not UTF-8 is refused (msgspec refuses it too).
const INVALID_UTF8: &str = "MessagePack string is not UTF-8";

/// Decodes one MessagePack value (not a whole session) that a caller hands in encoded, as
/// the C ABI's raw MessagePack setter does: the bytes must hold exactly one value, its
/// strings UTF-8 and its arrays and maps nested at most [`MAX_NESTING`] deep.
///
/// ```
/// use sessionstore::codec;
/// let value = codec::decode_value(b"\x92\x01\xa1a").unwrap();
/// assert_eq!(value, rmpv::Value::Array(vec![1.into(), "a".into()]));
/// assert!(codec::decode_value(&[0x91; 65]).is_err());
/// ```
pub fn decode_value(bytes: &[u8]) -> Result<Value> {
    let mut rest = bytes;
    let value = read(&mut rest, MAX_NESTING).map_err(Error::Codec)?;
    if !rest.is_empty() {
        return Err(Error::Codec(format!(
            "{} bytes after the MessagePack value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Whether `value`'s arrays and maps (map keys included) nest at most `max` deep. Recurses
/// at most `max + 1` calls deep, whatever the value. (The recursive functions over values
/// in this module use plain loops: in a debug build each iterator adapter is a stack frame
/// of its own, a dozen per level.)
fn nesting_within(value: &Value, max: usize) -> bool {
    match value {
        Value::Array(items) => {
            let Some(inner) = max.checked_sub(1) else {
                return false;
            };
            for item in items {
                if !nesting_within(item, inner) {
                    return false;
                }
            }
            true
        }
        Value::Map(entries) => {
            let Some(inner) = max.checked_sub(1) else {
                return false;
            };
            for (key, value) in entries {
                if !nesting_within(key, inner) || !nesting_within(value, inner) {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

/// Refuses a value for `key` whose arrays and maps nest deeper than [`MAX_NESTING`].
pub(crate) fn check_nesting(key: &str, value: &Value) -> Result<()> {
    if nesting_within(value, MAX_NESTING) {
        Ok(())
    } else {
        Err(Error::Value {
            key: key.to_owned(),
            message: format!("arrays and maps nested deeper than {MAX_NESTING} levels"),
        })
    }
}

/// Whether the arrays and objects of a JSON text nest at most `max` deep. serde_json builds
/// its values recursively; this iterative scan runs first. It reads strings exactly as JSON
/// does, so on any text serde_json accepts, or on the part it reads before it fails, the
/// depth it sees is the depth serde_json reaches.
fn json_nesting_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

fn decode_json(bytes: &[u8]) -> std::result::Result<Data, String> {
    // The object itself is one level more than its values.
    if !json_nesting_within(bytes, MAX_NESTING + 1) {
        return Err(format!(
            "not a JSON object: nested deeper than {MAX_NESTING} levels"
        ));
    }
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON object: {e}"))?;
    Ok(object.into_iter().map(|(k, v)| (k, from_json(v))).collect())
}

fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(from_json(item));
            }
            Value::Array(values)
        }
        serde_json::Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, value) in map {
                entries.push((Value::from(key), from_json(value)));
            }
            Value::Map(entries)
        }
    }
}

fn to_json(key: &str, value: &Value) -> Result<serde_json::Value> {
    let refuse = |what: &str| Error::Value {
        key: key.to_owned(),
        message: format!("{what} cannot be written as JSON"),
    };
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => v.into(),
            (None, Some(v)) => v.into(),
            _ => return Err(refuse("integer")),
        },
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f))
            .ok_or_else(|| refuse("non-finite float"))?
            .into(),
        Value::F64(f) => serde_json::Number::from_f64(*f)
            .ok_or_else(|| refuse("non-finite float"))?
            .into(),
        Value::String(s) => match s.as_str() {
            Some(text) => text.into(),
            None => return Err(refuse("invalid UTF-8 string")),
        },
        Value::Binary(bytes) => BASE64.encode(bytes).into(),
        Value::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(to_json(key, item)?);
            }
            values.into()
        }
        Value::Map(entries) => {
            let mut object = serde_json::Map::new();
            for (k, v) in entries {
                let Some(name) = k.as_str() else {
                    return Err(refuse("map with non-string keys"));
                };
                object.insert(name.to_owned(), to_json(key, v)?);
            }
            object.into()
        }
        Value::Ext(..) => match value_to_timestamp(value) {
            Some(ts) => ts.format(&Rfc3339).map_err(|_| refuse("timestamp"))?.into(),
            None => return Err(refuse("extension type")),
        },
    })
}

/// Session data as a request holds it: the top-level map of the stored value, each value
/// left in its stored encoding until something reads it.
///
/// A request reads or changes a few keys of a session. Decoding every value on load and
/// encoding every value again on save costs, for a session of a few kilobytes, more than
/// the store round trips; so a load only checks the value's structure (exactly what rmpv's
/// decoder accepts) and indexes the top-level keys, a read decodes the one value it asks
/// for, and a save writes the values nobody replaced as the bytes they were read as.
///
/// The source is the buffer the store's driver returned, shared with the loaded record
/// (no copy): a save writes the entries nobody replaced, key and value, as one copy of
/// their stored bytes per run of adjacent ones. The index is one vector sorted by key, the
/// stored keys' text in one string: a load allocates twice, whatever the number of keys
/// (docs/DESIGN.md §4).
#[derive(Clone, Default)]
pub(crate) struct Entries {
    /// The stored value that [`Slot::Encoded`] ranges point into.
    source: Bytes,
    /// The stored keys' text, one after the other, that [`Key::Stored`] ranges point into.
    names: String,
    /// The entries in key order, each key once.
    entries: Vec<Entry>,
}

/// The most entries [`Entries::position`] scans; past that it searches.
const SCAN_UP_TO: usize = 16;

#[derive(Clone)]
struct Entry {
    key: Key,
    slot: Slot,
}

#[derive(Clone)]
enum Key {
    /// A stored key: its text at this range of [`Entries::names`].
    Stored(Range<usize>),
    /// A key set by this request, or read from JSON.
    Owned(String),
}

#[derive(Clone)]
enum Slot {
    /// A value still encoded, at `range` of the source, its key's encoding starting at
    /// `entry`; decoded on first read.
    Encoded {
        entry: usize,
        range: Range<usize>,
        decoded: OnceCell<Value>,
    },
    /// A value set by this request, or read from JSON.
    Decoded(Value),
}

impl Entries {
    /// No data.
    pub(crate) fn new() -> Entries {
        Entries::default()
    }

    /// Reads a stored value: a MessagePack map (its values left encoded), else a JSON
    /// object. Fails, as [`decode`] does, on anything else.
    #[cfg(test)]
    pub(crate) fn decode(bytes: &[u8]) -> Result<Entries> {
        Entries::decode_shared(Bytes::copy_from_slice(bytes))
    }

    /// [`decode`](Entries::decode) of a shared buffer, which the entries keep (no copy).
    pub(crate) fn decode_shared(bytes: Bytes) -> Result<Entries> {
        match index_msgpack(&bytes) {
            Ok((names, entries)) => Ok(Entries {
                source: bytes,
                names,
                entries,
            }),
            Err(msgpack_error) => match decode_json(&bytes) {
                Ok(data) => Ok(data.into_iter().collect()),
                Err(json_error) => Err(Error::Codec(format!("{msgpack_error}; {json_error}"))),
            },
        }
    }

    /// The stored value the entries index (empty when read from JSON or built by hand).
    pub(crate) fn source(&self) -> &Bytes {
        &self.source
    }

    /// About the bytes the entries take: the stored value, the keys' text and the index.
    pub(crate) fn footprint(&self) -> usize {
        self.source.len() + self.names.len() + self.entries.len() * size_of::<Entry>()
    }

    /// The text of `key`.
    fn name<'a>(&'a self, key: &'a Key) -> &'a str {
        key_text(key, &self.names)
    }

    /// Where `key` is, or would be inserted. Keys compare as bytes (the order of `str`),
    /// without `str` slicing's character-boundary checks.
    fn find(&self, key: &str) -> std::result::Result<usize, usize> {
        let key = key.as_bytes();
        self.entries
            .binary_search_by(|entry| key_bytes(&entry.key, &self.names).cmp(key))
    }

    /// Where `key` is, if present. A session has a handful of keys, mostly of different
    /// lengths: up to [`SCAN_UP_TO`] of them, a scan comparing lengths first is cheaper
    /// than a binary search comparing text.
    fn position(&self, key: &str) -> Option<usize> {
        if self.entries.len() > SCAN_UP_TO {
            return self.find(key).ok();
        }
        let key = key.as_bytes();
        self.entries
            .iter()
            .position(|entry| key_bytes(&entry.key, &self.names) == key)
    }

    /// The value under `key`, decoded on first read.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        let at = self.position(key)?;
        Some(self.value_of(&self.entries[at].slot))
    }

    fn value_of<'a>(&'a self, slot: &'a Slot) -> &'a Value {
        match slot {
            Slot::Decoded(value) => value,
            Slot::Encoded { range, decoded, .. } => {
                decoded.get_or_init(|| decode_checked(&self.source[range.clone()]))
            }
        }
    }

    /// Sets `key` to `value` (a key already present is not allocated again); returns the
    /// value as stored.
    pub(crate) fn insert(&mut self, key: &str, value: Value) -> &Value {
        let at = match self.find(key) {
            Ok(at) => {
                self.entries[at].slot = Slot::Decoded(value);
                at
            }
            Err(at) => {
                let entry = Entry {
                    key: Key::Owned(key.to_owned()),
                    slot: Slot::Decoded(value),
                };
                self.entries.insert(at, entry);
                at
            }
        };
        self.value_of(&self.entries[at].slot)
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.position(key)?;
        Some(match self.entries.remove(at).slot {
            Slot::Decoded(value) => value,
            Slot::Encoded { range, decoded, .. } => decoded
                .into_inner()
                .unwrap_or_else(|| decode_checked(&self.source[range])),
        })
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The keys, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|entry| self.name(&entry.key))
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .iter()
            .map(|entry| (self.name(&entry.key), self.value_of(&entry.slot)))
    }

    /// Encodes the data in `format`; in MessagePack, entries still encoded are copied as
    /// they are, each run of entries adjacent in the source in one copy, into a buffer
    /// sized once for them. With `indexed`, also returns the entries of what it wrote: the
    /// index a check of the output would build, without checking it (the output is this
    /// crate's own encoding of checked entries); never in JSON, which is not indexed.
    pub(crate) fn encode(&self, format: Format, indexed: bool) -> Result<(Bytes, Option<Entries>)> {
        if format == Format::Json {
            return Ok((Bytes::from(to_json_object(self.iter())?), None));
        }
        if !indexed {
            return Ok((Bytes::from(self.encode_msgpack(None)?), None));
        }
        let mut index = Vec::with_capacity(self.entries.len());
        let source = Bytes::from(self.encode_msgpack(Some(&mut index))?);
        let written = Entries {
            source: source.clone(),
            names: self.names.clone(),
            entries: index,
        };
        Ok((source, Some(written)))
    }

    /// The MessagePack encoding; with `index`, each entry's place in it, in key order.
    fn encode_msgpack(&self, mut index: Option<&mut Vec<Entry>>) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.source.len() + 64);
        write_map_len(&mut out, self.entries.len())?;
        // The stored bytes not yet copied: a run of adjacent entries.
        let mut run = 0..0;
        for entry in &self.entries {
            // Where the entry's key and value start and end in `out`.
            let (at, range) = match &entry.slot {
                Slot::Encoded {
                    entry: stored,
                    range,
                    ..
                } => {
                    if *stored != run.end {
                        out.extend_from_slice(&self.source[run]);
                        run = *stored..*stored;
                    }
                    // Behind what is written and what the run holds before it.
                    let at = out.len() + (*stored - run.start);
                    run.end = range.end;
                    (at, at + (range.start - stored)..at + (range.end - stored))
                }
                Slot::Decoded(value) => {
                    out.extend_from_slice(&self.source[run]);
                    run = 0..0;
                    let at = out.len();
                    write_key(&mut out, self.name(&entry.key))?;
                    let start = out.len();
                    write_value(&mut out, value)?;
                    (at, start..out.len())
                }
            };
            if let Some(index) = index.as_deref_mut() {
                index.push(Entry {
                    key: entry.key.clone(),
                    slot: Slot::Encoded {
                        entry: at,
                        range,
                        decoded: OnceCell::new(),
                    },
                });
            }
        }
        out.extend_from_slice(&self.source[run]);
        Ok(out)
    }
}

/// The text of `key`, a stored one's in `names`.
fn key_text<'a>(key: &'a Key, names: &'a str) -> &'a str {
    match key {
        Key::Stored(range) => names.get(range.clone()).unwrap_or_default(),
        Key::Owned(name) => name,
    }
}

/// The text of `key` as bytes, a stored one's in `names`.
fn key_bytes<'a>(key: &'a Key, names: &'a str) -> &'a [u8] {
    match key {
        Key::Stored(range) => names.as_bytes().get(range.clone()).unwrap_or_default(),
        Key::Owned(name) => name.as_bytes(),
    }
}

/// Sorts `entries` by key and keeps, of repeated keys, the last one, as inserting them in
/// order would. Cheap when they are sorted already, as this crate writes them.
fn sort_entries(entries: &mut Vec<Entry>, names: &str) {
    if entries.is_sorted_by(|a, b| key_bytes(&a.key, names) < key_bytes(&b.key, names)) {
        return;
    }
    // A stable sort keeps repeated keys in their order; `dedup_by` removes the later of two
    // (its first argument), so the later one's content is swapped into the one kept.
    entries.sort_by(|a, b| key_text(&a.key, names).cmp(key_text(&b.key, names)));
    entries.dedup_by(|later, earlier| {
        let repeated = key_text(&later.key, names) == key_text(&earlier.key, names);
        if repeated {
            std::mem::swap(later, earlier);
        }
        repeated
    });
}

impl FromIterator<(String, Value)> for Entries {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Entries {
        let mut entries: Vec<Entry> = entries
            .into_iter()
            .map(|(key, value)| Entry {
                key: Key::Owned(key),
                slot: Slot::Decoded(value),
            })
            .collect();
        sort_entries(&mut entries, "");
        Entries {
            source: Bytes::new(),
            names: String::new(),
            entries,
        }
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Decodes one value that [`skip`] has checked, so decoding cannot fail.
fn decode_checked(mut bytes: &[u8]) -> Value {
    read(&mut bytes, MAX_NESTING).unwrap_or_else(|error| {
        log::error!("a checked MessagePack value failed to decode: {error}");
        Value::Nil
    })
}

/// The top-level entries of a MessagePack map, each value's byte range checked by [`skip`],
/// sorted by key, and the text of their keys. Accepts exactly what [`decode_msgpack`]
/// accepts.
fn index_msgpack(bytes: &[u8]) -> std::result::Result<(String, Vec<Entry>), String> {
    let mut rest = bytes;
    let len = match Marker::from_u8(take(&mut rest, 1)?[0]) {
        Marker::FixMap(len) => usize::from(len),
        Marker::Map16 => length(&mut rest, 2)?,
        Marker::Map32 => length(&mut rest, 4)?,
        _ => {
            // Not a map: decodable or not, it is refused.
            skip(bytes, 0, MAX_NESTING + 1)?;
            return Err("MessagePack value is not a map".into());
        }
    };
    // Each entry takes at least two bytes, which bounds the allocations whatever `len`
    // claims; keys are mostly short.
    let mut entries = Vec::with_capacity(len.min(rest.len() / 2));
    let mut names = Vec::with_capacity((16 * len).min(rest.len()));
    let mut pos = bytes.len() - rest.len();
    for _ in 0..len {
        let entry = pos;
        let mut rest = &bytes[pos..];
        let len = match Marker::from_u8(take(&mut rest, 1)?[0]) {
            Marker::FixStr(len) => usize::from(len),
            Marker::Str8 => length(&mut rest, 1)?,
            Marker::Str16 => length(&mut rest, 2)?,
            Marker::Str32 => length(&mut rest, 4)?,
            _ => return Err("MessagePack map key is not a string".into()),
        };
        let key = take(&mut rest, len)?;
        names.extend_from_slice(key);
        let start = bytes.len() - rest.len();
        pos = skip(bytes, start, MAX_NESTING)?;
        entries.push(Entry {
            key: Key::Stored(names.len() - len..names.len()),
            slot: Slot::Encoded {
                entry,
                range: start..pos,
                decoded: OnceCell::new(),
            },
        });
    }
    if pos != bytes.len() {
        return Err(format!(
            "not MessagePack: {} bytes after the value",
            bytes.len() - pos
        ));
    }
    // The keys checked UTF-8 in one go: their text together, and each key's start a
    // character's (a key cut inside a character, or starting inside one, is not UTF-8
    // however its neighbours complete it).
    let names = String::from_utf8(names)
        .ok()
        .filter(|names| {
            entries.iter().all(|entry| match &entry.key {
                Key::Stored(range) => names.is_char_boundary(range.start),
                Key::Owned(_) => true,
            })
        })
        .ok_or_else(|| "MessagePack map key is not a UTF-8 string".to_owned())?;
    sort_entries(&mut entries, &names);
    Ok((names, entries))
}

/// Makes a MessagePack timestamp (extension type -1) in its most compact form.
pub fn timestamp_to_value(at: OffsetDateTime) -> Value {
    let seconds = at.unix_timestamp();
    let nanos = at.nanosecond();
    let payload = if nanos == 0 && (0..=i64::from(u32::MAX)).contains(&seconds) {
        (seconds as u32).to_be_bytes().to_vec()
    } else if (0..1i64 << 34).contains(&seconds) {
        ((u64::from(nanos) << 34) | seconds as u64)
            .to_be_bytes()
            .to_vec()
    } else {
        let mut bytes = nanos.to_be_bytes().to_vec();
        bytes.extend_from_slice(&seconds.to_be_bytes());
        bytes
    };
    Value::Ext(TIMESTAMP_EXT, payload)
}

/// Reads a MessagePack timestamp; `None` if `value` is not one.
pub fn value_to_timestamp(value: &Value) -> Option<OffsetDateTime> {
    let Value::Ext(TIMESTAMP_EXT, payload) = value else {
        return None;
    };
    let (seconds, nanos) = match payload.len() {
        4 => (
            i64::from(u32::from_be_bytes(payload[..].try_into().ok()?)),
            0,
        ),
        8 => {
            let packed = u64::from_be_bytes(payload[..].try_into().ok()?);
            ((packed & ((1 << 34) - 1)) as i64, (packed >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(payload[4..].try_into().ok()?),
            u32::from_be_bytes(payload[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    let at = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    at.replace_nanosecond(nanos).ok()
}

#[cfg(test)]
mod tests;
