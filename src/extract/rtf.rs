//! RTF to text. Bytes written as `\'hh` are decoded in the code page in force (`\ansicpgN`, or a
//! font's `\fcharsetN` / `\cpgN`), so GBK, Big5 and Shift_JIS documents read; `\uN` escapes with
//! their `\ucN` fallback skipped; `\par`, `\line`, `\tab` and table cells kept as breaks; tables
//! of fonts, colours and styles, pictures, objects, field instructions and `\*` destinations
//! dropped; the title and author taken from `\info`.

use std::collections::HashMap;

use encoding_rs::{Encoding, WINDOWS_1252};

use super::formats::tidy_lines;
use super::{DocType, Document, Skip};

/// Groups nested deeper than this are refused.
const MAX_DEPTH: usize = 512;

/// Destinations whose text is not the document's.
const SKIP: &[&str] = &[
    "colortbl", "stylesheet", "pict", "object", "objdata", "themedata", "colorschememapping", "datastore", "latentstyles",
    "listtable", "listoverridetable", "revtbl", "rsidtbl", "xmlnstbl", "fldinst", "nonshppict", "sp", "filetbl",
    "pgdsctbl", "userprops", "template", "private", "pntxta", "pntxtb", "operator", "company", "doccomm", "keywords",
    "subject", "category", "manager", "hlinkbase", "comment", "printim", "creatim", "revtim", "buptim", "falt",
];

#[derive(Clone, Copy, PartialEq)]
enum Dest {
    Body,
    Skip,
    Fonts,
    Info,
    Title,
    Author,
}

#[derive(Clone, Copy)]
struct State {
    dest: Dest,
    uc: usize,
    enc: &'static Encoding,
}

struct Reader {
    out: String,
    title: String,
    author: String,
    /// Bytes of text not yet decoded, and the encoding they are in.
    pending: Vec<u8>,
    pending_enc: &'static Encoding,
    pending_dest: Dest,
    high_surrogate: Option<u16>,
}

impl Reader {
    fn target(&mut self, dest: Dest) -> Option<&mut String> {
        match dest {
            Dest::Body => Some(&mut self.out),
            Dest::Title => Some(&mut self.title),
            Dest::Author => Some(&mut self.author),
            _ => None,
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let (text, _) = self.pending_enc.decode_without_bom_handling(&bytes);
        if let Some(t) = self.target(self.pending_dest) {
            t.push_str(&text);
        }
    }

    fn byte(&mut self, b: u8, st: &State) {
        if !self.pending.is_empty() && (self.pending_enc != st.enc || self.pending_dest != st.dest) {
            self.flush();
        }
        self.pending_enc = st.enc;
        self.pending_dest = st.dest;
        self.pending.push(b);
    }

    fn text(&mut self, s: &str, dest: Dest) {
        self.flush();
        if let Some(t) = self.target(dest) {
            t.push_str(s);
        }
    }

    fn unicode(&mut self, n: i32, dest: Dest) {
        let u = if n < 0 { (n + 65536) as u16 } else { n as u16 };
        self.flush();
        let c = match (self.high_surrogate.take(), u) {
            (_, 0xD800..=0xDBFF) => {
                self.high_surrogate = Some(u);
                return;
            }
            (Some(h), 0xDC00..=0xDFFF) => char::decode_utf16([h, u]).next().and_then(Result::ok),
            (_, u) => char::from_u32(u as u32),
        };
        if let (Some(c), Some(t)) = (c, self.target(dest)) {
            t.push(c);
        }
    }
}

/// The encoding of a Windows code page number (the `codepage` crate's table over encoding_rs).
fn code_page(n: i32) -> Option<&'static Encoding> {
    u16::try_from(n).ok().and_then(codepage::to_encoding)
}

/// The code page a font's `\fcharsetN` stands for.
fn charset(n: i32) -> Option<&'static Encoding> {
    let cp = match n {
        77 => 10000,
        128 => 932,
        129 | 130 => 949,
        134 => 936,
        136 => 950,
        161 => 1253,
        162 => 1254,
        163 => 1258,
        177 => 1255,
        178 => 1256,
        186 => 1257,
        204 => 1251,
        222 => 874,
        238 => 1250,
        _ => return None,
    };
    code_page(cp)
}

pub fn rtf(bytes: &[u8]) -> Result<Document, Skip> {
    let mut r = Reader {
        out: String::new(),
        title: String::new(),
        author: String::new(),
        pending: Vec::new(),
        pending_enc: WINDOWS_1252,
        pending_dest: Dest::Body,
        high_surrogate: None,
    };
    let mut default_enc = WINDOWS_1252;
    let mut fonts: HashMap<i32, &'static Encoding> = HashMap::new();
    let mut font_in_table = None;
    let mut st = State { dest: Dest::Body, uc: 1, enc: WINDOWS_1252 };
    let mut stack: Vec<State> = Vec::new();
    // Fallback characters still to skip after a `\uN`.
    let mut skip_after_u = 0usize;
    // The group just opened: its first control word may name a destination.
    let mut group_start = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'{' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Skip::Corrupt("RTF groups nested too deep".into()));
                }
                r.flush();
                stack.push(st);
                group_start = true;
                skip_after_u = 0;
                i += 1;
            }
            b'}' => {
                r.flush();
                st = stack.pop().unwrap_or(st);
                skip_after_u = 0;
                group_start = false;
                i += 1;
            }
            b'\r' | b'\n' => i += 1,
            b'\\' => {
                let first_in_group = std::mem::replace(&mut group_start, false);
                let Some(&next) = bytes.get(i + 1) else { break };
                if next.is_ascii_alphabetic() {
                    let start = i + 1;
                    let mut j = start;
                    while j < bytes.len() && bytes[j].is_ascii_alphabetic() && j - start < 32 {
                        j += 1;
                    }
                    let word = std::str::from_utf8(&bytes[start..j]).unwrap_or("");
                    let num_start = j;
                    if j < bytes.len() && bytes[j] == b'-' {
                        j += 1;
                    }
                    while j < bytes.len() && bytes[j].is_ascii_digit() && j - num_start < 10 {
                        j += 1;
                    }
                    let param: Option<i32> = std::str::from_utf8(&bytes[num_start..j]).ok().and_then(|s| s.parse().ok());
                    if j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    i = j;
                    if word == "bin" {
                        // Raw binary data follows: jump over it.
                        i = i.saturating_add(param.unwrap_or(0).max(0) as usize);
                        continue;
                    }
                    if skip_after_u > 0 {
                        skip_after_u -= 1;
                        continue;
                    }
                    control(word, param, first_in_group, &mut st, &mut r, &mut default_enc, &mut fonts, &mut font_in_table, &mut skip_after_u);
                } else {
                    i += 2;
                    match next {
                        b'\'' => {
                            let hex = bytes.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                            if let Some(v) = hex {
                                i += 2;
                                if skip_after_u > 0 {
                                    skip_after_u -= 1;
                                } else if st.dest != Dest::Fonts {
                                    r.byte(v, &st);
                                }
                            }
                        }
                        // Only a group's first word can be a destination (`\\*` elsewhere is ignored).
                        b'*' if first_in_group => st.dest = Dest::Skip,
                        b'\r' | b'\n' => r.text("\n", st.dest),
                        _ if skip_after_u > 0 => skip_after_u -= 1,
                        b'\\' | b'{' | b'}' => r.byte(next, &st),
                        b'~' => r.text("\u{a0}", st.dest),
                        b'_' => r.text("-", st.dest),
                        _ => {}
                    }
                }
            }
            _ => {
                group_start = false;
                if skip_after_u > 0 {
                    skip_after_u -= 1;
                } else if st.dest != Dest::Fonts {
                    r.byte(b, &st);
                }
                i += 1;
            }
        }
    }
    r.flush();
    let text = tidy_lines(&r.out);
    let clean = |s: &str| Some(s.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|s| !s.is_empty());
    Ok(Document { title: clean(&r.title), author: clean(&r.author), ..Document::new(text, DocType::Word) })
}

#[allow(clippy::too_many_arguments)]
fn control(
    word: &str,
    param: Option<i32>,
    first_in_group: bool,
    st: &mut State,
    r: &mut Reader,
    default_enc: &mut &'static Encoding,
    fonts: &mut HashMap<i32, &'static Encoding>,
    font_in_table: &mut Option<i32>,
    skip_after_u: &mut usize,
) {
    match word {
        "par" | "line" | "sect" | "page" | "row" | "lbr" => r.text("\n", st.dest),
        "tab" | "cell" | "nestcell" => r.text("\t", st.dest),
        "emdash" => r.text("\u{2014}", st.dest),
        "endash" => r.text("\u{2013}", st.dest),
        "bullet" => r.text("\u{2022}", st.dest),
        "lquote" => r.text("\u{2018}", st.dest),
        "rquote" => r.text("\u{2019}", st.dest),
        "ldblquote" => r.text("\u{201c}", st.dest),
        "rdblquote" => r.text("\u{201d}", st.dest),
        "u" => {
            if let Some(n) = param {
                r.unicode(n, st.dest);
                *skip_after_u = st.uc;
            }
        }
        "uc" => st.uc = param.unwrap_or(1).clamp(0, 16) as usize,
        "ansicpg" => {
            if let Some(e) = param.and_then(code_page) {
                *default_enc = e;
                st.enc = e;
            }
        }
        "mac" => *default_enc = code_page(10000).unwrap_or(WINDOWS_1252),
        "fonttbl" => st.dest = Dest::Fonts,
        "f" if st.dest == Dest::Fonts => *font_in_table = param,
        "fcharset" if st.dest == Dest::Fonts => {
            if let (Some(f), Some(e)) = (*font_in_table, param.and_then(charset)) {
                fonts.insert(f, e);
            }
        }
        "cpg" if st.dest == Dest::Fonts => {
            if let (Some(f), Some(e)) = (*font_in_table, param.and_then(code_page)) {
                fonts.insert(f, e);
            }
        }
        "f" => {
            st.enc = param.and_then(|f| fonts.get(&f).copied()).unwrap_or(*default_enc);
        }
        "plain" => {}
        "info" => st.dest = Dest::Info,
        // The first of each: LibreOffice writes the author twice.
        "title" if st.dest == Dest::Info => st.dest = if r.title.is_empty() { Dest::Title } else { Dest::Skip },
        "author" if st.dest == Dest::Info => st.dest = if r.author.is_empty() { Dest::Author } else { Dest::Skip },
        w if first_in_group && SKIP.contains(&w) => st.dest = Dest::Skip,
        "header" | "footer" | "footnote" | "headerl" | "headerr" | "headerf" | "footerl" | "footerr" | "footerf" if st.dest == Dest::Body => {
            r.text("\n", st.dest)
        }
        _ => {}
    }
    // Inside \info only the title and author are kept.
    if st.dest == Dest::Info && first_in_group && !matches!(word, "info") {
        st.dest = Dest::Skip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_gbk_through_ansicpg_and_fcharset() {
        let (gbk, _, _) = encoding_rs::GBK.encode("温室租赁合同");
        let hex: String = gbk.iter().map(|b| format!("\\'{b:02x}")).collect();
        let src = format!(
            "{{\\rtf1\\ansi\\ansicpg936\\deff0{{\\fonttbl{{\\f0\\fnil\\fcharset134 \\'cb\\'ce\\'cc\\'e5;}}{{\\f1\\fswiss\\fcharset0 Arial;}}}}\
             {{\\colortbl;\\red0\\green0\\blue0;}}\\f0 {hex}\\par\\f1 Deposit\\tab 1200\\par}}"
        );
        let d = rtf(src.as_bytes()).unwrap();
        assert_eq!(d.text, "温室租赁合同\nDeposit 1200");
        assert_eq!(d.doc_type, DocType::Word);
    }

    #[test]
    fn unicode_escapes_skip_their_fallback() {
        // \uc1 skips one fallback character; \uc2 two; a \'hh fallback counts as one.
        let d = rtf(br"{\rtf1\ansi\uc1 \u28201?\u23460\'3f rent \uc2\u31199??x \uc1\u-10179?\u-8704?end}").unwrap();
        assert_eq!(d.text, "温室 rent 租x 😀end");
    }

    #[test]
    fn nested_groups_destinations_and_info() {
        let src = br"{\rtf1\ansi{\info{\title Lease notes}{\author Mei Lin}{\operator ignored}{\author Mei Lin}}{\*\generator Riched20;}{\stylesheet{\s0 Normal;}}
            {\pard Outer {\b bold {\i nested}} text\par}{\pict\pngblip 89504e47}{\field{\*\fldinst HYPERLINK x}{\fldrslt shown}}\par
            caf\'e9 \{braces\} back\\slash{\loch\f2\*\cs7  misplaced star}}";
        let d = rtf(src).unwrap();
        assert_eq!(d.text, "Outer bold nested text\nshown\ncafé {braces} back\\slash misplaced star");
        assert_eq!(d.title.as_deref(), Some("Lease notes"));
        assert_eq!(d.author.as_deref(), Some("Mei Lin"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = format!("{{\\rtf1{}", "{".repeat(MAX_DEPTH + 1));
        assert!(matches!(rtf(src.as_bytes()), Err(Skip::Corrupt(_))));
    }
}
