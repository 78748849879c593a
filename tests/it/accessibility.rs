//! Windows' own text through accessibility (AT-SPI2): a GTK window on a real X server, with its
//! own session and accessibility buses, is stored with exactly the text it shows, Chinese
//! included, and OCR never runs on it; a browser-like window showing an excluded site in its
//! address bar is never recorded, whatever its title; a Chromium private window, whose title on
//! the display does not say so, is known by the title it gives accessibility.

use std::time::Duration;

use crate::util::dbus::SessionBus;
use crate::util::x11::{wait_for, Daemon, X};
use crate::util::Engram;

#[test]
fn a_gtk_window_is_stored_with_its_own_text_and_no_ocr() {
    let bus = SessionBus::start();
    let mut x = X::start();
    let e = Engram::init();
    let text = "Quarterly tapir census: 1,204 sightings in Kew\n项目预算会议改到星期五下午三点";
    x.gtk(&bus.env(), "engram-census", "Census 普查", text);
    let mut env = bus.env();
    env.push(("DISPLAY".into(), x.display.clone()));
    let d = Daemon::start_in(&e, &env, &["--interval", "1"]);
    let hit = wait_for(Duration::from_secs(60), "the window's text", || e.hits("tapir").into_iter().next());
    let status = e.run(&["status", "--json"]).ok().json();
    d.stop();
    assert_eq!(hit["title"], "Census 普查", "{hit}");
    let shown = e.run(&["show", "--json", &hit["id"].to_string()]).ok().json();
    assert_eq!(shown["text"].as_str().unwrap().trim(), text, "not the window's own text: {shown}");
    assert!(e.hits("星期五").iter().any(|h| h["id"] == hit["id"]));
    let said = status["daemon"]["backend"].as_str().unwrap_or_default();
    assert!(said.contains("accessible text"), "status does not say accessibility is read: {status}");
    assert_eq!(status["daemon"]["ocr_ms_total"], 0, "OCR ran on a window that exposes all its text: {status}");
}

#[test]
fn a_site_excluded_by_domain_is_known_by_the_address_bar_not_the_title() {
    let bus = SessionBus::start();
    let mut x = X::start();
    let e = Engram::init();
    std::fs::create_dir_all(e.tmp.path().join("config/engram")).unwrap();
    std::fs::write(e.tmp.path().join("config/engram/config.toml"), "[privacy]\nexclude_sites = [\"bank.example\"]\n").unwrap();
    // The title names no bank; the address bar does.
    x.gtk_with(&bus.env(), "engram-browser", "Welcome - Browser", "Balance 8,420.17 wombatsavings\n", &["browser", "https://online.bank.example/accounts"]);
    let mut env = bus.env();
    env.push(("DISPLAY".into(), x.display.clone()));
    let d = Daemon::start_in(&e, &env, &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the bank's page to be excluded", || (e.frames_excluded() >= 3).then_some(()));
    // Another site in the same browser is recorded.
    x.gtk_with(&bus.env(), "engram-browser", "News - Browser", "Koala numbers up this spring\n", &["browser", "https://news.example.org/koalas"]);
    wait_for(Duration::from_secs(60), "the other site", || e.hits("koala").into_iter().next());
    d.stop();
    assert!(e.hits("wombatsavings").is_empty(), "the excluded site's page was stored");
}

#[test]
fn a_chromium_private_window_is_known_by_its_accessible_title() {
    let bus = SessionBus::start();
    bus.enable_accessibility();
    let mut x = X::start();
    let e = Engram::init();
    let profile = e.folder("chromium");
    // Chromium's private window is titled "Ledger - Chromium" on X, as any window: only the
    // title it gives accessibility adds "(Incognito)".
    let secret = "data:text/html,<title>Ledger</title><h1>Private ledger numbatledger</h1>";
    x.chromium(&bus.env(), &profile, &["--incognito", "--force-renderer-accessibility"], "Ledger", secret);
    let mut env = bus.env();
    env.push(("DISPLAY".into(), x.display.clone()));
    let d = Daemon::start_in(&e, &env, &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the private window to be excluded", || (e.frames_excluded() >= 3).then_some(()));
    // An ordinary window of the same browser is recorded.
    let page = "data:text/html,<title>Koalas</title><h1>Koala numbers up this spring</h1>";
    x.chromium(&bus.env(), &profile, &["--new-window", "--force-renderer-accessibility"], "Koalas", page);
    wait_for(Duration::from_secs(60), "the ordinary window", || e.hits("koala").into_iter().next());
    d.stop();
    assert!(e.hits("numbatledger").is_empty(), "the private window's page was stored");
}
