//! Legacy Word (.doc, Word 6 to 2003) through office_oxide, in the extraction worker's sandbox.
//! Measured against LibreOffice on Apache Tika's test documents (BENCHMARKS.md). Legacy
//! PowerPoint (.ppt) is not read: there was no reference to measure it against.

use std::io::Cursor;

use office_oxide::doc::DocError;
use office_oxide::{Document as Office, DocumentFormat, OfficeError};

use super::formats::tidy_lines;
use super::{DocType, Document, Skip};

pub fn doc(bytes: &[u8]) -> Result<Document, Skip> {
    let office = Office::from_reader(Cursor::new(bytes.to_vec()), DocumentFormat::Doc).map_err(|e| match e {
        OfficeError::Doc(DocError::Encrypted) => super::password_protected(),
        // Its messages can quote the document: only the kind is kept.
        _ => Skip::Corrupt("Word document could not be read".into()),
    })?;
    let mut doc = Document::new(tidy_lines(&office.plain_text()), DocType::Word);
    if let Some(props) = office.as_doc().and_then(|d| d.summary_properties()) {
        let clean = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        doc.title = clean(&props.title);
        doc.author = clean(&props.author);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_97_file_libreoffice_made() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats/notes.doc");
        let d = super::super::extract_bytes(&path, &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(d.doc_type, DocType::Word);
        assert!(d.text.contains("repaint the conservatory before the sloe harvest"), "{}", d.text);
        assert!(d.text.contains("茶园租赁合同"), "{}", d.text);
        assert_eq!(d.title.as_deref(), Some("Greenhouse lease notes"));
        assert_eq!(d.author.as_deref(), Some("Mei Lin"));
    }

    #[test]
    fn damaged_and_encrypted() {
        assert!(matches!(doc(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 truncated"), Err(Skip::Corrupt(_))));
    }
}
