//! A tantivy [`Directory`] that seals every file it writes.
//!
//! Tantivy's files hold the index's terms, which are the user's words, so none may reach disk
//! in the clear. Each logical file is written whole as `NAME.sealed` (AES-256-GCM, the name
//! bound as associated data) through a temporary file and a rename; reads open and cache the
//! plaintext in memory. Segment files are write-once, so the cache never goes stale;
//! `atomic_read` (meta.json) always goes to disk so other processes' commits are seen.
//! Locks are OS file locks, released by the kernel if the process dies.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchCallbackList, WatchHandle, WritePtr,
};

use crate::crypto::vault::write_atomically;
use crate::crypto::Sealer;

#[derive(Clone)]
pub struct SealedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    sealer: Arc<Sealer>,
    cache: RwLock<HashMap<PathBuf, OwnedBytes>>,
    watchers: WatchCallbackList,
    /// The first file that failed its integrity check, so callers can report tampering
    /// instead of a generic index error.
    tampered: Mutex<Option<String>>,
}

impl std::fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedDirectory({})", self.inner.root.display())
    }
}

impl SealedDirectory {
    pub fn open(root: &Path, sealer: Arc<Sealer>) -> io::Result<SealedDirectory> {
        fs::create_dir_all(root)?;
        Ok(SealedDirectory {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                sealer,
                cache: RwLock::new(HashMap::new()),
                watchers: WatchCallbackList::default(),
                tampered: Mutex::new(None),
            }),
        })
    }

    /// The name of a file that failed to open, if any did.
    pub fn tampered(&self) -> Option<String> {
        self.inner.tampered.lock().ok().and_then(|t| t.clone())
    }

    fn disk_path(&self, path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_os_string();
        name.push(".sealed");
        self.inner.root.join(name)
    }

    fn name(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    fn read_sealed(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let sealed = match fs::read(self.disk_path(path)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_path_buf()))
            }
            Err(e) => return Err(OpenReadError::wrap_io_error(e, path.to_path_buf())),
        };
        self.inner.sealer.open_file(&Self::name(path), &sealed).map_err(|e| {
            if let Ok(mut t) = self.inner.tampered.lock() {
                t.get_or_insert_with(|| Self::name(path));
            }
            OpenReadError::wrap_io_error(io::Error::new(io::ErrorKind::InvalidData, e.to_string()), path.to_path_buf())
        })
    }

    fn write_sealed(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = self
            .inner
            .sealer
            .seal_file(&Self::name(path), data)
            .map_err(|e| io::Error::other(e.to_string()))?;
        write_atomically(&self.disk_path(path), &sealed)
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if let Some(bytes) = self.inner.cache.read().ok().and_then(|c| c.get(path).cloned()) {
            return Ok(Arc::new(bytes));
        }
        let bytes = OwnedBytes::new(self.read_sealed(path)?);
        if let Ok(mut c) = self.inner.cache.write() {
            c.insert(path.to_path_buf(), bytes.clone());
        }
        Ok(Arc::new(bytes))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if let Ok(mut c) = self.inner.cache.write() {
            c.remove(path);
        }
        match fs::remove_file(self.disk_path(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DeleteError::FileDoesNotExist(path.to_path_buf())),
            Err(e) => Err(DeleteError::IoError { io_error: Arc::new(e), filepath: path.to_path_buf() }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        if self.inner.cache.read().map(|c| c.contains_key(path)).unwrap_or(false) {
            return Ok(true);
        }
        Ok(self.disk_path(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.exists(path).unwrap_or(false) {
            return Err(OpenWriteError::FileAlreadyExists(path.to_path_buf()));
        }
        let writer = SealedWriter { dir: self.clone(), path: path.to_path_buf(), buf: Vec::new() };
        Ok(io::BufWriter::new(Box::new(writer)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.read_sealed(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_sealed(path, data)?;
        if let Ok(mut c) = self.inner.cache.write() {
            c.remove(path);
        }
        if path == Path::new("meta.json") {
            drop(self.inner.watchers.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        fs::File::open(&self.inner.root)?.sync_all()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let path = self.inner.root.join(&lock.filepath);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::IoError(Arc::new(e)))?;
        if lock.is_blocking {
            file.lock().map_err(|e| LockError::IoError(Arc::new(e)))?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Err(LockError::LockBusy),
                Err(fs::TryLockError::Error(e)) => return Err(LockError::IoError(Arc::new(e))),
            }
        }
        Ok(DirectoryLock::from(Box::new(file)))
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.inner.watchers.subscribe(callback))
    }
}

/// Buffers a whole file, then seals and writes it on terminate.
struct SealedWriter {
    dir: SealedDirectory,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Write for SealedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealedWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(&mut self.buf);
        self.dir.write_sealed(&self.path, &data)?;
        if let Ok(mut c) = self.dir.inner.cache.write() {
            c.insert(self.path.clone(), OwnedBytes::new(data));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn dir() -> (tempfile::TempDir, SealedDirectory) {
        let t = tempfile::tempdir().unwrap();
        let sealer = Arc::new(Sealer::new(&DataKey::generate().unwrap()));
        let d = SealedDirectory::open(t.path(), sealer).unwrap();
        (t, d)
    }

    #[test]
    fn written_files_are_sealed_on_disk_and_read_back() {
        let (t, d) = dir();
        let mut w = d.open_write(Path::new("seg.idx")).unwrap();
        w.write_all(b"plaintext-canary-words").unwrap();
        w.terminate().unwrap();
        let on_disk = fs::read(t.path().join("seg.idx.sealed")).unwrap();
        assert!(!on_disk.windows(9).any(|x| x == b"plaintext"));
        assert_eq!(d.open_read(Path::new("seg.idx")).unwrap().read_bytes().unwrap().as_slice(), b"plaintext-canary-words");
    }

    #[test]
    fn atomic_files_round_trip() {
        let (_t, d) = dir();
        d.atomic_write(Path::new("meta.json"), b"{\"a\":1}").unwrap();
        assert_eq!(d.atomic_read(Path::new("meta.json")).unwrap(), b"{\"a\":1}");
        d.atomic_write(Path::new("meta.json"), b"{\"a\":2}").unwrap();
        assert_eq!(d.atomic_read(Path::new("meta.json")).unwrap(), b"{\"a\":2}");
    }

    #[test]
    fn flipped_byte_is_reported_as_tampering() {
        let (t, d) = dir();
        d.atomic_write(Path::new("meta.json"), b"{}").unwrap();
        let p = t.path().join("meta.json.sealed");
        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&p, bytes).unwrap();
        assert!(d.atomic_read(Path::new("meta.json")).is_err());
        assert_eq!(d.tampered().as_deref(), Some("meta.json"));
    }

    #[test]
    fn write_once() {
        let (_t, d) = dir();
        let w = d.open_write(Path::new("a")).unwrap();
        w.terminate().unwrap();
        assert!(matches!(d.open_write(Path::new("a")), Err(OpenWriteError::FileAlreadyExists(_))));
        d.delete(Path::new("a")).unwrap();
        assert!(!d.exists(Path::new("a")).unwrap());
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let (_t, d) = dir();
        let lock = Lock { filepath: PathBuf::from(".writer.lock"), is_blocking: false };
        let held = d.acquire_lock(&lock).unwrap();
        assert!(matches!(d.acquire_lock(&lock), Err(LockError::LockBusy)));
        drop(held);
        assert!(d.acquire_lock(&lock).is_ok());
    }
}
