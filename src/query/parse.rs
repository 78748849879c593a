//! The search box language: plain words, "quoted phrases" that must match, and -excluded words.
//! Every string is a valid query; anything odd (an unclosed quote, a lone dash) is read as
//! plain words, never rejected.

use crate::index::analyze::analyze;
use crate::index::KeywordQuery;

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
    q
}

fn flush(plain: &mut String, q: &mut KeywordQuery) {
    let terms: Vec<String> = analyze(plain).into_iter().map(|t| t.text).collect();
    if !terms.is_empty() {
        q.runs.push(terms);
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
