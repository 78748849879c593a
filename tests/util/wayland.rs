//! A headless sway (wlroots, pixman renderer, no GPU) with Wayland-native windows, for tests.
//! sway refuses to run as root, and CI runs as root: then sway and its windows run as an
//! unprivileged user the test makes; the daemon under test connects to its socket as root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::x11::wait_for;

const USER: &str = "engram-wl";

pub struct Sway {
    /// XDG_RUNTIME_DIR of the session: its sockets and the windows' text files.
    pub runtime: tempfile::TempDir,
    pub wayland_display: String,
    pub swaysock: PathBuf,
    server: Child,
    windows: Vec<Child>,
    ids: Option<(u32, u32)>,
}

/// The unprivileged user's uid and gid, made once per machine when running as root.
pub fn user() -> Option<(u32, u32)> {
    // SAFETY: reads the process's own uid.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MADE.lock().unwrap();
    let id = |flag: &str| Command::new("id").args([flag, USER]).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().unwrap());
    if id("-u").is_none() {
        let status = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]).status().expect("useradd (passwd) is missing");
        assert!(status.success(), "could not make the user {USER} for sway");
    }
    Some((id("-u").unwrap(), id("-g").unwrap()))
}

impl Sway {
    pub fn start() -> Sway {
        let ids = user();
        let runtime = tempfile::Builder::new().prefix("engram-sway-").tempdir().unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(runtime.path(), Some(uid), Some(gid)).unwrap();
        }
        let config = runtime.path().join("sway.conf");
        std::fs::write(&config, "output HEADLESS-1 resolution 1280x800\nxwayland disable\n").unwrap();
        let mut sway = Sway { runtime, wayland_display: String::new(), swaysock: PathBuf::new(), server: dummy(), windows: Vec::new(), ids };
        let mut cmd = sway.as_user("sway");
        cmd.args(["-c", config.to_str().unwrap()])
            .env("WLR_BACKENDS", "headless")
            .env("WLR_RENDERER", "pixman")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        sway.server = cmd.spawn().expect("sway is not installed: scripts/test.sh installs it (Debian package sway)");
        let dir = sway.runtime.path().to_path_buf();
        let (display, sock) = wait_for(Duration::from_secs(30), "sway to start", || {
            let names: Vec<String> = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            let display = names.iter().find(|n| n.starts_with("wayland-") && !n.ends_with(".lock"))?.clone();
            let sock = names.iter().find(|n| n.starts_with("sway-ipc."))?.clone();
            Some((display, dir.join(sock)))
        });
        (sway.wayland_display, sway.swaysock) = (display, sock);
        sway
    }

    /// A command run as the session's user, in the session.
    fn as_user(&self, program: &str) -> Command {
        let mut cmd = as_user(self.ids, self.runtime.path(), program);
        if !self.wayland_display.is_empty() {
            cmd.env("WAYLAND_DISPLAY", &self.wayland_display).env("SWAYSOCK", &self.swaysock);
        }
        cmd
    }

    /// What a daemon needs to record this session.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("XDG_RUNTIME_DIR".into(), self.runtime.path().display().to_string()),
            ("WAYLAND_DISPLAY".into(), self.wayland_display.clone()),
            ("SWAYSOCK".into(), self.swaysock.display().to_string()),
        ]
    }

    fn text_file(&self, text: &str) -> PathBuf {
        text_file(self.ids, self.runtime.path(), text)
    }

    /// A foot terminal with this app_id and title showing `text` in a font OCR can read.
    pub fn terminal(&mut self, app_id: &str, title: &str, text: &str) {
        let file = self.text_file(text);
        let mut cmd = self.as_user("foot");
        cmd.args(["--app-id", app_id, "--title", title, "--font", "Noto Sans Mono CJK SC:size=14"])
            .args(["sh", "-c", &format!("cat '{0}'; rm -f '{0}'; exec sleep 100000", file.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.windows.push(cmd.spawn().expect("foot is not installed: scripts/test.sh installs it"));
        wait_for(Duration::from_secs(20), "the terminal to show its text", || (!file.exists()).then_some(()));
        self.wait_window(app_id);
    }

    /// A GTK 3 window (python3-gi) with this app_id and title, showing `text` as a label.
    pub fn gtk(&mut self, app_id: &str, title: &str, text: &str) {
        let file = self.text_file(text);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/gtk_window.py");
        // Debian's python3, which python3-gi belongs to, not another on PATH.
        let mut cmd = self.as_user("/usr/bin/python3");
        cmd.arg(script).args([app_id, title, file.to_str().unwrap()]).env("GDK_BACKEND", "wayland").stdout(Stdio::null()).stderr(Stdio::null());
        self.windows.push(cmd.spawn().expect("python3 is missing"));
        self.wait_window(app_id);
    }

    fn wait_window(&self, app_id: &str) {
        wait_for(Duration::from_secs(30), "the window to be mapped", || self.tree().contains(&format!("\"app_id\": \"{app_id}\"")).then_some(()));
        std::thread::sleep(Duration::from_millis(500));
    }

    pub fn swaymsg(&self, args: &[&str]) -> String {
        let out = self.as_user("swaymsg").args(args).output().expect("swaymsg comes with sway");
        assert!(out.status.success(), "swaymsg {args:?}: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn tree(&self) -> String {
        self.swaymsg(&["-r", "-t", "get_tree"])
    }

    pub fn focus(&self, app_id: &str) {
        self.swaymsg(&[&format!("[app_id=\"{app_id}\"]"), "focus"]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        for w in &mut self.windows {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// `program` run as the unprivileged user (when root), with a clean environment whose home and
/// runtime directory are `runtime`.
pub fn as_user(ids: Option<(u32, u32)>, runtime: &Path, program: &str) -> Command {
    let mut cmd = match ids {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", &uid.to_string(), "--regid", &gid.to_string(), "--clear-groups", program]);
            c
        }
        None => Command::new(program),
    };
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", runtime)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("LANG", "C.UTF-8");
    cmd
}

/// A file in `runtime` holding `text`, which the session's user can read and remove.
pub fn text_file(ids: Option<(u32, u32)>, runtime: &Path, text: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = runtime.join(format!("text-{n}.txt"));
    std::fs::write(&file, text).unwrap();
    if let Some((uid, gid)) = ids {
        std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    }
    file
}

/// A finished child, so `Sway` can be built before sway starts.
pub fn dummy() -> Child {
    let mut c = Command::new("true").spawn().unwrap();
    let _ = c.wait();
    c
}
