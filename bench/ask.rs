//! Question answering quality and speed: ingests a shared set's corpus, asks a fixed sample of
//! its questions (every k-th, so the sample spreads over all articles), and scores SQuAD exact
//! match and F1 for, in the same run:
//!   - extractive: the best-matching sentence of the retrieved passages (no model);
//!   - generated: the model's free answer over the numbered passages, unchecked, and checked
//!     (replaced by the extractive one when a number, date or name is not in its sources);
//!   - copied: the model quotes the answer from the best sentences (the default).
//!
//! Also how often a cited source is the gold paragraph, how often the answer is "not found",
//! and, for questions from another set (cranfield) that the corpus cannot answer, how often
//! engram wrongly claims to have found something.
//!
//! scripts/fetch-models.sh && cargo bench --bench ask
//! ASK_SET=xquad_zh ASK_SAMPLE=100 ASK_PASSAGES=3 ASK_OFFSET=2 cargo bench --bench ask
//! ASK_MODEL=0 ASK_ROWS=1 cargo bench --bench ask   (the best sentence alone, a row per question)

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use engram::answer::{ground, Method, Style};
use engram::config::Config;
use engram::{AskRequest, Engram};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn best(score: impl Fn(&str) -> f32, golds: &[String]) -> f32 {
    golds.iter().map(|g| score(g)).fold(0.0, f32::max)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[derive(Default)]
struct Tally {
    em: f32,
    f1: f32,
}

fn main() {
    let set: String = env_or("ASK_SET", "xquad_en".to_string());
    let sample: usize = env_or("ASK_SAMPLE", 200);
    let passages: usize = env_or("ASK_PASSAGES", 5);
    let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/eval");
    let dir = eval.join(&set);
    let qa: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("qa.jsonl"))
        .expect("the shared evaluation data beside the repository")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let step = (qa.len() / sample).max(1);
    // ASK_OFFSET=k takes every step-th question from the k-th on: a sample disjoint from the
    // default one (k = 0), to check a change on questions it was not made on.
    let offset: usize = env_or("ASK_OFFSET", 0);
    let questions: Vec<&serde_json::Value> = qa.iter().skip(offset).step_by(step).take(sample).collect();
    let mut config = Config::default();
    config.ask.passages = passages;
    // ASK_GENERATOR=PATH tries another GGUF model.
    if let Ok(path) = std::env::var("ASK_GENERATOR") {
        config.models.generator = path;
    }
    let corpus = engram::eval::load_corpus(&dir, config.clone(), true, &mut |m| eprintln!("{m}")).unwrap();
    let engram: &Engram = &corpus.engram;
    engram.generator(&|p| eprintln!("converting the model once: {}", p.display())).unwrap_or_else(|e| panic!("{e}"));

    let (mut extractive, mut generated, mut free_checked, mut shown) = (Tally::default(), Tally::default(), Tally::default(), Tally::default());
    let mut copy_secs = 0.0;
    let mut sentence_hits = 0;
    // ASK_MODEL=0 scores the extractive path alone (fast, for tuning sentence selection).
    let run_model = env_or("ASK_MODEL", 1) != 0;
    // ASK_FREE=0 skips the free-writing path (the slowest).
    let run_free = env_or("ASK_FREE", 1) != 0;
    let (mut gold_cited, mut gold_retrieved, mut not_found, mut fell_back, mut used_model) = (0, 0, 0, 0, 0);
    let (mut first_token, mut gen_secs, mut new_tokens, mut prompt_tokens, mut extract_secs) = (0.0, 0.0, 0, 0, 0.0);
    let started = Instant::now();
    for (i, q) in questions.iter().enumerate() {
        let question = q["question"].as_str().unwrap();
        let gold_doc = q["context_id"].as_str().unwrap();
        let golds: Vec<String> = q["answers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();

        let mut req = AskRequest::new(question, &config.ask);
        req.style = Style::Extract;
        let t = Instant::now();
        let plain = engram.ask(&req, &|_| {}, &mut |_| {}).unwrap();
        extract_secs += t.elapsed().as_secs_f64();
        let sentence = plain.extract.clone().unwrap_or_default();
        extractive.em += best(|g| ground::exact_match(&sentence, g) as u8 as f32, &golds);
        extractive.f1 += best(|g| ground::f1(&sentence, g), &golds);

        let norm = |t: &str| ground::answer_tokens(t).join(" ");
        let hit = golds.iter().any(|g| format!(" {} ", norm(&sentence)).contains(&format!(" {} ", norm(g))));
        sentence_hits += hit as usize;
        // ASK_ROWS=1 prints a line per question, to compare two runs question by question.
        if std::env::var_os("ASK_ROWS").is_some() {
            let e = plain.evidence;
            let why = format!("words {:.2} meaning {:.2} unseen {:.2} typed {}", e.words, e.meaning, e.unseen, e.typed);
            println!("row\t{i}\t{}\t{:?}\t{why}\t{}", hit as u8, plain.method, sentence.replace(['\n', '\t'], " "));
        }
        if !run_model {
            continue;
        }
        req.style = Style::Free;
        let free = if run_free { engram.ask(&req, &|_| {}, &mut |_| {}).unwrap() } else { plain.clone() };
        if let Some(g) = &free.generation {
            used_model += 1;
            let raw = g.text.trim();
            generated.em += best(|gold| ground::exact_match(raw, gold) as u8 as f32, &golds);
            generated.f1 += best(|gold| ground::f1(raw, gold), &golds);
            first_token += g.first_token.as_secs_f64();
            gen_secs += (g.total - g.first_token).as_secs_f64();
            new_tokens += g.new_tokens.saturating_sub(1);
            prompt_tokens += g.prompt_tokens;
        }
        free_checked.em += best(|g| ground::exact_match(&free.text, g) as u8 as f32, &golds);
        free_checked.f1 += best(|g| ground::f1(&free.text, g), &golds);
        if !free.unsupported.is_empty() {
            fell_back += 1;
        }
        req.style = Style::Copy;
        let t = Instant::now();
        let a = engram.ask(&req, &|_| {}, &mut |_| {}).unwrap();
        copy_secs += t.elapsed().as_secs_f64();
        if std::env::var_os("ASK_SHOW").is_some() {
            eprintln!("Q: {question}\n  gold: {golds:?}\n  extract: {sentence}\n  model: {:?}\n  shown ({:?}): {}\n", a.generation.as_ref().map(|g| g.text.as_str()), a.method, a.text);
        }
        shown.em += best(|g| ground::exact_match(&a.text, g) as u8 as f32, &golds);
        shown.f1 += best(|g| ground::f1(&a.text, g), &golds);
        if a.method == Method::NotFound {
            not_found += 1;
        }
        let by_n: HashMap<usize, &str> = a.sources.iter().map(|s| (s.n, s.source.as_str())).collect();
        if a.cited.iter().any(|n| by_n.get(n) == Some(&gold_doc)) {
            gold_cited += 1;
        }
        if a.sources.iter().any(|s| s.source == gold_doc) {
            gold_retrieved += 1;
        }
        if (i + 1) % 20 == 0 {
            eprintln!("{} questions, {:.0} s", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let n = questions.len() as f32;
    let pct = |x: f32| 100.0 * x / n;

    // Questions this corpus cannot answer: how often does engram claim it can?
    let other = std::fs::read_to_string(eval.join("cranfield/queries.jsonl")).unwrap();
    let mut claimed = 0;
    let unanswerable: Vec<String> =
        other.lines().take(100).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string()).collect();
    for q in &unanswerable {
        let mut req = AskRequest::new(q.clone(), &config.ask);
        req.style = Style::Extract;
        if engram.ask(&req, &|_| {}, &mut |_| {}).unwrap().found {
            claimed += 1;
        }
    }

    println!("{set}: {} questions (every {step}th), {passages} passages per prompt", questions.len());
    println!("| answer | exact match | F1 |");
    println!("|---|---|---|");
    println!("| extractive (best sentence) | {:.1} | {:.1} |", pct(extractive.em), pct(extractive.f1));
    println!("| generated, unchecked | {:.1} | {:.1} |", pct(generated.em), pct(generated.f1));
    println!("| generated, checked (falls back to extractive) | {:.1} | {:.1} |", pct(free_checked.em), pct(free_checked.f1));
    println!("| copied: the model quotes from the best sentences (default) | {:.1} | {:.1} |", pct(shown.em), pct(shown.f1));
    println!();
    println!("best sentence contains a gold answer: {:.1} %", pct(sentence_hits as f32));
    println!("gold paragraph among the passages: {:.1} %; among the citations: {:.1} %", pct(gold_retrieved as f32), pct(gold_cited as f32));
    println!("answered \"not found\": {:.1} %; model answer replaced for unsupported details: {:.1} %", pct(not_found as f32), pct(fell_back as f32));
    println!(
        "unanswerable questions (cranfield queries over this corpus) claimed found: {claimed} of {}",
        unanswerable.len()
    );
    if used_model > 0 {
        let m = used_model as f64;
        println!(
            "model: {:.0} prompt tokens on average, time to first token {:.2} s, {:.1} tokens/s generating; extractive answer alone {:.0} ms",
            prompt_tokens as f64 / m,
            first_token / m,
            new_tokens as f64 / gen_secs.max(1e-9),
            1000.0 * extract_secs / n as f64
        );
    }
    println!("copied answer: {:.2} s per question, retrieval included", copy_secs / n as f64);
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}
