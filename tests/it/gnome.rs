//! Screen capture on GNOME: a headless mutter, whose screen cast API is what GNOME's portal
//! drives, casts the focused window over PipeWire; its text comes through accessibility and its
//! app and title from there too. A password manager's window is never recorded.

use std::time::Duration;

use crate::util::gnome::Gnome;
use crate::util::x11::{wait_for, Daemon};
use crate::util::Engram;

#[test]
fn gnome_windows_are_cast_over_pipewire_and_a_password_manager_is_not() {
    let mut gnome = Gnome::start();
    let e = Engram::init();
    gnome.gtk("org.keepassxc.KeePassXC", "Passwords.kdbx", "vault entry ocelotsecret\n");
    let d = Daemon::start_in(&e, &gnome.env(), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the password manager to be excluded", || (e.frames_excluded() >= 2).then_some(()));

    let text = "Tapir sightings rose in November\n项目预算会议改到星期五";
    gnome.gtk("engram-notes", "Budget 预算", text);
    // The label's text as GTK holds it (the header bar's title follows it).
    let hit = e.window_found(["tapir", "星期五"], "engram-notes", "Budget 预算", text);

    // Focus goes back to the password manager when the notes close: recording stops again.
    let before = e.frames_excluded();
    gnome.close_last();
    wait_for(Duration::from_secs(60), "the password manager to be excluded again", || (e.frames_excluded() >= before + 2).then_some(()));
    let status = e.run(&["status", "--json"]).ok().json();
    d.stop();

    // The picture came over PipeWire: the window's own pixels, its size.
    let (w, h) = e.picture_size(&hit["id"]);
    assert!(w >= 400 && h >= 200 && w <= 1600 && h <= 900, "the picture is {w}x{h}, not the window");
    assert!(e.hits("ocelotsecret").is_empty(), "the password manager's window was stored");
    let said = status["daemon"]["backend"].as_str().unwrap_or_default();
    assert!(said.contains("GNOME") && said.contains("PipeWire"), "status does not say how it records: {status}");
}
