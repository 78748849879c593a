//! A SentencePiece BPE tokenizer built from a GGUF file's metadata (`tokenizer.ggml.model =
//! llama`: Gemma, Llama 2 and their kin), which candle cannot build.
//!
//! SentencePiece BPE merges, again and again, the adjacent pair of pieces whose join is the
//! vocabulary piece with the highest score. That is a Hugging Face BPE whose merges are every
//! split of every piece into two pieces, ranked by the joined piece's score, as Hugging Face's
//! own converter writes them. Spaces become ▁ (after a leading one where the file says so),
//! unknown bytes fall back to the `<0xHH>` pieces, and the file's control and user-defined
//! tokens (`<bos>`, `<start_of_turn>` …) are matched whole in the text.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, DecoderWrapper, Tokenizer};

fn get<'a>(ct: &'a Content, key: &str) -> Result<&'a Value, String> {
    ct.metadata.get(key).ok_or_else(|| format!("{key} is missing"))
}

fn array<'a>(ct: &'a Content, key: &str) -> Result<&'a Vec<Value>, String> {
    get(ct, key)?.to_vec().map_err(|e| format!("{key}: {e}"))
}

/// The tokenizer of a file whose `tokenizer.ggml.model` is `llama`.
pub fn from_gguf(ct: &Content) -> Result<Tokenizer, String> {
    let tokens: Vec<String> = array(ct, "tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let scores: Vec<f32> = array(ct, "tokenizer.ggml.scores")?.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect();
    let types: Vec<u32> = array(ct, "tokenizer.ggml.token_type")?.iter().map(|v| v.to_i32().map_or(1, |t| t as u32)).collect();
    if scores.len() != tokens.len() || types.len() != tokens.len() {
        return Err("the tokenizer's pieces, scores and types differ in number".into());
    }
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    let mut merges: Vec<(f32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types[id] != 1 || piece.chars().nth(1).is_none() {
            continue;
        }
        for (at, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(at);
            if vocab.contains_key(a) && vocab.contains_key(b) {
                merges.push((scores[id], id as u32, a.to_string(), b.to_string()));
            }
        }
    }
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let merges: Vec<(String, String)> = merges.into_iter().map(|(_, _, a, b)| (a, b)).collect();
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true);
    let unk = get(ct, "tokenizer.ggml.unknown_token_id").ok().and_then(|v| v.to_u32().ok());
    if let Some(token) = unk.and_then(|id| tokens.get(id as usize)) {
        builder = builder.unk_token(token.clone()).fuse_unk(true);
    }
    let bpe = builder.build().map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    let prefix = get(ct, "tokenizer.ggml.add_space_prefix").ok().and_then(|v| v.to_bool().ok()).unwrap_or(true);
    // Spaces become ▁; the leading one goes only before the very start of the text, not after
    // each control token (`<start_of_turn>user` stays one word).
    let scheme = if prefix { PrependScheme::First } else { PrependScheme::Never };
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', scheme, false)));
    let mut decoders: Vec<DecoderWrapper> =
        vec![Replace::new("▁", " ").map_err(|e| e.to_string())?.into(), ByteFallback::new().into(), Fuse::new().into()];
    if prefix {
        // After Fuse the answer is one string: this drops the leading space the mark added.
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| matches!(t, 3 | 4))
        .map(|(tok, _)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small SentencePiece vocabulary written to a GGUF file and read back, as a model's is.
    fn tokenizer(prefix: bool) -> Tokenizer {
        let mut pieces: Vec<(String, f32, i32)> = vec![("<pad>".into(), 0.0, 3), ("<eos>".into(), 0.0, 3), ("<bos>".into(), 0.0, 3), ("<unk>".into(), 0.0, 2)];
        pieces.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
        pieces.push(("<start_of_turn>".into(), 0.0, 4));
        let normal = ["▁", "h", "e", "l", "o", "w", "r", "d", "1", "2", "he", "ll", "hell", "hello", "▁hello", "▁w", "or", "▁wor", "ld", "▁world", "12"];
        for (k, p) in normal.iter().enumerate() {
            pieces.push((p.to_string(), -(k as f32), 1));
        }
        let arr = |f: &dyn Fn(&(String, f32, i32)) -> Value| Value::Array(pieces.iter().map(f).collect());
        let tokens = arr(&|p| Value::String(p.0.clone()));
        let scores = arr(&|p| Value::F32(p.1));
        let types = arr(&|p| Value::I32(p.2));
        let (model, unk, space) = (Value::String("llama".into()), Value::U32(3), Value::Bool(prefix));
        let meta: Vec<(&str, &Value)> = vec![
            ("tokenizer.ggml.model", &model),
            ("tokenizer.ggml.tokens", &tokens),
            ("tokenizer.ggml.scores", &scores),
            ("tokenizer.ggml.token_type", &types),
            ("tokenizer.ggml.unknown_token_id", &unk),
            ("tokenizer.ggml.add_space_prefix", &space),
        ];
        let mut bytes = std::io::Cursor::new(Vec::new());
        candle_core::quantized::gguf_file::write(&mut bytes, &meta, &[]).unwrap();
        bytes.set_position(0);
        from_gguf(&Content::read(&mut bytes).unwrap()).unwrap()
    }

    fn pieces(t: &Tokenizer, text: &str) -> Vec<String> {
        t.encode(text, false).unwrap().get_tokens().to_vec()
    }

    #[test]
    fn pieces_merge_by_score_and_spaces_become_marks() {
        let t = tokenizer(false);
        assert_eq!(pieces(&t, "hello world"), ["hello", "▁world"]);
        assert_eq!(pieces(&t, "<bos><start_of_turn>hello"), ["<bos>", "<start_of_turn>", "hello"]);
        let t = tokenizer(true);
        assert_eq!(pieces(&t, "hello world"), ["▁hello", "▁world"]);
    }

    #[test]
    fn decoding_gives_back_the_text_with_bytes_for_unknown_characters() {
        for prefix in [false, true] {
            let t = tokenizer(prefix);
            let spaced = if prefix { "two  spaces " } else { "  two  spaces " };
            for text in ["<start_of_turn>user\nhello world 12 + 21<end>", "租约 3 月到期 🎉", spaced] {
                let ids = t.encode(text, false).unwrap().get_ids().to_vec();
                assert_eq!(t.decode(&ids, false).unwrap(), text, "prefix {prefix}");
            }
            // Characters outside the vocabulary go by their UTF-8 bytes, never as <unk>.
            assert_eq!(pieces(&t, "é")[prefix as usize..], ["<0xC3>", "<0xA9>"]);
        }
    }
}
