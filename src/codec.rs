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
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmp::Marker;
use rmpv::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

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
            write_map(
                &mut out,
                data.len(),
                data.iter().map(|(k, v)| (k, Encoding::Value(v))),
            )?;
            Ok(out)
        }
        Format::Json => to_json_object(data.iter()),
    }
}

/// One value of a map being written: decoded, or still in its stored encoding.
enum Encoding<'a> {
    Value(&'a Value),
    Encoded(&'a [u8]),
}

/// Writes a MessagePack map of `len` entries straight into `out` (no intermediate tree).
fn write_map<'a>(
    out: &mut Vec<u8>,
    len: usize,
    entries: impl Iterator<Item = (&'a String, Encoding<'a>)>,
) -> Result<()> {
    let failed = |e: &dyn fmt::Display| Error::Codec(format!("MessagePack encoding failed: {e}"));
    let len = u32::try_from(len).map_err(|e| failed(&e))?;
    rmp::encode::write_map_len(out, len).map_err(|e| failed(&e))?;
    for (key, value) in entries {
        rmp::encode::write_str(out, key).map_err(|e| failed(&e))?;
        match value {
            Encoding::Value(value) => {
                rmpv::encode::write_value(out, value).map_err(|e| failed(&e))?;
            }
            Encoding::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
    Ok(())
}

fn to_json_object<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>) -> Result<Vec<u8>> {
    let mut object = serde_json::Map::new();
    for (key, value) in entries {
        object.insert(key.clone(), to_json(key, value)?);
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
#[derive(Clone, Default)]
pub(crate) struct Entries {
    /// The stored value that [`Slot::Encoded`] ranges point into.
    source: Arc<[u8]>,
    map: BTreeMap<String, Slot>,
}

#[derive(Clone)]
enum Slot {
    /// A value still encoded, at `range` of the source; decoded on first read.
    Encoded {
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
    pub(crate) fn decode(bytes: &[u8]) -> Result<Entries> {
        match index_msgpack(bytes) {
            Ok(map) => Ok(Entries {
                source: Arc::from(bytes),
                map,
            }),
            Err(msgpack_error) => match decode_json(bytes) {
                Ok(data) => Ok(data.into_iter().collect()),
                Err(json_error) => Err(Error::Codec(format!("{msgpack_error}; {json_error}"))),
            },
        }
    }

    /// The value under `key`, decoded on first read.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).map(|slot| self.value_of(slot))
    }

    fn value_of<'a>(&'a self, slot: &'a Slot) -> &'a Value {
        match slot {
            Slot::Decoded(value) => value,
            Slot::Encoded { range, decoded } => {
                decoded.get_or_init(|| decode_checked(&self.source[range.clone()]))
            }
        }
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: String, value: Value) {
        self.map.insert(key, Slot::Decoded(value));
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let slot = self.map.remove(key)?;
        Some(match slot {
            Slot::Decoded(value) => value,
            Slot::Encoded { range, decoded } => decoded
                .into_inner()
                .unwrap_or_else(|| decode_checked(&self.source[range])),
        })
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The keys, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.map
            .iter()
            .map(|(key, slot)| (key, self.value_of(slot)))
    }

    /// Encodes the data in `format`; in MessagePack, values still encoded are copied as
    /// they are.
    pub(crate) fn encode(&self, format: Format) -> Result<Vec<u8>> {
        match format {
            Format::MessagePack => {
                let mut out = Vec::with_capacity(self.source.len() + 64);
                let entries = self.map.iter().map(|(key, slot)| {
                    let value = match slot {
                        Slot::Encoded { range, .. } => {
                            Encoding::Encoded(&self.source[range.clone()])
                        }
                        Slot::Decoded(value) => Encoding::Value(value),
                    };
                    (key, value)
                });
                write_map(&mut out, self.map.len(), entries)?;
                Ok(out)
            }
            Format::Json => to_json_object(self.iter()),
        }
    }
}

impl FromIterator<(String, Value)> for Entries {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Entries {
        Entries {
            source: Arc::default(),
            map: entries
                .into_iter()
                .map(|(key, value)| (key, Slot::Decoded(value)))
                .collect(),
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

/// The top-level entries of a MessagePack map, each value's byte range checked by [`skip`].
/// Accepts exactly what [`decode_msgpack`] accepts.
fn index_msgpack(bytes: &[u8]) -> std::result::Result<BTreeMap<String, Slot>, String> {
    let mut rest = bytes;
    let len = match Marker::from_u8(take(&mut rest, 1)?[0]) {
        Marker::FixMap(len) => usize::from(len),
        Marker::Map16 => length(&mut rest, 2)?,
        Marker::Map32 => length(&mut rest, 4)?,
        _ => {
            // Not a map: decodable or not, it is refused.
            let mut whole = bytes;
            skip(&mut whole, MAX_NESTING + 1)?;
            return Err("MessagePack value is not a map".into());
        }
    };
    // Collected first, then built in one go: much cheaper than inserting one by one. Each
    // entry takes at least two bytes, which bounds the allocation whatever `len` claims.
    let mut entries = Vec::with_capacity(len.min(rest.len() / 2));
    for _ in 0..len {
        let len = match Marker::from_u8(take(&mut rest, 1)?[0]) {
            Marker::FixStr(len) => usize::from(len),
            Marker::Str8 => length(&mut rest, 1)?,
            Marker::Str16 => length(&mut rest, 2)?,
            Marker::Str32 => length(&mut rest, 4)?,
            _ => return Err("MessagePack map key is not a string".into()),
        };
        let key = take(&mut rest, len)?;
        let key = std::str::from_utf8(key)
            .map_err(|_| "MessagePack map key is not a UTF-8 string".to_owned())?;
        let start = bytes.len() - rest.len();
        skip(&mut rest, MAX_NESTING)?;
        let range = start..bytes.len() - rest.len();
        entries.push((
            key.to_owned(),
            Slot::Encoded {
                range,
                decoded: OnceCell::new(),
            },
        ));
    }
    if !rest.is_empty() {
        return Err(format!(
            "not MessagePack: {} bytes after the value",
            rest.len()
        ));
    }
    // Of repeated keys the last one stays, as with inserts.
    Ok(entries.into_iter().collect())
}

/// Steps over one encoded value, accepting exactly what [`read`] accepts with the same
/// `nesting`, without building it. Recurses at most `nesting + 1` calls deep, whatever the
/// bytes.
fn skip(rest: &mut &[u8], nesting: usize) -> std::result::Result<(), String> {
    // The bytes after the marker and length, and the values nested in it.
    let marker = Marker::from_u8(take(rest, 1)?[0]);
    let (body, children) = match marker {
        // rmpv reads the never-used marker 0xc1 as nil.
        Marker::Null
        | Marker::True
        | Marker::False
        | Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::Reserved => return Ok(()),
        Marker::U8 | Marker::I8 => (1, 0),
        Marker::U16 | Marker::I16 => (2, 0),
        Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
        Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
        Marker::FixStr(len) => (usize::from(len), 0),
        Marker::Str8 => (length(rest, 1)?, 0),
        Marker::Str16 => (length(rest, 2)?, 0),
        Marker::Str32 => (length(rest, 4)?, 0),
        Marker::Bin8 => (length(rest, 1)?, 0),
        Marker::Bin16 => (length(rest, 2)?, 0),
        Marker::Bin32 => (length(rest, 4)?, 0),
        // The type byte, then the data.
        Marker::FixExt1 => (2, 0),
        Marker::FixExt2 => (3, 0),
        Marker::FixExt4 => (5, 0),
        Marker::FixExt8 => (9, 0),
        Marker::FixExt16 => (17, 0),
        Marker::Ext8 => (length(rest, 1)? + 1, 0),
        Marker::Ext16 => (length(rest, 2)? + 1, 0),
        Marker::Ext32 => (length(rest, 4)? + 1, 0),
        Marker::FixArray(len) => (0, usize::from(len)),
        Marker::Array16 => (0, length(rest, 2)?),
        Marker::Array32 => (0, length(rest, 4)?),
        Marker::FixMap(len) => (0, 2 * usize::from(len)),
        Marker::Map16 => (0, 2 * length(rest, 2)?),
        Marker::Map32 => (0, 2 * length(rest, 4)?),
    };
    let is_string = matches!(
        marker,
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
    );
    let body = take(rest, body)?;
    if is_string {
        check_utf8(body)?;
    }
    let is_container = matches!(
        marker,
        Marker::FixArray(_)
            | Marker::Array16
            | Marker::Array32
            | Marker::FixMap(_)
            | Marker::Map16
            | Marker::Map32
    );
    if !is_container {
        return Ok(());
    }
    let inner = nesting.checked_sub(1).ok_or_else(nested_too_deep)?;
    for _ in 0..children {
        // A scalar or a string (most of a session's values) needs no check but its length
        // and its text: stepped over here, without a call.
        if let Some(&marker) = rest.first() {
            if let Some(len) = scalar_len(marker) {
                take(rest, 1 + len)?;
                continue;
            }
            if let 0xa0..=0xbf | 0xd9 = marker {
                take(rest, 1)?;
                let len = if marker == 0xd9 {
                    length(rest, 1)?
                } else {
                    usize::from(marker & 0x1f)
                };
                check_utf8(take(rest, len)?)?;
                continue;
            }
        }
        skip(rest, inner)?;
    }
    Ok(())
}

/// Why a value nested past the limit is refused.
fn nested_too_deep() -> String {
    format!("not accepted: arrays and maps nested deeper than {MAX_NESTING} levels")
}

/// Reads one MessagePack value as rmpv's reader would (the never-used marker 0xc1 as nil),
/// refusing strings that are not UTF-8 and arrays and maps nested more than `nesting`
/// deep. Recurses at most `nesting + 1` calls deep, each with a small frame: scalars are
/// read by [`read_scalar`], whose frame is not kept while nested values are read (rmpv's
/// own reader takes about 4 KiB of stack per level in a debug build).
fn read(rest: &mut &[u8], nesting: usize) -> std::result::Result<Value, String> {
    let marker = Marker::from_u8(take(rest, 1)?[0]);
    let (is_map, len) = match marker {
        Marker::FixArray(len) => (false, usize::from(len)),
        Marker::Array16 => (false, length(rest, 2)?),
        Marker::Array32 => (false, length(rest, 4)?),
        Marker::FixMap(len) => (true, usize::from(len)),
        Marker::Map16 => (true, length(rest, 2)?),
        Marker::Map32 => (true, length(rest, 4)?),
        scalar => return read_scalar(scalar, rest),
    };
    let inner = nesting.checked_sub(1).ok_or_else(nested_too_deep)?;
    if is_map {
        // Each entry takes at least two bytes, each value one: that bounds the allocation
        // whatever `len` claims.
        let mut entries = Vec::with_capacity(len.min(rest.len() / 2));
        for _ in 0..len {
            let key = read(rest, inner)?;
            entries.push((key, read(rest, inner)?));
        }
        Ok(Value::Map(entries))
    } else {
        let mut items = Vec::with_capacity(len.min(rest.len()));
        for _ in 0..len {
            items.push(read(rest, inner)?);
        }
        Ok(Value::Array(items))
    }
}

/// Reads the value after `marker`, anything but an array or a map.
#[inline(never)]
fn read_scalar(marker: Marker, rest: &mut &[u8]) -> std::result::Result<Value, String> {
    /// What follows a marker that announces a length.
    enum Body {
        Text,
        Binary,
        Extension,
    }
    let (body, len) = match marker {
        Marker::Null | Marker::Reserved => return Ok(Value::Nil),
        Marker::True => return Ok(Value::Boolean(true)),
        Marker::False => return Ok(Value::Boolean(false)),
        Marker::FixPos(n) => return Ok(Value::from(n)),
        Marker::FixNeg(n) => return Ok(Value::from(n)),
        Marker::U8 => return Ok(Value::from(u8::from_be_bytes(fixed(rest)?))),
        Marker::U16 => return Ok(Value::from(u16::from_be_bytes(fixed(rest)?))),
        Marker::U32 => return Ok(Value::from(u32::from_be_bytes(fixed(rest)?))),
        Marker::U64 => return Ok(Value::from(u64::from_be_bytes(fixed(rest)?))),
        Marker::I8 => return Ok(Value::from(i8::from_be_bytes(fixed(rest)?))),
        Marker::I16 => return Ok(Value::from(i16::from_be_bytes(fixed(rest)?))),
        Marker::I32 => return Ok(Value::from(i32::from_be_bytes(fixed(rest)?))),
        Marker::I64 => return Ok(Value::from(i64::from_be_bytes(fixed(rest)?))),
        Marker::F32 => return Ok(Value::F32(f32::from_be_bytes(fixed(rest)?))),
        Marker::F64 => return Ok(Value::F64(f64::from_be_bytes(fixed(rest)?))),
        Marker::FixStr(len) => (Body::Text, usize::from(len)),
        Marker::Str8 => (Body::Text, length(rest, 1)?),
        Marker::Str16 => (Body::Text, length(rest, 2)?),
        Marker::Str32 => (Body::Text, length(rest, 4)?),
        Marker::Bin8 => (Body::Binary, length(rest, 1)?),
        Marker::Bin16 => (Body::Binary, length(rest, 2)?),
        Marker::Bin32 => (Body::Binary, length(rest, 4)?),
        Marker::FixExt1 => (Body::Extension, 1),
        Marker::FixExt2 => (Body::Extension, 2),
        Marker::FixExt4 => (Body::Extension, 4),
        Marker::FixExt8 => (Body::Extension, 8),
        Marker::FixExt16 => (Body::Extension, 16),
        Marker::Ext8 => (Body::Extension, length(rest, 1)?),
        Marker::Ext16 => (Body::Extension, length(rest, 2)?),
        Marker::Ext32 => (Body::Extension, length(rest, 4)?),
        Marker::FixArray(_)
        | Marker::Array16
        | Marker::Array32
        | Marker::FixMap(_)
        | Marker::Map16
        | Marker::Map32 => return Err("arrays and maps are read by read()".into()),
    };
    Ok(match body {
        Body::Text => {
            let text =
                std::str::from_utf8(take(rest, len)?).map_err(|_| INVALID_UTF8.to_owned())?;
            Value::from(text)
        }
        Body::Binary => Value::Binary(take(rest, len)?.to_vec()),
        // The type byte, then the data.
        Body::Extension => {
            let kind = i8::from_be_bytes(fixed(rest)?);
            Value::Ext(kind, take(rest, len)?.to_vec())
        }
    })
}

/// The next `N` bytes, as an array.
fn fixed<const N: usize>(rest: &mut &[u8]) -> std::result::Result<[u8; N], String> {
    take(rest, N)?
        .try_into()
        .map_err(|_| "not MessagePack: the value is cut short".to_owned())
}

/// Refuses a string's bytes that are not UTF-8. ASCII, what a session's strings mostly
/// are, is checked first: for short strings much cheaper than the full UTF-8 check.
fn check_utf8(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(INVALID_UTF8.into())
    }
}

/// The bytes after the marker of a fixed-size scalar; `None` for other values (strings
/// included: their bytes must be checked for UTF-8).
fn scalar_len(marker: u8) -> Option<usize> {
    match marker {
        // fixint, nil, the reserved 0xc1 (read as nil), booleans
        0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => Some(0),
        // uint8, int8 / uint16, int16 / float32, uint32, int32 / float64, uint64, int64
        0xcc | 0xd0 => Some(1),
        0xcd | 0xd1 => Some(2),
        0xca | 0xce | 0xd2 => Some(4),
        0xcb | 0xcf | 0xd3 => Some(8),
        _ => None,
    }
}

/// A big-endian length of `width` bytes (1, 2 or 4).
fn length(rest: &mut &[u8], width: usize) -> std::result::Result<usize, String> {
    Ok(take(rest, width)?
        .iter()
        .fold(0, |len, byte| len << 8 | usize::from(*byte)))
}

/// The next `n` bytes.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
    if rest.len() < n {
        return Err("not MessagePack: the value is cut short".into());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
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
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn golden_vector_matches_flask_session() {
        let mut data = Data::new();
        data.insert("_permanent".into(), true.into());
        data.insert("user_id".into(), 42.into());
        let bytes = encode(&data, Format::MessagePack).unwrap();
        assert_eq!(hex(&bytes), "82aa5f7065726d616e656e74c3a7757365725f69642a");
        assert_eq!(decode(&bytes).unwrap(), data);
    }

    #[test]
    fn json_objects_are_read_and_written() {
        let data =
            decode(br#"{"user": "ann", "n": 3, "f": 1.5, "l": [1, null], "m": {"a": true}}"#)
                .unwrap();
        assert_eq!(data["user"], Value::from("ann"));
        assert_eq!(data["n"], Value::from(3));
        assert_eq!(data["f"], Value::F64(1.5));
        assert_eq!(data["l"], Value::Array(vec![1.into(), Value::Nil]));
        let again = decode(&encode(&data, Format::Json).unwrap()).unwrap();
        assert_eq!(again, data);
    }

    #[test]
    fn strings_that_are_not_utf8_are_refused() {
        // {"n": ["\xcf\xff", 0]}: found by the codec_decode fuzz target, which saw such a
        // string come back as binary after a save.
        let bytes = b"\x81\xa1n\x92\xa2\xcf\xff\x00";
        assert!(matches!(decode(bytes), Err(Error::Codec(_))));
        assert!(Entries::decode(bytes).is_err());
        let top_level = b"\x81\xa1n\xa2\xcf\xff";
        assert!(decode(top_level).is_err() && Entries::decode(top_level).is_err());
        // The same in a str 8 inside a map inside a list, and valid multi-byte UTF-8
        // ("é") accepted in both places.
        let nested_str8 = b"\x81\xa1n\x91\x81\xa1k\xd9\x02\xcf\xff";
        assert!(decode(nested_str8).is_err() && Entries::decode(nested_str8).is_err());
        let accented = b"\x81\xa1n\x92\xa2\xc3\xa9\x91\x81\xa1k\xd9\x02\xc3\xa9";
        let entries = Entries::decode(accented).unwrap();
        assert_eq!(entries.get("n"), decode(accented).unwrap().get("n"));
        assert_eq!(entries.get("n").unwrap()[0], Value::from("é"));
    }

    #[test]
    fn non_maps_and_garbage_are_refused() {
        for bad in [
            &b""[..],
            b"\x2a",
            b"\x92\x01\x02",
            b"[1,2]",
            b"\x81\x01\x02",
            b"{",
            b"\xc1",
        ] {
            assert!(matches!(decode(bad), Err(Error::Codec(_))), "{bad:?}");
        }
        // trailing bytes after a valid map
        assert!(decode(b"\x80\x00").is_err());
    }

    #[test]
    fn timestamps_use_extension_minus_one_in_all_three_widths() {
        for (seconds, nanos, width) in [(1_700_000_000, 0, 4), (1_700_000_000, 5, 8), (-5, 7, 12)] {
            let at = OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap();
            let value = timestamp_to_value(at);
            let Value::Ext(-1, ref payload) = value else {
                panic!("not a timestamp: {value}")
            };
            assert_eq!(payload.len(), width);
            assert_eq!(value_to_timestamp(&value), Some(at));
        }
        assert_eq!(value_to_timestamp(&Value::Ext(-1, vec![1, 2, 3])), None);
    }

    #[test]
    fn json_writing_refuses_what_json_cannot_hold() {
        let mut data = Data::new();
        data.insert("x".into(), Value::F64(f64::NAN));
        assert!(matches!(
            encode(&data, Format::Json),
            Err(Error::Value { .. })
        ));
        data.insert("x".into(), Value::Ext(5, vec![1]));
        assert!(encode(&data, Format::Json).is_err());
        data.insert("x".into(), Value::Binary(vec![1, 2]));
        assert_eq!(encode(&data, Format::Json).unwrap(), br#"{"x":"AQI="}"#);
    }

    /// Session data with a value of every kind, in every width the encoder picks.
    fn every_kind() -> Data {
        let mut data = Data::new();
        let values: Vec<Value> = vec![
            Value::Nil,
            true.into(),
            false.into(),
            7.into(),
            (-3).into(),
            200.into(),
            (-100).into(),
            60_000.into(),
            (-30_000).into(),
            4_000_000_000u32.into(),
            (-2_000_000_000).into(),
            u64::MAX.into(),
            i64::MIN.into(),
            Value::F32(1.5),
            Value::F64(-2.25),
            "short".into(),
            "x".repeat(40).into(),
            "y".repeat(300).into(),
            "z".repeat(70_000).into(),
            Value::Binary(vec![1, 2, 3]),
            Value::Binary(vec![9; 300]),
            Value::Array(vec![1.into(), "two".into(), Value::Array(vec![])]),
            Value::Array((0..20).map(Value::from).collect()),
            Value::Map(vec![("a".into(), 1.into()), (2.into(), Value::Nil)]),
            Value::Map((0..20).map(|i| (Value::from(i), Value::from(i))).collect()),
            Value::Ext(5, vec![1]),
            Value::Ext(6, vec![1, 2, 3]),
            timestamp_to_value(OffsetDateTime::UNIX_EPOCH),
        ];
        for (i, value) in values.into_iter().enumerate() {
            data.insert(format!("k{i:02}"), value);
        }
        data
    }

    #[test]
    fn entries_read_and_write_what_a_full_decode_does() {
        let data = every_kind();
        let bytes = encode(&data, Format::MessagePack).unwrap();
        let entries = Entries::decode(&bytes).unwrap();
        assert_eq!(
            entries.keys().collect::<Vec<_>>(),
            data.keys().collect::<Vec<_>>()
        );
        for (key, value) in &data {
            assert_eq!(entries.get(key), Some(value), "{key}");
        }
        // Unchanged, the value is written back byte for byte, in both formats.
        assert_eq!(entries.encode(Format::MessagePack).unwrap(), bytes);
        let mut changed = entries.clone();
        let mut expected = data.clone();
        changed.insert("k03".into(), "replaced".into());
        expected.insert("k03".into(), "replaced".into());
        assert_eq!(changed.remove("k05"), expected.remove("k05"));
        assert_eq!(changed.remove("absent"), None);
        assert_eq!(
            changed.encode(Format::MessagePack).unwrap(),
            encode(&expected, Format::MessagePack).unwrap()
        );
        let mut json = data.clone();
        json.retain(|_, value| to_json("k", value).is_ok());
        let json_bytes = encode(&json, Format::Json).unwrap();
        let from_json = Entries::decode(&json_bytes).unwrap();
        assert_eq!(
            from_json,
            decode(&json_bytes).unwrap().into_iter().collect()
        );
        assert_eq!(from_json.encode(Format::Json).unwrap(), json_bytes);
        assert_eq!(
            Entries::decode(&encode(&json, Format::MessagePack).unwrap())
                .unwrap()
                .encode(Format::Json)
                .unwrap(),
            json_bytes
        );
    }

    /// `Entries::decode` must accept exactly what `decode` accepts.
    fn same_verdict(bytes: &[u8]) {
        assert_eq!(
            Entries::decode(bytes).is_ok(),
            decode(bytes).is_ok(),
            "{}",
            hex(bytes)
        );
    }

    #[test]
    fn entries_accept_exactly_what_a_full_decode_accepts() {
        let bytes = encode(&every_kind(), Format::MessagePack).unwrap();
        // Every truncation, and every single-byte corruption of a small value.
        for end in 0..bytes.len().min(2_000) {
            same_verdict(&bytes[..end]);
        }
        let small = encode(
            &decode(&hex_bytes("83a161c3a162920102a163c70205ab12")).unwrap(),
            Format::MessagePack,
        )
        .unwrap();
        for at in 0..small.len() {
            for byte in [
                0x00, 0x7f, 0x80, 0x90, 0xa0, 0xc0, 0xc1, 0xc4, 0xc7, 0xd4, 0xdc, 0xde, 0xff,
            ] {
                let mut bad = small.clone();
                bad[at] = byte;
                same_verdict(&bad);
            }
        }
        // A repeated key: the last value counts, as in a full decode.
        let repeated = b"\x82\xa1a\x01\xa1a\x02";
        assert_eq!(
            Entries::decode(repeated).unwrap().get("a"),
            Some(&Value::from(2))
        );
        assert_eq!(decode(repeated).unwrap()["a"], Value::from(2));
        for bad in [
            &b""[..],
            b"\x2a",
            b"\x92\x01\x02",
            b"\x81\x01\x02",
            b"\x81\xa1\xff\x01",
            b"\x80\x00",
            b"\xc1",
            b"\x81\xa1a\xc1",
            b"{\"a\": 1}",
            b"[1]",
        ] {
            same_verdict(bad);
        }
    }

    /// `{"a": [[...leaf...]]}` with `depth` arrays around `leaf`.
    fn nested_session(depth: usize, leaf: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x81\xa1a".to_vec();
        bytes.extend(std::iter::repeat_n(0x91, depth));
        bytes.extend_from_slice(leaf);
        bytes
    }

    #[test]
    fn every_decoder_stops_at_the_nesting_limit() {
        for leaf in [
            &b"\x01"[..],
            b"\xa1s",
            b"\xc4\x01\x00",
            b"\xd4\x01\x00",
            b"\x80",
        ] {
            // An empty map as the leaf is one level more.
            let extra = usize::from(leaf == b"\x80");
            let at_limit = nested_session(MAX_NESTING - extra, leaf);
            let past = nested_session(MAX_NESTING + 1 - extra, leaf);
            assert!(decode(&at_limit).is_ok() && Entries::decode(&at_limit).is_ok());
            assert!(decode(&past).is_err() && Entries::decode(&past).is_err());
            same_verdict(&past);
            assert!(decode_value(&at_limit[3..]).is_ok() && decode_value(&past[3..]).is_err());
        }
        // Far past it (rmpv's own limit is 1024, and its reader recurses before checking).
        let deep = nested_session(100_000, b"\x01");
        assert!(decode(&deep).is_err() && Entries::decode(&deep).is_err());
        assert!(decode_value(&deep[3..]).is_err());
        // The JSON fallback counts the same way, brackets in strings aside.
        let json = |depth: usize| {
            let mut text = r#"{"s": "[[[{{{\"", "a": "#.to_owned();
            text += &"[".repeat(depth);
            text += &"]".repeat(depth);
            text += "}";
            text
        };
        assert!(decode(json(MAX_NESTING).as_bytes()).is_ok());
        assert!(Entries::decode(json(MAX_NESTING).as_bytes()).is_ok());
        assert!(decode(json(MAX_NESTING + 1).as_bytes()).is_err());
        assert!(Entries::decode(json(100_000).as_bytes()).is_err());
        // Encoding refuses what decoding would refuse.
        let mut value = Value::from(1);
        for _ in 0..=MAX_NESTING {
            value = Value::Array(vec![value]);
        }
        let mut data = Data::new();
        data.insert("a".into(), value);
        assert!(
            matches!(encode(&data, Format::MessagePack), Err(Error::Value { key, .. }) if key == "a")
        );
        let Value::Array(inner) = data.remove("a").unwrap() else {
            unreachable!()
        };
        data.insert("a".into(), inner[0].clone());
        assert!(decode(&encode(&data, Format::MessagePack).unwrap()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn entries_agree_with_a_full_decode_on_any_bytes(
            entries in 0u8..4,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..48),
        ) {
            let mut bytes = vec![0x80 | entries];
            bytes.extend(body);
            same_verdict(&bytes);
            if let (Ok(lazy), Ok(full)) = (Entries::decode(&bytes), decode(&bytes)) {
                proptest::prop_assert_eq!(lazy, full.into_iter().collect::<Entries>());
            }
        }
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
