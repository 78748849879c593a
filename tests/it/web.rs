//! The page in a real browser: Debian's headless Chromium driven by playwright-core
//! (tests/web/page.mjs), against `engram serve` on a store with files and a screen memory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::x11::{wait_for, Daemon, X};
use crate::util::{sample_dir, Engram};

#[test]
fn the_page_searches_opens_a_memory_scrubs_the_timeline_asks_and_pauses_with_no_console_error_and_no_foreign_request() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: scripts/test.sh runs `npm ci` in tests/web (and installs Debian's chromium)"
    );
    assert!(Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(), "chromium is not installed: scripts/test.sh installs it");

    let mut x = X::start();
    let e = Engram::init();
    e.run(&["add", sample_dir().to_str().unwrap()]).ok();
    x.terminal("Rent notes - editor", "XTerm", "monthly rent reminder: pay the landlord on the first\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "a screen memory", || (e.run(&["status", "--json"]).ok().json()["frames"].as_i64()? >= 1).then_some(()));
    d.stop();
    // The newest memory, the screen frame, gets its caption (one line OCR read from it).
    assert_eq!(e.run(&["caption", "--json", "--limit", "1"]).ok().json()["captioned"], 1);

    let mut server = e.command().args(["serve", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let shots = e.tmp.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .current_dir(&web)
        .args(["page.mjs", url.trim(), shots.to_str().unwrap(), "rent", "flat-tenancy.md"])
        .output()
        .expect("node is not installed");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("page.mjs printed no report ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["errors"], serde_json::json!([]), "console or page errors: {report}");
    assert_eq!(report["foreign"], serde_json::json!([]), "requests to other hosts: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["address_has_token"], false, "the token stays out of the address bar");
    assert!(report["results_text"].as_str().unwrap().contains("Rent notes - editor"), "the screen memory is among the results: {report}");
    assert!(report["thumb_boxes"].as_u64().unwrap() >= 1, "the matched word is boxed on the result's thumbnail: {report}");
    assert!(report["timeline_frames"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["timeline_caption"].as_str().unwrap().contains("monthly rent reminder"), "the frame's caption under it: {report}");
    assert!(report["citations"].as_str().unwrap().contains("flat-tenancy.md"), "{report}");
    assert!(report["answer"].as_str().unwrap().contains("1,450"), "{report}");
    let when = report["when"].as_str().unwrap();
    assert!(when.contains("Nothing made last month") && when.contains("all your memories were searched"), "{report}");
    assert!(report["when_answer"].as_str().unwrap().contains("1,450"), "{report}");
    assert!(report["capture_state"].as_str().unwrap().contains("paused"), "{report}");
    for shot in ["search.png", "timeline.png", "ask.png", "ask-when.png", "status.png"] {
        assert!(std::fs::metadata(shots.join(shot)).map(|m| m.len() > 1000).unwrap_or(false), "no screenshot {shot}");
    }
    // Keep the pictures for people to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-shots");
    std::fs::create_dir_all(&keep).unwrap();
    for shot in ["search.png", "timeline.png", "ask.png", "ask-when.png", "status.png"] {
        std::fs::copy(shots.join(shot), keep.join(shot)).unwrap();
    }
}
