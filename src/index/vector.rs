//! Nearest chunks by cosine similarity, over the sealed vectors held in the store.
//!
//! Exact search: the vectors are opened into one contiguous matrix in memory and scanned with
//! dot products (vectors are unit length). At personal scale (10^4–10^5 chunks of 384 floats)
//! a scan costs milliseconds and never misses a neighbour; nothing is written to disk, so there
//! is no vector file to seal (hnsw_rs, which the design names, can only save its graph as plain
//! files: BENCHMARKS.md has the measurements behind this choice). Built from the store when a
//! semantic query first needs it, then brought up to date with [`VectorIndex::refresh`], which
//! opens only the vectors written since and drops the ones deleted, so it never holds a
//! forgotten or replaced chunk.

use std::collections::HashSet;

use crate::store::{Result, Store, StoredVector};

#[derive(Debug, Clone, Copy)]
pub struct VectorHit {
    pub chunk_id: i64,
    pub content_id: i64,
    pub score: f32,
    pub coverage: f32,
}

#[derive(Clone, Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<(i64, i64)>,
    coverage: Vec<f32>,
    matrix: Vec<f32>,
}

/// What a [`VectorIndex::refresh`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub added: usize,
    pub dropped: usize,
}

impl VectorIndex {
    pub fn load(store: &Store, model: &str) -> Result<VectorIndex> {
        Ok(VectorIndex::from_vectors(store.vectors(model)?))
    }

    /// Brings the index up to the store: drops vectors deleted there and opens the ones it
    /// lacks. Reads every chunk id that has a vector (from an index) but opens only new vectors.
    pub fn refresh(&mut self, store: &Store, model: &str) -> Result<Refreshed> {
        let current: HashSet<i64> = store.vector_ids(model)?.into_iter().collect();
        let keep: Vec<bool> = self.ids.iter().map(|(c, _)| current.contains(c)).collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            self.retain(&keep);
        }
        let held: HashSet<i64> = self.ids.iter().map(|(c, _)| *c).collect();
        let mut missing: Vec<i64> = current.iter().filter(|c| !held.contains(c)).copied().collect();
        missing.sort_unstable();
        let fresh = store.vectors_of(model, &missing)?;
        let added = fresh.len();
        if self.dim == 0 {
            *self = VectorIndex::from_vectors(fresh);
        } else {
            for v in fresh {
                self.push(v);
            }
        }
        Ok(Refreshed { added, dropped })
    }

    fn push(&mut self, v: StoredVector) {
        if v.vector.len() == self.dim {
            self.ids.push((v.chunk_id, v.content_id));
            self.coverage.push(v.coverage);
            self.matrix.extend_from_slice(&v.vector);
        }
    }

    fn retain(&mut self, keep: &[bool]) {
        let dim = self.dim;
        let mut row = 0;
        for i in (0..keep.len()).filter(|&i| keep[i]) {
            self.ids[row] = self.ids[i];
            self.coverage[row] = self.coverage[i];
            self.matrix.copy_within(i * dim..(i + 1) * dim, row * dim);
            row += 1;
        }
        self.ids.truncate(row);
        self.coverage.truncate(row);
        self.matrix.truncate(row * dim);
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
        for v in vectors {
            index.push(v);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i`'s script class: 1 for mostly Latin text, 0 for the rest.
    fn script(&self, i: usize) -> usize {
        usize::from(self.coverage[i] >= 0.5)
    }

    /// The `k` chunks most similar to `query`, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<VectorHit> {
        self.search_with_background(query, k).into_iter().map(|(hit, _)| hit).collect()
    }

    /// As [`VectorIndex::search`], with each hit's background: the mean similarity to the query
    /// of the chunks in the same script as the hit (mostly Latin or not, by stored coverage),
    /// which is what an unrelated chunk in that script scores, since nearly all are unrelated.
    pub fn search_with_background(&self, query: &[f32], k: usize) -> Vec<(VectorHit, f32)> {
        if self.dim == 0 || query.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(f32, usize)> =
            self.matrix.chunks_exact(self.dim).map(|row| dot(row, query)).enumerate().map(|(i, s)| (s, i)).collect();
        let mut sums = [(0f64, 0usize); 2];
        for &(s, i) in &scored {
            let class = &mut sums[self.script(i)];
            class.0 += s as f64;
            class.1 += 1;
        }
        let mean = |(sum, n): (f64, usize)| (n > 0).then(|| (sum / n as f64) as f32);
        let all = mean((sums[0].0 + sums[1].0, sums[0].1 + sums[1].1)).unwrap_or(0.0);
        let background = [mean(sums[0]).unwrap_or(all), mean(sums[1]).unwrap_or(all)];
        let k = k.min(scored.len());
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .map(|(score, i)| {
                let hit = VectorHit { chunk_id: self.ids[i].0, content_id: self.ids[i].1, score, coverage: self.coverage[i] };
                (hit, background[self.script(i)])
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
    fn refresh_follows_adds_and_deletes() {
        use std::sync::Arc;

        use crate::crypto::{DataKey, Sealer};
        use crate::store::{ItemMeta, Kind, NewItem, Span};
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("db"), Arc::new(Sealer::new(&DataKey::generate().unwrap()))).unwrap();
        let put = |s: &mut Store, source: &str, v: [f32; 2]| {
            let item = NewItem {
                kind: Kind::File,
                source: source.into(),
                title: None,
                meta: ItemMeta::default(),
                time: 0,
                mtime: 0,
                size: 5,
                text: source.into(),
                chunks: vec![Span { start: 0, end: source.len() }],
            };
            let (id, _) = s.write(|w| w.put(&item)).unwrap();
            let chunk = s.chunks_without_vector("m", 10).unwrap()[0].id;
            s.put_vectors("m", &[(chunk, v.to_vec(), 1.0)]).unwrap();
            (id, chunk)
        };
        let (a, _) = put(&mut s, "a", [1.0, 0.0]);
        let (_, chunk_b) = put(&mut s, "b", [0.0, 1.0]);
        let mut idx = VectorIndex::load(&s, "m").unwrap();
        assert_eq!(idx.refresh(&s, "m").unwrap(), Refreshed::default());
        let (c, chunk_c) = put(&mut s, "c", [0.6, 0.8]);
        assert_eq!(idx.refresh(&s, "m").unwrap(), Refreshed { added: 1, dropped: 0 });
        assert_eq!(idx.search(&[0.6, 0.8], 1)[0].chunk_id, chunk_c);
        s.write(|w| w.remove(a)).unwrap();
        assert_eq!(idx.refresh(&s, "m").unwrap(), Refreshed { added: 0, dropped: 1 });
        assert_eq!(idx.len(), 2);
        // A memory replaced by a newer one (as the daemon does while the user types): the
        // old vector goes, the new one comes, and the id is not the old one's.
        s.write(|w| w.remove(c)).unwrap();
        let (_, chunk_d) = put(&mut s, "d", [-1.0, 0.0]);
        idx.refresh(&s, "m").unwrap();
        assert_ne!(chunk_d, chunk_c);
        assert_eq!(idx.len(), 2);
        let best = idx.search(&[-1.0, 0.0], 1)[0];
        assert_eq!((best.chunk_id, best.score), (chunk_d, 1.0));
        assert!(idx.search(&[0.6, 0.8], 2).iter().all(|h| h.chunk_id != chunk_c));
        assert_eq!(idx.search(&[0.0, 1.0], 1)[0].chunk_id, chunk_b);
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.02).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
