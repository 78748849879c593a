//! PDFs through `engram add` and `engram search` (issue 18): poppler in the extraction worker
//! reads Chinese and Japanese text in non-embedded fonts through predefined CMaps, a scanned page
//! through OCR, and each hit says which page it is on. The PDFs are made by tests/util/pdf.rs.

use crate::make_pdf;
use crate::util::Engram;

/// The first result for `query`: the file name of its source and its location.
fn top(e: &Engram, query: &str) -> (String, Option<String>) {
    let results = e.search(query);
    let r = results.first().unwrap_or_else(|| panic!("nothing found for {query}"));
    let name = r["source"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    (name, r["location"].as_str().map(str::to_string))
}

#[test]
fn chinese_japanese_and_scanned_pdfs_are_found_on_their_page() {
    let e = Engram::init();
    let docs = e.folder("docs");
    std::fs::write(docs.join("租约.pdf"), make_pdf::chinese_pdf()).unwrap();
    std::fs::write(docs.join("meeting.pdf"), make_pdf::japanese_pdf()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(docs.join("scan.pdf"), make_pdf::scanned_pdf(scratch.path(), "Quarterly invoice for marmalade")).unwrap();
    std::fs::write(
        docs.join("report.pdf"),
        make_pdf::text_pdf(&["An introduction", "", "The gooseberry harvest failed"], Some(("Harvest report", "A. Gardener"))),
    )
    .unwrap();
    let add = e.run(&["add", "--json", docs.to_str().unwrap()]).ok().json();
    assert_eq!(add["added"], 4, "{add}");

    let page1 = Some("page 1".to_string());
    assert_eq!(top(&e, "租赁合同"), ("租约.pdf".into(), page1.clone()));
    assert_eq!(top(&e, "续签"), ("租约.pdf".into(), page1.clone()));
    assert_eq!(top(&e, "東京駅"), ("meeting.pdf".into(), page1.clone()));
    assert_eq!(top(&e, "会議"), ("meeting.pdf".into(), page1.clone()));
    assert_eq!(top(&e, "marmalade"), ("scan.pdf".into(), page1.clone()));
    assert_eq!(top(&e, "gooseberry harvest"), ("report.pdf".into(), Some("page 3".into())));
    let r = e.search("gooseberry");
    assert_eq!(r[0]["title"].as_str().unwrap(), "Harvest report · report.pdf", "{r:?}");
}

/// Poppler (GPL) and the glib and cairo it brings are linked into the worker alone.
#[test]
fn poppler_glib_and_cairo_are_linked_into_the_worker_only() {
    let linked = |bin: &str| {
        let out = std::process::Command::new("ldd").arg(bin).output().expect("ldd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let engram = linked(env!("CARGO_BIN_EXE_engram"));
    for lib in ["libpoppler", "libglib-2.0", "libgio-2.0", "libcairo"] {
        assert!(!engram.contains(lib), "engram links {lib}:\n{engram}");
    }
    assert!(linked(env!("CARGO_BIN_EXE_engram-extract")).contains("libpoppler-glib"));
}

#[test]
fn the_everyday_engram_program_loads_no_capture_ocr_or_document_library() {
    let needed = |bin: &str| {
        let out = std::process::Command::new("readelf").args(["-d", bin]).output().expect("readelf");
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("(NEEDED)")).map(str::to_string).collect::<Vec<_>>()
    };
    // `engram search` beside a warm daemon starts this program: only the C library's own parts.
    let engram = needed(env!("CARGO_BIN_EXE_engram"));
    assert!(engram.iter().all(|l| ["libc.so", "libm.so", "libgcc_s.so", "ld-linux"].iter().any(|ok| l.contains(ok))), "{engram:#?}");
    // Tesseract is linked where it is used: the daemon and the extraction worker.
    assert!(needed(env!("CARGO_BIN_EXE_engram-daemon")).iter().any(|l| l.contains("libtesseract")));
    assert!(needed(env!("CARGO_BIN_EXE_engram-extract")).iter().any(|l| l.contains("libtesseract")));
}
