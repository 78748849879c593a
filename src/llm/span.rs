//! Decoding restricted to copying: the model may only write a run of words that appears in one
//! of the given source texts. What it writes is then grounded by construction, and short.
//!
//! Each token's bytes are recovered from the vocabulary (byte-level BPE maps bytes to printable
//! characters; SentencePiece writes spaces as ▁ and raw bytes as <0xHH>). At each step the
//! allowed tokens are those whose bytes continue some source from a place where the answer so
//! far matches; the model's logits choose among them, or to stop at a word boundary.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::OnceLock;

use jieba_rs::Jieba;

use tokenizers::Tokenizer;

use crate::text::is_cjk;

/// The bytes every ordinary (non-special) token stands for, indexed by first byte.
pub struct TokenBytes {
    bytes: Vec<Vec<u8>>,
    by_first: HashMap<u8, Vec<u32>>,
}

/// GPT-2's byte ↔ printable-character table, inverted.
fn byte_level_chars() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = ('!' as u32..='~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut map: HashMap<char, u8> = printable.iter().map(|&b| (char::from_u32(b).unwrap(), b as u8)).collect();
    let mut extra = 0;
    for b in 0u32..256 {
        if !printable.contains(&b) {
            map.insert(char::from_u32(256 + extra).unwrap(), b as u8);
            printable.push(b);
            extra += 1;
        }
    }
    map
}

impl TokenBytes {
    pub fn new(tokenizer: &Tokenizer) -> TokenBytes {
        let vocab = tokenizer.get_vocab(false);
        let size = vocab.values().max().map(|&m| m as usize + 1).unwrap_or(0);
        let byte_level = vocab.keys().any(|t| t.starts_with('Ġ'));
        let chars = byte_level_chars();
        let mut bytes = vec![Vec::new(); size];
        let mut by_first: HashMap<u8, Vec<u32>> = HashMap::new();
        let specials: std::collections::HashSet<u32> = tokenizer.get_added_vocabulary().get_vocab().values().copied().collect();
        for (token, &id) in &vocab {
            if specials.contains(&id) {
                continue;
            }
            let b: Option<Vec<u8>> = if byte_level {
                token.chars().map(|c| chars.get(&c).copied()).collect()
            } else if let Some(hex) = token.strip_prefix("<0x").and_then(|t| t.strip_suffix('>')) {
                u8::from_str_radix(hex, 16).ok().map(|b| vec![b])
            } else {
                Some(token.replace('▁', " ").into_bytes())
            };
            if let Some(b) = b.filter(|b| !b.is_empty()) {
                by_first.entry(b[0]).or_default().push(id);
                bytes[id as usize] = b;
            }
        }
        TokenBytes { bytes, by_first }
    }
}

/// Byte offsets where a Chinese word begins or ends in `text`, by a word segmenter with its
/// bundled dictionary (jieba's), so that a quotation never starts or stops inside a word
/// ("明" of "明天", "半部分" of "下半部分"). The last text's cuts are kept: every boundary
/// test of one sentence asks for them.
fn cjk_cuts(text: &str) -> Rc<HashSet<usize>> {
    thread_local! {
        static LAST: RefCell<Option<(String, Rc<HashSet<usize>>)>> = const { RefCell::new(None) };
    }
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    LAST.with(|last| {
        if let Some((_, cuts)) = last.borrow().as_ref().filter(|(t, _)| t == text) {
            return cuts.clone();
        }
        // With its HMM, jieba keeps unknown names whole (玛丽·麦特琳's 麦特琳).
        let words = JIEBA.get_or_init(Jieba::new).cut(text, true);
        let cuts: Rc<HashSet<usize>> = Rc::new(words.iter().flat_map(|w| [w.byte_start, w.byte_end]).collect());
        *last.borrow_mut() = Some((text.to_string(), cuts.clone()));
        cuts
    })
}

fn is_word_byte_start(text: &str, at: usize) -> bool {
    let Some(c) = text[at..].chars().next() else { return false };
    if c.is_whitespace() {
        return false;
    }
    if is_cjk(c) {
        return !text[..at].chars().next_back().is_some_and(is_cjk) || cjk_cuts(text).contains(&at);
    }
    match text[..at].chars().next_back() {
        None => true,
        Some(p) => !(p.is_alphanumeric()) || is_cjk(p) || !c.is_alphanumeric(),
    }
}

/// Whether `before` ends in a lone capital letter, as an initial does.
fn is_initial(before: &str) -> bool {
    let mut rev = before.chars().rev();
    matches!((rev.next(), rev.next()), (Some(c), p) if c.is_uppercase() && p.is_none_or(|p| !p.is_alphanumeric()))
}

fn ends_word(text: &str, at: usize) -> bool {
    if at >= text.len() {
        return true;
    }
    if !text.is_char_boundary(at) {
        return false;
    }
    let prev = text[..at].chars().next_back();
    let next = text[at..].chars().next();
    match (prev, next) {
        (Some(p), Some(n)) if is_cjk(p) && is_cjk(n) => cjk_cuts(text).contains(&at),
        (Some(p), Some(n)) => !(p.is_alphanumeric() && n.is_alphanumeric()) || is_cjk(p) || is_cjk(n),
        _ => true,
    }
}

/// The state of one copy: where in which source the answer so far could have come from.
pub struct Copy<'a> {
    sources: Vec<&'a str>,
    may_continue: &'a dyn Fn(&str, usize) -> bool,
    /// (source, start byte) of every place the answer so far matches.
    at: Vec<(usize, usize)>,
    written: Vec<u8>,
}

impl<'a> Copy<'a> {
    /// Copies from `sources`, starting only at word starts that `may_start(text, byte)` admits,
    /// and ending (at the latest) before a word `may_continue` does not admit.
    pub fn new(
        sources: &[&'a str],
        may_start: &dyn Fn(&str, usize) -> bool,
        may_continue: &'a dyn Fn(&str, usize) -> bool,
    ) -> Copy<'a> {
        let mut at = Vec::new();
        for (s, text) in sources.iter().enumerate() {
            for (i, _) in text.char_indices() {
                if is_word_byte_start(text, i) && may_start(text, i) {
                    at.push((s, i));
                }
            }
        }
        Copy { sources: sources.to_vec(), may_continue, at, written: Vec::new() }
    }

    /// Tokens that continue the answer within some source.
    pub fn allowed(&self, tokens: &TokenBytes) -> Vec<u32> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &(s, start) in &self.at {
            let rest = &self.sources[s].as_bytes()[start + self.written.len()..];
            let Some(first) = rest.first() else { continue };
            if !seen.insert(&rest[..rest.len().min(24)]) {
                continue;
            }
            for &id in tokens.by_first.get(first).map(Vec::as_slice).unwrap_or(&[]) {
                if rest.starts_with(&tokens.bytes[id as usize]) && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// Whether the answer may end here: non-empty and at the end of a word in some source.
    pub fn may_stop(&self) -> bool {
        let len = self.written.len();
        len > 0
            && !self.written.iter().all(u8::is_ascii_whitespace)
            && self.at.iter().any(|&(s, start)| ends_word(self.sources[s], start + len))
    }

    /// Whether every place the answer could come from goes on with a new clause (a comma,
    /// semicolon, colon, full stop or bracket), with a word `may_continue` refuses, or ends: a
    /// short answer stops there.
    pub fn at_clause_end(&self) -> bool {
        let len = self.written.len();
        !self.at.is_empty()
            && self.at.iter().all(|&(s, start)| {
                let text = self.sources[s];
                let end = start + len;
                if !text.is_char_boundary(end) {
                    return false;
                }
                let rest = text[end..].trim_start();
                let next = text.len() - rest.len();
                let mut chars = rest.chars();
                match chars.next() {
                    None => true,
                    // "312.40" and "1,450" go on; ". " and ", " end a clause, but the full stop
                    // of an initial ("John C. Messenger") does not.
                    Some('.') if is_initial(&text[..end]) => false,
                    Some(',' | ';' | ':' | '.') => !chars.next().is_some_and(char::is_alphanumeric),
                    Some('(' | '。' | '，' | '；' | '（') => true,
                    Some(c) => c.is_alphanumeric() && !is_cjk(c) && next > end && !(self.may_continue)(text, next),
                }
            })
    }

    pub fn push(&mut self, tokens: &TokenBytes, id: u32) {
        self.written.extend_from_slice(&tokens.bytes[id as usize]);
        let written = &self.written;
        let sources = &self.sources;
        self.at.retain(|&(s, start)| sources[s].as_bytes()[start..].starts_with(written));
    }

    /// The source text copied so far (whole characters only).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.written).trim().to_string()
    }

    /// Which sources the answer so far could have come from.
    pub fn from_sources(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.at.iter().map(|&(s, _)| s).collect();
        s.dedup();
        s
    }
}

/// Whether `at` falls inside a figure such as "312.40" or "1,450".
fn inside_number(text: &str, at: usize) -> bool {
    let before = text[..at].chars().next_back();
    let mut after = text[at..].chars();
    match (before, after.next()) {
        (Some(b), Some('.' | ',')) if b.is_ascii_digit() => after.next().is_some_and(|c| c.is_ascii_digit()),
        (Some('.' | ','), Some(a)) => a.is_ascii_digit() && text[..at - 1].ends_with(|c: char| c.is_ascii_digit()),
        _ => false,
    }
}

/// Whether a quotation may start at byte `at`: a word's start, not the middle of a figure.
pub fn may_start_at(text: &str, at: usize) -> bool {
    is_word_byte_start(text, at) && !inside_number(text, at)
}

/// Every quotation [`Copy`] could write from `source`, as byte ranges, at most `max_words`
/// words long: each start `may_start` admits, to each word end up to the end of its clause
/// (where a copy must stop). The same rules as copying token by token, for a caller that
/// weighs whole quotations instead.
pub fn quotations(
    source: &str,
    may_start: &dyn Fn(&str, usize) -> bool,
    may_continue: &dyn Fn(&str, usize) -> bool,
    max_words: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (start, _) in source.char_indices() {
        if !may_start_at(source, start) || !may_start(source, start) {
            continue;
        }
        let mut copy = Copy { sources: vec![source], may_continue, at: vec![(0, start)], written: Vec::new() };
        let mut words = 0;
        for end in (start + 1..=source.len()).filter(|&e| ends_word(source, e)) {
            let text = &source[start..end];
            if text.ends_with(char::is_whitespace) || inside_number(source, end) {
                continue;
            }
            copy.written = text.as_bytes().to_vec();
            if !copy.may_stop() {
                continue;
            }
            out.push((start, end));
            words += 1;
            if words >= max_words || copy.at_clause_end() {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_covers_every_byte_once() {
        let m = byte_level_chars();
        assert_eq!(m.len(), 256);
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'Ċ'], b'\n');
        assert_eq!(m[&'a'], b'a');
    }

    #[test]
    fn a_clause_ends_at_punctuation_but_not_inside_a_number() {
        let src = ["Parts came to 312.40 GBP; the oil change was 64.00 GBP, paid to John C. Messenger in cash."];
        let not_cash = |t: &str, at: usize| !t[at..].starts_with("cash");
        let copy_of = |text: &str| {
            let mut c = Copy::new(&src, &|_, _| true, &not_cash);
            c.written = text.as_bytes().to_vec();
            c.at.retain(|&(s, start)| src[s][start..].starts_with(text));
            c
        };
        assert!(!copy_of("312").at_clause_end());
        assert!(copy_of("312.40 GBP").at_clause_end());
        assert!(!copy_of("64").at_clause_end());
        assert!(copy_of("64.00 GBP").at_clause_end());
        assert!(copy_of("64.00 GBP").may_stop());
        assert!(!copy_of("64.0").may_stop());
        assert!(!copy_of("John C").at_clause_end());
        // A word the caller refuses (one the question already says) ends the answer before it.
        assert!(!copy_of("John C. Messenger").at_clause_end());
        assert!(copy_of("John C. Messenger in").at_clause_end());
    }

    #[test]
    fn quotations_run_from_each_allowed_start_to_the_end_of_its_clause() {
        let src = "Parts came to 312.40 GBP; the oil change was 64.00 GBP.";
        let digits = |t: &str, at: usize| t[at..].starts_with(|c: char| c.is_ascii_digit());
        let quoted: Vec<&str> = quotations(src, &digits, &|_, _| true, 8).iter().map(|&(a, b)| &src[a..b]).collect();
        assert_eq!(quoted, ["312.40", "312.40 GBP", "64.00", "64.00 GBP"]);
        // A word the caller refuses ends every quotation before it; the word bound holds.
        let no_gbp = |t: &str, at: usize| !t[at..].starts_with("GBP");
        let quoted: Vec<&str> = quotations(src, &digits, &no_gbp, 8).iter().map(|&(a, b)| &src[a..b]).collect();
        assert_eq!(quoted, ["312.40", "64.00"]);
        let first = |_: &str, at: usize| at == 0;
        let quoted: Vec<&str> = quotations(src, &first, &|_, _| true, 2).iter().map(|&(a, b)| &src[a..b]).collect();
        assert_eq!(quoted, ["Parts", "Parts came"]);
    }

    #[test]
    fn word_boundaries() {
        let t = "gave up 308 points, 会议室";
        assert!(is_word_byte_start(t, 0));
        assert!(!is_word_byte_start(t, 1));
        assert!(is_word_byte_start(t, 8));
        assert!(ends_word(t, 11));
        assert!(!ends_word(t, 10));
        // Chinese words are whole: 会议室 is one, 上锅蒸二十五分钟 splits between words only.
        let cjk = t.find('议').unwrap();
        assert!(is_word_byte_start(t, t.find('会').unwrap()) && !is_word_byte_start(t, cjk) && !ends_word(t, cjk));
        assert!(ends_word(t, t.len()));
        let steam = "上锅蒸二十五分钟";
        let starts: Vec<&str> = steam.char_indices().filter(|&(i, _)| is_word_byte_start(steam, i)).map(|(i, _)| &steam[i..]).collect();
        assert!(starts.contains(&"二十五分钟") && !starts.contains(&"十五分钟") && !starts.contains(&"钟"), "{starts:?}");
        assert!(!ends_word(steam, steam.find('钟').unwrap()) && ends_word(steam, steam.find('二').unwrap()));
    }
}
