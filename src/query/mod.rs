//! Retrieval: parse the query, ask the index, apply filters, and shape results with snippets.
//! Not for: writing anything (readers never write).

pub mod parse;
pub mod snippet;
pub mod time;

use std::collections::HashMap;

use serde::Serialize;

use crate::index::{IndexError, KeywordIndex};
use crate::store::{Kind, Store};
pub use snippet::Snippet;

/// What to look for and where.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub limit: usize,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub kind: Option<Kind>,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>, limit: usize) -> Self {
        SearchRequest { query: query.into(), limit, since: None, until: None, kind: None }
    }

    fn admits(&self, kind: Kind, time: i64) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.since.is_none_or(|s| time >= s)
            && self.until.is_none_or(|u| time < u)
    }
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

pub fn search(store: &Store, index: &KeywordIndex, req: &SearchRequest) -> Result<Vec<SearchResult>, IndexError> {
    let query = parse::parse_query(&req.query);
    if query.is_empty() || req.limit == 0 {
        return Ok(Vec::new());
    }
    // Filters apply after ranking, so ask for more until enough pass or the index runs out.
    let mut want = (req.limit * 5).max(50);
    let ranked = loop {
        let hits = index.search(&query, want)?;
        let exhausted = hits.len() < want;
        let mut best: HashMap<i64, (f32, i64)> = HashMap::new();
        let mut order = Vec::new();
        for h in &hits {
            best.entry(h.content_id).or_insert_with(|| {
                order.push(h.content_id);
                (h.score, h.chunk_id)
            });
        }
        let mut ranked: Vec<(f32, i64, i64, i64)> = Vec::new(); // score, time, item, chunk
        for (content, item, kind, time) in store.items_of_contents(&order)? {
            if req.admits(kind, time) {
                let (score, chunk) = best[&content];
                ranked.push((score, time, item, chunk));
            }
        }
        if ranked.len() >= req.limit || exhausted {
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
        let snippet = match store.chunk(chunk_id)? {
            Some(c) => snippet::make_snippet(&c.text, &terms, SNIPPET_CHARS),
            None => Snippet::default(),
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
