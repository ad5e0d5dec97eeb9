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

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmpv::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, Result};

/// A session's data: string keys to MessagePack values.
pub type Data = BTreeMap<String, Value>;

/// MessagePack's extension type for timestamps.
pub const TIMESTAMP_EXT: i8 = -1;

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
/// Fails only for values JSON cannot carry (non-finite floats, extension types other than
/// timestamps) when `format` is [`Format::Json`].
pub fn encode(data: &Data, format: Format) -> Result<Vec<u8>> {
    match format {
        Format::MessagePack => {
            let map = Value::Map(
                data.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
                    .collect(),
            );
            let mut out = Vec::with_capacity(64);
            rmpv::encode::write_value(&mut out, &map)
                .map_err(|e| Error::Codec(format!("MessagePack encoding failed: {e}")))?;
            Ok(out)
        }
        Format::Json => {
            let mut object = serde_json::Map::new();
            for (key, value) in data {
                object.insert(key.clone(), to_json(key, value)?);
            }
            serde_json::to_vec(&object).map_err(|e| Error::Codec(e.to_string()))
        }
    }
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
    let mut rest = bytes;
    let value = rmpv::decode::read_value(&mut rest).map_err(|e| format!("not MessagePack: {e}"))?;
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

fn decode_json(bytes: &[u8]) -> std::result::Result<Data, String> {
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
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), from_json(v)))
                .collect(),
        ),
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
        Value::Array(items) => items
            .iter()
            .map(|item| to_json(key, item))
            .collect::<Result<Vec<_>>>()?
            .into(),
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
}
