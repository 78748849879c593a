//! A virtual X server with a window manager and terminals, and a running daemon, for tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Engram;

/// An X server with a window manager, stopped on drop.
pub struct X {
    pub display: String,
    server: Child,
    wm: Child,
    windows: Vec<Child>,
}

impl X {
    pub fn start() -> X {
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is not installed: scripts/test.sh installs it (Debian package xvfb)");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let display = format!(":{}", line.trim());
        let wm = Command::new("openbox")
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openbox is not installed: scripts/test.sh installs it");
        let x = X { display, server, wm, windows: Vec::new() };
        // The window manager is up once it has claimed the root window's supporting-WM hint.
        wait_for(Duration::from_secs(20), "openbox to start", || {
            let out = Command::new("xprop").args(["-root", "_NET_SUPPORTING_WM_CHECK"]).env("DISPLAY", &x.display).output().ok()?;
            String::from_utf8_lossy(&out.stdout).contains("window id").then_some(())
        });
        x
    }

    /// An xterm with this title and class showing `text`, brought to the front.
    pub fn terminal(&mut self, title: &str, class: &str, text: &str) {
        let file = std::env::temp_dir().join(format!("engram-xterm-{}-{}.txt", std::process::id(), self.windows.len()));
        std::fs::write(&file, text).unwrap();
        let child = Command::new("xterm")
            .env("DISPLAY", &self.display)
            .args(["-T", title, "-class", class, "-fa", "Noto Sans Mono CJK SC", "-fs", "14", "-geometry", "100x20+40+40"])
            .args(["-e", "sh", "-c", &format!("cat '{}'; rm -f '{}'; exec sleep 100000", file.display(), file.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm is not installed: scripts/test.sh installs it");
        self.windows.push(child);
        self.activate(title);
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
        let _ = self.wm.kill();
        let _ = self.wm.wait();
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
        let log = e.tmp.path().join(format!("daemon-{}.log", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()));
        let mut c = e.command();
        c.arg("daemon").args(args).stderr(std::fs::File::create(&log).unwrap()).stdout(Stdio::null());
        match display {
            Some(d) => c.env("DISPLAY", d),
            None => c.env_remove("DISPLAY"),
        };
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

