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

/// Mixes the two rankings with vector weight `beta` (0 = keyword only). A document the keywords
/// did not find gets in only with a similarity of at least `min_similarity`.
pub fn fuse(keyword: &[Candidate], vector: &[Candidate], beta: f32, min_similarity: f32) -> Vec<Candidate> {
    let beta = beta.clamp(0.0, 1.0);
    let kscale = min_max(keyword);
    let vscale = min_max(vector);
    let mut fused: HashMap<i64, Candidate> = HashMap::new();
    for c in keyword {
        fused.insert(c.content_id, Candidate { score: (1.0 - beta) * kscale(c.score), ..*c });
    }
    for c in vector {
        let v = vscale(c.score);
        let say = beta * c.coverage;
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
    let mut out: Vec<Candidate> = fused.into_values().collect();
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
    fn best_chunk_per_content() {
        let hits = vec![(1, 12, 7.0, 1.0), (2, 21, 6.0, 1.0), (1, 11, 5.0, 1.0)];
        let best = best_per_content(hits.into_iter());
        assert_eq!(best.iter().map(|c| (c.content_id, c.chunk_id)).collect::<Vec<_>>(), vec![(1, 12), (2, 21)]);
    }
}
