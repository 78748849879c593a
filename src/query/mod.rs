//! Retrieval: parse the query, ask the keyword and vector indexes, fuse, filter, and shape
//! results with snippets. Not for: writing anything (readers never write).

pub mod fuse;
pub mod parse;
pub mod snippet;
pub mod time;

use std::collections::HashMap;

use serde::Serialize;

use crate::embed::{EmbedError, Embedder};
use crate::index::vector::VectorIndex;
use crate::index::{IndexError, KeywordIndex};
use crate::store::{Kind, Store, StoreError};
pub use fuse::Candidate;
pub use snippet::Snippet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub limit: usize,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub kind: Option<Kind>,
    pub mode: Mode,
    /// Build snippets (evaluation runs skip them).
    pub snippets: bool,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        SearchRequest { query: query.into(), limit, since: None, until: None, kind: None, mode: Mode::Hybrid, snippets: true }
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
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub id: i64,
    pub score: f32,
    pub kind: Kind,
    pub source: String,
    pub title: Option<String>,
    /// Unix seconds.
    pub time: i64,
    #[serde(skip)]
    pub snippet: Snippet,
    pub chunk_id: i64,
}

/// Snippet width in characters.
const SNIPPET_CHARS: usize = 200;

pub fn search(
    store: &Store,
    keyword: &KeywordIndex,
    semantic: Option<&Semantic>,
    req: &SearchRequest,
) -> Result<Vec<SearchResult>, QueryError> {
    let query = parse::parse_query(&req.query);
    if req.limit == 0 || req.query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let semantic = if req.mode == Mode::Keyword { None } else { semantic };
    let query_vector = match semantic {
        Some(s) => Some(s.embedder.embed(&[req.query.as_str()])?.remove(0)),
        None => None,
    };
    // Filters apply after ranking, so ask for more until enough pass or the indexes run out.
    let mut want = (req.limit * 5).max(50);
    let ranked = loop {
        let keyword_hits = if req.mode == Mode::Semantic || query.is_empty() {
            Vec::new()
        } else {
            fuse::best_per_content(keyword.search(&query, want)?.into_iter().map(|h| (h.content_id, h.chunk_id, h.score, 1.0)))
        };
        let vector_hits = match (semantic, &query_vector) {
            (Some(s), Some(v)) => fuse::best_per_content(
                s.vectors.search(v, want).into_iter().map(|h| (h.content_id, h.chunk_id, h.score, h.coverage)),
            ),
            _ => Vec::new(),
        };
        let exhausted = keyword_hits.len() < want / 2 && vector_hits.len() < want / 2;
        let candidates = match (req.mode, semantic) {
            (Mode::Keyword, _) | (Mode::Hybrid, None) => keyword_hits,
            (Mode::Semantic, _) => vector_hits,
            (Mode::Hybrid, Some(s)) => {
                let query_coverage = s.embedder.coverage(&req.query);
                fuse::fuse(&keyword_hits, &vector_hits, s.weight * query_coverage)
            }
        };
        let by_content: HashMap<i64, &Candidate> = candidates.iter().map(|c| (c.content_id, c)).collect();
        let order: Vec<i64> = candidates.iter().map(|c| c.content_id).collect();
        let mut ranked: Vec<(f32, i64, i64, i64)> = Vec::new(); // score, time, item, chunk
        for (content, item, kind, time) in store.items_of_contents(&order)? {
            if req.admits(kind, time) {
                let c = by_content[&content];
                ranked.push((c.score, time, item, c.chunk_id));
            }
        }
        if ranked.len() >= req.limit || exhausted || want > 1_000_000 {
            break ranked;
        }
        want *= 4;
    };
    let mut ranked = ranked;
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked.truncate(req.limit);
    let terms = parse::positive_terms(&query);
    let mut results = Vec::with_capacity(ranked.len());
    for (score, time, item_id, chunk_id) in ranked {
        let item = store.item(item_id)?;
        let snippet = if req.snippets {
            match store.chunk(chunk_id)? {
                Some(c) => {
                    let s = snippet::make_snippet(&c.text, &terms, SNIPPET_CHARS);
                    match (s.has_marks(), semantic, &query_vector) {
                        (false, Some(sem), Some(qv)) => closest_sentence_snippet(&c.text, sem.embedder, qv)?.unwrap_or(s),
                        _ => s,
                    }
                }
                None => Snippet::default(),
            }
        } else {
            Snippet::default()
        };
        results.push(SearchResult {
            id: item.id,
            score,
            kind: item.kind,
            source: item.source,
            title: item.title,
            time,
            snippet,
            chunk_id,
        });
    }
    Ok(results)
}

/// For a hit that shares no word with the query: the sentence closest in meaning, marked.
fn closest_sentence_snippet(text: &str, embedder: &Embedder, query: &[f32]) -> Result<Option<Snippet>, QueryError> {
    let sentences = snippet::sentences(text);
    if sentences.len() < 2 {
        return Ok(None);
    }
    let sentences: Vec<(usize, usize)> = sentences.into_iter().take(24).collect();
    let texts: Vec<&str> = sentences.iter().map(|&(s, e)| &text[s..e]).collect();
    let vectors = embedder.embed(&texts)?;
    let best = vectors
        .iter()
        .map(|v| v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>())
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| sentences[i]);
    Ok(best.map(|(s, e)| snippet::around(text, s, e, SNIPPET_CHARS)))
}
