//! A simulated year of memories, measured at 1, 6 and 12 months against SQLite FTS5 on the same
//! text in the same run: ingest rate, disk, cold start, memory, and keyword, semantic and hybrid
//! latency (p50/p95).
//!
//! The year: 250 working days of screen memories at the rate `bench/daemon.sh` keeps frames while
//! the user types (90 an hour, 8 hours a day: 720 a day, 270–750 words each, one in five in
//! Chinese), plus 50,000 files (200 a day, 150–1,500 words, one in five in Chinese): about
//! 1.0 million chunks. Vectors are random unit vectors (embedding a million chunks would take
//! two hours here); queries are embedded for real. The vector search is the exact scan unless
//! ENGRAM_BENCH_GRAPH=1 (an HNSW graph over a million random vectors takes hours to build).
//! The API: the release `engram serve` (beside the bench's binary, or `$ENGRAM_BIN`) started on
//! the store at each checkpoint, timed from start to a first hybrid answer, then loaded by 1 and
//! by 20 keep-alive clients. Not measured here: Recoll on the same text.
//!
//! cargo bench --bench year                 # the whole year
//! ENGRAM_BENCH_DAYS=21 cargo bench --bench year   # the first month only
//! ENGRAM_BENCH_KEEP=1 cargo bench --bench year     # keep the store (its path goes to stderr)

use std::path::Path;
use std::time::{Duration, Instant};

use engram::config::Config;
use engram::crypto::vault::{self, KdfParams};
use engram::crypto::Sealer;
use engram::query::{Mode, SearchRequest};
use engram::store::{ItemMeta, Kind, NewItem, Store};
use engram::Engram;

#[path = "corpus.rs"]
mod corpus;
#[path = "server.rs"]
mod server;
use corpus::{percentile, rss, text, timed, vocabulary, Rng};

const DAYS: usize = 250;
const FRAMES_A_DAY: usize = 720;
const FILES_A_DAY: usize = 200;
const BATCH: usize = 1000;
const PASSPHRASE: &str = "bench";
/// Seconds each API load runs.
const API_SECS: f64 = 15.0;

/// Chinese text: two-character words of common characters, drawn by Zipf.
fn chinese(rng: &mut Rng, min: u64, spread: u64) -> String {
    let words = min + rng.next() % spread;
    let mut s = String::new();
    for i in 0..words {
        for _ in 0..2 {
            s.push(char::from_u32(0x4E00 + rng.zipf(3000) as u32).unwrap());
        }
        if i % 10 == 9 {
            s.push('。');
        }
    }
    s
}

struct Day {
    items: Vec<NewItem>,
}

fn day(rng: &mut Rng, vocab: &[String], d: usize) -> Day {
    const APPS: &[&str] = &["firefox", "code", "thunderbird", "libreoffice", "slack", "terminal", "evince", "wechat"];
    let start = 1_735_718_400 + d as i64 * 86_400;
    let mut items = Vec::with_capacity(FRAMES_A_DAY + FILES_A_DAY);
    for f in 0..FRAMES_A_DAY {
        let body = if rng.next() % 5 == 0 { chinese(rng, 135, 240) } else { text(rng, vocab, 270, 480) };
        let app = APPS[(rng.next() % APPS.len() as u64) as usize];
        let time = start + 9 * 3600 + f as i64 * 40;
        items.push(NewItem {
            kind: Kind::Screen,
            source: format!("{app}\n{time}\nwindow {f}").into(),
            title: Some(format!("{} — window {}", vocab[rng.zipf(vocab.len())], f % 17)),
            meta: ItemMeta { app: Some(app.to_string()), ..Default::default() },
            time,
            mtime: time,
            size: body.len() as i64,
            chunks: engram::extract::chunk_text(&body),
            text: body,
        });
    }
    for f in 0..FILES_A_DAY {
        let body = if rng.next() % 5 == 0 { chinese(rng, 75, 675) } else { text(rng, vocab, 150, 1350) };
        let time = start + f as i64 * 400;
        let name = format!("{}-{d}-{f}.md", vocab[rng.zipf(vocab.len())]);
        items.push(NewItem {
            kind: Kind::File,
            source: format!("/home/user/documents/{name}").into(),
            title: Some(name),
            meta: ItemMeta::default(),
            time,
            mtime: time,
            size: body.len() as i64,
            chunks: engram::extract::chunk_text(&body),
            text: body,
        });
    }
    Day { items }
}

fn disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                disk(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// p50 / p95 of running `f` on each query, in ms.
fn latency<Q>(queries: &[Q], mut f: impl FnMut(&Q)) -> String {
    let mut lat: Vec<Duration> = queries.iter().map(|q| timed(|| f(q))).collect();
    lat.sort();
    format!("{:.1} / {:.1}", percentile(&lat, 0.5), percentile(&lat, 0.95))
}

/// `engram serve` on the store, as a new process: start (unlocking the vault) to a first hybrid
/// answer, then the searches of 1 and of 20 clients a second, and the server's memory after.
fn api(bin: &Path, dir: &Path, config: &Path, queries: &[String]) -> String {
    let t = Instant::now();
    let started = server::Server::start(bin, dir, config, PASSPHRASE).and_then(|s| s.search(&queries[3]).map(|()| s));
    let server = match started {
        Ok(s) => s,
        Err(e) => return format!("failed: {e} | | | "),
    };
    let first = t.elapsed();
    let one = server.load(queries, 1, API_SECS);
    let many = server.load(queries, 20, API_SECS);
    format!(
        "{:.2} s | {:.1} / {:.1} ({:.2}×; {:.2} / {:.2}) | {:.1} / {:.1}; {:.1} / {:.1} | {:.0}{}",
        first.as_secs_f64(),
        one.per_second,
        many.per_second,
        many.per_second / one.per_second,
        one.cores,
        many.cores,
        one.p50_ms,
        one.p95_ms,
        many.p50_ms,
        many.p95_ms,
        server.rss_mb(),
        if one.errors + many.errors > 0 { format!(" ({} errors)", one.errors + many.errors) } else { String::new() },
    )
}

fn main() {
    let days: usize = std::env::var("ENGRAM_BENCH_DAYS").ok().and_then(|d| d.parse().ok()).unwrap_or(DAYS).min(DAYS);
    let graph = std::env::var("ENGRAM_BENCH_GRAPH").is_ok_and(|v| v == "1");
    let checkpoints: Vec<(usize, usize)> = [1, 6, 12].iter().map(|m| (*m, (m * DAYS).div_ceil(12))).filter(|(_, d)| *d <= days).collect();
    let mut rng = Rng(0x5EED_2026);
    let vocab = vocabulary(&mut rng, 30_000);
    let queries: Vec<String> = (0..200)
        .map(|i| match i % 5 {
            0 => chinese(&mut rng, 1, 1),
            _ => format!("{} {}", vocab[rng.zipf(vocab.len()) % 3000 + 50], vocab[rng.zipf(vocab.len()) % 3000 + 50]),
        })
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    if !graph {
        config.search.graph_from = 1 << 40;
    }
    // The same settings for `engram serve`, which measures the API.
    let config_file = tmp.path().join("config.toml");
    std::fs::write(&config_file, format!("[search]\ngraph_from = {}\n", config.search.graph_from)).unwrap();
    let dir = tmp.path().join("engram");
    // A vault, so the real binary can open the store too.
    engram::config::create_private_dir(&dir).unwrap();
    let key = vault::create(&dir, PASSPHRASE.as_bytes(), KdfParams::default()).unwrap();
    let server_bin = server::binary();
    let mut engram = Engram::open_with_key(&dir, &key, config.clone()).unwrap();
    let model = engram.embedder().expect("the embedder (scripts/fetch-models.sh)").name().to_string();
    let mut vectors = Store::open(&dir.join(engram::DB_FILE), std::sync::Arc::new(Sealer::new(&key))).unwrap();
    let fts = rusqlite::Connection::open(tmp.path().join("fts.db")).unwrap();
    fts.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE VIRTUAL TABLE docs USING fts5(body);").unwrap();

    println!("| months | items | chunks | ingest items/s: engram / FTS5 (ratio) | vectors stored /s | disk MB: engram / FTS5 | cold start: open + keyword / + first hybrid | RSS MB now / peak | keyword p50 / p95 ms | FTS5 p50 / p95 ms | semantic p50 / p95 ms | hybrid p50 / p95 ms | API: start to first answer | API searches/s: 1 / 20 clients (ratio; server's cores busy) | API p50 / p95 ms: 1 client; 20 clients | API RSS MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let (mut items, mut engram_time, mut fts_time, mut vector_time, mut stored) = (0usize, Duration::ZERO, Duration::ZERO, Duration::ZERO, 0usize);
    let mut d = 0;
    for (months, until) in checkpoints {
        while d < until {
            let Day { items: all } = day(&mut rng, &vocab, d);
            for batch in all.chunks(BATCH) {
                engram_time += timed(|| engram.add_items(batch).unwrap());
                fts_time += timed(|| {
                    let tx = fts.unchecked_transaction().unwrap();
                    {
                        let mut stmt = tx.prepare_cached("INSERT INTO docs (body) VALUES (?1)").unwrap();
                        for item in batch {
                            stmt.execute([&item.text]).unwrap();
                        }
                    }
                    tx.commit().unwrap();
                });
                items += batch.len();
            }
            // Vectors for the day's chunks, as the daemon's embedder would store them.
            vector_time += timed(|| loop {
                let chunks = vectors.chunks_without_vector(&model, 5000).unwrap();
                if chunks.is_empty() {
                    break;
                }
                let rows: Vec<(i64, Vec<f32>, f32)> = chunks.iter().map(|c| (c.id, corpus::unit(&mut rng, 384), 1.0)).collect();
                stored += rows.len();
                vectors.put_vectors(&model, &rows).unwrap();
            });
            // As the daemon does after embedding: the loaded index takes them in (and is saved
            // once it has grown by a tenth).
            vector_time += timed(|| {
                engram.load_vectors().unwrap();
            });
            d += 1;
        }
        let chunks = engram.status().map(|s| s.store.chunks).unwrap_or(0);
        // A new handle on the store, as a new process has: open and a first keyword search, then
        // a first hybrid search (which reads the saved vectors and opens those stored since).
        let (mut cold, mut first_hybrid) = (Duration::ZERO, Duration::ZERO);
        // What the bench just wrote is flushed first, so a start does not share the disk with
        // the writing back of gigabytes.
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
        {
            let t = Instant::now();
            let fresh = Engram::open_with_key(&dir, &key, config.clone()).unwrap();
            let mut req = SearchRequest::new(queries[1].clone(), 10);
            req.mode = Mode::Keyword;
            fresh.search(&req).unwrap();
            cold += t.elapsed();
            first_hybrid += timed(|| {
                fresh.search(&SearchRequest::new(queries[2].clone(), 10)).unwrap();
            });
        }
        let search = |mode: Mode| {
            latency(&queries[..100], |q: &String| {
                let mut req = SearchRequest::new(q.clone(), 10);
                req.mode = mode;
                std::hint::black_box(engram.search(&req).unwrap());
            })
        };
        let keyword = search(Mode::Keyword);
        let semantic = search(Mode::Semantic);
        let hybrid = search(Mode::Hybrid);
        let mut fts_stmt = fts.prepare("SELECT rowid, snippet(docs, 0, '**', '**', '…', 24) FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 10").unwrap();
        let fts_lat = latency(&queries[..100], |q: &String| {
            let m = q.split_whitespace().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" OR ");
            let rows: Vec<i64> = fts_stmt.query_map([&m], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
            std::hint::black_box(rows);
        });
        let (now, peak) = rss();
        let api = server_bin.as_deref().map_or_else(|| "not measured (no release binary) | | | ".to_string(), |bin| api(bin, &dir, &config_file, &queries));
        println!(
            "| {months} | {items} | {chunks} | {:.0} / {:.0} ({:.3}×) | {:.0} | {} / {} | {:.2} s / {:.2} s | {now:.0} / {peak:.0} | {keyword} | {fts_lat} | {semantic} | {hybrid} | {api} |",
            items as f64 / engram_time.as_secs_f64(),
            items as f64 / fts_time.as_secs_f64(),
            fts_time.as_secs_f64() / engram_time.as_secs_f64(),
            stored as f64 / vector_time.as_secs_f64(),
            disk(&dir) / 1_000_000,
            disk(tmp.path()).saturating_sub(disk(&dir)) / 1_000_000,
            cold.as_secs_f64(),
            first_hybrid.as_secs_f64(),
        );
    }
    if std::env::var_os("ENGRAM_BENCH_KEEP").is_some() {
        eprintln!("kept: {} (passphrase {PASSPHRASE:?}, settings config.toml)", tmp.keep().display());
    }
}
