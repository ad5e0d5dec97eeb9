//! Stored bytes from a corrupt or hostile store: decoding never panics, and whatever decodes
//! re-encodes (MessagePack) to bytes that decode and re-encode to the same bytes (compared
//! as bytes, since a NaN is not equal to itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::codec::{self, Format};

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
});
