//! Where memories come from: files under the folders the user names (and the watcher that
//! follows them), and screen frames with the active window's title and app, passed through the
//! privacy gate before anything is kept.
//!
//! Screen capture reads a desktop through a [`Backend`] (X11 in `x11.rs`, wlroots Wayland
//! compositors in `wayland.rs`, GNOME's mutter in `gnome.rs` with frames over PipeWire from
//! `pipewire.rs`, KDE's KWin in `kde.rs`, chosen in `screen.rs`); recording, change
//! detection, OCR and the gate (`screen.rs`, `frames.rs`, `privacy.rs`) are the same for every
//! back end. The `capture` cargo feature builds the back ends and Tesseract's OCR; without it
//! engram indexes files only.

#[cfg(feature = "capture")]
pub mod accessibility;
pub mod files;
pub mod frames;
#[cfg(feature = "capture")]
pub mod gnome;
#[cfg(feature = "capture")]
pub mod idle;
#[cfg(feature = "capture")]
pub mod kde;
#[cfg(feature = "capture")]
pub mod pipewire;
pub mod privacy;
#[cfg(feature = "capture")]
pub mod screen;
#[cfg(feature = "capture")]
pub mod sway;
pub mod watch;
#[cfg(feature = "capture")]
pub mod wayland;
#[cfg(feature = "capture")]
pub mod x11;

use crate::extract::ocr::Word;
use crate::extract::picture::{Image, Rect};

/// A desktop whose screen and focused window can be read.
pub trait Backend {
    /// What records, for the log and `status` ("X11", "Wayland (wlr-screencopy; …)").
    fn describe(&self) -> String;
    /// Whether the screen is locked and how long the user has been idle, if the desktop says.
    fn activity(&self) -> Result<Option<Activity>, BackendError>;
    /// The focused window, or `None` when the desktop names none.
    fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError>;
    /// The parts of `area` covered by other windows above `window`: not its pixels to keep.
    fn covering(&self, window: &ActiveWindow, area: Rect) -> Result<Vec<Rect>, BackendError>;
    /// The whole screen.
    fn grab(&self) -> Result<Image, BackendError>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// What the user is looking at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveWindow {
    /// The X window id (sway's container id, a Wayland toplevel's object id), to tell whether
    /// focus moved during a grab.
    pub id: u64,
    pub title: String,
    /// The window's class (`WM_CLASS`), e.g. "XTerm", "firefox".
    pub app: String,
    /// The instance name, the first half of `WM_CLASS`.
    pub instance: String,
    pub pid: Option<u32>,
    /// The file name of the owning process's executable (from `_NET_WM_PID`), when it runs on
    /// this machine and can be read.
    pub exe: Option<String>,
    /// Where it is on the screen, clipped to it.
    pub rect: Option<Rect>,
}

pub struct Activity {
    /// The screen saver (or a locker that uses it) is on.
    pub saver_on: bool,
    pub idle_ms: u32,
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
    /// Milliseconds spent in OCR.
    pub ocr_ms: u64,
    /// Pixels read by OCR (the changed band, or the whole window).
    pub ocr_pixels: u64,
    /// It only adds to the previous frame of the same window: store it in that one's place.
    pub continues: bool,
    pub width: u32,
    pub height: u32,
    pub image: Vec<u8>,
    pub thumb: Vec<u8>,
}

/// What one tick did.
pub enum Tick {
    Captured(Box<Captured>),
    /// A frame that only adds to the last one (typing), held in memory in its place until the
    /// run settles; the recorder lets go of it later.
    Held,
    Unchanged,
    Excluded(String),
    /// No window has focus (the desktop, a window that just closed, or a window manager that
    /// does not say), or focus moved during the grab: nothing on screen is known to be admitted.
    NoWindow,
    Idle,
    Locked,
}
