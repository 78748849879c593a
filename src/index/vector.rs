//! Nearest chunks by cosine similarity, over the sealed vectors held in the store.
//!
//! Below [`GRAPH_FROM`] vectors, a scan: the vectors are opened into one contiguous matrix of
//! bytes in memory (see [`VectorIndex`]) and scanned with integer dot products (vectors are
//! unit length); it costs milliseconds and, but for the rounding to bytes, misses no neighbour.
//! From [`GRAPH_FROM`] on, an HNSW graph ([`super::graph`]) holds the byte vectors instead and
//! is searched approximately; it is saved sealed ([`VectorIndex::save`]) so a new process does
//! not build it again. Built from the store when a semantic query first needs it, then brought
//! up to date with [`VectorIndex::refresh`], which opens only the vectors written since and
//! drops (or, in a graph, skips) the ones deleted, so no search returns a forgotten chunk.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::graph::Graph;
use crate::crypto::pages::{PagedFile, PagedReader, SealedFileWriter};
use crate::crypto::Sealer;
use crate::store::{Result, Store, StoreError, StoredVector};

/// How many vectors a store holds before the scan gives way to a graph: a scan of 50k costs
/// about 7 ms here, a tenth of a hybrid query; a graph takes about a minute to build at this size.
pub const GRAPH_FROM: usize = 50_000;
/// Candidates a graph search weighs: recall@10 ≥ 0.97 against the scan (BENCHMARKS.md).
const EF_SEARCH: usize = 256;
/// Vectors a new process would open from the store, at most, beyond a saved index: a few
/// tenths of a second's work; a save of a million vectors writes 400 MB in about a second.
const SAVE_EVERY: usize = 20_000;
/// How many vectors of a graph are scanned for the background similarity.
const BACKGROUND_SAMPLE: usize = 2048;

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
    /// The rows' bytes, while there is no graph (which holds them then).
    matrix: Vec<i8>,
    scale: Vec<f32>,
    graph: Option<GraphRows>,
    /// Build a graph from this many vectors on.
    graph_from: usize,
    /// Vectors added since the index was last saved or read from its file; the whole index
    /// when that file holds a vector since deleted.
    unsaved: usize,
}

/// What goes with a graph: where each chunk's row is, which chunks in the graph are deleted
/// (it cannot drop a point), and a sample of rows to estimate the background similarity.
#[derive(Clone)]
struct GraphRows {
    graph: Arc<Graph>,
    row_of: HashMap<i64, usize>,
    gone: HashSet<i64>,
    sample: Vec<i8>,
    sample_rows: Vec<usize>,
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
        let mut index = VectorIndex::default();
        store.each_vector(model, &mut |v| index.push(v))?;
        Ok(index)
    }

    /// Loads the index saved in `dir` for `model` (a graph, else a scan's rows) if there is a
    /// sound one, else every vector from the store (a graph is built from `graph_from` vectors
    /// on); then catches up with the store.
    pub fn open(dir: &Path, sealer: &Sealer, store: &Store, model: &str, graph_from: usize) -> Result<VectorIndex> {
        let saved = VectorIndex::read_saved(dir, sealer, model).or_else(|| VectorIndex::read_saved_scan(dir, sealer, model));
        let mut index = match saved {
            Some(index) => index,
            None => {
                let mut index = VectorIndex::load(store, model)?.with_graph_from(graph_from);
                index.unsaved = index.ids.len();
                return Ok(index);
            }
        };
        index.graph_from = graph_from;
        index.catch_up(dir, store, model)?;
        Ok(index)
    }

    /// [`VectorIndex::refresh`], removing the saved index when a vector it holds was deleted
    /// (a memory forgotten, or replaced as the user typed).
    pub fn catch_up(&mut self, dir: &Path, store: &Store, model: &str) -> Result<Refreshed> {
        let refreshed = self.refresh(store, model)?;
        if refreshed.dropped > 0 {
            VectorIndex::forget_saved(dir)?;
            // A scan no longer holds what was deleted, so it can be saved again at once.
            self.unsaved = self.ids.len();
        }
        Ok(refreshed)
    }

    /// Removes every saved index: one holds a vector deleted from the store.
    pub fn forget_saved(dir: &Path) -> Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(e)),
            _ => Ok(()),
        }
    }

    /// Builds a graph from `n` vectors on instead of [`GRAPH_FROM`].
    pub fn with_graph_from(mut self, n: usize) -> VectorIndex {
        self.graph_from = n;
        self.grow_graph();
        self
    }

    pub fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    /// Vectors added since the index was saved or read from its file.
    pub fn unsaved(&self) -> usize {
        self.unsaved
    }

    fn graph_from(&self) -> usize {
        if self.graph_from == 0 {
            GRAPH_FROM
        } else {
            self.graph_from
        }
    }

    /// Turns the scan into a graph once there are enough vectors.
    fn grow_graph(&mut self) {
        if self.graph.is_some() || self.ids.len() < self.graph_from() || self.dim == 0 {
            return;
        }
        let rows: Vec<(&[i8], i64)> = self.matrix.chunks_exact(self.dim).zip(&self.ids).map(|(r, (c, _))| (r, *c)).collect();
        let graph = Graph::build(&rows);
        let sample = self.sample_of(|i| self.matrix[i * self.dim..(i + 1) * self.dim].to_vec());
        self.graph = Some(GraphRows {
            graph: Arc::new(graph),
            row_of: self.ids.iter().enumerate().map(|(i, (c, _))| (*c, i)).collect(),
            gone: HashSet::new(),
            sample: sample.0,
            sample_rows: sample.1,
        });
        self.unsaved = self.ids.len();
        self.matrix = Vec::new();
    }

    /// Every n-th row's bytes (up to [`BACKGROUND_SAMPLE`] rows) and their row numbers.
    fn sample_of(&self, row: impl Fn(usize) -> Vec<i8>) -> (Vec<i8>, Vec<usize>) {
        let step = self.ids.len().div_ceil(BACKGROUND_SAMPLE).max(1);
        let rows: Vec<usize> = (0..self.ids.len()).step_by(step).collect();
        (rows.iter().flat_map(|&i| row(i)).collect(), rows)
    }

    /// Brings the index up to the store: drops vectors deleted there and opens the ones it
    /// lacks. Reads every chunk id that has a vector (from an index) but opens only new vectors.
    pub fn refresh(&mut self, store: &Store, model: &str) -> Result<Refreshed> {
        let current: HashSet<i64> = store.vector_ids(model)?.into_iter().collect();
        let dropped = match &mut self.graph {
            Some(g) => {
                let gone: Vec<i64> = g.row_of.keys().filter(|c| !current.contains(c) && !g.gone.contains(c)).copied().collect();
                g.gone.extend(&gone);
                gone.len()
            }
            None => {
                let keep: Vec<bool> = self.ids.iter().map(|(c, _)| current.contains(c)).collect();
                let dropped = keep.iter().filter(|k| !**k).count();
                if dropped > 0 {
                    self.retain(&keep);
                }
                dropped
            }
        };
        let held: HashSet<i64> = self.ids.iter().map(|(c, _)| *c).collect();
        let mut missing: Vec<i64> = current.iter().filter(|c| !held.contains(c)).copied().collect();
        missing.sort_unstable();
        let fresh = store.vectors_of(model, &missing)?;
        let added = fresh.len();
        for v in fresh {
            self.push(v);
        }
        self.grow_graph();
        Ok(Refreshed { added, dropped })
    }

    /// Adds a vector; the first of an empty index sets its length, and others are left out.
    fn push(&mut self, v: StoredVector) {
        if self.ids.is_empty() {
            self.dim = v.vector.len();
        }
        if v.vector.len() == self.dim {
            let (bytes, scale) = quantize(&v.vector);
            match &mut self.graph {
                Some(g) => {
                    g.graph.insert(&bytes, v.chunk_id);
                    g.row_of.insert(v.chunk_id, self.ids.len());
                }
                None => self.matrix.extend_from_slice(&bytes),
            }
            self.ids.push((v.chunk_id, v.content_id));
            self.coverage.push(v.coverage);
            self.scale.push(scale);
            self.unsaved += 1;
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

    /// Builds a scan from vectors in hand (see [`VectorIndex::with_graph_from`] for a graph);
    /// ones of another length than the first are left out.
    pub fn from_vectors(vectors: Vec<StoredVector>) -> VectorIndex {
        let mut index = VectorIndex::default();
        for v in vectors {
            index.push(v);
        }
        index
    }

    /// How many vectors a search can return.
    pub fn len(&self) -> usize {
        self.ids.len() - self.graph.as_ref().map_or(0, |g| g.gone.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        if let Some(g) = &self.graph {
            return self.search_graph(g, query, k);
        }
        let (query, step) = query_steps(query);
        // Halves (or more parts) scanned side by side on a large store; each keeps its own best
        // k and sums, merged below.
        let rows = self.ids.len();
        let parts = rayon::current_num_threads().min(rows / SCAN_PART).max(1);
        let scan = |part: usize| self.scan(part * rows / parts..(part + 1) * rows / parts, &query, step, k);
        let scanned: Vec<Scanned> = if parts == 1 { vec![scan(0)] } else { (0..parts).into_par_iter().map(scan).collect() };
        let mut sums = [(0f64, 0usize); 2];
        let mut scored = Vec::with_capacity(parts * k);
        for part in scanned {
            for (total, part) in sums.iter_mut().zip(part.sums) {
                total.0 += part.0;
                total.1 += part.1;
            }
            scored.extend(part.best);
        }
        let background = backgrounds(sums);
        keep_best(&mut scored, k);
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

/// What a scan of some rows found: its best rows (score, row) and each script class's sum of
/// similarities and count.
struct Scanned {
    best: Vec<(f32, usize)>,
    sums: [(f64, usize); 2],
}

/// Rows a scan gives each thread at least: fewer are not worth handing over.
const SCAN_PART: usize = 32_768;

/// Each script class's mean similarity from its (sum, count); a class with no rows takes the
/// mean of all.
fn backgrounds(sums: [(f64, usize); 2]) -> [f32; 2] {
    let mean = |(sum, n): (f64, usize)| (n > 0).then(|| (sum / n as f64) as f32);
    let all = mean((sums[0].0 + sums[1].0, sums[0].1 + sums[1].1)).unwrap_or(0.0);
    [mean(sums[0]).unwrap_or(all), mean(sums[1]).unwrap_or(all)]
}

/// Keeps the `k` best of `scored` (in no order).
fn keep_best(scored: &mut Vec<(f32, usize)>, k: usize) {
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(k);
    }
}

impl VectorIndex {
    fn scan(&self, rows: std::ops::Range<usize>, query: &[i16], step: f32, k: usize) -> Scanned {
        let dot = dot_kernel();
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(2 * k);
        // Below the k-th best so far, a row cannot make the cut: most rows stop at this test.
        let mut bar = f32::NEG_INFINITY;
        let mut sums = [(0f64, 0usize); 2];
        for i in rows {
            let s = dot(&self.matrix[i * self.dim..(i + 1) * self.dim], query) as f32 * self.scale[i] * step;
            let class = &mut sums[self.script(i)];
            class.0 += s as f64;
            class.1 += 1;
            if s > bar {
                best.push((s, i));
                if best.len() == 2 * k {
                    keep_best(&mut best, k);
                    bar = best.iter().fold(f32::INFINITY, |m, b| m.min(b.0));
                }
            }
        }
        keep_best(&mut best, k);
        Scanned { best, sums }
    }

    fn search_graph(&self, g: &GraphRows, query: &[f32], k: usize) -> Vec<(VectorHit, f32)> {
        let (bytes, _) = quantize(query);
        let (steps, step) = query_steps(query);
        let mut sums = [(0f64, 0usize); 2];
        for (row, &i) in g.sample.chunks_exact(self.dim).zip(&g.sample_rows) {
            let class = &mut sums[self.script(i)];
            class.0 += (dot(row, &steps) as f32 * self.scale[i] * step) as f64;
            class.1 += 1;
        }
        let background = backgrounds(sums);
        g.graph
            .search(&bytes, k, EF_SEARCH, &g.gone)
            .into_iter()
            .filter_map(|(chunk, score)| {
                // A point another handle's refresh added to the shared graph, not yet a row here.
                let i = *g.row_of.get(&chunk)?;
                let hit = VectorHit { chunk_id: chunk, content_id: self.ids[i].1, score, coverage: self.coverage[i] };
                Some((hit, background[self.script(i)]))
            })
            .collect()
    }

    /// Whether [`VectorIndex::save`] has something to do: the index grew by a tenth since it
    /// was saved (or by [`SAVE_EVERY`] vectors, on a large store), and holds no deleted vector.
    pub fn worth_saving(&self) -> bool {
        let clean = self.graph.as_ref().is_none_or(|g| g.gone.is_empty());
        clean && self.unsaved > 0 && self.unsaved >= (self.ids.len() / 10).min(SAVE_EVERY)
    }

    /// Seals the index into `dir` for the next process, which then reads one file instead of
    /// opening every vector in the store (or building the graph again). Not while a graph holds
    /// deleted vectors: a forgotten chunk's vector must not outlive it in a file (removing
    /// memories removes the saved index; the next process builds it again from the store).
    pub fn save(&mut self, dir: &Path, sealer: &Sealer, model: &str) -> Result<()> {
        let Some(g) = &mut self.graph else { return self.save_scan(dir, sealer, model) };
        if !g.gone.is_empty() {
            return Ok(());
        }
        let path = saved_path(dir, model);
        let (graph, data) = g.graph.dump().map_err(io_error)?;
        let mut plain = Vec::with_capacity(16 + graph.len() + data.len() + self.ids.len() * 24);
        for part in [&graph, &data] {
            plain.extend_from_slice(&(part.len() as u64).to_le_bytes());
            plain.extend_from_slice(part);
        }
        for (i, (chunk, content)) in self.ids.iter().enumerate() {
            plain.extend_from_slice(&chunk.to_le_bytes());
            plain.extend_from_slice(&content.to_le_bytes());
            plain.extend_from_slice(&self.coverage[i].to_le_bytes());
            plain.extend_from_slice(&self.scale[i].to_le_bytes());
        }
        let sealed = sealer.seal_file(&saved_name(model), &plain)?;
        crate::config::create_private_dir(dir).map_err(|e| io_error(std::io::Error::other(e.to_string())))?;
        crate::crypto::vault::write_atomically(&path, &sealed).map_err(io_error)?;
        // The scan's rows it grew from are in the graph now.
        match std::fs::remove_file(scan_path(dir, model)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(e)),
            _ => {}
        }
        self.unsaved = 0;
        Ok(())
    }

    /// The scan's rows, sealed by the page as they are written: `dim`, the row count, each
    /// row's ids, coverage and scale, then the matrix.
    fn save_scan(&mut self, dir: &Path, sealer: &Sealer, model: &str) -> Result<()> {
        crate::config::create_private_dir(dir).map_err(|e| io_error(std::io::Error::other(e.to_string())))?;
        let mut out = SealedFileWriter::create(sealer, &scan_name(model), &scan_path(dir, model)).map_err(io_error)?;
        let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(io_error);
        write(&(self.dim as u64).to_le_bytes())?;
        write(&(self.ids.len() as u64).to_le_bytes())?;
        for (i, (chunk, content)) in self.ids.iter().enumerate() {
            write(&chunk.to_le_bytes())?;
            write(&content.to_le_bytes())?;
            write(&self.coverage[i].to_le_bytes())?;
            write(&self.scale[i].to_le_bytes())?;
        }
        write(as_bytes(&self.matrix))?;
        out.finish().map_err(io_error)?;
        self.unsaved = 0;
        Ok(())
    }

    /// The scan [`VectorIndex::save_scan`] left, if there is one that opens and reads whole.
    fn read_saved_scan(dir: &Path, sealer: &Sealer, model: &str) -> Option<VectorIndex> {
        let file = PagedFile::open(std::fs::File::open(scan_path(dir, model)).ok()?, &scan_name(model)).ok()?;
        let len = file.len();
        let mut input = PagedReader::new(file, sealer);
        let mut word = [0u8; 8];
        let mut u64_of = |input: &mut PagedReader| -> Option<u64> {
            input.read_exact(&mut word).ok()?;
            Some(u64::from_le_bytes(word))
        };
        let (dim, n) = (u64_of(&mut input)?, u64_of(&mut input)?);
        // Sizes are checked against the file before anything is allocated for them.
        if dim == 0 || n.checked_mul(24 + dim)?.checked_add(16)? != len {
            return None;
        }
        let (dim, n) = (dim as usize, n as usize);
        let mut rows = vec![0u8; n * 24];
        input.read_exact(&mut rows).ok()?;
        let mut matrix = vec![0u8; n * dim];
        input.read_exact(&mut matrix).ok()?;
        let mut index = VectorIndex { dim, ..VectorIndex::default() };
        for row in rows.chunks_exact(24) {
            let i64_at = |at: usize| i64::from_le_bytes(row[at..at + 8].try_into().expect("8 bytes"));
            let f32_at = |at: usize| f32::from_le_bytes(row[at..at + 4].try_into().expect("4 bytes"));
            index.ids.push((i64_at(0), i64_at(8)));
            index.coverage.push(f32_at(16));
            index.scale.push(f32_at(20));
        }
        index.matrix = matrix.into_iter().map(|b| b as i8).collect();
        Some(index)
    }

    /// The graph [`VectorIndex::save`] left, if there is one that opens and reads whole.
    fn read_saved(dir: &Path, sealer: &Sealer, model: &str) -> Option<VectorIndex> {
        let sealed = std::fs::read(saved_path(dir, model)).ok()?;
        let plain = sealer.open_file(&saved_name(model), &sealed).ok()?;
        let mut rest = plain.as_slice();
        let mut part = || -> Option<&[u8]> {
            let len = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?) as usize;
            let (p, r) = rest.get(8..)?.split_at_checked(len)?;
            rest = r;
            Some(p)
        };
        let (graph, data) = (part()?, part()?);
        let graph = Graph::load(graph, data).ok()?;
        let mut index = VectorIndex::default();
        let mut bytes: HashMap<i64, Vec<i8>> = graph.points().collect();
        let mut row_of = HashMap::new();
        for row in rest.chunks_exact(24) {
            let chunk = i64::from_le_bytes(row[0..8].try_into().ok()?);
            row_of.insert(chunk, index.ids.len());
            index.ids.push((chunk, i64::from_le_bytes(row[8..16].try_into().ok()?)));
            index.coverage.push(f32::from_le_bytes(row[16..20].try_into().ok()?));
            index.scale.push(f32::from_le_bytes(row[20..24].try_into().ok()?));
        }
        index.dim = bytes.values().next()?.len();
        let sample = index.sample_of(|i| bytes.get(&index.ids[i].0).cloned().unwrap_or_else(|| vec![0; index.dim]));
        // Points without a row were deleted before the save.
        let gone: HashSet<i64> = bytes.keys().filter(|c| !row_of.contains_key(c)).copied().collect();
        bytes.clear();
        index.graph = Some(GraphRows { graph: Arc::new(graph), row_of, gone, sample: sample.0, sample_rows: sample.1 });
        Some(index)
    }
}

fn saved_name(model: &str) -> String {
    let safe: String = model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{safe}.graph")
}

fn saved_path(dir: &Path, model: &str) -> std::path::PathBuf {
    dir.join(format!("{}.sealed", saved_name(model)))
}

fn scan_name(model: &str) -> String {
    saved_name(model).replace(".graph", ".scan")
}

fn scan_path(dir: &Path, model: &str) -> std::path::PathBuf {
    dir.join(format!("{}.sealed", scan_name(model)))
}

/// The matrix's bytes as they are in memory.
fn as_bytes(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid in both.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::SavedVectors(e)
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

/// The fastest [`dot`] this CPU runs: AVX2 where there is one (sixteen products a step).
fn dot_kernel() -> fn(&[i8], &[i16]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return |a, b| unsafe { dot_avx2(a, b) };
    }
    dot
}

/// [`dot`] with AVX2: sixteen bytes widened to 16-bit lanes, multiplied by sixteen of the query
/// and summed in pairs into eight 32-bit lanes (`vpmaddwd`); a pair is at most 2 × 127 × 8191,
/// so no sum overflows below 2048 components.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[i8], b: &[i16]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 ≤ n, so both loads stay inside their slices (unaligned loads).
        let (x, y) = unsafe {
            (_mm_loadu_si128(a.as_ptr().add(i).cast()), _mm256_loadu_si256(b.as_ptr().add(i).cast()))
        };
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(x), y));
        i += 16;
    }
    let half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
    let half = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
    let half = _mm_add_epi32(half, _mm_shuffle_epi32::<0b10_11_00_01>(half));
    _mm_cvtsi128_si32(half) + dot(&a[i..n], &b[i..n])
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
    fn a_large_index_is_worth_saving_before_it_grows_by_a_tenth() {
        let row = |i: usize| StoredVector { chunk_id: i as i64, content_id: 0, vector: vec![1.0, 0.0], coverage: 1.0 };
        let mut idx = VectorIndex::from_vectors((0..400_000).map(row).collect());
        idx.unsaved = 0;
        (400_000..400_000 + SAVE_EVERY - 1).for_each(|i| idx.push(row(i)));
        assert!(!idx.worth_saving());
        idx.push(row(999_999));
        assert!(idx.worth_saving(), "{SAVE_EVERY} vectors to open is enough, though not a tenth");
        // A small one waits for its tenth.
        let mut small = VectorIndex::from_vectors((0..1000).map(row).collect());
        small.unsaved = 99;
        assert!(!small.worth_saving());
        small.push(row(5000));
        assert!(small.worth_saving());
    }

    #[test]
    fn the_fast_dot_product_is_the_plain_one() {
        let kernel = dot_kernel();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for len in [0, 1, 15, 16, 17, 384, 1000, 2048] {
            let a: Vec<i8> = (0..len).map(|_| (next() % 255 - 127) as i8).collect();
            let b: Vec<i16> = (0..len).map(|_| (next() % 16383 - 8191) as i16).collect();
            assert_eq!(kernel(&a, &b), dot(&a, &b), "length {len}");
            // The extremes: every product at its largest, one sign.
            let (a, b) = (vec![-127i8; len], vec![-8191i16; len]);
            assert_eq!(kernel(&a, &b), dot(&a, &b), "length {len}");
        }
    }

    #[test]
    fn a_scan_in_parts_finds_what_one_pass_finds() {
        let rows = units(3 * SCAN_PART + 17, 8, 21);
        let idx = VectorIndex::from_vectors(stored(&rows));
        let (q, step) = query_steps(&rows[5]);
        let whole = idx.scan(0..rows.len(), &q, step, 10);
        let hits = idx.search_with_background(&rows[5], 10);
        let mut best = whole.best.clone();
        best.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(hits.iter().map(|(h, _)| h.chunk_id).collect::<Vec<_>>(), best.iter().map(|(_, i)| idx.ids[*i].0).collect::<Vec<_>>());
        let mean = (whole.sums[1].0 / whole.sums[1].1 as f64) as f32;
        assert!((hits[0].1 - mean).abs() < 1e-5, "{} {mean}", hits[0].1);
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

    fn stored(rows: &[Vec<f32>]) -> Vec<StoredVector> {
        rows.iter().enumerate().map(|(i, r)| StoredVector { chunk_id: i as i64, content_id: i as i64, vector: r.clone(), coverage: 1.0 }).collect()
    }

    #[test]
    fn a_large_index_is_a_graph_that_finds_nearly_the_exact_top_ten() {
        // Vectors around 500 topics, as texts' embeddings are, and questions about them (random
        // directions, which have no neighbourhoods, are the graph's worst case: BENCHMARKS.md).
        let topics = units(500, 384, 17);
        let near = |seed: u64, n: usize| -> Vec<Vec<f32>> {
            units(n, 384, seed)
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let v: Vec<f32> = topics[(i * 7) % 500].iter().zip(n).map(|(t, n)| t + 0.8 * n).collect();
                    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
                    v.into_iter().map(|a| a / norm).collect()
                })
                .collect()
        };
        let rows = near(11, 5000);
        let scan = VectorIndex::from_vectors(stored(&rows));
        let idx = VectorIndex::from_vectors(stored(&rows)).with_graph_from(1000);
        assert!(idx.has_graph() && !scan.has_graph());
        let (mut found, queries) = (0, near(13, 100));
        for q in &queries {
            let truth: HashSet<i64> = scan.search(q, 10).iter().map(|h| h.chunk_id).collect();
            found += idx.search(q, 10).iter().filter(|h| truth.contains(&h.chunk_id)).count();
        }
        let recall = found as f32 / 1000.0;
        assert!(recall >= 0.97, "recall@10 against the scan {recall}");
        // Scores are cosines, as the scan's are.
        let hit = idx.search(&rows[42], 1)[0];
        assert_eq!(hit.chunk_id, 42);
        assert!((hit.score - 1.0).abs() < 0.01, "{}", hit.score);
    }

    /// A store in `dir` and a sealer for saved indexes.
    fn store_and_sealer(dir: &Path) -> (Store, Sealer) {
        use crate::crypto::DataKey;
        let store = Store::open(&dir.join("db"), Arc::new(Sealer::new(&DataKey::generate().unwrap()))).unwrap();
        (store, Sealer::new(&DataKey::generate().unwrap()))
    }

    /// Stores note `i`, one chunk with vector `v`: its item's id and its chunk's.
    fn put_note(s: &mut Store, i: usize, v: &[f32], coverage: f32) -> (i64, i64) {
        use crate::store::{ItemMeta, Kind, NewItem, Span};
        let text = format!("note {i}");
        let item = NewItem { kind: Kind::File, source: text.clone().into(), title: None, meta: ItemMeta::default(), time: 0, mtime: 0, size: 5, chunks: vec![Span { start: 0, end: text.len() }], text };
        let id = s.write(|w| w.put(&item)).unwrap().0;
        let chunk = s.chunks_without_vector("m", 1).unwrap()[0].id;
        s.put_vectors("m", &[(chunk, v.to_vec(), coverage)]).unwrap();
        (id, chunk)
    }

    #[test]
    fn a_graph_is_saved_sealed_reopened_and_never_returns_a_deleted_chunk() {
        use crate::crypto::DataKey;
        let dir = tempfile::tempdir().unwrap();
        let (mut s, sealer) = store_and_sealer(dir.path());
        let rows = units(300, 32, 5);
        let items: Vec<i64> = rows.iter().enumerate().map(|(i, v)| put_note(&mut s, i, v, 1.0).0).collect();
        let saved = dir.path().join("vectors");
        let mut idx = VectorIndex::open(&saved, &sealer, &s, "m", 100).unwrap();
        assert!(idx.has_graph() && idx.unsaved() == 300 && idx.worth_saving());
        idx.save(&saved, &sealer, "m").unwrap();
        assert_eq!(idx.unsaved(), 0);
        // Sealed: no vector's bytes are in the file.
        let file = std::fs::read(saved.join("m.graph.sealed")).unwrap();
        let (bytes, _) = quantize(&rows[7]);
        let bytes: Vec<u8> = bytes.iter().map(|b| *b as u8).collect();
        assert!(!file.windows(16).any(|w| w == &bytes[..16]));
        // A new process finds the same neighbours without building the graph again.
        let back = VectorIndex::open(&saved, &sealer, &s, "m", 100).unwrap();
        assert!(back.has_graph() && back.unsaved() == 0);
        for q in units(10, 32, 9) {
            let ids = |i: &VectorIndex| i.search(&q, 5).iter().map(|h| (h.chunk_id, h.content_id)).collect::<Vec<_>>();
            assert_eq!(ids(&idx), ids(&back));
        }
        // Another key: not opened, so the store is read instead (and a graph built from it).
        let other = Sealer::new(&DataKey::generate().unwrap());
        assert!(!VectorIndex::open(&saved, &other, &s, "m", 1000).unwrap().has_graph());
        // Deleted: never found again, and the saved graph, which holds its vector, goes.
        let nearest = back.search(&rows[3], 1)[0].chunk_id;
        let owner = items[(0..300).find(|&i| s.chunks_of(s.item(items[i]).unwrap().content_id).unwrap()[0].id == nearest).unwrap()];
        s.write(|w| w.remove(owner)).unwrap();
        let mut back = back;
        assert_eq!(back.refresh(&s, "m").unwrap(), Refreshed { added: 0, dropped: 1 });
        assert!(back.search(&rows[3], 10).iter().all(|h| h.chunk_id != nearest));
        assert_eq!(back.len(), 299);
        assert!(!back.worth_saving());
        // A process opening the saved graph finds the deletion and removes the file.
        let reopened = VectorIndex::open(&saved, &sealer, &s, "m", 100).unwrap();
        assert!(!saved.join("m.graph.sealed").exists());
        assert!(reopened.search(&rows[3], 10).iter().all(|h| h.chunk_id != nearest));
        back.save(&saved, &sealer, "m").unwrap();
        assert!(!saved.join("m.graph.sealed").exists(), "a graph holding a deleted vector is not saved");
    }

    #[test]
    fn a_scan_is_saved_sealed_read_back_whole_and_goes_when_a_vector_it_holds_is_deleted() {
        use crate::crypto::DataKey;
        let dir = tempfile::tempdir().unwrap();
        let (mut s, sealer) = store_and_sealer(dir.path());
        let rows = units(120, 48, 11);
        let add = |s: &mut Store, i: usize| put_note(s, i, &rows[i], 0.25 + i as f32 / 1000.0);
        let added: Vec<(i64, i64)> = (0..100).map(|i| add(&mut s, i)).collect();
        let saved = dir.path().join("vectors");
        let mut idx = VectorIndex::open(&saved, &sealer, &s, "m", 1000).unwrap();
        assert!(!idx.has_graph() && idx.unsaved() == 100 && idx.worth_saving());
        idx.save(&saved, &sealer, "m").unwrap();
        assert_eq!(idx.unsaved(), 0);
        let file = std::fs::read(saved.join("m.scan.sealed")).unwrap();
        let (bytes, _) = quantize(&rows[7]);
        let bytes: Vec<u8> = bytes.iter().map(|b| *b as u8).collect();
        assert!(!file.windows(16).any(|w| w == &bytes[..16]), "no vector's bytes in the clear");
        // Read back from the file (nothing is left unsaved), the same hits, scores and coverage;
        // then caught up with a vector stored since.
        add(&mut s, 100);
        let back = VectorIndex::open(&saved, &sealer, &s, "m", 1000).unwrap();
        assert_eq!((back.len(), back.unsaved()), (101, 1));
        for q in units(5, 48, 3) {
            let hits = |i: &VectorIndex| i.search(&q, 5).iter().map(|h| (h.chunk_id, h.content_id, h.score, h.coverage)).collect::<Vec<_>>();
            assert_eq!(hits(&back), hits(&VectorIndex::load(&s, "m").unwrap()));
        }
        // Damaged or under another key: the store is read instead.
        let other = Sealer::new(&DataKey::generate().unwrap());
        assert_eq!(VectorIndex::open(&saved, &other, &s, "m", 1000).unwrap().unsaved(), 101);
        // A deletion: the file holding its vector goes; the index, which no longer holds it, is
        // saved again without it.
        s.write(|w| w.remove(added[3].0)).unwrap();
        let mut back = back;
        assert_eq!(back.catch_up(&saved, &s, "m").unwrap(), Refreshed { added: 0, dropped: 1 });
        assert!(!saved.join("m.scan.sealed").exists());
        assert!(back.worth_saving());
        back.save(&saved, &sealer, "m").unwrap();
        let reopened = VectorIndex::open(&saved, &sealer, &s, "m", 1000).unwrap();
        assert_eq!((reopened.len(), reopened.unsaved()), (100, 0));
        assert!(reopened.search(&rows[3], 100).iter().all(|h| h.chunk_id != added[3].1));
        // Grown into a graph: the graph is saved and the scan's file goes.
        let mut graph = VectorIndex::open(&saved, &sealer, &s, "m", 50).unwrap();
        assert!(graph.has_graph());
        graph.save(&saved, &sealer, "m").unwrap();
        assert!(saved.join("m.graph.sealed").exists() && !saved.join("m.scan.sealed").exists());
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
