//! The personal set: questions and searches a person asks of their own memories (notes, mails,
//! receipts, chats, screens) with gold answers and targets. Unlike the BEIR sets it is scored
//! on files, ingested the way `engram add` reads them, and it scores answers as a user sees
//! them: the right short answer, the right memory cited, "not found" when the memories do not
//! hold the answer, and no short answer that its own quotation contradicts.
//!
//! A set is a folder with `set.json` (`{"corpus": "path to the files, relative to the folder"}`),
//! `questions.jsonl` and `searches.jsonl`; each line has a `split` ("dev" or "held"): the held
//! part is scored only at the end of a change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::read_jsonl;
use crate::answer::ground::answer_tokens;
use crate::answer::Method;
use crate::config::Config;
use crate::crypto::DataKey;
use crate::query::{Mode, SearchRequest};
use crate::service::AskRequest;
use crate::{Engram, Error, Result};

/// How many results a search target must be among.
pub const TOP: usize = 3;
/// Most words a short answer has beyond its gold answer's.
const SHORT_SLACK: usize = 6;

#[derive(Deserialize)]
struct SetFile {
    corpus: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub id: String,
    pub split: String,
    pub lang: String,
    pub question: String,
    /// Any of these, as the memory writes it; empty when the memories do not hold the answer.
    pub answers: Vec<String>,
    pub kind: String,
    /// The file (relative to the corpus) that holds the answer.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Search {
    pub id: String,
    pub split: String,
    pub lang: String,
    pub query: String,
    pub targets: Vec<String>,
}

/// Which part of a set to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Dev,
    Held,
    All,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "dev" => Some(Split::Dev),
            "held" => Some(Split::Held),
            "all" => Some(Split::All),
            _ => None,
        }
    }

    fn takes(self, split: &str) -> bool {
        match self {
            Split::All => true,
            Split::Dev => split == "dev",
            Split::Held => split == "held",
        }
    }
}

/// How one answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A short answer holding a gold answer.
    Right,
    /// The answer is the quotation, which holds a gold answer.
    Quoted,
    /// A short answer without a gold answer, where its quotation holds one.
    Contradicted,
    /// A short answer or quotation without a gold answer.
    Wrong,
    /// "Not found" for a question the memories answer.
    Missed,
    /// "Not found" for a question they do not.
    Abstained,
    /// An answer to a question the memories do not answer.
    Invented,
}

/// Whether `text` holds `gold`, compared as SQuAD compares answers (case, punctuation and
/// articles aside): every gold token, in order, next to each other.
pub fn holds(text: &str, gold: &str) -> bool {
    let t = answer_tokens(text);
    let g = answer_tokens(gold);
    !g.is_empty() && t.windows(g.len()).any(|w| w == g.as_slice())
}

/// How an answer (`text`, whether `found`, whether it is the quotation, and the quotation)
/// scores against the gold answers.
pub fn verdict(answers: &[String], found: bool, quoted: bool, text: &str, quote: Option<&str>) -> Verdict {
    if answers.is_empty() {
        return if found { Verdict::Invented } else { Verdict::Abstained };
    }
    if !found {
        return Verdict::Missed;
    }
    let gold = |t: &str| answers.iter().any(|a| holds(t, a));
    let shortest = answers.iter().map(|a| answer_tokens(a).len()).min().unwrap_or(0);
    let short = !quoted && answer_tokens(text).len() <= shortest + SHORT_SLACK;
    match (gold(text), short) {
        (true, true) => Verdict::Right,
        (true, false) => Verdict::Quoted,
        (false, true) if quote.is_some_and(gold) => Verdict::Contradicted,
        _ => Verdict::Wrong,
    }
}

#[derive(Debug, Serialize)]
pub struct AnswerRow {
    pub id: String,
    pub lang: String,
    pub question: String,
    pub verdict: Verdict,
    /// Whether the first cited memory is the one that holds the answer (answerable questions).
    pub cited_right: Option<bool>,
    pub answer: String,
    pub quote: Option<String>,
    pub cited: Vec<String>,
    pub millis: u64,
    /// What decided whether the answer was found.
    pub words: f32,
    pub meaning: f32,
    pub unseen: f32,
    pub typed: bool,
}

#[derive(Debug, Serialize)]
pub struct SearchRow {
    pub id: String,
    pub lang: String,
    pub mode: &'static str,
    /// 1-based rank of the first target among the results, if found in the first ten.
    pub rank: Option<usize>,
    pub top: Vec<String>,
}

/// Shares (0–1) over one group of rows.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct AnswerScores {
    pub answerable: usize,
    /// Right short answers over answerable questions.
    pub right: f64,
    /// The answer is its quotation and holds the gold answer.
    pub quoted: f64,
    /// The first cited memory is the right one, over answerable questions answered.
    pub cited_right: f64,
    /// Short answers that the quotation beside them contradicts (a count).
    pub contradicted: usize,
    pub wrong: usize,
    pub missed: usize,
    pub unanswerable: usize,
    /// "Not found" over questions the memories cannot answer.
    pub abstained: f64,
}

impl AnswerScores {
    pub fn of<'a>(rows: impl Iterator<Item = &'a AnswerRow>) -> AnswerScores {
        let mut s = AnswerScores::default();
        let (mut cited, mut answered) = (0, 0);
        let (mut right, mut quoted, mut abstained) = (0, 0, 0);
        for r in rows {
            match r.verdict {
                Verdict::Abstained | Verdict::Invented => s.unanswerable += 1,
                _ => s.answerable += 1,
            }
            match r.verdict {
                Verdict::Right => right += 1,
                Verdict::Quoted => quoted += 1,
                Verdict::Contradicted => s.contradicted += 1,
                Verdict::Wrong => s.wrong += 1,
                Verdict::Missed => s.missed += 1,
                Verdict::Abstained => abstained += 1,
                Verdict::Invented => {}
            }
            if let Some(c) = r.cited_right {
                answered += 1;
                cited += c as usize;
            }
        }
        let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        s.right = share(right, s.answerable);
        s.quoted = share(quoted, s.answerable);
        s.cited_right = share(cited, answered);
        s.abstained = share(abstained, s.unanswerable);
        s
    }
}

/// Share of searches with a target in the top [`TOP`], and their mean reciprocal rank.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct SearchScores {
    pub queries: usize,
    pub top3: f64,
    pub mrr10: f64,
}

impl SearchScores {
    pub fn of<'a>(rows: impl Iterator<Item = &'a SearchRow>) -> SearchScores {
        let mut s = SearchScores::default();
        for r in rows {
            s.queries += 1;
            if r.rank.is_some_and(|k| k <= TOP) {
                s.top3 += 1.0;
            }
            s.mrr10 += r.rank.map_or(0.0, |k| 1.0 / k as f64);
        }
        if s.queries > 0 {
            s.top3 /= s.queries as f64;
            s.mrr10 /= s.queries as f64;
        }
        s
    }
}

pub struct PersonalRun {
    pub files: usize,
    pub answers: Vec<AnswerRow>,
    pub searches: Vec<SearchRow>,
}

impl PersonalRun {
    /// Scores by language ("en", "zh", "all").
    pub fn answer_scores(&self) -> BTreeMap<String, AnswerScores> {
        by_lang(&self.answers, |r| &r.lang, |it| AnswerScores::of(it))
    }

    /// Scores by mode, then language.
    pub fn search_scores(&self) -> BTreeMap<String, BTreeMap<String, SearchScores>> {
        let mut out = BTreeMap::new();
        for mode in ["keyword", "semantic", "hybrid"] {
            let rows: Vec<&SearchRow> = self.searches.iter().filter(|r| r.mode == mode).collect();
            if !rows.is_empty() {
                out.insert(mode.to_string(), by_lang(&rows, |r| &r.lang, |it| SearchScores::of(it.copied())));
            }
        }
        out
    }
}

fn by_lang<'a, R: 'a, S>(rows: &'a [R], lang: impl Fn(&R) -> &String, score: impl Fn(&mut dyn Iterator<Item = &'a R>) -> S) -> BTreeMap<String, S> {
    let mut langs: Vec<&String> = rows.iter().map(&lang).collect();
    langs.sort();
    langs.dedup();
    let mut out = BTreeMap::new();
    for l in langs {
        out.insert(l.clone(), score(&mut rows.iter().filter(|r| lang(r) == l)));
    }
    out.insert("all".to_string(), score(&mut rows.iter()));
    out
}

/// What to run.
pub struct Options {
    pub split: Split,
    pub questions: bool,
    pub searches: bool,
}

/// Whether `dir` holds a personal set.
pub fn is_personal(dir: &Path) -> bool {
    dir.join("set.json").is_file()
}

/// Ingests the set's files into a temporary store, runs its searches in every mode and asks its
/// questions.
pub fn run(dir: &Path, config: Config, options: &Options, progress: &mut dyn FnMut(&str)) -> Result<PersonalRun> {
    let set: SetFile = serde_json::from_str(
        &std::fs::read_to_string(dir.join("set.json")).map_err(|e| Error::Usage(format!("cannot read {}/set.json: {e}", dir.display())))?,
    )
    .map_err(|e| Error::Usage(format!("{}/set.json: {e}", dir.display())))?;
    let corpus = std::fs::canonicalize(dir.join(&set.corpus))
        .map_err(|e| Error::Usage(format!("the set's corpus {}: {e}", set.corpus.display())))?;
    let questions: Vec<Question> = read_jsonl(&dir.join("questions.jsonl"))?;
    let searches: Vec<Search> = read_jsonl(&dir.join("searches.jsonl"))?;
    let tmp = tempfile::tempdir().map_err(|e| Error::Other(format!("cannot create a temporary store: {e}")))?;
    let key = DataKey::generate()?;
    let mut engram = Engram::open_with_key(tmp.path(), &key, config)?;
    progress(&format!("adding {}", corpus.display()));
    let report = engram.add_paths(std::slice::from_ref(&corpus), &mut |_| {})?;
    let relative = |source: &str| Path::new(source).strip_prefix(&corpus).map_or(source.to_string(), |p| p.to_string_lossy().into_owned());

    let mut search_rows = Vec::new();
    if options.searches {
        let picked: Vec<&Search> = searches.iter().filter(|s| options.split.takes(&s.split)).collect();
        progress(&format!("running {} searches in three modes", picked.len()));
        for (mode, name) in [(Mode::Keyword, "keyword"), (Mode::Semantic, "semantic"), (Mode::Hybrid, "hybrid")] {
            for s in &picked {
                let mut req = SearchRequest::new(s.query.clone(), 10);
                req.mode = mode;
                req.snippets = false;
                let found = engram.search(&req)?;
                let top: Vec<String> = found.results.iter().map(|r| relative(&r.source)).collect();
                let rank = top.iter().position(|t| s.targets.contains(t)).map(|k| k + 1);
                search_rows.push(SearchRow { id: s.id.clone(), lang: s.lang.clone(), mode: name, rank, top });
            }
        }
    }

    let mut answer_rows = Vec::new();
    if options.questions {
        let picked: Vec<&Question> = questions.iter().filter(|q| options.split.takes(&q.split)).collect();
        progress(&format!("asking {} questions", picked.len()));
        for (k, q) in picked.iter().enumerate() {
            let mut req = AskRequest::new(q.question.clone(), &engram.config().ask);
            req.any_time = true;
            let started = std::time::Instant::now();
            let a = engram.ask(&req, &|_| {}, &mut |_| {})?;
            let millis = started.elapsed().as_millis() as u64;
            let evidence = a.evidence;
            let cited: Vec<String> =
                a.cited.iter().filter_map(|n| a.sources.iter().find(|s| s.n == *n)).map(|s| relative(&s.source)).collect();
            let quoted = a.method == Method::Extracted;
            let verdict = verdict(&q.answers, a.found, quoted, &a.text, a.extract.as_deref());
            let cited_right = match (&q.source, a.found) {
                (Some(source), true) => Some(cited.first() == Some(source)),
                _ => None,
            };
            answer_rows.push(AnswerRow {
                id: q.id.clone(),
                lang: q.lang.clone(),
                question: q.question.clone(),
                verdict,
                cited_right,
                answer: a.text,
                quote: a.extract,
                cited,
                millis,
                words: evidence.words,
                meaning: evidence.meaning,
                unseen: evidence.unseen,
                typed: evidence.typed,
            });
            if (k + 1) % 25 == 0 {
                progress(&format!("asked {} of {}", k + 1, picked.len()));
            }
        }
    }
    Ok(PersonalRun { files: report.added, answers: answer_rows, searches: search_rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gold(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_short_answer_with_the_gold_is_right_and_a_whole_sentence_only_quoted() {
        let g = gold(&["£148.22", "148.22"]);
        assert_eq!(verdict(&g, true, false, "148.22 GBP", None), Verdict::Right);
        assert_eq!(verdict(&g, true, true, "Amount due: 148.22 GBP, collected by direct debit on 18 March.", None), Verdict::Quoted);
        // A stray digit is wrong, and contradicted when the quotation had the amount.
        assert_eq!(verdict(&g, true, false, "148.2", Some("Amount due: 148.22 GBP")), Verdict::Contradicted);
        assert_eq!(verdict(&g, true, false, "2026", Some("Paid in 2026")), Verdict::Wrong);
        assert_eq!(verdict(&g, false, false, "Not found in your memories.", None), Verdict::Missed);
        // A long answer that holds the gold is not a short answer.
        let long = "The bill, which came by post on Tuesday after the meter reading, says 148.22 is due soon";
        assert_eq!(verdict(&g, true, false, long, None), Verdict::Quoted);
    }

    #[test]
    fn unanswerable_questions_want_not_found() {
        assert_eq!(verdict(&[], false, false, "Not found in your memories.", None), Verdict::Abstained);
        assert_eq!(verdict(&[], true, false, "It's their home", None), Verdict::Invented);
    }

    #[test]
    fn gold_is_matched_by_tokens_not_characters() {
        assert!(holds("The Casa do Bairro hotel", "casa do bairro"));
        assert!(!holds("14:305", "14:30") && holds("at 14:30.", "14:30"));
        assert!(holds("二十五分钟", "二十五分钟") && !holds("二十分钟", "二十五分钟"));
        assert!(!holds("anything", ""));
    }

    #[test]
    fn scores_count_shares_within_their_groups() {
        let row = |lang: &str, verdict, cited_right| AnswerRow {
            id: String::new(),
            lang: lang.into(),
            question: String::new(),
            verdict,
            cited_right,
            answer: String::new(),
            quote: None,
            cited: Vec::new(),
            millis: 0,
            words: 0.0,
            meaning: 0.0,
            unseen: 0.0,
            typed: false,
        };
        let rows = [
            row("en", Verdict::Right, Some(true)),
            row("en", Verdict::Wrong, Some(false)),
            row("en", Verdict::Abstained, None),
            row("zh", Verdict::Invented, None),
        ];
        let s = AnswerScores::of(rows.iter());
        assert_eq!((s.answerable, s.unanswerable, s.wrong), (2, 2, 1));
        assert_eq!((s.right, s.cited_right, s.abstained), (0.5, 0.5, 0.5));
        let run = PersonalRun { files: 0, answers: rows.into_iter().collect(), searches: Vec::new() };
        assert_eq!(run.answer_scores()["zh"].abstained, 0.0);
        assert_eq!(run.answer_scores()["en"].abstained, 1.0);
    }
}
