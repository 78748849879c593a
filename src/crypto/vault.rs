//! The key file: the data key wrapped under a passphrase-derived key.
//!
//! `key.json` holds the Argon2id parameters and salt beside the wrap, so stronger parameters can
//! be chosen later without breaking old vaults. Unwrapping reads only this file: a wrong
//! passphrase is detected before the database is opened, so it changes nothing on disk.
//!
//! An optional second wrap of the same data key, under a key derived (Argon2id too) from a
//! *recovery code* shown once at `engram init`, lets a forgotten passphrase be replaced
//! (`engram passwd --recover`). The code is 140 random bits written as 28 letters and digits;
//! engram never stores it. A key file with a recovery wrap is version 2, so an older engram
//! (which would drop the wrap when it rewrites the file) refuses it instead; version 1 files,
//! without one, still open.

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
const RECOVERY_AAD: &[u8] = b"engram/v1/key-wrap/recovery";
/// Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand is not misread.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a recovery code: 28 × 5 = 140 random bits.
const CODE_LEN: usize = 28;
/// Characters between dashes when a code is shown.
const CODE_GROUP: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong passphrase (or {0} is damaged): nothing was changed")]
    WrongPassphrase(String),
    #[error("wrong recovery code (or {0} is damaged): nothing was changed")]
    WrongRecoveryCode(String),
    #[error("the store in {0} has no recovery code (it was made with --no-recovery-code or before engram had them); only the passphrase opens it")]
    NoRecoveryCode(String),
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
    /// The data key wrapped again under the recovery code (version 2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery: Option<Wrap>,
}

/// One wrap of the data key: Argon2id parameters, salt, nonce and the AES-GCM ciphertext, hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrap {
    params: KdfParams,
    salt: String,
    nonce: String,
    wrapped_key: String,
}

/// A recovery code, as shown to the user: `XXXX-XXXX-…`. Wiped when dropped; never written
/// to disk or logged by engram.
pub struct RecoveryCode(Zeroizing<String>);

impl RecoveryCode {
    fn generate() -> Result<RecoveryCode, VaultError> {
        let mut random = Zeroizing::new([0u8; CODE_LEN]);
        random_bytes(random.as_mut())?;
        let mut shown = Zeroizing::new(String::with_capacity(CODE_LEN + CODE_LEN / CODE_GROUP));
        for (i, b) in random.iter().enumerate() {
            if i > 0 && i % CODE_GROUP == 0 {
                shown.push('-');
            }
            // The low five bits of each random byte: uniform over the 32 symbols.
            shown.push(CODE_ALPHABET[(b & 31) as usize] as char);
        }
        Ok(RecoveryCode(shown))
    }

    /// The code grouped for reading, e.g. `7K3M-Q9XD-…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(…)")
    }
}

/// A typed recovery code in its canonical form (28 symbols, upper case), or `None` when it
/// cannot be one. Spaces, dashes and case are ignored; O reads as 0 and I or L as 1.
fn canonical_code(typed: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_LEN));
    for c in typed.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) || out.len() == CODE_LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
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
    refuse_existing(dir)?;
    let key = DataKey::generate()?;
    let kf = key_file(wrap(&key, passphrase, params, WRAP_AAD)?, None);
    write_key_file(dir, &kf)?;
    Ok(key)
}

/// Like [`create`], with a second wrap under a new recovery code, which is returned to be
/// shown once.
pub fn create_with_recovery(dir: &Path, passphrase: &[u8], params: KdfParams) -> Result<(DataKey, RecoveryCode), VaultError> {
    refuse_existing(dir)?;
    let key = DataKey::generate()?;
    let code = RecoveryCode::generate()?;
    let canonical = canonical_code(code.as_str()).expect("a generated code is canonical");
    let recovery = wrap(&key, canonical.as_bytes(), params, RECOVERY_AAD)?;
    let kf = key_file(wrap(&key, passphrase, params, WRAP_AAD)?, Some(recovery));
    write_key_file(dir, &kf)?;
    Ok((key, code))
}

/// Replaces the recovery wrap (or adds one) with a new code, which is returned to be shown
/// once; an earlier code stops working.
pub fn new_recovery_code(dir: &Path, key: &DataKey) -> Result<RecoveryCode, VaultError> {
    let mut kf = read_key_file(dir)?;
    let code = RecoveryCode::generate()?;
    let canonical = canonical_code(code.as_str()).expect("a generated code is canonical");
    kf.recovery = Some(wrap(key, canonical.as_bytes(), kf.params, RECOVERY_AAD)?);
    kf.version = 2;
    write_key_file(dir, &kf)?;
    Ok(code)
}

/// Whether the key file holds a recovery wrap.
pub fn has_recovery(dir: &Path) -> Result<bool, VaultError> {
    Ok(read_key_file(dir)?.recovery.is_some())
}

fn refuse_existing(dir: &Path) -> Result<(), VaultError> {
    if dir.join(KEY_FILE).exists() {
        return Err(VaultError::AlreadyInitialised(dir.display().to_string()));
    }
    Ok(())
}

/// Rewraps the data key under a new passphrase (the content is not re-encrypted). A recovery
/// wrap is kept as it is: it wraps the same data key, so the code still opens the store.
pub fn rewrap(dir: &Path, key: &DataKey, new_passphrase: &[u8]) -> Result<(), VaultError> {
    let kf = read_key_file(dir)?;
    let fresh = key_file(wrap(key, new_passphrase, kf.params, WRAP_AAD)?, kf.recovery);
    write_key_file(dir, &fresh)
}

pub fn exists(dir: &Path) -> bool {
    dir.join(KEY_FILE).exists()
}

/// Unwraps the data key. Reads `key.json` and nothing else.
pub fn unlock(dir: &Path, passphrase: &[u8]) -> Result<DataKey, VaultError> {
    let kf = read_key_file(dir)?;
    let path = dir.join(KEY_FILE).display().to_string();
    let main = Wrap { params: kf.params, salt: kf.salt, nonce: kf.nonce, wrapped_key: kf.wrapped_key };
    unwrap(&main, passphrase, WRAP_AAD, &path)?.ok_or(VaultError::WrongPassphrase(path))
}

/// Unwraps the data key with a recovery code as typed (spaces, dashes and case ignored).
/// Reads `key.json` and nothing else.
pub fn unlock_with_recovery(dir: &Path, typed_code: &str) -> Result<DataKey, VaultError> {
    let kf = read_key_file(dir)?;
    let path = dir.join(KEY_FILE).display().to_string();
    let Some(recovery) = &kf.recovery else { return Err(VaultError::NoRecoveryCode(dir.display().to_string())) };
    let Some(code) = canonical_code(typed_code) else { return Err(VaultError::WrongRecoveryCode(path)) };
    unwrap(recovery, code.as_bytes(), RECOVERY_AAD, &path)?.ok_or(VaultError::WrongRecoveryCode(path))
}

/// The data key from one wrap, `None` when `secret` is not the one it was wrapped under.
fn unwrap(w: &Wrap, secret: &[u8], aad: &[u8], path: &str) -> Result<Option<DataKey>, VaultError> {
    let bad = |why: &str| VaultError::BadKeyFile { path: path.to_string(), why: why.to_string() };
    let salt = hex::decode(&w.salt).map_err(|_| bad("salt is not hex"))?;
    let nonce = hex::decode(&w.nonce).map_err(|_| bad("nonce is not hex"))?;
    let wrapped = hex::decode(&w.wrapped_key).map_err(|_| bad("wrapped key is not hex"))?;
    if nonce.len() != 12 {
        return Err(bad("nonce has the wrong length"));
    }
    let wrapping = derive_wrapping_key(secret, &salt, w.params).map_err(|e| bad(&e))?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref()).expect("32-byte key");
    let Ok(plain) = cipher.decrypt(Nonce::from_slice(&nonce), Payload { msg: &wrapped, aad }) else { return Ok(None) };
    let plain = Zeroizing::new(plain);
    let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| bad("wrapped key has the wrong length"))?;
    Ok(Some(DataKey::from_bytes(bytes)))
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
    // Version 1 has no recovery wrap; version 2 may have one.
    let version_ok = kf.version == 2 || (kf.version == 1 && kf.recovery.is_none());
    if !version_ok || kf.kdf != "argon2id" {
        return Err(VaultError::BadKeyFile {
            path: path.display().to_string(),
            why: format!("unsupported key file version {} / kdf {}", kf.version, kf.kdf),
        });
    }
    Ok(kf)
}

/// Wraps the data key under a key derived from `secret`, with a fresh salt and nonce.
fn wrap(key: &DataKey, secret: &[u8], params: KdfParams, aad: &[u8]) -> Result<Wrap, VaultError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    random_bytes(&mut salt)?;
    random_bytes(&mut nonce)?;
    let wrapping = derive_wrapping_key(secret, &salt, params).map_err(|why| VaultError::Write { path: KEY_FILE.into(), why })?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref()).expect("32-byte key");
    let wrapped = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.as_bytes(), aad })
        .map_err(|_| VaultError::Write { path: KEY_FILE.into(), why: "AES-GCM refused to wrap".into() })?;
    Ok(Wrap { params, salt: hex::encode(salt), nonce: hex::encode(nonce), wrapped_key: hex::encode(wrapped) })
}

/// The key file for a passphrase wrap and an optional recovery wrap; version 2 when there is one.
fn key_file(main: Wrap, recovery: Option<Wrap>) -> KeyFile {
    KeyFile {
        version: if recovery.is_some() { 2 } else { 1 },
        kdf: "argon2id".into(),
        params: main.params,
        salt: main.salt,
        nonce: main.nonce,
        wrapped_key: main.wrapped_key,
        recovery,
    }
}

fn write_key_file(dir: &Path, kf: &KeyFile) -> Result<(), VaultError> {
    let path = dir.join(KEY_FILE);
    let json = serde_json::to_string_pretty(kf).expect("key file serialises");
    write_atomically(&path, json.as_bytes()).map_err(|e| VaultError::Write { path: path.display().to_string(), why: e.to_string() })
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
    fn recovery_code_opens_the_same_key_and_survives_a_passphrase_change() {
        let dir = tempfile::tempdir().unwrap();
        let (key, code) = create_with_recovery(dir.path(), b"pass", FAST).unwrap();
        let shown = code.as_str().to_string();
        assert_eq!(shown.len(), CODE_LEN + CODE_LEN / CODE_GROUP - 1, "{shown}");
        assert_eq!(unlock_with_recovery(dir.path(), &shown).unwrap().as_bytes(), key.as_bytes());
        // Typed loosely: lower case, spaces instead of dashes, O for 0.
        let loose = shown.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(unlock_with_recovery(dir.path(), &loose).unwrap().as_bytes(), key.as_bytes());
        rewrap(dir.path(), &key, b"new pass").unwrap();
        assert_eq!(unlock(dir.path(), b"new pass").unwrap().as_bytes(), key.as_bytes());
        assert_eq!(unlock_with_recovery(dir.path(), &shown).unwrap().as_bytes(), key.as_bytes());
        let text = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(!text.contains(&shown) && !text.contains(&shown.replace('-', "")), "the code is never stored");
        assert!(text.contains("\"version\": 2"), "{text}");
    }

    #[test]
    fn wrong_or_malformed_recovery_code_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, code) = create_with_recovery(dir.path(), b"pass", FAST).unwrap();
        let mut wrong = code.as_str().to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'Z' { 'Y' } else { 'Z' });
        assert!(matches!(unlock_with_recovery(dir.path(), &wrong), Err(VaultError::WrongRecoveryCode(_))));
        assert!(matches!(unlock_with_recovery(dir.path(), "too-short"), Err(VaultError::WrongRecoveryCode(_))));
        assert!(matches!(unlock_with_recovery(dir.path(), &format!("{}U", code.as_str())), Err(VaultError::WrongRecoveryCode(_))));
        // The passphrase is not a recovery code, nor the code a passphrase.
        assert!(matches!(unlock(dir.path(), code.as_str().as_bytes()), Err(VaultError::WrongPassphrase(_))));
    }

    #[test]
    fn codes_are_random_and_use_the_whole_alphabet_only() {
        let a = RecoveryCode::generate().unwrap();
        let b = RecoveryCode::generate().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert!(canonical_code(a.as_str()).unwrap().bytes().all(|c| CODE_ALPHABET.contains(&c)));
        assert_eq!(format!("{a:?}"), "RecoveryCode(…)");
    }

    #[test]
    fn a_version_1_key_file_still_opens_and_has_no_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let key = create(dir.path(), b"pass", FAST).unwrap();
        let text = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(text.contains("\"version\": 1") && !text.contains("recovery"), "{text}");
        assert_eq!(unlock(dir.path(), b"pass").unwrap().as_bytes(), key.as_bytes());
        assert!(!has_recovery(dir.path()).unwrap());
        assert!(matches!(unlock_with_recovery(dir.path(), "0000-0000-0000-0000-0000-0000-0000"), Err(VaultError::NoRecoveryCode(_))));
        // A code can be added later; the passphrase still opens the store.
        let code = new_recovery_code(dir.path(), &key).unwrap();
        assert_eq!(unlock_with_recovery(dir.path(), code.as_str()).unwrap().as_bytes(), key.as_bytes());
        assert_eq!(unlock(dir.path(), b"pass").unwrap().as_bytes(), key.as_bytes());
    }

    #[test]
    fn missing_vault_says_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = unlock(dir.path(), b"a").err().unwrap();
        assert!(err.to_string().contains("engram init"));
    }
}
