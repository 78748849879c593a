//! Splits a text into overlapping chunks sized for a 256-token sentence embedder.
//!
//! Sizes are counted in the embedder's own word pieces when its tokenizer is at hand
//! ([`chunk_text_by`]), else estimated: a Latin word is about 1.3 word pieces, and a CJK
//! character about one (CJK text has no spaces, so counting words would make one giant "word").
//! Chunks break at paragraph, then sentence bounds; a sentence too long for one chunk is cut at
//! spaces or, for CJK, between characters. Each chunk starts with the last sentence of the one
//! before when that sentence is short, so a fact split across the boundary is still found.

use crate::store::Span;
use crate::text::is_cjk;

/// Upper bound on a chunk's estimated tokens (the embedder's window).
pub const CHUNK_MAX_TOKENS: usize = 256;
/// What the packer aims for, leaving room for the estimate's error. Measured on the shared sets:
/// 230 beat 180 for both keyword and semantic retrieval (BENCHMARKS.md).
const TARGET_TOKENS: usize = 230;
/// Largest carried-over tail.
const OVERLAP_TOKENS: usize = 40;

#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    tokens: usize,
    starts_paragraph: bool,
}

/// Returns byte spans of `text`, each on char boundaries, trimmed of surrounding whitespace,
/// sized by the estimate.
pub fn chunk_text(text: &str) -> Vec<Span> {
    chunk_text_by(text, &estimate_tokens)
}

/// As [`chunk_text`], sized by `count`, the embedder's tokens in a piece of text.
pub fn chunk_text_by(text: &str, count: &dyn Fn(&str) -> usize) -> Vec<Span> {
    let units = split_units(text, count);
    let mut spans: Vec<Span> = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let first = i;
        let mut tokens = 0;
        while i < units.len() {
            let u = units[i];
            let paragraph_break = u.starts_paragraph && tokens >= TARGET_TOKENS * 2 / 3;
            if i > first && (tokens + u.tokens > TARGET_TOKENS || paragraph_break) {
                break;
            }
            tokens += u.tokens;
            i += 1;
        }
        if let Some(span) = trimmed(text, units[first].start, units[i - 1].end) {
            spans.push(span);
        }
        if i < units.len() {
            // Carry the tail sentence(s) over, but never the whole chunk, so progress is made.
            let mut back = i;
            let mut carried = 0;
            while back > first + 1 && carried + units[back - 1].tokens <= OVERLAP_TOKENS {
                back -= 1;
                carried += units[back].tokens;
            }
            if back < i && !units[i].starts_paragraph {
                i = back.max(first + 1);
            }
        }
    }
    spans
}

fn trimmed(text: &str, start: usize, end: usize) -> Option<Span> {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    (lead + trail < slice.len()).then(|| Span { start: start + lead, end: end - trail })
}

/// Running token estimate, in tenths of a token so a Latin word can count 1.3.
#[derive(Default, Clone, Copy)]
struct Counter {
    tenths: usize,
    in_word: bool,
}

impl Counter {
    fn push(&mut self, c: char) {
        if is_cjk(c) {
            self.tenths += 10;
            self.in_word = false;
        } else if c.is_alphanumeric() {
            if !self.in_word {
                self.tenths += 13;
            }
            self.in_word = true;
        } else {
            self.in_word = false;
            if !c.is_whitespace() {
                self.tenths += 10;
            }
        }
    }

    fn tokens(&self) -> usize {
        self.tenths.div_ceil(10)
    }
}

/// Estimated embedder tokens of a piece of text.
pub fn estimate_tokens(s: &str) -> usize {
    let mut c = Counter::default();
    s.chars().for_each(|ch| c.push(ch));
    c.tokens()
}

/// Sentences and lines as contiguous byte ranges covering the whole text; over-long ones cut.
fn split_units(text: &str, count: &dyn Fn(&str) -> usize) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut start = 0;
    let mut newline_run = 2; // the text's start counts as a paragraph start
    let mut starts_paragraph = true;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let end = i + c.len_utf8();
        let boundary = match c {
            '\n' => true,
            '。' | '！' | '？' | '；' | '…' => true,
            '.' | '!' | '?' | ';' => next.is_none_or(char::is_whitespace),
            _ => false,
        };
        if c == '\n' {
            newline_run += 1;
        } else if !c.is_whitespace() {
            newline_run = 0;
        }
        if boundary || next.is_none() {
            if text[start..end].trim().is_empty() {
                // Blank lines belong to no unit; they mark the next unit as a paragraph start.
                if newline_run >= 2 {
                    starts_paragraph = true;
                }
            } else {
                push_unit(text, start, end, starts_paragraph, count, &mut units);
                starts_paragraph = false;
                if c == '\n' && matches!(next, Some('\n')) {
                    starts_paragraph = true;
                }
            }
            start = end;
        }
    }
    units
}

fn push_unit(text: &str, start: usize, end: usize, starts_paragraph: bool, count: &dyn Fn(&str) -> usize, out: &mut Vec<Unit>) {
    let tokens = count(&text[start..end]);
    if tokens <= TARGET_TOKENS {
        out.push(Unit { start, end, tokens, starts_paragraph });
        return;
    }
    // Cut at the last space (or, in CJK, the last character) before the piece reaches the target.
    // The running count is the estimate, cheap to keep, scaled by how far it is off here.
    let limit = (TARGET_TOKENS * estimate_tokens(&text[start..end]) / tokens).max(1);
    let mut piece_start = start;
    let mut last_cut: Option<usize> = None;
    let mut first = true;
    let mut counter = Counter::default();
    for (off, c) in text[start..end].char_indices() {
        let pos = start + off + c.len_utf8();
        counter.push(c);
        if c.is_whitespace() || is_cjk(c) {
            last_cut = Some(pos);
        }
        if counter.tokens() >= limit {
            let cut = last_cut.filter(|&p| p > piece_start).unwrap_or(pos);
            let tokens = count(&text[piece_start..cut]);
            out.push(Unit { start: piece_start, end: cut, tokens, starts_paragraph: starts_paragraph && first });
            first = false;
            piece_start = cut;
            last_cut = None;
            // Only the few characters after the cut are carried into the next piece.
            counter = Counter::default();
            text[cut..pos].chars().for_each(|ch| counter.push(ch));
        }
    }
    if piece_start < end && !text[piece_start..end].trim().is_empty() {
        let tokens = count(&text[piece_start..end]);
        out.push(Unit { start: piece_start, end, tokens, starts_paragraph: starts_paragraph && first });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, spans: &[Span]) -> Vec<&'a str> {
        spans.iter().map(|s| &text[s.start..s.end]).collect()
    }

    #[test]
    fn short_text_is_one_chunk() {
        let t = "  A short note.\nSecond line.  ";
        assert_eq!(texts(t, &chunk_text(t)), vec!["A short note.\nSecond line."]);
    }

    #[test]
    fn empty_text_has_no_chunks() {
        assert!(chunk_text("").is_empty());
        assert!(chunk_text(" \n\n ").is_empty());
    }

    #[test]
    fn long_english_is_split_within_budget_and_covers_everything() {
        let sentence = "The tenancy agreement for the flat on Elm Street expires at the end of March. ";
        let t = sentence.repeat(60);
        let spans = chunk_text(&t);
        assert!(spans.len() > 3);
        for s in &spans {
            assert!(estimate_tokens(&t[s.start..s.end]) <= CHUNK_MAX_TOKENS);
        }
        assert_eq!(spans[0].start, 0);
        assert_eq!(spans.last().unwrap().end, t.trim_end().len());
        for w in spans.windows(2) {
            assert!(w[1].start <= w[0].end, "gap between chunks");
            assert!(w[1].start > w[0].start, "no progress");
        }
    }

    #[test]
    fn chinese_is_counted_by_characters() {
        let t = "这是一个关于租约到期的笔记。".repeat(60);
        let spans = chunk_text(&t);
        assert!(spans.len() >= 4, "{} chunks", spans.len());
        for s in &spans {
            assert!(t.is_char_boundary(s.start) && t.is_char_boundary(s.end));
            assert!(estimate_tokens(&t[s.start..s.end]) <= CHUNK_MAX_TOKENS);
        }
    }

    #[test]
    fn one_giant_sentence_is_cut() {
        let t = "word ".repeat(1000);
        let spans = chunk_text(&t);
        assert!(spans.len() >= 5);
        for s in &spans {
            assert!(estimate_tokens(&t[s.start..s.end]) <= CHUNK_MAX_TOKENS);
        }
        let cjk = "字".repeat(2000);
        for s in chunk_text(&cjk) {
            assert!(estimate_tokens(&cjk[s.start..s.end]) <= CHUNK_MAX_TOKENS);
        }
    }

    #[test]
    fn a_counting_tokenizer_sizes_the_chunks() {
        // A tokenizer that splits every word in three: chunks must shrink to stay in budget.
        let pieces = |s: &str| 3 * s.split_whitespace().count();
        let t = "The tenancy agreement expires at the end of March. ".repeat(40);
        let estimated = chunk_text(&t);
        let counted = chunk_text_by(&t, &pieces);
        assert!(counted.len() >= estimated.len() * 2, "{} vs {}", counted.len(), estimated.len());
        for s in &counted {
            assert!(pieces(&t[s.start..s.end]) <= TARGET_TOKENS);
        }
        // A sentence too long for a chunk is cut by the count too.
        let giant = "word ".repeat(1000);
        let cut = chunk_text_by(&giant, &pieces);
        assert!(cut.len() >= 13, "{} chunks", cut.len());
        for s in &cut {
            assert!(pieces(&giant[s.start..s.end]) <= CHUNK_MAX_TOKENS, "{}", pieces(&giant[s.start..s.end]));
        }
        assert_eq!(cut.last().unwrap().end, giant.trim_end().len());
    }

    #[test]
    fn paragraphs_are_preferred_bounds() {
        let para = "Sentence about brakes and the garage visit. ".repeat(12);
        let t = format!("{para}\n\n{para}\n\n{para}");
        let spans = chunk_text(&t);
        // Each chunk starts at a paragraph start or inside, never mid-word.
        for s in &spans {
            assert!(t[s.start..].starts_with("Sentence"));
        }
    }

    #[test]
    fn neighbouring_chunks_overlap_by_a_sentence() {
        let t = (0..40).map(|i| format!("Fact number {i} is here. ")).collect::<String>();
        let spans = chunk_text(&t);
        assert!(spans.len() >= 2);
        assert!(spans[1].start < spans[0].end);
    }
}
