//! Ranks the passages' sentences by how well each answers the question; the best one is the
//! extractive answer and the one the model quotes from.

use std::collections::HashSet;

use super::kind::{answer_kind, AnswerKind, MONEY_WORDS};
use super::{Source, Terms};
use crate::embed::{EmbedError, Embedder};
use crate::index::analyze;
use crate::llm::LlmError;
use crate::query::{parse, snippet};

/// Bonus for a sentence of a passage retrieval ranked first (halved for the second, …).
const RANK_PRIOR: f32 = 0.15;
/// A mail header line ("From: …") or a heading names the memory; it rarely answers a question
/// about it.
const LABEL_PENALTY: f32 = 0.3;
/// Bonus for a sentence with a figure in it when the question asks for one.
const FIGURE_BONUS: f32 = 0.15;
/// A sentence that asks ("Book club in May?") rarely answers.
const QUESTION_PENALTY: f32 = 0.2;
/// Sentences per passage considered for the extractive answer.
const SENTENCES_PER_PASSAGE: usize = 12;

/// A candidate sentence for the extractive answer.
#[derive(Debug, Clone)]
pub(super) struct Sentence {
    pub(super) passage: usize,
    pub(super) start: usize,
    pub(super) end: usize,
    score: f32,
    /// Cosine similarity to the question (0 without an embedder).
    pub(super) cos: f32,
}

/// Every sentence of the passages, best answer first: the question's weighted words it holds,
/// its closeness in meaning when the embedder reads the question, and a little for the
/// passage's own rank and word share. `embedder` comes with how much of the question it reads.
pub(super) fn rank_sentences(
    question: &str,
    passages: &[Source],
    terms: &Terms,
    embedder: Option<(&Embedder, f32)>,
) -> Result<Vec<Sentence>, LlmError> {
    let kind = answer_kind(question);
    let asked: HashSet<String> = Terms::of(question).into_iter().collect();
    let mut echoes = Vec::new();
    // "charge" in "What did the mechanic charge for the brakes?" asks for an amount, which the
    // kind's bonus looks for; the brakes are what the sentence must be about.
    let less;
    let terms = if kind == AnswerKind::Money {
        less = terms.less(&MONEY_WORDS);
        &less
    } else {
        terms
    };
    let mut sentences = Vec::new();
    for (k, p) in passages.iter().enumerate() {
        let mut spans = snippet::sentences(&p.text);
        if spans.is_empty() && !p.text.trim().is_empty() {
            spans.push((0, p.text.len()));
        }
        let passage_share = terms.share(&p.text);
        // What the memory is headed with (its title, mail headers and headings) is what every
        // line under it is about ("Lisbon" of "# Lisbon trip", an article's name for the lines
        // that say "the city").
        let label = |&(start, end): &(usize, usize)| is_label(&p.text[start..end]) || is_title_line(&p.text, start, end);
        let mut context = words_of(p.title.as_deref().unwrap_or(""));
        for &(start, end) in spans.iter().filter(|s| label(s)) {
            context.extend(words_of(&p.text[start..end]));
        }
        for (start, end) in spans.into_iter().take(SENTENCES_PER_PASSAGE) {
            let sentence = &p.text[start..end];
            let figure = match kind {
                AnswerKind::Figure if kind.found_in(sentence) => FIGURE_BONUS,
                _ if kind.found_in(sentence) => 2.0 * FIGURE_BONUS,
                _ => 0.0,
            };
            let share = terms.share_in(sentence, &context) - if label(&(start, end)) { LABEL_PENALTY } else { 0.0 };
            let asks = if sentence.trim_end().ends_with(['?', '？']) { QUESTION_PENALTY } else { 0.0 };
            let score = share + 0.25 * passage_share + RANK_PRIOR / (1.0 + k as f32) + figure - asks;
            // A line that only repeats the question (a mail's signature "Priya" for "What is
            // Priya making?") cannot answer it, however close in meaning.
            if says_more(sentence, &asked) {
                sentences.push(Sentence { passage: k, start, end, score, cos: 0.0 });
            } else {
                echoes.push(Sentence { passage: k, start, end, score, cos: 0.0 });
            }
        }
    }
    if sentences.is_empty() {
        sentences = echoes;
    }
    if let Some((e, coverage)) = embedder {
        let texts: Vec<&str> = sentences.iter().map(|s| &passages[s.passage].text[s.start..s.end]).collect();
        let run = |e: EmbedError| LlmError::Run(e.to_string());
        let asked = e.embed_queries(&[question]).map_err(run)?.remove(0);
        let vectors = e.embed(&texts).map_err(run)?;
        for (s, v) in sentences.iter_mut().zip(&vectors) {
            let cos = e.calibrate(v.iter().zip(&asked).map(|(a, b)| a * b).sum(), None);
            s.cos = cos;
            s.score += coverage * cos;
        }
    }
    sentences.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.passage.cmp(&b.passage)).then(a.start.cmp(&b.start)));
    Ok(sentences)
}

/// Chinese characters that carry no answer of their own: question words, particles, pronouns.
pub(super) const CJK_FUNCTION: &str = "什么哪谁吗呢怎多少几久何的了是在有和就都也要会把被给让向从对与及其这那个一不他她它们我你您此";

/// Whether `text` is Chinese made only of [`CJK_FUNCTION`] characters ("的", "一个", "他们").
fn only_cjk_function(text: &str) -> bool {
    let mut chars = text.chars().filter(|c| c.is_alphanumeric()).peekable();
    chars.peek().is_some() && chars.all(|c| CJK_FUNCTION.contains(c))
}

/// Whether `text` says something the question (its terms `asked`) does not: a word beyond them
/// that is not a function word.
pub(super) fn says_more(text: &str, asked: &HashSet<String>) -> bool {
    Terms::of(text).iter().any(|t| !asked.contains(t) && !parse::is_stop_word(t)) && !only_cjk_function(text)
}

/// The index terms of `text`.
pub(super) fn words_of(text: &str) -> HashSet<String> {
    analyze::analyze(text).into_iter().map(|t| t.text).collect()
}

/// Whether `text[start..end]` is a title: a short first line with no closing punctuation,
/// with more below it ("Sprint 14 retrospective", "Passport renewal checklist").
pub(super) fn is_title_line(text: &str, start: usize, end: usize) -> bool {
    let line = &text[start..end];
    text[..start].trim().is_empty()
        && !line.contains('\n')
        && line.split_whitespace().count() <= 8
        && !line.ends_with(['.', '!', '?', ':', ';', ',', '。', '！', '？', '：', '；', '，'])
        && !text[end..].trim().is_empty()
}

/// Whether a line labels its memory rather than says something: a mail header or a heading.
pub(super) fn is_label(sentence: &str) -> bool {
    const HEADERS: [&str; 8] = ["From:", "To:", "Cc:", "Bcc:", "Subject:", "Date:", "Content-Type:", "Reply-To:"];
    HEADERS.iter().any(|h| sentence.starts_with(h)) || sentence.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_particles_and_pronouns_say_nothing() {
        assert!(only_cjk_function("的") && only_cjk_function("一个") && only_cjk_function("他们"));
        assert!(!only_cjk_function("野马队") && !only_cjk_function("二十五分钟") && !only_cjk_function("the") && !only_cjk_function(""));
    }
}
