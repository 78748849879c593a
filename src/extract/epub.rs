//! EPUB: the package (OPF) named by `META-INF/container.xml`, its spine in reading order, each
//! XHTML item through the HTML reader, one section per chapter; title and author from the OPF.

use super::archive::{resolve, Archive};
use super::xml::{self, first_texts, Builder};
use super::{decode_text, formats, DocType, Document, Skip};

/// At most this many spine items are read (a book has tens to hundreds).
const MAX_CHAPTERS: usize = 5_000;

pub fn epub(archive: &mut Archive) -> Result<Document, Skip> {
    let container = archive.read_string("META-INF/container.xml")?.ok_or_else(|| Skip::Corrupt("EPUB without a container".into()))?;
    let mut opf_path = None;
    xml::walk(&container, |ev| {
        if let xml::Ev::Start(e) = ev {
            if opf_path.is_none() && xml::local(e.name().0) == "rootfile" {
                opf_path = xml::attr(e, "full-path");
            }
        }
    })?;
    let opf_path = opf_path
        .or_else(|| archive.names().into_iter().find(|n| n.ends_with(".opf")))
        .ok_or_else(|| Skip::Corrupt("EPUB without a package document".into()))?;
    let opf = archive.read_string(&opf_path)?.ok_or_else(|| Skip::Corrupt("EPUB package document missing".into()))?;

    let mut manifest: Vec<(String, String, String)> = Vec::new(); // id, href, media type
    let mut spine: Vec<String> = Vec::new();
    xml::walk(&opf, |ev| {
        let xml::Ev::Start(e) = ev else { return };
        match xml::local(e.name().0) {
            "item" => {
                if let (Some(id), Some(href)) = (xml::attr(e, "id"), xml::attr(e, "href")) {
                    manifest.push((id, href, xml::attr(e, "media-type").unwrap_or_default()));
                }
            }
            "itemref" => {
                if let Some(id) = xml::attr(e, "idref") {
                    spine.push(id);
                }
            }
            _ => {}
        }
    })?;
    let [title, author]: [Option<String>; 2] = first_texts(&opf, &["title", "creator"]).try_into().expect("two names");

    let mut b = Builder::default();
    let mut chapters = 0;
    for id in spine.iter().take(MAX_CHAPTERS) {
        let Some((_, href, media)) = manifest.iter().find(|(i, _, _)| i == id) else { continue };
        if !(media.contains("html") || media.is_empty() || media.contains("xml")) {
            continue;
        }
        let Some(bytes) = archive.read(&resolve(&opf_path, href))? else { continue };
        let Some((source, _)) = decode_text(&bytes) else { continue };
        let text = formats::html(&source).text;
        if text.trim().is_empty() {
            continue;
        }
        chapters += 1;
        b.section(format!("chapter {chapters}"));
        b.push(&text);
    }
    let mut doc = b.finish(DocType::Ebook);
    doc.title = title;
    doc.author = author;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::super::archive::tests::zip_of;
    use super::super::office::zip_document;
    use super::*;

    #[test]
    fn spine_order_chapters_and_metadata() {
        let container = br#"<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;
        let opf = br#"<package xmlns="http://www.idpf.org/2007/opf" xmlns:dc="http://purl.org/dc/elements/1.1/"><metadata><dc:title>The Quince Tree</dc:title><dc:creator>Mei Lin</dc:creator></metadata>
            <manifest><item id="c1" href="Text/one.xhtml" media-type="application/xhtml+xml"/><item id="c2" href="Text/two%20b.xhtml" media-type="application/xhtml+xml"/><item id="css" href="s.css" media-type="text/css"/></manifest>
            <spine><itemref idref="c2"/><itemref idref="css"/><itemref idref="c1"/></spine></package>"#;
        let one = "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>x</title></head><body><p>Later chapter</p></body></html>";
        let two = "<?xml version=\"1.0\" encoding=\"utf-8\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><body><h1>开始</h1><p>Opening &amp; words</p></body></html>";
        let z = zip_of(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", container),
            ("OEBPS/content.opf", opf),
            ("OEBPS/Text/one.xhtml", one.as_bytes()),
            ("OEBPS/Text/two b.xhtml", two.as_bytes()),
        ]);
        let d = zip_document(&z).unwrap();
        assert_eq!(d.doc_type, DocType::Ebook);
        assert_eq!(d.title.as_deref(), Some("The Quince Tree"));
        assert_eq!(d.author.as_deref(), Some("Mei Lin"));
        assert!(d.text.starts_with("开始\n\nOpening & words"), "{}", d.text);
        let later = d.text.find("Later chapter").unwrap();
        assert_eq!(d.sections.len(), 2);
        assert_eq!((d.sections[1].label.as_str(), d.sections[1].start), ("chapter 2", later));
    }
}
