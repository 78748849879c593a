//! PDFs through poppler (poppler-glib): the text of each page in order, a section per page so a
//! hit can say "page 12", title and author from the document's metadata, and OCR (Tesseract, the
//! screen's languages) for pages that have no text layer, up to a page limit.
//!
//! Poppler is GPL-2.0-or-later and brings glib and cairo: it is linked into this worker only,
//! never into the engram library or the `engram` binary. CJK PDFs that name a predefined CMap
//! (UniGB-UCS2-H, GBK-EUC-H, 90ms-RKSJ-H, …) read through Debian's poppler-data, which poppler
//! finds under /usr/share/poppler by itself.
//!
//! Nothing here says what a document holds: errors are fixed phrases, and glib's log (where
//! poppler-glib sends its parser warnings, which can quote content-stream operators) is dropped.
//!
//! Not for: other formats (the library's `extract`), limits and sandboxing (main.rs).
// Built without the `capture` feature there is no OCR: rendering pages for it goes unused.
#![cfg_attr(not(feature = "capture"), allow(dead_code, unused_imports))]

use std::cell::RefCell;
use std::sync::Once;

#[cfg(feature = "capture")]
use engram::extract::ocr::Ocr;
use engram::extract::{DocType, Document, Section, Skip};

pub use engram::extract::worker::PdfOptions;

/// Scanned pages are rendered at this resolution for OCR (Tesseract reads best at ~300 dpi)...
const OCR_DPI: f64 = 300.0;
/// ...unless the page is so large that it would exceed this many pixels; then it is scaled down.
const OCR_MAX_PIXELS: f64 = 40_000_000.0;
/// Tesseract words below this confidence (0–100) are dropped, as for the screen.
const OCR_MIN_CONFIDENCE: f32 = 50.0;

/// Reads a PDF from its bytes.
///
/// Pages are joined by a blank line; each page that has text gets a section "page N", N being
/// its position in the file counted from 1. That is the number a viewer's "go to page" takes
/// and it always exists; the printed label (`/PageLabels`: "iv", "A-3", a book's page 12 that
/// is the file's 14th) is often absent or reused, so it is not used.
pub fn extract(bytes: &[u8], opts: &PdfOptions) -> Result<Document, Skip> {
    quiet_glib_log();
    let doc = open(bytes)?;
    let n_pages = doc.n_pages().max(0);
    let mut text = String::new();
    let mut sections = Vec::new();
    // No picture anywhere, nothing scanned: spares asking poppler page by page.
    let mut ocr_left = if has_image_objects(bytes) { opts.ocr_pages } else { 0 };
    let mut ocr_failed = None;
    for index in 0..n_pages {
        let Some(page) = doc.page(index) else { continue };
        let mut page_text = dehyphenate(&tidy(&page_text(&page)));
        let text_layer_len = page_text.len();
        for value in form_values(&page).into_iter().chain(free_text(&page)) {
            let value = tidy(&value);
            // A flattened form or text box is in the text layer already.
            if !value.is_empty() && !page_text[..text_layer_len].contains(&value) {
                if !page_text.is_empty() {
                    page_text.push('\n');
                }
                page_text.push_str(&value);
            }
        }
        if !has_words(&page_text) {
            page_text.clear();
            // Every page rendered counts against the limit, blank ones too: rendering costs.
            if ocr_left > 0 && ocr_failed.is_none() && is_scanned(&page) {
                ocr_left -= 1;
                match ocr_page(&page, &opts.ocr_languages) {
                    Ok(Some(t)) => page_text = tidy(&t),
                    Ok(None) => {}
                    Err(why) => ocr_failed = Some(why),
                }
            }
        }
        if page_text.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        sections.push(Section { start: text.len(), label: format!("page {}", index + 1) });
        text.push_str(&page_text);
    }
    if text.trim().is_empty() {
        return Err(match ocr_failed {
            Some(why) => Skip::Unreadable(why),
            None => Skip::Empty,
        });
    }
    let meta = |s: Option<glib::GString>| s.map(|s| tidy(&s).replace('\n', " ")).filter(|s| !s.is_empty());
    Ok(Document {
        title: meta(doc.title()),
        author: meta(doc.author()),
        text,
        doc_type: DocType::Pdf,
        stated_time: None,
        sections,
    })
}

/// The text of a page, from poppler's text layer with the box of each character.
///
/// `page.text()` is a selection of the page's width and height from its corner; this selects an
/// area as large as can be, so whatever poppler kept of the page is in it (poppler-glib keeps what
/// lies inside the crop box, the part a viewer shows; pdftotext also reads the rest of the media
/// box, such as printers' marks). A selection's text runs blocks on one line together
/// ("1.0 ]BlackPoint") and puts no space between glyphs a gap apart (tables, spaced-out
/// letters): the character boxes show where a gap or a change of line is, and a space or a line
/// break is put there, as pdftotext does.
fn page_text(page: &poppler::Page) -> String {
    use glib::translate::{ToGlibPtr, ToGlibPtrMut};
    let mut all = poppler::Rectangle::new();
    all.set_x1(-1e7);
    all.set_y1(-1e7);
    all.set_x2(1e7);
    all.set_y2(1e7);
    let Some(text) = page.text_for_area(&mut all) else { return String::new() };
    let mut rects: *mut poppler::ffi::PopplerRectangle = std::ptr::null_mut();
    let mut n: std::ffi::c_uint = 0;
    // SAFETY: poppler fills `rects` with `n` rectangles it allocated with g_malloc (or leaves it
    // null); they are copied out and freed here.
    let boxes: Vec<[f64; 4]> = unsafe {
        let ok = poppler::ffi::poppler_page_get_text_layout_for_area(page.to_glib_none().0, all.to_glib_none_mut().0, &mut rects, &mut n);
        let boxes = if ok != 0 && !rects.is_null() {
            std::slice::from_raw_parts(rects, n as usize).iter().map(|r| [r.x1, r.y1, r.x2, r.y2]).collect()
        } else {
            Vec::new()
        };
        glib::ffi::g_free(rects.cast());
        boxes
    };
    let n_chars = text.chars().count();
    if boxes.len() <= n_chars + 1 {
        return spaced_by_boxes(&text, &boxes);
    }
    // The text stopped at a NUL character (a glyph some fonts map to U+0000): the boxes go on.
    // The lines after it are asked for one band at a time, so one NUL costs the rest of its
    // line only.
    let mut out = spaced_by_boxes(&text, &boxes[..n_chars]);
    let mut band: Option<(f64, f64)> = None;
    let mut bands = Vec::new();
    for b in &boxes[n_chars + 1..] {
        let (y1, y2) = (b[1].min(b[3]), b[1].max(b[3]));
        band = match band {
            Some((t, u)) if y1 < u && y2 > t => Some((t.min(y1), u.max(y2))),
            Some(done) => {
                bands.push(done);
                Some((y1, y2))
            }
            None => Some((y1, y2)),
        };
    }
    bands.extend(band);
    // A band's selection can reach into the lines around it: each line is kept once.
    let mut seen = std::collections::HashSet::new();
    for (top, bottom) in bands.into_iter().take(10_000) {
        let mut area = poppler::Rectangle::new();
        area.set_x1(-1e7);
        area.set_x2(1e7);
        area.set_y1(top);
        area.set_y2(bottom);
        let Some(t) = page.text_for_area(&mut area) else { continue };
        for line in t.lines() {
            if seen.insert(line.to_string()) {
                out.push('\n');
                out.push_str(line);
            }
        }
    }
    out
}

/// What was typed or chosen in the page's form fields (text fields that are not passwords, and
/// the selected items of lists), in the page's order. A filled-in form's answers are in its
/// fields, not in its text layer; pdftotext reads them from the fields' appearances.
fn form_values(page: &poppler::Page) -> Vec<String> {
    use glib::translate::{from_glib_none, ToGlibPtr};
    let mut values = Vec::new();
    // poppler lists the fields last first.
    for mapping in page.form_field_mapping().into_iter().rev() {
        let raw: *const poppler::ffi::PopplerFormFieldMapping = mapping.to_glib_none().0;
        // SAFETY: `raw` points to the mapping held above; its field, when set, is a live
        // PopplerFormField, to which from_glib_none takes a reference of its own.
        let field: Option<poppler::FormField> = unsafe {
            let f = (*raw).field;
            (!f.is_null()).then(|| from_glib_none(f))
        };
        let Some(field) = field else { continue };
        match field.field_type() {
            poppler::FormFieldType::Text if !field.text_is_password() => values.extend(field.text_get_text().map(String::from)),
            poppler::FormFieldType::Choice => {
                for i in 0..field.choice_get_n_items().clamp(0, 10_000) {
                    if field.choice_is_item_selected(i) {
                        values.extend(field.choice_get_item(i).map(String::from));
                    }
                }
                if field.choice_is_editable() {
                    values.extend(field.choice_get_text().map(String::from));
                }
            }
            _ => {}
        }
    }
    values
}

/// The text of the page's text-box annotations (FreeText: text typed onto the page in a viewer,
/// which lives in the annotation, not in the text layer), in the page's order.
fn free_text(page: &poppler::Page) -> Vec<String> {
    use glib::translate::{from_glib_none, ToGlibPtr};
    use poppler::prelude::AnnotExt;
    let mut texts = Vec::new();
    for mapping in page.annot_mapping().into_iter().rev() {
        let raw: *const poppler::ffi::PopplerAnnotMapping = mapping.to_glib_none().0;
        // SAFETY: as in `form_values`: the mapping is held above, its annotation is live and
        // from_glib_none takes a reference of its own.
        let annot: Option<poppler::Annot> = unsafe {
            let a = (*raw).annot;
            (!a.is_null()).then(|| from_glib_none(a))
        };
        if let Some(annot) = annot.filter(|a| a.annot_type() == poppler::AnnotType::FreeText) {
            texts.extend(annot.contents().map(String::from));
        }
    }
    texts
}

/// `text` with a space put between two characters that touch in the text but stand apart on the
/// page (see [`separator`]), and a line break between two that are not on one line. `boxes` holds one box (x1, y1, x2, y2) per character; when it does not, `text` is kept.
fn spaced_by_boxes(text: &str, boxes: &[[f64; 4]]) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() != boxes.len() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut prev: Option<(char, [f64; 4])> = None;
    for (&c, &b) in chars.iter().zip(boxes) {
        if c.is_whitespace() {
            prev = None;
            out.push(c);
            continue;
        }
        if let Some((pc, p)) = prev {
            match separator(p, b) {
                // Spaced-out Chinese or Japanese is still one run of text: a space would split
                // the words that search finds across it.
                Some(' ') if is_cjk(pc) && is_cjk(c) => {}
                Some(sep) => out.push(sep),
                None => {}
            }
        }
        out.push(c);
        prev = Some((c, b));
    }
    out
}

fn open(bytes: &[u8]) -> Result<poppler::Document, Skip> {
    if bytes.is_empty() {
        return Err(Skip::Empty);
    }
    let data = glib::Bytes::from_owned(bytes.to_vec());
    // No password: a PDF encrypted with an empty user password (the usual "no copying" kind)
    // opens; one that needs a password to be read does not.
    poppler::Document::from_bytes(&data, None).map_err(|e| {
        Skip::Corrupt(
            match e.kind::<poppler::Error>() {
                Some(poppler::Error::Encrypted) => "encrypted PDF: a password is needed to read it",
                Some(poppler::Error::Damaged) | Some(poppler::Error::BadCatalog) => "PDF structure is damaged",
                _ => "not a readable PDF",
            }
            .into(),
        )
    })
}

/// glib's default log handler prints to stderr; poppler-glib logs the parser's complaints
/// through it (normally at info level, hidden, unless G_MESSAGES_DEBUG is set). Drop them all.
fn quiet_glib_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| glib::log_set_default_handler(|_, _, _| {}));
}

/// Whether a page's text layer has anything to read: any letter or digit means it has one, and
/// OCR would only repeat it.
fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// Spaces collapsed within lines, blank-line runs to one, control characters (form feeds) gone.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines() {
        let mut words = line.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        for (i, w) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(w);
        }
    }
    out
}

/// Words broken across lines with a hyphen ("limit-" then "ing") made whole again, as pdftotext
/// does: a line ending in a letter and a hyphen, followed by a line starting with a lowercase
/// letter, is joined to it without the hyphen.
fn dehyphenate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let next_lower = lines.peek().and_then(|n| n.chars().next()).is_some_and(char::is_lowercase);
        let mut rev = line.chars().rev();
        let hyphen = matches!(rev.next(), Some('-' | '\u{ad}' | '\u{2010}'));
        if hyphen && next_lower && rev.next().is_some_and(char::is_alphabetic) {
            let cut = line.char_indices().next_back().map_or(0, |(i, _)| i);
            out.push_str(&line[..cut]);
            continue;
        }
        out.push_str(line);
        if lines.peek().is_some() {
            out.push('\n');
        }
    }
    out
}

#[cfg(feature = "capture")]
thread_local! {
    /// One Tesseract per worker, started at the first scanned page: loading the language data
    /// takes about a second, and a worker serves many files.
    static OCR: RefCell<Option<(String, Ocr)>> = const { RefCell::new(None) };
}

/// Built without the `capture` feature, engram has no OCR: a scanned page is said to be one.
#[cfg(not(feature = "capture"))]
fn ocr_page(_: &poppler::Page, _: &str) -> Result<Option<String>, String> {
    Err("scanned PDF, and this engram was built without OCR (the cargo feature `capture`)".to_string())
}

/// The OCR text of a page without a text layer, `None` when the page is blank. An error is a
/// fixed phrase (Tesseract could not start, or failed).
#[cfg(feature = "capture")]
fn ocr_page(page: &poppler::Page, langs: &str) -> Result<Option<String>, String> {
    let Some((gray, width, height, dpi)) = render_gray(page) else { return Ok(None) };
    if is_blank(&gray) {
        return Ok(None);
    }
    OCR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(l, _)| l != langs) {
            let ocr = Ocr::new(langs, OCR_MIN_CONFIDENCE)
                .map_err(|_| format!("scanned PDF, and OCR could not start with languages {langs}"))?;
            *cell = Some((langs.to_string(), ocr));
        }
        let (_, ocr) = cell.as_mut().expect("just set");
        match ocr.page_text(&gray, width, height, dpi) {
            Ok(t) => Ok(Some(t)),
            Err(_) => Err("scanned PDF, and OCR failed on a page".to_string()),
        }
    })
}

/// Whether the file holds any image object (`/Subtype /Image`). An image is a stream, and a
/// stream is never inside a compressed object stream, so its dictionary is in the file's bytes
/// as written. Pictures written inline in a page's content (small ones, by convention) are not
/// seen. Listing a page's images makes poppler interpret the whole page, which for some vector
/// drawings (function-based shadings) costs more than a minute and gigabytes.
fn has_image_objects(bytes: &[u8]) -> bool {
    const SUBTYPE: &[u8] = b"/Subtype";
    let mut rest = bytes;
    while let Some(at) = find(rest, SUBTYPE) {
        rest = &rest[at + SUBTYPE.len()..];
        let value = rest.iter().position(|b| !b" \t\r\n\x0c\0".contains(b)).map_or(&[][..], |i| &rest[i..]);
        if value.starts_with(b"/Image") && value.get(6).is_none_or(|b| !b.is_ascii_alphanumeric()) {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether a page without a text layer looks scanned: pictures cover at least a quarter of it.
/// A scan is a picture of the page, whole or in strips; a page of only vector drawing (a chart,
/// a shading, a blank form's lines) has nothing OCR can read, and rendering it for Tesseract can
/// cost more than the rest of the file. Listing a page's images places them without decoding.
fn is_scanned(page: &poppler::Page) -> bool {
    use glib::translate::ToGlibPtr;
    let (w, h) = page.size();
    let page_area = w * h;
    if !(page_area.is_finite() && page_area >= 1.0) {
        return false;
    }
    let mut covered = 0.0;
    for mapping in page.image_mapping() {
        let raw: *const poppler::ffi::PopplerImageMapping = mapping.to_glib_none().0;
        // SAFETY: `raw` points to the mapping held above, a plain struct read by value.
        let a = unsafe { (*raw).area };
        let (x1, x2) = (a.x1.min(a.x2).max(0.0), a.x1.max(a.x2).min(w));
        let (y1, y2) = (a.y1.min(a.y2).max(0.0), a.y1.max(a.y2).min(h));
        if x2 > x1 && y2 > y1 {
            covered += (x2 - x1) * (y2 - y1);
        }
    }
    covered * 4.0 >= page_area
}

/// The page rendered white-backed in 8-bit gray at [`OCR_DPI`] (less for huge pages), with its
/// width, height and resolution. `None` for a page of no size or when cairo cannot allocate it.
fn render_gray(page: &poppler::Page) -> Option<(Vec<u8>, u32, u32, u32)> {
    let (w_pt, h_pt) = page.size();
    if !(w_pt.is_finite() && h_pt.is_finite()) || w_pt < 1.0 || h_pt < 1.0 {
        return None;
    }
    let mut dpi = OCR_DPI;
    let pixels = |dpi: f64| (w_pt * dpi / 72.0) * (h_pt * dpi / 72.0);
    if pixels(dpi) > OCR_MAX_PIXELS {
        dpi *= (OCR_MAX_PIXELS / pixels(dpi)).sqrt();
    }
    let scale = dpi / 72.0;
    let (w, h) = ((w_pt * scale).ceil() as i32, (h_pt * scale).ceil() as i32);
    if w < 8 || h < 8 || w > 32_000 || h > 32_000 {
        return None;
    }
    let mut surface = cairo::ImageSurface::create(cairo::Format::Rgb24, w, h).ok()?;
    {
        let cr = cairo::Context::new(&surface).ok()?;
        cr.set_source_rgb(1.0, 1.0, 1.0);
        cr.paint().ok()?;
        cr.scale(scale, scale);
        page.render(&cr);
    }
    surface.flush();
    let stride = surface.stride() as usize;
    let data = surface.data().ok()?;
    let mut gray = Vec::with_capacity(w as usize * h as usize);
    for row in data.chunks(stride).take(h as usize) {
        for px in row[..w as usize * 4].chunks_exact(4) {
            // Rgb24 is a native-endian 0x00RRGGBB word.
            let v = u32::from_ne_bytes([px[0], px[1], px[2], px[3]]);
            let (r, g, b) = ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
            gray.push(((r * 299 + g * 587 + b * 114) / 1000) as u8);
        }
    }
    Some((gray, w as u32, h as u32, dpi.round() as u32))
}

/// A page with almost no dark pixels (under 1 in 2,000) has nothing to read.
fn is_blank(gray: &[u8]) -> bool {
    let dark = gray.iter().filter(|&&v| v < 128).count();
    dark * 2000 < gray.len()
}

fn is_cjk(c: char) -> bool {
    engram::text::is_cjk(c) || engram::text::is_cjk_punctuation(c)
}

/// What goes between two consecutive glyphs with boxes `p` then `b` (x1, y1, x2, y2): a line
/// break when they are on different lines, a space when they are on one line (or one column, for
/// vertical or rotated text) more than a sixth of a glyph apart, else nothing.
fn separator(p: [f64; 4], b: [f64; 4]) -> Option<char> {
    let (pw, ph) = ((p[2] - p[0]).abs(), (p[3] - p[1]).abs());
    let (bw, bh) = ((b[2] - b[0]).abs(), (b[3] - b[1]).abs());
    let v_overlap = p[3].min(b[3]) - p[1].max(b[1]);
    let h_overlap = p[2].min(b[2]) - p[0].max(b[0]);
    let dx = (b[0] - p[2]).max(p[0] - b[2]).max(0.0);
    let dy = (b[1] - p[3]).max(p[1] - b[3]).max(0.0);
    let size = pw.max(ph).max(bw).max(bh).max(0.1);
    if v_overlap >= 0.5 * ph.min(bh) {
        // One horizontal line: a gap, or a step back to the left, is a space.
        return (dx > ph.max(bh).max(0.1) / 6.0 || b[2] < p[0]).then_some(' ');
    }
    if h_overlap >= 0.5 * pw.min(bw) && dy <= size {
        // One column (vertical or rotated text).
        return (dy > pw.max(bw).max(0.1) / 6.0).then_some(' ');
    }
    if dx <= size / 6.0 && dy <= size / 6.0 {
        // Touching at an angle (text set on a slant).
        return None;
    }
    Some('\n')
}

#[cfg(test)]
#[path = "../../../tests/util/pdf.rs"]
mod make_pdf;

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pages: u32) -> PdfOptions {
        PdfOptions { ocr_pages: pages, ocr_languages: "eng+chi_sim".into() }
    }

    #[test]
    fn pages_become_sections_and_metadata_title_and_author() {
        let pdf = make_pdf::text_pdf(&["First page about gooseberries", "", "Third page about quinces"], Some(("Fruit notes", "A. Gardener")));
        let d = extract(&pdf, &opts(0)).unwrap();
        assert_eq!(d.doc_type, DocType::Pdf);
        assert_eq!(d.text, "First page about gooseberries\n\nThird page about quinces");
        assert_eq!(d.title.as_deref(), Some("Fruit notes"));
        assert_eq!(d.author.as_deref(), Some("A. Gardener"));
        let labels: Vec<_> = d.sections.iter().map(|s| (s.start, s.label.as_str())).collect();
        assert_eq!(labels, [(0, "page 1"), (31, "page 3")]);
        assert_eq!(engram::extract::section_at(&d.sections, d.text.find("quinces").unwrap()), Some("page 3"));
    }

    #[test]
    fn chinese_with_a_predefined_ucs2_cmap_reads_exactly() {
        let d = extract(&make_pdf::chinese_pdf(), &opts(0)).unwrap();
        assert_eq!(d.text, make_pdf::CHINESE);
        assert_eq!(d.sections, [Section { start: 0, label: "page 1".into() }]);
    }

    #[test]
    fn japanese_with_shift_jis_and_ucs2_cmaps_reads_exactly() {
        let d = extract(&make_pdf::japanese_pdf(), &opts(0)).unwrap();
        assert_eq!(d.text, format!("{}\n{}", make_pdf::JAPANESE_SJIS, make_pdf::JAPANESE_UCS2));
    }

    #[test]
    fn a_scanned_page_is_read_by_ocr_within_the_page_limit() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = make_pdf::scanned_pdf(dir.path(), "Quarterly invoice for marmalade");
        let d = extract(&pdf, &opts(5)).unwrap();
        assert!(d.text.contains("invoice") && d.text.contains("marmalade"), "{:?}", d.text);
        assert_eq!(d.sections, [Section { start: 0, label: "page 1".into() }]);
        // With OCR off (a limit of 0) the same file has nothing to read.
        assert_eq!(extract(&pdf, &opts(0)).unwrap_err(), Skip::Empty);
    }

    #[test]
    fn only_pages_mostly_covered_by_pictures_count_as_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let first_page = |pdf: &[u8]| open(pdf).unwrap().page(0).unwrap();
        assert!(is_scanned(&first_page(&make_pdf::scanned_pdf(dir.path(), "A scanned receipt"))));
        // Black bars drawn as vector paths, text-like to a renderer but no picture.
        let drawing = make_pdf::assemble(
            &[
                b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
                make_pdf::stream("", b"0 g 72 700 400 20 re f 72 600 300 20 re f"),
            ],
            "",
        );
        assert!(!is_scanned(&first_page(&drawing)));
        assert_eq!(extract(&drawing, &opts(5)).unwrap_err(), Skip::Empty);
        assert!(!is_scanned(&first_page(&make_pdf::text_pdf(&[""], None))));
    }

    #[test]
    fn image_objects_are_found_in_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(has_image_objects(&make_pdf::scanned_pdf(dir.path(), "A scanned receipt")));
        assert!(has_image_objects(b"<</Type/XObject/Subtype\n/Image/Width 2>>"));
        // A procedure-set name or another subtype is no image.
        assert!(!has_image_objects(b"<< /ProcSet [/PDF /Text /ImageB /ImageC] /Subtype /Form >>"));
        assert!(!has_image_objects(b"/Subtype /ImageMask"));
        assert!(!has_image_objects(&make_pdf::text_pdf(&["no pictures here"], None)));
    }

    #[test]
    fn filled_in_form_fields_and_text_boxes_are_read_but_not_password_fields() {
        let pdf = make_pdf::form_pdf("Applicant name:", "Wilhelmina Quokka", "Zq7741pin", "Checked by the bursar");
        let d = extract(&pdf, &opts(0)).unwrap();
        assert_eq!(d.text, "Applicant name:\nWilhelmina Quokka\nChecked by the bursar");
    }

    #[test]
    fn a_password_protected_pdf_is_skipped_and_says_why() {
        let err = extract(&make_pdf::password_pdf(), &opts(0)).unwrap_err();
        assert_eq!(err, Skip::Corrupt("encrypted PDF: a password is needed to read it".into()));
    }

    #[test]
    fn damaged_and_truncated_pdfs_are_skipped_with_no_content_in_the_reason() {
        let mut truncated = make_pdf::text_pdf(&["Zqsecretword417 in a damaged file"], None);
        truncated.truncate(truncated.len() / 2);
        // Poppler rebuilds a lost cross-reference table, so the truncated file may still read.
        if let Err(Skip::Corrupt(why)) = extract(&truncated, &opts(0)) {
            assert!(!why.contains("Zqsecret"), "{why}");
        }
        for bytes in [&b"%PDF-1.4\n1 0 obj << /Type /Catalog"[..], b"not a pdf at all", b"%PDF-1.7\n\x00\xff garbage"] {
            assert!(matches!(extract(bytes, &opts(0)), Err(Skip::Corrupt(_))), "{:?}", extract(bytes, &opts(0)));
        }
        assert_eq!(extract(b"", &opts(0)).unwrap_err(), Skip::Empty);
    }

    #[test]
    fn glyphs_apart_get_a_space_and_glyphs_on_another_line_a_break() {
        let b = |x: f64, y: f64| [x, y, x + 5.0, y + 10.0];
        // "ab" touching, "c" a gap further, "d" on the next line, then a space the text has.
        let boxes = [b(0.0, 0.0), b(5.0, 0.0), b(20.0, 0.0), b(0.0, 14.0), b(5.0, 14.0), b(10.0, 14.0)];
        assert_eq!(spaced_by_boxes("abcd e", &boxes), "ab c\nd e");
        assert_eq!(spaced_by_boxes("租约到期 e", &boxes), "租约到\n期 e", "no space inside CJK");
        // Boxes that do not match the text leave it as it is.
        assert_eq!(spaced_by_boxes("abc", &boxes), "abc");
    }

    #[test]
    fn words_hyphenated_across_lines_are_joined() {
        assert_eq!(dehyphenate("it does so by limit-\ning the reach\nof those rights"), "it does so by limiting the reach\nof those rights");
        assert_eq!(dehyphenate("page 12 -\nnext\nSee-\nAlso\nend-"), "page 12 -\nnext\nSee-\nAlso\nend-");
    }

    #[test]
    fn tidy_collapses_spaces_and_blank_runs() {
        assert_eq!(tidy("  a   b \n\n\n c\u{c}\n"), "a b\n\nc");
        assert_eq!(tidy("\n\n x"), "x");
    }
}
