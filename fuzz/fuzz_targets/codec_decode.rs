//! Stored bytes from a corrupt or hostile store: decoding never panics, and whatever decodes
//! re-encodes (MessagePack) to bytes that decode and re-encode to the same bytes (compared
//! as bytes, since a NaN is not equal to itself). The same bytes as one raw value, as the C
//! ABI takes them: whatever `decode_value` accepts, a session stores and reads back. The
//! corpus holds values at and past the nesting limit (`codec::MAX_NESTING`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::codec::{self, Data, Format};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(data) = codec::decode(bytes) {
        let encoded = codec::encode(&data, Format::MessagePack).expect("decoded data encodes");
        let again = codec::decode(&encoded).expect("re-decodes");
        assert_eq!(
            codec::encode(&again, Format::MessagePack).expect("encodes again"),
            encoded
        );
        let _ = codec::encode(&data, Format::Json);
    }
    if let Ok(value) = codec::decode_value(bytes) {
        let data: Data = [("v".to_owned(), value)].into_iter().collect();
        let encoded = codec::encode(&data, Format::MessagePack).expect("an accepted value encodes");
        codec::decode(&encoded).expect("and decodes as a session");
    }
});
