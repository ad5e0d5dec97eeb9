//! Encryption and compression at rest (opt-in): the versioned envelope around a stored
//! session value, its parser, and the keys (docs/DESIGN.md §4).
//!
//! A save encodes the session (MessagePack or JSON), compresses it when it is at least the
//! threshold and compression makes it smaller, encrypts it when data keys are configured,
//! and wraps the result in an [`Envelope`]. A value that is neither compressed nor encrypted
//! is stored as it is, so it stays a plain, Flask-compatible record. A load opens the
//! envelope when the stored bytes start with [`MAGIC`] and takes them as they are otherwise.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "\xC1SSE" (0xC1 never starts MessagePack, nor UTF-8 or JSON)
//! 4       1     version: 2 (written and read) or 1 (read only)
//! 5       1     flags: bit 0 compressed, bit 1 encrypted; the others must be 0
//! encrypted:
//! 6       4     key id: the first 4 bytes of SHA-256(key)
//! 10      24    nonce (random)
//! 34      n+16  ciphertext and tag; associated data: bytes 0..34 and the store key
//! not encrypted:
//! 6       n     payload
//! payload, when compressed: uncompressed length (u32, little-endian), then an LZ4 block
//! ```
//!
//! | version | cipher when encrypted | |
//! |---|---|---|
//! | 2 | XAES-256-GCM (c2sp.org/XAES-256-GCM; the `xaes` module) | every save writes it |
//! | 1 | XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) | read only; the next save rewrites it |
//!
//! Without encryption the two versions are the same format.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

mod xaes;

/// The first bytes of every envelope. 0xC1 is the one byte MessagePack never uses and never
/// occurs in UTF-8, so no MessagePack map and no JSON object starts with it.
pub const MAGIC: [u8; 4] = *b"\xC1SSE";
/// The envelope version this library writes (and reads): XAES-256-GCM when encrypted.
pub const VERSION: u8 = 2;
/// The first envelope version, still read (XChaCha20-Poly1305 when encrypted), no longer
/// written.
pub const LEGACY_VERSION: u8 = 1;
/// Flag: the payload is LZ4-compressed.
pub const FLAG_COMPRESSED: u8 = 0b01;
/// Flag: the payload is encrypted.
pub const FLAG_ENCRYPTED: u8 = 0b10;
/// Length of a data key in bytes (256 bits).
pub const KEY_LEN: usize = 32;
/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 4;
/// Length of a nonce in bytes (192 bits, for XAES-256-GCM and XChaCha20-Poly1305 alike).
pub const NONCE_LEN: usize = 24;
/// Length of the authentication tag in bytes.
pub const TAG_LEN: usize = 16;

const HEADER_LEN: usize = MAGIC.len() + 2;
const ENCRYPTED_HEADER_LEN: usize = HEADER_LEN + KEY_ID_LEN + NONCE_LEN;

/// A 256-bit data key. Its `Debug` shows the key id only.
///
/// The key bytes live in one heap allocation, and what XAES-256-GCM computes from the key
/// once (its AES-256 round keys and CMAC subkey) in another; both are wiped when the key is
/// dropped (`zeroize`), so moving a key (into a `Vec`, a configuration, the C ABI's options)
/// copies pointers, not the key, and every clone wipes its own copies. The per-record keys
/// derived for each seal or open are wiped once `ring`'s key is built from them.
#[derive(Clone)]
pub struct DataKey {
    key: Box<Zeroizing<[u8; KEY_LEN]>>,
    xaes: Box<xaes::Xaes>,
    id: [u8; KEY_ID_LEN],
}

impl PartialEq for DataKey {
    fn eq(&self, other: &DataKey) -> bool {
        self.key == other.key
    }
}

impl Eq for DataKey {}

impl ZeroizeOnDrop for DataKey {}

impl DataKey {
    /// A key from its 32 bytes. The caller's array is a copy this key does not wipe.
    pub fn from_bytes(key: [u8; KEY_LEN]) -> DataKey {
        let mut boxed = Box::new(Zeroizing::new([0; KEY_LEN]));
        boxed.copy_from_slice(&key);
        DataKey::from_box(boxed)
    }

    fn from_box(key: Box<Zeroizing<[u8; KEY_LEN]>>) -> DataKey {
        let digest = Sha256::digest(key.as_slice());
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let xaes = Box::new(xaes::Xaes::new(&key));
        DataKey { key, xaes, id }
    }

    /// A key from 32 bytes in base64, standard or URL-safe, padded or not (`openssl rand
    /// -base64 32` makes one). `setting` names the setting in the error. The decoded bytes
    /// are wiped once copied into the key.
    pub fn from_base64(setting: &str, text: &str) -> Result<DataKey> {
        let text = text.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| Error::config(setting, "a data key must be base64"))?,
        );
        if bytes.len() != KEY_LEN {
            return Err(Error::config(
                setting,
                format!(
                    "a data key must be 32 bytes (256 bits), not {}",
                    bytes.len()
                ),
            ));
        }
        let mut key = Box::new(Zeroizing::new([0; KEY_LEN]));
        key.copy_from_slice(&bytes);
        Ok(DataKey::from_box(key))
    }

    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Result<DataKey> {
        let mut key = Box::new(Zeroizing::new([0; KEY_LEN]));
        getrandom::fill(key.as_mut_slice())
            .map_err(|error| Error::config("data_keys", format!("no random key: {error}")))?;
        Ok(DataKey::from_box(key))
    }

    /// The key in standard base64, as the settings take it (wiped when dropped).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.key.as_slice()))
    }

    /// The key id written in envelopes: the first 4 bytes of the key's SHA-256.
    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    /// The AEAD of an envelope `version` (already checked to be [`VERSION`] or
    /// [`LEGACY_VERSION`]) for one nonce: XAES-256-GCM, or XChaCha20-Poly1305 for version 1.
    fn cipher(&self, version: u8, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
        if version == LEGACY_VERSION {
            self.xchacha20_poly1305(nonce)
        } else {
            self.xaes.cipher(nonce)
        }
    }

    /// XChaCha20-Poly1305 for one nonce (version 1 records): HChaCha20 derives a subkey from
    /// the key and the nonce's first 16 bytes, and ChaCha20-Poly1305 (RFC 8439, `ring`'s
    /// implementation) runs under the subkey with the nonce's last 8 bytes
    /// (draft-irtf-cfrg-xchacha §2.3). The subkey is wiped here; the copy inside `ring`'s
    /// key is not (`ring` does not zeroize), and it opens that one record only.
    fn xchacha20_poly1305(&self, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
        let key: &[u8; KEY_LEN] = &self.key;
        let (head, tail) = nonce.split_at(16);
        let head: &[u8; 16] = head.try_into().expect("16 bytes");
        let mut subkey = chacha20::hchacha::<chacha20::R20>(key.into(), head.into());
        let cipher =
            UnboundKey::new(&CHACHA20_POLY1305, &subkey).expect("a 32-byte ChaCha20-Poly1305 key");
        subkey.as_mut_slice().zeroize();
        let mut inner = [0; 12];
        inner[4..].copy_from_slice(tail);
        (
            LessSafeKey::new(cipher),
            Nonce::assume_unique_for_key(inner),
        )
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id {:02x?})", self.id)
    }
}

/// The at-rest settings: data keys (the first encrypts, all decrypt), decrypt-only, and the
/// compression threshold. The default does none of it, and stores plain Flask-compatible
/// records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtRest {
    /// Data keys. With none, nothing is encrypted; with several, the first encrypts and
    /// every one decrypts (rotation: put the new key first).
    pub keys: Vec<DataKey>,
    /// Compress encoded sessions of at least this many bytes (when that makes them
    /// smaller); `None`: never.
    pub compress_threshold: Option<usize>,
    /// The keys decrypt, none encrypts: the way to turn encryption off without losing
    /// sessions. Records still encrypted are read, and written plain by their session's
    /// next request (even one that changes nothing); once they all have been, or have
    /// expired, remove the keys.
    pub decrypt_only: bool,
}

/// An envelope's parts, as [`Envelope::parse`] reads them; the payload is still sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The envelope version: [`VERSION`] or [`LEGACY_VERSION`].
    pub version: u8,
    /// Whether the payload is compressed.
    pub compressed: bool,
    /// The key id and nonce of an encrypted payload.
    pub encryption: Option<Encryption<'a>>,
    /// The bytes covered by the tag besides the store key (magic to nonce).
    pub header: &'a [u8],
    /// The payload: ciphertext and tag when encrypted, else the (compressed) value.
    pub payload: &'a [u8],
}

/// How an envelope's payload is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption<'a> {
    /// The id of the key that encrypted it.
    pub key_id: [u8; KEY_ID_LEN],
    /// The nonce.
    pub nonce: &'a [u8; NONCE_LEN],
}

impl<'a> Envelope<'a> {
    /// Reads an envelope's structure: `Ok(None)` when `bytes` do not start with [`MAGIC`]
    /// (a plain record), an error when they do but the rest is not an envelope of a version
    /// this library reads.
    pub fn parse(bytes: &'a [u8]) -> Result<Option<Envelope<'a>>> {
        let Some(rest) = bytes.strip_prefix(&MAGIC) else {
            return Ok(None);
        };
        let [version, flags, ..] = *rest else {
            return Err(corrupt("truncated envelope header"));
        };
        if version != VERSION && version != LEGACY_VERSION {
            return Err(corrupt(format!("unsupported envelope version {version}")));
        }
        if flags & !(FLAG_COMPRESSED | FLAG_ENCRYPTED) != 0 {
            return Err(corrupt(format!("unknown envelope flags {flags:#04x}")));
        }
        let compressed = flags & FLAG_COMPRESSED != 0;
        if flags & FLAG_ENCRYPTED == 0 {
            return Ok(Some(Envelope {
                version,
                compressed,
                encryption: None,
                header: &bytes[..HEADER_LEN],
                payload: &bytes[HEADER_LEN..],
            }));
        }
        if bytes.len() < ENCRYPTED_HEADER_LEN + TAG_LEN {
            return Err(corrupt("truncated encrypted envelope"));
        }
        let (header, payload) = bytes.split_at(ENCRYPTED_HEADER_LEN);
        let key_id = header[HEADER_LEN..HEADER_LEN + KEY_ID_LEN]
            .try_into()
            .expect("length checked");
        let nonce = header[HEADER_LEN + KEY_ID_LEN..]
            .try_into()
            .expect("length checked");
        Ok(Some(Envelope {
            version,
            compressed,
            encryption: Some(Encryption { key_id, nonce }),
            header,
            payload,
        }))
    }
}

/// A stored value opened by [`AtRest::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The encoded session (MessagePack or JSON).
    pub value: Cow<'a, [u8]>,
    /// Whether the record is sealed as these settings seal a save: encrypted with the first
    /// key in the current envelope version when keys are configured (and not decrypt-only),
    /// not encrypted otherwise. A record that is not (an old key, version 1's cipher, or a
    /// plain record after encryption was turned on) is rewritten by its next save.
    pub current: bool,
}

fn corrupt(message: impl fmt::Display) -> Error {
    Error::Codec(format!("at rest: {message}"))
}

impl AtRest {
    /// Whether anything is encrypted, decrypted or compressed.
    pub fn is_on(&self) -> bool {
        !self.keys.is_empty() || self.compress_threshold.is_some()
    }

    /// Whether a save writes anything but a plain record (encrypted or compressed).
    pub fn seals(&self) -> bool {
        self.encrypting_key().is_some() || self.compress_threshold.is_some()
    }

    /// The key a save encrypts with: the first, unless decrypt-only.
    fn encrypting_key(&self) -> Option<&DataKey> {
        self.keys.first().filter(|_| !self.decrypt_only)
    }

    /// Checks the settings: no two keys with one id (a key given twice, or a 1 in 2^32
    /// collision, where the second key would never be tried).
    pub fn validate(&self) -> Result<()> {
        for (i, key) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|other| other.id == key.id) {
                return Err(Error::config(
                    "data_keys",
                    format!("key {} has the same key id as an earlier key", i + 1),
                ));
            }
        }
        Ok(())
    }

    /// Seals an encoded session for storing under `store_key`: compressed at or above the
    /// threshold if that makes it smaller, encrypted with the first key if there is one
    /// (and not decrypt-only).
    /// A value neither compressed nor encrypted is returned as it is.
    pub fn seal(&self, store_key: &str, value: Vec<u8>) -> Result<Vec<u8>> {
        let compressed = self
            .compress_threshold
            .filter(|threshold| value.len() >= *threshold)
            .map(|_| lz4_flex::block::compress_prepend_size(&value))
            .filter(|compressed| compressed.len() < value.len());
        let flags = if compressed.is_some() {
            FLAG_COMPRESSED
        } else {
            0
        };
        let payload = compressed.unwrap_or(value);
        let Some(key) = self.encrypting_key() else {
            if flags == 0 {
                return Ok(payload);
            }
            let mut sealed = Vec::with_capacity(HEADER_LEN + payload.len());
            sealed.extend_from_slice(&MAGIC);
            sealed.extend_from_slice(&[VERSION, flags]);
            sealed.extend_from_slice(&payload);
            return Ok(sealed);
        };
        let nonce = nonces::next()
            .map_err(|error| Error::Codec(format!("at rest: no random nonce: {error}")))?;
        let mut sealed = Vec::with_capacity(ENCRYPTED_HEADER_LEN + payload.len() + TAG_LEN);
        sealed.extend_from_slice(&MAGIC);
        sealed.extend_from_slice(&[VERSION, flags | FLAG_ENCRYPTED]);
        sealed.extend_from_slice(&key.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&payload);
        let (header, plaintext) = sealed.split_at_mut(ENCRYPTED_HEADER_LEN);
        let (cipher, nonce) = key.cipher(VERSION, &nonce);
        let tag = with_associated_data(header, store_key, |data| {
            cipher.seal_in_place_separate_tag(nonce, Aad::from(data), plaintext)
        })
        .map_err(|_| corrupt("encryption failed"))?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// Opens what a store holds under `store_key`: bytes without [`MAGIC`] as they are, an
    /// envelope decrypted (with the key its key id names) and decompressed. Fails on a
    /// malformed envelope, an unknown key id, a failed authentication (a wrong key, an
    /// altered record, or one moved from another store key) and on a value that would
    /// decompress to more than `max_size` bytes.
    pub fn open<'a>(
        &self,
        store_key: &str,
        stored: &'a [u8],
        max_size: usize,
    ) -> Result<Opened<'a>> {
        let Some(envelope) = Envelope::parse(stored)? else {
            return Ok(Opened {
                value: Cow::Borrowed(stored),
                current: self.encrypting_key().is_none(),
            });
        };
        let (payload, current) = match envelope.encryption {
            None => (
                Cow::Borrowed(envelope.payload),
                self.encrypting_key().is_none(),
            ),
            Some(encryption) => {
                let Some(position) = self.keys.iter().position(|k| k.id == encryption.key_id)
                else {
                    return Err(corrupt("no configured data key has the record's key id"));
                };
                let (ciphertext, tag) = envelope.payload.split_at(envelope.payload.len() - TAG_LEN);
                let mut plaintext = ciphertext.to_vec();
                let (cipher, nonce) =
                    self.keys[position].cipher(envelope.version, encryption.nonce);
                with_associated_data(envelope.header, store_key, |data| {
                    cipher.open_in_place_separate_tag(
                        nonce,
                        Aad::from(data),
                        Tag::try_from(tag).expect("length checked"),
                        &mut plaintext,
                        0..,
                    )
                })
                .map_err(|_| {
                    corrupt("authentication failed (wrong key, altered or moved record)")
                })?;
                let current = position == 0 && !self.decrypt_only && envelope.version == VERSION;
                (Cow::Owned(plaintext), current)
            }
        };
        let value = if envelope.compressed {
            Cow::Owned(decompress(&payload, max_size)?)
        } else {
            payload
        };
        Ok(Opened { value, current })
    }
}

/// Calls `f` with the associated data ([`associated_data`]), put together on the stack when
/// it fits in 256 bytes (a prefix of up to 180 bytes and an id), saving an allocation.
fn with_associated_data<T>(header: &[u8], store_key: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    let len = header.len() + store_key.len();
    let mut buffer = [0; 256];
    if len > buffer.len() {
        return f(&associated_data(header, store_key));
    }
    buffer[..header.len()].copy_from_slice(header);
    buffer[header.len()..len].copy_from_slice(store_key.as_bytes());
    f(&buffer[..len])
}

/// What the tag covers besides the ciphertext: the envelope's header and the store key, so
/// that neither a flag nor the record's place can change unnoticed.
fn associated_data(header: &[u8], store_key: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(header.len() + store_key.len());
    data.extend_from_slice(header);
    data.extend_from_slice(store_key.as_bytes());
    data
}

/// Decompresses a length-prefixed LZ4 block, refusing a claimed length over `max_size`
/// before allocating anything (a decompression bomb) and any length that does not match.
fn decompress(payload: &[u8], max_size: usize) -> Result<Vec<u8>> {
    let (length, block) = lz4_flex::block::uncompressed_size(payload)
        .map_err(|_| corrupt("truncated compressed value"))?;
    if length > max_size {
        return Err(corrupt(format!(
            "the value would decompress to {length} bytes, over max_size {max_size}"
        )));
    }
    let mut value = vec![0; length];
    match lz4_flex::block::decompress_into(block, &mut value) {
        Ok(written) if written == length => Ok(value),
        _ => Err(corrupt("corrupt compressed value")),
    }
}

/// Random nonces from the operating system's CSPRNG, fetched [`nonces::BATCH`] at a time per
/// thread: one `getrandom` system call per 64 saves instead of one per save (it cost some
/// 0.45 µs, a sixth of a 2 KB save). The bytes are the kernel's, unchanged; a process that
/// forks throws its buffered nonces away in the child (a `pthread_atfork` handler), so
/// parent and child never use the same ones.
mod nonces {
    use std::cell::RefCell;
    use std::sync::Once;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::NONCE_LEN;

    /// Nonces fetched per system call.
    pub(super) const BATCH: usize = 64;

    /// Forks this process went through (counted in the child).
    static FORKS: AtomicU64 = AtomicU64::new(0);

    struct Buffer {
        bytes: [u8; NONCE_LEN * BATCH],
        /// Nonces handed out of `bytes` (`BATCH`: none left).
        used: usize,
        /// [`FORKS`] when `bytes` were fetched.
        forks: u64,
    }

    thread_local! {
        static BUFFER: RefCell<Buffer> = const {
            RefCell::new(Buffer {
                bytes: [0; NONCE_LEN * BATCH],
                used: BATCH,
                forks: 0,
            })
        };
    }

    /// A fresh random nonce.
    pub(super) fn next() -> Result<[u8; NONCE_LEN], getrandom::Error> {
        watch_forks();
        BUFFER
            .try_with(|buffer| {
                let mut buffer = buffer.borrow_mut();
                let forks = FORKS.load(Ordering::Acquire);
                if buffer.used == BATCH || buffer.forks != forks {
                    getrandom::fill(&mut buffer.bytes)?;
                    buffer.used = 0;
                    buffer.forks = forks;
                }
                let start = buffer.used * NONCE_LEN;
                let mut nonce = [0; NONCE_LEN];
                nonce.copy_from_slice(&buffer.bytes[start..start + NONCE_LEN]);
                buffer.used += 1;
                Ok(nonce)
            })
            // A thread being torn down has no buffer left: ask the kernel directly.
            .unwrap_or_else(|_| {
                let mut nonce = [0; NONCE_LEN];
                getrandom::fill(&mut nonce).map(|()| nonce)
            })
    }

    #[cfg(unix)]
    fn watch_forks() {
        static REGISTER: Once = Once::new();
        extern "C" fn forked() {
            FORKS.fetch_add(1, Ordering::AcqRel);
        }
        REGISTER.call_once(|| {
            // SAFETY: `forked` only touches an atomic, which is async-signal-safe, as a
            // handler running in the child of a multi-threaded process must be.
            let status = unsafe { libc::pthread_atfork(None, None, Some(forked)) };
            assert_eq!(status, 0, "pthread_atfork failed");
        });
    }

    /// No `fork` elsewhere.
    #[cfg(not(unix))]
    fn watch_forks() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "session:abc";

    fn keys(n: u8) -> DataKey {
        DataKey::from_bytes([n; KEY_LEN])
    }

    fn encrypting() -> AtRest {
        AtRest {
            keys: vec![keys(1)],
            ..AtRest::default()
        }
    }

    fn compressing() -> AtRest {
        AtRest {
            keys: Vec::new(),
            compress_threshold: Some(64),
            ..AtRest::default()
        }
    }

    fn both() -> AtRest {
        AtRest {
            keys: vec![keys(1), keys(2)],
            compress_threshold: Some(64),
            ..AtRest::default()
        }
    }

    fn value(len: usize) -> Vec<u8> {
        let mut value = vec![0x81, 0xa1, b'k', 0xda];
        value.extend_from_slice(&(len as u16).to_be_bytes());
        value.extend(std::iter::repeat_n(b'x', len));
        value
    }

    #[test]
    fn off_stores_plain_records_and_reads_them() {
        let at_rest = AtRest::default();
        let sealed = at_rest.seal(KEY, value(1000)).unwrap();
        assert_eq!(sealed, value(1000));
        let opened = at_rest.open(KEY, &sealed, 1 << 20).unwrap();
        assert_eq!(opened.value, value(1000));
        assert!(opened.current);
    }

    #[test]
    fn every_mode_round_trips_every_size() {
        for at_rest in [encrypting(), compressing(), both()] {
            for len in [0, 10, 63, 64, 200, 2000, 20_000] {
                let sealed = at_rest.seal(KEY, value(len)).unwrap();
                let opened = at_rest.open(KEY, &sealed, 1 << 20).unwrap();
                assert_eq!(opened.value, value(len), "{at_rest:?} {len}");
                assert!(opened.current);
            }
        }
    }

    #[test]
    fn compression_applies_from_the_threshold_and_only_when_it_helps() {
        let at_rest = compressing();
        let small = at_rest.seal(KEY, value(10)).unwrap();
        assert_eq!(small, value(10), "below the threshold: plain");
        let large = at_rest.seal(KEY, value(2000)).unwrap();
        assert_eq!(&large[..HEADER_LEN], b"\xC1SSE\x02\x01");
        assert!(large.len() < 100);
        let random: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(at_rest.seal(KEY, random.clone()).unwrap(), random);
    }

    #[test]
    fn encryption_uses_fresh_nonces_and_the_first_key() {
        let at_rest = both();
        let a = at_rest.seal(KEY, value(10)).unwrap();
        let b = at_rest.seal(KEY, value(10)).unwrap();
        assert_ne!(a, b, "random nonces");
        assert_eq!(&a[..HEADER_LEN], b"\xC1SSE\x02\x02");
        let envelope = Envelope::parse(&a).unwrap().unwrap();
        assert_eq!(envelope.version, VERSION);
        assert_eq!(envelope.encryption.unwrap().key_id, keys(1).id());
        assert!(!envelope.compressed);
        assert_eq!(a.len(), ENCRYPTED_HEADER_LEN + value(10).len() + TAG_LEN);
    }

    /// A version-2 record is XAES-256-GCM (whose derivation src/at_rest/xaes.rs checks
    /// against the C2SP vectors) under the first key, with the header and the store key as
    /// associated data.
    #[test]
    fn records_are_xaes_256_gcm() {
        let at_rest = both();
        for len in [0, 10, 2000] {
            let sealed = at_rest.seal(KEY, value(len)).unwrap();
            let envelope = Envelope::parse(&sealed).unwrap().unwrap();
            let nonce = envelope.encryption.unwrap().nonce;
            let (cipher, nonce) = xaes::Xaes::new(&keys(1).key).cipher(nonce);
            let mut payload = envelope.payload.to_vec();
            let aad = associated_data(envelope.header, KEY);
            let plaintext = cipher
                .open_in_place(nonce, Aad::from(aad), &mut payload)
                .unwrap();
            let opened = if envelope.compressed {
                decompress(plaintext, 1 << 20).unwrap()
            } else {
                plaintext.to_vec()
            };
            assert_eq!(opened, value(len), "{len}");
        }
    }

    /// A record sealed in version 1 (XChaCha20-Poly1305), with this library's version-1
    /// code: the nonce is fixed here, as a version-1 save drew it at random.
    fn legacy_seal(key: &DataKey, store_key: &str, value: &[u8], flags: u8) -> Vec<u8> {
        let nonce = [0x5a; NONCE_LEN];
        let mut sealed = MAGIC.to_vec();
        sealed.extend_from_slice(&[LEGACY_VERSION, flags | FLAG_ENCRYPTED]);
        sealed.extend_from_slice(&key.id());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(value);
        let (header, plaintext) = sealed.split_at_mut(ENCRYPTED_HEADER_LEN);
        let (cipher, nonce) = key.cipher(LEGACY_VERSION, &nonce);
        let tag = cipher
            .seal_in_place_separate_tag(
                nonce,
                Aad::from(associated_data(header, store_key)),
                plaintext,
            )
            .unwrap();
        sealed.extend_from_slice(tag.as_ref());
        sealed
    }

    #[test]
    fn a_record_under_another_key_or_altered_does_not_open() {
        let at_rest = both();
        let compressed = lz4_flex::block::compress_prepend_size(&value(500));
        for sealed in [
            at_rest.seal(KEY, value(500)).unwrap(),
            legacy_seal(&keys(1), KEY, &value(500), 0),
            legacy_seal(&keys(1), KEY, &compressed, FLAG_COMPRESSED),
        ] {
            assert_eq!(
                at_rest.open(KEY, &sealed, 1 << 20).unwrap().value,
                value(500)
            );
            assert!(at_rest.open("session:abd", &sealed, 1 << 20).is_err());
            for i in 0..sealed.len() {
                let mut flipped = sealed.clone();
                flipped[i] ^= 0x01;
                match at_rest.open(KEY, &flipped, 1 << 20) {
                    // Without its magic the record reads as a plain one, which the codec
                    // refuses.
                    Ok(opened) if i < MAGIC.len() => {
                        assert_eq!(opened.value, flipped);
                        assert!(!opened.current);
                    }
                    opened => assert!(opened.is_err(), "byte {i}"),
                }
            }
            // Relabelled as the other version: the version is authenticated too.
            let mut relabelled = sealed.clone();
            relabelled[MAGIC.len()] ^= VERSION ^ LEGACY_VERSION;
            assert!(at_rest.open(KEY, &relabelled, 1 << 20).is_err());
            for len in MAGIC.len()..sealed.len() {
                assert!(at_rest.open(KEY, &sealed[..len], 1 << 20).is_err(), "{len}");
            }
        }
    }

    #[test]
    fn long_store_keys_are_bound_too() {
        let long = format!("session:{}", "k".repeat(300));
        let sealed = both().seal(&long, value(100)).unwrap();
        assert_eq!(
            both().open(&long, &sealed, 1 << 20).unwrap().value,
            value(100)
        );
        let other = format!("session:{}", "k".repeat(301));
        assert!(both().open(&other, &sealed, 1 << 20).is_err());
    }

    #[test]
    fn unknown_and_wrong_keys_do_not_open() {
        for sealed in [
            encrypting().seal(KEY, value(10)).unwrap(),
            legacy_seal(&keys(1), KEY, &value(10), 0),
        ] {
            let other = AtRest {
                keys: vec![keys(3)],
                ..AtRest::default()
            };
            let error = other.open(KEY, &sealed, 1 << 20).unwrap_err().to_string();
            assert!(error.contains("key id"), "{error}");
            let mut forged = sealed.clone();
            forged[HEADER_LEN..HEADER_LEN + KEY_ID_LEN].copy_from_slice(&keys(3).id());
            let error = other.open(KEY, &forged, 1 << 20).unwrap_err().to_string();
            assert!(error.contains("authentication failed"), "{error}");
            assert!(AtRest::default().open(KEY, &sealed, 1 << 20).is_err());
        }
    }

    #[test]
    fn rotation_reads_old_keys_and_reports_them_stale() {
        let old = encrypting().seal(KEY, value(10)).unwrap();
        let rotated = AtRest {
            keys: vec![keys(2), keys(1)],
            ..AtRest::default()
        };
        let opened = rotated.open(KEY, &old, 1 << 20).unwrap();
        assert_eq!(opened.value, value(10));
        assert!(!opened.current);
        assert!(!rotated.open(KEY, &value(10), 1 << 20).unwrap().current);
        let fresh = rotated.seal(KEY, value(10)).unwrap();
        assert!(rotated.open(KEY, &fresh, 1 << 20).unwrap().current);
    }

    #[test]
    fn decrypt_only_reads_encrypted_records_and_writes_plain_ones() {
        let sealed = both().seal(KEY, value(2000)).unwrap();
        let off = AtRest {
            decrypt_only: true,
            ..both()
        };
        assert!(off.is_on());
        let opened = off.open(KEY, &sealed, 1 << 20).unwrap();
        assert_eq!(opened.value, value(2000));
        assert!(!opened.current, "an encrypted record is rewritten");
        let plain = AtRest {
            compress_threshold: None,
            ..off.clone()
        };
        assert!(!plain.seals());
        assert_eq!(plain.seal(KEY, value(10)).unwrap(), value(10));
        assert!(plain.open(KEY, &value(10), 1 << 20).unwrap().current);
        let compressed = off.seal(KEY, value(2000)).unwrap();
        let envelope = Envelope::parse(&compressed).unwrap().unwrap();
        assert!(envelope.compressed && envelope.encryption.is_none());
        assert!(off.open(KEY, &compressed, 1 << 20).unwrap().current);
    }

    #[test]
    fn a_compression_bomb_is_refused_before_allocating() {
        let mut bomb = MAGIC.to_vec();
        bomb.extend_from_slice(&[VERSION, FLAG_COMPRESSED]);
        bomb.extend_from_slice(&u32::MAX.to_le_bytes());
        bomb.extend_from_slice(&[0x1f, 0, 0, 0, 0]);
        let error = compressing().open(KEY, &bomb, 4 << 20).unwrap_err();
        assert!(error.to_string().contains("over max_size"), "{error}");
        let honest = compressing().seal(KEY, value(20_000)).unwrap();
        assert!(compressing().open(KEY, &honest, 10_000).is_err());
        assert!(compressing().open(KEY, &honest, 30_000).is_ok());
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        for bytes in [
            &b"\xC1SSE"[..],
            b"\xC1SSE\x01",
            b"\xC1SSE\x02",
            b"\xC1SSE\x00\x00",
            b"\xC1SSE\x01\x04",
            b"\xC1SSE\x02\x04",
            b"\xC1SSE\x01\x02short",
            b"\xC1SSE\x02\x02short",
        ] {
            assert!(Envelope::parse(bytes).is_err(), "{bytes:?}");
        }
        // An unknown version, even with a valid record behind the byte: a corrupt record.
        let mut version_3 = encrypting().seal(KEY, value(10)).unwrap();
        version_3[MAGIC.len()] = 3;
        let error = encrypting().open(KEY, &version_3, 1 << 20).unwrap_err();
        assert!(
            error.to_string().contains("unsupported envelope version 3"),
            "{error}"
        );
        assert_eq!(Envelope::parse(b"\x81\xa1k\x01").unwrap(), None);
        assert_eq!(Envelope::parse(b"{\"k\": 1}").unwrap(), None);
        assert_eq!(Envelope::parse(b"\xC1 not").unwrap(), None);
    }

    /// A version-1 record as RustCrypto's XChaCha20-Poly1305 (what sealed records before
    /// this library used `ring`) seals it.
    fn rustcrypto_seal(key: &DataKey, store_key: &str, value: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{AeadInOut, KeyInit};
        let key: &[u8; KEY_LEN] = &key.key;
        let mut sealed = MAGIC.to_vec();
        sealed.extend_from_slice(&[LEGACY_VERSION, FLAG_ENCRYPTED]);
        sealed.extend_from_slice(&DataKey::from_bytes(*key).id());
        sealed.extend_from_slice(&[0x5a; NONCE_LEN]);
        sealed.extend_from_slice(value);
        let (header, plaintext) = sealed.split_at_mut(ENCRYPTED_HEADER_LEN);
        let tag = chacha20poly1305::XChaCha20Poly1305::new(key.into())
            .encrypt_inout_detached(
                &[0x5a; NONCE_LEN].into(),
                &associated_data(header, store_key),
                plaintext.into(),
            )
            .unwrap();
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// Version-1 records, as RustCrypto's XChaCha20-Poly1305 and this library's version-1
    /// code seal them (the same bytes), open; they are not current, so the next save
    /// rewrites them, in version 2.
    #[test]
    fn version_1_records_open_and_are_rewritten_as_version_2() {
        let at_rest = both();
        for len in [0, 10, 200, 2000, 20_000] {
            let old = rustcrypto_seal(&at_rest.keys[0], KEY, &value(len));
            assert_eq!(old, legacy_seal(&at_rest.keys[0], KEY, &value(len), 0));
            let opened = at_rest.open(KEY, &old, 1 << 20).unwrap();
            assert_eq!(opened.value, value(len), "{len}");
            assert!(!opened.current, "{len}");

            let new = at_rest.seal(KEY, opened.value.into_owned()).unwrap();
            assert_eq!(Envelope::parse(&new).unwrap().unwrap().version, VERSION);
            let opened = at_rest.open(KEY, &new, 1 << 20).unwrap();
            assert_eq!(opened.value, value(len), "{len}");
            assert!(opened.current, "{len}");
        }
        // Under an older key and version 1: stale as well.
        let rotated = AtRest {
            keys: vec![keys(2), keys(1)],
            ..AtRest::default()
        };
        let old = legacy_seal(&keys(1), KEY, &value(10), 0);
        assert!(!rotated.open(KEY, &old, 1 << 20).unwrap().current);
        // Decrypt-only reads version 1 and writes plain.
        let off = AtRest {
            decrypt_only: true,
            ..encrypting()
        };
        let opened = off.open(KEY, &old, 1 << 20).unwrap();
        assert_eq!(opened.value, value(10));
        assert!(!opened.current);
        // A compressed, unencrypted version-1 record is the same as a version-2 one.
        let mut compressed = compressing().seal(KEY, value(2000)).unwrap();
        compressed[MAGIC.len()] = LEGACY_VERSION;
        let opened = compressing().open(KEY, &compressed, 1 << 20).unwrap();
        assert_eq!(opened.value, value(2000));
        assert!(opened.current);
    }

    #[test]
    fn nonces_differ_across_batches_and_threads() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * nonces::BATCH {
            assert!(seen.insert(nonces::next().unwrap()));
        }
        let other = std::thread::spawn(|| nonces::next().unwrap())
            .join()
            .unwrap();
        assert!(seen.insert(other));
    }

    /// A forked child must not reuse the nonces its parent had buffered: both take the next
    /// one and they must differ.
    #[cfg(unix)]
    #[test]
    fn a_forked_child_takes_fresh_nonces() {
        nonces::next().unwrap();
        let mut fds = [0; 2];
        // SAFETY: a two-element array for pipe(2).
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only takes a nonce (no allocation: the buffer exists), writes it
        // and exits without unwinding or running destructors.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let nonce = nonces::next().unwrap_or([0; NONCE_LEN]);
            // SAFETY: writing a local array to the pipe, then leaving at once.
            unsafe {
                libc::write(fds[1], nonce.as_ptr().cast(), NONCE_LEN);
                libc::_exit(0);
            }
        }
        let parent = nonces::next().unwrap();
        let mut child = [0u8; NONCE_LEN];
        // SAFETY: reading into a local array; then reaping the child.
        let read = unsafe { libc::read(fds[0], child.as_mut_ptr().cast(), NONCE_LEN) };
        unsafe {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!(read, NONCE_LEN as isize);
        assert_ne!(child, [0; NONCE_LEN], "the child got no nonce");
        assert_ne!(child, parent, "parent and child took the same nonce");
    }

    #[test]
    fn keys_are_wiped_on_drop() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<DataKey>();
        wiped_on_drop::<Zeroizing<String>>();
        wiped_on_drop::<aes::Aes256Enc>();
        let key = keys(1);
        let moved = [key.clone(), keys(2)];
        // Moving a key moves the pointer to its one allocation, not the key bytes.
        let before: *const [u8; KEY_LEN] = &**key.key;
        let state: *const xaes::Xaes = &*key.xaes;
        let after: *const [u8; KEY_LEN] = &**moved[0].key;
        assert_ne!(before, after, "a clone has its own copy");
        let kept = key;
        assert_eq!(&**kept.key as *const [u8; KEY_LEN], before);
        assert_eq!(&*kept.xaes as *const xaes::Xaes, state);
    }

    #[test]
    fn keys_parse_from_base64_and_debug_shows_no_key() {
        let key = DataKey::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(DataKey::from_base64("k", &text).unwrap(), key);
        let url_safe = text.replace('+', "-").replace('/', "_");
        assert_eq!(
            DataKey::from_base64("k", url_safe.trim_end_matches('=')).unwrap(),
            key
        );
        assert!(DataKey::from_base64("k", "c2hvcnQ=").is_err());
        assert!(DataKey::from_base64("k", "not base64!").is_err());
        assert!(!format!("{key:?}").contains(&text[..8]));
        let twice = AtRest {
            keys: vec![key.clone(), key],
            ..AtRest::default()
        };
        assert!(twice.validate().is_err());
    }
}
