//! Sentence-embedding throughput of the candle MiniLM embedder at batch 1, 16 and 64, on real
//! paragraphs chunked as engram chunks them (the xquad_en corpus in assets/eval).
//!
//! scripts/fetch-models.sh && cargo bench --bench embed
//! (`EMBED_MODEL=multilingual-e5-small` for the multilingual model)
//!
//! Wall clock on a shared machine: compare rows of one run.

use std::time::Instant;

use engram::config::ModelsConfig;
use engram::embed::Embedder;

fn main() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/eval/xquad_en/corpus.jsonl");
    let text = std::fs::read_to_string(&corpus).expect("the shared evaluation data beside the repository");
    let mut chunks = Vec::new();
    for line in text.lines().take(120) {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = doc["text"].as_str().unwrap().to_string();
        for span in engram::extract::chunk_text(&body) {
            chunks.push(body[span.start..span.end].to_string());
        }
    }
    let chunks: Vec<&str> = chunks.iter().map(String::as_str).take(256).collect();
    let words: usize = chunks.iter().map(|c| c.split_whitespace().count()).sum();
    let models = match std::env::var("EMBED_MODEL") {
        Ok(name) => ModelsConfig { embedder: name, ..Default::default() },
        Err(_) => ModelsConfig::default(),
    };
    let embedder = Embedder::load(&models.embedder_dir(), false).unwrap_or_else(|e| panic!("{e}"));
    println!("model: {}", embedder.name());
    embedder.embed_batched(&chunks[..8], 8).unwrap(); // warm up
    println!("{} chunks, {:.0} words on average", chunks.len(), words as f64 / chunks.len() as f64);
    println!("| batch | chunks/s | ms per chunk |");
    println!("|---|---|---|");
    for batch in [1, 4, 8, 16, 64] {
        let start = Instant::now();
        embedder.embed_batched(&chunks, batch).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!("| {batch} | {:.1} | {:.1} |", chunks.len() as f64 / secs, secs * 1000.0 / chunks.len() as f64);
    }
    // Snippets of semantic hits embed a chunk's sentences: short texts, many at once.
    let sentences: Vec<&str> = chunks
        .iter()
        .flat_map(|c| c.split(". "))
        .filter(|s| s.split_whitespace().count() >= 4)
        .take(120)
        .collect();
    if let Some(out) = std::env::var_os("EMBED_TEXTS_OUT") {
        // The Python reference (bench/embed_reference.py) embeds exactly these texts.
        let texts = serde_json::json!({ "chunks": chunks, "sentences": sentences });
        std::fs::write(out, texts.to_string()).expect("EMBED_TEXTS_OUT is writable");
    }
    for batch in [1, 12] {
        let start = Instant::now();
        embedder.embed_batched(&sentences, batch).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!("sentences ({}), batch {batch}: {:.1} ms each", sentences.len(), secs * 1000.0 / sentences.len() as f64);
    }
    let start = Instant::now();
    let n = 50;
    for i in 0..n {
        embedder.embed_queries(&[&format!("when does my lease end {i}")]).unwrap();
    }
    println!("query embedding (one short sentence): {:.1} ms", start.elapsed().as_secs_f64() * 1000.0 / n as f64);
}
