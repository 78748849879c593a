//! The copy style: the model quotes the words of the best sentence that answer, every
//! quotation weighed whole, so nothing it says is invented.

use std::collections::HashSet;

use super::kind::{answer_kind, asks_for_date, only_a_date, AnswerKind};
use super::rank::{says_more, CJK_FUNCTION};
use super::{Answer, Method, Source, Terms};
use crate::index::analyze;
use crate::llm::{span, Generation, Generator, LlmError};
use crate::query::parse;

/// How many words from a word the question repeats a quotation may start ("What did Marlee
/// Matlin translate?" → "the national anthem", after "translated"): the words that answer
/// usually stand next to the ones the question repeats.
const NEAR_WORDS: usize = 3;
/// The same for Chinese, in characters (a word is one to three).
const NEAR_CHARS: usize = 4;
/// Longest quotation weighed, in words: most answers are a name or a short phrase, and clause
/// ends cut most quotations shorter.
const QUOTE_WORDS: usize = 12;
/// Most places a quotation may start for the model to weigh every quotation whole (one pass
/// each); past that (a Chinese sentence, where every character may start one) it copies token
/// by token.
const QUOTE_STARTS: usize = 16;

const COPY_SYSTEM: &str = "Answer the question with a short phrase copied from the text.";
/// Worked examples that show the model how short a quotation should be.
const COPY_EXAMPLES: [(&str, &str); 2] = [
    (
        "Text:\nThe library opened in 1887 and was designed by Henry Hobson Richardson.\nIt was renovated in 2004 after a fire.\n\nQuestion: Who designed the library?",
        "Henry Hobson Richardson",
    ),
    (
        "Text:\nThe plumber fixed the leak under the sink on Tuesday.\nHe charged $180 for parts and labour.\n\nQuestion: How much did the plumber charge?",
        "$180",
    ),
];

const YES_OR_NO_SYSTEM: &str = "Answer the question with yes or no, from the text.";
/// One of each, so the model has seen both answers given.
const YES_OR_NO_EXAMPLES: [(&str, &str); 2] = [
    ("Text:\nRoom only; breakfast is served downstairs at £12 per person.\n\nQuestion: Is breakfast included?", "No"),
    ("Text:\nThe plumber fixed the leak under the sink on Tuesday.\n\nQuestion: Did the plumber fix the leak?", "Yes"),
];

/// The model's yes or no (`answers`, as [`super::kind::yes_or_no`] gives them) to the question,
/// from the best sentence alone: it chooses between the two, whole, and writes nothing else.
#[allow(clippy::too_many_arguments)]
pub(super) fn yes_or_no(
    generator: &mut Generator,
    question: &str,
    answers: [&str; 2],
    sentence: &str,
    n: usize,
    passages: Vec<Source>,
    on_text: &mut dyn FnMut(&str),
    extracted: impl Fn(Vec<Source>, Vec<String>, Option<Generation>) -> Answer,
) -> Result<Answer, LlmError> {
    let sentence = sentence.trim();
    let user = format!("Text:\n{sentence}\n\nQuestion: {question}");
    let prompt = generator.format().prompt_with_examples(YES_OR_NO_SYSTEM, &YES_OR_NO_EXAMPLES, &user);
    let Some((_, generation)) = generator.most_likely(&prompt, &answers)? else {
        return Ok(extracted(passages, Vec::new(), None));
    };
    on_text(&generation.text);
    Ok(from_sentence(Method::YesNo, generation, sentence, n, passages))
}

/// The model's answer (`generation`) from `sentence` of passage `n`, which it cites.
fn from_sentence(method: Method, generation: Generation, sentence: &str, n: usize, passages: Vec<Source>) -> Answer {
    Answer {
        text: generation.text.clone(),
        found: true,
        method,
        cited: vec![n],
        sources: passages,
        unsupported: Vec::new(),
        extract: Some(sentence.to_string()),
        generation: Some(generation),
        when: None,
        evidence: Default::default(),
    }
}

/// The model's quotation from the best sentence (from passage `n`); the sentence itself if the
/// quotation says nothing the question does not.
#[allow(clippy::too_many_arguments)]
pub(super) fn copied(
    generator: &mut Generator,
    question: &str,
    sentence: &str,
    n: usize,
    passages: Vec<Source>,
    max_tokens: usize,
    on_text: &mut dyn FnMut(&str),
    extracted: impl Fn(Vec<Source>, Vec<String>, Option<Generation>) -> Answer,
) -> Result<Answer, LlmError> {
    let sentence = sentence.trim();
    let user = format!("Text:\n{sentence}\n\nQuestion: {question}");
    let prompt = generator.format().prompt_with_examples(COPY_SYSTEM, &COPY_EXAMPLES, &user);
    // An answer brings something the question does not already say: it starts on a word
    // the question does not use (and some word of it must be new, or the sentence is shown).
    let asked: HashSet<String> = Terms::of(question).into_iter().collect();
    let new_word = |text: &str, at: usize| {
        let word: String = text[at..].chars().take_while(|c| c.is_alphanumeric()).collect();
        word.is_empty() || !asked.contains(&analyze::normalise_word(&word))
    };
    // Where the question says what kind of answer it wants, the quotation starts on one: a
    // figure for how many / when, an amount for what it cost, a time of day for what time, a
    // year for what year, a capitalised name for who.
    let kind = match answer_kind(question) {
        // A sentence with no amount, time of day, year, length or date may still hold the
        // figure that answers.
        kind @ (AnswerKind::Money | AnswerKind::Clock | AnswerKind::Year | AnswerKind::Length | AnswerKind::Date)
            if !kind.found_in(sentence) =>
        {
            AnswerKind::Figure
        }
        kind => kind,
    };
    // Nor in a line's label ("Hotel:", "Cause:"), which the question names rather than asks;
    // nor, unless a figure or a name is asked for, in the sentence's opening phrase ("Later,",
    // "By contrast,", "Soon after,"), which sets the scene rather than answers.
    let label = label_end(sentence);
    let opening = if label > 0 {
        label
    } else if kind == AnswerKind::Any {
        opening_phrase_end(sentence)
    } else {
        0
    };
    let typed = |text: &str, at: usize| new_word(text, at) && kind.admits(&text[at..]) && at >= opening;
    let near = near_words(sentence, &asked);
    let typed_near = |text: &str, at: usize| {
        let word = text[at..].char_indices().find(|(_, c)| c.is_alphanumeric()).map(|(i, _)| at + i);
        typed(text, at) && word.is_some_and(|w| near.contains(&w))
    };
    let any = |f: &dyn Fn(&str, usize) -> bool| sentence.char_indices().any(|(i, _)| f(sentence, i));
    let may_start: &dyn Fn(&str, usize) -> bool = if any(&typed_near) {
        &typed_near
    } else if any(&typed) {
        &typed
    } else {
        &new_word
    };
    let news = |text: &str| says_more(text, &asked);
    // A question that does not ask when is not answered by a bare date ("What did DECnet
    // originally do?" is not "1975").
    let dated = kind == AnswerKind::Any && !asks_for_date(question);
    let spans = span::quotations(sentence, may_start, &new_word, QUOTE_WORDS);
    let quotes: Vec<&str> =
        spans.iter().map(|&(a, b)| &sentence[a..b]).filter(|q| news(q) && !(dated && only_a_date(q))).collect();
    if quotes.is_empty() {
        return Ok(extracted(passages, Vec::new(), None));
    }
    let starts: HashSet<usize> = spans.iter().map(|&(a, _)| a).collect();
    let weighed = if starts.len() <= QUOTE_STARTS { generator.most_likely(&prompt, &quotes)? } else { None };
    let generation = match weighed {
        Some((_, generation)) => {
            on_text(&generation.text);
            generation
        }
        None => generator.copy_from(&prompt, &[sentence], may_start, &new_word, max_tokens, on_text)?.0,
    };
    if !news(&generation.text) {
        return Ok(extracted(passages, Vec::new(), Some(generation)));
    }
    Ok(from_sentence(Method::Copied, generation, sentence, n, passages))
}

/// Byte offsets of the words of `sentence` within [`NEAR_WORDS`] of a word it shares with the
/// question (function words aside), those shared words left out. Chinese is not split into
/// words: there, each character within [`NEAR_CHARS`] of a meaningful character the question
/// shares ("蒸" of "桂花糕要蒸多久", though the pair "要蒸" is not in "上锅蒸二十五分钟").
fn near_words(sentence: &str, asked: &HashSet<String>) -> HashSet<usize> {
    let terms = analyze::analyze(sentence);
    let words: Vec<&analyze::Term> = terms.iter().filter(|t| !t.cjk).collect();
    let anchors: Vec<usize> =
        words.iter().filter(|t| asked.contains(&t.text) && !parse::is_stop_word(&t.text)).map(|t| t.position).collect();
    let mut near: HashSet<usize> = words
        .iter()
        .filter(|t| !anchors.contains(&t.position) && anchors.iter().any(|&a| a.abs_diff(t.position) <= NEAR_WORDS))
        .map(|t| t.start)
        .collect();
    let chars: Vec<char> = sentence.chars().collect();
    let shared: Vec<usize> = (0..chars.len()).filter(|&k| shared_cjk_char(chars[k], asked)).collect();
    for (k, (at, c)) in sentence.char_indices().enumerate() {
        let close = shared.iter().any(|&a| a.abs_diff(k) <= NEAR_CHARS);
        if close && !shared.contains(&k) && !c.is_whitespace() {
            near.insert(at);
        }
    }
    near
}

/// Whether `c` is a Chinese character of the question (in one of its character pairs) that
/// carries meaning: not a question word's (什, 么, 多, 久 …) nor a particle's (的, 了, 是 …).
fn shared_cjk_char(c: char, asked: &HashSet<String>) -> bool {
    crate::text::is_cjk(c) && !CJK_FUNCTION.contains(c) && asked.iter().any(|t| t.chars().count() == 2 && t.contains(c))
}

/// Where a line's label ends: just past a colon (and a space) after one to four words that
/// open it ("Hotel: Casa do Bairro", "Follow-up: …"); 0 when it has none. A time of day
/// ("14:03") is no label.
fn label_end(sentence: &str) -> usize {
    let Some(colon) = sentence.find(": ") else { return 0 };
    let head = sentence[..colon].trim_start_matches(['-', '*', ' ']);
    let words = head.split_whitespace().count();
    let plain = head.chars().all(|c| c.is_alphabetic() || " -'".contains(c));
    if (1..=4).contains(&words) && plain {
        colon + 2
    } else {
        0
    }
}

/// Where a sentence's opening phrase ends: just past a comma among its first four words; 0
/// when it has none.
fn opening_phrase_end(sentence: &str) -> usize {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in sentence.char_indices() {
        if c == ',' {
            return if words <= 4 { i + 1 } else { 0 };
        }
        if c.is_alphanumeric() && !in_word {
            words += 1;
            if words > 4 {
                return 0;
            }
        }
        in_word = c.is_alphanumeric();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotations_start_near_the_words_the_question_repeats() {
        let sentence = "At the 2016 gala, Marlee Matlin translated the national anthem into American Sign Language.";
        let asked: HashSet<String> = Terms::of("What did Marlee Matlin translate?").into_iter().collect();
        let near = near_words(sentence, &asked);
        let at = |w: &str| sentence.find(w).unwrap();
        // "the national anthem" starts one word after "translated".
        assert!(near.contains(&at("the national")));
        assert!(near.contains(&at("anthem")));
        // Far from every repeated word, and the repeated words themselves, are not near.
        assert!(!near.contains(&at("Language")));
        assert!(!near.contains(&at("Matlin")));
        // Function words of the question anchor nothing ("did" is not in the sentence, "the" is).
        assert!(near_words("the cat sat on the mat", &Terms::of("what did the dog do").into_iter().collect()).is_empty());
        // Chinese is counted in characters, from the character pairs the question shares.
        let sentence = "黑豹队的防守只丢了 308分，在联赛中排名第六。";
        let near = near_words(sentence, &Terms::of("黑豹队的防守丢了多少分？").into_iter().collect());
        let at = |w: &str| sentence.find(w).unwrap();
        assert!(near.contains(&at("308")) && near.contains(&at("只")));
        assert!(!near.contains(&at("防守")) && !near.contains(&at("排名")));
        // A single shared character anchors too; particles and question characters do not.
        let sentence = "撒一层干桂花，上锅蒸二十五分钟，放凉后切块。";
        let near = near_words(sentence, &Terms::of("桂花糕要蒸多久？").into_iter().collect());
        let at = |w: &str| sentence.find(w).unwrap();
        assert!(near.contains(&at("二十五")) && near.contains(&at("上锅")));
        assert!(!near.contains(&at("蒸")) && !near.contains(&at("切块")));
    }

    #[test]
    fn a_line_label_ends_at_its_colon() {
        assert_eq!(label_end("Hotel: Casa do Bairro, Rua da Rosa 42."), 7);
        assert_eq!(label_end("- Follow-up: alerts 30 days ahead."), 13);
        assert_eq!(label_end("Action item: Luis 负责"), 13);
        assert_eq!(label_end("Duration: 42 minutes (14:03 to 14:45 UTC)."), 10);
        // Too long to be a label, or a figure before the colon.
        assert_eq!(label_end("The three reasons the committee gave were these: cost and time."), 0);
        assert_eq!(label_end("At 14:03: the site went down."), 0);
        assert_eq!(label_end("No colon here."), 0);
    }

    #[test]
    fn the_opening_phrase_ends_at_an_early_comma() {
        assert_eq!(opening_phrase_end("Later, oxyacetylene welding was demonstrated in 1901."), 6);
        assert_eq!(opening_phrase_end("By contrast, the Court of Justice held otherwise."), 12);
        // A comma further in closes a clause, not an opening phrase.
        assert_eq!(opening_phrase_end("The embargo had a negative influence on the US economy, said many."), 0);
        assert_eq!(opening_phrase_end("No comma here at all"), 0);
    }
}
