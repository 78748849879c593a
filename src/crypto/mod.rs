//! Sealing: everything engram writes about the user's content goes through here.
//!
//! Why envelope encryption: a random 256-bit *data key* seals every value, and only that key is
//! wrapped by a key derived from the passphrase (Argon2id, see [`vault`]). Changing the passphrase
//! rewraps 32 bytes instead of re-encrypting the store, and a weak passphrase never becomes the
//! key that touches content directly.
//!
//! Each sealed value is `version ‖ nonce ‖ AES-256-GCM(ciphertext ‖ tag)` with a fresh random
//! nonce and the value's place (table, column, row) as associated data, so a sealed value copied
//! into another row or column fails to open. A failed open is always [`CryptoError::Tamper`]:
//! never content, never a panic.
//!
//! Not for: deciding *what* to seal (the store and index do that) or where keys come from
//! (the vault does).

pub mod locked;
pub mod pages;
pub mod vault;

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use self::locked::Locked;

const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed data failed its integrity check ({0}): it was modified or damaged on disk")]
    Tamper(String),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Fills `buf` from the OS random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// The 256-bit key that seals all content: on a locked page left out of core dumps, wiped
/// when dropped.
pub struct DataKey(Locked<[u8; 32]>);

impl DataKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Locked::new([0u8; 32]);
        random_bytes(key.as_mut())?;
        Ok(DataKey(key))
    }

    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let key = DataKey(Locked::new(bytes));
        bytes.zeroize();
        key
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Where a sealed value lives; bound into the seal as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row: i64,
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        format!("engram/v1/{}/{}/{}", self.table, self.column, self.row).into_bytes()
    }
}

/// Seals and opens values, and computes keyed hashes, with keys derived from one [`DataKey`].
/// The AES round keys and the hash key live on locked pages (see [`locked`]).
pub struct Sealer {
    cipher: Locked<Aes256Gcm>,
    hash_key: Locked<[u8; 32]>,
}

impl Sealer {
    pub fn new(data_key: &DataKey) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"engram"), data_key.as_bytes());
        let mut seal_key = Zeroizing::new([0u8; 32]);
        let mut hash_key = Locked::new([0u8; 32]);
        // Both outputs are 32 bytes, far below HKDF-SHA256's 8160-byte limit.
        hk.expand(b"seal v1", seal_key.as_mut()).expect("32-byte HKDF output");
        hk.expand(b"hash v1", hash_key.as_mut()).expect("32-byte HKDF output");
        let cipher = Locked::new(Aes256Gcm::new_from_slice(seal_key.as_ref()).expect("32-byte AES key"));
        Sealer { cipher, hash_key }
    }

    /// Seals a value stored in a database row.
    pub fn seal(&self, place: Place, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with_aad(&place.aad(), plain)
    }

    pub fn open(&self, place: Place, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.open_with_aad(&place.aad(), sealed)
            .map_err(|_| CryptoError::Tamper(format!("{}.{} row {}", place.table, place.column, place.row)))
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_str(&self, place: Place, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = self.open(place, sealed)?;
        String::from_utf8(bytes)
            .map_err(|_| CryptoError::Tamper(format!("{}.{} row {}", place.table, place.column, place.row)))
    }

    /// Seals a whole file; `name` is bound as associated data.
    pub fn seal_file(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.seal_with_aad(format!("engram/v1/file/{name}").as_bytes(), plain)
    }

    pub fn open_file(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.open_with_aad(format!("engram/v1/file/{name}").as_bytes(), sealed)
            .map_err(|_| CryptoError::Tamper(format!("file {name}")))
    }

    /// A keyed hash (HMAC-SHA256): equal inputs give equal hashes, but without the data key the
    /// hash says nothing about the input, not even for guessable inputs like common paths.
    pub fn keyed_hash(&self, domain: &str, input: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.hash_key.as_ref()).expect("any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    fn seal_with_aad(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let body = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| CryptoError::Random("AES-GCM refused to seal".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` (no version byte) where it lies: `buf` is left holding
    /// the plaintext, so a reader of many pages reuses one buffer.
    fn open_in_place(&self, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), ()> {
        if buf.len() < NONCE_LEN + TAG_LEN {
            return Err(());
        }
        let nonce: [u8; NONCE_LEN] = buf[..NONCE_LEN].try_into().expect("nonce length");
        buf.copy_within(NONCE_LEN.., 0);
        buf.truncate(buf.len() - NONCE_LEN);
        self.cipher.decrypt_in_place(Nonce::from_slice(&nonce), aad, buf).map_err(|_| ())
    }

    fn open_with_aad(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, ()> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEAL_VERSION {
            return Err(());
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&DataKey::generate().unwrap())
    }

    const HERE: Place = Place { table: "chunks", column: "body", row: 7 };

    #[test]
    fn round_trip() {
        let s = sealer();
        let sealed = s.seal(HERE, "租约 lease".as_bytes()).unwrap();
        assert_eq!(s.open_str(HERE, &sealed).unwrap(), "租约 lease");
    }

    #[test]
    fn fresh_nonce_each_seal() {
        let s = sealer();
        assert_ne!(s.seal(HERE, b"same").unwrap(), s.seal(HERE, b"same").unwrap());
    }

    #[test]
    fn ciphertext_hides_plaintext() {
        let s = sealer();
        let sealed = s.seal(HERE, b"canary-plaintext-canary").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
    }

    #[test]
    fn flipped_byte_is_tamper() {
        let s = sealer();
        let sealed = s.seal(HERE, b"hello").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(s.open(HERE, &bad), Err(CryptoError::Tamper(_))), "byte {i}");
        }
    }

    #[test]
    fn value_moved_to_other_row_fails() {
        let s = sealer();
        let sealed = s.seal(HERE, b"hello").unwrap();
        let other = Place { row: 8, ..HERE };
        assert!(s.open(other, &sealed).is_err());
        let other_col = Place { column: "title", ..HERE };
        assert!(s.open(other_col, &sealed).is_err());
    }

    #[test]
    fn truncated_or_empty_is_tamper() {
        let s = sealer();
        assert!(s.open(HERE, &[]).is_err());
        assert!(s.open(HERE, &[1, 2, 3]).is_err());
        let sealed = s.seal(HERE, b"hello").unwrap();
        assert!(s.open(HERE, &sealed[..sealed.len() - 1]).is_err());
    }

    #[test]
    fn other_key_fails() {
        let sealed = sealer().seal(HERE, b"hello").unwrap();
        assert!(sealer().open(HERE, &sealed).is_err());
    }

    #[test]
    fn keyed_hash_depends_on_key_and_domain() {
        let s = sealer();
        assert_eq!(s.keyed_hash("a", b"x"), s.keyed_hash("a", b"x"));
        assert_ne!(s.keyed_hash("a", b"x"), s.keyed_hash("b", b"x"));
        assert_ne!(s.keyed_hash("a", b"x"), sealer().keyed_hash("a", b"x"));
    }
}
