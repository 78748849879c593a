//! A headless KDE compositor for tests: KWin (`kwin_wayland --virtual`) with its own session bus
//! and data folders, and GTK windows on it. KWin runs as the user running the tests (root on CI:
//! it allows that), so it can read which executable the daemon is, which is how it decides what
//! engram may see.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::dbus::{has_name, spawn_bus};
use super::x11::wait_for;
use super::Processes;

pub struct Kde {
    pub runtime: tempfile::TempDir,
    pub bus: String,
    /// The bus, KWin, then the windows: stopped in reverse.
    children: Processes,
}

impl Kde {
    pub fn start() -> Kde {
        let runtime = tempfile::Builder::new().prefix("engram-kde-").tempdir().unwrap();
        let mut k = Kde { runtime, bus: String::new(), children: Processes::default() };
        let mut bus = k.command("dbus-daemon");
        bus.arg("--session");
        let (bus, address) = spawn_bus(bus, k.runtime.path());
        k.bus = address;
        k.children.push(bus);
        // Debian's kwin_wayland carries a file capability (CAP_SYS_RESOURCE) that a container may
        // refuse to grant: a plain copy runs anywhere and needs none.
        let kwin = k.runtime.path().join("kwin_wayland");
        std::fs::copy("/usr/bin/kwin_wayland", &kwin).expect("kwin_wayland is not installed: scripts/test.sh installs it (Debian package kwin-wayland)");
        let mut cmd = k.command(kwin.to_str().unwrap());
        cmd.args(["--virtual", "--width", "1600", "--height", "900", "--socket", "wayland-0"]).stdout(Stdio::null()).stderr(Stdio::null());
        k.children.push(cmd.spawn().unwrap());
        wait_for(Duration::from_secs(60), "KWin's screenshot service", || k.has_name("org.kde.KWin.ScreenShot2").then_some(()));
        wait_for(Duration::from_secs(30), "KWin's Wayland socket", || k.runtime.path().join("wayland-0").exists().then_some(()));
        k
    }

    /// The session's folders: KWin reads desktop files from `data/applications`.
    pub fn data_home(&self) -> PathBuf {
        self.runtime.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let dir = self.runtime.path();
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("XDG_RUNTIME_DIR", dir)
            .env("XDG_DATA_HOME", self.data_home())
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null());
        if !self.bus.is_empty() {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.bus).env("WAYLAND_DISPLAY", "wayland-0");
        }
        cmd
    }

    fn has_name(&self, name: &str) -> bool {
        has_name(&self.bus, name)
    }

    /// What a daemon needs to record this session (its desktop file goes where KWin looks).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("XDG_RUNTIME_DIR".into(), self.runtime.path().display().to_string()),
            ("XDG_DATA_HOME".into(), self.data_home().display().to_string()),
            ("WAYLAND_DISPLAY".into(), "wayland-0".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
        ]
    }

    /// A GTK 3 window (python3-gi) with this app_id and title showing `text`; KWin gives a new
    /// window focus.
    pub fn gtk(&mut self, app_id: &str, title: &str, text: &str) {
        let file = self.runtime.path().join(format!("window-{}.txt", self.children.len()));
        std::fs::write(&file, text).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/gtk_window.py");
        let mut cmd = self.command("/usr/bin/python3");
        cmd.arg(script).args([app_id, title, file.to_str().unwrap()]).env("GDK_BACKEND", "wayland").stdout(Stdio::null()).stderr(Stdio::null());
        self.children.push(cmd.spawn().expect("python3 is missing"));
        std::thread::sleep(Duration::from_secs(2));
    }

    /// Locks the session, as the lock shortcut does.
    pub fn lock(&self) {
        let out = self.command("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver.Lock"])
            .output()
            .expect("dbus-send comes with dbus");
        assert!(out.status.success(), "KWin did not lock: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Closes the newest window, so focus goes back to the one before.
    pub fn close_last(&mut self) {
        self.children.close_last();
    }
}
