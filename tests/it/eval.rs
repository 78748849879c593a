//! `engram eval` on the shared Cranfield set reaches the BM25 baseline (0.343 nDCG@10).

use crate::util::{eval_set, Engram};

#[test]
fn keyword_eval_on_cranfield_reaches_the_bm25_baseline() {
    let e = Engram::new();
    let run = e.tmp.path().join("run.tsv");
    let out = e
        .run(&["eval", "--json", eval_set("cranfield").to_str().unwrap(), "--mode", "keyword", "--out", run.to_str().unwrap()])
        .ok()
        .json();
    let ndcg = out["nDCG@10"].as_f64().unwrap();
    assert!(ndcg >= 0.343 - 0.03, "nDCG@10 {ndcg}");
    assert_eq!(out["queries"], 225);
    let lines = std::fs::read_to_string(&run).unwrap();
    let first = lines.lines().next().unwrap();
    assert_eq!(first.split('\t').count(), 3, "{first}");
    let per_query = lines.lines().filter(|l| l.starts_with("1\t")).count();
    assert!(per_query > 10 && per_query <= 100, "{per_query} lines for query 1");
}
