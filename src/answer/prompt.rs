//! The free style: the prompt over numbered passages, and reading the model's answer back
//! (its source markers, refusals, and which sources it draws on).

use super::rank::Sentence;
use super::{Source, Terms};
use crate::index::analyze;
use crate::llm::Generator;

/// Tokens kept free of the window besides the answer: chat markers and rounding.
const PROMPT_SLACK: usize = 48;

const SYSTEM: &str = "You answer questions about the user's own notes, files and screen, using only the numbered sources. Reply with the answer in one short sentence.";

/// The chat prompt with as many numbered passages as fit the model's window, and how many.
/// A passage that does not fit whole is cut to its best sentences.
pub(super) fn build_prompt(
    generator: &Generator,
    question: &str,
    passages: &[Source],
    sentences: &[Sentence],
    max_tokens: usize,
) -> (String, usize) {
    let question_part = format!("Question: {question}");
    let budget = generator.window().saturating_sub(max_tokens + PROMPT_SLACK + generator.count(SYSTEM) + generator.count(&question_part));
    let mut used = 0;
    let mut blocks = Vec::new();
    for (k, p) in passages.iter().enumerate() {
        let head = match &p.title {
            Some(t) if !t.is_empty() => format!("[{}] {}\n", blocks.len() + 1, t),
            _ => format!("[{}]\n", blocks.len() + 1),
        };
        let whole = format!("{head}{}", p.text.trim());
        let cost = generator.count(&whole);
        if used + cost <= budget {
            used += cost;
            blocks.push(whole);
            continue;
        }
        // The best sentences of this passage, in text order, while they fit.
        let mut picked: Vec<&Sentence> = Vec::new();
        let mut cost = generator.count(&head);
        for s in sentences.iter().filter(|s| s.passage == k) {
            let c = generator.count(&p.text[s.start..s.end]) + 1;
            if used + cost + c <= budget {
                cost += c;
                picked.push(s);
            }
        }
        if picked.is_empty() {
            break;
        }
        picked.sort_by_key(|s| s.start);
        let text: Vec<&str> = picked.iter().map(|s| &p.text[s.start..s.end]).collect();
        used += cost;
        blocks.push(format!("{head}{}", text.join(" … ")));
    }
    let user = format!("Sources:\n\n{}\n\n{question_part}", blocks.join("\n\n"));
    (generator.format().prompt(SYSTEM, &user), blocks.len())
}

/// The answer's first paragraph without source markers, and the valid source numbers it marked.
pub(super) fn clean(text: &str, sources: usize) -> (String, Vec<usize>) {
    let first = text.trim().split("\n\n").next().unwrap_or("").trim();
    let mut cited = Vec::new();
    let mut out = String::new();
    let mut rest = first;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else { break };
        let inside = &rest[open + 1..open + close];
        let numbers: Vec<usize> = inside.split([',', ' ']).filter_map(|n| n.trim().parse().ok()).collect();
        out.push_str(&rest[..open]);
        if numbers.is_empty() {
            out.push_str(&rest[open..open + close + 1]);
        }
        for n in numbers {
            if (1..=sources).contains(&n) && !cited.contains(&n) {
                cited.push(n);
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let out = out.replace(" .", ".").replace(" ,", ",");
    (out, cited)
}

pub(super) fn says_not_found(text: &str) -> bool {
    let t = text.to_lowercase();
    ["not found", "no information", "not mention", "does not mention", "doesn't mention", "not mentioned", "i don't know", "cannot answer", "can't answer"]
        .iter()
        .any(|p| t.contains(p))
}

/// The sources that share most of the answer's words; the best sentence's passage if none do.
pub(super) fn cite(answer: &str, passages: &[Source], fallback: usize) -> Vec<usize> {
    let words = Terms::of(answer);
    if words.is_empty() {
        return vec![passages[fallback].n];
    }
    let shares: Vec<f32> = passages
        .iter()
        .map(|p| {
            let present: std::collections::HashSet<String> = analyze::analyze(&p.text).into_iter().map(|t| t.text).collect();
            words.iter().filter(|w| present.contains(*w)).count() as f32 / words.len() as f32
        })
        .collect();
    let top = shares.iter().cloned().fold(0.0, f32::max);
    if top == 0.0 {
        return vec![passages[fallback].n];
    }
    passages.iter().zip(&shares).filter(|(_, &s)| s >= top * 0.999).map(|(p, _)| p.n).take(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_citations_and_leave_the_text() {
        let (text, cited) = clean("The brakes cost $240 [2]. Pads were replaced [1, 2] [7].\n\nExtra", 3);
        assert_eq!(text, "The brakes cost $240. Pads were replaced.");
        assert_eq!(cited, vec![2, 1]);
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(says_not_found("The sources do not mention the price."));
        assert!(!says_not_found("The mechanic charged $240."));
    }
}
