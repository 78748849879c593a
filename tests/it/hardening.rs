//! The process under attack and under strain: no core dumps, no passphrase left in the
//! environment, panics that say where and never what, requests that cannot take a server down,
//! and a daemon that goes on through a full disk, a read-only disk and a busy index.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use crate::make_pdf;
use crate::util::x11::{wait_for, Daemon, X};
use crate::util::{self, Engram};

fn status(e: &Engram) -> serde_json::Value {
    e.run(&["status", "--json"]).ok().json()
}

#[test]
fn the_daemon_keeps_no_core_dumps_and_no_passphrase_in_its_environment() {
    let e = Engram::init();
    let notes = e.folder("notes");
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let pid = d.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(), ["0", "0"], "{core}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!util::contains(&environ, e.passphrase.as_bytes()), "the passphrase is still in the daemon's environment");
    let doctor = e.run(&["doctor", "--json"]).ok().json();
    assert_eq!(doctor["protections"]["core_dumps_off"], true, "{doctor}");
    assert_eq!(doctor["protections"]["not_dumpable"], true);
    d.stop();
}

#[test]
fn the_daemon_socket_survives_oversized_and_panicking_requests() {
    let e = Engram::init();
    let notes = e.folder("notes");
    std::fs::write(notes.join("pets.txt"), "Our neighbour's parrot is called Biscuit.").unwrap();
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    wait_for(Duration::from_secs(30), "the note", || (!e.hits("Biscuit").is_empty()).then_some(()));

    // A request line far past any real one gets an error, not the daemon's memory.
    let mut s = UnixStream::connect(e.data.join("daemon.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let huge = format!("{{\"op\":\"search\",\"query\":{{\"query\":\"{}\"}}}}\n", "a".repeat(1 << 20));
    let _ = s.write_all(huge.as_bytes());
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).unwrap();
    assert!(reply.contains("too large"), "{reply}");
    // A limit past any count overflowed the search's arithmetic.
    let mut s = UnixStream::connect(e.data.join("daemon.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let query = serde_json::json!({ "query": "parrot", "limit": u64::MAX, "since": i64::MIN, "until": i64::MAX,
                                    "kind": null, "mode": "keyword", "app": null, "snippets": true });
    let request = serde_json::json!({ "op": "search", "query": query });
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["results"].as_array().map(Vec::len), Some(1), "{reply}");

    // A time far out of range once panicked the daemon's main thread.
    let asked = e.run_with(&["ask", "--json", "What did I see 999999999 days ago?"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(asked.code, 0, "{}", asked.stderr);
    let after = e.run_with(&["search", "--json", "--mode", "keyword", "parrot"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(after.ok().json()["results"].as_array().unwrap().len(), 1, "the daemon no longer answers");
    d.stop();
}

#[test]
fn a_parser_that_fails_in_the_extraction_worker_says_nothing_of_the_document() {
    let e = Engram::init();
    let docs = e.folder("docs");
    // A Type0 font naming an encoding no reader knows, quoting a canary (pdf-extract panicked on
    // it, with the name in its message).
    std::fs::write(docs.join("broken.pdf"), pdf_with_font_encoding("Zqcanarysecret4417")).unwrap();
    std::fs::write(docs.join("fine.txt"), "an ordinary note about gooseberries").unwrap();
    let r = e.run(&["add", docs.to_str().unwrap()]).ok();
    assert!(!r.stderr.contains("canarysecret") && !r.stdout.contains("canarysecret"), "{}", r.stderr);
    // Readers run in the worker, whose stderr (a panic's place, a library's warning quoting the
    // file) is dropped: nothing of it reaches engram's.
    assert!(!r.stderr.contains("internal error") && !r.stderr.contains(".rs:"), "{}", r.stderr);
    assert_eq!(e.top_source("gooseberries").rsplit('/').next(), Some("fine.txt"), "the rest of the folder was indexed");
}

#[test]
fn a_passphrase_command_unlocks_and_a_failing_one_does_not() {
    let e = Engram::init();
    let no_env = |c: &mut Command| {
        c.env_remove("ENGRAM_PASSPHRASE");
    };
    let good = format!("printf '%s\\n' '{}'", e.passphrase);
    e.run_with(&["status", "--passphrase-cmd", &good], no_env).ok();
    let failing = e.run_with(&["status", "--passphrase-cmd", "exit 1"], no_env);
    assert_eq!(failing.code, 3, "{}", failing.stderr);
    let wrong = e.run_with(&["status", "--passphrase-cmd", "echo not-it"], no_env);
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
}

#[test]
fn numbers_out_of_range_are_refused_or_clamped_never_a_crash() {
    let e = Engram::init();
    let pause = e.run(&["pause", "--for", "9999999999999999d"]);
    assert_eq!(pause.code, 2, "{}", pause.stderr);
    assert!(pause.stderr.contains("longer than a year"), "{}", pause.stderr);
    for args in [
        ["search", "--since", "999999999 days ago", "x"],
        ["search", "--until", "9223372036854775807s", "x"],
        ["search", "-n", "18446744073709551615", "x"],
    ] {
        let r = e.run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("internal error"), "{args:?}: {}", r.stderr);
    }
    e.run(&["timeline", "--limit", "18446744073709551615"]).ok();
}

/// A one-page PDF whose font names an encoding no reader knows.
fn pdf_with_font_encoding(encoding: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_string(),
        format!("<< /Type /Font /Subtype /Type0 /BaseFont /Foo /Encoding /{encoding} /DescendantFonts [6 0 R] >>"),
        String::new(),
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Foo /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>".to_string(),
    ];
    let mut objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    objects[4] = make_pdf::stream("", b"BT /F1 12 Tf 72 712 Td (Hello) Tj ET");
    make_pdf::assemble(&objects, "")
}

/// A small file system of its own (tmpfs), so the test can fill it and make it read-only.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: &std::path::Path, mib: u32) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"]).arg(dir).status().unwrap();
        assert!(ok.success(), "this test mounts a small tmpfs and must run as root (CI does)");
        SmallDisk { dir: dir.to_path_buf() }
    }

    /// Fills the disk until fewer than `leave` bytes are free (0: until it is full).
    fn fill(&self, leave: u64) {
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0x5au8; 1 << 20];
        loop {
            let free = free_bytes(&self.dir);
            if free <= leave || free == 0 {
                break;
            }
            let n = (free - leave).min(block.len() as u64) as usize;
            if f.write_all(&block[..n.max(1)]).is_err() {
                break;
            }
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn free_bytes(dir: &std::path::Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn the_daemon_goes_on_through_a_full_disk_a_read_only_disk_and_a_busy_index() {
    let mut x = X::start();
    let mut e = Engram::new();
    // The data directory on a 64 MiB disk of its own; capture needs 16 MiB free.
    let disk = SmallDisk::mount(&e.tmp.path().join("small"), 64);
    e.data = disk.dir.join("data");
    e.run(&["init"]).ok();
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[daemon]\nmin_free_mb = 16\ncaptions = false\n").unwrap();
    let notes = e.folder("notes");
    x.terminal("Field notes - vim", "XTerm", "first sighting of a kakapo today\n");
    // Without root's power to write where permissions say no, as a user's daemon runs.
    let as_user = ["setpriv", "--inh-caps=-dac_override,-dac_read_search,-fowner", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"];
    let mut d = Daemon::start_via(&e, Some(&x.display), &["--interval", "1", "--watch", notes.to_str().unwrap()], &as_user);
    let first = wait_for(Duration::from_secs(60), "the first frame", || e.hits("kakapo").into_iter().next());

    // Nearly full: capture pauses and says so; a full disk fails writes, which are retried.
    disk.fill(8 << 20);
    wait_for(Duration::from_secs(30), "capture to pause for room", || {
        status(&e)["daemon"]["capture"].as_str().is_some_and(|c| c.starts_with("paused: disk full")).then_some(())
    });
    let doctor = e.run(&["doctor", "--json"]).ok().json();
    assert!(doctor["disk_free_bytes"].as_u64().unwrap() < doctor["disk_min_free_bytes"].as_u64().unwrap(), "{doctor}");
    disk.fill(0);
    std::fs::write(notes.join("later.txt"), "a note written while the disk was full: takahe").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died on a full disk: {}", d.log());
    disk.free();
    wait_for(Duration::from_secs(60), "capture to resume and the note to be indexed", || {
        let s = status(&e);
        (s["daemon"]["capture"] == "on" && !e.hits("takahe").is_empty()).then_some(())
    });

    // A read-only data directory: no new index file can be made until it is writable again.
    let mode = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    mode(&e.data, 0o500);
    mode(&e.data.join("index"), 0o500);
    std::fs::write(notes.join("ro.txt"), "a note written while the store was read-only: kereru").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died on a read-only directory: {}", d.log());
    mode(&e.data, 0o700);
    mode(&e.data.join("index"), 0o700);
    wait_for(Duration::from_secs(60), "the note written while read-only", || (!e.hits("kereru").is_empty()).then_some(()));

    // `engram add` holding the index writer: the daemon's own writes wait their turn.
    let more = e.folder("more");
    for i in 0..300 {
        std::fs::write(more.join(format!("n{i}.txt")), format!("note {i} about the weka and the pukeko {i}")).unwrap();
    }
    let adding = e.command().args(["add", more.to_str().unwrap()]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::fs::write(notes.join("busy.txt"), "written while another process added files: tui").unwrap();
    x.terminal("Birds - vim", "XTerm", "a morepork called at dusk\n");
    let added = adding.wait_with_output().unwrap();
    assert!(added.status.success());
    wait_for(Duration::from_secs(60), "the daemon's writes after the busy index", || {
        (!e.hits("tui").is_empty() && !e.hits("morepork").is_empty()).then_some(())
    });
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died: {}", d.log());
    // Nothing written before was lost.
    assert_eq!(e.hits("kakapo").first().map(|h| h["id"].clone()), Some(first["id"].clone()));
    let log = d.stop();
    assert!(log.contains("will try again"), "{log}");
}
