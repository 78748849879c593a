//! One capture step: look at the screen, decide whether this moment is worth keeping and may be
//! kept, read its text, and hand back a frame that has already been through the privacy gate.
//!
//! What is stored is the focused window (the whole screen when no window has focus): every
//! pixel kept has then been read by OCR and redacted, and a password manager left open beside
//! the focused window is never in a stored picture.

use super::frames::{self, LumaGrid};
use super::privacy::{self, Gate};
use super::x11::{ActiveWindow, Display, Image, Rect, X11Error};
use crate::config::{PrivacyConfig, ScreenConfig};
use crate::extract::ocr::{self, Ocr, OcrError, Word};

/// Changed cells (see [`LumaGrid`]) below which a frame counts as unchanged: a blinking cursor
/// changes one.
const MIN_CHANGED_CELLS: usize = 2;
/// Width of the stored thumbnail.
pub const THUMB_WIDTH: u32 = 320;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    X11(#[from] X11Error),
    #[error(transparent)]
    Ocr(#[from] OcrError),
    #[error(transparent)]
    Gate(#[from] privacy::GateError),
}

/// A frame ready to store: text and picture already redacted.
pub struct Captured {
    pub time: i64,
    pub app: String,
    pub title: String,
    pub pid: Option<u32>,
    pub text: String,
    pub words: Vec<Word>,
    pub redactions: usize,
    pub width: u32,
    pub height: u32,
    pub image: Vec<u8>,
    pub thumb: Vec<u8>,
}

/// What one tick did.
pub enum Tick {
    Captured(Box<Captured>),
    Unchanged,
    Excluded(String),
    Idle,
    Locked,
}

pub struct Recorder {
    display: Display,
    ocr: Ocr,
    gate: Gate,
    cfg: ScreenConfig,
    last: Option<(LumaGrid, String)>,
}

impl Recorder {
    pub fn new(cfg: &ScreenConfig, privacy: &PrivacyConfig) -> Result<Recorder, CaptureError> {
        let display = Display::connect()?;
        let gate = Gate::new(privacy)?;
        let ocr = Ocr::new(&cfg.ocr_languages, cfg.min_confidence)?;
        Ok(Recorder { display, ocr, gate, cfg: cfg.clone(), last: None })
    }

    pub fn uses_shm(&self) -> bool {
        self.display.uses_shm()
    }

    pub fn tick(&mut self, now: i64) -> Result<Tick, CaptureError> {
        if let Some(a) = self.display.activity()? {
            if a.saver_on {
                return Ok(Tick::Locked);
            }
            if self.cfg.idle_minutes > 0 && a.idle_ms as u64 > self.cfg.idle_minutes * 60_000 {
                return Ok(Tick::Idle);
            }
        }
        let window = self.display.active_window()?.unwrap_or_default();
        if let Some(why) = self.gate.excludes(&window.app, &window.instance, &window.title) {
            return Ok(Tick::Excluded(why));
        }
        let screen = self.display.grab()?;
        let grid = LumaGrid::of(&screen);
        if let Some((last, title)) = &self.last {
            if *title == window.title && last.changed_cells(&grid) < MIN_CHANGED_CELLS {
                return Ok(Tick::Unchanged);
            }
        }
        let captured = self.read(&screen, &window, now)?;
        self.last = Some((grid, window.title.clone()));
        Ok(Tick::Captured(Box::new(captured)))
    }

    fn read(&mut self, screen: &Image, window: &ActiveWindow, now: i64) -> Result<Captured, CaptureError> {
        let area = window.rect.unwrap_or(Rect { x: 0, y: 0, w: screen.width, h: screen.height });
        let img = frames::crop(screen, area);
        let words = self.ocr.words(&img, (0, 0), window.rect.is_some())?;
        let app = if window.app.is_empty() { "screen" } else { window.app.as_str() };
        Ok(redact_frame(img, words, app, &window.title, window.pid, now, self.cfg.webp_quality))
    }
}

/// The privacy gate for a frame: redacts sensitive text, blacks out the boxes of the words it
/// came from and drops their text, then encodes picture and thumbnail for storage.
pub fn redact_frame(mut img: Image, mut words: Vec<Word>, app: &str, title: &str, pid: Option<u32>, now: i64, quality: f32) -> Captured {
    let (text, ranges) = ocr::layout(&words);
    let redacted = privacy::redact(&text);
    let mut boxes = Vec::new();
    for (w, r) in words.iter_mut().zip(&ranges) {
        if redacted.spans.iter().any(|(s, _)| s.start < r.end && r.start < s.end) {
            boxes.push(w.rect);
            w.text = "[redacted]".into();
        }
    }
    frames::black_out(&mut img, &boxes);
    let thumb = frames::thumbnail(&img, THUMB_WIDTH);
    Captured {
        time: now,
        app: app.to_string(),
        title: privacy::redact(title).text,
        pid,
        text: redacted.text,
        words,
        redactions: boxes.len(),
        width: img.width,
        height: img.height,
        image: frames::encode_webp(&img, quality),
        thumb: frames::encode_webp(&thumb, quality),
    }
}
