//! `engram eval`: runs a BEIR-format relevance set through the real pipeline in a throwaway
//! store and scores it the way assets/eval/score.py does (nDCG@10 with linear gain, R@10,
//! R@100, MRR@10, averaged over judged queries).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::crypto::DataKey;
use crate::query::{Mode, SearchRequest};
use crate::store::{ItemMeta, Kind, NewItem};
use crate::{Engram, Error, Result};

pub mod personal;

#[derive(Deserialize)]
struct CorpusDoc {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Scores {
    #[serde(rename = "nDCG@10")]
    pub ndcg10: f64,
    #[serde(rename = "R@10")]
    pub r10: f64,
    #[serde(rename = "R@100")]
    pub r100: f64,
    #[serde(rename = "MRR@10")]
    pub mrr10: f64,
    pub queries: usize,
}

pub struct EvalRun {
    pub docs: usize,
    pub queries: usize,
    /// `(query id, doc id, score)`, best first within each query.
    pub run: Vec<(String, String, f32)>,
    pub scores: Option<Scores>,
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let f = std::fs::File::open(path).map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| Error::Usage(format!("{} line {}: {e}", path.display(), n + 1)))?,
        );
    }
    Ok(out)
}

/// Graded judgments: query → doc → gain.
pub fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, i64>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
    let mut q: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split('\t').collect();
        if (n == 0 && parts[0] == "query-id") || parts.len() < 3 {
            continue;
        }
        if let Ok(g) = parts[2].trim().parse() {
            q.entry(parts[0].to_string()).or_default().insert(parts[1].to_string(), g);
        }
    }
    Ok(q)
}

/// Ingests `dir`'s corpus into a temporary store and runs every query. With `captions`, each
/// document is first captioned by the language model and its caption indexed with its title,
/// to measure whether captions help retrieval.
pub fn run(dir: &Path, limit: usize, mode: Mode, config: Config, captions: bool, mut progress: impl FnMut(&str)) -> Result<EvalRun> {
    let queries: Vec<QueryLine> = read_jsonl(&dir.join("queries.jsonl"))?;
    let captioned = if captions { Some(caption_corpus(dir, config.clone(), &mut progress)?) } else { None };
    let corpus = load(dir, config, mode != Mode::Keyword, captioned.as_ref(), &mut progress)?;
    let engram = &corpus.engram;
    progress(&format!("running {} queries", queries.len()));
    let mut run = Vec::new();
    for q in &queries {
        let mut req = SearchRequest::new(q.text.clone(), limit);
        req.mode = mode;
        req.snippets = false;
        let found = engram.search(&req)?;
        if let Some(what) = found.damaged.first() {
            return Err(Error::Tamper(format!("{what} failed its integrity check")));
        }
        for r in found.results {
            run.push((q.id.clone(), r.source, r.score));
        }
    }
    let qrels_path = dir.join("qrels.tsv");
    let scores = if qrels_path.exists() { Some(score(&read_qrels(&qrels_path)?, &run)) } else { None };
    Ok(EvalRun { docs: corpus.docs, queries: queries.len(), run, scores })
}

/// A BEIR corpus loaded into a temporary store; each document's `source` is its corpus id.
pub struct Corpus {
    pub engram: Engram,
    pub docs: usize,
    _dir: tempfile::TempDir,
}

/// Ingests `dir`/corpus.jsonl into a new temporary store, embedding it when `embed` is set.
pub fn load_corpus(dir: &Path, config: Config, embed: bool, progress: &mut dyn FnMut(&str)) -> Result<Corpus> {
    load(dir, config, embed, None, progress)
}

/// Each document's caption, by corpus id.
fn caption_corpus(dir: &Path, config: Config, progress: &mut dyn FnMut(&str)) -> Result<HashMap<String, String>> {
    let mut corpus = load(dir, config, false, None, progress)?;
    progress("captioning the corpus");
    let started = std::time::Instant::now();
    let done = corpus.engram.caption_pending(usize::MAX, &|| false, &|_| {}, &mut |done, total| {
        if done % 20 == 0 || done == total {
            progress(&format!("captioned {done} of {total}"));
        }
    })?;
    progress(&format!("{done} captions in {:.1} s", started.elapsed().as_secs_f64()));
    let items = corpus.engram.store().all_items()?;
    let captions = corpus.engram.captions(&items.iter().map(|i| i.content_id).collect::<Vec<_>>())?;
    Ok(items.into_iter().filter_map(|i| captions.get(&i.content_id).map(|c| (i.source, c.clone()))).collect())
}

fn load(
    dir: &Path,
    config: Config,
    embed: bool,
    captions: Option<&HashMap<String, String>>,
    progress: &mut dyn FnMut(&str),
) -> Result<Corpus> {
    let corpus: Vec<CorpusDoc> = read_jsonl(&dir.join("corpus.jsonl"))?;
    let tmp = tempfile::tempdir().map_err(|e| Error::Other(format!("cannot create a temporary store: {e}")))?;
    let key = DataKey::generate()?;
    let mut engram = Engram::open_with_key(tmp.path(), &key, config)?;
    progress(&format!("indexing {} documents", corpus.len()));
    let now = chrono::Utc::now().timestamp();
    for batch in corpus.chunks(1000) {
        let items: Vec<NewItem> = batch
            .iter()
            .filter(|d| !d.text.trim().is_empty() || !d.title.trim().is_empty())
            .map(|d| {
                let text = if d.text.trim().is_empty() { d.title.clone() } else { d.text.clone() };
                let title = match captions.and_then(|c| c.get(&d.id)) {
                    Some(c) => format!("{}\n{c}", d.title),
                    None => d.title.clone(),
                };
                NewItem {
                    kind: Kind::Doc,
                    source: d.id.clone().into(),
                    title: (!title.trim().is_empty()).then_some(title),
                    meta: ItemMeta::default(),
                    time: now,
                    mtime: now,
                    size: text.len() as i64,
                    chunks: engram.chunk_text(&text),
                    text,
                }
            })
            .collect();
        engram.add_items(&items)?;
    }
    if embed {
        progress("embedding the corpus");
        engram.embed_pending(&mut |_| {})?;
    }
    Ok(Corpus { engram, docs: corpus.len(), _dir: tmp })
}

pub fn write_run(path: &Path, run: &[(String, String, f32)]) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?,
    );
    for (q, d, s) in run {
        writeln!(f, "{q}\t{d}\t{s}").map_err(|e| Error::Other(e.to_string()))?;
    }
    f.flush().map_err(|e| Error::Other(e.to_string()))
}

pub fn score(qrels: &HashMap<String, HashMap<String, i64>>, run: &[(String, String, f32)]) -> Scores {
    let mut ranked: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut rows: Vec<(usize, &(String, String, f32))> = run.iter().enumerate().collect();
    rows.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .2.total_cmp(&a.1 .2)).then(a.0.cmp(&b.0)));
    for (_, (q, d, _)) in rows {
        if seen.insert((q, d)) {
            ranked.entry(q).or_default().push(d);
        }
    }
    let mut s = Scores::default();
    let judged: Vec<&String> = qrels.iter().filter(|(_, r)| r.values().any(|&g| g > 0)).map(|(q, _)| q).collect();
    for q in &judged {
        let rels = &qrels[*q];
        let docs = ranked.get(q.as_str()).cloned().unwrap_or_default();
        let gain = |d: &str| rels.get(d).copied().unwrap_or(0).max(0) as f64;
        let dcg: f64 = docs.iter().take(10).enumerate().map(|(i, d)| gain(d) / ((i + 2) as f64).log2()).sum();
        let mut ideal: Vec<f64> = rels.values().filter(|&&g| g > 0).map(|&g| g as f64).collect();
        ideal.sort_by(|a, b| b.total_cmp(a));
        let idcg: f64 = ideal.iter().take(10).enumerate().map(|(i, g)| g / ((i + 2) as f64).log2()).sum();
        s.ndcg10 += if idcg > 0.0 { dcg / idcg } else { 0.0 };
        let relevant: HashSet<&str> = rels.iter().filter(|(_, &g)| g > 0).map(|(d, _)| d.as_str()).collect();
        let hits_at = |k: usize| docs.iter().take(k).filter(|d| relevant.contains(**d)).count() as f64;
        s.r10 += hits_at(10) / relevant.len() as f64;
        s.r100 += hits_at(100) / relevant.len() as f64;
        s.mrr10 += docs.iter().take(10).position(|d| relevant.contains(*d)).map_or(0.0, |i| 1.0 / (i + 1) as f64);
    }
    let n = judged.len().max(1) as f64;
    s.ndcg10 /= n;
    s.r10 /= n;
    s.r100 /= n;
    s.mrr10 /= n;
    s.queries = judged.len();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computation() {
        let mut qrels = HashMap::new();
        qrels.insert("q".to_string(), HashMap::from([("a".to_string(), 1), ("b".to_string(), 1)]));
        let run = vec![("q".into(), "x".into(), 3.0), ("q".into(), "a".into(), 2.0), ("q".into(), "b".into(), 1.0)];
        let s = score(&qrels, &run);
        let dcg = 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((s.ndcg10 - dcg / idcg).abs() < 1e-9);
        assert_eq!(s.r10, 1.0);
        assert_eq!(s.mrr10, 0.5);
    }

    #[test]
    fn unanswered_query_scores_zero() {
        let mut qrels = HashMap::new();
        qrels.insert("q".to_string(), HashMap::from([("a".to_string(), 2)]));
        let s = score(&qrels, &[]);
        assert_eq!(s.ndcg10, 0.0);
        assert_eq!(s.queries, 1);
    }
}
