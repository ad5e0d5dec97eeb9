//! Unit tests of the codec: golden vectors, both formats, the lazy decoder and the nesting
//! limit.

use super::*;

/// Where each entry is: its key, where its key starts and its value's range.
fn layout(entries: &Entries) -> Vec<(String, usize, Range<usize>)> {
    entries
        .entries
        .iter()
        .map(|entry| match &entry.slot {
            Slot::Encoded {
                entry: at, range, ..
            } => (entries.name(&entry.key).to_owned(), *at, range.clone()),
            Slot::Decoded(_) => panic!("an indexed entry is still encoded"),
        })
        .collect()
}

/// `entries` encoded in `format`, its index checked against a check's of the output, and
/// the same bytes as without the index.
fn encoded(entries: &Entries, format: Format) -> Vec<u8> {
    let (bytes, written) = entries.encode(format, true).unwrap();
    assert_eq!(
        entries.encode(format, false).unwrap(),
        (bytes.clone(), None)
    );
    if let Some(written) = written {
        let checked = Entries::decode_shared(bytes.clone()).unwrap();
        assert_eq!(layout(&written), layout(&checked));
        assert_eq!(written, checked);
        assert_eq!(written.source(), &bytes);
    } else {
        assert_eq!(format, Format::Json);
    }
    bytes.to_vec()
}

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
        decode(br#"{"user": "ann", "n": 3, "f": 1.5, "l": [1, null], "m": {"a": true}}"#).unwrap();
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
        data.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (key, value) in &data {
        assert_eq!(entries.get(key), Some(value), "{key}");
    }
    // Unchanged, the value is written back byte for byte, in both formats.
    assert_eq!(encoded(&entries, Format::MessagePack), bytes);
    let mut changed = entries.clone();
    let mut expected = data.clone();
    changed.insert("k03", "replaced".into());
    expected.insert("k03".into(), "replaced".into());
    assert_eq!(changed.remove("k05"), expected.remove("k05"));
    assert_eq!(changed.remove("absent"), None);
    assert_eq!(
        encoded(&changed, Format::MessagePack),
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
    assert_eq!(encoded(&from_json, Format::Json), json_bytes);
    let from_msgpack = Entries::decode(&encode(&json, Format::MessagePack).unwrap()).unwrap();
    assert_eq!(encoded(&from_msgpack, Format::Json), json_bytes);
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
        if let (Ok(lazy), Ok(mut full)) = (Entries::decode(&bytes), decode(&bytes)) {
            proptest::prop_assert_eq!(&lazy, &full.clone().into_iter().collect::<Entries>());
            // Written back, the entries nobody replaced as their stored bytes (in runs of
            // adjacent ones) around one that changed: what the full decoder's data holds.
            // Compared encoded again, canonically (a NaN is not equal to itself).
            let mut changed = lazy;
            changed.insert("n", Value::from(7));
            full.insert("n".into(), Value::from(7));
            let written = encoded(&changed, Format::MessagePack);
            proptest::prop_assert_eq!(
                encode(&decode(&written).unwrap(), Format::MessagePack).unwrap(),
                encode(&full, Format::MessagePack).unwrap()
            );
        }
    }
}

/// Text mostly ASCII, sometimes not: what a session's strings are.
fn text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let character = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::any(),
    ];
    proptest::collection::vec(character, 0..40).prop_map(|chars| chars.into_iter().collect())
}

proptest::proptest! {
    /// The structure check reads strings in 16-byte words ending where they end: sessions
    /// of strings of every length, ASCII or not, anywhere in the buffer, whole, cut short,
    /// or with any one byte changed, get the same verdict from the check as from a full
    /// decode.
    #[test]
    fn entries_agree_with_a_full_decode_on_strings_cut_or_changed(
        texts in proptest::collection::vec(text(), 1..5),
        cut in proptest::num::usize::ANY,
        at in proptest::num::usize::ANY,
        byte in proptest::num::u8::ANY,
    ) {
        let mut data = Data::new();
        for (i, text) in texts.iter().enumerate() {
            data.insert(text.clone(), Value::from(text.as_str()));
            data.insert(format!("list{i}"), Value::Array(vec![text.as_str().into(), i.into()]));
        }
        let bytes = encode(&data, Format::MessagePack).unwrap();
        proptest::prop_assert_eq!(
            Entries::decode(&bytes).unwrap(),
            data.clone().into_iter().collect::<Entries>()
        );
        same_verdict(&bytes[..cut % bytes.len()]);
        let mut changed = bytes.clone();
        changed[at % bytes.len()] = byte;
        same_verdict(&changed);
        // A byte past 0x7F at each place in turn: in a string, the one the check must see.
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] = 0x80 | byte;
            same_verdict(&changed);
        }
    }
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
