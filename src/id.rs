//! Session ids: 32 bytes from the operating system's CSPRNG, base64url without padding.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length of an id in characters (32 random bytes in base64url without padding).
pub const ID_LEN: usize = 43;

/// A session id of the one accepted shape: 43 characters of `[A-Za-z0-9_-]`.
///
/// `Debug` shows only the first characters, so ids do not end up in logs in full.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// Draws a new id from the operating system's CSPRNG.
    ///
    /// # Panics
    /// Only if the operating system has no random source at all, which no supported
    /// platform lacks.
    pub fn generate() -> SessionId {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        SessionId(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts `text` only if it has the exact shape of an id.
    ///
    /// ```
    /// use sessionstore::SessionId;
    /// assert!(SessionId::parse("../../etc/passwd").is_none());
    /// let id = SessionId::generate();
    /// assert_eq!(SessionId::parse(id.as_str()), Some(id));
    /// ```
    pub fn parse(text: &str) -> Option<SessionId> {
        let well_formed = text.len() == ID_LEN
            && text.bytes().all(|b| ID_BYTES[usize::from(b)])
            // 32 bytes leave the last character's 2 low bits unused: only canonical
            // encodings, whose unused bits are zero (what decoding would check, without it).
            && text.bytes().last().is_some_and(|last| sextet(last) & 0b11 == 0);
        well_formed.then(|| SessionId(text.to_owned()))
    }

    /// The id as it appears in the cookie and in the store key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bytes an id may hold, `[A-Za-z0-9_-]`, by value: one lookup per byte.
const ID_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        allowed[byte] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        byte += 1;
    }
    allowed
};

/// The value of a base64url character (`[A-Za-z0-9_-]`, checked before).
fn sextet(character: u8) -> u8 {
    match character {
        b'A'..=b'Z' => character - b'A',
        b'a'..=b'z' => character - b'a' + 26,
        b'0'..=b'9' => character - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_the_shape_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_eq!(a.as_str().len(), ID_LEN);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).as_ref(), Some(&a));
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        let good = SessionId::generate();
        let too_long = format!("{}A", good.as_str());
        let bad_char = format!("{}.", &good.as_str()[..42]);
        let slash = format!("{}/", &good.as_str()[..42]);
        for text in [
            "",
            "abc",
            &too_long,
            &bad_char,
            &slash,
            &good.as_str()[..42],
        ] {
            assert_eq!(SessionId::parse(text), None, "{text:?}");
        }
        // Non-canonical last character (unused low bits set).
        let mut non_canonical = good.as_str()[..42].to_owned();
        non_canonical.push('B');
        assert_eq!(SessionId::parse(&non_canonical), None);
    }
}
