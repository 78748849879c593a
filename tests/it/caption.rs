//! Captions end to end: the real binary, the sample memories, the pinned language model.

use std::collections::HashMap;

use crate::util::{sample_dir, Engram};

/// The memories of the timeline by source file name, with their captions.
fn captions(e: &Engram) -> HashMap<String, (i64, Option<String>)> {
    let t = e.run(&["timeline", "--json", "--limit", "1000"]).ok().json();
    t["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["source"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
            (name, (m["id"].as_i64().unwrap(), m["caption"].as_str().map(String::from)))
        })
        .collect()
}

#[test]
fn each_memory_gets_a_caption_made_of_its_own_words_shown_with_it() {
    let e = Engram::init();
    // Mail, work notes and Chinese notes: a dozen memories, a few seconds each in a test build.
    for part in ["mail", "work", "chinese"] {
        e.run(&["add", sample_dir().join(part).to_str().unwrap()]).ok();
    }
    let before = captions(&e);
    assert!(before.values().all(|(_, c)| c.is_none()));
    let done = e.run(&["caption", "--json"]).ok().json();
    assert_eq!(done["captioned"].as_u64().unwrap() as usize, before.len());
    // Captioning is resumable: nothing is done twice.
    assert_eq!(e.run(&["caption", "--json"]).ok().json()["captioned"], 0);

    let after = captions(&e);
    let captioned: Vec<_> = after.iter().filter_map(|(name, (id, c))| c.as_ref().map(|c| (name, *id, c))).collect();
    assert!(captioned.len() * 4 >= after.len() * 3, "most memories have a caption: {after:?}");
    for (name, id, caption) in &captioned {
        // A caption is a line of the memory (list marks and emphasis left out, a long line cut
        // with "…"): never a header, never the model's own words.
        let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = e.run(&["show", "--json", &id.to_string()]).ok().json();
        assert_eq!(shown["caption"].as_str(), Some(caption.as_str()));
        let text = one_line(&shown["text"].as_str().unwrap().replace('*', ""));
        let words = caption.trim_end_matches('…');
        assert!(text.contains(words), "{name}: {caption:?} is not in its memory");
        assert!(!["From:", "To:", "Subject:", "Date:", "#"].iter().any(|h| caption.starts_with(h)), "{name}: {caption:?}");
    }
    // A mail is captioned by what it says, not by its greeting or signature.
    let (_, dentist) = &after["dentist.eml"];
    assert!(dentist.as_deref().is_some_and(|c| c.contains("appointment")), "{dentist:?}");

    // Search results carry the caption.
    let hits = e.run(&["search", "--json", "hygienist"]).ok().json();
    assert_eq!(hits["results"][0]["caption"].as_str(), dentist.as_deref(), "{hits}");
}

#[test]
fn a_missing_language_model_is_a_clear_error_and_nothing_is_marked_captioned() {
    let e = Engram::init();
    e.run(&["add", sample_dir().join("notes").to_str().unwrap()]).ok();
    let models = e.tmp.path().join("no-models");
    std::fs::create_dir_all(&models).unwrap();
    let out = e.run_with(&["caption"], |c| {
        c.env("ENGRAM_MODELS", &models);
    });
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains(engram::models::DEFAULT_GENERATOR) && out.stderr.contains("fetch-models.sh"), "{}", out.stderr);
    // With the model back, every memory is still waiting for its caption.
    let done = e.run(&["caption", "--json", "--limit", "2"]).ok().json();
    assert_eq!(done["captioned"], 2);
}
