//! Backup, restore, verify and the recovery code, on the real binary and the bytes on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::x11::{wait_for, Daemon};
use crate::util::{contains, encodings, Engram};

/// Words of the notes below that must never be in a backup in the clear.
const CANARIES: &[&str] = &["tenancy agreement", "请在月底前把发票交给财务部", "预算审查在周五下午", "zebrafishcanary"];

fn notes(e: &Engram) -> PathBuf {
    let dir = e.folder("notes");
    std::fs::write(
        dir.join("flat-tenancy.md"),
        "# Flat on Elm Street\nThe tenancy agreement for the flat at 14 Elm Street expires on 31 August 2027.\nMonthly rent is £1,450, paid on the 1st by standing order.\n",
    )
    .unwrap();
    std::fs::write(dir.join("报销说明.md"), "# 差旅报销\n请在月底前把发票交给财务部，逾期不予报销。\n").unwrap();
    std::fs::write(dir.join("会议纪要.txt"), "会议纪要：预算审查在周五下午三点，地点是三楼会议室。\n").unwrap();
    std::fs::write(dir.join("garage.txt"), "Parts and labour for the brakes came to 312.40 GBP; the oil change was 64.00 GBP.\n").unwrap();
    dir
}

/// Stores a screen memory with a picture, through the library as the daemon would.
fn add_picture(e: &Engram) -> i64 {
    use engram::extract::picture::{Image, Rect};
    use engram::extract::ocr::Word;
    let (w, h) = (240u32, 40u32);
    let mut img = Image { width: w, height: h, rgb: vec![235; (w * h * 3) as usize] };
    for y in 12..28 {
        for x in 10..150 {
            let i = ((y * w + x) * 3) as usize;
            img.rgb[i..i + 3].fill(30);
        }
    }
    let words = vec![
        Word { text: "zebrafishcanary".into(), rect: Rect { x: 10, y: 12, w: 100, h: 16 }, conf: 95.0, line: (1, 1, 1) },
        Word { text: "aquarium".into(), rect: Rect { x: 115, y: 12, w: 35, h: 16 }, conf: 95.0, line: (1, 1, 1) },
    ];
    let now = chrono::Utc::now().timestamp();
    let captured = engram::capture::privacy::redact_frame(img, words, "Firefox", "Aquarium shop", None, now, 80.0);
    let config = engram::config::Config::default();
    let mut store = engram::Engram::open(&e.data, e.passphrase.as_bytes(), config).unwrap();
    store.add_frame(&captured, None).unwrap()
}

/// Every search the test compares, in every mode, as the JSON the binary prints.
fn searches(e: &Engram) -> Vec<String> {
    let mut out = Vec::new();
    for q in ["tenancy agreement", "when must I move out", "发票", "预算审查", "brakes cost", "zebrafishcanary aquarium"] {
        for mode in ["hybrid", "keyword", "semantic"] {
            out.push(e.run(&["search", "--json", "--mode", mode, q]).ok().stdout);
        }
    }
    out
}

fn verify_json(e: &Engram) -> serde_json::Value {
    e.run(&["verify", "--json"]).ok().json()
}

fn rows(v: &serde_json::Value, table: &str) -> i64 {
    v["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).map(|t| t["rows"].as_i64().unwrap()).unwrap_or(0)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn backup_wipe_restore_brings_back_every_memory_vector_and_picture() {
    let e = Engram::init();
    let picture_id = add_picture(&e);
    let dir = notes(&e);
    e.run(&["add", dir.to_str().unwrap()]).ok();

    let status = |e: &Engram| {
        let s = e.run(&["status", "--json"]).ok().json();
        let keys = ["items", "files", "screens", "contents", "chunks", "text_bytes", "indexed_chunks", "frames", "frame_bytes", "chunks_without_vector"];
        keys.iter().map(|k| (k.to_string(), s[*k].clone())).collect::<Vec<_>>()
    };
    let before_status = status(&e);
    let before_check = verify_json(&e);
    assert!(rows(&before_check, "embeddings") >= 4, "the notes have vectors: {before_check}");
    assert_eq!(rows(&before_check, "frames"), 1);
    let before_search = searches(&e);
    assert!(before_search[0].contains("flat-tenancy.md"), "{}", before_search[0]);
    assert!(before_search[7].contains("报销说明.md"), "{}", before_search[7]);
    let (png_before, png_after) = (e.tmp.path().join("before.png"), e.tmp.path().join("after.png"));
    e.run(&["show", &picture_id.to_string(), "--image", png_before.to_str().unwrap()]).ok();

    let bak = e.tmp.path().join("usb/engram-backup");
    let r = e.run(&["backup", "--json", bak.to_str().unwrap()]).ok().json();
    assert_eq!(r["check"]["damaged"].as_array().unwrap().len(), 0, "{r}");
    assert!(r["index_files"].as_u64().unwrap() > 0 && r["database_bytes"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(rows(&r["check"], "items"), rows(&before_check, "items"));
    // Still sealed: no word of any note in any file of the backup, which only its owner can read.
    assert_eq!(mode(&bak), 0o700);
    for f in files_under(&bak) {
        assert_eq!(mode(&f), if f.is_dir() { 0o700 } else { 0o600 }, "{}", f.display());
        if f.is_file() {
            let bytes = std::fs::read(&f).unwrap();
            for canary in CANARIES {
                for enc in encodings(canary) {
                    assert!(!contains(&bytes, &enc), "{canary:?} in clear in {}", f.display());
                }
            }
        }
    }
    // A second backup into the same folder is refused, and leaves it as it was.
    let again = e.run(&["backup", bak.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{}", again.stderr);

    std::fs::remove_dir_all(&e.data).unwrap();
    let wiped = e.run(&["search", "--json", "lease"]);
    assert_ne!(wiped.code, 0);
    let r = e.run(&["restore", "--json", bak.to_str().unwrap()]).ok().json();
    assert!(r["set_aside"].is_null(), "{r}");

    assert_eq!(status(&e), before_status);
    let after_check = verify_json(&e);
    assert_eq!(after_check["tables"], before_check["tables"]);
    assert_eq!(searches(&e), before_search);
    e.run(&["show", &picture_id.to_string(), "--image", png_after.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&png_after).unwrap(), std::fs::read(&png_before).unwrap());
}

#[test]
fn restore_refuses_what_would_lose_data_and_changes_nothing_when_it_refuses() {
    let e = Engram::init();
    let dir = notes(&e);
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let bak = e.tmp.path().join("bak");
    e.run(&["backup", bak.to_str().unwrap()]).ok();
    // Something added after the backup, which a restore over it must not silently destroy.
    std::fs::write(dir.join("later.txt"), "a note written after the backup: quokkacanary\n").unwrap();
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let before = e.snapshot();

    let r = e.run(&["restore", bak.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let r = e.run_with(&["restore", "--force", bak.to_str().unwrap()], |c| {
        c.env("ENGRAM_PASSPHRASE", "not the passphrase");
    });
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(before == e.snapshot(), "a refused restore changed the data directory");

    // --force sets the newer store aside, whole and still openable, and restores the backup.
    let r = e.run(&["restore", "--force", "--json", bak.to_str().unwrap()]).ok().json();
    let aside = PathBuf::from(r["set_aside"].as_str().unwrap());
    assert!(aside.starts_with(&e.data), "{}", aside.display());
    assert!(e.search("quokkacanary").is_empty());
    assert_eq!(e.search("发票").len(), 1);
    let old = Engram { tmp: tempfile::tempdir().unwrap(), data: aside, passphrase: e.passphrase.clone() };
    assert_eq!(old.search("quokkacanary").len(), 1);
}

#[test]
fn backup_works_while_the_daemon_runs_and_restore_waits_for_it_to_stop() {
    let e = Engram::init();
    let dir = notes(&e);
    let d = Daemon::start(&e, None, &["--watch", dir.to_str().unwrap()]);
    wait_for(Duration::from_secs(120), "the daemon to index the notes", || (e.search("发票").len() == 1).then_some(()));
    // Keep the daemon writing while the backup is taken.
    // Each file appears whole (written beside the folder, then renamed into it), so whichever
    // the backup holds has its word.
    let outside = e.folder("outside");
    for i in 0..5 {
        let name = format!("during-{i}.txt");
        std::fs::write(outside.join(&name), format!("written during the backup, number {i} walrus\n")).unwrap();
        std::fs::rename(outside.join(&name), dir.join(&name)).unwrap();
    }
    let bak = e.tmp.path().join("online");
    let r = e.run(&["backup", "--json", bak.to_str().unwrap()]).ok().json();
    assert_eq!(r["check"]["damaged"].as_array().unwrap().len(), 0, "{r}");
    let refused = e.run(&["restore", "--force", bak.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("daemon"), "{}", refused.stderr);
    d.stop();

    // The copy opens elsewhere, whole, and its index agrees with its store.
    let copy = Engram::new();
    copy.run(&["restore", bak.to_str().unwrap()]).ok();
    let check = verify_json(&copy);
    assert_eq!(check["damaged"].as_array().unwrap().len(), 0, "{check}");
    let s = copy.run(&["status", "--json"]).ok().json();
    assert_eq!(s["indexed_chunks"], s["chunks"], "{s}");
    assert_eq!(copy.search("发票").len(), 1);
    let walrus = copy.run(&["search", "--json", "--mode", "keyword", "walrus"]).ok().json();
    assert_eq!(walrus["results"].as_array().unwrap().len() as i64, s["items"].as_i64().unwrap() - 4, "{s}");
}

/// The database file's bytes, with the byte at the middle of `needle` flipped.
fn flip_inside(path: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the sealed value is in the file") + needle.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_names_a_flipped_byte_in_the_database_and_in_an_index_file() {
    let e = Engram::init();
    let dir = notes(&e);
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let clean = e.run(&["verify"]).ok();
    assert!(clean.stdout.contains("integrity check ok"), "{}", clean.stdout);

    // A byte of one sealed chunk, flipped in the database file itself.
    let db_path = e.data.join("engram.db");
    let (chunk_id, body): (i64, Vec<u8>) = {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        db.query_row("SELECT id, body FROM chunks ORDER BY length(body) LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    let pristine = std::fs::read(&db_path).unwrap();
    flip_inside(&db_path, &body);
    let r = e.run(&["verify", "--json"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let damaged = r.json()["damaged"].clone();
    assert_eq!(damaged, serde_json::json!([{ "kind": "row", "table": "chunks", "column": "body", "row": chunk_id }]));
    let r = e.run(&["verify"]);
    assert_eq!(r.code, 4);
    assert!(r.stdout.contains(&format!("DAMAGED   chunks.body row {chunk_id}")), "{}", r.stdout);
    assert!(r.stderr.contains(&format!("chunks.body row {chunk_id}")), "{}", r.stderr);
    for canary in CANARIES {
        assert!(!r.stdout.contains(canary) && !r.stderr.contains(canary), "content in the report");
    }
    // A backup of a damaged store is still written (all else in it is sound), and says so.
    let bak = e.tmp.path().join("bak");
    let b = e.run(&["backup", bak.to_str().unwrap()]);
    assert_eq!(b.code, 4, "{}", b.stderr);
    assert!(bak.join("engram.db").exists());
    std::fs::write(&db_path, pristine).unwrap();
    e.run(&["verify"]).ok();

    // A byte of the index's term dictionary.
    let index = e.data.join("index");
    let term = std::fs::read_dir(&index)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".term.sealed"))
        .unwrap();
    let mut bytes = std::fs::read(index.join(&term)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(index.join(&term), bytes).unwrap();
    let r = e.run(&["verify", "--json"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    let name = term.trim_end_matches(".sealed");
    assert_eq!(r.json()["damaged"], serde_json::json!([{ "kind": "index_file", "file": name, "problem": "does not open" }]));
    // The index is derived from the store: reindex repairs it.
    e.run(&["reindex"]).ok();
    e.run(&["verify"]).ok();
    assert_eq!(e.search("发票").len(), 1);
}

#[test]
fn the_recovery_code_opens_the_store_and_a_wrong_one_exits_3() {
    let mut e = Engram::new();
    let init = e.run(&["init", "--json"]).ok().json();
    let code = init["recovery_code"].as_str().unwrap().to_string();
    let groups: Vec<&str> = code.split('-').collect();
    assert_eq!(groups.len(), 7, "{code}");
    assert!(groups.iter().all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())), "{code}");
    let dir = notes(&e);
    e.run(&["add", dir.to_str().unwrap()]).ok();
    // engram keeps no copy of the code.
    for (path, bytes) in e.snapshot() {
        for form in [code.clone(), code.replace('-', "")] {
            assert!(!contains(&bytes, form.as_bytes()), "the recovery code is in {}", path.display());
        }
    }

    let before = e.snapshot();
    let mut wrong = code.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '7' { '8' } else { '7' });
    for bad in [wrong.as_str(), "not a code"] {
        let r = e.run_with(&["passwd", "--recover"], |c| {
            c.env("ENGRAM_RECOVERY_CODE", bad).env("ENGRAM_NEW_PASSPHRASE", "a new passphrase");
        });
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains("wrong recovery code"), "{}", r.stderr);
        assert!(!r.stderr.contains(bad), "{}", r.stderr);
    }
    assert!(before == e.snapshot(), "a wrong recovery code changed the data directory");

    // The passphrase is forgotten: the code, typed loosely, sets a new one.
    let code_file = e.tmp.path().join("code.txt");
    std::fs::write(&code_file, format!("  {}\n", code.to_lowercase().replace('-', " "))).unwrap();
    let recover_from_file = |e: &Engram| {
        e.run_with(&["passwd", "--recover", "--recovery-code-file", code_file.to_str().unwrap()], |c| {
            c.env_remove("ENGRAM_PASSPHRASE").env("ENGRAM_NEW_PASSPHRASE", "a new passphrase");
        })
    };
    // A code file others can read is no secret: refused, with the fix.
    let r = recover_from_file(&e);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    assert!(before == e.snapshot());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&code_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let r = recover_from_file(&e);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(&code) && !r.stderr.contains(&code));
    assert_eq!(e.run(&["status"]).code, 3, "the old passphrase no longer opens it");
    e.passphrase = "a new passphrase".into();
    assert_eq!(e.search("发票").len(), 1);

    // A passphrase change keeps the code working; the code from the environment works too.
    e.run_with(&["passwd"], |c| {
        c.env("ENGRAM_NEW_PASSPHRASE", "third passphrase");
    })
    .ok();
    e.run_with(&["passwd", "--recover"], |c| {
        c.env("ENGRAM_RECOVERY_CODE", &code).env("ENGRAM_NEW_PASSPHRASE", "fourth passphrase");
    })
    .ok();
    e.passphrase = "fourth passphrase".into();
    e.run(&["verify"]).ok();

    // A new code replaces the old one.
    let fresh = e.run(&["passwd", "--new-recovery-code", "--json"]).ok().json()["recovery_code"].as_str().unwrap().to_string();
    assert_ne!(fresh, code);
    let r = e.run_with(&["passwd", "--recover"], |c| {
        c.env("ENGRAM_RECOVERY_CODE", &code).env("ENGRAM_NEW_PASSPHRASE", "fifth");
    });
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn without_a_recovery_code_only_the_passphrase_opens_the_store() {
    let e = Engram::new();
    let init = e.run(&["init", "--no-recovery-code"]).ok();
    assert!(!init.stdout.to_lowercase().contains("recovery code"), "{}", init.stdout);
    let key: serde_json::Value = serde_json::from_slice(&std::fs::read(e.data.join("key.json")).unwrap()).unwrap();
    assert_eq!(key["version"], 1, "a key file without a recovery wrap stays version 1: {key}");
    assert!(key.get("recovery").is_none());
    let r = e.run_with(&["passwd", "--recover"], |c| {
        c.env("ENGRAM_RECOVERY_CODE", "0000-0000-0000-0000-0000-0000-0000").env("ENGRAM_NEW_PASSPHRASE", "new");
    });
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no recovery code"), "{}", r.stderr);
    e.run(&["status"]).ok();
}
