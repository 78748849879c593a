//! Nearest chunks by cosine similarity, over the sealed vectors held in the store.
//!
//! Exact search: the vectors are opened into one contiguous matrix in memory and scanned with
//! dot products (vectors are unit length). At personal scale (10^4–10^5 chunks of 384 floats)
//! a scan costs milliseconds and never misses a neighbour; nothing is written to disk, so there
//! is no vector file to seal. Built from the store when a semantic query first needs it, so it
//! can never hold a forgotten or replaced chunk.

use crate::store::{Result, Store, StoredVector};

#[derive(Debug, Clone, Copy)]
pub struct VectorHit {
    pub chunk_id: i64,
    pub content_id: i64,
    pub score: f32,
    pub coverage: f32,
}

pub struct VectorIndex {
    dim: usize,
    ids: Vec<(i64, i64)>,
    coverage: Vec<f32>,
    matrix: Vec<f32>,
}

impl VectorIndex {
    pub fn load(store: &Store, model: &str) -> Result<VectorIndex> {
        Ok(VectorIndex::from_vectors(store.vectors(model)?))
    }

    /// Builds the index from vectors in hand; ones of another length than the first are left out.
    pub fn from_vectors(vectors: Vec<StoredVector>) -> VectorIndex {
        let dim = vectors.first().map_or(0, |v| v.vector.len());
        let mut index = VectorIndex {
            dim,
            ids: Vec::with_capacity(vectors.len()),
            coverage: Vec::with_capacity(vectors.len()),
            matrix: Vec::with_capacity(vectors.len() * dim),
        };
        for v in vectors.into_iter().filter(|v| v.vector.len() == dim) {
            index.ids.push((v.chunk_id, v.content_id));
            index.coverage.push(v.coverage);
            index.matrix.extend_from_slice(&v.vector);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `k` chunks most similar to `query`, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<VectorHit> {
        if self.dim == 0 || query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, usize)> =
            self.matrix.chunks_exact(self.dim).map(|row| dot(row, query)).enumerate().map(|(i, s)| (s, i)).collect();
        let k = k.min(scored.len());
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .map(|(score, i)| VectorHit {
                chunk_id: self.ids[i].0,
                content_id: self.ids[i].1,
                score,
                coverage: self.coverage[i],
            })
            .collect()
    }
}

/// Eight independent sums let the compiler vectorise without reassociating floats.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(rows: &[[f32; 2]]) -> VectorIndex {
        VectorIndex {
            dim: 2,
            ids: (0..rows.len() as i64).map(|i| (i, i * 10)).collect(),
            coverage: vec![1.0; rows.len()],
            matrix: rows.iter().flatten().copied().collect(),
        }
    }

    #[test]
    fn nearest_first() {
        let idx = index(&[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]);
        let hits = idx.search(&[0.0, 1.0], 2);
        assert_eq!(hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(hits[1].content_id, 20);
    }

    #[test]
    fn wrong_dimension_or_empty_gives_nothing() {
        assert!(index(&[[1.0, 0.0]]).search(&[1.0, 0.0, 0.0], 3).is_empty());
        assert!(index(&[]).search(&[1.0, 0.0], 3).is_empty());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.02).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
