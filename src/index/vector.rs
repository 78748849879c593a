//! Nearest chunks by cosine similarity, over the sealed vectors held in the store.
//!
//! A scan: the vectors are opened into one contiguous matrix of bytes in memory (see
//! [`VectorIndex`]) and scanned with integer dot products (vectors are unit length). At
//! personal scale (10^4–10^5 chunks) a scan costs milliseconds and, but for the rounding to
//! bytes, misses no neighbour; nothing is written to disk, so there
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

/// Vectors are held as bytes: each component rounded to one of 255 steps of the vector's largest
/// component (`scale`), a quarter of the memory of floats (a million 384-wide vectors: 390 MB,
/// not 1.5 GB) and as fast to scan; cosines move by about 0.002 (tests and BENCHMARKS.md).
#[derive(Clone, Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<(i64, i64)>,
    coverage: Vec<f32>,
    matrix: Vec<i8>,
    scale: Vec<f32>,
}

/// `v` as bytes, and the factor that turns them back into its components.
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let step = max / 127.0;
    (v.iter().map(|x| (x / step).round().clamp(-127.0, 127.0) as i8).collect(), step)
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
            let (bytes, scale) = quantize(&v.vector);
            self.ids.push((v.chunk_id, v.content_id));
            self.coverage.push(v.coverage);
            self.matrix.extend_from_slice(&bytes);
            self.scale.push(scale);
        }
    }

    fn retain(&mut self, keep: &[bool]) {
        let dim = self.dim;
        let mut row = 0;
        for i in (0..keep.len()).filter(|&i| keep[i]) {
            self.ids[row] = self.ids[i];
            self.coverage[row] = self.coverage[i];
            self.scale[row] = self.scale[i];
            self.matrix.copy_within(i * dim..(i + 1) * dim, row * dim);
            row += 1;
        }
        self.ids.truncate(row);
        self.coverage.truncate(row);
        self.scale.truncate(row);
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
            scale: Vec::with_capacity(vectors.len()),
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
        let (query, step) = query_steps(query);
        let mut scored: Vec<(f32, usize)> = Vec::with_capacity(self.len());
        let mut sums = [(0f64, 0usize); 2];
        for (i, (row, scale)) in self.matrix.chunks_exact(self.dim).zip(&self.scale).enumerate() {
            let s = dot(row, &query) as f32 * scale * step;
            let class = &mut sums[self.script(i)];
            class.0 += s as f64;
            class.1 += 1;
            scored.push((s, i));
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

/// Steps the query is rounded to, each side of zero: fine enough to add no error worth the
/// name, and small enough that a dot product of up to 2048 components fits in an i32.
const QUERY_STEPS: f32 = 8191.0;

/// The query as integers, and the factor that turns them back into its components.
fn query_steps(q: &[f32]) -> (Vec<i16>, f32) {
    let max = q.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; q.len()], 0.0);
    }
    let step = max / QUERY_STEPS;
    (q.iter().map(|x| (x / step).round() as i16).collect(), step)
}

/// A row of bytes against the query's integers: integer sums, which the compiler vectorises.
fn dot(a: &[i8], b: &[i16]) -> i32 {
    a.iter().zip(b).map(|(x, y)| *x as i32 * *y as i32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(rows: &[[f32; 2]]) -> VectorIndex {
        VectorIndex::from_vectors(rows.iter().enumerate().map(|(i, r)| StoredVector { chunk_id: i as i64, content_id: i as i64 * 10, vector: r.to_vec(), coverage: 1.0 }).collect())
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
        assert_eq!(best.chunk_id, chunk_d);
        assert!((best.score - 1.0).abs() < 1e-3, "{}", best.score);
        assert!(idx.search(&[0.6, 0.8], 2).iter().all(|h| h.chunk_id != chunk_c));
        assert_eq!(idx.search(&[0.0, 1.0], 1)[0].chunk_id, chunk_b);
    }

    /// Unit vectors of `dim` from a small deterministic generator.
    fn units(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 10_000.0 - 1.0
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| next()).collect();
                let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
                v.into_iter().map(|a| a / norm).collect()
            })
            .collect()
    }

    #[test]
    fn bytes_keep_cosines_within_a_few_thousandths() {
        let v = units(50, 384, 7);
        for (a, b) in v.iter().zip(v.iter().skip(1)) {
            let exact: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let ((bytes, scale), (query, step)) = (quantize(a), query_steps(b));
            assert!((dot(&bytes, &query) as f32 * scale * step - exact).abs() < 0.005, "{exact}");
        }
        assert_eq!(quantize(&[0.0, 0.0]), (vec![0, 0], 0.0));
        // The largest dot product of 2048 components fits (debug builds check overflow).
        let (ones, _) = query_steps(&[1.0; 2048]);
        assert_eq!(dot(&[-127; 2048], &ones), -127 * 8191 * 2048);
    }

    #[test]
    fn the_top_ten_are_nearly_the_exact_top_ten() {
        // Random directions: the hard case, whose neighbours are all about equally far.
        let rows = units(5000, 384, 11);
        let idx = VectorIndex::from_vectors(rows.iter().enumerate().map(|(i, r)| StoredVector { chunk_id: i as i64, content_id: i as i64, vector: r.clone(), coverage: 1.0 }).collect());
        let mut found = 0;
        let queries = units(50, 384, 13);
        for q in &queries {
            let mut exact: Vec<(f32, i64)> = rows.iter().enumerate().map(|(i, r)| (r.iter().zip(q).map(|(a, b)| a * b).sum(), i as i64)).collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let truth: HashSet<i64> = exact[..10].iter().map(|e| e.1).collect();
            found += idx.search(q, 10).iter().filter(|h| truth.contains(&h.chunk_id)).count();
        }
        let recall = found as f32 / (10 * queries.len()) as f32;
        assert!(recall >= 0.97, "recall@10 {recall}");
    }
}
