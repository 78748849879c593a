//! The extraction worker end to end: its sandbox, and documents that crash it, hang it or
//! exhaust its memory (a compressed-stream PDF bomb, a zip bomb) costing that worker, never
//! `engram add` or the daemon, remembered and not read again until they change.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::make_pdf;
use crate::util::x11::{wait_for, Daemon};
use crate::util::Engram;

/// A word in the bombs' metadata: it must never reach a log.
const CANARY: &str = "zqxbombcanary";

/// Settings that make the bombs fail fast: a 1 GiB worker, ten seconds a file, no OCR.
fn tight_limits(e: &Engram) {
    limits(e, 1024, 10);
}

fn limits(e: &Engram, memory_mb: u64, timeout_secs: u64) {
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    let toml = format!("[files]\nworker_memory_mb = {memory_mb}\nworker_timeout_secs = {timeout_secs}\npdf_ocr_pages = 0\n");
    std::fs::write(config.join("config.toml"), toml).unwrap();
}

/// The extraction worker started by process `parent`, once it has used `ticks` of CPU time
/// (clock ticks: hundredths of a second): busy with a file.
fn busy_worker(parent: u32, ticks: u64) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        // After the command name: state, ppid, … utime (the 12th), stime (the 13th).
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let cpu = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        if &stat[open + 1..close] == "engram-extract" && fields.get(1) == Some(&parent.to_string().as_str()) && cpu >= ticks {
            return Some(pid);
        }
    }
    None
}

/// Raw deflate blocks for `mib` MiB of zeros: one full-flushed block of 1 MiB, repeated (each
/// copy stands alone), then the final empty block. About 1 KiB per MiB.
fn deflate_zeros(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(1 << 16);
    c.compress_vec(&zeros, &mut block, FlushCompress::Full).unwrap();
    assert_eq!(c.total_in(), zeros.len() as u64, "the block holds the whole MiB");
    let mut end = Vec::with_capacity(64);
    c.compress_vec(&[], &mut end, FlushCompress::Finish).unwrap();
    let mut out = Vec::with_capacity(block.len() * mib + end.len());
    for _ in 0..mib {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&end);
    out
}

/// A one-page PDF whose page content is `content` with these stream dictionary entries.
fn one_page_pdf(content: &[u8], filter: &str) -> Vec<u8> {
    let stream = make_pdf::stream(filter, content);
    make_pdf::assemble(
        &[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
            stream,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
            format!("<< /Title ({CANARY} title) /Author ({CANARY} author) >>").into_bytes(),
        ],
        "/Info 6 0 R",
    )
}

/// A PDF with a line of text.
fn text_pdf(words: &str) -> Vec<u8> {
    one_page_pdf(format!("BT /F1 12 Tf 72 720 Td ({words}) Tj ET").as_bytes(), "")
}

/// A PDF whose only page's content stream inflates (FlateDecode) to `gib` GiB of zeros from
/// a few MiB: a reader that inflates it whole runs out of memory, one that streams it runs out
/// of time.
fn pdf_bomb(gib: usize) -> Vec<u8> {
    let raw = deflate_zeros(gib << 10);
    // zlib: header, the blocks, then Adler-32 of n zeros (a = 1, b = n mod 65521).
    let n = (gib as u64) << 30;
    let mut z = vec![0x78, 0xda];
    z.extend_from_slice(&raw);
    z.extend_from_slice(&((((n % 65521) as u32) << 16) | 1).to_be_bytes());
    one_page_pdf(&z, " /Filter /FlateDecode")
}

/// A Word document (its content types name word/document.xml) whose document part inflates to
/// `mib` MiB of zeros.
fn docx_bomb(mib: usize) -> Vec<u8> {
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>"#.to_string();
    let core = format!(r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{CANARY}</dc:title></cp:coreProperties>"#);
    let mut crc = crc32fast::Hasher::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        crc.update(&zeros);
    }
    let bomb = Entry { name: "word/document.xml", method: 8, crc: crc.finalize(), size: (mib as u64) << 20, data: deflate_zeros(mib) };
    let stored = |name, text: &str| Entry { name, method: 0, crc: crc32fast::hash(text.as_bytes()), size: text.len() as u64, data: text.as_bytes().to_vec() };
    zip(&[stored("[Content_Types].xml", &types), stored("docProps/core.xml", &core), bomb])
}

struct Entry {
    name: &'static str,
    method: u16,
    crc: u32,
    size: u64,
    data: Vec<u8>,
}

/// A zip (no zip64: every size under 4 GiB) of these entries.
fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&e.method.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes()); // time, date
            v.extend_from_slice(&e.crc.to_le_bytes());
            v.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(e.size as u32).to_le_bytes());
            v.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(b"PK\x03\x04");
        common(&mut out);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&e.data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 8]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// Writes `bytes` to `path` and moves its modified time ahead, as an edit a moment later would.
fn rewrite_bytes(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(later).unwrap();
}

fn status(e: &Engram) -> serde_json::Value {
    e.run(&["status", "--json"]).ok().json()
}

/// The remembered skips `status` lists, as (file name, reason).
fn remembered(e: &Engram) -> Vec<(String, String)> {
    status(e)["skipped_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap();
            (Path::new(path).file_name().unwrap().to_string_lossy().into_owned(), f["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

fn hits(e: &Engram, word: &str) -> usize {
    e.run(&["search", "--json", "--mode", "keyword", word]).ok().json()["results"].as_array().unwrap().len()
}

/// What a log or stderr must never hold: a bomb's name or metadata, or anything the worker
/// printed (Rust's allocation failure message, a C++ exception, the worker's own name).
#[track_caller]
fn assert_quiet(what: &str, text: &str) {
    for bad in [CANARY, "bomb.pdf", "bomb.docx", "memory allocation", "bad_alloc", "engram-extract", "Syntax Error", "panicked"] {
        assert!(!text.contains(bad), "{what} holds {bad:?}:\n{text}");
    }
}

const WORKER_FAILURES: [&str; 3] = ["out_of_memory", "timed_out", "worker_crashed"];

#[test]
fn the_worker_sandbox_refuses_writes_sockets_new_processes_and_signals_to_others() {
    let out = Command::new(env!("CARGO_BIN_EXE_engram-extract")).arg("--self-test-sandbox").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (eperm, eacces) = (libc::EPERM as i64, libc::EACCES as i64);
    // Files: opening to write, create or truncate is refused; reading is allowed.
    for probe in ["open_write_create", "open_read_write", "open_write", "open_truncate"] {
        assert_eq!(r[probe].as_i64(), Some(eacces), "{probe}: {r}");
    }
    assert_eq!(r["created"], false);
    assert_eq!(r["open_read"], 0, "{r}");
    assert_eq!((r["unlink"].as_i64(), r["mkdir"].as_i64()), (Some(eperm), Some(eperm)), "{r}");
    // No network, no programs, no new processes, no signals to other processes; threads work.
    for probe in ["socket_inet", "socket_inet6", "socket_unix", "fork", "exec", "kill_parent"] {
        assert_eq!(r[probe].as_i64(), Some(eperm), "{probe}: {r}");
    }
    assert_eq!(r["kill_self"], 0, "{r}");
    assert_eq!(r["thread"], true, "{r}");
    // A memfd opens, and writing to it is past RLIMIT_FSIZE.
    assert_eq!(r["memfd"].as_i64(), Some(libc::EFBIG as i64), "{r}");
    // The filter is in force, with no new privileges; not dumpable; the limits are set.
    assert_eq!((r["seccomp"].as_str(), r["no_new_privs"].as_str()), (Some("2"), Some("1")), "{r}");
    assert_eq!(r["dumpable"], 0);
    assert_eq!(r["rlimit_as"].as_u64(), Some(2048 << 20));
    assert_eq!((r["rlimit_fsize"].as_u64(), r["rlimit_core"].as_u64()), (Some(0), Some(0)));
    assert!(r["rlimit_cpu"].as_u64().is_some_and(|s| s > 0 && s < 3600), "{r}");

    // `engram doctor` runs the same self-test, with the configured memory limit.
    let e = Engram::init();
    tight_limits(&e);
    let doctor = e.run(&["doctor", "--json"]).ok().json();
    let check = doctor["checks"].as_array().unwrap().iter().find(|c| c["check"] == "document reader sandboxed").cloned().unwrap();
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["detail"].as_str().unwrap().contains("at most 1024 MiB"), "{check}");
}

#[test]
fn a_pdf_bomb_costs_the_worker_is_remembered_and_is_read_again_only_once_it_changes() {
    let e = Engram::init();
    tight_limits(&e);
    let dir = e.folder("docs");
    std::fs::write(dir.join("a-before.txt"), "the aardvark ledger").unwrap();
    std::fs::write(dir.join("bomb.pdf"), pdf_bomb(4)).unwrap();
    std::fs::write(dir.join("z-after.txt"), "the zebra ledger").unwrap();
    let d = dir.to_str().unwrap();

    let run = e.run(&["add", "--json", d]).ok();
    let report = run.json();
    assert_quiet("engram add's stderr", &run.stderr);
    assert_eq!(report["added"], 2, "{report}");
    let skipped = report["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    let reason = skipped[0]["reason"].as_str().unwrap().to_string();
    assert!(WORKER_FAILURES.contains(&reason.as_str()), "{report}");
    assert_eq!((skipped[0]["remembered"].as_bool(), skipped[0]["as_before"].as_bool()), (Some(true), Some(false)));
    assert_eq!(report["worker_failures"][&reason], 1, "{report}");
    // The files after the bomb were read by a fresh worker.
    assert_eq!((hits(&e, "aardvark"), hits(&e, "zebra")), (1, 1));
    assert_eq!(remembered(&e), [("bomb.pdf".to_string(), reason.clone())]);

    // Unchanged, it is not read again (`as_before`: its record answered, no worker was asked).
    let report = e.run(&["add", "--json", d]).ok().json();
    let skipped = report["skipped_files"].as_array().unwrap();
    assert_eq!((skipped.len(), skipped[0]["as_before"].as_bool()), (1, Some(true)), "{report}");
    assert_eq!(skipped[0]["reason"], reason.as_str());
    assert_eq!(report["worker_failures"], serde_json::json!({}));
    assert_eq!(report["skipped_as_before"], 1);
    // The text report says so too.
    let text = e.run(&["add", d]).ok().stdout;
    assert!(text.contains("bomb.pdf") && text.contains("not read again until it changes"), "{text}");
    let status_text = e.run(&["status"]).ok().stdout;
    assert!(status_text.contains("skipped files:  1"), "{status_text}");

    // Changed (now a real document), it is read again, indexed, and no longer remembered.
    rewrite_bytes(&dir.join("bomb.pdf"), &text_pdf("the quokka ledger"));
    let report = e.run(&["add", "--json", d]).ok().json();
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(hits(&e, "quokka"), 1);
    assert!(remembered(&e).is_empty());
}

#[test]
fn a_worker_killed_mid_file_is_remembered_and_the_file_read_again_after_it_changes_not_before() {
    let e = Engram::init();
    // Room and time enough that only the kill ends the worker.
    limits(&e, 3072, 300);
    let dir = e.folder("docs");
    std::fs::write(dir.join("bomb.pdf"), pdf_bomb(4)).unwrap();
    std::fs::write(dir.join("note.txt"), "the capybara ledger").unwrap();
    let d = dir.to_str().unwrap();
    let add = e.command().args(["add", "--json", d]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let worker = wait_for(Duration::from_secs(60), "the worker to be busy with the bomb", || busy_worker(add.id(), 30));
    // SAFETY: signals a process of this test's own user, found as `engram add`'s child.
    assert_eq!(unsafe { libc::kill(worker, libc::SIGKILL) }, 0);
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_quiet("engram add's stderr", &String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = &report["skipped_files"][0];
    assert_eq!(skipped["reason"], "worker_crashed", "{report}");
    assert!(skipped["detail"].as_str().unwrap().contains("SIGKILL"), "{report}");
    assert_eq!(hits(&e, "capybara"), 1);

    // Not before it changes.
    let report = e.run(&["add", "--json", d]).ok().json();
    assert_eq!(report["skipped_files"][0]["as_before"], true, "{report}");
    assert_eq!(report["skipped_files"][0]["reason"], "worker_crashed");

    // A new modified time, the same bytes: read again, and this time it fails on its own limits.
    limits(&e, 1024, 10);
    rewrite_bytes(&dir.join("bomb.pdf"), &pdf_bomb(4));
    let report = e.run(&["add", "--json", d]).ok().json();
    let skipped = &report["skipped_files"][0];
    assert_eq!(skipped["as_before"], false, "{report}");
    assert!(["out_of_memory", "timed_out"].contains(&skipped["reason"].as_str().unwrap()), "{report}");
    assert_eq!(remembered(&e).len(), 1);
}

#[test]
fn what_the_worker_prints_never_reaches_engram_and_a_worker_on_path_is_found() {
    use std::os::unix::fs::PermissionsExt;
    let e = Engram::init();
    // engram alone in a folder, and on PATH a worker that says things on stderr (as a reader's
    // warning quoting a document would), says it is ready, then crashes.
    let bin = e.folder("bin");
    std::fs::copy(env!("CARGO_BIN_EXE_engram"), bin.join("engram")).unwrap();
    let fake = e.folder("fake");
    let script = "#!/bin/sh\necho 'zqxworkerstderr: Syntax Error near (secret words)' >&2\n\
                  printf '\\013\\0\\0\\0\\0\\0\\0\\0{\"ready\":1}'\nsleep 0.2\necho 'zqxworkerstderr again' >&2\nkill -SEGV $$\n";
    std::fs::write(fake.join("engram-extract"), script).unwrap();
    std::fs::set_permissions(fake.join("engram-extract"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = e.folder("docs");
    std::fs::write(dir.join("note.txt"), "the meerkat ledger").unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(bin.join("engram"))
        .args(["add", "--json", dir.to_str().unwrap()])
        .env_clear()
        .env("PATH", path)
        .env("HOME", e.tmp.path())
        .env("XDG_CONFIG_HOME", e.tmp.path().join("config"))
        .env("ENGRAM_DATA_DIR", &e.data)
        .env("ENGRAM_PASSPHRASE", &e.passphrase)
        .env("ENGRAM_MODELS", engram::models::models_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("zqxworkerstderr") && !stderr.contains("secret words"), "the worker's stderr reached engram's: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped_files"][0]["reason"], "worker_crashed", "{report}");
    assert_eq!(report["skipped_files"][0]["detail"], "the extraction worker crashed reading it (signal 11, SIGSEGV)", "{report}");
    assert!(!report.to_string().contains("zqxworkerstderr"), "{report}");
}

#[test]
fn forgetting_a_folder_forgets_what_was_remembered_of_its_files() {
    let e = Engram::init();
    tight_limits(&e);
    let dir = e.folder("docs");
    std::fs::write(dir.join("bomb.docx"), docx_bomb(3 << 10)).unwrap();
    std::fs::write(dir.join("broken.pdf"), b"%PDF-1.4\n1 0 obj << /Type /Catalog").unwrap();
    std::fs::write(dir.join("note.txt"), "the wombat ledger").unwrap();
    let d = dir.to_str().unwrap();
    let run = e.run(&["add", d]).ok();
    assert_quiet("engram add's stderr", &run.stderr);
    let mut names: Vec<String> = remembered(&e).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["bomb.docx", "broken.pdf"]);
    // A file that is deleted is forgotten with the folder's next add.
    std::fs::remove_file(dir.join("broken.pdf")).unwrap();
    e.run(&["add", d]).ok();
    assert_eq!(remembered(&e).len(), 1);
    e.run(&["forget", "--path", d]).ok();
    assert!(remembered(&e).is_empty(), "forget --path left a remembered skip behind");
}

#[test]
fn bombs_in_a_watched_folder_cost_a_worker_not_the_daemon_and_are_not_read_again_at_restart() {
    let e = Engram::init();
    tight_limits(&e);
    let dir = e.folder("watched");
    std::fs::write(dir.join("notes.txt"), "the pangolin ledger").unwrap();
    std::fs::write(dir.join("bomb.pdf"), pdf_bomb(4)).unwrap();
    let w = dir.to_str().unwrap();
    let d = Daemon::start(&e, None, &["--watch", w]);
    let pid = d.child.id();
    assert_eq!(hits(&e, "pangolin"), 1, "files beside the bomb are indexed at start");

    // A zip bomb arrives while it runs; so does an ordinary file after it.
    std::fs::write(dir.join("bomb.docx"), docx_bomb(3 << 10)).unwrap();
    std::fs::write(dir.join("later.txt"), "the okapi ledger").unwrap();
    wait_for(Duration::from_secs(60), "the file after the zip bomb", || (hits(&e, "okapi") == 1).then_some(()));
    // Between batches the daemon keeps no worker (nor its reader's memory).
    wait_for(Duration::from_secs(10), "the idle worker to be ended", || busy_worker(pid, 0).is_none().then_some(()));
    let mut found = remembered(&e);
    found.sort();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "bomb.docx");
    assert_eq!(found[1].0, "bomb.pdf");
    assert!(WORKER_FAILURES.contains(&found[1].1.as_str()), "{found:?}");
    // Alive, the same process, answering; the bombs never grew it (they inflate to GiBs).
    assert_eq!(d.state(&e).unwrap()["pid"], pid);
    assert!(d.state(&e).unwrap()["running"] == true);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(peak_kib < 1 << 20, "the daemon's peak RSS was {peak_kib} KiB");
    let log = d.stop();
    assert!(log.contains("1 file could not be read by the extraction worker"), "{log}");
    assert_quiet("the daemon's log", &log);

    // At restart neither bomb is read again: both are as they were when they failed.
    let d = Daemon::start(&e, None, &["--watch", w]);
    let log = d.stop();
    assert!(log.contains("2 unchanged, 2 skipped as before"), "{log}");
    assert!(!log.contains("could not be read by the extraction worker"), "a bomb was read again at restart:\n{log}");
    assert_quiet("the daemon's log", &log);
    assert_eq!(remembered(&e).len(), 2, "each bomb is listed once");

    // Changed while the daemon runs, the PDF is read again.
    let d = Daemon::start(&e, None, &["--watch", w]);
    rewrite_bytes(&dir.join("bomb.pdf"), &text_pdf("the tapir ledger"));
    wait_for(Duration::from_secs(30), "the changed file", || (hits(&e, "tapir") == 1).then_some(()));
    assert_eq!(remembered(&e).iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["bomb.docx"]);
    assert_quiet("the daemon's log", &d.stop());
}
