//! File → text: detect the type, extract the words a person would read, and split them into
//! chunks. Not for: walking folders (capture), storing (store) or tokenising (index).

mod chunk;
pub mod ocr;
pub mod picture;
mod decode;
mod calendar;
mod formats;
// Office documents and e-books (issue 18): zip containers within bomb limits, their XML, sheets, RTF.
mod archive;
mod epub;
mod legacy;
mod lists;
mod office;
mod rtf;
mod sheets;
mod xml;
pub mod worker;

use std::io::Read;
use std::path::Path;

pub use chunk::{chunk_text, chunk_text_by, estimate_tokens, CHUNK_MAX_TOKENS};
pub use decode::decode_text;

/// The text of one source, ready to chunk.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub title: Option<String>,
    /// Who wrote it, where the document says (office and e-book metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub text: String,
    pub doc_type: DocType,
    /// A time the document states for itself (an e-mail's Date), in unix seconds.
    pub stated_time: Option<i64>,
    /// Where each page, sheet or slide begins in `text`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<Section>,
}

impl Document {
    pub fn new(text: String, doc_type: DocType) -> Document {
        Document { text, doc_type, ..Default::default() }
    }
}

/// A page, sheet or slide: the byte offset in the document's text where it begins, and what a
/// result calls it ("page 12", "sheet Budget", "slide 3").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub start: usize,
    pub label: String,
}

/// The label of the section holding byte `offset` of the text.
pub fn section_at(sections: &[Section], offset: usize) -> Option<&str> {
    let i = sections.partition_point(|s| s.start <= offset);
    i.checked_sub(1).map(|i| sections[i].label.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocType {
    #[default]
    Text,
    Markdown,
    Code,
    Html,
    Pdf,
    Email,
    /// Word processing: DOCX, ODT, DOC, RTF.
    Word,
    /// XLSX, ODS, XLS.
    Spreadsheet,
    /// PPTX, ODP.
    Slides,
    /// EPUB.
    Ebook,
}

impl DocType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocType::Text => "text",
            DocType::Markdown => "markdown",
            DocType::Code => "code",
            DocType::Html => "html",
            DocType::Pdf => "pdf",
            DocType::Email => "email",
            DocType::Word => "word",
            DocType::Spreadsheet => "spreadsheet",
            DocType::Slides => "slides",
            DocType::Ebook => "ebook",
        }
    }
}

/// Why a file was not indexed. Each is counted and reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Skip {
    Binary,
    TooLarge,
    Empty,
    Unreadable(String),
    Vanished,
    NotRegular,
    SymlinkLoop,
    Corrupt(String),
    /// The extraction worker crashed reading it (how: a signal or exit code, never content).
    Crashed(String),
    /// The extraction worker took longer than `files.worker_timeout_secs` and was killed.
    TimedOut,
    /// The extraction worker ran out of memory (`files.worker_memory_mb`) reading it.
    OutOfMemory,
}

impl Skip {
    /// The short name used in counts and JSON.
    pub fn reason(&self) -> &'static str {
        match self {
            Skip::Binary => "binary",
            Skip::TooLarge => "too_large",
            Skip::Empty => "empty",
            Skip::Unreadable(_) => "unreadable",
            Skip::Vanished => "vanished",
            Skip::NotRegular => "not_a_regular_file",
            Skip::SymlinkLoop => "symlink_loop",
            Skip::Corrupt(_) => "corrupt",
            Skip::Crashed(_) => "worker_crashed",
            Skip::TimedOut => "timed_out",
            Skip::OutOfMemory => "out_of_memory",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Skip::Binary => "binary file".into(),
            Skip::TooLarge => "larger than files.max_file_bytes".into(),
            Skip::Empty => "no text in it".into(),
            Skip::Unreadable(why) => format!("could not be read: {why}"),
            Skip::Vanished => "deleted while being read".into(),
            Skip::NotRegular => "not a regular file".into(),
            Skip::SymlinkLoop => "symbolic link loop".into(),
            Skip::Corrupt(why) => format!("damaged: {why}"),
            Skip::Crashed(how) => format!("the extraction worker crashed reading it ({how})"),
            Skip::TimedOut => "reading it took longer than files.worker_timeout_secs".into(),
            Skip::OutOfMemory => "reading it needed more memory than files.worker_memory_mb".into(),
        }
    }

    /// Whether the extraction worker failed on it (crashed, hung or ran out of memory).
    pub fn is_worker_failure(&self) -> bool {
        matches!(self, Skip::Crashed(_) | Skip::TimedOut | Skip::OutOfMemory)
    }

    /// Whether this skip is remembered for the file as it is (its path, size and modified time),
    /// so it is not read again until it changes: the worker's failures and damaged documents,
    /// which would otherwise be read (and fail, slowly) at every `add` and daemon start. Skips
    /// that cost nothing to find again, or that can change without the file changing (its
    /// permissions), are not.
    pub fn is_remembered(&self) -> bool {
        !matches!(
            self,
            Skip::Binary | Skip::TooLarge | Skip::Empty | Skip::Unreadable(_) | Skip::Vanished | Skip::NotRegular | Skip::SymlinkLoop
        )
    }
}

/// Reads one file and has the extraction worker extract it (see [`worker`]). `max_bytes` is
/// checked before reading. Errs only when no worker can be started.
pub fn extract_file(path: &Path, max_bytes: u64, worker: &mut worker::Worker) -> Result<Result<Document, Skip>, worker::WorkerError> {
    let bytes = match read_file(path, max_bytes) {
        Ok(b) => b,
        Err(skip) => return Ok(Err(skip)),
    };
    // The worker needs only the name, for the type hint: not the folders above it.
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    worker.extract(&name, &bytes)
}

/// Reads one file's bytes, at most `max_bytes` (checked before reading and while reading).
pub fn read_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, Skip> {
    let meta = std::fs::metadata(path).map_err(io_skip)?;
    if !meta.is_file() {
        return Err(Skip::NotRegular);
    }
    if meta.len() > max_bytes {
        return Err(Skip::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    let file = std::fs::File::open(path).map_err(io_skip)?;
    // The file may grow while we read: never read past the cap.
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(io_skip)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Skip::TooLarge);
    }
    Ok(bytes)
}

/// Extracts text from bytes, using the path's name as a hint for the type.
pub fn extract_bytes(path: &Path, bytes: &[u8]) -> Result<Document, Skip> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Skip::Empty);
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let doc = if bytes.starts_with(b"%PDF-") || ext == "pdf" {
        // Only the worker links the PDF reader (poppler), and it reads PDFs before this.
        return Err(Skip::Corrupt("PDFs are read by the engram-extract worker".into()));
    } else if ext == "eml" || (ext.is_empty() && formats::looks_like_email(bytes)) {
        formats::email(bytes)?
    } else if bytes.starts_with(b"PK\x03\x04") {
        // DOCX, PPTX, XLSX, ODT, ODP, ODS, EPUB, told apart by what the zip holds; others are binary.
        office::zip_document(bytes)?
    } else if bytes.starts_with(OLE_MAGIC) && contains(bytes, &utf16le("EncryptedPackage")) {
        // A password-protected DOCX, XLSX or PPTX is an encrypted package inside a compound file.
        return Err(password_protected());
    } else if bytes.starts_with(OLE_MAGIC) && matches!(ext.as_str(), "xls" | "xlt" | "xla") {
        sheets::guarded(|| sheets::xls(bytes))?
    } else if bytes.starts_with(OLE_MAGIC) && matches!(ext.as_str(), "doc" | "dot") {
        legacy::doc(bytes)?
    } else if bytes.starts_with(b"{\\rtf") {
        rtf::rtf(bytes)?
    } else {
        let (text, _encoding) = decode_text(bytes).ok_or(Skip::Binary)?;
        match ext.as_str() {
            "html" | "htm" | "xhtml" => formats::html(&text),
            "md" | "markdown" => Document { title: markdown_title(&text), ..Document::new(text, DocType::Markdown) },
            _ if calendar::is_calendar(&text) => calendar::calendar(&text),
            e if is_code(e) => Document::new(text, DocType::Code),
            _ if text.trim_start().starts_with("<!DOCTYPE html") || text.trim_start().starts_with("<html") => formats::html(&text),
            _ => Document::new(text, DocType::Text),
        }
    };
    if doc.text.trim().is_empty() {
        return Err(Skip::Empty);
    }
    Ok(doc)
}

/// The compound-file container of legacy Office documents (XLS, DOC, PPT).
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An office document that needs a password to open.
fn password_protected() -> Skip {
    Skip::Unreadable("protected by a password".into())
}

fn io_skip(e: std::io::Error) -> Skip {
    match e.kind() {
        std::io::ErrorKind::NotFound => Skip::Vanished,
        _ => Skip::Unreadable(e.to_string()),
    }
}

fn markdown_title(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("# "))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|t| !t.is_empty())
}

fn is_code(ext: &str) -> bool {
    matches!(
        ext,
        "rs" | "py" | "js" | "ts" | "tsx" | "jsx" | "go" | "c" | "h" | "cc" | "cpp" | "hpp" | "java" | "kt" | "swift"
            | "rb" | "php" | "cs" | "sh" | "bash" | "zsh" | "fish" | "sql" | "toml" | "yaml" | "yml" | "json" | "css"
            | "scss" | "lua" | "r" | "scala" | "hs" | "ml" | "ex" | "exs" | "erl" | "clj" | "vim" | "el" | "pl" | "m"
            | "ini" | "cfg" | "conf" | "xml" | "gradle" | "dockerfile" | "makefile" | "cmake" | "proto" | "zig" | "nim" | "dart"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_title_is_first_heading() {
        let d = extract_bytes(Path::new("n.md"), b"intro\n# Lease notes\nbody").unwrap();
        assert_eq!(d.title.as_deref(), Some("Lease notes"));
        assert_eq!(d.doc_type, DocType::Markdown);
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(extract_bytes(Path::new("e.txt"), b" \n\t ").unwrap_err(), Skip::Empty);
        assert_eq!(extract_bytes(Path::new("e.txt"), b"").unwrap_err(), Skip::Empty);
    }

    #[test]
    fn missing_file_is_vanished() {
        assert_eq!(read_file(Path::new("/nonexistent/engram/x.txt"), 100).unwrap_err(), Skip::Vanished);
    }

    #[test]
    fn cap_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.txt");
        std::fs::write(&p, "a".repeat(200)).unwrap();
        assert_eq!(read_file(&p, 100).unwrap_err(), Skip::TooLarge);
        assert_eq!(read_file(&p, 200).unwrap().len(), 200);
    }

    #[test]
    fn the_section_of_an_offset_is_the_last_that_began_before_it() {
        let s = |start, label: &str| Section { start, label: label.into() };
        let sections = [s(0, "page 1"), s(10, "page 2"), s(25, "page 3")];
        assert_eq!(section_at(&sections, 0), Some("page 1"));
        assert_eq!(section_at(&sections, 12), Some("page 2"));
        assert_eq!(section_at(&sections, 25), Some("page 3"));
        assert_eq!(section_at(&sections, 999), Some("page 3"));
        assert_eq!(section_at(&[s(5, "sheet A")], 2), None);
        assert_eq!(section_at(&[], 2), None);
    }

    #[test]
    fn unknown_extension_text_is_text() {
        let d = extract_bytes(Path::new("notes.weird"), b"plain words").unwrap();
        assert_eq!(d.doc_type, DocType::Text);
    }
}
