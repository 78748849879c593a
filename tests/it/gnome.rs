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
    let hit = wait_for(Duration::from_secs(60), "the GTK window's text", || e.hits("tapir").into_iter().next());
    assert_eq!((hit["app"].as_str(), hit["title"].as_str()), (Some("engram-notes"), Some("Budget 预算")), "{hit}");
    assert!(e.hits("星期五").iter().any(|h| h["id"] == hit["id"]), "the Chinese line is not found");
    // The label's text as GTK holds it (the header bar's title follows it).
    let shown = e.run(&["show", "--json", &hit["id"].to_string()]).ok().json();
    assert!(shown["text"].as_str().unwrap().starts_with(text), "not the window's own text: {shown}");

    // Focus goes back to the password manager when the notes close: recording stops again.
    let before = e.frames_excluded();
    gnome.close_last();
    wait_for(Duration::from_secs(60), "the password manager to be excluded again", || (e.frames_excluded() >= before + 2).then_some(()));
    let status = e.run(&["status", "--json"]).ok().json();
    d.stop();

    // The picture came over PipeWire: the window's own pixels, its size.
    let png = e.tmp.path().join("frame.png");
    e.run(&["show", &hit["id"].to_string(), "--image", png.to_str().unwrap()]).ok();
    let head = std::fs::read(&png).unwrap();
    let (w, h) = (u32::from_be_bytes(head[16..20].try_into().unwrap()), u32::from_be_bytes(head[20..24].try_into().unwrap()));
    assert!(w >= 400 && h >= 200 && w <= 1600 && h <= 900, "the picture is {w}x{h}, not the window");
    assert!(e.hits("ocelotsecret").is_empty(), "the password manager's window was stored");
    let said = status["daemon"]["backend"].as_str().unwrap_or_default();
    assert!(said.contains("GNOME") && said.contains("PipeWire"), "status does not say how it records: {status}");
}
