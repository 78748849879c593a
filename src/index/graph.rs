//! The approximate nearest-neighbour graph for large stores: an HNSW (hnsw_rs) over the byte
//! vectors of [`super::vector::VectorIndex`], keyed by chunk id.
//!
//! hnsw_rs saves a graph only into files it opens itself by name. Here those names are symlinks
//! to memfds, so the graph and its vectors are written to memory, never to a disk; the caller
//! seals the bytes. Loading goes the same way back.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};

use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};

/// Neighbours kept per point (twice as many on the bottom layer).
const CONNECTIONS: usize = 16;
/// Candidates weighed when a point is inserted: more builds slower and finds better.
const EF_BUILD: usize = 200;
/// hnsw_rs saves only graphs made with its full number of layers.
const LAYERS: usize = 16;

/// Cosine distance between byte vectors (each is a unit vector scaled to its largest component,
/// so the scales cancel out).
#[derive(Debug, Default, Clone, Copy)]
pub struct CosineBytes;

impl Distance<i8> for CosineBytes {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        let (mut ab, mut aa, mut bb) = (0i32, 0i32, 0i32);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (*x as i32, *y as i32);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa == 0 || bb == 0 {
            return 1.0;
        }
        (1.0 - ab as f32 / ((aa as f32).sqrt() * (bb as f32).sqrt())).max(0.0)
    }
}

pub struct Graph {
    hnsw: Hnsw<'static, i8, CosineBytes>,
}

impl Graph {
    /// A graph of `rows` (byte vector, chunk id), inserted on every core.
    pub fn build(rows: &[(&[i8], i64)]) -> Graph {
        let hnsw = Hnsw::new(CONNECTIONS, rows.len().max(1), LAYERS, EF_BUILD, CosineBytes);
        let rows: Vec<(&[i8], usize)> = rows.iter().map(|(v, id)| (*v, *id as usize)).collect();
        hnsw.parallel_insert_slice(&rows);
        Graph { hnsw }
    }

    pub fn insert(&self, row: &[i8], chunk_id: i64) {
        self.hnsw.insert_slice((row, chunk_id as usize));
    }

    pub fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// The `k` nearest chunks but those in `skip`, with their cosine similarity; `ef` candidates
    /// are weighed (at least `k`).
    pub fn search(&self, query: &[i8], k: usize, ef: usize, skip: &HashSet<i64>) -> Vec<(i64, f32)> {
        let filter = |id: &usize| !skip.contains(&(*id as i64));
        let found = if skip.is_empty() {
            self.hnsw.search(query, k, ef.max(k))
        } else {
            self.hnsw.search_filter(query, k, ef.max(k), Some(&filter))
        };
        found.into_iter().map(|n| (n.d_id as i64, 1.0 - n.distance)).collect()
    }

    /// Every point: its chunk id and byte vector.
    pub fn points(&self) -> impl Iterator<Item = (i64, Vec<i8>)> + '_ {
        self.hnsw.get_point_indexation().into_iter().map(|p| (p.get_origin_id() as i64, p.get_v().to_vec()))
    }

    /// The graph and its vectors as bytes, written to memory only.
    pub fn dump(&self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let files = MemFiles::new()?;
        self.hnsw.file_dump(files.dir.path(), BASENAME).map_err(|e| io::Error::other(e.to_string()))?;
        Ok((read_all(&files.graph)?, read_all(&files.data)?))
    }

    /// A graph from [`Graph::dump`]'s bytes.
    pub fn load(graph: &[u8], data: &[u8]) -> io::Result<Graph> {
        let files = MemFiles::new()?;
        (&files.graph).write_all(graph)?;
        (&files.data).write_all(data)?;
        // The loaded graph borrows its loader's lifetime (for mapped data, not used here: the
        // vectors are copied), so the small loader is kept for the life of the process.
        let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(files.dir.path(), BASENAME)));
        let hnsw = io.load_hnsw_with_dist(CosineBytes).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Graph { hnsw })
    }
}

const BASENAME: &str = "graph";

/// A folder holding two symlinks, named as hnsw_rs names its files, to memfds.
struct MemFiles {
    dir: tempfile::TempDir,
    graph: File,
    data: File,
}

impl MemFiles {
    fn new() -> io::Result<MemFiles> {
        let dir = tempfile::Builder::new().prefix("engram-graph-").tempdir()?;
        let (graph, data) = (memfd(c"engram-graph")?, memfd(c"engram-graph-data")?);
        for (file, suffix) in [(&graph, "graph"), (&data, "data")] {
            let target = format!("/proc/self/fd/{}", file.as_raw_fd());
            std::os::unix::fs::symlink(target, dir.path().join(format!("{BASENAME}.hnsw.{suffix}")))?;
        }
        Ok(MemFiles { dir, graph, data })
    }
}

fn memfd(name: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: a valid C string; the new descriptor is owned by the File alone.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is not owned elsewhere.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_all(mut file: &File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<i8>> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 255) as i8
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_graph_goes_through_memory_and_back_finding_the_same_neighbours() {
        let data = rows(2000, 32, 3);
        let graph = Graph::build(&data.iter().enumerate().map(|(i, r)| (r.as_slice(), i as i64 + 100)).collect::<Vec<_>>());
        graph.insert(&data[0], 5);
        let (g, d) = graph.dump().unwrap();
        let back = Graph::load(&g, &d).unwrap();
        assert_eq!(back.len(), 2001);
        let none = HashSet::new();
        for q in rows(20, 32, 9) {
            assert_eq!(graph.search(&q, 10, 64, &none), back.search(&q, 10, 64, &none));
        }
        // A point is its own nearest neighbour; a skipped one is never returned.
        let hits = back.search(&data[7], 3, 256, &none);
        assert_eq!(hits[0].0, 107);
        assert!((hits[0].1 - 1.0).abs() < 1e-4);
        assert!(back.search(&data[7], 3, 256, &HashSet::from([107])).iter().all(|h| h.0 != 107));
        assert_eq!(back.points().count(), 2001);
    }

    #[test]
    fn cosine_of_bytes_ignores_their_scale() {
        let d = CosineBytes;
        assert!(d.eval(&[10, 20], &[20, 40]) < 1e-6);
        assert!((d.eval(&[1, 0], &[0, 1]) - 1.0).abs() < 1e-6);
        assert_eq!(d.eval(&[0, 0], &[1, 1]), 1.0);
    }
}
