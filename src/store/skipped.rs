//! Files remembered as skipped: the extraction worker crashed, ran out of time or memory on
//! them, or they are damaged. Each is found by a keyed hash of its path, and the keyed hash of
//! its path, size and modified time (and the engram version whose readers failed on it) says
//! whether it is still as it was when it failed; its path and the reason are sealed. A
//! remembered file is not read again until it changes, or engram (its readers) does.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};
use crate::crypto::{CryptoError, Place};
use crate::extract::Skip;

/// A remembered skip, opened.
#[derive(Debug, Clone)]
pub struct SkipRecord {
    pub id: i64,
    pub path: PathBuf,
    pub skip: Skip,
}

/// What the store remembers of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    Nothing,
    /// It failed as it is now (same size and modified time): why.
    Unchanged(Skip),
    /// It failed, then changed: read it again.
    Changed,
}

/// The readers a failure is remembered against: a new engram reads every remembered file again.
const READERS: &str = env!("CARGO_PKG_VERSION");

fn stat_key(store: &Store, path: &[u8], size: i64, mtime: i64) -> [u8; 32] {
    stat_key_with(store, path, size, mtime, READERS)
}

fn stat_key_with(store: &Store, path: &[u8], size: i64, mtime: i64, readers: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(path.len() + 32 + readers.len());
    input.extend_from_slice(&(path.len() as u64).to_le_bytes());
    input.extend_from_slice(path);
    input.extend_from_slice(&size.to_le_bytes());
    input.extend_from_slice(&mtime.to_le_bytes());
    input.extend_from_slice(readers.as_bytes());
    store.sealer.keyed_hash("skipped-stat", &input)
}

fn path_key(store: &Store, path: &[u8]) -> [u8; 32] {
    store.sealer.keyed_hash("skipped-path", path)
}

impl Store {
    /// Whether `path` (its exact bytes) is remembered as skipped, and if so whether it is
    /// unchanged since. Compares keyed hashes; opens only the reason of an unchanged one.
    pub fn remembered_skip(&self, path: &[u8], size: i64, mtime: i64) -> Result<Remembered> {
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row("SELECT id, change_key, reason FROM skipped WHERE source_key = ?1", [&path_key(self, path)[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((id, change, reason)) = row else { return Ok(Remembered::Nothing) };
        if change != stat_key(self, path, size, mtime) {
            return Ok(Remembered::Changed);
        }
        // A reason that does not open (damaged, tampered with) is a lost note: read it again.
        Ok(self.open_reason(id, &reason).map_or(Remembered::Changed, Remembered::Unchanged))
    }

    /// Remembers that `path`, at this size and modified time, was skipped, and why (replacing
    /// what was remembered of it before).
    pub fn remember_skip(&self, path: &[u8], size: i64, mtime: i64, skip: &Skip) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let key = path_key(self, path);
        let id: i64 = match tx.query_row("SELECT id FROM skipped WHERE source_key = ?1", [&key[..]], |r| r.get(0)).optional()? {
            Some(id) => id,
            None => tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM skipped", [], |r| r.get(0))?,
        };
        let place = |column| Place { table: "skipped", column, row: id };
        let sealed_path = self.sealer.seal(place("path"), path)?;
        let reason = self.sealer.seal(place("reason"), &serde_json::to_vec(skip).expect("a skip serialises"))?;
        tx.execute(
            "INSERT INTO skipped (id, source_key, change_key, path, reason) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET change_key = ?3, path = ?4, reason = ?5",
            params![id, &key[..], &stat_key(self, path, size, mtime)[..], sealed_path, reason],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets what was remembered of `path`; true if there was something.
    pub fn forget_skip(&self, path: &[u8]) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM skipped WHERE source_key = ?1", [&path_key(self, path)[..]])? > 0)
    }

    /// Forgets these remembered skips by id. Returns how many went.
    pub fn forget_skips(&self, ids: &[i64]) -> Result<usize> {
        let tx = self.conn.unchecked_transaction()?;
        let mut n = 0;
        for id in ids {
            n += tx.execute("DELETE FROM skipped WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Every remembered skip, opened, in the order they were first remembered. A row that does
    /// not open is tampering (reported as such).
    pub fn remembered_skips(&self) -> Result<Vec<SkipRecord>> {
        self.skip_rows()?.into_iter().collect()
    }

    /// Every remembered skip that opens, and the ids of those that do not (damaged or tampered
    /// with: each is only a lost note that a file failed, which the caller may drop so the file
    /// is read again).
    pub fn remembered_skips_or_damaged(&self) -> Result<(Vec<SkipRecord>, Vec<i64>)> {
        let mut good = Vec::new();
        let mut damaged = Vec::new();
        for (id, row) in self.skip_ids()?.into_iter().zip(self.skip_rows()?) {
            match row {
                Ok(r) => good.push(r),
                Err(_) => damaged.push(id),
            }
        }
        Ok((good, damaged))
    }

    fn skip_ids(&self) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare("SELECT id FROM skipped ORDER BY id")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    fn skip_rows(&self) -> Result<Vec<Result<SkipRecord>>> {
        let mut stmt = self.conn.prepare("SELECT id, path, reason FROM skipped ORDER BY id")?;
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows
            .into_iter()
            .map(|(id, path, reason)| {
                let path = self.sealer.open(Place { table: "skipped", column: "path", row: id }, &path)?;
                Ok(SkipRecord { id, path: PathBuf::from(OsString::from_vec(path)), skip: self.open_reason(id, &reason)? })
            })
            .collect())
    }

    /// How many files are remembered as skipped.
    pub fn count_remembered_skips(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT count(*) FROM skipped", [], |r| r.get(0))?)
    }

    fn open_reason(&self, id: i64, sealed: &[u8]) -> Result<Skip> {
        let json = self.sealer.open(Place { table: "skipped", column: "reason", row: id }, sealed)?;
        Ok(serde_json::from_slice(&json).map_err(|_| CryptoError::Tamper(format!("skipped.reason row {id}")))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;

    #[test]
    fn a_skip_is_remembered_until_the_file_changes() {
        let (_d, s) = store();
        let path = b"/docs/bomb.pdf";
        assert_eq!(s.remembered_skip(path, 10, 100).unwrap(), Remembered::Nothing);
        s.remember_skip(path, 10, 100, &Skip::OutOfMemory).unwrap();
        assert_eq!(s.remembered_skip(path, 10, 100).unwrap(), Remembered::Unchanged(Skip::OutOfMemory));
        assert_eq!(s.remembered_skip(path, 11, 100).unwrap(), Remembered::Changed);
        assert_eq!(s.remembered_skip(path, 10, 101).unwrap(), Remembered::Changed);
        assert_eq!(s.remembered_skip(b"/docs/other.pdf", 10, 100).unwrap(), Remembered::Nothing);
        // Failing again at a new size replaces the row, keeping one per path.
        s.remember_skip(path, 11, 100, &Skip::Crashed("signal 11, SIGSEGV".into())).unwrap();
        assert_eq!(s.count_remembered_skips().unwrap(), 1);
        assert_eq!(s.remembered_skip(path, 11, 100).unwrap(), Remembered::Unchanged(Skip::Crashed("signal 11, SIGSEGV".into())));
        assert!(s.forget_skip(path).unwrap());
        assert_eq!(s.remembered_skip(path, 11, 100).unwrap(), Remembered::Nothing);
        assert!(!s.forget_skip(path).unwrap());
    }

    #[test]
    fn a_skip_remembered_by_another_engram_version_is_read_again() {
        let (_d, s) = store();
        s.remember_skip(b"/a.pdf", 1, 2, &Skip::Corrupt("damaged".into())).unwrap();
        let older = stat_key_with(&s, b"/a.pdf", 1, 2, "0.0.1");
        s.conn.execute("UPDATE skipped SET change_key = ?1", [&older[..]]).unwrap();
        assert_eq!(s.remembered_skip(b"/a.pdf", 1, 2).unwrap(), Remembered::Changed);
    }

    #[test]
    fn paths_and_reasons_are_sealed_and_listed() {
        let (_d, s) = store();
        let odd = b"/docs/caf\xe9-zqxsealedpath.pdf";
        s.remember_skip(odd, 1, 2, &Skip::TimedOut).unwrap();
        s.remember_skip(b"/docs/b.docx", 3, 4, &Skip::Corrupt("zip entry too large".into())).unwrap();
        let all = s.remembered_skips().unwrap();
        assert_eq!(all.len(), 2);
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(all[0].path.as_os_str().as_bytes(), odd);
        assert_eq!(all[0].skip, Skip::TimedOut);
        assert_eq!(all[1].skip, Skip::Corrupt("zip entry too large".into()));
        let raw: Vec<Vec<u8>> = s.conn.prepare("SELECT path FROM skipped").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
        assert!(raw.iter().all(|p| !p.windows(16).any(|w| w == b"zqxsealedpath.pd")), "a path is in the clear");
        assert_eq!(s.forget_skips(&[all[0].id]).unwrap(), 1);
        assert_eq!(s.count_remembered_skips().unwrap(), 1);
    }

    #[test]
    fn a_reason_moved_to_another_row_does_not_open() {
        let (_d, s) = store();
        s.remember_skip(b"/a.pdf", 1, 1, &Skip::TimedOut).unwrap();
        s.remember_skip(b"/b.pdf", 1, 1, &Skip::OutOfMemory).unwrap();
        s.conn.execute("UPDATE skipped SET reason = (SELECT reason FROM skipped WHERE id = 1) WHERE id = 2", []).unwrap();
        assert!(matches!(s.remembered_skips(), Err(crate::store::StoreError::Crypto(CryptoError::Tamper(_)))));
        let (good, damaged) = s.remembered_skips_or_damaged().unwrap();
        assert_eq!((good.len(), damaged), (1, vec![2]));
        // Looked up, it is read again rather than trusted or failing the add.
        assert_eq!(s.remembered_skip(b"/b.pdf", 1, 1).unwrap(), Remembered::Changed);
    }
}
