//! Checking an answer against its sources, and scoring answers the way SQuAD does.
//!
//! A 135M model gets the gist of a passage but invents details ("March 19th, 2023" where the
//! source said "March 2023"). The details that matter, numbers, dates, amounts and names,
//! are pulled out of the answer and each must be found in the passages it cites.

use crate::text::is_cjk;

pub const MONTHS: [&str; 12] = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december",
];

/// Words that start a sentence or a question in capitals without being names.
const COMMON: [&str; 40] = [
    "the", "a", "an", "in", "on", "at", "it", "he", "she", "they", "we", "i", "you", "this", "that", "these",
    "those", "there", "yes", "no", "according", "based", "source", "sources", "answer", "not", "his", "her",
    "their", "its", "our", "my", "your", "after", "before", "during", "from", "by", "as", "for",
];

/// A detail of an answer that its sources must bear out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Digits as written, separators dropped: "1,250.75" → "125075"; "19th" → "19".
    Number(String),
    /// A capitalised word, or a month, lower-cased.
    Name(String),
}

impl Fact {
    pub fn text(&self) -> &str {
        match self {
            Fact::Number(s) | Fact::Name(s) => s,
        }
    }
}

/// The numbers, dates, amounts and names in `answer`.
pub fn facts(answer: &str) -> Vec<Fact> {
    let mut out = Vec::new();
    for number in numbers(answer) {
        out.push(Fact::Number(number));
    }
    let words = latin_words(answer);
    for (i, w) in words.iter().enumerate() {
        let lower = w.to_lowercase();
        let capitalised = w.chars().next().is_some_and(char::is_uppercase);
        let sentence_start = i == 0 || ends_sentence(answer, w);
        let is_name = capitalised && !sentence_start && !COMMON.contains(&lower.as_str());
        if (is_name || MONTHS.contains(&lower.as_str())) && !out.contains(&Fact::Name(lower.clone())) {
            out.push(Fact::Name(lower));
        }
    }
    out
}

/// The facts of `answer` that `sources` does not contain.
pub fn unsupported(answer: &str, sources: &str) -> Vec<Fact> {
    let source_numbers = numbers(sources);
    let source_words: std::collections::HashSet<String> =
        latin_words(sources).iter().map(|w| w.to_lowercase()).collect();
    facts(answer)
        .into_iter()
        .filter(|f| match f {
            Fact::Number(n) => !source_numbers.iter().any(|s| s == n),
            Fact::Name(w) => !source_words.contains(w) && !source_words.contains(w.trim_end_matches("'s")),
        })
        .collect()
}

fn ends_sentence(text: &str, word: &str) -> bool {
    // The word's first occurrence follows ". " or a line break: a sentence start.
    match text.find(word) {
        Some(at) => {
            let before = text[..at].trim_end_matches([' ', '"', '(', '\'']);
            before.is_empty() || before.ends_with(['.', '!', '?', ':', '\n'])
        }
        None => false,
    }
}

fn latin_words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'') || is_cjk(c))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && w.chars().any(char::is_alphabetic))
        .collect()
}

/// Runs of digits, with "," "." or a thin space between digits joined: 1,250.75 → 125075.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            current.push(c);
            continue;
        }
        let joins = matches!(c, ',' | '.' | '\u{202f}' | '\u{2009}')
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if !joins && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces; CJK
/// characters count as one token each (as MLQA scores Chinese).
pub fn answer_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, tokens: &mut Vec<String>| {
        if !word.is_empty() && !matches!(word.as_str(), "a" | "an" | "the") {
            tokens.push(word.clone());
        }
        word.clear();
    };
    for c in lower.chars() {
        if is_cjk(c) {
            flush(&mut word, &mut tokens);
            tokens.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.push(c);
        } else if c.is_whitespace() {
            flush(&mut word, &mut tokens);
        }
        // Punctuation is dropped without splitting, as SQuAD does ("don't" → "dont").
    }
    flush(&mut word, &mut tokens);
    tokens
}

pub fn exact_match(prediction: &str, gold: &str) -> bool {
    answer_tokens(prediction) == answer_tokens(gold)
}

/// Token-overlap F1 between a prediction and one gold answer, 0 to 1.
pub fn f1(prediction: &str, gold: &str) -> f32 {
    let p = answer_tokens(prediction);
    let g = answer_tokens(gold);
    if p.is_empty() || g.is_empty() {
        return (p == g) as u8 as f32;
    }
    let mut left: Vec<&String> = g.iter().collect();
    let mut same = 0;
    for t in &p {
        if let Some(k) = left.iter().position(|x| *x == t) {
            left.swap_remove(k);
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f32 / p.len() as f32;
    let recall = same as f32 / g.len() as f32;
    2.0 * precision * recall / (precision + recall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_details_are_caught() {
        let source = "The product was first released in March 2023 by Acme, priced at $1,250.";
        assert!(unsupported("It was released in March 2023.", source).is_empty());
        assert_eq!(unsupported("It was released on March 19th, 2023.", source), vec![Fact::Number("19".into())]);
        assert_eq!(unsupported("It cost 1250 dollars.", source), vec![]);
        assert_eq!(unsupported("It cost $1,350.", source), vec![Fact::Number("1350".into())]);
        assert_eq!(unsupported("Acme sold it through Globex.", source), vec![Fact::Name("globex".into())]);
        assert_eq!(unsupported("It came out in April.", source), vec![Fact::Name("april".into())]);
        // A capital at the start of a sentence is not a name.
        assert!(unsupported("Released in 2023. Priced by Acme.", source).is_empty());
    }

    #[test]
    fn squad_scoring() {
        assert!(exact_match("The Denver Broncos!", "denver broncos"));
        assert!((f1("Denver Broncos won", "the Denver Broncos") - 0.8).abs() < 1e-6);
        assert_eq!(f1("nothing here", "308"), 0.0);
        assert!((f1("三百零八分", "308分") - 2.0 / 7.0).abs() < 0.01);
    }
}
