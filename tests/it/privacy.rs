//! The privacy invariants of ARCHITECTURE.md, checked on the real binary and the bytes on disk.

use crate::util::{contains, encodings, Engram};

const CANARIES: &[&str] =
    &["zqxcanarylatin7731", "鹦鹉螺号潜水艇秘密", "zqxfilenamecanary", "機密檔案鸚鵡", "zqxbytesnamecanary", "zqxskippedcanary"];

fn canary_store() -> (Engram, std::path::PathBuf) {
    let e = Engram::init();
    let dir = e.folder("private");
    std::fs::write(dir.join("zqxfilenamecanary.txt"), "meeting notes mention zqxcanarylatin7731 twice: zqxcanarylatin7731").unwrap();
    std::fs::write(dir.join("機密檔案鸚鵡.md"), "# 日记\n今天看到了鹦鹉螺号潜水艇秘密的模型。").unwrap();
    // A damaged document is remembered as skipped (path and reason sealed, see tests/it/extract.rs).
    std::fs::write(dir.join("zqxskippedcanary.docx"), b"PK\x03\x04 not a zip").unwrap();
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let skipped = e.run(&["status", "--json"]).ok().json()["skipped_files"].clone();
    assert!(skipped.to_string().contains("zqxskippedcanary.docx"), "{skipped}");
    (e, dir)
}

/// Whether a saved vector index (`scan` or `graph`) is in the data directory.
fn saved_vectors(e: &Engram, kind: &str) -> bool {
    let suffix = format!(".{kind}.sealed");
    e.snapshot().keys().any(|p| p.parent().is_some_and(|d| d.ends_with("vectors")) && p.to_string_lossy().ends_with(&suffix))
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
    // The vectors as a scan, saved for the next process.
    assert!(saved_vectors(&e, "scan"), "no vector index saved: {:?}", e.snapshot().keys());
    assert_no_plaintext(&e);
    // From here on a graph from the first vector, so its sealed file is checked too.
    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[search]\ngraph_from = 1\n").unwrap();
    // A name that is not UTF-8 is sealed as the bytes it is.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = e.folder("private");
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"zqxbytesnamecanary-caf\xe9.txt")), "notes on the okapi enclosure").unwrap();
        e.run(&["add", dir.to_str().unwrap()]).ok();
        let keyword = |q: &str| e.run(&["search", "--json", "--mode", "keyword", q]).ok().json()["results"].as_array().unwrap().len();
        assert_eq!(keyword("okapi"), 1);
        assert_eq!(keyword("zqxbytesnamecanary"), 1);
        assert!(saved_vectors(&e, "graph") && !saved_vectors(&e, "scan"), "{:?}", e.snapshot().keys());
    }
    // Captions are lines of the memory: sealed like it.
    e.run(&["caption"]).ok();
    let timeline = e.run(&["timeline", "--json"]).ok().stdout;
    assert!(timeline.contains("\"caption\":\"meeting notes mention zqxcanarylatin7731"), "{timeline}");
    assert_no_plaintext(&e);
    assert_no_plaintext_in_derived_models();
}

/// The files engram writes beside the models (the embedder's laid-out weights, the language
/// model's conversion) are made from the public models only.
fn assert_no_plaintext_in_derived_models() {
    let models = engram::models::models_dir();
    let derived: Vec<_> = walk(&models).into_iter().filter(|p| p.to_string_lossy().contains(".engram-")).collect();
    let layout = models.join(engram::models::DEFAULT_EMBEDDER).join("model.engram-layout");
    assert!(derived.contains(&layout), "the searches above lay out the embedder's weights: {derived:?}");
    for path in derived {
        let bytes = std::fs::read(&path).unwrap();
        for canary in CANARIES {
            for enc in encodings(canary) {
                assert!(memchr::memmem::find(&bytes, &enc).is_none(), "{canary:?} found in {}", path.display());
            }
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn forgotten_memories_are_gone_from_search_and_disk() {
    let (e, dir) = canary_store();
    let out = e.run(&["forget", "--json", "--path", dir.to_str().unwrap()]).ok().json();
    assert_eq!(out["forgotten"], 2);
    // The saved index holds their vectors: it goes with them.
    assert!(!saved_vectors(&e, "scan") && !saved_vectors(&e, "graph"));
    assert!(e.search("zqxcanarylatin7731").is_empty());
    assert!(e.search("潜水艇").is_empty());
    assert!(e.search("zqxfilenamecanary").is_empty());
    assert_no_plaintext(&e);
    let s = e.run(&["status", "--json"]).ok().json();
    assert_eq!((s["items"].as_i64(), s["chunks"].as_i64(), s["indexed_chunks"].as_i64()), (Some(0), Some(0), Some(0)));
    assert_eq!(s["skipped_files"], serde_json::json!([]), "the remembered skip was left behind");
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
    // Passphrase files must be the user's alone.
    use std::os::unix::fs::PermissionsExt;
    let shared = e.run_with(&["status", "--passphrase-file", old.to_str().unwrap()], |c| {
        c.env_remove("ENGRAM_PASSPHRASE");
    });
    assert_eq!(shared.code, 3, "{}", shared.stderr);
    assert!(shared.stderr.contains("chmod 600"), "{}", shared.stderr);
    for f in [&old, &new] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
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

#[test]
fn document_titles_are_redacted_like_window_titles() {
    let e = Engram::init();
    let dir = e.folder("mail");
    std::fs::write(
        dir.join("order.eml"),
        "From: Shop <shop@example.com>\r\nTo: me@example.com\r\nSubject: Card 4111 1111 1111 1111 charged\r\n\
         Date: Tue, 3 Mar 2020 10:00:00 +0000\r\n\r\nThe gannet order shipped today.\r\n",
    )
    .unwrap();
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let hit = e.search("gannet");
    assert_eq!(hit.len(), 1, "{hit:?}");
    let title = hit[0]["title"].as_str().unwrap();
    assert!(title.contains("[redacted card number]") && !title.contains("4111"), "{title}");
    let shown = e.run(&["show", "--json", &hit[0]["id"].to_string()]).ok().json();
    assert!(!shown["title"].as_str().unwrap().contains("1111"), "{shown}");
    assert!(e.run(&["search", "--json", "--mode", "keyword", "4111"]).ok().json()["results"].as_array().unwrap().is_empty());
}

#[test]
fn exact_sizes_and_modified_times_are_not_in_the_clear() {
    let e = Engram::init();
    let dir = e.folder("mail");
    let path = dir.join("report.eml");
    // A stated date, so the memory's time is not the file's modified time.
    let body = format!(
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: pelican\r\nDate: Tue, 3 Mar 2020 10:00:00 +0000\r\n\r\n{}\r\n",
        "the pelican report counts birds ".repeat(30)
    );
    std::fs::write(&path, &body).unwrap();
    let mtime = 1_600_000_123i64;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(at).unwrap();
    let size = std::fs::metadata(&path).unwrap().len() as i64;
    e.run(&["add", dir.to_str().unwrap()]).ok();
    let id = e.search("pelican")[0]["id"].as_i64().unwrap();
    // The exact size is still shown, from its sealed copy.
    let shown = e.run(&["show", "--json", &id.to_string()]).ok().json();
    assert_eq!(shown["size"].as_i64(), Some(size), "{shown}");
    // Adding again still knows the file is unchanged.
    let again = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!(again["unchanged"], 1, "{again}");
    // No clear value in any table is the exact size or modified time.
    let db = rusqlite::Connection::open(e.data.join("engram.db")).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                if let rusqlite::types::ValueRef::Integer(v) = row.get_ref(i).unwrap() {
                    assert!(v != size && v != mtime, "{table}.{column} holds the exact {}", if v == size { "size" } else { "modified time" });
                }
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn a_picture_written_by_show_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use crate::util::x11::{wait_for, Daemon, X};
    let mut x = X::start();
    let e = Engram::init();
    x.terminal("Field notes - xterm", "XTerm", "the cassowary crossed the road\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    let hit = wait_for(std::time::Duration::from_secs(60), "the screen text", || e.search("cassowary").into_iter().next());
    d.stop();
    let id = hit["id"].as_i64().unwrap().to_string();
    let fresh = e.tmp.path().join("frame.png");
    let existing = e.tmp.path().join("old.png");
    std::fs::write(&existing, b"old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    for out in [&fresh, &existing] {
        let mut c = e.command();
        c.args(["show", &id, "--image"]).arg(out);
        // SAFETY: umask is async-signal-safe; it only sets the child's file creation mask.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mode = std::fs::metadata(out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", out.display());
    }
}
