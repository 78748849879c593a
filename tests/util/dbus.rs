//! A D-Bus session bus of a test's own, so accessibility (the AT-SPI bus its launcher starts on
//! demand) is private to the test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
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
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}/bus", runtime.path().display()))
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("HOME", runtime.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is not installed (Debian package dbus)");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut address).unwrap();
        SessionBus { address: address.trim().to_string(), runtime, daemon }
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
