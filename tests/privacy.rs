//! The privacy invariants of DESIGN.md, checked on the real binary and the bytes on disk.

mod util;

use util::{contains, encodings, Engram};

const CANARIES: &[&str] = &["zqxcanarylatin7731", "鹦鹉螺号潜水艇秘密", "zqxfilenamecanary", "機密檔案鸚鵡"];

fn canary_store() -> (Engram, std::path::PathBuf) {
    let e = Engram::init();
    let dir = e.folder("private");
    std::fs::write(dir.join("zqxfilenamecanary.txt"), "meeting notes mention zqxcanarylatin7731 twice: zqxcanarylatin7731").unwrap();
    std::fs::write(dir.join("機密檔案鸚鵡.md"), "# 日记\n今天看到了鹦鹉螺号潜水艇秘密的模型。").unwrap();
    e.run(&["add", dir.to_str().unwrap()]).ok();
    (e, dir)
}

fn assert_no_plaintext(e: &Engram) {
    let files = e.snapshot();
    assert!(files.keys().any(|p| p.ends_with("engram.db")));
    for (path, bytes) in &files {
        for canary in CANARIES {
            for enc in encodings(canary) {
                assert!(!contains(bytes, &enc), "{canary:?} found in clear in {}", path.display());
            }
        }
    }
}

#[test]
fn canaries_are_never_on_disk_in_the_clear() {
    let (e, _) = canary_store();
    // They are really indexed: search finds each, by content and by file name.
    assert_eq!(e.search("zqxcanarylatin7731").len(), 1);
    assert_eq!(e.search("潜水艇").len(), 1);
    assert_eq!(e.search("zqxfilenamecanary").len(), 1);
    assert_eq!(e.search("鸚鵡").len(), 1);
    // Captions are lines of the memory: sealed like it.
    e.run(&["caption"]).ok();
    let timeline = e.run(&["timeline", "--json"]).ok().stdout;
    assert!(timeline.contains("\"caption\":\"meeting notes mention zqxcanarylatin7731"), "{timeline}");
    assert_no_plaintext(&e);
}

#[test]
fn forgotten_memories_are_gone_from_search_and_disk() {
    let (e, dir) = canary_store();
    let out = e.run(&["forget", "--json", "--path", dir.to_str().unwrap()]).ok().json();
    assert_eq!(out["forgotten"], 2);
    assert!(e.search("zqxcanarylatin7731").is_empty());
    assert!(e.search("潜水艇").is_empty());
    assert!(e.search("zqxfilenamecanary").is_empty());
    assert_no_plaintext(&e);
    let s = e.run(&["status", "--json"]).ok().json();
    assert_eq!((s["items"].as_i64(), s["chunks"].as_i64(), s["indexed_chunks"].as_i64()), (Some(0), Some(0), Some(0)));
}

#[test]
fn forget_by_id_and_before() {
    let (e, _) = canary_store();
    let id = e.search("zqxcanarylatin7731")[0]["id"].as_i64().unwrap();
    e.run(&["forget", "--id", &id.to_string()]).ok();
    assert!(e.search("zqxcanarylatin7731").is_empty());
    assert_eq!(e.search("潜水艇").len(), 1);
    e.run(&["forget", "--before", "now"]).ok();
    assert!(e.search("潜水艇").is_empty());
}

#[test]
fn wrong_passphrase_exits_3_and_changes_nothing() {
    let (mut e, _) = canary_store();
    let before = e.snapshot();
    e.passphrase = "not the passphrase".into();
    for args in [&["search", "zqx"][..], &["status"], &["add", "/tmp"], &["forget", "--before", "now"]] {
        let r = e.run(args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("wrong passphrase"), "{}", r.stderr);
    }
    assert!(before == e.snapshot(), "the data directory changed");
}

#[test]
fn no_passphrase_and_no_terminal_exits_3() {
    let (e, _) = canary_store();
    let r = e.run_with(&["search", "zqx"], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("--passphrase-file"), "{}", r.stderr);
}

#[test]
fn passphrase_file_and_passwd() {
    let (e, _) = canary_store();
    let old = e.tmp.path().join("old.txt");
    let new = e.tmp.path().join("new.txt");
    std::fs::write(&old, format!("{}\n", e.passphrase)).unwrap();
    std::fs::write(&new, "a brand new passphrase\n").unwrap();
    let no_env = |c: &mut std::process::Command| {
        c.env_remove("ENGRAM_PASSPHRASE");
    };
    e.run_with(&["status", "--passphrase-file", old.to_str().unwrap()], no_env).ok();
    e.run_with(&["passwd", "--passphrase-file", old.to_str().unwrap(), "--new-passphrase-file", new.to_str().unwrap()], no_env).ok();
    assert_eq!(e.run_with(&["status", "--passphrase-file", old.to_str().unwrap()], no_env).code, 3);
    let r = e.run_with(&["search", "--json", "zqxcanarylatin7731", "--passphrase-file", new.to_str().unwrap()], no_env).ok();
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 1);
}

#[test]
fn flipped_byte_in_sealed_text_is_reported_as_tampering() {
    let (e, _) = canary_store();
    let id = e.search("zqxcanarylatin7731")[0]["id"].as_i64().unwrap();
    {
        let db = rusqlite::Connection::open(e.data.join("engram.db")).unwrap();
        let body: Vec<u8> = db.query_row("SELECT body FROM chunks ORDER BY id LIMIT 1", [], |r| r.get(0)).unwrap();
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        db.execute("UPDATE chunks SET body = ?1 WHERE body = ?2", rusqlite::params![bad, body]).unwrap();
    }
    let show = e.run(&["show", &id.to_string()]);
    let search = e.run(&["search", "--mode", "keyword", "zqxcanarylatin7731"]);
    // The other memory is intact and still found, with the damage reported beside it.
    let other = e.run(&["search", "--json", "--mode", "keyword", "潜水艇"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert_eq!(other.json()["results"].as_array().unwrap().len(), 1);
    let both = [show, search];
    for r in &both {
        assert_eq!(r.code, 4, "stdout {} stderr {}", r.stdout, r.stderr);
        assert!(r.stderr.contains("tamper"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked"));
    }
}

#[test]
fn flipped_byte_in_the_index_is_reported_and_reindex_repairs_it() {
    let (e, _) = canary_store();
    let idx = e.data.join("index");
    let victim = std::fs::read_dir(&idx)
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .find(|p| p.to_string_lossy().ends_with(".term.sealed"))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let r = e.run(&["search", "zqxcanarylatin7731"]);
    assert_eq!(r.code, 4, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("engram reindex"), "{}", r.stderr);
    e.run(&["reindex"]).ok();
    assert_eq!(e.search("zqxcanarylatin7731").len(), 1);
}

#[cfg(unix)]
#[test]
fn data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let e = Engram::init();
    let mode = std::fs::metadata(&e.data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let key_mode = std::fs::metadata(e.data.join("key.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600);
    let db_mode = std::fs::metadata(e.data.join("engram.db")).unwrap().permissions().mode() & 0o777;
    assert_eq!(db_mode, 0o600);
}

#[test]
fn init_twice_is_refused() {
    let e = Engram::init();
    let r = e.run(&["init"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
}
