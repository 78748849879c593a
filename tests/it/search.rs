//! init → add the bundled sample → search finds the right file first.

use crate::util::{self, sample_dir, write_aged, Engram};

#[test]
fn named_queries_find_the_right_file_first() {
    let e = Engram::with_sample();
    let cases = [
        ("tenancy agreement", "notes/flat-tenancy.md"),
        ("brake pads", "mail/garage-brakes.eml"),
        ("\"quarterly budget review\"", "notes/meeting-2026-03-12.md"),
        // a two-character Chinese word inside a sentence
        ("财务", "chinese/报销说明.md"),
        // a word from the GBK-encoded file
        ("桂花", "chinese/桂花糕-gbk.txt"),
        ("sourdough starter", "web/saved-article.html"),
        ("insurance excess", "documents/home-insurance-policy.pdf"),
        ("oat milk", "notes/utf16-note.txt"),
        ("gateau amelie", "notes/old-latin1-letter.txt"),
        ("search latency 缓存", "notes/mixed-language.md"),
        ("fizzbuzz", "code/fizzbuzz.rs"),
    ];
    for (query, want) in cases {
        let got = e.top_source(query);
        assert!(got.ends_with(want), "query {query:?}: wanted {want}, got {got:?}");
    }
}

#[test]
fn json_results_have_the_documented_shape() {
    let e = Engram::with_sample();
    let results = e.search("brakes");
    let r = &results[0];
    for key in ["id", "score", "kind", "source", "title", "time", "snippet"] {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    assert_eq!(r["kind"], "file");
    // The e-mail's own Date header is its time, in RFC 3339.
    assert_eq!(r["time"], "2026-02-16T16:20:00+00:00");
    assert!(r["snippet"].as_str().unwrap().contains("**brake"), "{}", r["snippet"]);
}

#[test]
fn time_and_kind_filters_apply() {
    let e = Engram::with_sample();
    assert!(!e.search("brakes").is_empty());
    let out = e.run(&["search", "--json", "--since", "2026-03-01", "--until", "2026-03-31", "brakes"]).ok().json();
    assert_eq!(out["results"].as_array().unwrap().len(), 0);
    let out = e.run(&["search", "--json", "--until", "2026-02-17", "brakes"]).ok().json();
    assert_eq!(out["results"].as_array().unwrap().len(), 1);
    let out = e.run(&["search", "--json", "--kind", "screen", "brakes"]).ok().json();
    assert_eq!(out["results"].as_array().unwrap().len(), 0);
}

#[test]
fn any_query_text_is_accepted() {
    let e = Engram::with_sample();
    for q in ["AND OR (", "\"unclosed", "-", "title:foo", "*?~^", "((("] {
        e.run(&["search", q]).ok();
    }
    let r = e.run(&["search", "--since", "the day after never", "x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("2026-03-01"), "{}", r.stderr);
}

#[test]
fn excluded_words_remove_results() {
    let e = Engram::with_sample();
    let with = e.search("vitamin");
    assert!(with.len() >= 2);
    let without = e.search("vitamin -pharmacy");
    assert_eq!(without.len(), with.len() - 1);
}

#[test]
fn readding_unchanged_files_does_no_work_and_changes_replace() {
    let e = Engram::init();
    let dir = e.folder("notes");
    let note = dir.join("plan.txt");
    std::fs::write(&note, "the zeppelin leaves from platform nine").unwrap();
    let first = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!(first["added"], 1);
    let again = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!((again["added"].as_u64(), again["unchanged"].as_u64(), again["chunks"].as_u64()), (Some(0), Some(1), Some(0)));

    util::rewrite(&note, "the hovercraft leaves from the pier instead");
    let changed = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!(changed["updated"], 1);
    assert!(e.search("zeppelin").is_empty(), "old chunks must be gone");
    assert_eq!(e.search("hovercraft").len(), 1);
}

#[test]
fn show_prints_the_whole_text() {
    let e = Engram::with_sample();
    let id = e.search("sourdough")[0]["id"].as_i64().unwrap();
    let out = e.run(&["show", &id.to_string()]).ok();
    assert!(out.stdout.contains("A hungry starter smells of acetone & vinegar"), "{}", out.stdout);
    assert!(!out.stdout.contains("tracking-should-not-be-indexed"));
    let missing = e.run(&["show", "999999"]);
    assert_eq!(missing.code, 2);
}

#[test]
fn status_counts_memories() {
    let e = Engram::with_sample();
    let s = e.run(&["status", "--json"]).ok().json();
    assert_eq!(s["files"], files_under(&sample_dir()));
    assert_eq!(s["indexed_chunks"], s["chunks"]);
    // Which arithmetic the embedder uses is reported, and the switch to plain f32 holds.
    assert!(["AMX bf16 tiles", "f32"].contains(&s["embedder_arithmetic"].as_str().unwrap()), "{s}");
    let f32_only = e.run_with(&["status", "--json"], |c| {
        c.env("ENGRAM_EMBED_F32", "1");
    });
    assert_eq!(f32_only.ok().json()["embedder_arithmetic"], "f32");
}

#[test]
fn the_timeline_lists_memories_newest_first_under_each_day() {
    let e = Engram::init();
    let notes = e.folder("notes");
    for (name, age) in [("old.md", 10), ("new.md", 1), ("middle.md", 4)] {
        write_aged(&notes.join(name), &format!("A note called {name}."), age);
    }
    e.run(&["add", notes.to_str().unwrap()]).ok();
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["timeline", "--json"];
        all.extend_from_slice(args);
        let out = e.run(&all).ok().json();
        out["memories"].as_array().unwrap().iter().map(|m| m["source"].as_str().unwrap().rsplit('/').next().unwrap().to_string()).collect()
    };
    assert_eq!(listed(&[]), ["new.md", "middle.md", "old.md"]);
    assert_eq!(listed(&["--since", "7d"]), ["new.md", "middle.md"]);
    assert_eq!(listed(&["--until", "2d", "--limit", "1"]), ["middle.md"]);
    assert!(listed(&["--kind", "screen"]).is_empty());
    // On a terminal-less stdout: a line per day, then time, id, kind and path.
    let text = e.run(&["timeline"]).ok().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].len() == 10 && lines[0].starts_with("20"), "{text}");
    assert!(lines[1].starts_with("  ") && lines[1].contains("file") && lines[1].ends_with("new.md"), "{text}");
    assert_eq!(e.run(&["timeline", "--since", "1h"]).ok().stdout.trim(), "no memories in that time");
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}
