//! Fusing keyword and vector rankings so the result is never worse than the better input.
//!
//! Each side's scores are scaled to 0–1 (min–max over its candidates), then mixed as `(1 − β)·keyword + β·coverage·vector`. β is the configured
//! semantic weight times the share of the query the embedder can read, and each document's
//! vector score is scaled by the share of *it* the embedder can read. So an English-only model
//! has no say on a Chinese query or a Chinese note, where its vectors are noise, and full say on
//! English ones, where they find paraphrases that share no word with the query.

use std::collections::HashMap;

/// The least vector weight (β × document coverage) that lets a document in on meaning alone.
const MIN_SAY: f32 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub content_id: i64,
    /// The chunk to show.
    pub chunk_id: i64,
    pub score: f32,
    pub coverage: f32,
}

/// Keeps the best chunk of each content, in rank order. Input: `(content, chunk, score, coverage)`.
pub fn best_per_content(hits: impl Iterator<Item = (i64, i64, f32, f32)>) -> Vec<Candidate> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Candidate> = hits
        .filter(|h| seen.insert(h.0))
        .map(|(content_id, chunk_id, score, coverage)| Candidate { content_id, chunk_id, score, coverage })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// A keyword score below this share of the best one is a weak match.
const WEAK_KEYWORD: f32 = 0.1;

/// How far the vector weight may rise for a query none of whose words is rare.
const PARAPHRASE_WEIGHT: f32 = 0.8;
/// A word held by no more than this share of the chunks is rare: a name, a code, a term.
const RARE_SHARE: f64 = 0.005;
/// …and in a small store, a word in this many chunks or fewer.
const RARE_LEAST: f64 = 3.0;

/// The vector weight for a query: `weight` (the setting) when the store holds each of its
/// words, or it quotes a phrase; more, up to [`PARAPHRASE_WEIGHT`], as more of its words are
/// ones no memory holds, as a person's own words for a memory often are. A rare word among them
/// (a name, a code) keeps it on keywords as far as the rest allows. `doc_freqs` are the chunks
/// holding each of the query's words, of `chunks`. Measured on the personal set's paraphrases
/// and the public sets (BENCHMARKS.md): a weight that rose for common words too lifted the
/// paraphrases but cost Cranfield's technical questions 0.016 nDCG@10.
pub fn adapted_weight(weight: f32, doc_freqs: &[u64], chunks: u64, phrase: bool) -> f32 {
    if phrase || weight <= 0.0 || weight >= PARAPHRASE_WEIGHT {
        return weight;
    }
    let rare = (chunks as f64 * RARE_SHARE).max(RARE_LEAST);
    // How much the rarest word the store holds leans on keywords: fully for a word in one
    // chunk, by half at the rare line; a commoner word, or one no memory holds, not at all.
    let rarest = doc_freqs
        .iter()
        .filter(|&&df| df > 0 && df as f64 <= rare)
        .map(|&df| 1.0 - 0.5 * (df as f64).ln() / rare.ln())
        .fold(0.0f64, f64::max);
    // The share of its words the store holds: "关于牙医预约的邮件" over English mail holds one.
    let held = doc_freqs.iter().filter(|&&df| df > 0).count() as f64 / doc_freqs.len().max(1) as f64;
    let lean = (rarest * held).max(held.powi(3));
    weight + (PARAPHRASE_WEIGHT - weight) * (1.0 - lean as f32)
}

/// Mixes the two rankings with vector weight `beta` (0 = keyword only). A document the keywords
/// did not find gets in only with a similarity of at least `min_similarity`.
pub fn fuse(keyword: &[Candidate], vector: &[Candidate], beta: f32, min_similarity: f32) -> Vec<Candidate> {
    let beta = beta.clamp(0.0, 1.0);
    let kscale = min_max(keyword);
    let vscale = min_max(vector);
    let top = keyword.iter().map(|c| c.score).fold(0.0, f32::max);
    // A keyword match far below the best (one character of a Chinese word, one common word of
    // many) is shown only if its meaning is close too.
    let mut weak: std::collections::HashSet<i64> =
        keyword.iter().filter(|c| c.score < WEAK_KEYWORD * top).map(|c| c.content_id).collect();
    let mut fused: HashMap<i64, Candidate> = HashMap::new();
    for c in keyword {
        fused.insert(c.content_id, Candidate { score: (1.0 - beta) * kscale(c.score), ..*c });
    }
    for c in vector {
        let v = vscale(c.score);
        let say = beta * c.coverage;
        if say >= MIN_SAY && c.score >= min_similarity {
            weak.remove(&c.content_id);
        }
        match fused.get_mut(&c.content_id) {
            // A tiny share even at beta 0 orders what the keywords could not tell apart.
            Some(f) => f.score += say * v + 1e-3 * v,
            // Found by meaning alone: only where the model can read both query and document.
            None if say >= MIN_SAY && c.score >= min_similarity => {
                fused.insert(c.content_id, Candidate { score: say * v, ..*c });
            }
            None => {}
        }
    }
    let mut out: Vec<Candidate> = fused.into_values().filter(|c| !weak.contains(&c.content_id)).collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.content_id.cmp(&b.content_id)));
    out
}

/// Maps a list's scores onto 0–1; a list whose scores are all equal maps to 1.
fn min_max(list: &[Candidate]) -> impl Fn(f32) -> f32 {
    let (lo, hi) = list.iter().fold((f32::MAX, f32::MIN), |(lo, hi), c| (lo.min(c.score), hi.max(c.score)));
    let span = hi - lo;
    move |s| if span > 1e-6 { (s - lo) / span } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(content_id: i64, score: f32, coverage: f32) -> Candidate {
        Candidate { content_id, chunk_id: content_id * 10, score, coverage }
    }

    fn ids(v: &[Candidate]) -> Vec<i64> {
        v.iter().map(|c| c.content_id).collect()
    }

    #[test]
    fn zero_weight_keeps_the_keyword_order() {
        let kw = [c(1, 9.0, 1.0), c(2, 5.0, 1.0), c(3, 1.0, 1.0)];
        let vec = [c(3, 0.9, 1.0), c(4, 0.8, 1.0), c(2, 0.1, 1.0)];
        assert_eq!(ids(&fuse(&kw, &vec, 0.0, 0.0))[..3], [1, 2, 3]);
    }

    #[test]
    fn vector_side_lifts_a_paraphrase_with_no_shared_word() {
        let kw = [c(1, 3.0, 1.0)];
        let vec = [c(2, 0.8, 1.0), c(1, 0.3, 1.0), c(3, 0.2, 1.0)];
        let fused = fuse(&kw, &vec, 0.5, 0.0);
        assert_eq!(ids(&fused)[..2], [1, 2]);
        assert!(fused[1].score > fused[2].score);
    }

    #[test]
    fn uncovered_documents_get_no_vector_say() {
        let kw = [c(1, 3.0, 1.0), c(2, 2.9, 1.0)];
        // Content 2's text is in a script the model cannot read: its high cosine is noise.
        let vec = [c(2, 0.9, 0.0), c(1, 0.1, 1.0)];
        assert_eq!(ids(&fuse(&kw, &vec, 0.5, 0.0))[0], 1);
    }

    #[test]
    fn no_meaning_only_hits_where_the_model_cannot_read() {
        let kw = [c(1, 3.0, 1.0)];
        let vec = [c(2, 0.9, 0.0), c(3, 0.8, 1.0)];
        assert_eq!(ids(&fuse(&kw, &vec, 0.0, 0.0)), vec![1]);
        assert_eq!(ids(&fuse(&kw, &vec, 0.5, 0.0)), vec![1, 3]);
        assert_eq!(ids(&fuse(&kw, &vec, 0.5, 0.85)), vec![1]);
    }

    #[test]
    fn a_query_in_words_no_memory_holds_leans_on_meaning() {
        // 10,000 chunks: a word in 3 of them is rare, one in 400 is common.
        assert_eq!(adapted_weight(0.5, &[3, 400], 10_000, false), 0.5);
        assert_eq!(adapted_weight(0.5, &[400, 900], 10_000, false), 0.5);
        assert!((adapted_weight(0.5, &[0, 0], 10_000, false) - PARAPHRASE_WEIGHT).abs() < 1e-6);
        // Half its words unknown: a rare word among the rest keeps it nearer the keywords.
        let rare = adapted_weight(0.5, &[1, 0], 10_000, false);
        let common = adapted_weight(0.5, &[400, 0], 10_000, false);
        assert!((rare - 0.65).abs() < 1e-6 && (common - 0.7625).abs() < 1e-6, "{rare} {common}");
        // One rare word among words no memory holds leans on keywords only as far as it goes.
        let partly = adapted_weight(0.5, &[1, 0, 0, 0], 10_000, false);
        assert!((partly - 0.725).abs() < 1e-6, "{partly}");
        // A quoted phrase is an exact match wanted.
        assert_eq!(adapted_weight(0.5, &[0, 0], 10_000, true), 0.5);
        // Keyword-only stays keyword-only.
        assert_eq!(adapted_weight(0.0, &[0], 10_000, false), 0.0);
        // In a small store a word in a few chunks is rare still.
        assert_eq!(adapted_weight(0.5, &[1, 40], 300, false), 0.5);
    }

    #[test]
    fn a_weak_keyword_match_is_shown_only_when_its_meaning_is_close() {
        // 2 holds one character of the query's Chinese word; 3 as little, but means the same.
        let kw = [c(1, 12.0, 1.0), c(2, 0.8, 1.0), c(3, 0.7, 1.0)];
        let vec = [c(1, 0.7, 1.0), c(3, 0.6, 1.0), c(2, 0.1, 1.0)];
        assert_eq!(ids(&fuse(&kw, &vec, 0.5, 0.25)), vec![1, 3]);
    }

    #[test]
    fn best_chunk_per_content() {
        let hits = vec![(1, 12, 7.0, 1.0), (2, 21, 6.0, 1.0), (1, 11, 5.0, 1.0)];
        let best = best_per_content(hits.into_iter());
        assert_eq!(best.iter().map(|c| (c.content_id, c.chunk_id)).collect::<Vec<_>>(), vec![(1, 12), (2, 21)]);
    }
}
