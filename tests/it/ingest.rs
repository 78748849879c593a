//! Bad inputs are counted and explained, never fatal; the index heals after a crash.

use std::path::Path;

use crate::util::{sample_dir, Engram};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[test]
fn bad_inputs_are_counted_with_reasons_and_good_files_are_found() {
    let e = Engram::init();
    let dir = e.folder("messy");
    write(&dir, "good.txt", b"the lighthouse keeper logs the weather every hour");
    write(&dir, "photo.png", &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 1, 0]);
    write(&dir, "broken-utf8.txt", b"caf\xe9 receipt: espresso and croissant \xff\xfe total 4.20");
    let (gbk, _, _) = encoding_rs::GBK.encode("灯塔看守人每小时记录一次天气情况。");
    write(&dir, "gbk.txt", &gbk);
    write(&dir, "empty.txt", b"");
    write(&dir, "big.txt", &b"lighthouse ".repeat(300));
    let pdf = std::fs::read(sample_dir().join("documents/home-insurance-policy.pdf")).unwrap();
    write(&dir, "truncated.pdf", &pdf[..pdf.len() / 3]);
    write(&dir, "secret.txt", b"unreadable lighthouse words");
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/loop")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("secret.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();

    let config = e.tmp.path().join("config.toml");
    std::fs::write(&config, "[files]\nmax_file_bytes = 2000\n").unwrap();
    let args = ["--config", config.to_str().unwrap(), "add", "--json", dir.to_str().unwrap()];
    // Root reads any file; drop the capability so the unreadable file really is unreadable.
    // Root reads any file; drop the capabilities that allow it so the file really is unreadable.
    let wrapper: &[&str] =
        if is_root() { &["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"] } else { &[] };
    let out = e.command_via(wrapper).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = &report["skipped"];
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(skipped["binary"], 1, "{report}");
    assert_eq!(skipped["empty"], 1, "{report}");
    assert_eq!(skipped["too_large"], 1, "{report}");
    assert_eq!(skipped["corrupt"], 1, "{report}");
    assert_eq!(skipped["unreadable"], 1, "{report}");
    assert_eq!(skipped["symlink_loop"], 1, "{report}");
    assert!(report["skipped_files"].as_array().unwrap().iter().all(|s| !s["detail"].as_str().unwrap().is_empty()));

    assert!(e.top_source("lighthouse keeper").ends_with("good.txt"));
    assert!(e.top_source("灯塔").ends_with("gbk.txt"));
    assert!(e.top_source("espresso croissant").ends_with("broken-utf8.txt"));
}

#[test]
fn a_missing_path_is_reported_not_fatal() {
    let e = Engram::init();
    let r = e.run(&["add", "--json", "/nonexistent/engram/nowhere"]).ok().json();
    assert_eq!(r["skipped"]["vanished"], 1);
}

#[test]
fn index_catches_up_after_a_crash_between_store_and_index() {
    let e = Engram::init();
    let notes = e.folder("notes");
    std::fs::write(notes.join("a.txt"), "first note about the aquarium pump").unwrap();
    e.run(&["add", notes.to_str().unwrap()]).ok();
    // Keep the index as it was, add more, then put the old index back: as if the process died
    // after the store committed and before the index did.
    let idx = e.data.join("index");
    let saved = e.tmp.path().join("index-before");
    copy_dir(&idx, &saved);
    std::fs::write(notes.join("b.txt"), "second note about the heron at the pond").unwrap();
    e.run(&["add", notes.to_str().unwrap()]).ok();
    std::fs::remove_dir_all(&idx).unwrap();
    copy_dir(&saved, &idx);
    assert!(e.top_source("heron").ends_with("b.txt"), "the index did not catch up");
    assert!(e.top_source("aquarium").ends_with("a.txt"));
    let s = e.run(&["status", "--json"]).ok().json();
    assert_eq!(s["index_generation"], s["generation"]);
}

#[test]
fn a_lost_index_is_rebuilt_from_the_store() {
    let e = Engram::init();
    e.run(&["add", sample_dir().join("notes").to_str().unwrap()]).ok();
    std::fs::remove_dir_all(e.data.join("index")).unwrap();
    assert!(e.top_source("tenancy").ends_with("flat-tenancy.md"));
}

#[test]
fn configured_exclusions_and_gitignore_are_honoured() {
    let e = Engram::init();
    let dir = e.tmp.path().join("proj");
    std::fs::create_dir_all(dir.join("private")).unwrap();
    std::fs::write(dir.join("private/diary.txt"), "walrus diary").unwrap();
    std::fs::write(dir.join("notes.txt"), "walrus notes").unwrap();
    std::fs::write(dir.join("build.log"), "walrus log").unwrap();
    std::fs::write(dir.join(".gitignore"), "*.log\n").unwrap();
    let config = e.tmp.path().join("config.toml");
    std::fs::write(&config, "[files]\nexclude = [\"**/private/**\"]\n").unwrap();
    let r = e.run(&["--config", config.to_str().unwrap(), "add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!((r["added"].as_u64(), r["excluded"].as_u64()), (Some(1), Some(1)), "{r}");
    assert_eq!(e.search("walrus").len(), 1);
}

#[test]
fn config_prints_effective_settings() {
    let e = Engram::new();
    let out = e.run(&["config"]).ok().stdout;
    assert!(out.contains("max_file_bytes = 20971520"), "{out}");
    let bad = e.tmp.path().join("bad.toml");
    std::fs::write(&bad, "[files]\nmax_size = 1\n").unwrap();
    let r = e.run(&["--config", bad.to_str().unwrap(), "config"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.toml"), "{}", r.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn adding_a_folder_again_forgets_files_deleted_from_it() {
    let e = Engram::init();
    let dir = e.folder("notes");
    write(&dir, "keep.txt", b"the heron stays");
    write(&dir, "gone.txt", b"the egret leaves");
    e.run(&["add", dir.to_str().unwrap()]).ok();
    assert_eq!(e.top_source("egret"), dir.join("gone.txt").to_str().unwrap());
    std::fs::remove_file(dir.join("gone.txt")).unwrap();
    let report = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!(report["removed"], 1, "{report}");
    assert_eq!(report["unchanged"], 1, "{report}");
    assert_eq!(e.top_source("egret"), "");
    assert_eq!(e.top_source("heron"), dir.join("keep.txt").to_str().unwrap());
    // Adding one file never forgets its neighbours.
    write(&dir, "other.txt", b"a kingfisher");
    let report = e.run(&["add", "--json", dir.join("other.txt").to_str().unwrap()]).ok().json();
    assert_eq!(report["removed"], 0);
    assert_eq!(e.top_source("heron"), dir.join("keep.txt").to_str().unwrap());
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_not_with_a_panic() {
    let e = Engram::init();
    e.run(&["add", sample_dir().to_str().unwrap()]).ok();
    // `engram search … | true`: the reader is gone before engram writes.
    let mut c = e.command();
    c.args(["search", "--mode", "keyword", "the"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_kept_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let e = Engram::init();
    let dir = e.folder("latin1");
    // Two names that read the same once made UTF-8 (each invalid byte becomes U+FFFD).
    let first = dir.join(OsStr::from_bytes(b"caf\xe9-notes.txt"));
    let second = dir.join(OsStr::from_bytes(b"caf\xe8-notes.txt"));
    std::fs::write(&first, "the narwhal ledger of the cafe").unwrap();
    std::fs::write(&second, "the walrus ledger of the bistro").unwrap();
    let r = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!((r["added"].as_u64(), r["updated"].as_u64()), (Some(2), Some(0)), "two files, two memories: {r}");
    // Found by content, shown with a readable (lossy) name.
    let hit = e.search("narwhal");
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert!(hit[0]["source"].as_str().unwrap().ends_with("caf\u{fffd}-notes.txt"), "{hit:?}");
    assert_eq!(e.search("walrus").len(), 1);
    // Adding again reads nothing and forgets nothing: the exact names are still there.
    let again = e.run(&["add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!((again["unchanged"].as_u64(), again["added"].as_u64(), again["removed"].as_u64()), (Some(2), Some(0), Some(0)), "{again}");
    // `forget --path` finds a file by its exact name.
    let out = e.command().args(["forget", "--json", "--path"]).arg(&first).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let forgot: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(forgot["forgotten"], 1, "{forgot}");
    assert!(e.search("narwhal").is_empty());
    assert_eq!(e.search("walrus").len(), 1, "only the named file is forgotten");
}

#[cfg(unix)]
#[test]
fn exclusions_apply_to_where_a_symlink_points() {
    let e = Engram::init();
    let private = e.tmp.path().join("elsewhere/private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("diary.txt"), "the okapi diary entry").unwrap();
    std::fs::write(private.join("single.txt"), "the tapir single entry").unwrap();
    let dir = e.folder("watched");
    std::fs::write(dir.join("notes.txt"), "plain capybara notes").unwrap();
    // A link to the excluded folder, and a link to one file in it, from inside the added folder.
    std::os::unix::fs::symlink(&private, dir.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(private.join("single.txt"), dir.join("linked-file.txt")).unwrap();
    let config = e.tmp.path().join("config.toml");
    std::fs::write(&config, "[files]\nexclude = [\"**/private/**\"]\n").unwrap();
    let cfg = config.to_str().unwrap();
    let r = e.run(&["--config", cfg, "add", "--json", dir.to_str().unwrap()]).ok().json();
    assert_eq!((r["added"].as_u64(), r["excluded"].as_u64()), (Some(1), Some(3)), "{r}");
    assert!(e.search("okapi").is_empty(), "a file in an excluded folder was read through a link");
    assert!(e.search("tapir").is_empty(), "an excluded file was read through a link");
    assert_eq!(e.search("capybara").len(), 1);
}

#[test]
fn reindex_refuses_while_the_daemon_runs() {
    use crate::util::x11::Daemon;
    let e = Engram::init();
    let notes = e.folder("notes");
    std::fs::write(notes.join("a.txt"), "the quokka ledger").unwrap();
    e.run(&["add", notes.to_str().unwrap()]).ok();
    let d = Daemon::start(&e, None, &["--watch", notes.to_str().unwrap()]);
    let r = e.run(&["reindex"]);
    assert_eq!(r.code, 2, "stdout {} stderr {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("daemon") && r.stderr.contains("running"), "{}", r.stderr);
    d.stop();
    e.run(&["reindex"]).ok();
    assert_eq!(e.search("quokka").len(), 1);
}
