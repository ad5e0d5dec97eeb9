//! Stored bytes from a corrupt or hostile store: decoding never panics, and whatever decodes
//! re-encodes (MessagePack) to bytes that decode to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessionstore::codec::{self, Format};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(data) = codec::decode(bytes) {
        let encoded = codec::encode(&data, Format::MessagePack).expect("decoded data encodes");
        assert_eq!(codec::decode(&encoded).expect("re-decodes"), data);
        let _ = codec::encode(&data, Format::Json);
    }
});
