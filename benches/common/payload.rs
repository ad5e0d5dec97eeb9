//! The session payloads the benchmarks store: a signed-in user with a shopping cart.
//!
//! [`data`]: a few small keys (`_permanent`, `user_id`, `csrf_token`, `locale`, the counter
//! `n` that the modified requests increment) and a `cart` list of as many lines as it takes
//! to reach the target size, each line a small map of four fields (`sku`, `name`, `qty`,
//! `price`, about 90 bytes encoded): the shape a web application's session usually has,
//! a handful of keys, one of them holding most of the bytes.
//!
//! [`flat_data`]: the same lines, each under a key of its own (hundreds of top-level keys
//! at 20 KB), the demanding shape for the library, which indexes a session's top-level keys
//! on every load; the component benchmarks measure both.

use sessionstore::codec::{self, Data, Format};

/// The payload sizes measured: a label and the least encoded size in bytes.
pub const SIZES: [(&str, usize); 3] = [("200B", 200), ("2KB", 2_000), ("20KB", 20_000)];

/// The counter key the modified requests increment.
pub const COUNTER: &str = "n";

fn base() -> Data {
    let mut data = Data::new();
    data.insert("_permanent".into(), true.into());
    data.insert("user_id".into(), 424_242.into());
    data.insert(
        "csrf_token".into(),
        "Jx9vQ2m8Lr4tYp0ZkW7cNf3bHs6dAe1gUo5iXq2Vy8E".into(),
    );
    data.insert("locale".into(), "en-GB".into());
    data.insert(COUNTER.into(), 0.into());
    data
}

/// Session data of at least `target` bytes once encoded (exceeding it by less than one
/// cart line): the cart lines in one `cart` list.
pub fn data(target: usize) -> Data {
    let mut data = base();
    let mut lines = Vec::new();
    while encoded(&data).len() < target {
        lines.push(cart_line(lines.len() as u32));
        data.insert("cart".into(), rmpv::Value::Array(lines.clone()));
    }
    data
}

/// Session data of at least `target` bytes once encoded: each cart line under a top-level
/// key of its own.
pub fn flat_data(target: usize) -> Data {
    let mut data = base();
    let mut line = 0u32;
    while encoded(&data).len() < target {
        data.insert(format!("cart_{line:04}"), cart_line(line));
        line += 1;
    }
    data
}

/// `data` encoded as the library stores it (MessagePack).
pub fn encoded(data: &Data) -> Vec<u8> {
    codec::encode(data, Format::MessagePack).expect("benchmark payloads encode")
}

fn cart_line(line: u32) -> rmpv::Value {
    rmpv::Value::Map(vec![
        ("sku".into(), format!("SKU-{:06}", 100_000 + line).into()),
        (
            "name".into(),
            format!("Stoneware mug, 350 ml, glaze no. {line}").into(),
        ),
        ("qty".into(), (1 + line % 4).into()),
        ("price".into(), (12.5 + f64::from(line % 7)).into()),
    ])
}

/// The raw baseline's "modification": its stored value is an opaque byte string whose last
/// eight bytes it treats as a big-endian counter and increments, the least work that
/// changes a stored value (no decoding, no encoding).
pub fn bump(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = out.len() - 8;
    let counter: [u8; 8] = out[at..].try_into().expect("eight bytes");
    out[at..].copy_from_slice(&u64::from_be_bytes(counter).wrapping_add(1).to_be_bytes());
    out
}

/// The counter [`bump`] increments in `bytes`.
pub fn counter_of(bytes: &[u8]) -> u64 {
    let at = bytes.len() - 8;
    u64::from_be_bytes(bytes[at..].try_into().expect("eight bytes"))
}
