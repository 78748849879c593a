//! Small PDFs made byte by byte for the tests (xref offsets computed): plain text pages with
//! metadata, Chinese and Japanese text in non-embedded standard CJK fonts through predefined
//! CMaps (read with Debian's poppler-data), a scanned page (an image of text, no text layer) and
//! one that needs a password.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The Chinese test text (UniGB-UCS2-H, STSong-Light, Adobe-GB1).
pub const CHINESE: &str = "租赁合同将于明年八月到期，请提前续签";
/// The Japanese test text in Shift-JIS (90ms-RKSJ-H, HeiseiMin-W3, Adobe-Japan1)...
pub const JAPANESE_SJIS: &str = "東京駅で待ち合わせ";
/// ...and in UCS-2 (UniJIS-UCS2-H, HeiseiKakuGo-W5, Adobe-Japan1).
pub const JAPANESE_UCS2: &str = "来週の会議は延期されました";

/// A PDF of `objects` (object i + 1 is `objects[i]`; object 1 must be the catalog), with
/// `trailer` added to the trailer dictionary.
pub fn assemble(objects: &[Vec<u8>], trailer: &str) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R {trailer} >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

/// A stream object holding `data`, with `dict` entries added to its dictionary.
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut o = format!("<< /Length {} {dict} >>\nstream\n", data.len()).into_bytes();
    o.extend_from_slice(data);
    o.extend_from_slice(b"\nendstream");
    o
}

fn literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Pages of one line of Helvetica each (an empty string makes a page with nothing on it), and
/// an /Info dictionary with title and author when given.
pub fn text_pdf(pages: &[&str], info: Option<(&str, &str)>) -> Vec<u8> {
    text_pdf_sized(pages, info, 12)
}

/// [`text_pdf`] in a font of `size` points.
pub fn text_pdf_sized(pages: &[&str], info: Option<(&str, &str)>, size: u32) -> Vec<u8> {
    let n = pages.len();
    // 1 catalog, 2 pages, 3 font, then page i at 4 + 2i and its content at 5 + 2i, then info.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
    ];
    for (i, text) in pages.iter().enumerate() {
        objects.push(
            format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>", 5 + 2 * i)
                .into_bytes(),
        );
        let content = if text.is_empty() { String::new() } else { format!("BT /F1 {size} Tf 72 700 Td ({}) Tj ET", literal(text)) };
        objects.push(stream("", content.as_bytes()));
    }
    let mut trailer = String::new();
    if let Some((title, author)) = info {
        objects.push(format!("<< /Title ({}) /Author ({}) /Producer (engram tests) >>", literal(title), literal(author)).into_bytes());
        trailer = format!("/Info {} 0 R", objects.len());
    }
    assemble(&objects, &trailer)
}

/// One page of [`CHINESE`] in STSong-Light, a standard CJK font that is not embedded: a Type0
/// font with the predefined CMap UniGB-UCS2-H over a CIDFontType0 of Adobe-GB1-4, the text in
/// UCS-2 hex strings.
pub fn chinese_pdf() -> Vec<u8> {
    let content = format!("BT /F1 14 Tf 72 700 Td <{}> Tj ET", hex(&ucs2(CHINESE)));
    assemble(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_vec(),
            b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>".to_vec(),
            stream("", content.as_bytes()),
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R /DW 1000 >>".to_vec(),
            b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".to_vec(),
        ],
        "",
    )
}

/// One page with two lines of Japanese in two non-embedded Adobe-Japan1 fonts: [`JAPANESE_SJIS`]
/// in HeiseiMin-W3 through 90ms-RKSJ-H (Shift-JIS bytes), then [`JAPANESE_UCS2`] in
/// HeiseiKakuGo-W5 through UniJIS-UCS2-H.
pub fn japanese_pdf() -> Vec<u8> {
    let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(JAPANESE_SJIS);
    assert!(!unmappable);
    let content = format!(
        "BT /F1 14 Tf 72 700 Td <{}> Tj ET\nBT /F2 14 Tf 72 670 Td <{}> Tj ET",
        hex(&sjis),
        hex(&ucs2(JAPANESE_UCS2))
    );
    let cid_font = |name: &str, descriptor: usize| {
        format!("<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> /FontDescriptor {descriptor} 0 R /DW 1000 >>").into_bytes()
    };
    let descriptor = |name: &str| {
        format!("<< /Type /FontDescriptor /FontName /{name} /Flags 6 /FontBBox [-123 -257 1001 910] /ItalicAngle 0 /Ascent 857 /Descent -143 /CapHeight 718 /StemV 69 >>").into_bytes()
    };
    assemble(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>".to_vec(),
            b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiMin-W3-90ms-RKSJ-H /Encoding /90ms-RKSJ-H /DescendantFonts [7 0 R] >>".to_vec(),
            b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiKakuGo-W5-UniJIS-UCS2-H /Encoding /UniJIS-UCS2-H /DescendantFonts [8 0 R] >>".to_vec(),
            stream("", content.as_bytes()),
            cid_font("HeiseiMin-W3", 9),
            cid_font("HeiseiKakuGo-W5", 10),
            descriptor("HeiseiMin-W3"),
            descriptor("HeiseiKakuGo-W5"),
        ],
        "",
    )
}

/// A one-page PDF that is only a picture of `text` (large Helvetica rasterised by poppler's
/// `pdftoppm` at 150 dpi into a PNG): an image XObject whose data is the PNG's own zlib stream,
/// decoded with FlateDecode and the PNG predictor. No text layer at all.
pub fn scanned_pdf(dir: &Path, text: &str) -> Vec<u8> {
    let src = dir.join("to-scan.pdf");
    std::fs::write(&src, text_pdf_sized(&[text], None, 28)).unwrap();
    let out = dir.join("scan");
    let ok = Command::new("pdftoppm").args(["-r", "150", "-gray", "-png", "-singlefile"]).arg(&src).arg(&out).status();
    assert!(ok.is_ok_and(|s| s.success()), "pdftoppm (poppler-utils) is needed: scripts/lib.sh installs it");
    let png = std::fs::read(dir.join("scan.png")).unwrap();
    let (width, height, colors, idat) = png_idat(&png);
    let space = if colors == 1 { "DeviceGray" } else { "DeviceRGB" };
    let image = stream(
        &format!(
            "/Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace /{space} /BitsPerComponent 8 \
             /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors {colors} /BitsPerComponent 8 /Columns {width} >>"
        ),
        &idat,
    );
    let content = "q 612 0 0 792 0 0 cm /Im1 Do Q";
    assemble(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>".to_vec(),
            image,
            stream("", content.as_bytes()),
        ],
        "",
    )
}

/// Width, height, colour components (1 gray, 3 RGB) and the concatenated IDAT data of an
/// 8-bit, non-interlaced gray or RGB PNG.
fn png_idat(png: &[u8]) -> (u32, u32, u32, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let (mut width, mut height, mut colors, mut idat) = (0, 0, 0, Vec::new());
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                colors = match data[9] {
                    0 => 1,
                    2 => 3,
                    other => panic!("PNG colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    (width, height, colors, idat)
}

/// A PDF encrypted with the standard security handler whose user password is not empty: its
/// /U entry matches no key made from the empty password, so it cannot be read without one.
pub fn password_pdf() -> Vec<u8> {
    let mut pdf_objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream("", b"\x8a\x13\x5c\x99\x01\xfe"),
    ];
    let o = hex(&(0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect::<Vec<_>>());
    let u = hex(&(0..32u8).map(|i| i.wrapping_mul(91).wrapping_add(5)).collect::<Vec<_>>());
    pdf_objects.push(format!("<< /Filter /Standard /V 1 /R 2 /O <{o}> /U <{u}> /P -44 >>").into_bytes());
    assemble(&pdf_objects, "/Encrypt 5 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]")
}

/// One page with the line `label`, two filled-in text fields (an ordinary one holding `value`,
/// and a password field, /Ff bit 14, holding `secret`) and a text box (FreeText annotation)
/// saying `note`.
pub fn form_pdf(label: &str, value: &str, secret: &str, note: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 700 Td ({}) Tj ET", literal(label));
    assemble(
        &[
            b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 7 0 R] /DA (/Helv 0 Tf 0 g) >> >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 6 0 R /Annots [5 0 R 7 0 R 8 0 R] >>".to_vec(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
            format!("<< /Type /Annot /Subtype /Widget /FT /Tx /T (name) /V ({}) /Rect [72 640 400 660] /P 3 0 R /F 4 >>", literal(value)).into_bytes(),
            stream("", content.as_bytes()),
            format!("<< /Type /Annot /Subtype /Widget /FT /Tx /Ff 8192 /T (pin) /V ({}) /Rect [72 600 400 620] /P 3 0 R /F 4 >>", literal(secret)).into_bytes(),
            format!("<< /Type /Annot /Subtype /FreeText /Contents ({}) /DA (/Helv 12 Tf 0 g) /Rect [72 500 400 530] /P 3 0 R /F 4 >>", literal(note)).into_bytes(),
        ],
        "",
    )
}
