//! `engram daemon` end to end: a real X server (Xvfb) with a window manager (openbox), real
//! xterm windows, real Tesseract, and folders changed under the running daemon.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::x11::{wait_for, Daemon, X};
use crate::util::{rewrite, Engram};

/// A config that has the daemon caption every second (its rounds otherwise wait two minutes).
fn caption_every_second(e: &Engram) {
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[daemon]\ncaption_every_secs = 1\n").unwrap();
}

fn status(e: &Engram) -> serde_json::Value {
    e.run(&["status", "--json"]).ok().json()
}

/// The nice value of the daemon's thread named `name` (from /proc/PID/task/TID/stat: field 19,
/// counted after the command name's closing parenthesis).
fn thread_nice(pid: u32, name: &str) -> Option<i64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            return after.split(' ').nth(16)?.parse().ok();
        }
    }
    None
}

#[test]
fn screen_text_in_english_and_chinese_is_found_with_its_app_and_title_and_a_static_screen_adds_nothing() {
    let mut x = X::start();
    let e = Engram::init();
    caption_every_second(&e);
    x.terminal("Budget notes - vim", "XTerm", "Quarterly budget review: marmalade invoice 4711\n会议纪要：预算审查在周五下午\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    let found = wait_for(Duration::from_secs(60), "the screen text to be searchable", || e.hits("marmalade").into_iter().next());
    assert_eq!(found["kind"], "screen");
    assert_eq!(found["source"], "XTerm");
    assert_eq!(found["title"], "Budget notes - vim");
    let zh = e.hits("预算审查");
    assert_eq!(zh.first().map(|r| r["id"].clone()), Some(found["id"].clone()), "Chinese line not found: {zh:?}");

    // Nothing changes on screen: later ticks are skipped, not stored.
    let screens = status(&e)["screens"].as_i64().unwrap();
    let unchanged = |e: &Engram| d.state(e).unwrap()["frames_unchanged"].as_u64().unwrap();
    let before = unchanged(&e);
    wait_for(Duration::from_secs(30), "three unchanged frames", || (unchanged(&e) >= before + 3).then_some(()));
    assert_eq!(status(&e)["screens"].as_i64().unwrap(), screens, "a static screen made new memories");

    // Typing adds a line: the window is read again (only the changed band) and the new frame
    // takes the old one's place, since it only adds text.
    let typed = Command::new("xdotool").env("DISPLAY", &x.display).args(["type", "--delay", "20", "typed wombat notes"]).status().unwrap();
    assert!(typed.success());
    let hit = wait_for(Duration::from_secs(60), "the typed words", || e.hits("wombat").into_iter().next());
    assert_eq!(status(&e)["screens"].as_i64().unwrap(), screens, "typing into the same window replaces its frame");
    assert_eq!(e.hits("marmalade")[0]["id"], hit["id"], "the earlier text is in the new frame too");
    wait_for(Duration::from_secs(5), "the daemon to count the replaced frame", || (d.state(&e)?["frames_coalesced"].as_u64()? >= 1).then_some(()));
    // The OCR thread limit is in the daemon's own environment (it re-executes itself to set it).
    let environ = std::fs::read(format!("/proc/{}/environ", d.child.id())).unwrap();
    assert!(environ.split(|&b| b == 0).any(|v| v == b"OMP_THREAD_LIMIT=1"), "OMP_THREAD_LIMIT=1 not set in the daemon");
    assert_eq!(d.state(&e).unwrap()["omp_thread_limit"], "1");
    // Capture and OCR run at a lower priority than the user's programs.
    assert_eq!(thread_nice(d.child.id(), "capture"), Some(10), "the capture thread is not niced");
    // `engram daemon` became the engram-daemon program, in the same process.
    assert_eq!(thread_nice(d.child.id(), "engram-daemon"), Some(0), "the main thread answers searches at normal priority");
    // The timeline lists the frame under its app and window title; --app picks it out.
    let timeline = |app: &str| e.run(&["timeline", "--json", "--app", app]).ok().json()["memories"].as_array().unwrap().clone();
    let frames = timeline("xterm");
    assert!(frames.iter().any(|m| m["id"] == hit["id"] && m["title"] == "Budget notes - vim"), "{frames:?}");
    assert!(frames.iter().all(|m| m["kind"] == "screen" && m["app"] == "XTerm"), "{frames:?}");
    assert!(timeline("firefox").is_empty());
    // While the user is at the screen, the language model stays unloaded: no captions.
    assert_eq!(d.state(&e).unwrap()["captioned"], 0);
    let log = d.stop();
    assert!(log.contains("stopped"), "{log}");
    // The log ends up on disk (the journal, under systemd): no titles, apps or screen text in it.
    for clear in ["Budget notes", "XTerm", "marmalade", "预算", "wombat"] {
        assert!(!log.contains(clear), "{clear:?} in the daemon's log: {log}");
    }
    // Once captioned, the frame's caption is one of the lines OCR read from it.
    e.run(&["caption"]).ok();
    let shown = e.run(&["show", "--json", &hit["id"].to_string()]).ok().json();
    let caption = shown["caption"].as_str().expect("the frame has a caption");
    let text = shown["text"].as_str().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains(caption.trim_end_matches('…')), "{caption:?} is not in the frame's text {text:?}");
}

#[test]
fn password_managers_are_never_captured_and_card_numbers_are_blacked_out() {
    let mut x = X::start();
    let e = Engram::init();
    x.terminal("Passwords.kdbx - KeePassXC", "KeePassXC", "vault entry zebraquokka hunter\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    // How often a password manager was on screen is told over the socket, never written down.
    wait_for(Duration::from_secs(30), "excluded frames", || (status(&e)["daemon"]["private"]["frames_excluded"].as_u64()? >= 3).then_some(()));
    assert!(d.state(&e).unwrap().get("frames_excluded").is_none(), "daemon.json counts excluded frames");
    x.terminal("Checkout - shop", "XTerm", "Order placed with card 4111 1111 1111 1111 exp 12/29 thankyou\n");
    let hit = wait_for(Duration::from_secs(60), "the checkout screen", || e.hits("thankyou").into_iter().next());
    assert!(e.hits("zebraquokka").is_empty(), "an excluded app's window was stored");
    assert!(e.hits("4111").is_empty(), "the card number was indexed");

    let id = hit["id"].as_i64().unwrap().to_string();
    let shown = e.run(&["show", "--json", &id]).ok().json();
    let text = shown["text"].as_str().unwrap();
    assert!(text.contains("[redacted card number]") && !text.contains("4111"), "{text}");
    let words = shown["frame"]["words"].as_array().unwrap();
    let redacted: Vec<&serde_json::Value> = words.iter().filter(|w| w["text"] == "[redacted]").collect();
    assert!(redacted.len() >= 4, "card digits not redacted in the word boxes: {words:?}");
    assert!(!words.iter().any(|w| w["text"].as_str().unwrap().contains("1111")));

    let png = e.tmp.path().join("frame.png");
    e.run(&["show", &id, "--image", png.to_str().unwrap(), "--highlight", "thankyou"]).ok();
    let (w, pixels) = read_png(&png);
    for b in &redacted {
        let r = &b["box"];
        let (x0, y0, bw, bh) = (r["x"].as_u64().unwrap(), r["y"].as_u64().unwrap(), r["w"].as_u64().unwrap(), r["h"].as_u64().unwrap());
        for yy in y0..y0 + bh {
            for xx in x0..x0 + bw {
                let i = ((yy * w + xx) * 3) as usize;
                assert!(pixels[i..i + 3].iter().all(|&v| v < 40), "a redacted box is readable at {xx},{yy}");
            }
        }
    }
    // The unredacted word is still there, and boxed in red by --highlight.
    let kept = words.iter().find(|w| w["text"] == "thankyou").expect("the word 'thankyou' was read");
    let (kx, ky) = (kept["box"]["x"].as_u64().unwrap() - 3, kept["box"]["y"].as_u64().unwrap() - 3);
    let i = ((ky * w + kx) * 3) as usize;
    assert_eq!(&pixels[i..i + 3], &[255, 40, 40], "the matched word is not boxed");
    d.stop();

    // Forgetting an app's screen memories takes their pictures with them.
    let forgot = e.run(&["forget", "--json", "--app", "xterm"]).ok().json();
    assert!(forgot["forgotten"].as_u64().unwrap() >= 1, "{forgot}");
    assert_eq!(status(&e)["frames"], 0);
    assert_eq!(e.run(&["show", &id, "--image", png.to_str().unwrap()]).code, 2);
}

fn read_png(path: &Path) -> (u64, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as u64, buf)
}

fn sources(e: &Engram, query: &str) -> Vec<String> {
    e.hits(query).iter().map(|r| r["source"].as_str().unwrap().to_string()).collect()
}

#[test]
fn folder_changes_are_followed_while_running_and_caught_up_at_start() {
    let e = Engram::init();
    let notes = e.folder("notes");
    std::fs::write(notes.join("plan.txt"), "garden plan: plant tulips in october").unwrap();
    let w = notes.to_str().unwrap();
    let d = Daemon::start(&e, None, &["--watch", w]);
    assert!(!sources(&e, "tulips").is_empty(), "existing files are indexed at start");
    wait_for(Duration::from_secs(10), "capture to be off without a display", || {
        d.state(&e)?["capture"].as_str()?.starts_with("off: no display to record").then_some(())
    });

    let limit = Duration::from_secs(20);
    std::fs::write(notes.join("new.md"), "# Recipe\nlemon drizzle cake").unwrap();
    wait_for(limit, "a created file", || (!sources(&e, "drizzle").is_empty()).then_some(()));
    rewrite(&notes.join("new.md"), "# Recipe\nbanana bread");
    wait_for(limit, "a modified file", || (sources(&e, "drizzle").is_empty() && !sources(&e, "banana").is_empty()).then_some(()));
    std::fs::create_dir_all(notes.join("sub")).unwrap();
    std::fs::rename(notes.join("new.md"), notes.join("sub/renamed.md")).unwrap();
    wait_for(limit, "a renamed file", || {
        let s = sources(&e, "banana");
        (s.len() == 1 && s[0].ends_with("sub/renamed.md")).then_some(())
    });
    std::fs::remove_file(notes.join("plan.txt")).unwrap();
    wait_for(limit, "a deleted file", || sources(&e, "tulips").is_empty().then_some(()));
    std::fs::write(notes.join(".hidden.swp"), "swapfile gibberishword").unwrap();
    d.stop();
    assert!(sources(&e, "gibberishword").is_empty(), "hidden files are not indexed");

    // While stopped: one new, one changed, one deleted.
    std::fs::write(notes.join("later.txt"), "offline addition about kayaks").unwrap();
    rewrite(&notes.join("sub/renamed.md"), "# Recipe\ncarrot soup");
    std::fs::write(notes.join("gone.txt"), "temporary").unwrap();
    let d = Daemon::start(&e, None, &["--watch", w]);
    wait_for(limit, "the gone.txt file", || (!sources(&e, "temporary").is_empty()).then_some(()));
    d.stop();
    std::fs::remove_file(notes.join("gone.txt")).unwrap();
    let d = Daemon::start(&e, None, &["--watch", w]);
    assert!(!sources(&e, "kayaks").is_empty());
    assert!(!sources(&e, "carrot").is_empty() && sources(&e, "banana").is_empty());
    assert!(sources(&e, "temporary").is_empty(), "a file deleted while stopped is forgotten at start");
    d.stop();
}

#[test]
fn kill_9_during_capture_and_ingest_loses_nothing_and_duplicates_nothing() {
    let mut x = X::start();
    let e = Engram::init();
    let notes = e.folder("bulk");
    for i in 0..300 {
        std::fs::write(notes.join(format!("note{i:03}.txt")), format!("bulk note number {i} mentions walrus{i}")).unwrap();
    }
    x.terminal("Ledger - xterm", "XTerm", "crashtest ledger line pelican\n");
    let w = notes.to_str().unwrap();
    let mut c = e.command();
    c.args(["daemon", "--interval", "1", "--watch", w]).env("DISPLAY", &x.display).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    // Kill it while it is still reconciling the folder (ingest) or reading frames (capture).
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
    for i in 300..310 {
        std::fs::write(notes.join(format!("note{i:03}.txt")), format!("bulk note number {i} mentions walrus{i}")).unwrap();
    }

    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1", "--watch", w]);
    wait_for(Duration::from_secs(60), "the screen after restart", || (!e.hits("pelican").is_empty()).then_some(()));
    let s = status(&e);
    assert_eq!(s["files"], 310, "each file exactly once: {s}");
    assert_eq!(s["index_generation"], s["generation"], "the index agrees with the store: {s}");
    assert_eq!(s["indexed_chunks"], s["chunks"], "{s}");
    for i in [0, 150, 299, 305] {
        let found = sources(&e, &format!("walrus{i}"));
        assert_eq!(found.len(), 1, "walrus{i}: {found:?}");
    }
    d.stop();
}

#[test]
fn typing_is_held_in_memory_until_it_settles_and_kept_when_the_daemon_stops() {
    let mut x = X::start();
    let e = Engram::init();
    x.terminal("Draft - xterm", "XTerm", "A first line about the harbour\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the first frame", || e.hits("harbour").into_iter().next());
    let typed = Command::new("xdotool").env("DISPLAY", &x.display).args(["type", "--delay", "20", "okapi sightings"]).status().unwrap();
    assert!(typed.success());
    // A tick that finds the screen as it was has read the typing before it.
    let unchanged = |e: &Engram| d.state(e).unwrap()["frames_unchanged"].as_u64().unwrap();
    let before = unchanged(&e);
    wait_for(Duration::from_secs(20), "a tick after the typing", || (unchanged(&e) > before).then_some(()));
    assert!(e.hits("okapi").is_empty(), "a typing run was stored before it settled");
    d.stop();
    let hit = e.hits("okapi");
    assert_eq!(hit.len(), 1, "the typing held when the daemon stopped was lost: {hit:?}");
    assert_eq!(e.hits("harbour")[0]["id"], hit[0]["id"], "the typed frame replaces the first");
}

#[test]
fn pause_stops_capture_and_resume_restarts_it() {
    let mut x = X::start();
    let e = Engram::init();
    e.run(&["pause", "--for", "10m"]).ok();
    let st = status(&e);
    assert!(st["paused_until"].as_i64().unwrap() > 0, "{st}");
    x.terminal("Paused - xterm", "XTerm", "while paused the word ocelotpaused shows\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(20), "the daemon to report the pause", || (d.state(&e)?["capture"] == "paused").then_some(()));
    std::thread::sleep(Duration::from_secs(3));
    assert!(e.hits("ocelotpaused").is_empty(), "captured while paused");
    e.run(&["resume"]).ok();
    wait_for(Duration::from_secs(60), "capture after resume", || (!e.hits("ocelotpaused").is_empty()).then_some(()));
    d.stop();
}

#[test]
fn a_second_daemon_is_refused_and_doctor_proves_the_gate() {
    let e = Engram::init();
    let notes = e.folder("n");
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let second = e.run_with(&["daemon", "--watch", notes.to_str().unwrap()], |c| {
        c.env_remove("DISPLAY");
    });
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(second.stderr.contains("already running"), "{}", second.stderr);

    // search and status go to the warm daemon over its private socket: no passphrase needed.
    std::fs::write(notes.join("a.txt"), "the warm daemon answers about capybaras").unwrap();
    wait_for(Duration::from_secs(20), "the new file", || (!sources(&e, "capybaras").is_empty()).then_some(()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(e.data.join("daemon.sock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let no_pass = e.run_with(&["search", "--json", "capybaras"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(no_pass.ok().json()["results"][0]["kind"], "file");
    let st = e.run_with(&["status", "--json"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(st.ok().json()["daemon"]["running"], true);
    // ask too: the daemon answers, with the language model, and cites the file.
    let asked = e.run_with(&["ask", "--json", "what animals does the warm daemon answer about?"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    let a = asked.ok().json();
    assert_eq!(a["found"], true, "{a}");
    assert!(a["citations"][0]["source"].as_str().unwrap().ends_with("a.txt"), "{a}");
    d.stop();
    assert!(!e.data.join("daemon.sock").exists(), "the socket is removed at exit");
    let locked = e.run_with(&["search", "capybaras"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(locked.code, 3, "without the daemon the store needs the passphrase: {}", locked.stderr);
    let doc = e.run(&["doctor", "--json"]).ok().json();
    assert_eq!(doc["ok"], true, "{doc}");
    assert!(doc["exclude_apps"].as_array().unwrap().iter().any(|a| a == "keepassxc"));
}

#[test]
fn new_memories_are_captioned_in_the_background_at_the_lowest_priority() {
    let e = Engram::init();
    caption_every_second(&e);
    // No display: the screen is not recorded, so captions need not wait for the user to be away.
    let notes = e.folder("notes");
    std::fs::write(
        notes.join("plumber.txt"),
        "Plumber visit\n\nThe plumber replaced the kitchen tap washer and will send the invoice by Friday.\nBring biscuits.",
    )
    .unwrap();
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let caption = |e: &Engram| {
        let t = e.run(&["timeline", "--json"]).ok().json();
        t["memories"][0]["caption"].as_str().map(String::from)
    };
    let first = wait_for(Duration::from_secs(120), "a caption for the note", || caption(&e));
    assert!(first.contains("kitchen tap washer"), "{first}");
    assert_eq!(thread_nice(d.child.id(), "caption"), Some(19));
    // A note written while the daemon runs is captioned in a later round.
    std::fs::write(notes.join("vet.txt"), "Vet appointment\n\nThe vet said the cat needs a dental check in the spring.").unwrap();
    let second = wait_for(Duration::from_secs(120), "a caption for the new note", || caption(&e).filter(|c| c != &first));
    assert!(second.contains("dental check"), "{second}");
    assert_eq!(d.state(&e).unwrap()["captions"], "on");
    // daemon.json is rewritten once a second.
    wait_for(Duration::from_secs(10), "the count of captions", || (d.state(&e)?["captioned"].as_u64()? >= 2).then_some(()));
    d.stop();
}

#[test]
fn without_the_language_model_captions_are_off_and_the_daemon_goes_on() {
    let e = Engram::init();
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[daemon]\ncaption_every_secs = 1\n[models]\ngenerator = \"/nonexistent/model.gguf\"\n").unwrap();
    let notes = e.folder("notes");
    std::fs::write(notes.join("plan.txt"), "garden plan: plant tulips in october and dahlias in may").unwrap();
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let why = wait_for(Duration::from_secs(30), "captions to be off", || {
        d.state(&e)?["captions"].as_str().filter(|c| c.starts_with("off:")).map(String::from)
    });
    assert!(why.contains("/nonexistent/model.gguf"), "{why}");
    std::fs::write(notes.join("later.txt"), "a note about kayaks written while captions are off").unwrap();
    wait_for(Duration::from_secs(20), "the new note", || (!sources(&e, "kayaks").is_empty()).then_some(()));
    d.stop();
}
