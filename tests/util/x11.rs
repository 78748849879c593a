//! A virtual X server with a window manager and terminals, and a running daemon, for tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Engram;

/// An X server with a window manager (or none), stopped on drop.
pub struct X {
    pub display: String,
    server: Child,
    wm: Option<Child>,
    windows: Vec<Child>,
}

/// A terminal window to open: `program` is the xterm to run (a copy under another name, to
/// test recognising a program by its executable).
pub struct Term<'a> {
    pub title: &'a str,
    pub class: &'a str,
    pub text: &'a str,
    pub program: &'a str,
    /// `COLSxROWS+X+Y`.
    pub geometry: &'a str,
    /// Drawn over everything without the window manager, as notifications and menus are.
    pub override_redirect: bool,
    /// A font with Chinese glyphs (its wide cells space Latin letters far apart); false: xterm's
    /// own fixed font.
    pub cjk_font: bool,
}

impl Default for Term<'_> {
    fn default() -> Self {
        Term { title: "", class: "XTerm", text: "", program: "xterm", geometry: "100x20+40+40", override_redirect: false, cjk_font: true }
    }
}

impl X {
    /// An X server with no window manager: nothing says which window has focus.
    pub fn start_bare() -> X {
        let (server, display) = Self::server();
        X { display, server, wm: None, windows: Vec::new() }
    }

    fn server() -> (Child, String) {
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is not installed: scripts/test.sh installs it (Debian package xvfb)");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        (server, format!(":{}", line.trim()))
    }

    pub fn start() -> X {
        let (server, display) = Self::server();
        let wm = Command::new("openbox")
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openbox is not installed: scripts/test.sh installs it");
        let x = X { display, server, wm: Some(wm), windows: Vec::new() };
        // The window manager is up once it has claimed the root window's supporting-WM hint.
        wait_for(Duration::from_secs(60), "openbox to start", || {
            let out = Command::new("xprop").args(["-root", "_NET_SUPPORTING_WM_CHECK"]).env("DISPLAY", &x.display).output().ok()?;
            String::from_utf8_lossy(&out.stdout).contains("window id").then_some(())
        });
        x
    }

    /// An xterm with this title and class showing `text`, brought to the front.
    pub fn terminal(&mut self, title: &str, class: &str, text: &str) {
        self.open(Term { title, class, text, ..Default::default() });
        self.activate(title);
    }

    /// Opens a terminal window (not brought to the front) and waits until it shows its text.
    pub fn open(&mut self, t: Term) {
        // One name per window across every test of the process: tests run in parallel, and a
        // name shared between two X servers let one window show another test's text.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = std::env::temp_dir().join(format!("engram-xterm-{}-{n}.txt", std::process::id()));
        std::fs::write(&file, t.text).unwrap();
        let mut cmd = Command::new(t.program);
        cmd.env("DISPLAY", &self.display).args(["-T", t.title, "-class", t.class, "-geometry", t.geometry]);
        if t.cjk_font {
            cmd.args(["-fa", "Noto Sans Mono CJK SC", "-fs", "14"]);
        }
        if t.override_redirect {
            cmd.args(["-xrm", "*overrideRedirect: true"]);
        }
        let child = cmd
            .args(["-e", "sh", "-c", &format!("cat '{}'; rm -f '{}'; exec sleep 100000", file.display(), file.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm is not installed: scripts/test.sh installs it");
        self.windows.push(child);
        // The text is on screen once the shell has removed the file it read it from.
        wait_for(Duration::from_secs(20), "the terminal to show its text", || (!file.exists()).then_some(()));
        std::thread::sleep(Duration::from_millis(300));
    }

    /// A GTK 3 window (tests/util/gtk_window.py) showing `text` in a label, with these variables
    /// (a session bus) set, brought to the front once mapped.
    pub fn gtk(&mut self, env: &[(String, String)], app_id: &str, title: &str, text: &str) {
        self.gtk_with(env, app_id, title, text, &[]);
    }

    /// The same, with gtk_window.py's extra arguments (`browser ADDRESS`).
    pub fn gtk_with(&mut self, env: &[(String, String)], app_id: &str, title: &str, text: &str, extra: &[&str]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/gtk_window.py");
        // Debian's python3, which python3-gi belongs to, not another on PATH.
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([app_id, title, file.path().to_str().unwrap()])
            .args(extra)
            .env("DISPLAY", &self.display)
            .env("GDK_BACKEND", "x11")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is missing");
        self.windows.push(child);
        // `--sync` waits for ever: a window that never maps (GTK missing) fails the test instead.
        let status = Command::new("timeout")
            .args(["30", "xdotool", "search", "--sync", "--name", &format!("^{}$", regex_escape(title))])
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the GTK window {title:?} did not map within 30 s (python3-gi and gir1.2-gtk-3.0 installed?)");
        std::thread::sleep(Duration::from_millis(500));
        self.activate(title);
    }

    /// Debian's Chromium showing `page` (a data: URL whose <title> is `title`) in a new window
    /// of the browser using `profile`, with `flags` (`--incognito`), brought to the front once
    /// mapped. Its window's title is `TITLE - Chromium`.
    pub fn chromium(&mut self, env: &[(String, String)], profile: &std::path::Path, flags: &[&str], title: &str, page: &str) {
        let name = format!("{title} - Chromium");
        let log = profile.join("chromium.log");
        // In two full runs of the suite of many, Chromium never showed its window, its log
        // saying nothing of why: it gets one more try before the test fails.
        for _ in 0..2 {
            let child = Command::new("chromium")
                .args(["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(flags)
                .arg(page)
                .env("DISPLAY", &self.display)
                .env("HOME", profile)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("chromium is not installed: scripts/test.sh installs it");
            self.windows.push(child);
            let mapped = Command::new("timeout")
                .args(["60", "xdotool", "search", "--sync", "--name", &format!("^{}$", regex_escape(&name))])
                .env("DISPLAY", &self.display)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            if mapped.success() {
                std::thread::sleep(Duration::from_millis(500));
                self.activate(&name);
                return;
            }
            if let Some(mut c) = self.windows.pop() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = said.lines().rev().take(30).collect();
        let shown = Command::new("xdotool").args(["search", "--onlyvisible", "--name", "."]).env("DISPLAY", &self.display).output().unwrap();
        let names: Vec<String> = String::from_utf8_lossy(&shown.stdout)
            .lines()
            .filter_map(|w| Command::new("xdotool").args(["getwindowname", w]).env("DISPLAY", &self.display).output().ok())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .collect();
        panic!("Chromium's window {name:?} did not map in two tries of 60 s; windows shown: {names:?}; it said:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }

    pub fn activate(&self, title: &str) {
        let status = Command::new("xdotool")
            .env("DISPLAY", &self.display)
            .args(["search", "--sync", "--name", &format!("^{}$", regex_escape(title)), "windowactivate", "--sync"])
            .status()
            .expect("xdotool is not installed: scripts/test.sh installs it");
        assert!(status.success(), "could not activate the window {title:?}");
    }
}

impl Drop for X {
    fn drop(&mut self) {
        for w in &mut self.windows {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(wm) = &mut self.wm {
            let _ = wm.kill();
            let _ = wm.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if "\\.+*?()|[]{}^$".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
}

/// A running daemon, stopped with SIGTERM on drop.
pub struct Daemon {
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(e: &Engram, display: Option<&str>, args: &[&str]) -> Daemon {
        Self::start_via(e, display, args, &[])
    }

    /// Started through a wrapper program, such as `setpriv ARGS…`.
    pub fn start_via(e: &Engram, display: Option<&str>, args: &[&str], wrapper: &[&str]) -> Daemon {
        let env: Vec<(String, String)> = display.map(|d| ("DISPLAY".to_string(), d.to_string())).into_iter().collect();
        Self::launch(e, &env, args, wrapper)
    }

    /// Started with these variables set (a Wayland session's), and no others but engram's.
    pub fn start_in(e: &Engram, env: &[(String, String)], args: &[&str]) -> Daemon {
        Self::launch(e, env, args, &[])
    }

    fn launch(e: &Engram, env: &[(String, String)], args: &[&str], wrapper: &[&str]) -> Daemon {
        let log = e.tmp.path().join(format!("daemon-{}.log", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()));
        let mut c = e.command_via(wrapper);
        c.arg("daemon").args(args).stderr(std::fs::File::create(&log).unwrap()).stdout(Stdio::null());
        c.envs(env.iter().map(|(k, v)| (k, v)));
        let d = Daemon { child: c.spawn().unwrap(), log };
        let pid = d.child.id();
        wait_for(Duration::from_secs(120), "the daemon to start", || d.state(e).filter(|s| s["ready"] == true && s["pid"] == pid).map(|_| ()));
        d
    }

    pub fn state(&self, e: &Engram) -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(e.data.join("daemon.json")).ok()?).ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(mut self) -> String {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exited with {status}: {}", self.log());
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[track_caller]
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

