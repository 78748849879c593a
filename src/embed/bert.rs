//! The BERT encoder, written out on candle's tensor ops for speed on a CPU.
//!
//! Same weights and the same arithmetic as candle-transformers' `BertModel` (the reference
//! vectors test holds it to cosine ≥ 0.9999 against sentence-transformers), with changes
//! measured in BENCHMARKS.md (Embedding speed): query, key and value are one matrix product
//! instead of three; the attention mask is skipped when a batch has no padding (engram embeds
//! chunk-sized texts one at a time); biases, residuals and the GELU are applied in place on the
//! calling thread, where candle would allocate a new tensor and hand large ones to its shared
//! thread pool (which the embedder's per-core workers would then queue for); and the exact
//! GELU uses a rational approximation of erf that vectorises, where candle calls a scalar
//! `erf` for every element. Where the CPU has AMX, dense layers run on its bf16 tiles
//! ([`super::amx`]). The weights are laid out for this pass once and kept ([`super::weights`]);
//! dense matrices and the word table are read where they lie, not copied into tensors.

use candle_core::{CpuStorage, CustomOp1, DType, Device, InplaceOp1, InplaceOp2, Layout, Module, Result, Shape, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

pub struct Bert {
    words: Words,
    positions: Embedding,
    /// Row 0 of the token-type table: engram never sends a second segment.
    segment: Tensor,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    act: HiddenAct,
}

use super::amx;
use super::pack::Q4Rows;
use super::weights::{Matrix, Weights};

/// The word table: f32 rows laid out with the other weights, or 4-bit rows expanded on lookup
/// (see [`super::pack`]).
pub enum Words {
    Rows(Matrix),
    Q4(Q4Rows),
}

impl Words {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let flat = ids.flatten_all()?.to_vec1::<u32>()?;
        let (values, cols) = match self {
            Words::Rows(table) => {
                let mut values = Vec::with_capacity(flat.len() * table.cols());
                for &id in &flat {
                    let row = table.row(id as usize);
                    values.extend_from_slice(row.ok_or_else(|| candle_core::Error::Msg(format!("token id {id} is past the word table's {} rows", table.rows())))?);
                }
                (values, table.cols())
            }
            Words::Q4(rows) => (rows.lookup(&flat).map_err(candle_core::Error::msg)?, rows.cols()),
        };
        Tensor::from_vec(values, (batch, len, cols), ids.device())
    }
}

/// A dense layer.
struct Linear {
    weight: Weight,
    bias: Tensor,
}

enum Weight {
    /// `[in, out]`, row-major: a product with a stored `[out, in]` transposed made gemm
    /// repack the whole matrix on every call, which cost a short query half its time
    /// (9.1 → 4.9 ms).
    F32(Matrix),
    Tiles(amx::Packed),
}

impl Linear {
    /// The layer laid out as `{name}.weight` (`[in, out]`) and `{name}.bias`; with `tiles`
    /// (only when [`amx::available`]), its products run on AMX.
    fn from(weights: &Weights, name: &str, tiles: bool, device: &Device) -> Result<Linear> {
        let weight = weights.matrix(&format!("{name}.weight"))?;
        let bias = weights.tensor(&format!("{name}.bias"), device)?;
        if tiles && amx::available() {
            if let Some(tiles) = amx::Packed::new(weight.data(), weight.rows(), weight.cols()) {
                return Ok(Linear { weight: Weight::Tiles(tiles), bias });
            }
        }
        Ok(Linear { weight: Weight::F32(weight), bias })
    }

    /// `x · weight + bias`, plus `residual` when given, on `x` of `[batch, tokens, in]`.
    fn forward(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let x = x.contiguous()?;
        let y = match &self.weight {
            Weight::F32(w) => x.apply_op1_no_bwd(&Product(w))?,
            Weight::Tiles(tiles) => x.apply_op1_no_bwd(&Dense(tiles))?,
        };
        y.inplace_op2(&self.bias, &Add)?;
        if let Some(r) = residual {
            y.inplace_op2(r, &Add)?;
        }
        Ok(y)
    }
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Bert {
    /// The tensors [`Bert::from_weights`] reads, made from a checkpoint in `vb` (found at the
    /// top level or under `bert.` / `{model_type}.`); the word table too when `words`.
    pub fn lay_out(vb: VarBuilder, config: &Config, words: bool) -> Result<Vec<(String, Tensor)>> {
        let prefixes = [None, Some("bert")].into_iter().chain(config.model_type.as_deref().map(Some));
        let mut first_err = None;
        for prefix in prefixes {
            let vb = match prefix {
                Some(p) => vb.pp(p),
                None => vb.clone(),
            };
            match Bert::lay_out_at(vb, config, words) {
                Ok(tensors) => return Ok(tensors),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.expect("at least one prefix was tried"))
    }

    fn lay_out_at(vb: VarBuilder, c: &Config, words: bool) -> Result<Vec<(String, Tensor)>> {
        let (h, ff) = (c.hidden_size, c.intermediate_size);
        let mut out: Vec<(String, Tensor)> = Vec::new();
        let e = vb.pp("embeddings");
        if words {
            out.push(("words".into(), e.pp("word_embeddings").get((c.vocab_size, h), "weight")?));
        }
        out.push(("positions".into(), e.pp("position_embeddings").get((c.max_position_embeddings, h), "weight")?));
        // Row 0 of the token-type table: engram never sends a second segment.
        out.push(("segment".into(), e.pp("token_type_embeddings").get((c.type_vocab_size, h), "weight")?.get(0)?));
        let norm = |out: &mut Vec<(String, Tensor)>, name: String, vb: VarBuilder| -> Result<()> {
            out.push((format!("{name}.weight"), vb.get(h, "weight")?));
            out.push((format!("{name}.bias"), vb.get(h, "bias")?));
            Ok(())
        };
        // Dense weights are stored `[out, in]` and laid out `[in, out]`.
        let dense = |out: &mut Vec<(String, Tensor)>, name: String, w: Tensor, b: Tensor| -> Result<()> {
            out.push((format!("{name}.weight"), w.t()?.contiguous()?));
            out.push((format!("{name}.bias"), b));
            Ok(())
        };
        norm(&mut out, "norm".into(), e.pp("LayerNorm"))?;
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let s = a.pp("self");
            let part = |name: &str| -> Result<(Tensor, Tensor)> {
                let p = s.pp(name);
                Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
            };
            // Scores are q·k/√d: scale the query weights once here instead of q every time.
            let scale = 1.0 / ((h / c.num_attention_heads) as f64).sqrt();
            let q = part("query")?;
            let q = ((q.0 * scale)?, (q.1 * scale)?);
            let (k, v) = (part("key")?, part("value")?);
            dense(&mut out, format!("{i}.qkv"), Tensor::cat(&[&q.0, &k.0, &v.0], 0)?, Tensor::cat(&[&q.1, &k.1, &v.1], 0)?)?;
            let get = |vb: VarBuilder, outputs: usize, inputs: usize| -> Result<(Tensor, Tensor)> {
                Ok((vb.get((outputs, inputs), "weight")?, vb.get(outputs, "bias")?))
            };
            let (w, b) = get(a.pp("output").pp("dense"), h, h)?;
            dense(&mut out, format!("{i}.attention_out"), w, b)?;
            norm(&mut out, format!("{i}.attention_norm"), a.pp("output").pp("LayerNorm"))?;
            let (w, b) = get(l.pp("intermediate").pp("dense"), ff, h)?;
            dense(&mut out, format!("{i}.intermediate"), w, b)?;
            let (w, b) = get(l.pp("output").pp("dense"), h, ff)?;
            dense(&mut out, format!("{i}.output"), w, b)?;
            norm(&mut out, format!("{i}.output_norm"), l.pp("output").pp("LayerNorm"))?;
        }
        Ok(out)
    }

    /// The model from weights laid out by [`Bert::lay_out`], large matrices used where they are;
    /// dense layers on AMX tiles when `tiles` and the CPU has them. `words` is the word table
    /// when the weights do not hold it.
    pub fn from_weights(w: &Weights, c: &Config, tiles: bool, words: Option<Words>) -> Result<Bert> {
        let device = Device::Cpu;
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let norm = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm::new(w.tensor(&format!("{name}.weight"), &device)?, w.tensor(&format!("{name}.bias"), &device)?, eps))
        };
        let words = match words {
            Some(words) => words,
            None => Words::Rows(w.matrix("words")?),
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                Ok(Layer {
                    qkv: Linear::from(w, &format!("{i}.qkv"), tiles, &device)?,
                    attention_out: Linear::from(w, &format!("{i}.attention_out"), tiles, &device)?,
                    attention_norm: norm(&format!("{i}.attention_norm"))?,
                    intermediate: Linear::from(w, &format!("{i}.intermediate"), tiles, &device)?,
                    output: Linear::from(w, &format!("{i}.output"), tiles, &device)?,
                    output_norm: norm(&format!("{i}.output_norm"))?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Bert {
            words,
            positions: Embedding::new(w.tensor("positions", &device)?, h),
            segment: w.tensor("segment", &device)?,
            norm: norm("norm")?,
            layers,
            heads: c.num_attention_heads,
            act: c.hidden_act,
        })
    }

    /// Hidden states `[batch, tokens, hidden]` for `ids` `[batch, tokens]`; `mask` (1 for a real
    /// token, 0 for padding) may be left out when no input is padded.
    pub fn forward(&self, ids: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = self.words.forward(ids)?.broadcast_add(&self.positions.forward(&positions)?)?;
        let mut x = self.norm.forward(&x.broadcast_add(&self.segment)?)?;
        // Padding gets a large negative score, so softmax gives it no weight.
        let bias = match mask {
            Some(m) => Some(((m.to_dtype(DType::F32)? - 1.0)? * 1e30)?.reshape((batch, len))?),
            None => None,
        };
        for layer in &self.layers {
            x = self.layer(layer, &x, bias.as_ref())?;
        }
        Ok(x)
    }

    fn layer(&self, l: &Layer, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (batch, len, hidden) = x.dims3()?;
        let head = hidden / self.heads;
        let qkv = l.qkv.forward(x, None)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * hidden, hidden)?.reshape((batch, len, self.heads, head))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = q.matmul(&k.t()?)?;
        match bias {
            Some(bias) => scores.inplace_op2(bias, &Softmax)?,
            None => scores.inplace_op1(&Softmax)?,
        }
        let context = scores.matmul(&v)?;
        let context = context.transpose(1, 2)?.reshape((batch, len, hidden))?;
        let attended = l.attention_norm.forward(&l.attention_out.forward(&context, Some(x))?)?;
        let inner = l.intermediate.forward(&attended, None)?;
        let inner = match self.act {
            HiddenAct::Gelu => {
                inner.inplace_op1(&Gelu)?;
                inner
            }
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        l.output_norm.forward(&l.output.forward(&inner, Some(&attended))?)
    }
}

/// Mean of the hidden states over real tokens, scaled to unit length: one row per input.
pub fn pool(hidden: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let mean = match mask {
        Some(mask) => {
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
            hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&counts)?
        }
        None => hidden.mean(1)?,
    };
    let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norm)
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&data[start..end]),
        _ => candle_core::bail!("{op} takes a contiguous f32 tensor"),
    }
}

fn f32_slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, op: &str) -> Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((start, end))) => Ok(&mut data[start..end]),
        _ => candle_core::bail!("{op} takes a contiguous f32 tensor"),
    }
}

/// `x · w` on AMX tiles, for `x` of `[.., in]`.
struct Dense<'a>(&'a amx::Packed);

impl CustomOp1 for Dense<'_> {
    fn name(&self) -> &'static str {
        "dense-amx"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let mut dims = layout.dims().to_vec();
        let rows = dims[..dims.len() - 1].iter().product();
        *dims.last_mut().expect("a dense layer's input has dimensions") = self.0.n();
        Ok((CpuStorage::F32(self.0.matmul(x, rows)), Shape::from(dims)))
    }
}

/// `x · w` in f32 (gemm), for `x` of `[.., in]` and `w` of `[in, out]` used where it lies.
/// Split across the threads of the pool it runs in: every core for one query, one for each
/// of the per-core workers that embed chunks.
struct Product<'a>(&'a Matrix);

impl CustomOp1 for Product<'_> {
    fn name(&self) -> &'static str {
        "dense-f32"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        let (k, n) = (self.0.rows(), self.0.cols());
        let mut dims = layout.dims().to_vec();
        if dims.last() != Some(&k) {
            candle_core::bail!("dense-f32: input {dims:?} against a [{k}, {n}] matrix");
        }
        let m = x.len() / k;
        *dims.last_mut().expect("checked above") = n;
        let mut y = vec![0f32; m * n];
        let threads = rayon::current_num_threads();
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        let w = self.0.data();
        // SAFETY: row-major x [m, k], w [k, n] and y [m, n], with the lengths checked above and
        // the strides they imply; y is not read (alpha 0, read_dst false).
        unsafe {
            gemm::gemm(m, n, k, y.as_mut_ptr(), 1, n as isize, false, x.as_ptr(), 1, k as isize, w.as_ptr(), 1, n as isize, 0.0, 1.0, false, false, false, parallelism);
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }
}

/// `a += b`, where `b` has `a`'s shape or is one row repeated along `a`'s last dimension.
struct Add;

impl InplaceOp2 for Add {
    fn name(&self) -> &'static str {
        "add-in-place"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let b = f32_slice(s2, l2, self.name())?;
        let a = f32_slice_mut(s1, l1, self.name())?;
        let last = l1.dims().last().copied().unwrap_or(1);
        if b.is_empty() || (b.len() != a.len() && b.len() != last) {
            candle_core::bail!("add-in-place: {:?} and {:?} do not fit", l1.dims(), l2.dims());
        }
        simd!(add_rows(a, b));
        Ok(())
    }
}

/// The exact GELU, x·Φ(x), on f32 with [`erf`].
struct Gelu;

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf-rational"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let xs = f32_slice_mut(storage, layout, self.name())?;
        simd!(gelu(xs));
        Ok(())
    }
}

/// Softmax along the last dimension of attention scores `[batch, heads, tokens, tokens]`, in
/// place; with a second input `[batch, tokens]` added to each row of its batch first (the
/// padding mask).
struct Softmax;

impl Softmax {
    fn run(scores: &mut [f32], dims: &[usize], bias: Option<&[f32]>) -> Result<()> {
        let [batch, heads, rows, len] = dims else { candle_core::bail!("softmax takes [batch, heads, tokens, tokens], not {dims:?}") };
        if bias.is_some_and(|b| b.len() != batch * len) {
            candle_core::bail!("softmax: the mask does not fit {dims:?}");
        }
        for (i, row) in scores.chunks_exact_mut(*len).enumerate() {
            let bias = bias.map(|b| &b[i / (heads * rows) * len..][..*len]);
            simd!(softmax_row(row, bias));
        }
        Ok(())
    }
}

impl InplaceOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let scores = f32_slice_mut(storage, layout, "softmax-in-place")?;
        Softmax::run(scores, layout.dims(), None)
    }
}

impl InplaceOp2 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-in-place"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let bias = f32_slice(s2, l2, "softmax-in-place")?;
        Softmax::run(f32_slice_mut(s1, l1, "softmax-in-place")?, l1.dims(), Some(bias))
    }
}

#[inline(always)]
fn softmax_row(row: &mut [f32], bias: Option<&[f32]>) {
    if let Some(bias) = bias {
        add_rows(row, bias);
    }
    // Sixteen running maxima and sums, so the loops vectorise without reordering floats.
    let mut top = [f32::MIN; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            top[i] = if c[i] > top[i] { c[i] } else { top[i] };
        }
    }
    let max = chunks.remainder().iter().chain(&top).fold(f32::MIN, |m, &x| if x > m { x } else { m });
    let mut sums = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for i in 0..16 {
            c[i] = exp(c[i] - max);
            sums[i] += c[i];
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        sum += *x;
    }
    let scale = 1.0 / sum;
    for x in row {
        *x *= scale;
    }
}

/// eˣ for f32 (Cephes' polynomial, within 2 units in the last place), 0 below -87.3; written
/// so the compiler vectorises it, where the C library's `expf` is called once per element.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants, as published
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding and subtracting it rounds to an integer
    let tiny = x < -87.3;
    let x = if x > 88.7 { 88.7 } else if tiny { -87.3 } else { x };
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if tiny { 0.0 } else { e * two_n }
}

/// Calls `f(args)` compiled for AVX-512 when the CPU has it (the build targets plain x86-64,
/// where these loops vectorise only 4 wide), else as built.
macro_rules! simd {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide(f: impl FnOnce()) {
                f()
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU was just found to have the features `wide` is compiled for.
                unsafe { wide(|| $f($($arg),*)) }
            } else {
                $f($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        $f($($arg),*)
    }};
}
use simd;

#[inline(always)]
fn add_rows(a: &mut [f32], b: &[f32]) {
    for row in a.chunks_exact_mut(b.len()) {
        for (x, y) in row.iter_mut().zip(b) {
            *x += y;
        }
    }
}

#[inline(always)]
fn gelu(xs: &mut [f32]) {
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf for f32 as a rational function of x (the approximation Eigen and XLA use), good to a few
/// units in the last place on [-4, 4] and exactly ±1 beyond, in plain arithmetic the compiler
/// vectorises.
#[inline(always)]
#[allow(clippy::manual_clamp)] // f32::clamp's NaN checks keep the loop from vectorising
pub fn erf(x: f32) -> f32 {
    let x = if x > 4.0 {
        4.0
    } else if x < -4.0 {
        -4.0
    } else {
        x
    };
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_1e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_3e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_the_exact_function() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst < 1e-6, "worst error {worst}");
    }

    #[test]
    fn exp_matches_the_exact_function() {
        for i in -9000..=8800 {
            let x = i as f32 / 100.0;
            let (ours, exact) = (exp(x) as f64, (x as f64).exp());
            assert!((ours - exact).abs() <= exact * 1e-6 + 1e-37, "exp({x}) = {ours}, not {exact}");
        }
        assert_eq!(exp(-1e30), 0.0);
    }

    #[test]
    fn softmax_matches_candle_with_and_without_a_mask() {
        let dev = candle_core::Device::Cpu;
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 5, 37), &dev).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let ours = scores.copy().unwrap();
        ours.inplace_op1(&Softmax).unwrap();
        let diff = (ours - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        // The second text of the batch has two padding tokens at the end: they get no weight.
        let mut mask = vec![0f32; 2 * 37];
        mask[2 * 37 - 2..].fill(-1e30);
        let masked = scores.copy().unwrap();
        masked.inplace_op2(&Tensor::from_vec(mask, (2, 37), &dev).unwrap(), &Softmax).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&scores.narrow(3, 0, 35).unwrap().contiguous().unwrap()).unwrap();
        let got = masked.narrow(3, 0, 35).unwrap();
        let diff = (got.narrow(0, 1, 1).unwrap() - want.narrow(0, 1, 1).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        assert_eq!(masked.narrow(0, 1, 1).unwrap().narrow(3, 35, 2).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn add_in_place_by_row_and_whole() {
        let dev = candle_core::Device::Cpu;
        let a = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
        a.inplace_op2(&Tensor::new(&[10f32, 20.0, 30.0], &dev).unwrap(), &Add).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), vec![vec![11.0, 22.0, 33.0], vec![14.0, 25.0, 36.0]]);
        a.inplace_op2(&a.ones_like().unwrap(), &Add).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), vec![vec![12.0, 23.0, 34.0], vec![15.0, 26.0, 37.0]]);
        assert!(a.inplace_op2(&Tensor::new(&[1f32, 2.0], &dev).unwrap(), &Add).is_err());
    }

    #[test]
    fn gelu_matches_candle() {
        let x = Tensor::arange(-400i64, 400, &candle_core::Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
        let x = (x / 50.0).unwrap();
        let theirs = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        x.inplace_op1(&Gelu).unwrap();
        let ours = x.to_vec1::<f32>().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
