//! A headless GNOME compositor for tests: mutter with one virtual monitor, its own session bus,
//! and PipeWire with WirePlumber, which carry mutter's screen casts. As with sway, everything in
//! the session runs as an unprivileged user when the test is root; the session bus lets root in
//! too, so the daemon under test can talk to mutter.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::dbus::{has_name, spawn_bus};
use super::wayland::{as_user, text_file, user};
use super::Processes;
use super::x11::wait_for;

pub struct Gnome {
    pub runtime: tempfile::TempDir,
    pub bus: String,
    ids: Option<(u32, u32)>,
    /// The bus, PipeWire, WirePlumber, mutter, its keyboard, then the windows: stopped in reverse.
    children: Processes,
}

impl Gnome {
    pub fn start() -> Gnome {
        let ids = user();
        let runtime = tempfile::Builder::new().prefix("engram-gnome-").tempdir().unwrap();
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(runtime.path(), Some(uid), Some(gid)).unwrap();
        }
        let config = runtime.path().join("bus.conf");
        std::fs::write(&config, "<busconfig><include>/usr/share/dbus-1/session.conf</include><policy context=\"default\"><allow user=\"root\"/></policy></busconfig>\n").unwrap();
        let mut g = Gnome { runtime, bus: String::new(), ids, children: Processes::default() };
        let mut bus = g.as_user("dbus-daemon");
        bus.arg(format!("--config-file={}", config.display()));
        let (bus, address) = spawn_bus(bus, g.runtime.path());
        g.bus = address;
        g.children.push(bus);
        g.spawn("pipewire", &[], "pipewire is not installed: scripts/test.sh installs it");
        wait_for(Duration::from_secs(20), "PipeWire to start", || g.runtime.path().join("pipewire-0").exists().then_some(()));
        g.spawn("wireplumber", &[], "wireplumber is not installed: scripts/test.sh installs it");
        g.spawn("mutter", &["--headless", "--virtual-monitor", "1600x900", "--wayland", "--no-x11"], "mutter is not installed: scripts/test.sh installs it");
        wait_for(Duration::from_secs(30), "mutter's screen cast service", || g.has_name("org.gnome.Mutter.ScreenCast").then_some(()));
        wait_for(Duration::from_secs(30), "mutter's Wayland socket", || g.runtime.path().join("wayland-0").exists().then_some(()));
        // A keyboard for the seat, or no window would ever be active.
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/gnome_keyboard.py");
        let mut keyboard = g.as_user("/usr/bin/python3").arg(script).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("python3 is missing");
        let mut said = String::new();
        BufReader::new(keyboard.stdout.take().unwrap()).read_line(&mut said).unwrap();
        assert_eq!(said.trim(), "ready", "mutter gave no virtual keyboard");
        g.children.push(keyboard);
        g
    }

    fn as_user(&self, program: &str) -> Command {
        let mut cmd = as_user(self.ids, self.runtime.path(), program);
        if !self.bus.is_empty() {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.bus).env("WAYLAND_DISPLAY", "wayland-0");
        }
        cmd
    }

    fn spawn(&mut self, program: &str, args: &[&str], missing: &str) {
        let child = self.as_user(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect(missing);
        self.children.push(child);
    }

    fn has_name(&self, name: &str) -> bool {
        has_name(&self.bus, name)
    }

    /// What a daemon needs to record this session.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("XDG_RUNTIME_DIR".into(), self.runtime.path().display().to_string()),
            ("WAYLAND_DISPLAY".into(), "wayland-0".into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
        ]
    }

    /// A GTK 3 window (python3-gi) with this app_id and title showing `text`; mutter gives a new
    /// window focus. Returns once it is on the accessibility bus, where engram learns of it.
    pub fn gtk(&mut self, app_id: &str, title: &str, text: &str) {
        let file = text_file(self.ids, self.runtime.path(), text);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/gtk_window.py");
        let mut cmd = self.as_user("/usr/bin/python3");
        cmd.arg(script).args([app_id, title, file.to_str().unwrap()]).env("GDK_BACKEND", "wayland").stdout(Stdio::null()).stderr(Stdio::null());
        self.children.push(cmd.spawn().expect("python3 is missing"));
        wait_for(Duration::from_secs(30), "the window to show", || self.has_name("org.a11y.Bus").then_some(()));
        std::thread::sleep(Duration::from_secs(2));
    }

    /// Closes the newest window, so focus goes back to the one before.
    pub fn close_last(&mut self) {
        self.children.close_last();
    }
}
