//! The search box language: plain words, "quoted phrases" that must match, and -excluded words.
//! Every string is a valid query; anything odd (an unclosed quote, a lone dash) is read as
//! plain words, never rejected.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::index::analyze::{analyze, normalise_word};
use crate::text::is_cjk;
use crate::index::KeywordQuery;

/// English function words, dropped from a query's plain words when it has others: in a small
/// personal collection "did" or "my" is rare enough to outweigh the word that matters
/// ("What did the dentist say?" ranked the garage mail that "did an oil change" first).
const STOP_WORDS: &str = "a about above after again against all am an and any are as at be because been before being \
below between both but by can could did do does doing down during each few for from further had has have having he her \
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on \
once only or other our ours ourselves out over own same shall she should so some such than that the their theirs them \
themselves then there these they this those through to too under until up us very was we were what when where which \
while who whom why will with would you your yours yourself yourselves";

/// Chinese question words do the same as "did" in a bigram index: 什么 or 多少 is rare in
/// notes, which state things rather than ask, so it outweighs the words that matter. A bigram
/// with one of these characters is dropped from a query like an English function word.
const CJK_QUESTION_CHARS: &str = "什么哪谁吗呢怎";
/// Question bigrams made of characters that also occur in content words (多 and 少, 何).
const CJK_QUESTION_BIGRAMS: &str = "多少 如何 为何 何时 何地 何处 是否 几个 几年 几次";

/// Whether an analysed term is a function word: English, or a Chinese question bigram.
pub fn is_stop_word(term: &str) -> bool {
    stop_words().contains(term)
        || (term.chars().count() == 2
            && (term.chars().any(|c| CJK_QUESTION_CHARS.contains(c))
                || CJK_QUESTION_BIGRAMS.split(' ').any(|b| b == term)))
}

fn stop_words() -> &'static HashSet<String> {
    static WORDS: OnceLock<HashSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| STOP_WORDS.split_whitespace().map(normalise_word).collect())
}

pub fn parse_query(input: &str) -> KeywordQuery {
    let mut q = KeywordQuery::default();
    let mut plain = String::new();
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        if c == '"' || c == '“' || c == '「' {
            let close = match c {
                '“' => '”',
                '「' => '」',
                _ => '"',
            };
            let body = &rest[c.len_utf8()..];
            if let Some(end) = body.find(close) {
                flush(&mut plain, &mut q);
                let terms: Vec<String> = analyze(&body[..end]).into_iter().map(|t| t.text).collect();
                if !terms.is_empty() {
                    q.phrases.push(terms);
                }
                rest = &body[end + close.len_utf8()..];
                continue;
            }
        }
        let at_word_start = plain.is_empty() || plain.ends_with(char::is_whitespace);
        if c == '-' && at_word_start {
            let body = &rest[1..];
            let word_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let terms = analyze(&body[..word_end]);
            if !terms.is_empty() {
                flush(&mut plain, &mut q);
                q.excluded.extend(terms.into_iter().map(|t| t.text));
                rest = &body[word_end..];
                continue;
            }
        }
        plain.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut plain, &mut q);
    let has_content = q.runs.iter().chain(&q.phrases).flatten().any(|t| !is_stop_word(t));
    if has_content {
        for run in &mut q.runs {
            run.retain(|t| !is_stop_word(t));
        }
        q.runs.retain(|r| !r.is_empty());
        q.chars.retain(|c| !CJK_QUESTION_CHARS.contains(c.as_str()));
    }
    q
}

fn flush(plain: &mut String, q: &mut KeywordQuery) {
    let terms: Vec<String> = analyze(plain).into_iter().map(|t| t.text).collect();
    if !terms.is_empty() {
        q.runs.push(terms);
    }
    // A lone character is already a term of its own; longer runs add theirs one by one.
    for run in plain.split(|c: char| !is_cjk(c)).filter(|r| r.chars().nth(1).is_some()) {
        q.chars.extend(run.chars().map(String::from));
    }
    plain.clear();
}

/// Every term that counts as a match, for highlighting.
pub fn positive_terms(q: &KeywordQuery) -> Vec<String> {
    q.runs.iter().chain(q.phrases.iter()).flatten().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_words_drop_out_unless_nothing_else_is_left() {
        let q = parse_query("What did the dentist say?");
        assert_eq!(q.runs, vec![vec!["dentist".to_string(), "say".to_string()]]);
        let q = parse_query("The Who");
        assert_eq!(q.runs, vec![vec!["the".to_string(), "who".to_string()]]);
        // Inside quotes every word counts.
        let q = parse_query(r#""to be or not to be" hamlet"#);
        assert_eq!(q.phrases[0].len(), 6);
    }

    #[test]
    fn chinese_question_words_drop_out_too() {
        let terms = |q: &str| parse_query(q).runs.concat();
        assert_eq!(terms("谁赢得了超级碗"), ["赢得", "得了", "了超", "超级", "级碗"]);
        assert!(!terms("租约什么时候到期").iter().any(|t| t.contains('什') || t.contains('么')));
        assert!(!terms("丢了多少分").contains(&"多少".to_string()));
        // A query of nothing but a question word still searches for it.
        assert_eq!(terms("什么"), ["什么"]);
        // Content words that share a character with a question word stay.
        assert!(terms("任何时候多数").contains(&"多数".to_string()));
    }

    #[test]
    fn chinese_words_also_count_character_by_character() {
        let q = parse_query("黑豹队丢了多少分");
        assert_eq!(q.chars, ["黑", "豹", "队", "丢", "了", "多", "少", "分"]);
        // Question characters go, like their bigrams.
        assert!(!parse_query("谁赢得了超级碗").chars.contains(&"谁".to_string()));
        // A lone character is a term already; quoted phrases stay exact.
        assert!(parse_query("猫 cat").chars.is_empty());
        assert!(parse_query("「租约」").chars.is_empty());
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let q = parse_query(r#"brake "oil change" -invoice garage"#);
        assert_eq!(q.runs, vec![vec!["brake".to_string()], vec!["garag".to_string()]]);
        assert_eq!(q.phrases, vec![vec!["oil".to_string(), "chang".to_string()]]);
        assert_eq!(q.excluded, vec!["invoic".to_string()]);
    }

    #[test]
    fn odd_syntax_is_plain_words() {
        let q = parse_query(r#"AND OR ( "unclosed -"#);
        assert_eq!(q.runs.len(), 1);
        assert!(q.runs[0].contains(&"unclos".to_string()));
        assert!(q.excluded.is_empty());
        assert!(parse_query("- -- ***").is_empty());
    }

    #[test]
    fn hyphenated_words_are_not_exclusions() {
        let q = parse_query("e-mail");
        assert!(q.excluded.is_empty());
        assert_eq!(q.runs[0], vec!["e".to_string(), "mail".to_string()]);
    }

    #[test]
    fn chinese_query_becomes_bigrams() {
        let q = parse_query("租约到期");
        assert_eq!(q.runs[0], vec!["租约", "约到", "到期"]);
        let q = parse_query("「租约」");
        assert_eq!(q.phrases[0], vec!["租约"]);
    }
}
