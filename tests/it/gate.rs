//! The screen recorder's privacy gate against real windows on a real X server (Xvfb): no
//! focused window means no frame, a password manager is known by its title anywhere and by its
//! executable, and a window drawn over the focused one is not kept.

use std::process::Command;
use std::time::Duration;

use crate::util::x11::{wait_for, Daemon, Term, X};
use crate::util::Engram;

fn status(e: &Engram) -> serde_json::Value {
    e.run(&["status", "--json"]).ok().json()
}

/// A counter the daemon keeps in memory only, asked over its socket.
fn private(e: &Engram, counter: &str) -> u64 {
    status(e)["daemon"]["private"][counter].as_u64().unwrap_or(0)
}

#[test]
fn with_no_window_manager_nothing_on_screen_is_kept() {
    let mut x = X::start_bare();
    let e = Engram::init();
    x.open(Term { title: "Passwords.kdbx", class: "KeePassXC", text: "vault entry ocelotsecret\n", ..Default::default() });
    x.open(Term { title: "notes", text: "ordinary tapirwords\n", geometry: "60x10+200+400", ..Default::default() });
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "ticks with no focused window", || (private(&e, "frames_without_window") >= 3).then_some(()));
    let s = status(&e);
    assert_eq!(s["screens"], 0, "a frame was stored with no window focused: {s}");
    assert_eq!(s["daemon"]["capture"], "no focused window");
    assert!(e.hits("ocelotsecret").is_empty() && e.hits("tapirwords").is_empty());
    // How often nothing could be kept is not written to disk.
    let file = std::fs::read_to_string(e.data.join("daemon.json")).unwrap();
    assert!(!file.contains("without_window") && !file.contains("excluded"), "{file}");
    d.stop();
}

#[test]
fn a_password_manager_is_known_by_its_title_anywhere_and_by_its_executable() {
    let mut x = X::start();
    let e = Engram::init();
    // Another class, the manager's name first in the title.
    x.terminal("KeePassXC - Passwords", "Dialog", "entry one quokkasecret\n");
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    wait_for(Duration::from_secs(60), "the titled window to be excluded", || (private(&e, "frames_excluded") >= 2).then_some(()));
    // The same program under a neutral class and title, known by its executable.
    let bin = e.folder("bin").join("keepassxc");
    let xterm = std::fs::canonicalize(which("xterm")).unwrap();
    std::fs::copy(&xterm, &bin).unwrap();
    let before = private(&e, "frames_excluded");
    x.open(Term { title: "Entries", class: "Notes", text: "entry two numbatsecret\n", program: bin.to_str().unwrap(), ..Default::default() });
    x.activate("Entries");
    wait_for(Duration::from_secs(60), "the renamed program to be excluded", || (private(&e, "frames_excluded") >= before + 2).then_some(()));
    // An ordinary window is still recorded.
    x.terminal("Shopping list", "XTerm", "buy some wallabyfood\n");
    wait_for(Duration::from_secs(60), "the ordinary window", || e.hits("wallabyfood").into_iter().next());
    d.stop();
    assert!(e.hits("quokkasecret").is_empty(), "a window titled with the manager's name was stored");
    assert!(e.hits("numbatsecret").is_empty(), "the manager's program under another class was stored");
}

#[test]
fn a_window_drawn_over_the_focused_one_is_not_in_the_stored_picture() {
    let mut x = X::start();
    let e = Engram::init();
    let lines: String = (0..12).map(|i| format!("line {i} underneath echidnaword\n")).collect();
    x.open(Term { title: "Notes - vim", text: &lines, cjk_font: false, ..Default::default() });
    x.activate("Notes - vim");
    // A notification: drawn by no window manager, over the focused window, never focused.
    x.open(Term { title: "popup", text: "popupsecret platypus\n", geometry: "30x3+120+90", override_redirect: true, cjk_font: false, ..Default::default() });
    let d = Daemon::start(&e, Some(&x.display), &["--interval", "1"]);
    let hit = wait_for(Duration::from_secs(60), "the focused window's text", || e.hits("echidnaword").into_iter().next());
    d.stop();
    assert!(e.hits("popupsecret").is_empty() && e.hits("platypus").is_empty(), "the popup's text was stored");

    // Where it was, the stored picture holds one colour: the window's background.
    let id = hit["id"].as_i64().unwrap().to_string();
    let png = e.tmp.path().join("frame.png");
    e.run(&["show", &id, "--image", png.to_str().unwrap()]).ok();
    let (w, h, pixels) = read_png(&png);
    let (win_x, win_y, _, _) = geometry(&x, "Notes - vim");
    let (pop_x, pop_y, pop_w, pop_h) = top_level_at(&x, 120, 90);
    let (x0, y0) = ((pop_x - win_x).max(0) as u64, (pop_y - win_y).max(0) as u64);
    let (x1, y1) = (((pop_x + pop_w - win_x) as u64).min(w), ((pop_y + pop_h - win_y) as u64).min(h));
    assert!(x1 > x0 + 10 && y1 > y0 + 10, "the popup does not overlap the stored window");
    let at = |xx: u64, yy: u64| {
        let i = ((yy * w + xx) * 3) as usize;
        &pixels[i..i + 3]
    };
    let background = at(x0, y0).to_vec();
    for yy in y0..y1 {
        for xx in x0..x1 {
            // WebP may shade a colour by a step or two; text would be far off.
            let off = at(xx, yy).iter().zip(&background).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap();
            assert!(off < 24, "the popup shows at {xx},{yy}");
        }
    }
}

fn which(program: &str) -> std::path::PathBuf {
    let out = Command::new("sh").args(["-c", &format!("command -v {program}")]).output().unwrap();
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A window's position and size on the screen, by its exact title.
fn geometry(x: &X, title: &str) -> (i64, i64, i64, i64) {
    let out = Command::new("xwininfo").env("DISPLAY", &x.display).args(["-name", title]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let get = |k: &str| text.lines().find_map(|l| l.trim().strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("{k} of {title}: {text}"));
    (get("Absolute upper-left X:"), get("Absolute upper-left Y:"), get("Width:"), get("Height:"))
}

/// The size and place of the top-level window at (x, y): an override-redirect window has no
/// title to find it by.
fn top_level_at(x: &X, left: i64, top: i64) -> (i64, i64, i64, i64) {
    let out = Command::new("xwininfo").env("DISPLAY", &x.display).args(["-root", "-children"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let at = format!("+{left}+{top}");
    let line = text.lines().find(|l| l.trim_end().ends_with(&format!("{at}  {at}"))).unwrap_or_else(|| panic!("no window at {at}: {text}"));
    let size = line.split_whitespace().find(|w| w.ends_with(&at)).unwrap().trim_end_matches(&at);
    let (w, h) = size.split_once('x').unwrap();
    (left, top, w.parse().unwrap(), h.parse().unwrap())
}

fn read_png(path: &std::path::Path) -> (u64, u64, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as u64, info.height as u64, buf)
}
