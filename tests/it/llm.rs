//! The local language model: real SmolLM2 weights from the pinned package.

use std::path::PathBuf;

use engram::llm::Generator;
use engram::models::DEFAULT_GENERATOR;

fn model() -> Generator {
    let dir: PathBuf = engram::models::models_dir().join(DEFAULT_GENERATOR);
    Generator::load(&dir, &|_| {}).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tokenizer_round_trips_chat_digits_cjk_and_emoji() {
    let g = model();
    let chat = g.format().prompt("You answer from the sources.", "What did the mechanic charge? 2024-03-15, $1,250.75");
    for text in [
        chat.as_str(),
        "Invoice 0042: 3 items, total 1,999.00 EUR",
        "我们下周三在会议室讨论预算。",
        "Great news 🎉🚀 see you at 10:30!",
        "  leading spaces and\ttabs\nnew lines  ",
    ] {
        let ids = g.encode(text).unwrap();
        assert_eq!(g.decode(&ids).unwrap(), text);
    }
    // The chat template's markers are single special tokens, not spelled out piece by piece.
    let ids = g.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
    assert_eq!(ids[0], g.tokenizer().token_to_id("<|im_start|>").unwrap());
    assert_eq!(*ids.last().unwrap(), g.tokenizer().token_to_id("<|im_end|>").unwrap());
    // Digits are split one by one, as SmolLM2 was trained.
    let ids = g.encode("2024").unwrap();
    assert_eq!(ids.len(), 4, "{ids:?}");
}

#[test]
fn greedy_answers_are_reproducible_and_stream_whole_text() {
    let mut g = model();
    let prompt = g.format().prompt(
        "Answer with a few words from the text.",
        "Text: The mechanic replaced the front brake pads and charged 240 dollars.\nQuestion: What did the mechanic replace?",
    );
    let mut streamed = String::new();
    let first = g.generate(&prompt, 24, &mut |t| streamed.push_str(t)).unwrap();
    assert_eq!(streamed, first.text);
    assert!(first.new_tokens > 0 && first.prompt_tokens > 20);
    assert!(first.text.to_lowercase().contains("brake"), "{:?}", first.text);
    let again = g.generate(&prompt, 24, &mut |_| {}).unwrap();
    assert_eq!(first.text, again.text);
}

#[test]
fn copying_answers_are_quotations_from_the_sources() {
    let mut g = model();
    let sources = ["Parts and labour for the brakes came to 312.40 GBP; the oil change was 64.00 GBP.", "会议改到周三下午三点，在三楼会议室。"];
    for (question, source) in [("How much was the oil change?", 0), ("会议在哪里？", 1)] {
        let prompt = g.format().prompt("Answer the question with a short phrase copied from the text.", &format!("Text:\n{}\n\nQuestion: {question}", sources[source]));
        let (gen, from) = g.copy_from(&prompt, &sources, &|_, _| true, &|_, _| true, 32, &mut |_| {}).unwrap();
        assert!(!gen.text.is_empty(), "{question}");
        assert!(sources.iter().any(|s| s.contains(&gen.text)), "{question}: {:?} is not a quotation", gen.text);
        assert!(from.iter().all(|&k| sources[k].contains(&gen.text)), "{question}: {from:?}");
    }
}

#[test]
fn the_likeliest_whole_quotation_is_chosen() {
    let mut g = model();
    let source = "Parts and labour for the brakes came to 312.40 GBP; the oil change was 64.00 GBP.";
    let prompt = g.format().prompt(
        "Answer the question with a short phrase copied from the text.",
        &format!("Text:\n{source}\n\nQuestion: How much was the oil change?"),
    );
    let quotes = ["312.40", "312.40 GBP", "64.00", "64.00 GBP", "the oil change was 64.00 GBP"];
    let (best, gen) = g.most_likely(&prompt, &quotes).unwrap().expect("SmolLM2 weighs whole quotations");
    assert_eq!(gen.text, quotes[best]);
    // Which of the quotations that answer is likeliest differs in the last digits between CPUs
    // (AVX-512 here, AVX2 there): "64.00 GBP" or the whole clause; never the brakes' price.
    assert!(gen.text.contains("64.00") && !gen.text.contains("312"), "{:?}", gen.text);
    assert!(gen.prompt_tokens > 20 && gen.new_tokens > 0);
    // The same question gives the same choice, whatever else was weighed before.
    let (again, _) = g.most_likely(&prompt, &quotes).unwrap().unwrap();
    assert_eq!(best, again);
    // Nothing to weigh is not an answer.
    assert!(g.most_likely(&prompt, &[]).unwrap().is_none());
}
