//! The vector graph (HNSW) against the exact scan on real embeddings: recall@10 and latency.
//! Needs a store of real text, embedded: `bench/graph-recall.sh` makes one and runs this.
//!
//! ENGRAM_DATA_DIR=… ENGRAM_PASSPHRASE=… cargo bench --bench graph
//!
//! Queries are stored chunks' own vectors (each one's own match left out), so the graph is
//! judged on the neighbourhoods real text has. Not a test: numbers go to BENCHMARKS.md.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use engram::config::Config;
use engram::index::vector::VectorIndex;
use engram::Engram;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::var("ENGRAM_DATA_DIR").expect("ENGRAM_DATA_DIR"));
    let passphrase = std::env::var("ENGRAM_PASSPHRASE").expect("ENGRAM_PASSPHRASE");
    let engram = Engram::open(&dir, passphrase.as_bytes(), Config::default()).unwrap();
    let model = engram.embedder().unwrap().name().to_string();
    let floats = engram.store().vectors(&model).unwrap();
    let scan = VectorIndex::from_vectors(floats.clone()).with_graph_from(usize::MAX);
    let t = Instant::now();
    let graph = VectorIndex::from_vectors(floats.clone()).with_graph_from(1);
    let build = t.elapsed();
    // Every n-th vector is a query: 300 of them, spread over the store.
    let step = (floats.len() / 300).max(1);
    let (mut found, mut asked, mut scan_lat, mut graph_lat) = (0, 0, Vec::new(), Vec::new());
    for q in floats.iter().step_by(step).take(300) {
        let t = Instant::now();
        let exact = scan.search(&q.vector, 11);
        scan_lat.push(t.elapsed());
        let t = Instant::now();
        let approx = graph.search(&q.vector, 11);
        graph_lat.push(t.elapsed());
        let truth: HashSet<i64> = exact.iter().map(|h| h.chunk_id).filter(|c| *c != q.chunk_id).take(10).collect();
        found += approx.iter().filter(|h| h.chunk_id != q.chunk_id && truth.contains(&h.chunk_id)).count();
        asked += truth.len();
    }
    scan_lat.sort();
    graph_lat.sort();
    println!(
        "| {} | {} | {:.1} s | {:.3} | {:.2} / {:.2} ms | {:.2} ms |",
        floats.len(),
        model,
        build.as_secs_f64(),
        found as f64 / asked as f64,
        percentile(&graph_lat, 0.5),
        percentile(&graph_lat, 0.99),
        percentile(&scan_lat, 0.5)
    );
}
