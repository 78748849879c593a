//! Answers a question from retrieved memories. The passages' sentences are ranked; by default
//! the local model reads the best one and quotes the words that answer: every quotation the
//! copy rules allow is weighed whole and the likeliest kept (see [`crate::llm::span`] and
//! [`Generator::most_likely`]), so nothing it says is invented. The free style lets it write
//! over numbered passages and keeps that answer only when its sources bear out every number,
//! date and name in it.
//!
//! Retrieval decides whether there is an answer at all: when no passage carries enough of the
//! question, by its words or by meaning, the answer is "not found" and the model is not loaded.

pub mod caption;
pub mod ground;

use std::cell::RefMut;
use std::collections::HashSet;

use serde::Serialize;

use crate::embed::{EmbedError, Embedder};
use crate::index::analyze;
use crate::llm::{span, Generation, Generator, LlmError};
use crate::query::{parse, snippet, time};
use crate::store::Kind;

/// Share of the question's weighted words a passage must hold to count as an answer…
const FOUND_WORDS: f32 = 0.34;
/// …or its closest sentence's cosine similarity to the question (for a model that reads it).
/// Unrelated questions over the sample scored 0.17–0.30, paraphrased ones 0.45+.
const FOUND_MEANING: f32 = 0.42;
/// Bonus for a sentence of a passage retrieval ranked first (halved for the second, …).
const RANK_PRIOR: f32 = 0.15;
/// A mail header line ("From: …") or a heading names the memory; it rarely answers a question
/// about it.
const LABEL_PENALTY: f32 = 0.3;
/// Bonus for a sentence with a figure in it when the question asks for one.
const FIGURE_BONUS: f32 = 0.15;
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
/// Sentences per passage considered for the extractive answer.
const SENTENCES_PER_PASSAGE: usize = 12;
/// Tokens kept free of the window besides the answer: chat markers and rounding.
const PROMPT_SLACK: usize = 48;

const SYSTEM: &str = "You answer questions about the user's own notes, files and screen, using only the numbered sources. Reply with the answer in one short sentence.";
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

/// How an answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// The model reads the best sentence and quotes the words that answer: short, and never
    /// invented (its decoding may only copy). The default: it scored best (BENCHMARKS.md; the
    /// best 2 or 3 sentences scored worse than the best alone).
    Copy,
    /// The model writes freely over the numbered passages; an answer whose numbers, dates or
    /// names are not in its sources is replaced by the extractive one.
    Free,
    /// No model: the sentence of the passages that best answers the question.
    Extract,
}

impl Style {
    pub fn parse(s: &str) -> Option<Style> {
        match s {
            "copy" => Some(Style::Copy),
            "free" => Some(Style::Free),
            "extract" => Some(Style::Extract),
            _ => None,
        }
    }
}

/// One retrieved passage, numbered as the prompt shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Source {
    pub n: usize,
    /// The memory (item) id, as `engram show` takes it.
    pub id: i64,
    pub kind: Kind,
    pub source: String,
    pub title: Option<String>,
    /// Unix seconds.
    pub time: i64,
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Words the model quoted from a source.
    Copied,
    /// The model's answer, checked against its sources.
    Generated,
    /// The sentence of the sources that best answers the question.
    Extracted,
    NotFound,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Answer {
    pub text: String,
    pub found: bool,
    pub method: Method,
    /// Every source the answer was drawn from (the prompt's passages).
    pub sources: Vec<Source>,
    /// Numbers (`Source::n`) of the sources the answer cites.
    pub cited: Vec<usize>,
    /// Details of the model's answer that no cited source contains; when not empty the answer
    /// shown is the extractive one.
    pub unsupported: Vec<String>,
    /// The best-matching sentence, or for a copied answer the sentence it was quoted from.
    pub extract: Option<String>,
    pub generation: Option<Generation>,
    /// The stretch of time the question named, when it was read as a filter.
    #[serde(default)]
    pub when: Option<When>,
}

/// A stretch of time the question named ("yesterday"), read as when its memories were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct When {
    /// The words of the question that named it.
    pub phrase: String,
    /// Unix seconds, `since <= time < until`.
    pub since: i64,
    pub until: i64,
    /// False when no memory made then answered, so every memory was searched instead.
    pub applied: bool,
}

impl Answer {
    /// The answer as `engram ask --json` and the API give it.
    pub fn to_json(&self) -> serde_json::Value {
        let time = crate::query::time::rfc3339;
        let citations: Vec<_> = self
            .sources
            .iter()
            .filter(|s| self.cited.contains(&s.n))
            .map(|s| serde_json::json!({ "n": s.n, "id": s.id, "source": s.source, "title": s.title, "kind": s.kind, "time": time(s.time) }))
            .collect();
        serde_json::json!({
            "answer": self.text,
            "found": self.found,
            "method": self.method,
            "quote": self.extract,
            "citations": citations,
            "unsupported": self.unsupported,
            "when": self.when.as_ref().map(|w| serde_json::json!({
                "phrase": w.phrase, "since": time(w.since), "until": time(w.until), "applied": w.applied,
            })),
        })
    }

    fn not_found(sources: Vec<Source>) -> Answer {
        Answer {
            text: "Not found in your memories.".into(),
            found: false,
            method: Method::NotFound,
            sources,
            cited: Vec::new(),
            unsupported: Vec::new(),
            extract: None,
            generation: None,
            when: None,
        }
    }
}

/// The question's index terms, each with how telling it is (BM25 idf over the indexed chunks).
pub struct Terms {
    pub terms: Vec<String>,
    pub weights: Vec<f32>,
}

impl Terms {
    pub fn of(question: &str) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for t in analyze::analyze(question) {
            if !terms.contains(&t.text) {
                terms.push(t.text);
            }
        }
        terms
    }

    /// Weighted share of the question's terms that `text` contains. A CJK bigram that is not
    /// there counts half if one of its characters is: question bigrams straddle function
    /// characters (什么, 多久) that the answer does not repeat.
    fn share(&self, text: &str) -> f32 {
        self.share_in(text, &HashSet::new())
    }

    /// These terms, those of `words` weighing nothing.
    fn less(&self, words: &[&str]) -> Terms {
        let drop: HashSet<String> = words.iter().map(|w| analyze::normalise_word(w)).collect();
        let weights = self.terms.iter().zip(&self.weights).map(|(t, w)| if drop.contains(t) { 0.0 } else { *w }).collect();
        Terms { terms: self.terms.clone(), weights }
    }

    /// [`Terms::share`] of `text`, where a term not in it but `around` it (in the title or
    /// headings of its memory) counts too: "Flights: TP1351" is about the Lisbon trip its note
    /// is headed with.
    fn share_in(&self, text: &str, around: &HashSet<String>) -> f32 {
        let total: f32 = self.weights.iter().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let present: HashSet<String> = analyze::analyze(text).into_iter().map(|t| t.text).collect();
        let held: f32 = self
            .terms
            .iter()
            .zip(&self.weights)
            .map(|(t, w)| {
                if present.contains(t) {
                    *w
                } else if t.chars().count() == 2 && t.chars().all(crate::text::is_cjk) && t.chars().any(|c| text.contains(c)) {
                    w / 2.0
                } else if around.contains(t) {
                    *w
                } else {
                    0.0
                }
            })
            .sum();
        held / total
    }
}

/// A candidate sentence for the extractive answer.
#[derive(Debug, Clone)]
struct Sentence {
    passage: usize,
    start: usize,
    end: usize,
    score: f32,
    /// Cosine similarity to the question (0 without an embedder).
    cos: f32,
}

pub struct Inputs<'a> {
    pub question: &'a str,
    /// Retrieved passages, best first.
    pub passages: Vec<Source>,
    pub terms: Terms,
    pub embedder: Option<&'a Embedder>,
    /// Loads the language model; called only when an answer is found and the style needs it.
    pub generator: &'a dyn Fn() -> Result<RefMut<'a, Generator>, LlmError>,
    pub style: Style,
    pub max_tokens: usize,
}

pub fn answer(inputs: Inputs<'_>, on_text: &mut dyn FnMut(&str)) -> Result<Answer, LlmError> {
    let Inputs { question, passages, terms, embedder, generator, style, max_tokens } = inputs;
    if passages.is_empty() {
        return Ok(Answer::not_found(passages));
    }
    let coverage = embedder.map(|e| e.coverage(question)).unwrap_or(0.0);
    let sentences = rank_sentences(question, &passages, &terms, embedder.filter(|_| coverage > 0.0).map(|e| (e, coverage)))?;
    let best = sentences.first().cloned();
    // The title counts: a receipt saved as "hardware-store.txt" is from the hardware store.
    let words = passages.iter().map(|p| terms.share_in(&p.text, &words_of(p.title.as_deref().unwrap_or("")))).fold(0.0, f32::max);
    let meaning = sentences.iter().map(|s| s.cos).fold(0.0, f32::max);
    let found = words >= FOUND_WORDS || (coverage >= 0.5 && meaning >= FOUND_MEANING);
    let Some(best) = best.filter(|_| found) else {
        return Ok(Answer::not_found(passages));
    };
    let extract = passages[best.passage].text[best.start..best.end].to_string();
    let extracted = |passages: Vec<Source>, unsupported: Vec<String>, generation: Option<Generation>| Answer {
        text: extract.clone(),
        found: true,
        method: Method::Extracted,
        cited: vec![passages[best.passage].n],
        sources: passages,
        unsupported,
        extract: Some(extract.clone()),
        generation,
        when: None,
    };
    if style == Style::Extract {
        return Ok(extracted(passages, Vec::new(), None));
    }
    let mut generator = generator()?;
    let generator = &mut *generator;
    if style == Style::Copy {
        return copied(generator, question, &extract, passages[best.passage].n, passages, max_tokens, on_text, extracted);
    }

    let (prompt, shown) = build_prompt(generator, question, &passages, &sentences, max_tokens);
    let passages: Vec<Source> = passages.into_iter().take(shown).collect();
    let generation = generator.generate(&prompt, max_tokens, on_text)?;
    let (text, marked) = clean(&generation.text, passages.len());
    if text.is_empty() || says_not_found(&text) {
        return Ok(extracted(passages, Vec::new(), Some(generation)));
    }
    let cited = if marked.is_empty() { cite(&text, &passages, best.passage) } else { marked };
    let cited_text: String = passages.iter().filter(|p| cited.contains(&p.n)).map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n");
    let unsupported: Vec<String> = ground::unsupported(&text, &cited_text).iter().map(|f| f.text().to_string()).collect();
    if !unsupported.is_empty() {
        return Ok(extracted(passages, unsupported, Some(generation)));
    }
    Ok(Answer {
        text,
        found: true,
        method: Method::Generated,
        sources: passages,
        cited,
        unsupported,
        extract: Some(extract),
        generation: Some(generation),
        when: None,
    })
}

/// The model's quotation from the best sentence (from passage `n`); the sentence itself if the
/// quotation says nothing the question does not.
#[allow(clippy::too_many_arguments)]
fn copied(
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
    Ok(Answer {
        text: generation.text.clone(),
        found: true,
        method: Method::Copied,
        cited: vec![n],
        sources: passages,
        unsupported: Vec::new(),
        extract: Some(sentence.to_string()),
        generation: Some(generation),
        when: None,
    })
}

/// Every sentence of the passages, best answer first: the question's weighted words it holds,
/// its closeness in meaning when the embedder reads the question, and a little for the
/// passage's own rank and word share. `embedder` comes with how much of the question it reads.
fn rank_sentences(
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
            let score = share + 0.25 * passage_share + RANK_PRIOR / (1.0 + k as f32) + figure;
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

/// Chinese characters that carry no answer of their own: question words, particles, pronouns.
const CJK_FUNCTION: &str = "什么哪谁吗呢怎多少几久何的了是在有和就都也要会把被给让向从对与及其这那个一不他她它们我你您此";

/// Whether `text` is Chinese made only of [`CJK_FUNCTION`] characters ("的", "一个", "他们").
fn only_cjk_function(text: &str) -> bool {
    let mut chars = text.chars().filter(|c| c.is_alphanumeric()).peekable();
    chars.peek().is_some() && chars.all(|c| CJK_FUNCTION.contains(c))
}

/// Whether `text` says something the question (its terms `asked`) does not: a word beyond them
/// that is not a function word.
fn says_more(text: &str, asked: &HashSet<String>) -> bool {
    Terms::of(text).iter().any(|t| !asked.contains(t) && !parse::is_stop_word(t)) && !only_cjk_function(text)
}

/// The index terms of `text`.
fn words_of(text: &str) -> HashSet<String> {
    analyze::analyze(text).into_iter().map(|t| t.text).collect()
}

/// Whether `text[start..end]` is a title: a short first line with no closing punctuation,
/// with more below it ("Sprint 14 retrospective", "Passport renewal checklist").
fn is_title_line(text: &str, start: usize, end: usize) -> bool {
    let line = &text[start..end];
    text[..start].trim().is_empty()
        && !line.contains('\n')
        && line.split_whitespace().count() <= 8
        && !line.ends_with(['.', '!', '?', ':', ';', ',', '。', '！', '？', '：', '；', '，'])
        && !text[end..].trim().is_empty()
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

/// Whether a line labels its memory rather than says something: a mail header or a heading.
fn is_label(sentence: &str) -> bool {
    const HEADERS: [&str; 8] = ["From:", "To:", "Cc:", "Bcc:", "Subject:", "Date:", "Content-Type:", "Reply-To:"];
    HEADERS.iter().any(|h| sentence.starts_with(h)) || sentence.starts_with('#')
}

/// What kind of words a question's answer starts with, where the question makes it plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerKind {
    Figure,
    /// An amount of money: a figure with a currency sign or name.
    Money,
    /// A time of day.
    Clock,
    /// A year: four digits ("1795", "2019年").
    Year,
    /// A date or day: a figure, month or weekday that is not an amount of money.
    Date,
    /// A length of time or of road: a figure and its unit ("42 minutes", "three weeks", "25分钟").
    Length,
    Name,
    Any,
}

impl AnswerKind {
    /// Whether an answer could start at the beginning of `rest`.
    fn admits(self, rest: &str) -> bool {
        let word: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
        let first = rest.chars().next();
        match self {
            AnswerKind::Any => true,
            AnswerKind::Figure => {
                first.is_some_and(|c| c.is_ascii_digit() || "£$€¥".contains(c) || CJK_FIGURE.contains(c))
                    || NUMBER_WORDS.contains(&word.as_str())
                    || ground::MONTHS.contains(&word.as_str())
                    || time::WEEKDAYS.contains(&word.as_str())
            }
            AnswerKind::Money => first.is_some_and(|c| "£$€¥".contains(c)) || figure_then(rest, &CURRENCIES),
            AnswerKind::Clock => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let hour = rest[..digits].parse::<u32>().is_ok_and(|h| h <= 24);
                let after = &rest[digits..];
                let minutes = after.get(1..3).filter(|m| after.starts_with([':', '.']) && m.chars().all(|c| c.is_ascii_digit()));
                hour && (minutes.is_some_and(|m| m < "60" && !after[3..].starts_with(|c: char| c.is_ascii_digit()))
                    || figure_then(rest, &["am", "pm", "a.m.", "p.m.", "点", "點", "时"]))
            }
            AnswerKind::Year => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let after = &rest[digits..];
                let figure_goes_on = after.starts_with(['.', ',', ':'])
                    && after[1..].starts_with(|c: char| c.is_ascii_digit());
                digits == 4 && !figure_goes_on
            }
            AnswerKind::Length => figure_then(rest, &LENGTH_UNITS),
            AnswerKind::Date => AnswerKind::Figure.admits(rest) && !AnswerKind::Money.admits(rest),
            AnswerKind::Name => first.is_some_and(|c| c.is_uppercase() || crate::text::is_cjk(c)),
        }
    }

    /// Whether a quotation of `sentence` could start on an answer of this kind (for Figure:
    /// whether it has any digit).
    fn found_in(self, sentence: &str) -> bool {
        match self {
            AnswerKind::Figure => sentence.chars().any(|c| c.is_ascii_digit()),
            AnswerKind::Money | AnswerKind::Clock | AnswerKind::Year | AnswerKind::Length | AnswerKind::Date => {
                sentence.char_indices().any(|(i, _)| span::may_start_at(sentence, i) && self.admits(&sentence[i..]))
            }
            AnswerKind::Name | AnswerKind::Any => false,
        }
    }
}

const CURRENCIES: [&str; 17] = [
    "gbp", "usd", "eur", "cny", "rmb", "jpy", "chf", "dollars", "dollar", "pounds", "euros", "euro", "元", "块", "美元", "英镑", "欧元",
];

/// Words that ask what something cost. Whole words: "fee" is not in "feel", nor "pay" in
/// "taxpayer". Not "spent" or "rent", which as often ask where or what ("where did I spend the
/// weekend").
const MONEY_WORDS: [&str; 17] = [
    "cost", "costs", "price", "priced", "prices", "charge", "charged", "charges", "pay", "paid", "pays", "fee", "bill", "bills",
    "owe", "owed", "owes",
];

/// Units of time and of distance, for "how long".
const LENGTH_UNITS: [&str; 42] = [
    "seconds", "second", "secs", "minutes", "minute", "mins", "min", "hours", "hour", "hrs", "hr", "days", "day", "nights",
    "night", "weeks", "week", "fortnight", "months", "month", "years", "year", "decades", "centuries", "century", "km",
    "kilometres", "kilometers", "miles", "mile", "metres", "meters", "m", "feet", "ft", "秒", "分钟", "小时", "个小时", "天",
    "个月", "年",
];

/// Whether `rest` starts with a figure ("312.40", "1,450", "three", "二十五") followed by one
/// of `units`.
fn figure_then(rest: &str, units: &[&str]) -> bool {
    let mut end = 0;
    for (i, c) in rest.char_indices() {
        if c.is_ascii_digit() {
            end = i + 1;
        } else if !(matches!(c, '.' | ',') && end > 0 && rest[i + 1..].starts_with(|d: char| d.is_ascii_digit())) {
            break;
        }
    }
    if end == 0 {
        let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_lowercase();
        end = if NUMBER_WORDS.contains(&word.as_str()) && word != "a" {
            word.len()
        } else {
            rest.char_indices().find(|&(_, c)| !CJK_NUMERALS.contains(c)).map_or(rest.len(), |(i, _)| i)
        };
    }
    if end == 0 {
        return false;
    }
    let after = rest[end..].trim_start().to_lowercase();
    units.iter().any(|u| {
        after.starts_with(u) && !after[u.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
    })
}

/// Chinese numerals.
const CJK_NUMERALS: &str = "零〇一二两三四五六七八九十百千万亿半几";

/// Characters a Chinese figure or date starts with: numerals, then 周三, 星期, 今天, 去年 ….
const CJK_FIGURE: &str = "零〇一二两三四五六七八九十百千万亿半几数周星今明昨去前";

const NUMBER_WORDS: [&str; 24] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
    "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion", "half", "a", "several", "dozen",
];

fn answer_kind(question: &str) -> AnswerKind {
    let q = question.trim_start().to_lowercase();
    const MONEY_CJK: [&str; 5] = ["多少钱", "费用", "价格", "花了", "价钱"];
    const CLOCK: [&str; 5] = ["what time", "at which time", "几点", "幾點", "什么时间"];
    const YEAR: [&str; 5] = ["what year", "which year", "哪年", "哪一年", "何年"];
    // "When did I pay the deposit?" asks for a date, not the amount.
    const WHEN: [&str; 7] = ["what date", "what day", "which day", "什么时候", "何时", "哪天", "哪一天"];
    const LENGTH: [&str; 4] = ["how long", "多久", "多长时间", "多長時間"];
    let words: Vec<&str> = q.split(|c: char| !c.is_alphanumeric()).collect();
    if CLOCK.iter().any(|w| q.contains(w)) {
        AnswerKind::Clock
    } else if q.starts_with("when") || WHEN.iter().any(|w| q.contains(w)) {
        AnswerKind::Date
    } else if words.iter().any(|w| MONEY_WORDS.contains(w)) || q.contains("how much money") || MONEY_CJK.iter().any(|w| q.contains(w)) {
        AnswerKind::Money
    } else if YEAR.iter().any(|w| q.contains(w)) {
        AnswerKind::Year
    } else if LENGTH.iter().any(|w| q.contains(w)) {
        AnswerKind::Length
    } else if asks_for_figure(question) {
        AnswerKind::Figure
    } else if ["who ", "whom ", "whose ", "where ", "in which country", "in what country", "in which city", "in what city", "what city", "what country", "which city", "which country"]
        .iter()
        .any(|w| q.starts_with(w))
        || q.contains(" who ")
    {
        AnswerKind::Name
    } else {
        AnswerKind::Any
    }
}

/// Whether the question speaks of a date or a stretch of time ("In what era …?").
fn asks_for_date(question: &str) -> bool {
    const WORDS: [&str; 12] = ["year", "years", "date", "dates", "time", "times", "century", "decade", "period", "era", "age", "day"];
    let q = question.to_lowercase();
    q.split(|c: char| !c.is_alphanumeric()).any(|w| WORDS.contains(&w)) || asks_for_figure(question)
}

/// Whether `text` says only when: a year or a month, with day numbers and function words
/// ("1975", "In November", "on 3 May 2016").
fn only_a_date(text: &str) -> bool {
    let words: Vec<String> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let year = |w: &str| w.len() == 4 && w.chars().all(|c| c.is_ascii_digit());
    let month = |w: &str| ground::MONTHS.contains(&w);
    let day = |w: &str| w.len() <= 2 && w.chars().all(|c| c.is_ascii_digit());
    words.iter().any(|w| year(w) || month(w))
        && words.iter().all(|w| year(w) || month(w) || day(w) || parse::is_stop_word(&analyze::normalise_word(w)))
}

/// Whether the question asks for a number, an amount, a date or a time.
fn asks_for_figure(question: &str) -> bool {
    let q = question.to_lowercase();
    const ASKS: [&str; 29] = [
        "how much", "how many", "how long", "how old", "how far", "how often", "how early", "how late", "how soon",
        "how big", "how large", "how tall", "how high", "how heavy", "how fast", "how deep", "how wide", "when ",
        "what year", "what date", "which year", "what day", "多少", "几", "什么时候", "多久", "哪年", "何时", "多长",
    ];
    // Whole words that ask for a measure ("What is the minimum password length?").
    const MEASURES: [&str; 5] = ["minimum", "maximum", "length", "population", "percentage"];
    q.starts_with("when")
        || ASKS.iter().any(|a| q.contains(a))
        || q.split(|c: char| !c.is_alphanumeric()).any(|w| MEASURES.contains(&w))
}

/// The chat prompt with as many numbered passages as fit the model's window, and how many.
/// A passage that does not fit whole is cut to its best sentences.
fn build_prompt(
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
fn clean(text: &str, sources: usize) -> (String, Vec<usize>) {
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

fn says_not_found(text: &str) -> bool {
    let t = text.to_lowercase();
    ["not found", "no information", "not mention", "does not mention", "doesn't mention", "not mentioned", "i don't know", "cannot answer", "can't answer"]
        .iter()
        .any(|p| t.contains(p))
}

/// The sources that share most of the answer's words; the best sentence's passage if none do.
fn cite(answer: &str, passages: &[Source], fallback: usize) -> Vec<usize> {
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

    #[test]
    fn a_question_about_money_wants_an_amount_and_one_about_the_hour_a_time() {
        assert_eq!(answer_kind("What did the mechanic charge for the brakes?"), AnswerKind::Money);
        assert_eq!(answer_kind("How much did the new laptop cost?"), AnswerKind::Money);
        assert_eq!(answer_kind("修车花了多少钱？"), AnswerKind::Money);
        assert_eq!(answer_kind("What time is the dentist appointment?"), AnswerKind::Clock);
        assert_eq!(answer_kind("会议几点开始？"), AnswerKind::Clock);
        assert_eq!(answer_kind("How many interceptions did they get?"), AnswerKind::Figure);
        assert_eq!(answer_kind("How did I feel about the taxpayer meeting?"), AnswerKind::Any);
        assert_eq!(answer_kind("Where did I spend the weekend?"), AnswerKind::Name);
        assert_eq!(answer_kind("How much is the energy bill?"), AnswerKind::Money);
        // When a payment was made is a date, not an amount.
        assert_eq!(answer_kind("When did I pay the deposit?"), AnswerKind::Date);
        assert_eq!(answer_kind("What day is the bill collected?"), AnswerKind::Date);
        let starts = |kind: AnswerKind, s: &str| -> Vec<String> {
            s.char_indices()
                .filter(|&(i, _)| i == 0 || s[..i].ends_with(char::is_whitespace))
                .filter(|&(i, _)| kind.admits(&s[i..]))
                .map(|(i, _)| s[i..].split_whitespace().next().unwrap_or("").to_string())
                .collect()
        };
        let invoice = "Parts and labour for the brakes came to 312.40 GBP within 6 months; the oil change was £64.00.";
        assert_eq!(starts(AnswerKind::Money, invoice), ["312.40", "£64.00."]);
        assert!(AnswerKind::Money.found_in(invoice) && !AnswerKind::Money.found_in("Book the brakes in within six months."));
        let reminder = "Your appointment on Friday 13 March at 08:30, or at 4 pm if you call.";
        assert_eq!(starts(AnswerKind::Clock, reminder), ["08:30,", "4"]);
        assert!(AnswerKind::Clock.found_in("会议改到周三下午3点。") && !AnswerKind::Clock.found_in(invoice));
        assert!(AnswerKind::Figure.found_in("within 6 months"));
        let due = "Amount due: 148.22 GBP, collected by direct debit on 18 March.";
        assert_eq!(starts(AnswerKind::Date, due), ["18", "March."]);
    }

    #[test]
    fn chinese_particles_and_pronouns_say_nothing() {
        assert!(only_cjk_function("的") && only_cjk_function("一个") && only_cjk_function("他们"));
        assert!(!only_cjk_function("野马队") && !only_cjk_function("二十五分钟") && !only_cjk_function("the") && !only_cjk_function(""));
    }

    #[test]
    fn a_bare_date_answers_only_a_question_about_when() {
        assert!(only_a_date("1975") && only_a_date("In November") && only_a_date("on 3 May 2016"));
        assert!(!only_a_date("1975 in order to connect two PDP-11 minicomputers") && !only_a_date("64.00 GBP") && !only_a_date("24"));
        assert!(!asks_for_date("What did DECnet originally do?") && !asks_for_date("Why did Harvard end its early admission program?"));
        assert!(asks_for_date("In what era was the castle built?") && asks_for_date("When did it open?"));
    }

    #[test]
    fn a_question_about_how_long_wants_a_length_of_time_or_road() {
        assert_eq!(answer_kind("How long did the checkout outage last?"), AnswerKind::Length);
        assert_eq!(answer_kind("桂花糕要蒸多久？"), AnswerKind::Length);
        assert!(AnswerKind::Length.admits("42 minutes (14:03 to 14:45 UTC)."));
        assert!(AnswerKind::Length.admits("three weeks; do not book flights"));
        assert!(AnswerKind::Length.admits("二十五分钟，放凉后切块。"));
        assert!(AnswerKind::Length.admits("12 km from the coast"));
        assert!(!AnswerKind::Length.admits("1,900 failed checkouts."));
        assert!(!AnswerKind::Length.admits("5 million people"));
        assert!(!AnswerKind::Length.admits("three cloves of garlic"));
        assert!(AnswerKind::Length.found_in("Duration: 42 minutes.") && !AnswerKind::Length.found_in("Impact: about 1,900 failed checkouts."));
        // A question about when also starts on a weekday.
        assert!(AnswerKind::Figure.admits("Monday between 9 and 12"));
        assert!(asks_for_figure("What is the minimum password length?"));
    }

    #[test]
    fn a_question_about_the_year_wants_a_year() {
        assert_eq!(answer_kind("In what year did Hutton publish his theory?"), AnswerKind::Year);
        assert_eq!(answer_kind("Which year was the bridge opened?"), AnswerKind::Year);
        assert_eq!(answer_kind("房子是哪一年买的？"), AnswerKind::Year);
        assert_eq!(answer_kind("When was the bridge opened?"), AnswerKind::Date);
        let book = "Hutton published a two-volume version of his theories in 1795, 12 years later.";
        assert!(AnswerKind::Year.admits("1795, 12 years later") && AnswerKind::Year.admits("2019年买的"));
        assert!(!AnswerKind::Year.admits("two-volume") && !AnswerKind::Year.admits("12 years") && !AnswerKind::Year.admits("17950"));
        assert!(!AnswerKind::Year.admits("1,450") && !AnswerKind::Year.admits("312.40"));
        assert!(AnswerKind::Year.found_in(book) && !AnswerKind::Year.found_in("He paid 312.40 GBP for 12 months."));
    }

    #[test]
    fn refusals_are_recognised() {
        assert!(says_not_found("The sources do not mention the price."));
        assert!(!says_not_found("The mechanic charged $240."));
    }
}
