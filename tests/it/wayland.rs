//! Screen capture on Wayland: a headless sway (wlroots) with a terminal and a GTK window, English
//! and Chinese, recorded through wlr-screencopy and found by search with their app_id and title;
//! a password manager's app_id is never recorded.

use std::time::Duration;

use crate::util::wayland::Sway;
use crate::util::x11::{wait_for, Daemon};
use crate::util::Engram;

#[test]
fn sway_windows_are_recorded_with_their_app_id_and_title_and_a_password_manager_is_not() {
    let mut sway = Sway::start();
    let e = Engram::init();
    sway.terminal("org.keepassxc.KeePassXC", "Passwords.kdbx", "vault entry ocelotsecret\n");
    sway.terminal("engram-notes", "Notes 笔记", "The quarterly budget meeting is on Thursday\n会议在星期四下午三点\n");
    sway.gtk("engram-gtk", "Budget 预算", "Tapir sightings rose in November\n项目预算会议改到星期五\n");

    sway.focus("org.keepassxc.KeePassXC");
    let d = Daemon::start_in(&e, &sway.env(), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the password manager to be excluded", || (e.frames_excluded() >= 2).then_some(()));

    sway.focus("engram-notes");
    let hit = wait_for(Duration::from_secs(60), "the terminal's text", || e.hits("quarterly").into_iter().next());
    assert_eq!((hit["app"].as_str(), hit["title"].as_str()), (Some("engram-notes"), Some("Notes 笔记")), "{hit}");
    assert!(e.hits("星期四").iter().any(|h| h["app"] == "engram-notes"), "the Chinese line of the terminal is not found");

    sway.focus("engram-gtk");
    let hit = wait_for(Duration::from_secs(60), "the GTK window's text", || e.hits("tapir").into_iter().next());
    assert_eq!((hit["app"].as_str(), hit["title"].as_str()), (Some("engram-gtk"), Some("Budget 预算")), "{hit}");
    assert!(e.hits("星期五").iter().any(|h| h["app"] == "engram-gtk"), "the Chinese line of the GTK window is not found");

    let status = e.run(&["status", "--json"]).ok().json();
    d.stop();
    assert!(e.hits("ocelotsecret").is_empty(), "the password manager's window was stored");
    // Each frame is its own window only: the neighbour tiled beside it is not in it.
    assert!(e.hits("quarterly").iter().all(|h| h["app"] == "engram-notes"));
    let said = status["daemon"]["backend"].as_str().unwrap_or_default();
    assert!(said.contains("Wayland") && said.contains("sway") && said.contains("WAYLAND_DISPLAY"), "status does not say how it records: {status}");
}
