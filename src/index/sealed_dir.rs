//! A tantivy [`Directory`] that seals every file it writes.
//!
//! Tantivy's files hold the index's terms, which are the user's words, so none may reach disk
//! in the clear. Each logical file is written as `NAME.sealed`, sealed page by page as tantivy
//! writes it ([`pages`]: a merged segment is never held whole in memory), through a temporary
//! file and a rename. Postings, positions and the document store are read by the page, through
//! a bounded cache of opened pages, so memory does not grow with the index; the files tantivy
//! reads whole whenever it opens a segment are opened once and kept. Segment files are
//! write-once, so nothing kept goes stale; `atomic_read` (meta.json) always goes to disk so
//! other processes' commits are seen. Locks are OS file locks, released by the kernel if the
//! process dies. Files sealed whole (stores written before pages) are still read.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;
use zeroize::Zeroizing;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchCallbackList, WatchHandle, WritePtr,
};
use tantivy::HasLen;

use crate::crypto::pages::{self, PagedFile, SealedFileWriter, PAGE};
use crate::crypto::vault::write_atomically;
use crate::crypto::Sealer;

/// Opened pages kept for the next search: 32 MiB.
const PAGE_CACHE: usize = 512;

/// Tantivy reads its postings (`idx`), positions (`pos`) and stored documents (`store`) by the
/// range a query needs; every other file it reads whole each time it opens a segment.
fn read_by_page(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("idx" | "pos" | "store"))
}

#[derive(Clone)]
pub struct SealedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    sealer: Arc<Sealer>,
    /// Files read whole, opened once.
    whole: RwLock<HashMap<PathBuf, OwnedBytes>>,
    /// Opened pages of the files read by the page, by (file id, page).
    pages: Mutex<LruCache<(u128, u64), Arc<Vec<u8>>>>,
    watchers: WatchCallbackList,
    /// The first file that failed its integrity check, so callers can report tampering
    /// instead of a generic index error.
    tampered: Mutex<Option<String>>,
}

impl Inner {
    /// Remembers `name` if `e` is a failed integrity check (the first such file only).
    fn note_damage(&self, name: &str, e: &io::Error) {
        if e.kind() == io::ErrorKind::InvalidData {
            if let Ok(mut t) = self.tampered.lock() {
                t.get_or_insert_with(|| name.to_string());
            }
        }
    }
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
                whole: RwLock::new(HashMap::new()),
                pages: Mutex::new(LruCache::new(NonZeroUsize::new(PAGE_CACHE).expect("non-zero"))),
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

    fn note_damage(&self, path: &Path, e: io::Error) -> OpenReadError {
        self.inner.note_damage(&Self::name(path), &e);
        OpenReadError::wrap_io_error(e, path.to_path_buf())
    }

    /// Opens a file as it is on disk: sealed whole (plaintext) or by the page.
    fn open_sealed(&self, path: &Path) -> Result<Opened, OpenReadError> {
        let file = match fs::File::open(self.disk_path(path)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_path_buf()))
            }
            Err(e) => return Err(OpenReadError::wrap_io_error(e, path.to_path_buf())),
        };
        open_file(file, &Self::name(path), &self.inner.sealer).map_err(|e| self.note_damage(path, e))
    }

    fn read_sealed(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        match self.open_sealed(path)? {
            Opened::Whole(plain) => Ok(plain),
            Opened::Paged(file) => file.read_all(&self.inner.sealer).map_err(|e| self.note_damage(path, e)),
        }
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

enum Opened {
    Whole(Vec<u8>),
    Paged(PagedFile),
}

fn open_file(mut file: fs::File, name: &str, sealer: &Sealer) -> io::Result<Opened> {
    let mut first = [0u8; 1];
    file.read_exact_at(&mut first, 0).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::InvalidData, format!("the index file {name} is empty")),
        _ => e,
    })?;
    if pages::is_paged(first[0]) {
        return Ok(Opened::Paged(PagedFile::open(file, name)?));
    }
    let mut sealed = Vec::new();
    io::Read::read_to_end(&mut file, &mut sealed)?;
    sealer.open_file(name, &sealed).map(Opened::Whole).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Checks that the index file `path`, named `name` in the index, opens whole, a page at a time;
/// returns its size on disk.
pub fn verify_file(path: &Path, name: &str, sealer: &Sealer) -> io::Result<u64> {
    let file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    match open_file(file, name, sealer)? {
        Opened::Whole(plain) => drop(Zeroizing::new(plain)),
        Opened::Paged(paged) => {
            for i in 0..paged.pages() {
                drop(Zeroizing::new(paged.page(sealer, i)?));
            }
        }
    }
    Ok(size)
}

/// A file read by the page, through the directory's cache.
struct PagedHandle {
    inner: Arc<Inner>,
    file: PagedFile,
}

impl std::fmt::Debug for PagedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PagedHandle({})", self.file.name())
    }
}

impl HasLen for PagedHandle {
    fn len(&self) -> usize {
        self.file.len() as usize
    }
}

impl PagedHandle {
    fn page(&self, i: u64) -> io::Result<Arc<Vec<u8>>> {
        let key = (self.file.id(), i);
        if let Some(page) = self.inner.pages.lock().ok().and_then(|mut c| c.get(&key).cloned()) {
            return Ok(page);
        }
        let page = Arc::new(self.file.page(&self.inner.sealer, i).inspect_err(|e| self.inner.note_damage(self.file.name(), e))?);
        if let Ok(mut c) = self.inner.pages.lock() {
            c.put(key, page.clone());
        }
        Ok(page)
    }
}

impl FileHandle for PagedHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let mut out = Vec::with_capacity(range.len());
        let mut at = range.start;
        while at < range.end {
            let i = at / PAGE;
            let page = self.page(i as u64)?;
            let from = at - i * PAGE;
            let to = (range.end - i * PAGE).min(page.len());
            if from >= to {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of an index file"));
            }
            out.extend_from_slice(&page[from..to]);
            at += to - from;
        }
        Ok(OwnedBytes::new(out))
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if let Some(bytes) = self.inner.whole.read().ok().and_then(|c| c.get(path).cloned()) {
            return Ok(Arc::new(bytes));
        }
        let bytes = match self.open_sealed(path)? {
            Opened::Paged(file) if read_by_page(path) => {
                return Ok(Arc::new(PagedHandle { inner: self.inner.clone(), file }));
            }
            Opened::Paged(file) => file.read_all(&self.inner.sealer).map_err(|e| self.note_damage(path, e))?,
            Opened::Whole(plain) => plain,
        };
        let bytes = OwnedBytes::new(bytes);
        if let Ok(mut c) = self.inner.whole.write() {
            c.insert(path.to_path_buf(), bytes.clone());
        }
        Ok(Arc::new(bytes))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if let Ok(mut c) = self.inner.whole.write() {
            c.remove(path);
        }
        match fs::remove_file(self.disk_path(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DeleteError::FileDoesNotExist(path.to_path_buf())),
            Err(e) => Err(DeleteError::IoError { io_error: Arc::new(e), filepath: path.to_path_buf() }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        if self.inner.whole.read().map(|c| c.contains_key(path)).unwrap_or(false) {
            return Ok(true);
        }
        Ok(self.disk_path(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.exists(path).unwrap_or(false) {
            return Err(OpenWriteError::FileAlreadyExists(path.to_path_buf()));
        }
        let writer = SealedFileWriter::create(self.inner.sealer.clone(), &Self::name(path), &self.disk_path(path))
            .map_err(|e| OpenWriteError::wrap_io_error(e, path.to_path_buf()))?;
        Ok(io::BufWriter::new(Box::new(writer)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.read_sealed(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_sealed(path, data)?;
        if let Ok(mut c) = self.inner.whole.write() {
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

/// Tantivy's writes are sealed page by page as they stream and put in place on terminate.
impl TerminatingWrite for SealedFileWriter<Arc<Sealer>> {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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

    fn write(d: &SealedDirectory, name: &str, data: &[u8]) {
        let mut w = d.open_write(Path::new(name)).unwrap();
        for part in data.chunks(10_000) {
            w.write_all(part).unwrap();
        }
        w.terminate().unwrap();
    }

    #[test]
    fn a_large_file_is_read_by_the_page_and_its_ranges_cross_pages() {
        let (t, d) = dir();
        let data: Vec<u8> = (0..3 * PAGE + 999).map(|i| (i % 253) as u8).collect();
        write(&d, "seg.pos", &data);
        write(&d, "seg.term", &data);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2, "no temporary file is left");
        let paged = d.get_file_handle(Path::new("seg.pos")).unwrap();
        assert_eq!(paged.len(), data.len());
        for range in [0..1, PAGE - 3..PAGE + 3, 5..3 * PAGE + 999, 2 * PAGE..3 * PAGE, 3 * PAGE + 998..3 * PAGE + 999, 7..7] {
            assert_eq!(paged.read_bytes(range.clone()).unwrap().as_slice(), &data[range]);
        }
        assert!(paged.read_bytes(0..data.len() + 1).is_err());
        // Read whole and kept: the same bytes.
        assert_eq!(d.open_read(Path::new("seg.term")).unwrap().read_bytes().unwrap().as_slice(), &data[..]);
        assert!(d.inner.whole.read().unwrap().contains_key(Path::new("seg.term")));
        assert!(!d.inner.whole.read().unwrap().contains_key(Path::new("seg.pos")));
    }

    #[test]
    fn a_changed_page_is_reported_as_tampering_when_read() {
        let (t, d) = dir();
        write(&d, "seg.idx", &vec![1u8; 2 * PAGE]);
        let p = t.path().join("seg.idx.sealed");
        let mut bytes = fs::read(&p).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 1;
        fs::write(&p, bytes).unwrap();
        let handle = d.get_file_handle(Path::new("seg.idx")).unwrap();
        assert_eq!(handle.read_bytes(0..10).unwrap().as_slice(), &[1u8; 10]);
        assert_eq!(d.tampered(), None);
        assert_eq!(handle.read_bytes(2 * PAGE - 10..2 * PAGE).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(d.tampered().as_deref(), Some("seg.idx"));
        assert_eq!(verify_file(&p, "seg.idx", &d.inner.sealer).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_file_sealed_whole_by_an_older_version_still_reads() {
        let (t, d) = dir();
        let sealed = d.inner.sealer.seal_file("old.idx", b"older words").unwrap();
        fs::write(t.path().join("old.idx.sealed"), &sealed).unwrap();
        let handle = d.get_file_handle(Path::new("old.idx")).unwrap();
        assert_eq!(handle.read_bytes(6..11).unwrap().as_slice(), b"words");
        assert_eq!(verify_file(&t.path().join("old.idx.sealed"), "old.idx", &d.inner.sealer).unwrap(), sealed.len() as u64);
        assert!(verify_file(&t.path().join("old.idx.sealed"), "other.idx", &d.inner.sealer).is_err());
    }

    #[test]
    fn an_unfinished_file_leaves_nothing_behind() {
        let (t, d) = dir();
        let mut w = d.open_write(Path::new("seg.store")).unwrap();
        w.write_all(&[3u8; 3 * PAGE]).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
        assert!(!d.exists(Path::new("seg.store")).unwrap());
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
