//! `engram ask` end to end: the real binary, the sample memories, the pinned models.

use crate::util::{sample_dir, write_aged, Engram};

fn ask(e: &Engram, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["ask", "--json"];
    all.extend_from_slice(args);
    e.run(&all).ok().json()
}

fn cited_sources(answer: &serde_json::Value) -> Vec<String> {
    answer["citations"].as_array().unwrap().iter().map(|c| c["source"].as_str().unwrap().to_string()).collect()
}

#[test]
fn answers_quote_the_memory_and_cite_it() {
    let e = Engram::with_sample();
    let a = ask(&e, &["How much is the monthly rent?"]);
    assert_eq!(a["found"], true, "{a}");
    assert!(a["answer"].as_str().unwrap().contains("1,450"), "{a}");
    let cited = cited_sources(&a);
    assert!(cited.len() == 1 && cited[0].ends_with("flat-tenancy.md"), "{a}");
    let c = &a["citations"][0];
    assert!(c["id"].as_i64().unwrap() > 0 && c["n"].as_u64().unwrap() >= 1 && c["time"].is_string(), "{a}");
    // Copied answers are quotations: the words stand in the cited memory.
    let shown = e.run(&["show", &c["id"].to_string()]).ok();
    assert!(shown.stdout.contains(a["answer"].as_str().unwrap()), "{a}");
    // Nothing is sampled: the same question gives the same answer.
    assert_eq!(ask(&e, &["How much is the monthly rent?"]), a);
}

#[test]
fn a_question_about_money_the_hour_or_the_year_gets_the_amount_the_time_or_the_year() {
    let e = Engram::with_sample();
    // The invoice mail holds two amounts and a "six months" about the same brakes; the tenancy
    // note gives a whole date where the year alone is asked for.
    for (q, want, source) in [
        ("What did the mechanic charge for the brakes?", "312.40 GBP", "garage-brakes.eml"),
        ("How much was the oil change?", "64.00 GBP", "garage-brakes.eml"),
        ("What time is the dentist appointment?", "08:30", "dentist.eml"),
        ("In what year does the tenancy agreement expire?", "2027", "flat-tenancy.md"),
    ] {
        let a = ask(&e, &[q]);
        assert_eq!(a["answer"], want, "{q}: {a}");
        assert!(cited_sources(&a)[0].ends_with(source), "{q}: {a}");
    }
}

#[test]
fn the_lines_under_a_heading_or_mail_header_answer_what_it_names() {
    let e = Engram::with_sample();
    // Each question repeats the words of a heading, a mail header or a title line, which used
    // to win over the line under it that answers; some also ask for a kind of figure (how long,
    // when, how much) or need a wrapped mail line read whole.
    for (q, want, source) in [
        ("When is the next book club?", "26 March", "book-club.eml"),
        ("What hotel in Lisbon?", "Casa do Bairro", "travel-lisbon.md"),
        ("What flight do I take to Lisbon?", "TP1351", "travel-lisbon.md"),
        ("Who is coming to look at the boiler?", "Gareth", "landlord-boiler.eml"),
        ("What went well in the sprint 14 retro?", "search migration", "retro.txt"),
        ("How long did the checkout outage last?", "42 minutes", "incident-2026-02-07.md"),
        ("How much is the energy bill?", "148.22 GBP", "energy-bill.eml"),
        ("When will the energy bill be collected?", "18 March", "energy-bill.eml"),
        // The signature "Priya" only repeats the question.
        ("What is Priya making for book club?", "lentil soup", "book-club.eml"),
    ] {
        let a = ask(&e, &[q]);
        assert!(a["answer"].as_str().unwrap().contains(want), "{q}: {a}");
        assert!(cited_sources(&a)[0].ends_with(source), "{q}: {a}");
    }
}

#[test]
fn a_chinese_question_is_answered_from_the_chinese_note() {
    let e = Engram::with_sample();
    let a = ask(&e, &["桂花糕要蒸多久？"]);
    assert_eq!(a["found"], true, "{a}");
    assert!(a["answer"].as_str().unwrap().contains("二十五分钟"), "{a}");
    assert!(cited_sources(&a)[0].ends_with("桂花糕-gbk.txt"), "{a}");
}

#[test]
fn a_yes_or_no_question_is_answered_yes_or_no_with_its_sentence() {
    let e = Engram::with_sample();
    // The optician's record: "he does not need glasses yet".
    let a = ask(&e, &["Does Sam need glasses?"]);
    assert_eq!(a["answer"], "No", "{a}");
    assert_eq!(a["method"], "yes_no", "{a}");
    assert!(a["quote"].as_str().unwrap().contains("does not"), "{a}");
    assert!(cited_sources(&a)[0].ends_with("optician-prescription.txt"), "{a}");
    // A question that offers a choice is not one of yes or no.
    let a = ask(&e, &["Is the plumber's invoice from February or March?"]);
    assert!(a["answer"] != "Yes" && a["answer"] != "No", "{a}");
}

#[test]
fn what_the_memories_do_not_hold_is_not_found() {
    let e = Engram::with_sample();
    for q in ["Who won the 1998 football world cup?", "What is the capital of Peru?"] {
        let a = ask(&e, &[q]);
        assert_eq!(a["found"], false, "{q}: {a}");
        assert!(a["citations"].as_array().unwrap().is_empty(), "{a}");
        assert!(a["answer"].as_str().unwrap().contains("Not found"), "{a}");
    }
    // Filters apply to retrieval: nothing was seen after 2099.
    let a = ask(&e, &["--since", "2099-01-01", "How much is the monthly rent?"]);
    assert_eq!(a["found"], false, "{a}");
    // The plain form says so too, and it is not an error.
    let out = e.run(&["ask", "What is the capital of Peru?"]).ok();
    assert!(out.stdout.contains("Not found in your memories"), "{}", out.stdout);
}

#[test]
fn a_forgotten_memory_is_never_cited() {
    let e = Engram::with_sample();
    let note = sample_dir().join("notes/flat-tenancy.md");
    assert!(ask(&e, &["What is the deposit reference?"])["answer"].as_str().unwrap().contains("DPS-88123"));
    e.run(&["forget", "--path", note.to_str().unwrap()]).ok();
    // Only the tenancy note held the deposit's reference (the rent is in the bank's pages too).
    let a = ask(&e, &["What is the deposit reference?"]);
    assert!(cited_sources(&a).iter().all(|s| !s.ends_with("flat-tenancy.md")), "{a}");
    assert!(!a["answer"].as_str().unwrap().contains("DPS-88123"), "{a}");
}

/// Whether `word` is in `text` as a word of its own: "1" is not in "312.40".
fn shows_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[test]
fn every_answer_style_cites_only_retrieved_passages() {
    let e = Engram::with_sample();
    for style in ["copy", "free", "extract"] {
        let a = ask(&e, &["--style", style, "What did the mechanic charge for the brakes?"]);
        assert_eq!(a["found"], true, "{style}: {a}");
        let cited = cited_sources(&a);
        assert!(!cited.is_empty() && cited.iter().all(|s| s.ends_with(".eml") || s.ends_with(".md")), "{style}: {a}");
        // Whatever the model wrote, no number that the cited sources lack is shown as fact.
        let answer = a["answer"].as_str().unwrap();
        if a["method"] != "copied" {
            assert!(a["unsupported"].as_array().unwrap().iter().all(|u| !shows_word(answer, u.as_str().unwrap())), "{a}");
        }
    }
}

#[test]
fn a_missing_language_model_is_a_clear_error_and_extract_still_answers() {
    let e = Engram::with_sample();
    let models = e.tmp.path().join("only-embedder");
    std::fs::create_dir_all(&models).unwrap();
    let embedder = engram::models::models_dir().join(engram::models::DEFAULT_EMBEDDER);
    std::os::unix::fs::symlink(&embedder, models.join(engram::models::DEFAULT_EMBEDDER)).unwrap();
    let with_env = |c: &mut std::process::Command| {
        c.env("ENGRAM_MODELS", &models);
    };
    let out = e.run_with(&["ask", "How much is the monthly rent?"], with_env);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains(engram::models::DEFAULT_GENERATOR) && out.stderr.contains("fetch-models.sh"), "{}", out.stderr);
    let out = e.run_with(&["ask", "--json", "--style", "extract", "How much is the monthly rent?"], with_env).ok();
    assert!(out.json()["answer"].as_str().unwrap().contains("1,450"), "{}", out.stdout);
}

#[test]
fn a_time_the_question_names_limits_the_memories_to_those_made_then() {
    let e = Engram::init();
    let notes = e.folder("lunches");
    write_aged(&notes.join("lunch-ana.md"), "Lunch with Ana at Saffron, the Thai place on Elm Street. We both had the green curry.", 1);
    write_aged(&notes.join("lunch-ben.md"), "Lunch with Ben at Luigi's, the pizza place by the station. We both had a margherita.", 10);
    e.run(&["add", notes.to_str().unwrap()]).ok();
    for (q, source) in [("Where did I have lunch yesterday?", "lunch-ana.md"), ("Where did I have lunch 10 days ago?", "lunch-ben.md")] {
        let a = ask(&e, &[q]);
        assert_eq!(a["found"], true, "{q}: {a}");
        assert_eq!(cited_sources(&a).len(), 1, "{q}: {a}");
        assert!(cited_sources(&a)[0].ends_with(source), "{q}: {a}");
        assert_eq!(a["when"]["applied"], true, "{q}: {a}");
    }
    assert_eq!(ask(&e, &["Where did I have lunch yesterday?"])["when"]["phrase"], "yesterday");
    // Nothing was made today: every memory is searched, and the answer says so.
    let a = ask(&e, &["Where did I have lunch this morning?"]);
    assert_eq!((&a["found"], &a["when"]["applied"]), (&serde_json::json!(true), &serde_json::json!(false)), "{a}");
    // Explicit filters, or --any-time, leave the question's words alone.
    assert!(ask(&e, &["Where did I have lunch yesterday?", "--any-time"])["when"].is_null());
    assert!(ask(&e, &["Where did I have lunch yesterday?", "--since", "30d"])["when"].is_null());
    let text = e.run(&["ask", "Where did I have lunch yesterday?"]).ok().stdout;
    assert!(text.contains("from memories made yesterday"), "{text}");
}
