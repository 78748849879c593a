//! Snippets: the part of a chunk that best shows why it matched, with the matched words marked.

use std::collections::HashSet;

use crate::index::analyze::analyze;

/// A piece of snippet text, marked when it matched the query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Piece {
    pub text: String,
    pub marked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snippet {
    pub pieces: Vec<Piece>,
    /// Where in the text the first marked word begins (bytes): the page, sheet or slide a hit
    /// is on is the one holding it, not the one where its chunk began.
    #[serde(skip)]
    pub first_mark: Option<usize>,
}

impl Snippet {
    pub fn has_marks(&self) -> bool {
        self.pieces.iter().any(|p| p.marked)
    }

    /// Renders with `open`/`close` around matches (`**` for JSON and pipes, colour on a terminal).
    pub fn render(&self, open: &str, close: &str) -> String {
        render(&self.pieces, open, close)
    }
}

/// The pieces as one string, with `open`/`close` around the marked ones.
pub fn render(pieces: &[Piece], open: &str, close: &str) -> String {
    let mut s = String::new();
    for p in pieces {
        if p.marked {
            s.push_str(open);
            s.push_str(&p.text);
            s.push_str(close);
        } else {
            s.push_str(&p.text);
        }
    }
    s
}

/// Picks the window of about `width` characters holding the most distinct query terms.
pub fn make_snippet(text: &str, terms: &[String], width: usize) -> Snippet {
    let wanted: HashSet<&str> = terms.iter().map(String::as_str).collect();
    let matches: Vec<(usize, usize, String)> =
        analyze(text).into_iter().filter(|t| wanted.contains(t.text.as_str())).map(|t| (t.start, t.end, t.text)).collect();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let char_at = |byte: usize| chars.partition_point(|&(b, _)| b < byte);
    let (from, to) = if matches.is_empty() {
        (0, chars.len().min(width))
    } else {
        // Best window: most distinct terms, starting a little before its first match.
        let mut best = (0usize, 0usize);
        for (i, m) in matches.iter().enumerate() {
            let start = char_at(m.0);
            let end_char = start + width;
            let distinct: HashSet<&str> =
                matches[i..].iter().take_while(|n| char_at(n.1) <= end_char).map(|n| n.2.as_str()).collect();
            if distinct.len() > best.1 {
                best = (i, distinct.len());
            }
        }
        let first = char_at(matches[best.0].0);
        let lead = (width / 5).min(first);
        let from = first - lead;
        (from, (from + width).min(chars.len()))
    };
    let ranges: Vec<(usize, usize)> = matches.iter().map(|m| (m.0, m.1)).collect();
    build(text, &chars, from, to, ranges)
}

/// A window of about `width` characters around the byte range `start..end`, which is marked.
pub fn around(text: &str, start: usize, end: usize, width: usize) -> Snippet {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let char_at = |byte: usize| chars.partition_point(|&(b, _)| b < byte);
    let (s, e) = (char_at(start), char_at(end));
    let slack = width.saturating_sub(e - s) / 2;
    let from = s.saturating_sub(slack);
    let to = (from + width.max(e - s)).min(chars.len());
    build(text, &chars, from, to, vec![(start, end)])
}

/// Sentence byte ranges, trimmed, for picking the one closest to a query. A line ends a
/// sentence unless it was only wrapped: it stops on no punctuation and the next line goes on in
/// lower case (mail is wrapped at 72 columns; a list item or heading starts otherwise).
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let end = i + c.len_utf8();
        let next_space = iter.peek().is_none_or(|&(_, n)| n.is_whitespace());
        let line_ends = c == '\n' && !wrapped(&text[..i], &text[end..]);
        let boundary = matches!(c, '。' | '！' | '？') || line_ends || (matches!(c, '.' | '!' | '?') && next_space);
        if boundary || iter.peek().is_none() {
            let piece = &text[start..end];
            let lead = piece.len() - piece.trim_start().len();
            let trimmed = piece.trim();
            if trimmed.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
                out.push((start + lead, start + lead + trimmed.len()));
            }
            start = end;
        }
    }
    out
}

/// Whether a line break between `before` and `after` only wraps a sentence.
fn wrapped(before: &str, after: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or(before);
    let last = line.trim_end_matches([' ', '\t', '\r']).chars().last();
    let next = after.chars().next();
    !line.trim_start().starts_with('#')
        && last.is_some_and(|c| c.is_alphanumeric() || c == ',')
        && next.is_some_and(|c| c.is_lowercase())
}

/// Cuts the window `from..to` (in chars), marking `ranges` (in bytes) that fall inside it.
fn build(text: &str, chars: &[(usize, char)], from: usize, to: usize, ranges: Vec<(usize, usize)>) -> Snippet {
    let (from, to) = snap_to_spaces(chars, from, to);
    let byte = |c: usize| chars.get(c).map(|&(b, _)| b).unwrap_or(text.len());
    let (start_b, end_b) = (byte(from), byte(to));

    // Merge overlapping match ranges (CJK bigrams overlap) inside the window.
    let mut ranges: Vec<(usize, usize)> = ranges.into_iter().filter(|m| m.0 >= start_b && m.1 <= end_b).collect();
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }
    let first_mark = merged.first().map(|m| m.0);
    let mut pieces = Vec::new();
    if from > 0 {
        pieces.push(Piece { text: "…".into(), marked: false });
    }
    let mut at = start_b;
    for (s, e) in merged {
        if s > at {
            pieces.push(Piece { text: flatten(&text[at..s]), marked: false });
        }
        pieces.push(Piece { text: flatten(&text[s..e]), marked: true });
        at = e;
    }
    if at < end_b {
        pieces.push(Piece { text: flatten(&text[at..end_b]), marked: false });
    }
    if to < chars.len() {
        pieces.push(Piece { text: "…".into(), marked: false });
    }
    Snippet { pieces, first_mark }
}

/// Moves window edges to nearby spaces so words are not cut (CJK has none; it is left as is).
fn snap_to_spaces(chars: &[(usize, char)], from: usize, to: usize) -> (usize, usize) {
    let from = if from == 0 {
        0
    } else {
        (from..(from + 15).min(to)).find(|&i| chars[i - 1].1.is_whitespace()).unwrap_or(from)
    };
    let to = if to >= chars.len() {
        chars.len()
    } else {
        (to.saturating_sub(15).max(from + 1)..=to).rev().find(|&i| chars[i].1.is_whitespace()).unwrap_or(to)
    };
    (from, to)
}

/// Line breaks and runs of spaces become single spaces: a snippet is one line.
fn flatten(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(q: &str) -> Vec<String> {
        analyze(q).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn marks_matched_words_in_their_written_form() {
        let s = make_snippet("The brakes were replaced by the mechanic.", &terms("brake mechanic"), 200);
        assert_eq!(s.render("[", "]"), "The [brakes] were replaced by the [mechanic].");
    }

    #[test]
    fn cjk_bigrams_merge_into_one_mark() {
        let s = make_snippet("我的租约到期了", &terms("租约到期"), 200);
        assert_eq!(s.render("[", "]"), "我的[租约到期]了");
    }

    #[test]
    fn window_moves_to_the_matches() {
        let text = format!("{} the invoice number is 4242 {}", "filler words ".repeat(50), "more filler ".repeat(50));
        let s = make_snippet(&text, &terms("invoice 4242"), 80).render("[", "]");
        assert!(s.contains("[invoice]") && s.contains("[4242]"), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert!(s.chars().count() < 100);
    }

    #[test]
    fn around_marks_the_given_sentence() {
        let text = "First sentence here. The lease runs out in August. Last one.";
        let s = sentences(text);
        assert_eq!(s.len(), 3);
        let snip = around(text, s[1].0, s[1].1, 200).render("[", "]");
        assert_eq!(snip, "First sentence here. [The lease runs out in August.] Last one.");
    }

    #[test]
    fn a_wrapped_line_goes_on_with_its_sentence() {
        let text = "Thanks. The engineer, Gareth, will come on Monday between 9 and 12\nto look at the valve.\n- Tomatoes: sow in March\n- canes: cut back\n# Plan\nnext steps";
        let got: Vec<&str> = sentences(text).into_iter().map(|(a, b)| &text[a..b]).collect();
        assert_eq!(
            got,
            [
                "Thanks.",
                "The engineer, Gareth, will come on Monday between 9 and 12\nto look at the valve.",
                "- Tomatoes: sow in March",
                "- canes: cut back",
                "# Plan",
                "next steps"
            ]
        );
    }

    #[test]
    fn no_match_shows_the_start() {
        let s = make_snippet("first line\nsecond line", &terms("zzz"), 200);
        assert_eq!(s.render("[", "]"), "first line second line");
    }
}
