//! One capture step: look at the screen, decide whether this moment is worth keeping and may be
//! kept, read its text, and hand back a frame that has already been through the privacy gate.
//!
//! What is stored is the focused window's own pixels and nothing else: no focused window, or
//! focus that moved while the screen was read, means no frame; windows stacked above it
//! (notifications, menus, another app's window) are painted over before OCR. Every pixel kept
//! has then been read by OCR and redacted, and a password manager open beside or over the
//! focused window is never in a stored picture.

use super::accessibility::{Accessibility, Said};
use super::frames::{self, LumaGrid};
use super::gnome::{Gnome, GnomeError};
use super::kde::{Kde, KdeError};
use super::privacy::{self, redact_frame, Gate, WindowFacts};
use super::wayland::{Wayland, WaylandError};
use super::x11::{Display, X11Error};
use super::{ActiveWindow, Backend, BackendError, Captured, Tick};
use crate::config::{PrivacyConfig, ScreenConfig};
use crate::extract::ocr::{Ocr, OcrError, Word};
use crate::extract::picture::{Image, Rect};

/// Changed cells (see [`LumaGrid`]) below which a frame counts as unchanged: a blinking cursor
/// changes one.
const MIN_CHANGED_CELLS: usize = 2;
/// When the changed band is taller than this share of the window, the whole window is read.
const BAND_MAX_SHARE: f32 = 0.5;
/// A frame that only adds to the last one (typing) replaces it for up to this long, so a burst
/// of typing keeps one picture every few minutes instead of one per tick, and loses no text.
const COALESCE_SECS: i64 = 300;
/// A frame that continues the last one (typing) is held in memory and stored once the run ends,
/// the window has stayed unchanged this long, or it has been held for [`HOLD_SECS`]: encoding and
/// storing the picture at every tick of a typing run cost far more than reading it.
const SETTLE_SECS: i64 = 3;
const HOLD_SECS: i64 = 30;
/// Share of the last frame's words that must still be on screen for the new frame to continue it.
const CONTINUE_SHARE: f32 = 0.9;
/// Below this share of pixels off the background, what accessibility left unread is blank: a
/// line of text in a window is about a thousandth of it.
const MIN_INK: f32 = 0.0003;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    X11(#[from] X11Error),
    #[error(transparent)]
    Wayland(#[from] WaylandError),
    #[error(transparent)]
    Gnome(#[from] GnomeError),
    #[error(transparent)]
    Kde(#[from] KdeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Ocr(#[from] OcrError),
    #[error(transparent)]
    Gate(#[from] privacy::GateError),
}

/// The last frame read, kept to compare the next one with.
struct Last {
    grid: LumaGrid,
    /// A hash of each pixel row of the window, to see it scroll.
    rows: Vec<u64>,
    title: String,
    area: Rect,
    /// Unredacted OCR words, in window coordinates; only ever held in memory.
    words: Vec<Word>,
    /// When the run of frames this one continues began.
    since: i64,
}

/// A read frame not yet redacted and encoded (see [`SETTLE_SECS`]); only ever in memory.
struct Held {
    img: Image,
    words: Vec<Word>,
    app: String,
    title: String,
    pid: Option<u32>,
    time: i64,
    ocr_ms: u64,
    ocr_pixels: u64,
    /// When the first frame held in its place was read.
    since: i64,
}

impl Held {
    fn finish(self, continues: bool, quality: f32) -> Captured {
        let mut c = redact_frame(self.img, self.words, &self.app, &self.title, self.pid, self.time, quality);
        (c.ocr_ms, c.ocr_pixels, c.continues) = (self.ocr_ms, self.ocr_pixels, continues);
        c
    }
}

/// Typing runs held back: the newest frame of the run, and frames let go of, to store.
#[derive(Default)]
struct Holding {
    held: Option<Held>,
    ready: Vec<Captured>,
}

impl Holding {
    /// A frame just read (`continues`: it only adds to the last one): handed out at once, or
    /// held in its predecessor's place.
    fn frame(&mut self, mut frame: Held, continues: bool, quality: f32) -> Tick {
        if !continues {
            // A new run: the one before it is stored first, as it ended.
            self.release(quality);
            return Tick::Captured(Box::new(frame.finish(false, quality)));
        }
        frame.since = self.held.as_ref().map_or(frame.time, |h| h.since);
        if frame.time - frame.since >= HOLD_SECS {
            self.held = None;
            return Tick::Captured(Box::new(frame.finish(true, quality)));
        }
        self.held = Some(frame);
        Tick::Held
    }

    /// Any other outcome of a tick at `now`: the held frame goes once its run has ended (the
    /// window changed, went away or may not be kept) or settled.
    fn after(&mut self, tick: &Result<Tick, CaptureError>, now: i64, quality: f32) {
        let settled = match tick {
            Ok(Tick::Held | Tick::Captured(_)) => false,
            Ok(Tick::Unchanged) => self.held.as_ref().is_some_and(|h| now - h.time >= SETTLE_SECS || now - h.since >= HOLD_SECS),
            _ => true,
        };
        if settled {
            self.release(quality);
        }
    }

    fn release(&mut self, quality: f32) {
        if let Some(held) = self.held.take() {
            self.ready.push(held.finish(true, quality));
        }
    }
}

pub struct Recorder {
    display: Box<dyn Backend>,
    /// Why this back end: which of the session's displays it reads.
    why: &'static str,
    /// Windows' own text, when the session has an accessibility bus (or why not).
    accessibility: Result<Accessibility, String>,
    ocr: Ocr,
    gate: Gate,
    cfg: ScreenConfig,
    last: Option<Last>,
    holding: Holding,
    /// The last window whose accessible title the gate passed: its id and displayed title.
    passed: Option<(u64, String)>,
}

impl Recorder {
    pub fn new(cfg: &ScreenConfig, privacy: &PrivacyConfig) -> Result<Recorder, CaptureError> {
        let (display, why) = connect(cfg)?;
        let gate = Gate::new(privacy)?;
        let ocr = Ocr::new(&cfg.ocr_languages, cfg.min_confidence)?;
        let accessibility = match cfg.accessibility {
            true => Accessibility::connect(cfg.enable_accessibility),
            false => Err("off in the settings".into()),
        };
        Ok(Recorder { display, why, accessibility, ocr, gate, cfg: cfg.clone(), last: None, holding: Holding::default(), passed: None })
    }

    /// Which back end records and why, and whether windows' own text is read, for the log and
    /// `status`.
    pub fn describe(&self) -> String {
        let text = match &self.accessibility {
            Ok(_) => "accessible text read where windows expose it, OCR for the rest".to_string(),
            Err(why) => format!("OCR only (accessibility: {why})"),
        };
        format!("{}, {}; {text}", self.display.describe(), self.why)
    }

    /// One look at the screen. Frames it lets go of that were held back come out of
    /// [`Recorder::take_ready`], to be stored before anything the tick returns.
    pub fn tick(&mut self, now: i64) -> Result<Tick, CaptureError> {
        let tick = self.look(now);
        self.holding.after(&tick, now, self.cfg.webp_quality);
        tick
    }

    /// Frames to store now, oldest first, before the tick's own.
    pub fn take_ready(&mut self) -> Vec<Captured> {
        std::mem::take(&mut self.holding.ready)
    }

    /// Lets go of the frame held back, if any (on stopping or pausing).
    pub fn release(&mut self) {
        self.holding.release(self.cfg.webp_quality);
    }

    /// Why the window's title as it tells accessibility excludes it, when the display's title
    /// did not (Chromium names its private windows there only). Asked again when the window or
    /// its title changes; a window accessibility cannot find yet is asked again next time.
    fn accessible_title_excludes(&mut self, window: &ActiveWindow, facts: WindowFacts) -> Option<String> {
        let Ok(a) = &self.accessibility else { return None };
        if self.passed.as_ref().is_some_and(|(id, title)| *id == window.id && *title == window.title) {
            return None;
        }
        let said = a.title(window)?;
        if said != window.title {
            if let Some(why) = self.gate.excludes(WindowFacts { title: &said, ..facts }) {
                return Some(why);
            }
        }
        self.passed = Some((window.id, window.title.clone()));
        None
    }

    fn look(&mut self, now: i64) -> Result<Tick, CaptureError> {
        if let Some(a) = self.display.activity()? {
            if a.saver_on {
                return Ok(Tick::Locked);
            }
            if self.cfg.idle_minutes > 0 && a.idle_ms as u64 > self.cfg.idle_minutes * 60_000 {
                return Ok(Tick::Idle);
            }
        }
        let Some(window) = self.display.active_window()? else { return Ok(Tick::NoWindow) };
        let Some(area) = window.rect else { return Ok(Tick::NoWindow) };
        let facts = WindowFacts { app: &window.app, instance: &window.instance, title: &window.title, exe: window.exe.as_deref() };
        if let Some(why) = self.gate.excludes(facts) {
            return Ok(Tick::Excluded(why));
        }
        if let Some(why) = self.accessible_title_excludes(&window, facts) {
            return Ok(Tick::Excluded(why));
        }
        // A browser says which site it shows: an excluded one is known before any pixel is read.
        if let (true, Ok(a)) = (self.gate.has_sites(), &self.accessibility) {
            if let Some(why) = a.address(&window).and_then(|url| self.gate.excludes_site(&url)) {
                return Ok(Tick::Excluded(why));
            }
        }
        let above = self.display.covering(&window, area)?;
        let mut screen = match self.display.grab() {
            Ok(screen) => screen,
            // The window closed, or lost focus, as it was read (a KWin screenshot of a window
            // just gone fails): nothing to keep this time, and no reason to stop recording.
            Err(_) if self.display.active_window()?.as_ref() != Some(&window) => return Ok(Tick::NoWindow),
            Err(e) => return Err(e.into()),
        };
        // What was grabbed belongs to `window` only if it still had focus, in the same place,
        // once the grab was done; a window above it then or before is blacked out either way.
        if self.display.active_window()?.as_ref() != Some(&window) {
            return Ok(Tick::NoWindow);
        }
        let mut covered = self.display.covering(&window, area)?;
        covered.extend(above);
        frames::paint_over(&mut screen, &covered, area);
        let grid = LumaGrid::of(&screen);
        // Only the watched window matters: a clock ticking elsewhere is no change.
        let same_window = self.last.as_ref().filter(|l| l.title == window.title && l.area == area);
        let changed = same_window.map(|l| l.grid.changes(&grid, area));
        if let Some((n, _)) = changed {
            if n < MIN_CHANGED_CELLS {
                return Ok(Tick::Unchanged);
            }
        }
        let img = frames::crop(&screen, area);
        let started = std::time::Instant::now();
        let rows = frames::row_hashes(&img);
        let said = self.accessibility.as_ref().ok().and_then(|a| a.read(&window, (img.width, img.height)));
        // What is already read: the last frame's words, moved up if the window scrolled.
        let (known, changed_rows) = match same_window {
            Some(l) => match frames::scroll_shift(&l.rows, &rows) {
                Some(dy) => {
                    let moved: Vec<Word> = l
                        .words
                        .iter()
                        .filter(|w| w.rect.y >= dy as i32)
                        .cloned()
                        .map(|mut w| {
                            w.rect.y -= dy as i32;
                            w
                        })
                        .collect();
                    (moved, frames::rows_differing(&l.rows, &rows, dy))
                }
                None => (l.words.clone(), changed.and_then(|c| c.1).map(|c| Rect { x: c.x - area.x, y: c.y - area.y, w: c.w, h: c.h })),
            },
            None => (Vec::new(), None),
        };
        let band = changed_rows.filter(|_| same_window.is_some()).and_then(|c| band(c, &known, img.width, img.height));
        let (words, ocr_pixels) = match (said, band) {
            (Some(said), _) => read_rest(&mut self.ocr, &img, said)?,
            (None, Some(b)) => {
                let fresh = self.ocr.words(&frames::crop(&img, b), (b.x, b.y), true)?;
                (merge(&known, fresh, b), b.w as u64 * b.h as u64)
            }
            (None, None) => (self.ocr.words(&img, (0, 0), true)?, img.width as u64 * img.height as u64),
        };
        let ocr_ms = if ocr_pixels == 0 { 0 } else { started.elapsed().as_millis() as u64 };
        let continues = same_window.is_some_and(|l| now - l.since < COALESCE_SECS && continues(&l.words, &words));
        let since = if continues { self.last.as_ref().map_or(now, |l| l.since) } else { now };
        let app = if window.app.is_empty() { "screen" } else { window.app.as_str() };
        let frame = Held { img, words: words.clone(), app: app.to_string(), title: window.title.clone(), pid: window.pid, time: now, ocr_ms, ocr_pixels, since: now };
        self.last = Some(Last { grid, rows, title: window.title.clone(), area, words, since });
        Ok(self.holding.frame(frame, continues, self.cfg.webp_quality))
    }
}

/// The window's accessible words, and OCR's of what is drawn outside them (icons, pictures,
/// a canvas that exposes no text): none when only the background is left.
fn read_rest(ocr: &mut Ocr, img: &Image, said: Said) -> Result<(Vec<Word>, u64), CaptureError> {
    let mut rest = img.clone();
    frames::paint_over(&mut rest, &said.regions, Rect { x: 0, y: 0, w: img.width, h: img.height });
    if frames::ink(&rest) < MIN_INK {
        return Ok((said.words, 0));
    }
    let fresh = ocr.words(&rest, (0, 0), true)?.into_iter().map(apart);
    Ok((said.words.into_iter().chain(fresh).collect(), img.width as u64 * img.height as u64))
}

/// The session's own display: a Wayland session is read through Wayland, even when it also runs
/// XWayland (whose X server sees only the few windows of X11 apps); an X session through X11.
/// GNOME's mutter and KDE's KWin offer no wlr-screencopy: each has a service of its own.
fn connect(cfg: &ScreenConfig) -> Result<(Box<dyn Backend>, &'static str), CaptureError> {
    if std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty()) {
        return match Wayland::connect() {
            Ok(w) => Ok((Box::new(w), "as WAYLAND_DISPLAY is set")),
            Err(WaylandError::NoScreencopy) => match Gnome::connect(cfg.enable_accessibility) {
                Ok(g) => Ok((Box::new(g), "as WAYLAND_DISPLAY is set and mutter casts windows")),
                Err(GnomeError::NotGnome) => Ok((Box::new(Kde::connect(cfg.kwin_permission)?), "as WAYLAND_DISPLAY is set and KWin draws windows")),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        };
    }
    Ok((Box::new(Display::connect()?), "as DISPLAY is set and WAYLAND_DISPLAY is not"))
}

/// The horizontal band of the window to read again: the changed rows, grown to whole lines of
/// the words already read there, across the full width. `None` when most of the window changed.
fn band(changed: Rect, old: &[Word], width: u32, height: u32) -> Option<Rect> {
    let (mut y0, mut y1) = ((changed.y - 4).max(0), (changed.y + changed.h as i32 + 4).min(height as i32));
    loop {
        let mut grown = false;
        for w in old {
            let (wy0, wy1) = (w.rect.y, w.rect.y + w.rect.h as i32);
            if wy1 > y0 && wy0 < y1 && (wy0 < y0 || wy1 > y1) {
                (y0, y1) = (y0.min(wy0 - 2).max(0), y1.max(wy1 + 2).min(height as i32));
                grown = true;
            }
        }
        if !grown {
            break;
        }
    }
    let h = (y1 - y0).max(0) as u32;
    (h as f32 <= BAND_MAX_SHARE * height as f32 && h >= 8).then_some(Rect { x: 0, y: y0, w: width, h })
}

/// The old words outside the band, with the fresh words of the band in their place.
fn merge(old: &[Word], fresh: Vec<Word>, band: Rect) -> Vec<Word> {
    let outside = |w: &&Word| w.rect.y + w.rect.h as i32 <= band.y || w.rect.y >= band.y + band.h as i32;
    let above = old.iter().filter(outside).filter(|w| w.rect.y < band.y).cloned();
    let below = old.iter().filter(outside).filter(|w| w.rect.y >= band.y).cloned();
    above.chain(fresh.into_iter().map(apart)).chain(below).collect()
}

/// Words of another reading (a second OCR run) keep their line numbers apart from the first's.
fn apart(mut w: Word) -> Word {
    w.line.0 += 1_000_000;
    w
}

/// Whether `new` keeps (nearly) all the text of `old`: text was added, little taken away.
/// Compared by characters, since two OCR runs may split the same Chinese line into different
/// words.
fn continues(old: &[Word], new: &[Word]) -> bool {
    let chars = |ws: &[Word]| ws.iter().flat_map(|w| w.text.chars()).filter(|c| !c.is_whitespace()).collect::<Vec<char>>();
    let old = chars(old);
    if old.is_empty() {
        return true;
    }
    let mut have: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for c in chars(new) {
        *have.entry(c).or_default() += 1;
    }
    let kept = old
        .iter()
        .filter(|c| match have.get_mut(c) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count();
    kept as f32 >= CONTINUE_SHARE * old.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ocr;

    fn word(text: &str, y: i32, line: u32) -> Word {
        Word { text: text.into(), rect: Rect { x: 10, y, w: 40, h: 12 }, conf: 90.0, line: (1, 1, line) }
    }

    fn read(text: &str, time: i64) -> Held {
        let img = Image { width: 4, height: 4, rgb: vec![255; 48] };
        Held { img, words: vec![word(text, 0, 1)], app: "editor".into(), title: "notes".into(), pid: None, time, ocr_ms: 0, ocr_pixels: 0, since: time }
    }

    fn text(t: &Tick) -> String {
        match t {
            Tick::Captured(c) => c.text.clone(),
            _ => String::new(),
        }
    }

    /// A display whose window cannot be read; with `closes`, because it has gone by the time
    /// the recorder looks again.
    struct Unreadable {
        closes: bool,
        looks: std::cell::Cell<u32>,
    }

    impl Backend for Unreadable {
        fn describe(&self) -> String {
            "a window that cannot be read".into()
        }

        fn activity(&self) -> Result<Option<super::super::Activity>, BackendError> {
            Ok(None)
        }

        fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError> {
            let n = self.looks.get();
            self.looks.set(n + 1);
            let notes = ActiveWindow { id: 7, title: "Notes".into(), app: "notes".into(), instance: "notes".into(), rect: Some(Rect { x: 0, y: 0, w: 64, h: 32 }), ..Default::default() };
            Ok((n == 0 || !self.closes).then_some(notes))
        }

        fn covering(&self, _: &ActiveWindow, _: Rect) -> Result<Vec<Rect>, BackendError> {
            Ok(Vec::new())
        }

        fn grab(&self) -> Result<Image, BackendError> {
            Err(BackendError("the window is gone".into()))
        }
    }

    fn recorder(display: Unreadable) -> Recorder {
        Recorder {
            display: Box::new(display),
            why: "for a test",
            accessibility: Err("off".into()),
            ocr: Ocr::new("eng", 50.0).unwrap(),
            gate: Gate::new(&PrivacyConfig::default()).unwrap(),
            cfg: ScreenConfig::default(),
            last: None,
            holding: Holding::default(),
            passed: None,
        }
    }

    #[test]
    fn a_window_that_closes_as_it_is_read_costs_that_look_not_the_recording() {
        let closing = recorder(Unreadable { closes: true, looks: Default::default() }).tick(0);
        assert!(matches!(closing, Ok(Tick::NoWindow)), "{:?}", closing.err());
        // A window still there that cannot be read is an error the daemon reports.
        assert!(recorder(Unreadable { closes: false, looks: Default::default() }).tick(0).is_err());
    }

    #[test]
    fn a_typing_run_is_stored_once_it_settles_ends_or_has_been_held_long() {
        let mut h = Holding::default();
        assert_eq!(text(&h.frame(read("a", 0), false, 80.0)), "a", "a new frame is handed out at once");
        assert!(matches!(h.frame(read("ab", 1), true, 80.0), Tick::Held));
        assert!(matches!(h.frame(read("abc", 2), true, 80.0), Tick::Held));
        // One unchanged tick soon after is no pause yet; a later one is.
        h.after(&Ok(Tick::Unchanged), 3, 80.0);
        assert!(h.ready.is_empty());
        h.after(&Ok(Tick::Unchanged), 5, 80.0);
        let out: Vec<(String, bool)> = h.ready.drain(..).map(|c| (c.text.clone(), c.continues)).collect();
        assert_eq!(out, [("abc".to_string(), true)], "the newest frame of the run, in the place of the one before");

        // Typing without a pause is stored every HOLD_SECS.
        for t in 10..10 + HOLD_SECS {
            assert!(matches!(h.frame(read(&format!("x{t}"), t), true, 80.0), Tick::Held));
        }
        let t = 10 + HOLD_SECS;
        let c = h.frame(read("last", t), true, 80.0);
        assert!(matches!(&c, Tick::Captured(c) if c.continues && c.text == "last"));
        assert!(h.held.is_none());

        // Another window (a new frame) or none: the run ends and goes first.
        assert!(matches!(h.frame(read("more", t + 1), true, 80.0), Tick::Held));
        assert_eq!(text(&h.frame(read("other window", t + 2), false, 80.0)), "other window");
        assert_eq!(h.ready.drain(..).map(|c| c.text.clone()).collect::<Vec<_>>(), ["more"]);
        assert!(matches!(h.frame(read("again", t + 3), true, 80.0), Tick::Held));
        h.after(&Ok(Tick::NoWindow), t + 3, 80.0);
        assert_eq!(h.ready.len(), 1);
    }

    #[test]
    fn the_band_covers_whole_lines_across_the_window() {
        let old = [word("a", 10, 1), word("b", 30, 2), word("c", 50, 3)];
        // A change touching the middle line only.
        let b = band(Rect { x: 100, y: 34, w: 20, h: 4 }, &old, 400, 300).unwrap();
        assert_eq!((b.x, b.w), (0, 400));
        assert!(b.y <= 30 && b.y + b.h as i32 >= 42, "{b:?}");
        assert!(b.y > 22 && b.y + b.h as i32 <= 50, "the band must not cut into the neighbours: {b:?}");
        // Most of the window changed: read it all.
        assert_eq!(band(Rect { x: 0, y: 0, w: 400, h: 200 }, &old, 400, 300), None);
    }

    #[test]
    fn merging_keeps_the_words_outside_the_band_in_reading_order() {
        let old = [word("top", 10, 1), word("typed", 30, 2), word("bottom", 50, 3)];
        let fresh = vec![word("typed", 30, 1), word("more", 30, 1)];
        let merged = merge(&old, fresh, Rect { x: 0, y: 26, w: 400, h: 20 });
        let texts: Vec<&str> = merged.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["top", "typed", "more", "bottom"]);
        let (text, _) = ocr::layout(&merged);
        assert_eq!(text, "top\n\ntyped more\n\nbottom");
        assert!(continues(&old, &merged));
        assert!(!continues(&merged, &old[..1]), "text taken away is a new frame");
    }
}
