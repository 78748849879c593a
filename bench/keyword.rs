//! Ingest throughput and keyword query latency of engram's sealed store + index, against SQLite
//! FTS5 (what screenpipe uses) on the same generated corpus, in the same run; and hybrid query
//! latency (query embedding, keyword search, exact vector scan, fusion, snippets) with the real
//! embedder over random unit vectors standing in for the chunks' embeddings (embedding 100k
//! chunks for real would take over an hour here; the scan costs the same for any vectors).
//!
//! cargo bench --bench keyword               # 10k and 100k chunks
//! ENGRAM_BENCH_SIZES=10000 cargo bench --bench keyword
//!
//! Not a test: numbers go to BENCHMARKS.md. Timings are wall clock on a shared machine, so
//! compare the two systems within one run, not across runs.

use std::time::{Duration, Instant};

use engram::config::{Config, ModelsConfig};
use engram::crypto::DataKey;
use engram::embed::Embedder;
use engram::index::vector::VectorIndex;
use engram::query::{Mode, SearchRequest, Semantic};
use engram::store::{ItemMeta, Kind, NewItem, StoredVector};
use engram::Engram;

#[path = "corpus.rs"]
mod corpus;
use corpus::{document, percentile, rss, timings, vocabulary, Rng};

/// One table row: ingest rate and query latency percentiles.
fn report(n: usize, system: &str, ingest: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "| {n} | {system} | {:.0} | {:.2} | {:.2} |",
        n as f64 / ingest.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("ENGRAM_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    println!("| chunks | system | ingest docs/s | query p50 ms | query p99 ms |");
    println!("|---|---|---|---|---|");
    for n in sizes {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let vocab = vocabulary(&mut rng, 20_000);
        let docs: Vec<String> = (0..n).map(|_| document(&mut rng, &vocab)).collect();
        let queries: Vec<String> = (0..300)
            .map(|_| format!("{} {}", vocab[rng.zipf(vocab.len()) % 3000 + 50], vocab[rng.zipf(vocab.len()) % 3000 + 50]))
            .collect();
        bench_engram(n, &docs, &queries);
        bench_fts5(n, &docs, &queries);
    }
}

fn bench_engram(n: usize, docs: &[String], queries: &[String]) {
    let tmp = tempfile::tempdir().unwrap();
    let key = DataKey::generate().unwrap();
    let mut engram = Engram::open_with_key(tmp.path(), &key, Config::default()).unwrap();
    let start = Instant::now();
    for (b, batch) in docs.chunks(1000).enumerate() {
        let items: Vec<NewItem> = batch
            .iter()
            .enumerate()
            .map(|(i, text)| NewItem {
                kind: Kind::Doc,
                source: format!("doc-{}", b * 1000 + i).into(),
                title: None,
                meta: ItemMeta::default(),
                time: 0,
                mtime: 0,
                size: text.len() as i64,
                chunks: engram::extract::chunk_text(text),
                text: text.clone(),
            })
            .collect();
        engram.add_items(&items).unwrap();
    }
    let ingest = start.elapsed();
    let mut lat = Vec::new();
    for q in queries {
        let t = Instant::now();
        let mut req = SearchRequest::new(q.clone(), 10);
        req.mode = Mode::Keyword;
        let r = engram.search(&req).unwrap();
        lat.push(t.elapsed());
        std::hint::black_box(r);
    }
    report(n, "engram keyword (sealed SQLite + sealed tantivy, snippets)", ingest, lat);
    bench_hybrid(n, &engram, queries);
    bench_vectors(n, &mut engram, tmp.path(), &key);
}

/// The vector index over sealed vectors in the store: opening all of them (a cold process),
/// catching up after one new note (a warm daemon or server), and the exact scan itself.
fn bench_vectors(n: usize, engram: &mut Engram, dir: &std::path::Path, key: &DataKey) {
    let sealer = std::sync::Arc::new(engram::crypto::Sealer::new(key));
    let mut store = engram::store::Store::open(&dir.join(engram::DB_FILE), sealer).unwrap();
    let mut rng = Rng(7);
    loop {
        let chunks = store.chunks_without_vector("bench", 5000).unwrap();
        if chunks.is_empty() {
            break;
        }
        let rows: Vec<(i64, Vec<f32>, f32)> = chunks.iter().map(|c| (c.id, corpus::unit(&mut rng, 384), 1.0)).collect();
        store.put_vectors("bench", &rows).unwrap();
    }
    let t = Instant::now();
    // The scan, at every size (a graph is measured below).
    let mut index = VectorIndex::load(engram.store(), "bench").unwrap().with_graph_from(usize::MAX);
    let load = t.elapsed();
    let mut refresh = Vec::new();
    for i in 0..20 {
        let text = format!("note {i} written while the index is warm");
        let item = NewItem {
            kind: Kind::Doc,
            source: format!("late-{i}").into(),
            title: None,
            meta: ItemMeta::default(),
            time: 0,
            mtime: 0,
            size: text.len() as i64,
            chunks: engram::extract::chunk_text(&text),
            text,
        };
        engram.add_items(&[item]).unwrap();
        let chunk = store.chunks_without_vector("bench", 10).unwrap();
        store.put_vectors("bench", &[(chunk[0].id, corpus::unit(&mut rng, 384), 1.0)]).unwrap();
        let t = Instant::now();
        let r = index.refresh(engram.store(), "bench").unwrap();
        refresh.push(t.elapsed());
        assert_eq!(r.added, 1);
    }
    refresh.sort();
    let scan = timings(50, || {
        let q = corpus::unit(&mut rng, 384);
        std::hint::black_box(index.search(&q, 500));
    });
    // The index holds vectors as bytes: how many of the top 10 by the floats themselves it finds.
    let floats = store.vectors("bench").unwrap();
    // The baseline in the same run: the same scan over the floats (what the index held before).
    let matrix: Vec<f32> = floats.iter().flat_map(|v| v.vector.iter().copied()).collect();
    let float_scan = timings(50, || {
        let q = corpus::unit(&mut rng, 384);
        let mut scored: Vec<(f32, usize)> = matrix.chunks_exact(384).map(|row| dot_f32(row, &q)).enumerate().map(|(i, s)| (s, i)).collect();
        scored.select_nth_unstable_by(499, |a, b| b.0.total_cmp(&a.0));
        std::hint::black_box(&scored);
    });
    let recall = recall_at_10(&index, &floats, &mut rng, 20);
    println!(
        "| {n} | vector index: open every sealed vector {:.0} ms; catch up after one new note p50 {:.1} ms; top-500 scan p50 {:.2} ms (over the floats: {:.2} ms); recall@10 against the floats {:.3}; {} MB held (floats: {} MB) | | | |",
        load.as_secs_f64() * 1000.0,
        percentile(&refresh, 0.5),
        percentile(&scan, 0.5),
        percentile(&float_scan, 0.5),
        recall,
        floats.len() * (384 + 4) / 1_000_000,
        matrix.len() * 4 / 1_000_000
    );
    bench_graph(n, engram, &floats, dir, key);
}

/// The HNSW graph over the same vectors: build, search at the size a hybrid query asks for
/// (50), recall@10 against the floats, saving it sealed and opening it again.
fn bench_graph(n: usize, engram: &Engram, floats: &[StoredVector], dir: &std::path::Path, key: &DataKey) {
    let before = rss().0;
    let t = Instant::now();
    let mut graph = VectorIndex::load(engram.store(), "bench").unwrap().with_graph_from(1);
    let build = t.elapsed();
    let held = rss().0 - before;
    let mut rng = Rng(99);
    let lat = timings(200, || {
        let q = corpus::unit(&mut rng, 384);
        std::hint::black_box(graph.search(&q, 50));
    });
    let recall = recall_at_10(&graph, floats, &mut rng, 100);
    let sealer = engram::crypto::Sealer::new(key);
    let saved = dir.join("bench-vectors");
    let t = Instant::now();
    graph.save(&saved, &sealer, "bench").unwrap();
    let save = t.elapsed();
    let size = std::fs::read_dir(&saved).unwrap().flatten().map(|f| f.metadata().unwrap().len()).sum::<u64>();
    let t = Instant::now();
    let back = VectorIndex::open(&saved, &sealer, engram.store(), "bench", 1).unwrap();
    let open = t.elapsed();
    assert!(back.has_graph());
    println!(
        "| {n} | vector graph (hnsw_rs, M=16, ef 200/256): build {:.1} s; top-50 search p50 {:.2} ms, p99 {:.2} ms; recall@10 against the floats {:.3}; RSS +{:.0} MB; save sealed {:.2} s ({} MB); open saved + catch up {:.2} s | | | |",
        build.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        recall,
        held,
        save.as_secs_f64(),
        size / 1_000_000,
        open.as_secs_f64()
    );
}

/// How many of the exact top ten by the floats `index` finds, over `queries` random queries.
fn recall_at_10(index: &VectorIndex, floats: &[StoredVector], rng: &mut Rng, queries: usize) -> f64 {
    let mut found = 0;
    for _ in 0..queries {
        let q = corpus::unit(rng, 384);
        let mut exact: Vec<(f32, i64)> = floats.iter().map(|v| (v.vector.iter().zip(&q).map(|(a, b)| a * b).sum(), v.chunk_id)).collect();
        exact.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
        let truth: std::collections::HashSet<i64> = exact[..10].iter().map(|e| e.1).collect();
        found += index.search(&q, 10).iter().filter(|h| truth.contains(&h.chunk_id)).count();
    }
    found as f64 / (10 * queries) as f64
}

/// The float scan's dot product, as the index computed it before it held bytes.
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum()
}

fn bench_hybrid(n: usize, engram: &Engram, queries: &[String]) {
    let models = ModelsConfig::default();
    let Ok(embedder) = Embedder::load(&models.embedder_dir(), false) else {
        println!("| {n} | engram hybrid | skipped: no model (scripts/fetch-models.sh) | | |");
        return;
    };
    let mut rng = Rng(42);
    let mut vectors = Vec::new();
    for content_id in engram.store().content_ids().unwrap() {
        for chunk in engram.store().chunks_of(content_id).unwrap() {
            vectors.push(StoredVector { chunk_id: chunk.id, content_id, vector: corpus::unit(&mut rng, embedder.dim()), coverage: 1.0 });
        }
    }
    let index = VectorIndex::from_vectors(vectors);
    let semantic = Semantic { embedder: &embedder, vectors: &index, weight: 0.5, min_similarity: -1.0 };
    let mut lat = Vec::new();
    for q in queries {
        let t = Instant::now();
        let r = engram::query::search(engram.store(), engram.keyword_index(), Some(&semantic), &SearchRequest::new(q.clone(), 10))
            .unwrap()
            .results;
        lat.push(t.elapsed());
        std::hint::black_box(r);
    }
    lat.sort();
    println!(
        "| {n} | engram hybrid (query embedding included) | | {:.2} | {:.2} |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}

fn bench_fts5(n: usize, docs: &[String], queries: &[String]) {
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("fts.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE VIRTUAL TABLE docs USING fts5(body);")
        .unwrap();
    let start = Instant::now();
    for batch in docs.chunks(1000) {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx.prepare_cached("INSERT INTO docs (body) VALUES (?1)").unwrap();
            for d in batch {
                stmt.execute([d]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let ingest = start.elapsed();
    let mut stmt = conn
        .prepare("SELECT rowid, snippet(docs, 0, '**', '**', '…', 24) FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 10")
        .unwrap();
    let mut lat = Vec::new();
    for q in queries {
        let m = q.split_whitespace().collect::<Vec<_>>().join(" OR ");
        let t = Instant::now();
        let rows: Vec<(i64, String)> =
            stmt.query_map([&m], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        lat.push(t.elapsed());
        std::hint::black_box(rows);
    }
    report(n, "SQLite FTS5 (plaintext, snippets)", ingest, lat);
}
