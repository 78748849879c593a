//! A small local language model on the CPU: a GGUF file run with candle's quantized models
//! (a dense llama-family file with engram's branching copy of candle's llama, [`llama`]).
//!
//! The architecture comes from the file's `general.architecture` (llama, qwen2, qwen3, gemma3),
//! the tokenizer from its own metadata (byte-level BPE by candle, SentencePiece BPE by [`spm`]),
//! the chat format from its chat template. Nothing is sampled (greedy decoding, or the likeliest
//! of given answers), so the same question over the same memories gives the same answer. Files
//! whose tensors candle multiplies without SIMD (Q4_1, Q5_x) are converted once to Q8_0 beside
//! the original (see [`convert`]).

pub mod convert;
mod llama;
pub mod span;
mod spm;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::Tokenizer;

use crate::models::FETCH_HINT;

/// Suffix of the converted copy written beside a slow-to-run source file.
const CONVERTED: &str = "engram-q8_0.gguf";
/// Prompt tokens per forward pass: bounds the attention scores held at once.
const PROMPT_STEP: usize = 512;
/// Greedy decoding with a light penalty on recent tokens: tiny models otherwise loop.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;

/// Picks the next token from the logits and the tokens so far, or `None` to stop.
type Choose<'a> = dyn FnMut(&[f32], &[u32]) -> Option<u32> + 'a;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the language model {0} is missing: {FETCH_HINT}")]
    Missing(PathBuf),
    #[error("the language model file {file} is damaged or not a GGUF model ({why}): delete it and {FETCH_HINT}")]
    Corrupt { file: PathBuf, why: String },
    #[error("the language model {file} is a `{arch}` model, which engram cannot run (it runs llama, qwen2, qwen3 and gemma3 GGUF files)")]
    Unsupported { file: PathBuf, arch: String },
    /// A tokenizer kind other than byte-level BPE (`gpt2`) or SentencePiece BPE (`llama`).
    #[error("the language model {file} has a `{kind}` tokenizer, which engram cannot build from the file (it builds byte-level BPE, as in SmolLM2, Llama 3 and Qwen files, and SentencePiece BPE, as in Gemma and Llama 2 files): configure another model")]
    UnsupportedTokenizer { file: PathBuf, kind: String },
    #[error("generation failed: {0}")]
    Run(String),
    /// An earlier load failed; its message, as it was.
    #[error("{0}")]
    Unavailable(String),
}

impl From<candle_core::Error> for LlmError {
    fn from(e: candle_core::Error) -> Self {
        LlmError::Run(e.to_string())
    }
}

enum Model {
    /// A dense llama-family model: the default, and the one that can weigh whole quotations.
    Dense(llama::Llama),
    /// A llama-family model with a mixture of experts.
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Model {
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Model::Dense(m) => m.forward(x, pos),
            Model::Llama(m) => m.forward(x, pos),
            Model::Qwen2(m) => m.forward(x, pos),
            Model::Qwen3(m) => m.forward(x, pos),
            Model::Gemma3(m) => m.forward(x, pos),
        }
    }

    fn clear(&mut self) {
        match self {
            Model::Dense(m) => m.clear(),
            Model::Llama(m) => m.clear_kv_cache(),
            Model::Qwen2(m) => m.clear_kv_cache(),
            Model::Qwen3(m) => m.clear_kv_cache(),
            // Its caches restart whenever a forward pass begins at position 0.
            Model::Gemma3(_) => {}
        }
    }
}

/// How the model expects a conversation to be laid out, read from its chat template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role … <|im_end|>`: SmolLM2, Qwen.
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|> … <|eot_id|>`: Llama 3.
    Llama3,
    /// `<start_of_turn>user … <end_of_turn>`: Gemma, which has no system role.
    Gemma,
}

impl ChatFormat {
    fn detect(template: Option<&str>, arch: &str) -> ChatFormat {
        match template {
            Some(t) if t.contains("<|start_header_id|>") => ChatFormat::Llama3,
            Some(t) if t.contains("<start_of_turn>") => ChatFormat::Gemma,
            Some(_) => ChatFormat::ChatMl,
            None if arch.starts_with("gemma") => ChatFormat::Gemma,
            None => ChatFormat::ChatMl,
        }
    }

    /// A system turn, example exchanges (user, assistant), then the user's turn, ending where
    /// the assistant's answer begins.
    pub fn prompt_with_examples(self, system: &str, examples: &[(&str, &str)], user: &str) -> String {
        let mut p = self.prompt(system, examples.first().map(|e| e.0).unwrap_or(user));
        let turn = |u: &str, a: &str| match self {
            ChatFormat::ChatMl => format!("{a}<|im_end|>\n<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n"),
            ChatFormat::Llama3 => format!(
                "{a}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{u}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            ChatFormat::Gemma => format!("{a}<end_of_turn>\n<start_of_turn>user\n{u}<end_of_turn>\n<start_of_turn>model\n"),
        };
        for (k, (_, answer)) in examples.iter().enumerate() {
            let next_user = examples.get(k + 1).map(|e| e.0).unwrap_or(user);
            p.push_str(&turn(next_user, answer));
        }
        p
    }

    /// One system and one user turn, ending where the assistant's answer begins.
    pub fn prompt(self, system: &str, user: &str) -> String {
        match self {
            ChatFormat::ChatMl => format!(
                "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
            ),
            ChatFormat::Llama3 => format!(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            ChatFormat::Gemma => {
                format!("<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n")
            }
        }
    }
}

/// What one generation did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    /// From the call to the first generated token (prompt processing included).
    pub first_token: Duration,
    pub total: Duration,
}

/// How likely a whole answer is, from [`Generator::weigh`].
#[derive(Debug, Clone, Copy)]
pub struct Weight {
    /// Of the answer's tokens and then of stopping.
    pub log_prob: f32,
    pub tokens: usize,
    pub prompt_tokens: usize,
    pub first_token: Duration,
}

pub struct Generator {
    model: Model,
    tokenizer: Tokenizer,
    stops: Vec<u32>,
    format: ChatFormat,
    window: usize,
    device: Device,
    /// Each token's bytes, built when copying is first asked for.
    token_bytes: Option<span::TokenBytes>,
}

/// The GGUF file `path` names: the path itself, or the one `.gguf` in a folder (preferring
/// engram's converted copy).
pub fn model_file(path: &Path) -> Result<PathBuf, LlmError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(LlmError::Missing(path.to_path_buf()));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| LlmError::Corrupt { file: path.to_path_buf(), why: e.to_string() })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf") && !p.to_string_lossy().ends_with(CONVERTED))
        .collect();
    found.sort();
    match found.len() {
        0 => Err(LlmError::Missing(path.join("*.gguf"))),
        1 => Ok(found.remove(0)),
        _ => Err(LlmError::Corrupt {
            file: path.to_path_buf(),
            why: format!("{} GGUF files; set models.generator to the one to use", found.len()),
        }),
    }
}

pub(crate) fn converted_path(src: &Path) -> PathBuf {
    let stem = src.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    src.with_file_name(format!("{stem}.{CONVERTED}"))
}

pub(crate) fn read_content(file: &Path) -> Result<(gguf_file::Content, BufReader<File>), LlmError> {
    let corrupt = |why: String| LlmError::Corrupt { file: file.to_path_buf(), why };
    let mut reader = BufReader::new(File::open(file).map_err(|e| corrupt(e.to_string()))?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| corrupt(e.to_string()))?;
    Ok((content, reader))
}

impl Generator {
    /// Loads the GGUF model at `path` (a file, or a folder holding one). A file candle would
    /// run slowly is converted to Q8_0 once, beside it; `on_convert` is told first.
    pub fn load(path: &Path, on_convert: &dyn Fn(&Path)) -> Result<Generator, LlmError> {
        let source = model_file(path)?;
        let (content, reader) = read_content(&source)?;
        // Refused before any conversion, which would only leave a useless copy behind.
        let kind = content.metadata.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned();
        if let Some(kind) = kind.clone().filter(|k| k != "gpt2" && k != "llama") {
            return Err(LlmError::UnsupportedTokenizer { file: source, kind });
        }
        let (file, content, mut reader) = if convert::needs_conversion(&content) {
            let fast = converted_path(&source);
            if !fast.is_file() {
                on_convert(&fast);
                drop(reader);
                convert::to_q8_0(&source, &fast)
                    .map_err(|e| LlmError::Corrupt { file: source.clone(), why: format!("converting to Q8_0: {e}") })?;
            }
            let (content, reader) = read_content(&fast)?;
            (fast, content, reader)
        } else {
            (source, content, reader)
        };
        let corrupt = |why: String| LlmError::Corrupt { file: file.clone(), why };
        let meta_str = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
        let arch = meta_str("general.architecture").unwrap_or_default();
        let template = meta_str("tokenizer.chat_template");
        let window = content
            .metadata
            .get(&format!("{arch}.context_length"))
            .and_then(|v| v.to_u32().ok())
            .map(|n| n as usize)
            .unwrap_or(2048);
        let device = Device::Cpu;
        let mut tokenizer = match kind.as_deref() {
            Some("llama") => spm::from_gguf(&content).map_err(|e| corrupt(format!("tokenizer: {e}")))?,
            _ => Tokenizer::from_gguf(&content).map_err(|e| corrupt(format!("tokenizer: {e}")))?,
        };
        if meta_str("tokenizer.ggml.pre").as_deref() == Some("smollm") {
            // candle does not know SmolLM's pre-tokenizer and falls back to one that puts a space
            // before the first word; SmolLM splits digits one by one, then maps bytes.
            let pre = Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]);
            tokenizer.with_pre_tokenizer(Some(pre));
        }
        let format = ChatFormat::detect(template.as_deref(), &arch);
        let mut stops: Vec<u32> = ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>", "</s>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if let Some(eos) = content.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
            stops.push(eos);
        }
        let (model, window) = match arch.as_str() {
            "llama" => match llama::Llama::from_gguf(&content, &mut reader, &device).map_err(|e| corrupt(e.to_string()))? {
                Some(m) => (Model::Dense(m), window.min(llama::MAX_SEQ_LEN)),
                None => (
                    Model::Llama(quantized_llama::ModelWeights::from_gguf(content, &mut reader, &device).map_err(|e| corrupt(e.to_string()))?),
                    window.min(quantized_llama::MAX_SEQ_LEN),
                ),
            },
            "qwen2" => (
                Model::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &device).map_err(|e| corrupt(e.to_string()))?),
                window,
            ),
            "qwen3" => (
                Model::Qwen3(quantized_qwen3::ModelWeights::from_gguf(content, &mut reader, &device).map_err(|e| corrupt(e.to_string()))?),
                window,
            ),
            "gemma3" => (
                Model::Gemma3(quantized_gemma3::ModelWeights::from_gguf(content, &mut reader, &device).map_err(|e| corrupt(e.to_string()))?),
                window,
            ),
            other => return Err(LlmError::Unsupported { file, arch: other.to_string() }),
        };
        Ok(Generator { model, tokenizer, stops, format, window, device, token_bytes: None })
    }

    pub fn format(&self) -> ChatFormat {
        self.format
    }

    /// Tokens the model can attend to: prompt and answer together.
    pub fn window(&self) -> usize {
        self.window
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| LlmError::Run(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.tokenizer.decode(ids, false).map_err(|e| LlmError::Run(e.to_string()))
    }

    /// Tokens in `text`, as the prompt will count them.
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).map(|t| t.len()).unwrap_or(text.len())
    }

    /// Continues `prompt` greedily until a stop token or `max_new` tokens, handing each piece of
    /// text to `on_text` as soon as it is whole (never half a UTF-8 character). The prompt is
    /// cut from the front if prompt and answer would not fit the window.
    pub fn generate(
        &mut self,
        prompt: &str,
        max_new: usize,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, LlmError> {
        let stops = self.stops.clone();
        self.run(prompt, max_new, on_text, &mut |logits, out| {
            let recent = &out[out.len().saturating_sub(REPEAT_WINDOW)..];
            let mut logits = logits.to_vec();
            for &t in recent {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l >= 0.0 { *l / REPEAT_PENALTY } else { *l * REPEAT_PENALTY };
                }
            }
            let next = argmax(&logits, None)?;
            (!stops.contains(&next)).then_some(next)
        })
    }

    /// Like [`Generator::generate`], but the model may only copy a run of whole words from one
    /// of `sources`, beginning where `may_start(source, byte)` allows: the answer is a
    /// quotation, never an invention. It stops at the end of a clause at the latest, or before a
    /// word `may_continue` refuses. Returns the generation and
    /// the indexes of the sources the answer appears in.
    pub fn copy_from(
        &mut self,
        prompt: &str,
        sources: &[&str],
        may_start: &dyn Fn(&str, usize) -> bool,
        may_continue: &dyn Fn(&str, usize) -> bool,
        max_new: usize,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<(Generation, Vec<usize>), LlmError> {
        let stops = self.stops.clone();
        // Taken out for the loop (which borrows the generator) and put back after.
        let tokens = self.token_bytes.take().unwrap_or_else(|| span::TokenBytes::new(&self.tokenizer));
        let mut copy = span::Copy::new(sources, may_start, may_continue);
        let generation = self.run(prompt, max_new, on_text, &mut |logits, _| {
            if copy.may_stop() && copy.at_clause_end() {
                return None;
            }
            let allowed = copy.allowed(&tokens);
            let best = argmax(logits, Some(&allowed));
            let stop = stops.iter().filter_map(|&t| logits.get(t as usize)).cloned().fold(f32::NEG_INFINITY, f32::max);
            match best {
                Some(id) if !(copy.may_stop() && stop >= logits[id as usize]) => {
                    copy.push(&tokens, id);
                    Some(id)
                }
                _ => None,
            }
        });
        let from = copy.from_sources();
        let text = copy.text();
        drop(copy);
        self.token_bytes = Some(tokens);
        let generation = generation?;
        Ok((Generation { text, ..generation }, from))
    }

    /// Runs the prompt, cut from the front if it and `room` more tokens would not fit the
    /// window. Returns the logits after it and its length in tokens; `None` for an empty prompt.
    fn feed(&mut self, prompt: &str, room: usize) -> Result<Option<(Tensor, usize)>, LlmError> {
        let mut tokens = self.encode(prompt)?;
        if tokens.len() + room > self.window {
            let cut = tokens.len() + room - self.window;
            tokens.drain(..cut);
        }
        self.model.clear();
        let mut logits = None;
        let mut pos = 0;
        for piece in tokens.chunks(PROMPT_STEP) {
            let input = Tensor::new(piece, &self.device)?.unsqueeze(0)?;
            logits = Some(self.model.forward(&input, pos)?);
            pos += piece.len();
        }
        Ok(logits.map(|l| (l, pos)))
    }

    /// Which of `answers` the model finds most likely as its whole reply to `prompt`: the
    /// probability of the answer's tokens and then of stopping. Greedy copying commits to the
    /// likeliest first token ("covered" of "covered with colloblasts") before it sees how the
    /// rest goes; weighing whole answers does not (BENCHMARKS.md). Returns the answer's index
    /// and what it took, or `None` when this model cannot weigh whole answers (only the dense
    /// llama family can) and the caller should decode instead.
    pub fn most_likely(&mut self, prompt: &str, answers: &[&str]) -> Result<Option<(usize, Generation)>, LlmError> {
        let started = Instant::now();
        let Some(weighed) = self.weigh(prompt, answers)? else { return Ok(None) };
        // The first of equals, as greedy decoding would keep.
        let best = weighed.iter().enumerate().filter_map(|(i, w)| w.map(|w| (i, w))).min_by(|a, b| b.1.log_prob.total_cmp(&a.1.log_prob));
        Ok(best.map(|(i, w)| {
            let generation = Generation {
                text: answers[i].to_string(),
                prompt_tokens: w.prompt_tokens,
                new_tokens: w.tokens,
                first_token: w.first_token,
                total: started.elapsed(),
            };
            (i, generation)
        }))
    }

    /// How likely the model finds each of `answers` as its whole reply to `prompt` (`None` for
    /// an answer with no tokens), or `None` when this model cannot weigh whole answers.
    pub fn weigh(&mut self, prompt: &str, answers: &[&str]) -> Result<Option<Vec<Option<Weight>>>, LlmError> {
        if !matches!(self.model, Model::Dense(_)) || answers.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let encoded: Vec<Vec<u32>> = answers.iter().map(|a| self.encode(a)).collect::<Result<_, _>>()?;
        let room = encoded.iter().map(Vec::len).max().unwrap_or(0) + 1;
        if room > self.window / 2 {
            return Ok(None);
        }
        let Some((last, pos)) = self.feed(prompt, room)? else { return Ok(None) };
        let first: Vec<f32> =
            candle_nn::ops::log_softmax(&last.squeeze(0)?.to_dtype(candle_core::DType::F32)?, candle_core::D::Minus1)?.to_vec1()?;
        let first_token = started.elapsed();
        let stops = self.stops.clone();
        let stop = |row: &[f32]| log_sum_exp(stops.iter().filter_map(|&t| row.get(t as usize).copied()));
        let Model::Dense(model) = &mut self.model else { return Ok(None) };
        // Longest first: a shorter answer whose tokens begin a longer one is read off its pass.
        let mut order: Vec<usize> = (0..answers.len()).filter(|&i| !encoded[i].is_empty()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));
        let mut scores: Vec<Option<Weight>> = vec![None; answers.len()];
        for &i in &order {
            if scores[i].is_some() {
                continue;
            }
            let tokens = &encoded[i];
            let rows: Vec<Vec<f32>> = model.log_probs_all(&Tensor::new(tokens.as_slice(), &self.device)?.unsqueeze(0)?, pos)?.to_vec2()?;
            model.truncate(pos)?;
            // Log-probability of the first k tokens, then of stopping after them.
            let mut prefix = vec![first[tokens[0] as usize]];
            for (k, &t) in tokens.iter().enumerate().skip(1) {
                prefix.push(prefix[k - 1] + rows[k - 1][t as usize]);
            }
            for &j in &order {
                let other = &encoded[j];
                if scores[j].is_none() && tokens.starts_with(other) {
                    let log_prob = prefix[other.len() - 1] + stop(&rows[other.len() - 1]);
                    scores[j] = Some(Weight { log_prob, tokens: other.len(), prompt_tokens: pos, first_token });
                }
            }
        }
        Ok(Some(scores))
    }

    /// The decoding loop: `choose` sees the logits and the tokens so far and picks the next
    /// token, or `None` to stop.
    fn run(
        &mut self,
        prompt: &str,
        max_new: usize,
        on_text: &mut dyn FnMut(&str),
        choose: &mut Choose,
    ) -> Result<Generation, LlmError> {
        let started = Instant::now();
        let max_new = max_new.min(self.window / 2);
        let Some((mut logits, mut pos)) = self.feed(prompt, max_new)? else {
            return Ok(Generation::default());
        };
        let prompt_tokens = pos;
        let mut out: Vec<u32> = Vec::new();
        let mut shown = 0; // bytes of the decoded answer already handed out
        let mut first_token = Duration::ZERO;
        for _ in 0..max_new {
            let l: Vec<f32> = logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
            if out.is_empty() {
                first_token = started.elapsed();
            }
            let Some(next) = choose(&l, &out) else { break };
            out.push(next);
            let text = self.tokenizer.decode(&out, true).map_err(|e| LlmError::Run(e.to_string()))?;
            if text.len() > shown && !text.ends_with('\u{FFFD}') && text.is_char_boundary(shown) {
                on_text(&text[shown..]);
                shown = text.len();
            }
            let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
            logits = self.model.forward(&input, pos)?;
            pos += 1;
        }
        let text = self.tokenizer.decode(&out, true).map_err(|e| LlmError::Run(e.to_string()))?;
        if text.len() > shown && text.is_char_boundary(shown) {
            on_text(&text[shown..]);
        }
        Ok(Generation { text, prompt_tokens, new_tokens: out.len(), first_token, total: started.elapsed() })
    }
}

fn log_sum_exp(xs: impl Iterator<Item = f32>) -> f32 {
    let xs: Vec<f32> = xs.collect();
    let max = xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f32>().ln()
}

/// The highest-scoring token, among `allowed` if given.
fn argmax(logits: &[f32], allowed: Option<&[u32]>) -> Option<u32> {
    let better = |best: Option<(u32, f32)>, id: u32, l: f32| if best.is_none_or(|(_, b)| l > b) { Some((id, l)) } else { best };
    let best = match allowed {
        Some(ids) => ids.iter().filter_map(|&id| logits.get(id as usize).map(|&l| (id, l))).fold(None, |b, (id, l)| better(b, id, l)),
        None => logits.iter().enumerate().fold(None, |b, (id, &l)| better(b, id as u32, l)),
    };
    best.map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_format_follows_the_template() {
        assert_eq!(ChatFormat::detect(Some("{% for m in messages %}<|im_start|>…"), "llama"), ChatFormat::ChatMl);
        assert_eq!(ChatFormat::detect(Some("<|start_header_id|>"), "llama"), ChatFormat::Llama3);
        assert_eq!(ChatFormat::detect(None, "gemma3"), ChatFormat::Gemma);
        let p = ChatFormat::ChatMl.prompt("Be brief.", "Hi");
        assert!(p.ends_with("<|im_start|>assistant\n"), "{p}");
    }

    #[test]
    fn missing_model_names_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = model_file(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("fetch-models.sh"), "{err}");
        let err = model_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("*.gguf"), "{err}");
    }

    #[test]
    fn an_unknown_tokenizer_kind_is_refused_by_name_before_any_conversion() {
        use candle_core::quantized::gguf_file::{self, Value};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gemma.gguf");
        let arch = Value::String("gemma3".into());
        let kind = Value::String("rwkv".into());
        let mut out = File::create(&f).unwrap();
        gguf_file::write(&mut out, &[("general.architecture", &arch), ("tokenizer.ggml.model", &kind)], &[]).unwrap();
        drop(out);
        let err = Generator::load(&f, &|_| panic!("no conversion")).err().expect("load fails").to_string();
        assert!(err.contains("gemma.gguf") && err.contains("`rwkv` tokenizer") && !err.contains("damaged"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written beside the model");
    }

    #[test]
    fn a_file_that_is_not_gguf_is_called_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.gguf");
        std::fs::write(&f, b"not a model at all").unwrap();
        let err = Generator::load(&f, &|_| {}).err().expect("load fails").to_string();
        assert!(err.contains("damaged") && err.contains("m.gguf"), "{err}");
    }
}
