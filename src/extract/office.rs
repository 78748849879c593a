//! Zip-based documents: tells OOXML (`[Content_Types].xml`), OpenDocument and EPUB (`mimetype`)
//! apart, and reads Word and PowerPoint files and OpenDocument text and presentations.
//! Spreadsheets go to `sheets`, e-books to `epub`.

use super::archive::{resolve, Archive};
use super::xml::{self, first_texts, relationships, Builder, Rules};
use super::{epub, lists, sheets, DocType, Document, Skip};

enum Kind {
    Word(String),
    Slides(String),
    Sheet,
    SheetBinary,
    OdfText,
    OdfSlides,
    OdfSheet,
    Epub,
}

/// A document inside a zip, or `Skip::Binary` for a zip that is none of the formats read here.
pub fn zip_document(bytes: &[u8]) -> Result<Document, Skip> {
    let mut archive = Archive::open(bytes)?;
    let kind = kind(&mut archive)?.ok_or(Skip::Binary)?;
    let mut doc = match kind {
        Kind::Word(main) => word(&mut archive, &main)?,
        Kind::Slides(main) => slides(&mut archive, &main)?,
        Kind::OdfText => odf(&mut archive, DocType::Word)?,
        Kind::OdfSlides => odf(&mut archive, DocType::Slides)?,
        Kind::Epub => epub::epub(&mut archive)?,
        Kind::Sheet | Kind::SheetBinary | Kind::OdfSheet => {
            drop(archive);
            // calamine opens the archive itself: the parts it reads are expanded within the
            // limits first.
            Archive::open(bytes)?.check_parts()?;
            return sheets::guarded(|| match kind {
                Kind::Sheet => sheets::xlsx(bytes),
                Kind::SheetBinary => sheets::xlsb(bytes),
                _ => sheets::ods(bytes),
            });
        }
    };
    if doc.text.trim().is_empty() {
        return Err(Skip::Empty);
    }
    doc.title = doc.title.filter(|t| !t.is_empty());
    Ok(doc)
}

/// Content types of a main part (lower case): documents, templates, macro-enabled, shows.
const WORD_TYPES: &[&str] = &[
    "wordprocessingml.document.main",
    "wordprocessingml.template.main",
    "ms-word.document.macroenabled.main",
    "ms-word.template.macroenabledtemplate.main",
];
const SLIDE_TYPES: &[&str] = &[
    "presentationml.presentation.main",
    "presentationml.slideshow.main",
    "presentationml.template.main",
    "ms-powerpoint.presentation.macroenabled.main",
    "ms-powerpoint.slideshow.macroenabled.main",
];
const SHEET_TYPES: &[&str] = &[
    "spreadsheetml.sheet.main",
    "spreadsheetml.template.main",
    "ms-excel.sheet.macroenabled.main",
    "ms-excel.template.macroenabled.main",
];

fn kind(archive: &mut Archive) -> Result<Option<Kind>, Skip> {
    if let Some(mime) = archive.read_string("mimetype")? {
        let kind = match mime.trim() {
            "application/epub+zip" => Some(Kind::Epub),
            m if m.starts_with("application/vnd.oasis.opendocument.text") => Some(Kind::OdfText),
            m if m.starts_with("application/vnd.oasis.opendocument.presentation") => Some(Kind::OdfSlides),
            m if m.starts_with("application/vnd.oasis.opendocument.spreadsheet") => Some(Kind::OdfSheet),
            _ => None,
        };
        if kind.is_some() {
            return Ok(kind);
        }
    }
    let Some(types) = archive.read_string("[Content_Types].xml")? else { return Ok(None) };
    // The main part's content type names the format (documents, templates and macro-enabled alike).
    let mut found = None;
    xml::walk(&types, |ev| {
        let xml::Ev::Start(e) = ev else { return };
        if found.is_some() || xml::local(e.name().0) != "Override" {
            return;
        }
        let (Some(part), Some(ct)) = (xml::attr(e, "PartName"), xml::attr(e, "ContentType")) else { return };
        let part = part.trim_start_matches('/').to_string();
        let ct = ct.to_ascii_lowercase();
        let any = |types: &[&str]| types.iter().any(|t| ct.contains(t));
        found = if any(WORD_TYPES) {
            Some(Kind::Word(part))
        } else if any(SLIDE_TYPES) {
            Some(Kind::Slides(part))
        } else if ct.contains("ms-excel.sheet.binary") {
            Some(Kind::SheetBinary)
        } else if any(SHEET_TYPES) {
            Some(Kind::Sheet)
        } else {
            None
        };
    })?;
    if found.is_none() {
        // Some writers give the main part only a Default by extension.
        for (name, kind) in [("word/document.xml", 0), ("ppt/presentation.xml", 1), ("xl/workbook.xml", 2), ("xl/workbook.bin", 3)] {
            if archive.has(name) {
                found = Some(match kind {
                    0 => Kind::Word(name.into()),
                    1 => Kind::Slides(name.into()),
                    2 => Kind::Sheet,
                    _ => Kind::SheetBinary,
                });
                break;
            }
        }
    }
    Ok(found)
}

const WORD: Rules = Rules {
    para: &["p", "tr"],
    text_in: &["t"],
    tab: &["tab", "ptab"],
    brk: &["br", "cr"],
    // A drawing's fallback repeats its text box; `tabs` holds tab stops, not tabs; a property
    // change holds the paragraph's old numbering.
    skip: &["Fallback", "tabs", "rPr", "pPrChange"],
    spaces: None,
    section: None,
    newline_is_space: false,
};

const DRAWING: Rules = Rules {
    para: &["p"],
    text_in: &["t"],
    tab: &[],
    brk: &["br"],
    skip: &["Fallback"],
    spaces: None,
    section: None,
    newline_is_space: false,
};

const ODF: Rules = Rules {
    para: &["text:p", "text:h", "table:table-row"],
    text_in: &[],
    tab: &["text:tab"],
    brk: &["text:line-break"],
    // Deleted text, and who and when of a comment.
    skip: &["text:tracked-changes", "dc:creator", "dc:date", "office:forms", "text:sequence-decls"],
    spaces: Some("text:s"),
    section: Some(("draw:page", "slide")),
    newline_is_space: true,
};

/// Title and author from OOXML's `docProps/core.xml`.
fn ooxml_meta(archive: &mut Archive, doc: &mut Document) -> Result<(), Skip> {
    if let Some(core) = archive.read_string("docProps/core.xml")? {
        let [title, author]: [Option<String>; 2] = first_texts(&core, &["title", "creator"]).try_into().expect("two names");
        doc.title = title;
        doc.author = author;
    }
    Ok(())
}

/// The main part's relationships: (Id, Type, resolved entry name).
fn rels_of(archive: &mut Archive, part: &str) -> Result<Vec<(String, String, String)>, Skip> {
    let (dir, file) = part.rsplit_once('/').unwrap_or(("", part));
    let rels_name = if dir.is_empty() { format!("_rels/{file}.rels") } else { format!("{dir}/_rels/{file}.rels") };
    let Some(xml) = archive.read_string(&rels_name)? else { return Ok(Vec::new()) };
    Ok(relationships(&xml)
        .into_iter()
        .map(|(id, ty, target)| {
            let name = resolve(part, &target);
            (id, ty, name)
        })
        .collect())
}

/// DOCX: the body, then headers, footers, footnotes, endnotes and comments.
fn word(archive: &mut Archive, main: &str) -> Result<Document, Skip> {
    let body = archive.read_string(main)?.ok_or_else(|| Skip::Corrupt("the document part is missing".into()))?;
    let rels = rels_of(archive, main)?;
    let part = |archive: &mut Archive, kind: &str| -> Result<Option<String>, Skip> {
        match rels.iter().find(|(_, ty, _)| ty.ends_with(kind)) {
            Some((_, _, name)) => archive.read_string(name),
            None => Ok(None),
        }
    };
    let mut lists = lists::WordLists::new(part(archive, "/numbering")?.as_deref(), part(archive, "/styles")?.as_deref());
    let mut b = Builder::default();
    b.add_xml_with(&body, &WORD, |ev| lists.event(ev))?;
    b.push("\n");
    for (_, ty, name) in rels {
        let extra = ["/header", "/footer", "/footnotes", "/endnotes", "/comments", "/diagramData"].iter().any(|t| ty.ends_with(t));
        if extra {
            if let Some(xml) = archive.read_string(&name)? {
                b.add_xml(&xml, &WORD)?;
            }
        }
    }
    let mut doc = b.finish(DocType::Word);
    ooxml_meta(archive, &mut doc)?;
    Ok(doc)
}

/// PPTX: slides in presentation order, each with its notes, one section per slide.
fn slides(archive: &mut Archive, main: &str) -> Result<Document, Skip> {
    let pres = archive.read_string(main)?.ok_or_else(|| Skip::Corrupt("the presentation part is missing".into()))?;
    let rels = rels_of(archive, main)?;
    let mut order = Vec::new();
    let mut in_list = false;
    xml::walk(&pres, |ev| match ev {
        xml::Ev::Start(e) => {
            let name = xml::local(e.name().0);
            if name == "sldIdLst" {
                in_list = true;
            } else if in_list && name == "sldId" {
                // `r:id` (the relationship), not the plain `id`.
                let rid = e.attributes().with_checks(false).filter_map(Result::ok).find(|a| a.key.0 != "id" && xml::local(a.key.0) == "id");
                if let Some(Ok(v)) = rid.map(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.into_owned())) {
                    order.push(v);
                }
            }
        }
        xml::Ev::End(name) => {
            if xml::local(name) == "sldIdLst" {
                in_list = false;
            }
        }
        xml::Ev::Text(_) => {}
    })?;
    if order.is_empty() {
        // No slide list: the slides in the order of their numbers.
        let mut slides: Vec<(u32, String)> = rels
            .iter()
            .filter(|(_, ty, _)| ty.ends_with("/slide"))
            .map(|(id, _, name)| (name.trim_end_matches(".xml").rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse().ok()).unwrap_or(u32::MAX), id.clone()))
            .collect();
        slides.sort();
        order = slides.into_iter().map(|(_, id)| id).collect();
    }
    let mut b = Builder::default();
    for (n, rid) in order.iter().enumerate() {
        let Some((_, _, name)) = rels.iter().find(|(id, ty, _)| id == rid && ty.ends_with("/slide")) else { continue };
        let name = name.clone();
        let Some(slide) = archive.read_string(&name)? else { continue };
        b.section(format!("slide {}", n + 1));
        b.add_xml(&slide, &DRAWING)?;
        // SmartArt's text and the speaker notes, as the slide's relationships list them.
        for (_, ty, part) in rels_of(archive, &name)? {
            if ty.ends_with("/diagramData") || ty.ends_with("/notesSlide") {
                if let Some(xml) = archive.read_string(&part)? {
                    b.push("\n");
                    b.add_xml(&notes_without_slide_number(&xml), &DRAWING)?;
                }
            }
        }
    }
    let mut doc = b.finish(DocType::Slides);
    ooxml_meta(archive, &mut doc)?;
    Ok(doc)
}

/// A notes page repeats the slide number in a field; the notes are what a person wrote.
fn notes_without_slide_number(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = rest.find("<a:fld ") {
        out.push_str(&rest[..i]);
        match rest[i..].find("</a:fld>") {
            Some(end) => rest = &rest[i + end + "</a:fld>".len()..],
            None => {
                rest = &rest[i..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// ODT and ODP: `content.xml` (a section per `draw:page`), title and author from `meta.xml`.
fn odf(archive: &mut Archive, doc_type: DocType) -> Result<Document, Skip> {
    if archive.read_string("META-INF/manifest.xml")?.is_some_and(|m| m.contains("encryption-data")) {
        return Err(super::password_protected());
    }
    let content = archive.read_string("content.xml")?.ok_or_else(|| Skip::Corrupt("content.xml is missing".into()))?;
    let styles = archive.read_string("styles.xml")?;
    let mut lists = lists::OdfLists::new(&[Some(content.as_str()), styles.as_deref()]);
    let mut b = Builder::default();
    b.add_xml_with(&content, &ODF, |ev| lists.event(ev))?;
    let mut doc = b.finish(doc_type);
    if let Some(meta) = archive.read_string("meta.xml")? {
        let [title, initial, creator]: [Option<String>; 3] =
            first_texts(&meta, &["dc:title", "meta:initial-creator", "dc:creator"]).try_into().expect("three names");
        doc.title = title;
        doc.author = initial.or(creator);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::super::archive::tests::zip_of;
    use super::*;

    const TYPES_DOCX: &[u8] = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    #[test]
    fn docx_paragraphs_tabs_breaks_footnotes_and_metadata() {
        let doc = r#"<w:document xmlns:w="w"><w:body><w:p><w:pPr><w:tabs><w:tab w:val="left"/></w:tabs></w:pPr><w:r><w:t>Quince</w:t><w:tab/><w:t xml:space="preserve">harvest </w:t></w:r><w:r><w:t>notes</w:t><w:br/><w:t>line two</w:t></w:r></w:p><w:p><w:r><w:instrText>PAGE</w:instrText><w:delText>gone</w:delText><w:t>租约</w:t></w:r></w:p></w:body></w:document>"#.as_bytes();
        let rels = br#"<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/></Relationships>"#;
        let foot = br#"<w:footnotes xmlns:w="w"><w:footnote><w:p><w:r><w:t>A footnote.</w:t></w:r></w:p></w:footnote></w:footnotes>"#;
        let core = br#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:title>Lease</dc:title><dc:creator>Mei Lin</dc:creator></cp:coreProperties>"#;
        let z = zip_of(&[
            ("[Content_Types].xml", TYPES_DOCX),
            ("word/document.xml", doc),
            ("word/_rels/document.xml.rels", rels),
            ("word/footnotes.xml", foot),
            ("docProps/core.xml", core),
        ]);
        let d = zip_document(&z).unwrap();
        assert_eq!(d.doc_type, DocType::Word);
        assert_eq!(d.text, "Quince harvest notes\nline two\n租约\n\nA footnote.");
        assert_eq!(d.title.as_deref(), Some("Lease"));
        assert_eq!(d.author.as_deref(), Some("Mei Lin"));
    }

    #[test]
    fn docx_list_labels_are_counted_as_word_draws_them() {
        let numbering = br#"<w:numbering xmlns:w="w"><w:abstractNum w:abstractNumId="0"><w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/></w:lvl><w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/><w:lvlText w:val="%1.%2)"/></w:lvl></w:abstractNum>
            <w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="x"/></w:lvl></w:abstractNum>
            <w:num w:numId="5"><w:abstractNumId w:val="0"/></w:num><w:num w:numId="6"><w:abstractNumId w:val="1"/></w:num>
            <w:num w:numId="7"><w:abstractNumId w:val="0"/><w:lvlOverride w:ilvl="0"><w:startOverride w:val="4"/></w:lvlOverride></w:num></w:numbering>"#;
        let p = |num: &str, lvl: &str, text: &str| format!(r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="{lvl}"/><w:numId w:val="{num}"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#);
        let body = format!(
            r#"<w:document xmlns:w="w"><w:body>{}{}{}{}{}<w:p><w:r><w:t>plain</w:t></w:r></w:p>{}</w:body></w:document>"#,
            p("5", "0", "one"), p("5", "1", "sub"), p("5", "1", "sub"), p("5", "0", "two"), p("6", "0", "dot"), p("7", "0", "four")
        );
        let rels = br#"<Relationships><Relationship Id="r1" Type="http://x/relationships/numbering" Target="numbering.xml"/></Relationships>"#;
        let z = zip_of(&[("[Content_Types].xml", TYPES_DOCX), ("word/document.xml", body.as_bytes()), ("word/_rels/document.xml.rels", rels), ("word/numbering.xml", numbering)]);
        assert_eq!(zip_document(&z).unwrap().text, "1. one\n1.a) sub\n1.b) sub\n2. two\ndot\nplain\n4. four");
        assert_eq!(lists::number(28, "upperLetter"), "BB");
        assert_eq!(lists::number(14, "lowerRoman"), "xiv");
        assert_eq!(lists::number(12, "ordinal"), "12th");
        assert_eq!(lists::number(22, "ordinal"), "22nd");
    }

    #[test]
    fn odt_list_labels_follow_the_list_styles() {
        let content = br#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:style="s"><office:automatic-styles>
            <text:list-style style:name="L1"><text:list-level-style-number text:level="1" style:num-suffix="." style:num-format="1"/><text:list-level-style-number text:level="2" style:num-suffix=")" style:num-format="a" text:display-levels="2"/></text:list-style>
            <text:list-style style:name="L2"><text:list-level-style-bullet text:level="1" text:bullet-char="*"/></text:list-style></office:automatic-styles>
            <office:body><office:text><text:list text:style-name="L1"><text:list-item><text:p>one</text:p><text:list><text:list-item><text:p>sub</text:p></text:list-item><text:list-item><text:p>sub</text:p></text:list-item></text:list></text:list-item><text:list-item><text:p>two</text:p></text:list-item></text:list>
            <text:list text:style-name="L2"><text:list-item><text:p>dot</text:p></text:list-item></text:list>
            <text:list text:style-name="L1" text:continue-numbering="true"><text:list-item><text:p>three</text:p></text:list-item></text:list>
            <text:list text:style-name="L1"><text:list-item><text:p>again</text:p></text:list-item></text:list></office:text></office:body></office:document-content>"#;
        let z = zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", content)]);
        assert_eq!(zip_document(&z).unwrap().text, "1. one\n1.a) sub\n1.b) sub\n2. two\ndot\n3. three\n1. again");
    }

    #[test]
    fn pptx_slides_follow_the_presentation_order() {
        let types = br#"<Types><Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/></Types>"#;
        let pres = br#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/></p:sldIdLst></p:presentation>"#;
        let rels = br#"<Relationships><Relationship Id="rId2" Type="http://x/relationships/slide" Target="slides/slide1.xml"/><Relationship Id="rId3" Type="http://x/relationships/slide" Target="slides/slide2.xml"/></Relationships>"#;
        let s1 = br#"<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>Second slide</a:t></a:r></a:p></p:sld>"#;
        let s2 = br#"<p:sld xmlns:p="p" xmlns:a="a"><a:p><a:r><a:t>First slide</a:t></a:r></a:p></p:sld>"#;
        let s2rels = br#"<Relationships><Relationship Id="rId1" Type="http://x/relationships/notesSlide" Target="../notesSlides/notesSlide1.xml"/><Relationship Id="rId2" Type="http://x/relationships/diagramData" Target="../diagrams/data1.xml"/></Relationships>"#;
        let diagram = br#"<dgm:dataModel xmlns:dgm="d" xmlns:a="a"><dgm:ptLst><dgm:pt><dgm:t><a:p><a:r><a:t>Smart box</a:t></a:r></a:p></dgm:t></dgm:pt></dgm:ptLst></dgm:dataModel>"#;
        let notes = br#"<p:notes xmlns:p="p" xmlns:a="a"><a:p><a:fld type="slidenum"><a:t>1</a:t></a:fld></a:p><a:p><a:r><a:t>Speaker note</a:t></a:r></a:p></p:notes>"#;
        let z = zip_of(&[
            ("[Content_Types].xml", types),
            ("ppt/presentation.xml", pres),
            ("ppt/_rels/presentation.xml.rels", rels),
            ("ppt/slides/slide1.xml", s1),
            ("ppt/slides/slide2.xml", s2),
            ("ppt/slides/_rels/slide2.xml.rels", s2rels),
            ("ppt/notesSlides/notesSlide1.xml", notes),
            ("ppt/diagrams/data1.xml", diagram),
        ]);
        let d = zip_document(&z).unwrap();
        assert_eq!(d.doc_type, DocType::Slides);
        assert_eq!(d.text, "First slide\n\nSpeaker note\n\nSmart box\n\nSecond slide");
        let labels: Vec<_> = d.sections.iter().map(|s| (s.start, s.label.as_str())).collect();
        assert_eq!(labels, vec![(0, "slide 1"), (38, "slide 2")]);
    }

    #[test]
    fn odt_title_author_and_unknown_zips() {
        let content = br#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:h>Heading</text:h><text:p>Body <text:span>text</text:span></text:p></office:text></office:body></office:document-content>"#;
        let meta = br#"<office:document-meta xmlns:office="o" xmlns:dc="d" xmlns:meta="m"><office:meta><dc:title>Notes</dc:title><meta:initial-creator>Mei</meta:initial-creator><dc:creator>Other</dc:creator></office:meta></office:document-meta>"#;
        let z = zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", content), ("meta.xml", meta)]);
        let d = zip_document(&z).unwrap();
        assert_eq!((d.text.as_str(), d.title.as_deref(), d.author.as_deref()), ("Heading\nBody text", Some("Notes"), Some("Mei")));
        assert_eq!(zip_document(&zip_of(&[("photo.jpg", b"\xff\xd8")])).unwrap_err(), Skip::Binary);
    }

    #[test]
    fn password_protected_documents_are_named_as_such() {
        let path = std::path::Path::new;
        let mut ole = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
        ole.extend("EncryptionInfo\0EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        let locked = super::super::password_protected();
        assert_eq!(super::super::extract_bytes(path("locked.docx"), &ole).unwrap_err(), locked);
        let manifest = br#"<manifest:manifest xmlns:manifest="m"><manifest:file-entry manifest:full-path="content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"#;
        let z = zip_of(&[("mimetype", b"application/vnd.oasis.opendocument.text"), ("META-INF/manifest.xml", manifest), ("content.xml", b"\x93\x00garbled")]);
        assert_eq!(zip_document(&z).unwrap_err(), locked);
    }

    /// What a test prints of a document: type, title, author, sections and text.
    fn show(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats").join(name);
        let d = super::super::extract_bytes(&path, &std::fs::read(&path).unwrap()).unwrap();
        let sections: Vec<String> = d.sections.iter().map(|s| format!("{}@{}", s.label, s.start)).collect();
        format!("{} | {:?} | {:?} | {} |\n{}", d.doc_type.as_str(), d.title, d.author, sections.join(","), d.text)
    }

    /// Files LibreOffice 7.4 made from tests/data/formats/*.fod[tsp], each with its own words
    /// (see tests/data/README.md).
    #[test]
    fn files_libreoffice_made() {
        let words = "Greenhouse lease\nThe landlord agreed to repaint the conservatory before the quince harvest.\nDeposit: 1200 euros, returned within thirty days.\n温室租赁合同的押金为一千二百欧元。";
        let meta = "| Some(\"Greenhouse lease notes\") | Some(\"Mei Lin\") |";
        for (f, fruit, place) in [("notes.docx", "quince", "温室"), ("notes.odt", "apricot", "果园"), ("notes.rtf", "damson", "花园")] {
            assert_eq!(show(f), format!("word {meta}  |\n{}", words.replace("quince", fruit).replace("温室", place)), "{f}");
        }
        let book = words.replace("quince", "medlar").replace("温室", "葡萄园").replace('\n', "\n\n");
        assert_eq!(show("notes.epub"), format!("ebook {meta} chapter 1@0 |\n{book}"));
        let sheets = "spreadsheet | Some(\"Household budget\") | Some(\"Mei Lin\") | sheet Budget@0,sheet Travel@51 |\n\
                      Item\tAmount\nMarmalade jars\t12\nBicycle repair\t47.5\n\nFerry to Stromness\t88\n火车票 上海\t553";
        for (f, port, city) in [("budget.xlsx", "Stromness", "上海"), ("budget.ods", "Kirkwall", "杭州"), ("budget.xls", "Lerwick", "苏州")] {
            assert_eq!(show(f), sheets.replace("Stromness", port).replace("上海", city), "{f}");
        }
        let slides = "slides | Some(\"Beekeeping talk\") | Some(\"Mei Lin\") | slide 1@0,slide 2@26,slide 3@56 |\n\
                      Beekeeping for beginners\n\nVarroa mites and oxalic acid\n\nHarvesting lavender honey\n蜂蜜收获在八月";
        assert_eq!(show("talk.pptx"), slides);
        assert_eq!(show("talk.odp"), slides.replace("oxalic", "formic").replace("八月", "九月"));
    }
}
