//! Retrieval: parse the query, ask the keyword and vector indexes, fuse, filter, and shape
//! results with snippets. Not for: writing anything (readers never write).

pub mod fuse;
pub mod parse;
pub mod snippet;
pub mod time;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::crypto::CryptoError;
use crate::embed::{EmbedError, Embedder};
use crate::index::vector::VectorIndex;
use crate::index::{IndexError, KeywordIndex, KeywordQuery};
use crate::store::{Kind, Store, StoreError};
pub use fuse::Candidate;
pub use snippet::Snippet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keyword and semantic, fused; the default.
    Hybrid,
    Keyword,
    Semantic,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "hybrid" => Some(Mode::Hybrid),
            "keyword" => Some(Mode::Keyword),
            "semantic" => Some(Mode::Semantic),
            _ => None,
        }
    }
}

/// What to look for and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    pub limit: usize,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub kind: Option<Kind>,
    pub mode: Mode,
    /// Only memories of an app whose name contains this (any case); files have no app.
    pub app: Option<String>,
    /// Build snippets (evaluation runs skip them).
    pub snippets: bool,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        SearchRequest { query: query.into(), limit, since: None, until: None, kind: None, mode: Mode::Hybrid, app: None, snippets: true }
    }

    fn admits(&self, kind: Kind, time: i64) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.since.is_none_or(|s| time >= s)
            && self.until.is_none_or(|u| time < u)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// The semantic side, when an embedder is available.
pub struct Semantic<'a> {
    pub embedder: &'a Embedder,
    pub vectors: &'a VectorIndex,
    /// How much a fully covered query trusts the vector side, 0 to 1.
    pub weight: f32,
    /// Cosine below which a chunk does not match by meaning.
    pub min_similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    pub id: i64,
    pub score: f32,
    pub kind: Kind,
    pub source: String,
    pub title: Option<String>,
    /// Unix seconds.
    pub time: i64,
    pub snippet: Snippet,
    pub chunk_id: i64,
    /// The line the language model chose to say what the memory is about, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Where in the document the hit is: "page 12", "sheet Budget", "slide 3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// What a search found. Results whose sealed rows failed their integrity check are left out
/// and named in `damaged`, so one damaged row does not hide the rest.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Matches {
    pub results: Vec<SearchResult>,
    pub damaged: Vec<String>,
}

/// The most results one search returns.
pub const MAX_RESULTS: usize = 10_000;

/// Snippet width in characters.
const SNIPPET_CHARS: usize = 200;

pub fn search(
    store: &Store,
    keyword: &KeywordIndex,
    semantic: Option<&Semantic>,
    req: &SearchRequest,
) -> Result<Matches, QueryError> {
    let query = parse::parse_query(&req.query);
    if req.limit == 0 || req.query.trim().is_empty() {
        return Ok(Matches::default());
    }
    // Whoever asked (a socket client, an API caller), a search returns at most this many.
    let limit = req.limit.min(MAX_RESULTS);
    let semantic = if req.mode == Mode::Keyword { None } else { semantic };
    let query_vector = match semantic {
        Some(s) => Some(s.embedder.embed_queries(&[req.query.as_str()])?.remove(0)),
        None => None,
    };
    // "-word" holds for meaning matches too: documents containing an excluded word are banned.
    let banned: HashSet<i64> = if query.excluded.is_empty() || semantic.is_none() {
        HashSet::new()
    } else {
        let q = KeywordQuery { runs: vec![query.excluded.clone()], ..Default::default() };
        keyword.search(&q, 100_000)?.into_iter().map(|h| h.content_id).collect()
    };
    // A person's own words for a memory lean on meaning, a name or a code on keywords.
    let weight = match semantic {
        Some(s) if req.mode == Mode::Hybrid => {
            let terms: Vec<String> = query.runs.iter().flatten().cloned().collect();
            fuse::adapted_weight(s.weight, &keyword.doc_freqs(&terms)?, keyword.num_chunks(), !query.phrases.is_empty())
        }
        _ => 0.0,
    };
    // Filters apply after ranking, so ask for more until enough pass or the indexes run out.
    let mut want = (limit * 5).max(50);
    let ranked = loop {
        let keyword_hits = if req.mode == Mode::Semantic || query.is_empty() {
            Vec::new()
        } else {
            fuse::best_per_content(keyword.search(&query, want)?.into_iter().map(|h| (h.content_id, h.chunk_id, h.score, 1.0)))
        };
        let vector_hits = match (semantic, &query_vector) {
            (Some(s), Some(v)) => {
                // Stored coverage is the chunk's share of Latin script, whatever the model reads.
                let hits = s.vectors.search_with_background(v, want).into_iter().map(|(h, background)| {
                    let score = s.embedder.calibrate(h.score, Some(background));
                    (h.content_id, h.chunk_id, score, s.embedder.coverage_of_share(h.coverage))
                });
                // Alone, a weak similarity is no match; beside keywords it still reranks.
                fuse::best_per_content(hits.filter(|h| req.mode == Mode::Hybrid || h.2 >= s.min_similarity))
            }
            _ => Vec::new(),
        };
        let vector_hits: Vec<Candidate> =
            vector_hits.into_iter().filter(|c| !banned.contains(&c.content_id)).collect();
        let exhausted = keyword_hits.len() < want / 2 && vector_hits.len() < want / 2;
        let candidates = match (req.mode, semantic) {
            (Mode::Keyword, _) | (Mode::Hybrid, None) => keyword_hits,
            (Mode::Semantic, _) => vector_hits,
            (Mode::Hybrid, Some(s)) => {
                let query_coverage = s.embedder.coverage(&req.query);
                fuse::fuse(&keyword_hits, &vector_hits, weight * query_coverage, s.min_similarity)
            }
        };
        let by_content: HashMap<i64, &Candidate> = candidates.iter().map(|c| (c.content_id, c)).collect();
        let order: Vec<i64> = candidates.iter().map(|c| c.content_id).collect();
        let mut ranked: Vec<(f32, i64, i64, i64)> = Vec::new(); // score, time, item, chunk
        for (content, item, kind, time) in store.items_of_contents(&order)? {
            if req.admits(kind, time) && app_matches(store, req, item)? {
                let c = by_content[&content];
                ranked.push((c.score, time, item, c.chunk_id));
            }
        }
        if ranked.len() >= limit || exhausted || want > 1_000_000 {
            break ranked;
        }
        want *= 4;
    };
    let mut ranked = ranked;
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked.truncate(limit);
    let terms = parse::positive_terms(&query);
    let mut results = Vec::with_capacity(ranked.len());
    // Hits that share no word with the query, whose snippet is the sentence closest in meaning.
    let mut by_meaning: Vec<(usize, String)> = Vec::new();
    let mut damaged = Vec::new();
    for (score, time, item_id, chunk_id) in ranked {
        let item = match store.item(item_id) {
            Ok(item) => item,
            Err(StoreError::Crypto(CryptoError::Tamper(what))) => {
                damaged.push(what);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let chunk = match req.snippets.then(|| store.chunk(chunk_id)).transpose() {
            Ok(c) => c.flatten(),
            Err(StoreError::Crypto(CryptoError::Tamper(what))) => {
                damaged.push(what);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let caption = match req.snippets.then(|| store.captions_of(&[item.content_id])).transpose() {
            Ok(mut c) => c.as_mut().and_then(|c| c.remove(&item.content_id)),
            Err(StoreError::Crypto(CryptoError::Tamper(what))) => {
                damaged.push(what);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut location = None;
        let mut snippet = Snippet::default();
        {
            if let Some(c) = chunk {
                snippet = snippet::make_snippet(&c.text, &terms, SNIPPET_CHARS);
                // A chunk can span sheets or slides: the hit is where its first matched word is.
                let at = c.start + snippet.first_mark.unwrap_or(0);
                location = crate::extract::section_at(&item.meta.sections, at).map(str::to_string);
                if !snippet.has_marks() && semantic.is_some() {
                    by_meaning.push((results.len(), c.text));
                }
            }
        }
        results.push(SearchResult {
            id: item.id,
            score,
            kind: item.kind,
            source: item.source,
            title: item.title,
            time,
            snippet,
            chunk_id,
            caption,
            location,
        });
    }
    if let (Some(sem), Some(qv)) = (semantic, &query_vector) {
        for (i, snippet) in closest_sentences(&by_meaning, sem.embedder, qv)? {
            results[i].snippet = snippet;
        }
    }
    Ok(Matches { results, damaged })
}

/// Whether the item passes the request's app filter; only items with an app are opened for it.
fn app_matches(store: &Store, req: &SearchRequest, item: i64) -> Result<bool, QueryError> {
    let Some(want) = req.app.as_deref() else { return Ok(true) };
    Ok(store.item(item)?.meta.app_has(want))
}

/// Sentences per chunk considered for a meaning snippet.
const SNIPPET_SENTENCES: usize = 8;

/// For each `(result, chunk text)`, the sentence closest to the query, marked; all sentences
/// are embedded in one call so short ones share forward passes.
fn closest_sentences(chunks: &[(usize, String)], embedder: &Embedder, query: &[f32]) -> Result<Vec<(usize, Snippet)>, QueryError> {
    let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // chunk, start, end
    for (k, (_, text)) in chunks.iter().enumerate() {
        let sentences = snippet::sentences(text);
        if sentences.len() >= 2 {
            spans.extend(sentences.into_iter().take(SNIPPET_SENTENCES).map(|(s, e)| (k, s, e)));
        }
    }
    let texts: Vec<&str> = spans.iter().map(|&(k, s, e)| &chunks[k].1[s..e]).collect();
    let vectors = embedder.embed(&texts)?;
    let mut best: Vec<Option<(f32, usize, usize)>> = vec![None; chunks.len()];
    for (&(k, s, e), v) in spans.iter().zip(&vectors) {
        let sim: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
        if best[k].is_none_or(|(b, _, _)| sim > b) {
            best[k] = Some((sim, s, e));
        }
    }
    Ok(best
        .into_iter()
        .enumerate()
        .filter_map(|(k, b)| b.map(|(_, s, e)| (chunks[k].0, snippet::around(&chunks[k].1, s, e, SNIPPET_CHARS))))
        .collect())
}
