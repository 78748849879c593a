//! Screen capture on KDE Plasma: a headless KWin shows engram its window list and draws the
//! focused window alone, once the desktop file naming engram exists, which engram writes only
//! when `screen.kwin_permission` says so. A password manager's window is never recorded, nor a
//! locked session.

use std::time::Duration;

use crate::util::kde::Kde;
use crate::util::x11::{wait_for, Daemon};
use crate::util::{contains, encodings, Engram};

#[test]
fn kwin_windows_are_recorded_once_permitted_and_a_password_manager_is_not() {
    let mut kde = Kde::start();
    let e = Engram::init();
    let desktop = kde.data_home().join("applications/engram-capture.desktop");
    kde.gtk("org.keepassxc.KeePassXC", "Passwords.kdbx", "vault entry ocelotsecret\n");

    // Without the user's word, nothing is written and capture says how to turn it on.
    let d = Daemon::start_in(&e, &kde.env(), &["--interval", "1"]);
    let status = wait_for(Duration::from_secs(30), "the daemon to say capture is off", || {
        let s = e.run(&["status", "--json"]).ok().json();
        s["daemon"]["capture"].as_str().is_some_and(|c| c.starts_with("off:")).then_some(s)
    });
    assert!(status.to_string().contains("screen.kwin_permission"), "no way out is named: {status}");
    d.stop();
    assert!(!desktop.exists(), "the desktop file was written without consent");

    let config = e.tmp.path().join("config/engram");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "[screen]\nkwin_permission = true\n").unwrap();
    let d = Daemon::start_in(&e, &kde.env(), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the password manager to be excluded", || (e.frames_excluded() >= 2).then_some(()));
    let entry = std::fs::read_to_string(&desktop).unwrap();
    assert!(entry.contains("X-KDE-Wayland-Interfaces=org_kde_plasma_window_management"), "{entry}");

    let text = "Tapir sightings rose in November\n项目预算会议改到星期五";
    kde.gtk("engram-notes", "Budget 预算", text);
    let hit = e.window_found(["tapir", "星期五"], "engram-notes", "Budget 预算", text);

    // Focus goes back to the password manager when the notes close: recording stops again.
    let before = e.frames_excluded();
    kde.close_last();
    wait_for(Duration::from_secs(60), "the password manager to be excluded again", || (e.frames_excluded() >= before + 2).then_some(()));
    let status = e.run(&["status", "--json"]).ok().json();
    // A locked session is not recorded.
    kde.lock();
    wait_for(Duration::from_secs(30), "capture to see the lock", || (e.run(&["status", "--json"]).ok().json()["daemon"]["capture"] == "locked").then_some(()));
    let log = d.stop();

    // What engram wrote (the store, its log, the desktop file) holds no window's text in clear.
    let mut written = e.snapshot();
    written.insert("daemon log".into(), log.into_bytes());
    written.insert(desktop.clone(), entry.into_bytes());
    for (path, bytes) in &written {
        for secret in ["ocelotsecret", "Tapir sightings", "项目预算"] {
            assert!(!encodings(secret).iter().any(|enc| contains(bytes, enc)), "{secret:?} in clear in {}", path.display());
        }
    }

    // The picture is KWin's drawing of the window alone: its size, not the screen's.
    let (w, h) = e.picture_size(&hit["id"]);
    assert!(w >= 400 && h >= 200 && w < 1600 && h < 900, "the picture is {w}x{h}, not the window");
    assert!(e.hits("ocelotsecret").is_empty(), "the password manager's window was stored");
    let said = status["daemon"]["backend"].as_str().unwrap_or_default();
    assert!(said.contains("KDE Plasma") && said.contains("KWin"), "status does not say how it records: {status}");
}
