//! Office documents and e-books through `engram add` and `engram search` (issue 18): a word from
//! each format is found, with the sheet or slide it is on; Chinese too; a zip bomb is skipped.

use std::path::Path;

use crate::util::Engram;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats").join(name)).unwrap()
}

/// The results whose source is the file `name`: (kind, title, location).
fn hits(e: &Engram, query: &str, name: &str) -> Vec<(String, String, Option<String>)> {
    let out = e.run(&["search", "--json", "--limit", "20", query]).ok().json();
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"].as_str().unwrap().ends_with(&format!("/{name}")))
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["title"].as_str().unwrap_or("").to_string(),
                r["location"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// A zip shaped like a Word file whose body expands a thousandfold.
fn zip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("[Content_Types].xml", opts).unwrap();
    w.write_all(br#"<Types><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).unwrap();
    w.start_file("word/document.xml", opts).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..16 {
        w.write_all(&chunk).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn each_office_and_ebook_format_is_found_with_its_sheet_or_slide() {
    let e = Engram::init();
    let dir = e.folder("documents");
    for f in ["notes.docx", "notes.doc", "notes.odt", "notes.rtf", "notes.epub", "budget.xlsx", "budget.ods", "budget.xls", "talk.pptx", "talk.odp"] {
        std::fs::write(dir.join(f), fixture(f)).unwrap();
    }
    // A Chinese RTF as WordPad writes it: GBK bytes as \'hh under \ansicpg936.
    let (gbk, _, _) = encoding_rs::GBK.encode("灯塔看守人每小时记录一次天气");
    let hex: String = gbk.iter().map(|b| format!("\\'{b:02x}")).collect();
    let rtf = format!("{{\\rtf1\\ansi\\ansicpg936\\deff0{{\\fonttbl{{\\f0\\fnil\\fcharset134 \\'cb\\'ce\\'cc\\'e5;}}}}\\f0 lighthouse log\\par {hex}\\par}}");
    std::fs::write(dir.join("gbk.rtf"), rtf).unwrap();
    std::fs::write(dir.join("bomb.docx"), zip_bomb()).unwrap();

    let out = e.run(&["add", "--json", dir.to_str().unwrap()]).ok();
    let report = out.json();
    assert_eq!(report["added"], 11, "{report}");
    assert_eq!(report["skipped"]["corrupt"], 1, "{report}");
    let skipped = report["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("bomb.docx"), "{report}");
    assert!(skipped[0]["detail"].as_str().unwrap().contains("zip bomb limit"), "{report}");

    // One hit from the file: a file memory, titled by the document's own title (then its name).
    let file = |title: &str, name: &str, location: Option<&str>| vec![("file".to_string(), format!("{title} · {name}"), location.map(str::to_string))];
    let lease = "Greenhouse lease notes";
    // Word processing and e-books: title from the document's metadata.
    assert_eq!(hits(&e, "quince conservatory", "notes.docx"), file(lease, "notes.docx", None));
    assert_eq!(hits(&e, "温室", "notes.docx"), file(lease, "notes.docx", None));
    assert_eq!(hits(&e, "sloe", "notes.doc"), file(lease, "notes.doc", None));
    assert_eq!(hits(&e, "茶园", "notes.doc"), file(lease, "notes.doc", None));
    assert_eq!(hits(&e, "apricot", "notes.odt"), file(lease, "notes.odt", None));
    assert_eq!(hits(&e, "果园", "notes.odt"), file(lease, "notes.odt", None));
    assert_eq!(hits(&e, "damson", "notes.rtf"), file(lease, "notes.rtf", None));
    assert_eq!(hits(&e, "花园", "notes.rtf"), file(lease, "notes.rtf", None));
    assert_eq!(hits(&e, "medlar", "notes.epub"), file(lease, "notes.epub", Some("chapter 1")));
    assert_eq!(hits(&e, "葡萄园", "notes.epub"), file(lease, "notes.epub", Some("chapter 1")));
    assert_eq!(hits(&e, "灯塔", "gbk.rtf").len(), 1);
    // Spreadsheets: the sheet a row is on.
    let budget = "Household budget";
    for f in ["budget.xlsx", "budget.ods", "budget.xls"] {
        assert_eq!(hits(&e, "marmalade", f), file(budget, f, Some("sheet Budget")), "{f}");
    }
    assert_eq!(hits(&e, "Stromness", "budget.xlsx"), file(budget, "budget.xlsx", Some("sheet Travel")));
    assert_eq!(hits(&e, "上海", "budget.xlsx"), file(budget, "budget.xlsx", Some("sheet Travel")));
    assert_eq!(hits(&e, "Kirkwall", "budget.ods"), file(budget, "budget.ods", Some("sheet Travel")));
    assert_eq!(hits(&e, "杭州", "budget.ods"), file(budget, "budget.ods", Some("sheet Travel")));
    assert_eq!(hits(&e, "Lerwick", "budget.xls"), file(budget, "budget.xls", Some("sheet Travel")));
    assert_eq!(hits(&e, "苏州", "budget.xls"), file(budget, "budget.xls", Some("sheet Travel")));
    // Slides: the slide number.
    let talk = "Beekeeping talk";
    assert_eq!(hits(&e, "oxalic", "talk.pptx"), file(talk, "talk.pptx", Some("slide 2")));
    assert_eq!(hits(&e, "八月", "talk.pptx"), file(talk, "talk.pptx", Some("slide 3")));
    assert_eq!(hits(&e, "formic", "talk.odp"), file(talk, "talk.odp", Some("slide 2")));
    assert_eq!(hits(&e, "九月", "talk.odp"), file(talk, "talk.odp", Some("slide 3")));
}
