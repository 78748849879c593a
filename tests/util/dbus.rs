//! A D-Bus session bus of a test's own, so accessibility (the AT-SPI bus its launcher starts on
//! demand) is private to the test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SessionBus {
    pub address: String,
    /// XDG_RUNTIME_DIR for everything on this bus: the accessibility bus's socket goes there.
    pub runtime: tempfile::TempDir,
    daemon: Child,
}

impl SessionBus {
    pub fn start() -> SessionBus {
        let runtime = tempfile::Builder::new().prefix("engram-bus-").tempdir().unwrap();
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg("--session").env("XDG_RUNTIME_DIR", runtime.path()).env("HOME", runtime.path());
        let (daemon, address) = spawn_bus(cmd, runtime.path());
        SessionBus { address, runtime, daemon }
    }

    /// Turns accessibility on for the session, as a screen reader or the desktop's settings do
    /// (Chromium exposes its windows only when it is on as it starts).
    pub fn enable_accessibility(&self) {
        let status = Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.a11y.Bus", "/org/a11y/bus", "org.freedesktop.DBus.Properties.Set", "string:org.a11y.Status", "string:IsEnabled", "variant:boolean:true"])
            .envs(self.env())
            .stdout(Stdio::null())
            .status()
            .expect("dbus-send comes with dbus");
        assert!(status.success(), "could not turn accessibility on (at-spi2-core installed?)");
    }

    /// What a program on this bus needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.address.clone()),
            ("XDG_RUNTIME_DIR".into(), self.runtime.path().display().to_string()),
        ]
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Starts `dbus_daemon` (a `dbus-daemon` command with its configuration chosen) listening in
/// `dir`, and returns it with its address.
pub fn spawn_bus(mut dbus_daemon: Command, dir: &Path) -> (Child, String) {
    dbus_daemon.args(["--nofork", "--print-address=1"]).arg(format!("--address=unix:path={}/bus", dir.display())).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut bus = dbus_daemon.spawn().expect("dbus-daemon is not installed (Debian package dbus)");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap()).read_line(&mut address).unwrap();
    (bus, address.trim().to_string())
}

/// Whether a program owns `name` on the bus at `address`.
pub fn has_name(address: &str, name: &str) -> bool {
    let out = Command::new("dbus-send")
        .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner"])
        .arg(format!("string:{name}"))
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .output()
        .expect("dbus-send comes with dbus");
    String::from_utf8_lossy(&out.stdout).contains("boolean true")
}
