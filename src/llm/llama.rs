//! A dense llama-family model (SmolLM2, Llama, Mistral, TinyLlama) whose decoding can branch:
//! it returns the logits of every position it is given, and its attention cache can be cut
//! back to a shorter prefix. Choosing the most likely quotation needs both (see
//! [`crate::llm::Generator::most_likely`]); candle-transformers' `quantized_llama` gives only
//! the last position and can only clear its cache.
//!
//! Adapted from candle-transformers 0.11.1 `models/quantized_llama.rs` (MIT or Apache-2.0):
//! the same weights, rotary tables and masks, without the GGML loader, the mixture of experts
//! (a file with experts is left to candle's model), the rotary layout of other architectures
//! (only `llama` files come here) and the tracing spans.

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;
use candle_transformers::utils::{build_causal_mask, repeat_kv};

pub const MAX_SEQ_LEN: usize = 4096;

#[derive(Debug, Clone)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    attention_norm: RmsNorm,
    gate: QMatMul,
    down: QMatMul,
    up: QMatMul,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
    kv_cache: Option<(Tensor, Tensor)>,
}

impl Layer {
    fn rotate(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, _, seq_len, _) = x.dims4()?;
        let cos = self.cos.narrow(0, pos, seq_len)?;
        let sin = self.sin.narrow(0, pos, seq_len)?;
        // Llama pairs rotary dimensions (2i, 2i + 1); only `llama` files come here.
        candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
    }

    fn attention(&mut self, x: &Tensor, mask: Option<&Tensor>, pos: usize) -> Result<Tensor> {
        let (b, seq_len, n_embd) = x.dims3()?;
        let heads = |t: Tensor, n: usize| t.reshape((b, seq_len, n, self.head_dim))?.transpose(1, 2);
        let q = heads(self.wq.forward(x)?, self.n_head)?;
        let k = heads(self.wk.forward(x)?, self.n_kv_head)?;
        let v = heads(self.wv.forward(x)?, self.n_kv_head)?.contiguous()?;
        let q = self.rotate(&q, pos)?;
        let k = self.rotate(&k, pos)?;
        let (k, v) = match &self.kv_cache {
            Some((kc, vc)) if pos > 0 => (Tensor::cat(&[kc, &k], 2)?, Tensor::cat(&[vc, &v], 2)?),
            _ => (k, v),
        };
        self.kv_cache = Some((k.clone(), v.clone()));
        let k = repeat_kv(k, self.n_head / self.n_kv_head)?;
        let v = repeat_kv(v, self.n_head / self.n_kv_head)?;
        let att = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let att = match mask {
            None => att,
            Some(mask) => {
                let neg_inf = Tensor::new(f32::NEG_INFINITY, att.device())?.broadcast_as(att.shape())?;
                mask.broadcast_as(att.shape())?.where_cond(&neg_inf, &att)?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v.contiguous()?)?;
        self.wo.forward(&y.transpose(1, 2)?.reshape((b, seq_len, n_embd))?)
    }

    fn forward(&mut self, x: &Tensor, mask: Option<&Tensor>, pos: usize) -> Result<Tensor> {
        let h = (self.attention(&self.attention_norm.forward(x)?, mask, pos)? + x)?;
        let n = self.ffn_norm.forward(&h)?;
        let mlp = self.down.forward(&(candle_nn::ops::silu(&self.gate.forward(&n)?)? * self.up.forward(&n)?)?)?;
        mlp + h
    }

    /// Keeps the cache's first `len` positions.
    fn truncate(&mut self, len: usize) -> Result<()> {
        if let Some((k, v)) = &self.kv_cache {
            let keep = len.min(k.dim(2)?);
            self.kv_cache = if keep == 0 { None } else { Some((k.narrow(2, 0, keep)?, v.narrow(2, 0, keep)?)) };
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Llama {
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
}

fn rotary_tables(head_dim: usize, base: f32, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..head_dim).step_by(2).map(|i| 1f32 / base.powf(i as f32 / head_dim as f32)).collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let angles = Tensor::arange(0, MAX_SEQ_LEN as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_SEQ_LEN, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

impl Llama {
    /// `None` for a file with a mixture of experts, which this model does not run.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Option<Llama>> {
        let get = |s: &str| match ct.metadata.get(s) {
            None => candle_core::bail!("cannot find {s} in metadata"),
            Some(v) => Ok(v),
        };
        if get("llama.expert_count").and_then(|v| v.to_u32()).unwrap_or(0) > 1 {
            return Ok(None);
        }
        let n_head = get("llama.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = get("llama.attention.head_count_kv")?.to_u32()? as usize;
        let blocks = get("llama.block_count")?.to_u32()? as usize;
        let n_embd = get("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = get("llama.rope.dimension_count")?.to_u32()? as usize;
        let eps = get("llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let base = get("llama.rope.freq_base").and_then(|m| m.to_f32()).unwrap_or(10000.0);
        let (cos, sin) = rotary_tables(rope_dim, base, device)?;
        let mut tensor = |name: &str| ct.tensor(reader, name, device);
        let embeddings_q = tensor("token_embd.weight")?;
        let embeddings = Embedding::new(embeddings_q.dequantize(device)?, n_embd);
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let output = match tensor("output.weight") {
            Ok(t) => t,
            Err(_) => embeddings_q,
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut q = |part: &str| QMatMul::from_qtensor(tensor(&format!("blk.{i}.{part}.weight"))?);
            let (wq, wk, wv, wo) = (q("attn_q")?, q("attn_k")?, q("attn_v")?, q("attn_output")?);
            let (gate, down, up) = (q("ffn_gate")?, q("ffn_down")?, q("ffn_up")?);
            let attention_norm = RmsNorm::from_qtensor(tensor(&format!("blk.{i}.attn_norm.weight"))?, eps)?;
            let ffn_norm = RmsNorm::from_qtensor(tensor(&format!("blk.{i}.ffn_norm.weight"))?, eps)?;
            layers.push(Layer {
                wq,
                wk,
                wv,
                wo,
                attention_norm,
                gate,
                down,
                up,
                ffn_norm,
                n_head,
                n_kv_head,
                head_dim: n_embd / n_head,
                cos: cos.clone(),
                sin: sin.clone(),
                kv_cache: None,
            });
        }
        Ok(Some(Llama { embeddings, layers, norm, output: QMatMul::from_qtensor(output)? }))
    }

    /// The final hidden states of `x` (batch 1), which continues the cached positions from `pos`.
    fn hidden(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, seq_len) = x.dims2()?;
        let mask = if seq_len == 1 { None } else { Some(build_causal_mask(seq_len, pos, x.device())?) };
        let mut h = self.embeddings.forward(x)?;
        for layer in &mut self.layers {
            h = layer.forward(&h, mask.as_ref(), pos)?;
        }
        self.norm.forward(&h)
    }

    /// Logits after the last token of `x`.
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let h = self.hidden(x, pos)?;
        let last = h.dim(1)? - 1;
        self.output.forward(&h.i((.., last, ..))?)
    }

    /// Log-probabilities after each token of `x`: `[seq_len, vocab]`.
    pub fn log_probs_all(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let h = self.hidden(x, pos)?.squeeze(0)?;
        candle_nn::ops::log_softmax(&self.output.forward(&h)?.to_dtype(DType::F32)?, D::Minus1)
    }

    /// Forgets every cached position from `len` on.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        self.layers.iter_mut().try_for_each(|l| l.truncate(len))
    }

    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            layer.kv_cache = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_transformers::models::quantized_llama::ModelWeights;

    /// The packaged SmolLM2 file (the converted copy scripts/fetch-models.sh leaves beside it).
    fn content() -> (gguf_file::Content, std::io::BufReader<std::fs::File>) {
        let dir = crate::models::models_dir().join(crate::models::DEFAULT_GENERATOR);
        let source = crate::llm::model_file(&dir).unwrap_or_else(|e| panic!("{e}"));
        let fast = crate::llm::converted_path(&source);
        crate::llm::read_content(if fast.is_file() { &fast } else { &source }).unwrap_or_else(|e| panic!("{e}"))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn it_computes_what_candles_model_does_and_branches_back() {
        let dev = Device::Cpu;
        let (ct, mut reader) = content();
        let mut ours = Llama::from_gguf(&ct, &mut reader, &dev).unwrap().expect("SmolLM2 is dense");
        let (ct, mut reader) = content();
        let mut theirs = ModelWeights::from_gguf(ct, &mut reader, &dev).unwrap();
        let prompt: Vec<u32> = (100..140).collect();
        let x = Tensor::new(prompt.as_slice(), &dev).unwrap().unsqueeze(0).unwrap();
        let a = ours.forward(&x, 0).unwrap();
        assert!(max_diff(&a, &theirs.forward(&x, 0).unwrap()) < 1e-3);
        // Every position of a continuation at once, against candle one token at a time.
        let more = [7u32, 2000, 31];
        let all = ours.log_probs_all(&Tensor::new(&more[..], &dev).unwrap().unsqueeze(0).unwrap(), prompt.len()).unwrap();
        for (k, &t) in more.iter().enumerate() {
            let one = theirs.forward(&Tensor::new(&[t], &dev).unwrap().unsqueeze(0).unwrap(), prompt.len() + k).unwrap();
            let one = candle_nn::ops::log_softmax(&one.squeeze(0).unwrap(), D::Minus1).unwrap();
            assert!(max_diff(&all.get(k).unwrap(), &one) < 1e-3, "position {k}");
        }
        // Cut back to the prompt, another continuation reads as if the first never happened.
        ours.truncate(prompt.len()).unwrap();
        let again = ours.log_probs_all(&Tensor::new(&more[..], &dev).unwrap().unsqueeze(0).unwrap(), prompt.len()).unwrap();
        assert!(max_diff(&all, &again) < 1e-5);
    }
}
