//! The key file: the data key wrapped under a passphrase-derived key.
//!
//! `key.json` holds the Argon2id parameters and salt beside the wrap, so stronger parameters can
//! be chosen later without breaking old vaults. Unwrapping reads only this file: a wrong
//! passphrase is detected before the database is opened, so it changes nothing on disk.

use std::fs;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{random_bytes, DataKey};

pub const KEY_FILE: &str = "key.json";
const WRAP_AAD: &[u8] = b"engram/v1/key-wrap";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong passphrase (or {0} is damaged): nothing was changed")]
    WrongPassphrase(String),
    #[error("no engram vault in {0}: run `engram init` first (or pass --data-dir)")]
    NotInitialised(String),
    #[error("an engram vault already exists in {0}; use `engram passwd` to change its passphrase")]
    AlreadyInitialised(String),
    #[error("the key file {path} is unreadable: {why}")]
    BadKeyFile { path: String, why: String },
    #[error("could not write the key file {path}: {why}")]
    Write { path: String, why: String },
    #[error(transparent)]
    Crypto(#[from] super::CryptoError),
}

/// Argon2id cost, stored beside the wrap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes: about a quarter of a second here, and costly to guess at scale.
    fn default() -> Self {
        KdfParams { m_cost: 64 * 1024, t_cost: 3, p_cost: 1 }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    kdf: String,
    params: KdfParams,
    salt: String,
    nonce: String,
    wrapped_key: String,
}

fn derive_wrapping_key(passphrase: &[u8], salt: &[u8], p: KdfParams) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32)).map_err(|e| e.to_string())?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(passphrase, salt, out.as_mut()).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Creates `key.json` in `dir` with a fresh data key wrapped under `passphrase`.
pub fn create(dir: &Path, passphrase: &[u8], params: KdfParams) -> Result<DataKey, VaultError> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        return Err(VaultError::AlreadyInitialised(dir.display().to_string()));
    }
    let key = DataKey::generate()?;
    write_wrapped(dir, &key, passphrase, params)?;
    Ok(key)
}

/// Rewraps the data key under a new passphrase (the content is not re-encrypted).
pub fn rewrap(dir: &Path, key: &DataKey, new_passphrase: &[u8]) -> Result<(), VaultError> {
    let params = read_key_file(dir)?.params;
    write_wrapped(dir, key, new_passphrase, params)
}

pub fn exists(dir: &Path) -> bool {
    dir.join(KEY_FILE).exists()
}

/// Unwraps the data key. Reads `key.json` and nothing else.
pub fn unlock(dir: &Path, passphrase: &[u8]) -> Result<DataKey, VaultError> {
    let kf = read_key_file(dir)?;
    let path = dir.join(KEY_FILE).display().to_string();
    let bad = |why: &str| VaultError::BadKeyFile { path: path.clone(), why: why.to_string() };
    let salt = hex::decode(&kf.salt).map_err(|_| bad("salt is not hex"))?;
    let nonce = hex::decode(&kf.nonce).map_err(|_| bad("nonce is not hex"))?;
    let wrapped = hex::decode(&kf.wrapped_key).map_err(|_| bad("wrapped key is not hex"))?;
    if nonce.len() != 12 {
        return Err(bad("nonce has the wrong length"));
    }
    let wrapping = derive_wrapping_key(passphrase, &salt, kf.params).map_err(|e| bad(&e))?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref()).expect("32-byte key");
    let plain = Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &wrapped, aad: WRAP_AAD })
            .map_err(|_| VaultError::WrongPassphrase(path.clone()))?,
    );
    let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| bad("wrapped key has the wrong length"))?;
    Ok(DataKey::from_bytes(bytes))
}

fn read_key_file(dir: &Path) -> Result<KeyFile, VaultError> {
    let path = dir.join(KEY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VaultError::NotInitialised(dir.display().to_string()))
        }
        Err(e) => return Err(VaultError::BadKeyFile { path: path.display().to_string(), why: e.to_string() }),
    };
    let kf: KeyFile = serde_json::from_str(&text)
        .map_err(|e| VaultError::BadKeyFile { path: path.display().to_string(), why: e.to_string() })?;
    if kf.version != 1 || kf.kdf != "argon2id" {
        return Err(VaultError::BadKeyFile {
            path: path.display().to_string(),
            why: format!("unsupported key file version {} / kdf {}", kf.version, kf.kdf),
        });
    }
    Ok(kf)
}

fn write_wrapped(dir: &Path, key: &DataKey, passphrase: &[u8], params: KdfParams) -> Result<(), VaultError> {
    let path = dir.join(KEY_FILE);
    let werr = |why: String| VaultError::Write { path: path.display().to_string(), why };
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    random_bytes(&mut salt)?;
    random_bytes(&mut nonce)?;
    let wrapping = derive_wrapping_key(passphrase, &salt, params).map_err(werr)?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref()).expect("32-byte key");
    let wrapped = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.as_bytes(), aad: WRAP_AAD })
        .map_err(|_| werr("AES-GCM refused to wrap".into()))?;
    let kf = KeyFile {
        version: 1,
        kdf: "argon2id".into(),
        params,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        wrapped_key: hex::encode(wrapped),
    };
    let json = serde_json::to_string_pretty(&kf).expect("key file serialises");
    write_atomically(&path, json.as_bytes()).map_err(|e| werr(e.to_string()))
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file whole.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode_0600().open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            self.mode(0o600);
        }
        self
    }
}

mod hex {
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
        bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<Vec<u8>, ()> {
        if !s.len().is_multiple_of(2) {
            return Err(());
        }
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| ())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: these tests check the wrapping logic, not Argon2's cost.
    const FAST: KdfParams = KdfParams { m_cost: 1024, t_cost: 1, p_cost: 1 };

    #[test]
    fn unlock_with_right_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let key = create(dir.path(), b"correct horse", FAST).unwrap();
        let again = unlock(dir.path(), b"correct horse").unwrap();
        assert_eq!(key.as_bytes(), again.as_bytes());
    }

    #[test]
    fn wrong_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), b"correct horse", FAST).unwrap();
        assert!(matches!(unlock(dir.path(), b"wrong"), Err(VaultError::WrongPassphrase(_))));
    }

    #[test]
    fn rewrap_keeps_the_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = create(dir.path(), b"old", FAST).unwrap();
        rewrap(dir.path(), &key, b"new").unwrap();
        assert!(unlock(dir.path(), b"old").is_err());
        assert_eq!(unlock(dir.path(), b"new").unwrap().as_bytes(), key.as_bytes());
    }

    #[test]
    fn init_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), b"a", FAST).unwrap();
        assert!(matches!(create(dir.path(), b"a", FAST), Err(VaultError::AlreadyInitialised(_))));
    }

    #[test]
    fn damaged_key_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), b"a", FAST).unwrap();
        fs::write(dir.path().join(KEY_FILE), "{not json").unwrap();
        assert!(matches!(unlock(dir.path(), b"a"), Err(VaultError::BadKeyFile { .. })));
    }

    #[test]
    fn missing_vault_says_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = unlock(dir.path(), b"a").err().unwrap();
        assert!(err.to_string().contains("engram init"));
    }
}
