//! Files sealed page by page, so a reader decrypts only the part it needs and a writer never
//! holds a whole file in memory (a merged index segment can be gigabytes).
//!
//! Layout: `PAGED_VERSION ‖ file id (16 random bytes)`, then pages of [`PAGE`] plaintext bytes
//! (the last one shorter, possibly empty), each `nonce ‖ AES-256-GCM(ciphertext ‖ tag)`. A page's
//! associated data binds the file's name and id, the page's number and whether it is the last,
//! so pages cannot be reordered, moved between files or cut off the end unnoticed. The length
//! follows from the file's size, so nothing outside the pages needs authenticating.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::ops::Deref;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{random_bytes, Sealer, NONCE_LEN, TAG_LEN};

/// Plaintext bytes per page.
pub const PAGE: usize = 64 * 1024;
const PAGED_VERSION: u8 = 2;
const HEADER: usize = 1 + 16;
const SEALED_PAGE: u64 = (PAGE + NONCE_LEN + TAG_LEN) as u64;

fn aad(name: &str, id: &[u8; 16], page: u64, last: bool) -> Vec<u8> {
    let mut aad = format!("engram/v1/page/{name}/").into_bytes();
    aad.extend_from_slice(id);
    aad.extend_from_slice(&page.to_le_bytes());
    aad.push(last as u8);
    aad
}

fn damaged(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sealed data failed its integrity check (file {name}): it was modified or damaged on disk"))
}

/// Seals what is written to it page by page into `out`; [`PageWriter::finish`] seals the last page.
struct PageWriter<S: Deref<Target = Sealer>, W: Write> {
    sealer: S,
    name: String,
    id: [u8; 16],
    out: W,
    buf: Vec<u8>,
    page: u64,
}

impl<S: Deref<Target = Sealer>, W: Write> PageWriter<S, W> {
    fn new(sealer: S, name: &str, mut out: W) -> io::Result<Self> {
        let mut id = [0u8; 16];
        random_bytes(&mut id).map_err(io::Error::other)?;
        out.write_all(&[PAGED_VERSION])?;
        out.write_all(&id)?;
        Ok(PageWriter { sealer, name: name.to_string(), id, out, buf: Vec::with_capacity(PAGE), page: 0 })
    }

    /// A full page is sealed only when more data arrives: until then it may be the last.
    fn seal_page(&mut self, last: bool) -> io::Result<()> {
        let sealed = self
            .sealer
            .seal_with_aad(&aad(&self.name, &self.id, self.page, last), &self.buf)
            .map_err(io::Error::other)?;
        // seal_with_aad prefixes its one-byte version; a page's place in the file says that.
        self.out.write_all(&sealed[1..])?;
        self.buf.clear();
        self.page += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.seal_page(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<S: Deref<Target = Sealer>, W: Write> Write for PageWriter<S, W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            if self.buf.len() == PAGE {
                self.seal_page(false)?;
            }
            let take = (PAGE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sealed file written in place of `path`: its pages go to a temporary file beside it, which
/// [`SealedFileWriter::finish`] syncs and renames over `path`, so a crash leaves the old file or
/// the new one whole. Dropped unfinished, it removes the temporary file.
pub struct SealedFileWriter<S: Deref<Target = Sealer>> {
    pages: Option<PageWriter<S, BufWriter<File>>>,
    tmp: PathBuf,
    target: PathBuf,
}

impl<S: Deref<Target = Sealer>> SealedFileWriter<S> {
    /// Starts the file that will replace `path`, sealed under `name`.
    pub fn create(sealer: S, name: &str, path: &Path) -> io::Result<Self> {
        let tmp = path.with_extension("tmp");
        let file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        let pages = PageWriter::new(sealer, name, BufWriter::with_capacity(PAGE, file))?;
        Ok(SealedFileWriter { pages: Some(pages), tmp, target: path.to_path_buf() })
    }

    /// Seals the last page and puts the file in place (once; later calls do nothing).
    pub fn finish(&mut self) -> io::Result<()> {
        let Some(w) = self.pages.take() else { return Ok(()) };
        let file = w.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.target)
    }
}

impl<S: Deref<Target = Sealer>> Write for SealedFileWriter<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.pages {
            Some(w) => w.write(data),
            None => Err(io::Error::other("write after the sealed file was finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Deref<Target = Sealer>> Drop for SealedFileWriter<S> {
    fn drop(&mut self) {
        if self.pages.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reads a paged file's plaintext from start to end, a page in memory at a time.
pub struct PagedReader<'a> {
    file: PagedFile,
    sealer: &'a Sealer,
    page: Vec<u8>,
    at: usize,
    next: u64,
}

impl<'a> PagedReader<'a> {
    pub fn new(file: PagedFile, sealer: &'a Sealer) -> Self {
        PagedReader { file, sealer, page: Vec::new(), at: 0, next: 0 }
    }
}

impl Read for PagedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.page.len() {
            if self.next == self.file.pages() {
                return Ok(0);
            }
            self.file.page_into(self.sealer, self.next, &mut self.page)?;
            self.next += 1;
            self.at = 0;
        }
        let n = buf.len().min(self.page.len() - self.at);
        buf[..n].copy_from_slice(&self.page[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// An open paged file: its pages are read and opened one at a time.
#[derive(Debug)]
pub struct PagedFile {
    file: File,
    name: String,
    id: [u8; 16],
    len: u64,
    pages: u64,
}

impl PagedFile {
    /// Opens `file`, sealed under `name`; an impossible size or header is damage.
    pub fn open(file: File, name: &str) -> io::Result<PagedFile> {
        let size = file.metadata()?.len();
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, 0).map_err(|_| damaged(name))?;
        if header[0] != PAGED_VERSION {
            return Err(damaged(name));
        }
        let body = size - HEADER as u64;
        let (full, rest) = (body / SEALED_PAGE, body % SEALED_PAGE);
        let overhead = (NONCE_LEN + TAG_LEN) as u64;
        let (pages, len) = match rest {
            0 if full > 0 => (full, full * PAGE as u64),
            r if r >= overhead => (full + 1, full * PAGE as u64 + r - overhead),
            _ => return Err(damaged(name)),
        };
        let id = header[1..].try_into().expect("16 bytes");
        Ok(PagedFile { file, name: name.to_string(), id, len, pages })
    }

    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// A key naming this file's version: two files never share one.
    pub fn id(&self) -> u128 {
        u128::from_le_bytes(self.id)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads and opens page `i`.
    pub fn page(&self, sealer: &Sealer, i: u64) -> io::Result<Vec<u8>> {
        let mut page = Vec::new();
        self.page_into(sealer, i, &mut page)?;
        Ok(page)
    }

    /// Reads and opens page `i` into `buf` (replacing what it held), reusing its memory.
    fn page_into(&self, sealer: &Sealer, i: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        let last = i + 1 == self.pages;
        let plain = if last { self.len - i * PAGE as u64 } else { PAGE as u64 };
        buf.resize(plain as usize + NONCE_LEN + TAG_LEN, 0);
        self.file.read_exact_at(buf, HEADER as u64 + i * SEALED_PAGE).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => damaged(&self.name),
            _ => e,
        })?;
        sealer.open_in_place(&aad(&self.name, &self.id, i, last), buf).map_err(|_| damaged(&self.name))
    }

    /// The whole plaintext, page after page.
    pub fn read_all(&self, sealer: &Sealer) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len as usize);
        let mut page = Vec::with_capacity(PAGE + NONCE_LEN + TAG_LEN);
        for i in 0..self.pages {
            self.page_into(sealer, i, &mut page)?;
            out.extend_from_slice(&page);
        }
        Ok(out)
    }
}

/// Whether sealed bytes starting with `first` are paged (else sealed whole).
pub fn is_paged(first: u8) -> bool {
    first == PAGED_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn write(sealer: &Sealer, name: &str, data: &[u8], path: &std::path::Path) {
        let mut w = PageWriter::new(sealer, name, File::create(path).unwrap()).unwrap();
        // Uneven writes, as a BufWriter hands them over.
        for part in data.chunks(7_777) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap();
    }

    fn open(path: &std::path::Path, name: &str) -> io::Result<PagedFile> {
        PagedFile::open(File::open(path)?, name)
    }

    #[test]
    fn any_length_reads_back_page_by_page() {
        let sealer = Sealer::new(&DataKey::generate().unwrap());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        for len in [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 3 * PAGE + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            write(&sealer, "seg.idx", &data, &p);
            let f = open(&p, "seg.idx").unwrap();
            assert_eq!(f.len(), len as u64);
            assert_eq!(f.pages(), (len.max(1) as u64).div_ceil(PAGE as u64));
            assert_eq!(f.read_all(&sealer).unwrap(), data, "length {len}");
            if len > PAGE {
                assert_eq!(f.page(&sealer, 1).unwrap(), data[PAGE..(2 * PAGE).min(len)]);
            }
        }
    }

    #[test]
    fn a_changed_swapped_or_shortened_file_does_not_open() {
        let sealer = Sealer::new(&DataKey::generate().unwrap());
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        let data = vec![7u8; 2 * PAGE];
        write(&sealer, "seg.idx", &data, &a);
        write(&sealer, "seg.idx", &data, &b);
        let good = std::fs::read(&a).unwrap();

        // A flipped byte.
        let mut bytes = good.clone();
        bytes[HEADER + 100] ^= 1;
        std::fs::write(&b, &bytes).unwrap();
        assert!(open(&b, "seg.idx").unwrap().page(&sealer, 0).is_err());
        // Another name.
        assert!(open(&a, "seg.pos").unwrap().page(&sealer, 0).is_err());
        // The pages swapped.
        let mut bytes = good[..HEADER].to_vec();
        bytes.extend_from_slice(&good[HEADER + SEALED_PAGE as usize..]);
        bytes.extend_from_slice(&good[HEADER..HEADER + SEALED_PAGE as usize]);
        std::fs::write(&b, &bytes).unwrap();
        assert!(open(&b, "seg.idx").unwrap().read_all(&sealer).is_err());
        // Cut after the first page: it was not the last.
        std::fs::write(&b, &good[..HEADER + SEALED_PAGE as usize]).unwrap();
        let cut = open(&b, "seg.idx").unwrap();
        assert_eq!(cut.pages(), 1);
        assert!(cut.page(&sealer, 0).is_err());
        // A page from another file of the same name.
        write(&sealer, "seg.idx", &data, &b);
        let other_file = std::fs::read(&b).unwrap();
        let mut bytes = good.clone();
        bytes[HEADER..HEADER + SEALED_PAGE as usize].copy_from_slice(&other_file[HEADER..HEADER + SEALED_PAGE as usize]);
        std::fs::write(&b, &bytes).unwrap();
        assert!(open(&b, "seg.idx").unwrap().page(&sealer, 0).is_err());
        // Nonsense sizes and headers.
        std::fs::write(&b, &good[..HEADER + 5]).unwrap();
        assert!(open(&b, "seg.idx").is_err());
        std::fs::write(&b, [PAGED_VERSION]).unwrap();
        assert!(open(&b, "seg.idx").is_err());
    }

    #[test]
    fn a_file_replaced_in_place_reads_back_in_order_or_is_left_as_it_was() {
        let sealer = Sealer::new(&DataKey::generate().unwrap());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("v.sealed");
        let data: Vec<u8> = (0..2 * PAGE + 5).map(|i| (i % 241) as u8).collect();
        let mut w = SealedFileWriter::create(&sealer, "v", &p).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        // An unfinished replacement changes nothing and leaves no temporary file.
        let mut w = SealedFileWriter::create(&sealer, "v", &p).unwrap();
        w.write_all(b"other").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
        let mut back = Vec::new();
        let mut r = PagedReader::new(open(&p, "v").unwrap(), &sealer);
        let mut small = [0u8; 1000];
        loop {
            let n = r.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&small[..n]);
        }
        assert_eq!(back, data);
    }

    #[test]
    fn no_plaintext_reaches_the_file() {
        let sealer = Sealer::new(&DataKey::generate().unwrap());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        write(&sealer, "x", &b"canary-word ".repeat(20_000), &p);
        assert!(!std::fs::read(&p).unwrap().windows(11).any(|w| w == b"canary-word"));
    }
}
