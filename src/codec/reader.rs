//! The bounded MessagePack reader behind decoding: reads or skips one value without
//! recursing past the nesting limit (docs/DESIGN.md §4), with a small stack frame per level.
//! Written here rather than taken from rmpv because rmpv's reader has no depth limit and
//! takes about 4 KiB of stack per level in a debug build.

use rmp::Marker;
use rmpv::Value;

use super::{INVALID_UTF8, MAX_NESTING};

/// Steps over one encoded value, accepting exactly what [`read`] accepts with the same
/// `nesting`, without building it.
///
/// One loop over the bytes, without recursion: the values left in each open array or map
/// are kept on a stack as deep as the nesting limit allows, and each marker is dispatched
/// once, scalars and strings (most of a session's values) with no call but the UTF-8 check
/// of a string that is not ASCII.
pub(super) fn skip(rest: &mut &[u8], nesting: usize) -> std::result::Result<(), String> {
    let bytes = *rest;
    let mut pos = 0;
    // The values left in each enclosing array or map, and in the innermost one.
    let mut stack = [0usize; MAX_NESTING + 2];
    let mut depth = 0;
    let mut left = 1usize;
    loop {
        while left == 0 {
            if depth == 0 {
                *rest = &bytes[pos..];
                return Ok(());
            }
            depth -= 1;
            left = stack[depth];
        }
        left -= 1;
        let marker = *bytes.get(pos).ok_or_else(cut_short)?;
        pos += 1;
        // The bytes after the marker (and length) to step over, or the values of a container.
        let (body, children) = match marker {
            // fixint, nil, the never-used 0xc1 (rmpv reads it as nil), booleans
            0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => continue,
            0xa0..=0xbf => {
                let text = body_at(bytes, pos, usize::from(marker & 0x1f))?;
                check_utf8(text)?;
                pos += text.len();
                continue;
            }
            0xd9..=0xdb => {
                let width = 1 << (marker - 0xd9);
                let len = length_at(bytes, pos, width)?;
                let text = body_at(bytes, pos + width, len)?;
                check_utf8(text)?;
                pos += width + len;
                continue;
            }
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            // uint8, int8 / uint16, int16 / float32, uint32, int32 / float64, uint64, int64
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            // bin8, bin16, bin32: a length, then the data
            0xc4..=0xc6 => {
                let width = 1 << (marker - 0xc4);
                let len = length_at(bytes, pos, width)?;
                pos += width;
                (len, 0)
            }
            // ext8, ext16, ext32: a length, the type byte, then the data
            0xc7..=0xc9 => {
                let width = 1 << (marker - 0xc7);
                let len = length_at(bytes, pos, width)?;
                pos += width;
                (len + 1, 0)
            }
            // fixext 1, 2, 4, 8, 16: the type byte, then the data
            0xd4..=0xd8 => ((1 << (marker - 0xd4)) + 1, 0),
            0xdc | 0xdd => {
                let width = 2 << (marker - 0xdc);
                let len = length_at(bytes, pos, width)?;
                pos += width;
                (0, len)
            }
            0xde | 0xdf => {
                let width = 2 << (marker - 0xde);
                let len = length_at(bytes, pos, width)?;
                pos += width;
                (0, 2 * len)
            }
        };
        let is_container = matches!(marker, 0x80..=0x9f | 0xdc..=0xdf);
        if !is_container {
            pos += body_at(bytes, pos, body)?.len();
            continue;
        }
        if depth >= nesting || depth + 1 >= stack.len() {
            return Err(nested_too_deep());
        }
        stack[depth] = left;
        depth += 1;
        left = children;
    }
}

fn cut_short() -> String {
    "not MessagePack: the value is cut short".into()
}

/// The `len` bytes at `pos`.
fn body_at(bytes: &[u8], pos: usize, len: usize) -> std::result::Result<&[u8], String> {
    bytes
        .get(pos..)
        .and_then(|tail| tail.get(..len))
        .ok_or_else(cut_short)
}

/// The big-endian length of `width` bytes (1, 2 or 4) at `pos`.
fn length_at(bytes: &[u8], pos: usize, width: usize) -> std::result::Result<usize, String> {
    Ok(body_at(bytes, pos, width)?
        .iter()
        .fold(0, |len, byte| len << 8 | usize::from(*byte)))
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
pub(super) fn read(rest: &mut &[u8], nesting: usize) -> std::result::Result<Value, String> {
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
    // The bytes' bits together, in a loop the compiler vectorises: cheaper than
    // `is_ascii` on a session's short strings.
    let bits = bytes.iter().fold(0, |bits, byte| bits | byte);
    if bits < 0x80 || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(INVALID_UTF8.into())
    }
}

/// A big-endian length of `width` bytes (1, 2 or 4).
pub(super) fn length(rest: &mut &[u8], width: usize) -> std::result::Result<usize, String> {
    Ok(take(rest, width)?
        .iter()
        .fold(0, |len, byte| len << 8 | usize::from(*byte)))
}

/// The next `n` bytes.
pub(super) fn take<'a>(rest: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
    if rest.len() < n {
        return Err("not MessagePack: the value is cut short".into());
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}
