//! Zip containers (OOXML, OpenDocument, EPUB), read within the zip-bomb limits: the one place that
//! opens a zip for extraction. Sizes a zip declares can lie, so every entry is read through
//! `Read::take(cap + 1)` and the limits are checked on the bytes that came out.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use super::Skip;

/// At most this many entries in one container.
pub const MAX_ENTRIES: usize = 10_000;
/// At most this many bytes expanded, over all the entries read from one container.
pub const MAX_EXPANDED: u64 = 200 << 20;
/// An entry expanding past `RATIO_FLOOR` may be at most this many times its compressed size.
pub const MAX_RATIO: u64 = 200;
pub const RATIO_FLOOR: u64 = 1 << 20;

pub fn bomb(what: &str) -> Skip {
    Skip::Corrupt(format!("over a zip bomb limit ({what})"))
}

pub struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    /// Bytes still allowed to expand.
    budget: u64,
}

impl<'a> Archive<'a> {
    /// Opens a zip and checks its entry count. Sizes are checked as entries are read: a
    /// container may hold media far more compressible than text (a vector image at 600:1) that
    /// is never expanded here.
    pub fn open(bytes: &'a [u8]) -> Result<Archive<'a>, Skip> {
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|_| Skip::Corrupt("not a readable zip container".into()))?;
        if zip.len() > MAX_ENTRIES {
            return Err(bomb("too many entries"));
        }
        Ok(Archive { zip, budget: MAX_EXPANDED })
    }

    pub fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(Result::ok).map(|n| n.into_owned()).collect()
    }

    /// The expanded bytes of one entry, `None` when there is no such entry.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, Skip> {
        let Some(i) = self.zip.index_for_name(name) else { return Ok(None) };
        self.read_index(i).map(Some)
    }

    pub fn read_index(&mut self, i: usize) -> Result<Vec<u8>, Skip> {
        let file = self.zip.by_index(i).map_err(|_| Skip::Corrupt("a zip entry could not be read".into()))?;
        if file.encrypted() {
            return Err(Skip::Corrupt("encrypted zip entry".into()));
        }
        let cap = ratio_cap(file.compressed_size()).min(self.budget);
        let over = |cap: u64, budget: u64| bomb(if cap == budget { "expanded size" } else { "compression ratio" });
        // A size the zip declares past the cap is refused unread; a smaller one may lie, so the
        // bytes are counted too.
        if file.size() > cap {
            return Err(over(cap, self.budget));
        }
        let mut out = Vec::with_capacity(file.size() as usize);
        file.take(cap + 1).read_to_end(&mut out).map_err(|_| Skip::Corrupt("a zip entry could not be expanded".into()))?;
        if out.len() as u64 > cap {
            return Err(over(cap, self.budget));
        }
        self.budget -= out.len() as u64;
        Ok(out)
    }

    /// An entry as text (UTF-8, a byte-order mark dropped), `None` when absent.
    pub fn read_string(&mut self, name: &str) -> Result<Option<String>, Skip> {
        Ok(self.read(name)?.map(|b| {
            let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&b);
            String::from_utf8_lossy(b).into_owned()
        }))
    }

    /// Expands, within the limits, every entry another library (calamine) may read, and throws
    /// the bytes away: its XML and binary parts, not embedded media or objects.
    pub fn check_parts(mut self) -> Result<(), Skip> {
        for i in 0..self.zip.len() {
            let name = self.zip.name_for_index(i).and_then(Result::ok).map(|n| n.to_ascii_lowercase()).unwrap_or_default();
            let part = name.ends_with(".xml") || name.ends_with(".rels") || name.ends_with(".bin");
            let media = ["media/", "embeddings/", "printersettings/", "thumbnails/", "pictures/", "objectreplacements/"].iter().any(|m| name.contains(m));
            if part && !media {
                self.read_index(i)?;
            }
        }
        Ok(())
    }
}

/// The most an entry of `compressed` bytes may expand to.
fn ratio_cap(compressed: u64) -> u64 {
    compressed.saturating_mul(MAX_RATIO).max(RATIO_FLOOR)
}

/// Resolves `target` (a relationship or href, maybe with `../`, `./`, a fragment or %-escapes)
/// against the folder of `base` (an entry name), giving an entry name.
pub fn resolve(base: &str, target: &str) -> String {
    let target = target.split('#').next().unwrap_or("");
    let target = percent_decode(target);
    let mut parts: Vec<&str> = if let Some(abs) = target.strip_prefix('/') {
        return normalise(abs.split('/').collect());
    } else {
        base.rsplit_once('/').map(|(dir, _)| dir.split('/').collect()).unwrap_or_default()
    };
    parts.extend(target.split('/'));
    normalise(parts)
}

fn normalise(parts: Vec<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for p in parts {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    /// A zip of (name, bytes), deflated.
    pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            let opts = if *name == "mimetype" {
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
            } else {
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
            };
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_entries_and_resolves_paths() {
        let z = zip_of(&[("a/b.xml", b"<x/>"), ("c d.xml", b"hi")]);
        let mut a = Archive::open(&z).unwrap();
        assert_eq!(a.read("a/b.xml").unwrap().unwrap(), b"<x/>");
        assert!(a.read("nope").unwrap().is_none());
        assert_eq!(resolve("ppt/presentation.xml", "slides/slide1.xml"), "ppt/slides/slide1.xml");
        assert_eq!(resolve("ppt/slides/slide1.xml", "../notesSlides/n1.xml"), "ppt/notesSlides/n1.xml");
        assert_eq!(resolve("OEBPS/content.opf", "Text/ch%201.xhtml#x"), "OEBPS/Text/ch 1.xhtml");
        assert_eq!(resolve("content.opf", "/word/document.xml"), "word/document.xml");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn a_highly_compressed_entry_is_a_bomb_when_read() {
        let zeros = vec![0u8; 8 << 20];
        let z = zip_of(&[("big.xml", &zeros), ("media/image1.emf", &zeros), ("ok.xml", b"<x/>")]);
        let mut a = Archive::open(&z).unwrap();
        assert_eq!(a.read("ok.xml").unwrap().unwrap(), b"<x/>");
        let err = a.read("big.xml").unwrap_err();
        assert!(matches!(&err, Skip::Corrupt(why) if why.contains("zip bomb limit")), "{err:?}");
        assert!(Archive::open(&z).unwrap().check_parts().is_err());
        // Media is not expanded by the check.
        let z = zip_of(&[("xl/media/image1.emf", &zeros), ("xl/workbook.xml", b"<x/>")]);
        assert!(Archive::open(&z).unwrap().check_parts().is_ok());
    }

    #[test]
    fn the_total_expanded_is_capped() {
        // Each entry is within the ratio, but together they pass the budget.
        let noise: Vec<u8> = (0..(3u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
        let names: Vec<String> = (0..(MAX_EXPANDED / noise.len() as u64 + 1)).map(|i| format!("{i}.xml")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &noise[..])).collect();
        let z = zip_of(&entries);
        let err = Archive::open(&z).unwrap().check_parts().unwrap_err();
        assert!(matches!(&err, Skip::Corrupt(why) if why.contains("expanded size")), "{err:?}");
    }

    #[test]
    fn too_many_entries_is_a_bomb() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let z = zip_of(&entries);
        assert!(matches!(Archive::open(&z), Err(Skip::Corrupt(why)) if why.contains("zip bomb limit")));
    }

    #[test]
    fn a_lying_declared_size_is_caught_while_reading() {
        // Declare a tiny uncompressed size in both headers: the stream expands to far more.
        let zeros = vec![0u8; 8 << 20];
        let mut z = zip_of(&[("big.xml", &zeros)]);
        let real = (zeros.len() as u32).to_le_bytes();
        let fake = 100u32.to_le_bytes();
        let mut i = 0;
        while let Some(p) = z[i..].windows(4).position(|w| w == real) {
            z[i + p..i + p + 4].copy_from_slice(&fake);
            i += p + 4;
        }
        match Archive::open(&z) {
            Err(e) => assert!(matches!(&e, Skip::Corrupt(_)), "{e:?}"),
            Ok(mut a) => {
                let r = a.read("big.xml");
                // Either refused, or cut at what was declared: never the 8 MiB.
                assert!(matches!(&r, Err(Skip::Corrupt(_))) || r.as_ref().unwrap().as_ref().unwrap().len() < zeros.len());
            }
        }
    }
}
