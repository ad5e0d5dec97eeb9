//! The bounded MessagePack reader behind decoding: reads or skips one value without
//! recursing past the nesting limit (docs/DESIGN.md §4), with a small stack frame per level.
//! Written here rather than taken from rmpv because rmpv's reader has no depth limit and
//! takes about 4 KiB of stack per level in a debug build.

use rmp::Marker;
use rmpv::Value;

use super::{INVALID_UTF8, MAX_NESTING};

/// Steps over the one encoded value at `pos` of `bytes`, accepting exactly what [`read`]
/// accepts with the same `nesting`, without building it; returns the position after it.
///
/// One loop over the bytes, without recursion: the values left in each open array or map
/// are kept on a stack as deep as the nesting limit allows, and each marker is dispatched
/// once, through [`KIND`]. Taking the whole buffer (not just the value) lets the ASCII
/// check of a short string read the 16 bytes that end where it ends (docs/DESIGN.md §4).
pub(super) fn skip(bytes: &[u8], pos: usize, nesting: usize) -> Result<usize, String> {
    scan(bytes, pos, nesting).map_err(Refused::message)
}

/// Why [`scan`] refused a value: a small value, so that the loop carries no `String`.
#[derive(Clone, Copy)]
enum Refused {
    CutShort,
    NotUtf8,
    TooDeep,
}

impl Refused {
    fn message(self) -> String {
        match self {
            Refused::CutShort => cut_short(),
            Refused::NotUtf8 => INVALID_UTF8.into(),
            Refused::TooDeep => nested_too_deep(),
        }
    }
}

/// [`skip`]'s loop.
///
/// A scalar of fixed size is not checked to be there whole: the next marker's read, or the
/// end, finds a position past the end (positions only grow, by at most 2^32 + 17 per value,
/// far from overflowing).
fn scan(bytes: &[u8], mut pos: usize, nesting: usize) -> Result<usize, Refused> {
    // The values left in each enclosing array or map, and in the innermost one.
    let mut stack = [0usize; MAX_NESTING + 1];
    let mut depth = 0;
    let mut left = 1usize;
    loop {
        while left == 0 {
            if depth == 0 {
                return if pos <= bytes.len() {
                    Ok(pos)
                } else {
                    Err(Refused::CutShort)
                };
            }
            depth -= 1;
            left = stack[depth];
        }
        left -= 1;
        let marker = *bytes.get(pos).ok_or(Refused::CutShort)?;
        pos += 1;
        let children = match KIND[usize::from(marker)] {
            FIXSTR => {
                pos = text_end(bytes, pos, usize::from(marker & 0x1f))?;
                continue;
            }
            FIXMAP => 2 * usize::from(marker & 0x0f),
            FIXARRAY => usize::from(marker & 0x0f),
            STR8 => {
                let len = *bytes.get(pos).ok_or(Refused::CutShort)?;
                pos = text_end(bytes, pos + 1, usize::from(len))?;
                continue;
            }
            LENGTH => {
                let (end, children) = with_length(bytes, pos, marker)?;
                pos = end;
                match children {
                    Some(children) => children,
                    None => continue,
                }
            }
            size => {
                pos += usize::from(size);
                continue;
            }
        };
        if depth >= nesting || depth >= stack.len() {
            return Err(Refused::TooDeep);
        }
        stack[depth] = left;
        depth += 1;
        left = children;
    }
}

/// What a marker starts, by marker: a scalar of fixed size, as the number of bytes after
/// the marker (0 to 17), or one of the kinds below.
const KIND: [u8; 256] = kinds();
/// A fixstr: the text's length is in the marker.
const FIXSTR: u8 = 0x80;
/// A fixarray or fixmap: the number of values is in the marker.
const FIXARRAY: u8 = 0x81;
const FIXMAP: u8 = 0x82;
/// A str8: the text's length is in the next byte.
const STR8: u8 = 0x84;
/// Anything else with a length field: str16/32, bin8/16/32, ext8/16/32, array16/32, map16/32.
const LENGTH: u8 = 0x83;

const fn kinds() -> [u8; 256] {
    let mut kinds = [LENGTH; 256];
    let mut marker = 0;
    while marker < 256 {
        kinds[marker] = match marker as u8 {
            // fixint, nil, the never-used 0xc1 (rmpv reads it as nil), booleans
            0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => 0,
            0x80..=0x8f => FIXMAP,
            0x90..=0x9f => FIXARRAY,
            0xa0..=0xbf => FIXSTR,
            // uint8, int8 / uint16, int16 / float32, uint32, int32 / float64, uint64, int64
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xca | 0xce | 0xd2 => 4,
            0xcb | 0xcf | 0xd3 => 8,
            // fixext 1, 2, 4, 8, 16: the type byte, then the data
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xd9 => STR8,
            _ => LENGTH,
        };
        marker += 1;
    }
    kinds
}

/// After the `marker` at `start - 1` followed by a length (str16/32, bin8/16/32,
/// ext8/16/32, array16/32, map16/32): the position after the length for an array or a map,
/// with how many values it holds (a map's keys counted), else the position after the value.
#[inline(never)]
fn with_length(bytes: &[u8], start: usize, marker: u8) -> Result<(usize, Option<usize>), Refused> {
    let (width, children): (usize, bool) = match marker {
        0xda | 0xdb => {
            let width = 2 << (marker - 0xda);
            let len = length_at(bytes, start, width)?;
            return Ok((text_end(bytes, start + width, len)?, None));
        }
        // bin8, bin16, bin32: a length, then the data
        0xc4..=0xc6 => (1 << (marker - 0xc4), false),
        // ext8, ext16, ext32: a length, the type byte, then the data
        0xc7..=0xc9 => (1 << (marker - 0xc7), false),
        // array16, array32, map16, map32: a length, then the values
        _ => (2 << (marker & 1), true),
    };
    let len = length_at(bytes, start, width)?;
    if children {
        let values = if marker >= 0xde { 2 * len } else { len };
        return Ok((start + width, Some(values)));
    }
    let extension = usize::from(matches!(marker, 0xc7..=0xc9));
    Ok((start + width + extension + len, None))
}

fn cut_short() -> String {
    "not MessagePack: the value is cut short".into()
}

/// The end of a string of `len` bytes at `start`, if it is there whole and UTF-8.
#[inline(always)]
fn text_end(bytes: &[u8], start: usize, len: usize) -> Result<usize, Refused> {
    let Some(text) = bytes.get(start..).and_then(|tail| tail.get(..len)) else {
        return Err(Refused::CutShort);
    };
    let end = start + len;
    if is_ascii_at(bytes, start, end) || std::str::from_utf8(text).is_ok() {
        Ok(end)
    } else {
        Err(Refused::NotUtf8)
    }
}

/// The high bit of each of 16 bytes, for the ASCII check: a window of 16 bytes at offset
/// `n` keeps the last `n` of 16 (see [`is_ascii_at`]).
const HIGH_BITS: [u8; 32] = {
    let mut bits = [0u8; 32];
    let mut i = 16;
    while i < 32 {
        bits[i] = 0x80;
        i += 1;
    }
    bits
};

/// Whether `bytes[start..end]` (in bounds) is ASCII, what a session's strings mostly are:
/// the high bits of the 16-byte words that cover it, the last one ending where the text
/// ends, so that a string of up to 16 bytes takes one word masked to its bytes and one of
/// up to 32 two words, without a loop. Much cheaper than `str::from_utf8` or a byte loop
/// on the short strings of a session.
#[inline(always)]
pub(super) fn is_ascii_at(bytes: &[u8], start: usize, end: usize) -> bool {
    let Some(last) = bytes.get(..end).and_then(<[u8]>::last_chunk::<16>) else {
        // Within the first 16 bytes of the buffer.
        return bytes.get(start..end).is_some_and(<[u8]>::is_ascii);
    };
    let len = end - start;
    // Little-endian: the text is the last `len` bytes of the last word, its high ones.
    let mask = len.min(16);
    let mask = u128::from_le_bytes(HIGH_BITS[mask..mask + 16].try_into().unwrap_or([0x80; 16]));
    let mut high = u128::from_le_bytes(*last) & mask;
    if len > 16 {
        // Words from the start; what they leave is in the last word. Up to 48 bytes (a
        // session's longer strings) without a loop.
        let word = |at: usize| {
            bytes
                .get(at..)
                .and_then(<[u8]>::first_chunk::<16>)
                .map_or(u128::MAX, |word| u128::from_le_bytes(*word))
        };
        high |= word(start);
        if len > 32 {
            high |= word(start + 16);
            if len > 48 {
                let (words, _) = bytes[start + 32..end].as_chunks::<16>();
                for word in words {
                    high |= u128::from_le_bytes(*word);
                }
            }
        }
        high &= u128::from_le_bytes([0x80; 16]);
    }
    high == 0
}

/// The big-endian length of `width` bytes (1, 2 or 4) at `pos`.
fn length_at(bytes: &[u8], pos: usize, width: usize) -> Result<usize, Refused> {
    Ok(bytes
        .get(pos..)
        .and_then(|tail| tail.get(..width))
        .ok_or(Refused::CutShort)?
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
