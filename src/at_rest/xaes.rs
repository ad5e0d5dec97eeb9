//! XAES-256-GCM (c2sp.org/XAES-256-GCM), the cipher of envelope version 2 (docs/DESIGN.md
//! §4): AES-256-GCM under a key derived from the data key and the first 12 bytes of a
//! 192-bit nonce, with the nonce's last 12 bytes as GCM's nonce. The derivation is NIST SP
//! 800-108r1's counter-mode KDF with AES-256-CMAC as PRF, two block encryptions with the
//! `aes` crate; GCM is `ring`'s (AES-NI and CLMUL where the CPU has them).

use aes::Aes256Enc;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use ring::aead::{AES_256_GCM, LessSafeKey, Nonce, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use super::{KEY_LEN, NONCE_LEN};

/// Bytes of the nonce that go into the key derivation; the rest is GCM's nonce.
const DERIVATION_NONCE_LEN: usize = 12;

/// A data key's XAES-256-GCM state, computed once per key: AES-256 under the key, expanded,
/// and the CMAC subkey K1. Both are wiped when dropped (`aes`'s `zeroize` feature for the
/// round keys).
#[derive(Clone)]
pub(super) struct Xaes {
    aes: Aes256Enc,
    k1: Zeroizing<[u8; 16]>,
}

impl Xaes {
    /// The state for `key`: K1 is L = AES-256(key, 0^128) doubled in GF(2^128) (shifted left
    /// one bit, 0x87 added to the last byte when the bit shifted out was set).
    pub(super) fn new(key: &[u8; KEY_LEN]) -> Xaes {
        let aes = Aes256Enc::new(key.into());
        let mut l = aes::Block::default();
        aes.encrypt_block(&mut l);
        let mut k1 = Zeroizing::new([0; 16]);
        for i in 0..16 {
            let carry = l.get(i + 1).map_or(0, |next| next >> 7);
            k1[i] = (l[i] << 1) | carry;
        }
        k1[15] ^= 0x87 * (l[0] >> 7);
        l.as_mut_slice().zeroize();
        Xaes { aes, k1 }
    }

    /// AES-256-GCM for one 24-byte nonce: the derived key Kx = AES-256(key, K1 ⊕ [0, 1, 'X',
    /// 0] ‖ N[..12]) ‖ AES-256(key, K1 ⊕ [0, 2, 'X', 0] ‖ N[..12]), and N[12..] as GCM's
    /// nonce. Kx is wiped here; the copy inside `ring`'s key is not (`ring` does not
    /// zeroize), and it opens that one record only.
    pub(super) fn cipher(&self, nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
        let (head, tail) = nonce.split_at(DERIVATION_NONCE_LEN);
        let mut blocks = [aes::Block::default(), aes::Block::default()];
        for (counter, block) in (1u8..).zip(blocks.iter_mut()) {
            block[..4].copy_from_slice(&[0, counter, b'X', 0]);
            block[4..].copy_from_slice(head);
            for (byte, k) in block.iter_mut().zip(self.k1.iter()) {
                *byte ^= k;
            }
        }
        self.aes.encrypt_blocks(&mut blocks);
        let mut derived = Zeroizing::new([0; 32]);
        derived[..16].copy_from_slice(&blocks[0]);
        derived[16..].copy_from_slice(&blocks[1]);
        for block in &mut blocks {
            block.as_mut_slice().zeroize();
        }
        let key =
            UnboundKey::new(&AES_256_GCM, derived.as_slice()).expect("a 32-byte AES-256-GCM key");
        let nonce = Nonce::try_assume_unique_for_key(tail).expect("a 12-byte GCM nonce");
        (LessSafeKey::new(key), nonce)
    }
}

#[cfg(test)]
mod tests {
    use ring::aead::Aad;
    use sha3::Shake128;
    use sha3::digest::{ExtendableOutput, Update, XofReader};

    use super::*;

    /// Seals `plaintext` with XAES-256-GCM and opens the result back; returns ciphertext and tag.
    fn seal_and_open(
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Vec<u8> {
        let xaes = Xaes::new(key);
        let (cipher, gcm_nonce) = xaes.cipher(nonce);
        let mut sealed = plaintext.to_vec();
        cipher
            .seal_in_place_append_tag(gcm_nonce, Aad::from(aad), &mut sealed)
            .unwrap();
        let (cipher, gcm_nonce) = xaes.cipher(nonce);
        let mut opened = sealed.clone();
        let opened = cipher
            .open_in_place(gcm_nonce, Aad::from(aad), &mut opened)
            .unwrap();
        assert_eq!(opened, plaintext);
        sealed
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The two test vectors of c2sp.org/XAES-256-GCM.
    #[test]
    fn c2sp_vectors() {
        let nonce = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        assert_eq!(
            hex(&seal_and_open(&[0x01; 32], nonce, b"XAES-256-GCM", b"")),
            "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"
        );
        assert_eq!(
            hex(&seal_and_open(
                &[0x03; 32],
                nonce,
                b"XAES-256-GCM",
                b"c2sp.org/XAES-256-GCM"
            )),
            "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"
        );
    }

    /// The spec's accumulated vector: 10,000 keys, nonces, plaintexts and associated data
    /// read from one SHAKE-128 stream, every ciphertext absorbed into a second one, whose
    /// first 32 bytes the spec gives.
    #[test]
    fn c2sp_accumulated_vector() {
        let mut source = Shake128::default().finalize_xof();
        let mut digest = Shake128::default();
        let mut read = |len: usize| {
            let mut bytes = vec![0; len];
            source.read(&mut bytes);
            bytes
        };
        for _ in 0..10_000 {
            let key: [u8; KEY_LEN] = read(KEY_LEN).try_into().unwrap();
            let nonce: [u8; NONCE_LEN] = read(NONCE_LEN).try_into().unwrap();
            let plaintext_len = read(1)[0];
            let plaintext = read(plaintext_len.into());
            let aad_len = read(1)[0];
            let aad = read(aad_len.into());
            digest.update(&seal_and_open(&key, &nonce, &plaintext, &aad));
        }
        let mut output = [0; 32];
        digest.finalize_xof().read(&mut output);
        assert_eq!(
            hex(&output),
            "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"
        );
    }
}
