//! Runs the real `engram` binary against a throwaway data directory.
#![allow(dead_code)]

pub mod dbus;
pub mod gnome;
pub mod kde;
pub mod wayland;
pub mod x11;

use std::collections::BTreeMap;
use std::process::Child;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub struct Engram {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub passphrase: String,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

impl Engram {
    /// A new data directory, not yet initialised.
    pub fn new() -> Engram {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Engram { tmp, data, passphrase: "correct horse battery staple".into() }
    }

    /// A new, initialised store.
    pub fn init() -> Engram {
        let e = Engram::new();
        e.run(&["init"]).ok();
        e
    }

    /// A new store holding the whole bundled sample. Adding it (every file embedded) is the
    /// costliest step of the suite and most tests only read the result, so it is added once per
    /// run, into a template under the target directory, and each test gets a copy.
    pub fn with_sample() -> Engram {
        static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
        let template = TEMPLATE.get_or_init(|| {
            let e = Engram::init();
            let r = e.run(&["add", "--json", sample_dir().to_str().unwrap()]).ok().json();
            assert!(r.get("semantic_off").is_none(), "{r}");
            assert!(r["embedded"].as_u64().unwrap() >= 39, "{r}");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sample-store");
            let _ = std::fs::remove_dir_all(&dir);
            copy_dir(&e.data, &dir);
            dir
        });
        let e = Engram::new();
        copy_dir(template, &e.data);
        e
    }

    /// The screen memory of a window showing `text`, once search finds it by `words` (an
    /// English one first, then a Chinese one), checked to carry the window's app and title and
    /// to hold the text as the window holds it.
    pub fn window_found(&self, words: [&str; 2], app: &str, title: &str, text: &str) -> serde_json::Value {
        let hit = x11::wait_for(std::time::Duration::from_secs(60), "the window's text", || self.hits(words[0]).into_iter().next());
        assert_eq!((hit["app"].as_str(), hit["title"].as_str()), (Some(app), Some(title)), "{hit}");
        assert!(self.hits(words[1]).iter().any(|h| h["id"] == hit["id"]), "{:?} is not found", words[1]);
        let shown = self.run(&["show", "--json", &hit["id"].to_string()]).ok().json();
        assert!(shown["text"].as_str().unwrap().starts_with(text), "not the window's own text: {shown}");
        hit
    }

    /// The width and height of a screen memory's picture, as `show --image` writes it.
    pub fn picture_size(&self, id: &serde_json::Value) -> (u32, u32) {
        let png = self.tmp.path().join("frame.png");
        self.run(&["show", &id.to_string(), "--image", png.to_str().unwrap()]).ok();
        let head = std::fs::read(&png).unwrap();
        (u32::from_be_bytes(head[16..20].try_into().unwrap()), u32::from_be_bytes(head[20..24].try_into().unwrap()))
    }

    /// A new empty folder beside the data directory, for files to add.
    pub fn folder(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn command(&self) -> Command {
        self.command_via(&[])
    }

    /// The engram command run through a wrapper program, such as `setpriv ARGS…`.
    pub fn command_via(&self, wrapper: &[&str]) -> Command {
        let mut c = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_engram"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_engram")),
        };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("XDG_CONFIG_HOME", self.tmp.path().join("config"))
            .env("ENGRAM_DATA_DIR", &self.data)
            .env("ENGRAM_PASSPHRASE", &self.passphrase)
            // The models scripts/fetch-models.sh unpacked for the user running the tests.
            .env("ENGRAM_MODELS", engram::models::models_dir())
            .stdin(std::process::Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        finish(self.command().args(args).output().unwrap())
    }

    /// The results of a keyword search, as `search --json` gives them.
    pub fn hits(&self, query: &str) -> Vec<serde_json::Value> {
        self.run(&["search", "--json", "--mode", "keyword", query]).ok().json()["results"].as_array().unwrap().clone()
    }

    /// How many frames a running daemon left out for privacy (a password manager, an excluded
    /// site …).
    pub fn frames_excluded(&self) -> u64 {
        self.run(&["status", "--json"]).ok().json()["daemon"]["private"]["frames_excluded"].as_u64().unwrap_or(0)
    }

    pub fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        let mut c = self.command();
        c.args(args);
        f(&mut c);
        finish(c.output().unwrap())
    }

    pub fn search(&self, query: &str) -> Vec<serde_json::Value> {
        let out = self.run(&["search", "--json", query]).ok().json();
        out["results"].as_array().unwrap().clone()
    }

    /// The source of the first result, or "" when nothing matched.
    pub fn top_source(&self, query: &str) -> String {
        self.search(query).first().map(|r| r["source"].as_str().unwrap().to_string()).unwrap_or_default()
    }

    /// Every file under the data directory with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(&self.data, &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.insert(p, b);
        }
    }
}

fn finish(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Writes `text` to `path` and moves its modified time ahead, as an edit a moment later would.
pub fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(later).unwrap();
}

/// Writes `text` to `path` as if last changed `days` days ago.
pub fn write_aged(path: &Path, text: &str, days: u32) {
    std::fs::write(path, text).unwrap();
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400) * days;
    std::fs::File::options().write(true).open(path).unwrap().set_modified(then).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample")
}

/// An evaluation set under assets/eval (see its README for sources and licences).
pub fn eval_set(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/eval").join(name);
    assert!(p.join("corpus.jsonl").exists(), "evaluation set missing at {}", p.display());
    p
}

/// UTF-8 and UTF-16LE encodings of a string, as they might sit in a file.
pub fn encodings(s: &str) -> Vec<Vec<u8>> {
    let utf16: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    vec![s.as_bytes().to_vec(), utf16]
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A test session's programs, stopped newest first when dropped.
#[derive(Default)]
pub struct Processes(Vec<Child>);

impl Processes {
    pub fn push(&mut self, child: Child) {
        self.0.push(child);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Stops the newest (a window: focus goes back to the one before).
    pub fn close_last(&mut self) {
        if let Some(mut c) = self.0.pop() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        while let Some(mut c) = self.0.pop() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
