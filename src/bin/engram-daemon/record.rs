//! The capture thread: records the screen through the capture back end at the set interval,
//! sending each tick's outcome to the daemon's main thread, at a lower priority than the user's
//! own programs.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::run::Msg;
use engram::Engram;
#[cfg(feature = "capture")]
use {
    super::run::{set_nice, NO_WINDOW},
    engram::daemon::paused,
    engram::capture::screen::Recorder,
    engram::capture::Tick,
    std::sync::atomic::Ordering,
    std::time::{Duration, Instant},
};

/// The nice value of the capture thread: capture and OCR, the daemon's heaviest work, yield to
/// the user's own programs when the machine is busy (searches are answered on the main thread,
/// at normal priority).
#[cfg(feature = "capture")]
const CAPTURE_NICE: libc::c_int = 10;

/// Without the `capture` feature there is nothing to record the screen with: files only.
#[cfg(not(feature = "capture"))]
pub fn spawn(_: &Engram, _: &Path, _: f64, tx: Sender<Msg>, _: Arc<AtomicBool>, _: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let _ = tx.send(Msg::CaptureOff("this engram was built without screen capture (the cargo feature `capture`)".into()));
    std::thread::spawn(|| ())
}

#[cfg(feature = "capture")]
pub fn spawn(engram: &Engram, dir: &Path, interval: f64, tx: Sender<Msg>, stop: Arc<AtomicBool>, no_room: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let screen = engram.config().screen.clone();
    let privacy = engram.config().privacy.clone();
    let dir = dir.to_path_buf();
    let thread = std::thread::Builder::new().name("capture".into());
    thread.spawn(move || {
        set_nice(CAPTURE_NICE);
        let mut recorder = match Recorder::new(&screen, &privacy) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Msg::CaptureOff(e.to_string()));
                return;
            }
        };
        let period = Duration::from_secs_f64(interval.max(0.2));
        let _ = tx.send(Msg::Started { backend: recorder.describe() });
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let now = chrono::Utc::now().timestamp();
            let off = if paused(&dir, now).is_some() {
                // What was read before the pause is kept.
                recorder.release();
                Some("paused")
            } else {
                no_room.load(Ordering::Relaxed).then_some("disk full")
            };
            let tick = off.is_none().then(|| recorder.tick(now));
            // Frames held back during typing go first: they came before this tick's.
            for c in recorder.take_ready() {
                if tx.send(Msg::Frame(Box::new(c))).is_err() {
                    return;
                }
            }
            let msg = match tick {
                None => Msg::Tick(off.unwrap_or_default()),
                Some(Ok(Tick::Captured(c))) => Msg::Frame(c),
                Some(Ok(Tick::Held)) => Msg::Tick("typing"),
                Some(Ok(Tick::Unchanged)) => Msg::Tick("unchanged"),
                Some(Ok(Tick::Excluded(_))) => Msg::Excluded,
                Some(Ok(Tick::NoWindow)) => Msg::Tick(NO_WINDOW),
                Some(Ok(Tick::Idle)) => Msg::Tick("idle"),
                Some(Ok(Tick::Locked)) => Msg::Tick("locked"),
                Some(Err(e)) => {
                    // The display went away (logout) or OCR broke: say so and stop capturing;
                    // the folder watcher goes on.
                    let _ = tx.send(Msg::CaptureOff(e.to_string()));
                    return;
                }
            };
            if tx.send(msg).is_err() {
                return;
            }
            while started.elapsed() < period && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(period));
            }
        }
        // Stopping: the typing run held back is stored too.
        recorder.release();
        for c in recorder.take_ready() {
            let _ = tx.send(Msg::Frame(Box::new(c)));
        }
    })
    .expect("the capture thread starts")
}
