//! Screen capture on GNOME (Wayland): mutter's screen cast API, the one GNOME's desktop portal
//! drives, casts the focused window alone over PipeWire, so nothing of another window is ever
//! in its frames. mutter tells clients nothing about windows, so which window has focus, and
//! its app and title, come from accessibility (`accessibility.rs`): a window that is not on the
//! accessibility bus is not recorded.
//!
//! Each focused window gets a cast of its own (mutter casts the window focused when asked);
//! when focus moves the cast is stopped and a new one made.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, Value};

use super::accessibility::{answer, err, has_name, Accessibility};
use super::pipewire::Cast;
use super::{ActiveWindow, Activity, Backend, BackendError};
use crate::extract::picture::{Image, Rect};

const MUTTER: &str = "org.gnome.Mutter.ScreenCast";
const SESSION: &str = "org.gnome.Mutter.ScreenCast.Session";
const STREAM: &str = "org.gnome.Mutter.ScreenCast.Stream";
/// How long a new cast may take to name its PipeWire node and send its first frame.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// mutter's cursor modes: the pointer is left out of the picture.
const CURSOR_HIDDEN: u32 = 0;
/// Not a PipeWire node: what engram sends itself to stop waiting for one.
const NO_NODE: u32 = u32::MAX;
/// A window mutter could not cast is not asked for again before this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum GnomeError {
    #[error("no session bus: {0}")]
    Bus(String),
    #[error("mutter is not on the session bus")]
    NotGnome,
    #[error("GNOME capture needs accessibility to know the focused window: {0}")]
    NoAccessibility(String),
}

/// The cast of one window, while it has focus.
struct WindowCast {
    window: u64,
    session: OwnedObjectPath,
    cast: Cast,
}

pub struct Gnome {
    bus: Connection,
    a11y: Accessibility,
    cast: RefCell<Option<WindowCast>>,
    /// The last window that could not be cast, and when.
    failed: RefCell<Option<(u64, std::time::Instant)>>,
}

impl Gnome {
    /// Connects to mutter on the session bus, and to accessibility (turned on for the session
    /// if `enable_accessibility`, the user's consent).
    pub fn connect(enable_accessibility: bool) -> Result<Gnome, GnomeError> {
        let bus = zbus::blocking::connection::Builder::session()
            .and_then(|b| b.method_timeout(START_TIMEOUT).build())
            .map_err(|e| GnomeError::Bus(e.to_string()))?;
        if !has_name(&bus, MUTTER) {
            return Err(GnomeError::NotGnome);
        }
        let a11y = Accessibility::connect(enable_accessibility).map_err(GnomeError::NoAccessibility)?;
        Ok(Gnome { bus, a11y, cast: RefCell::new(None), failed: RefCell::new(None) })
    }

    fn call<T: serde::de::DeserializeOwned + zbus::zvariant::Type>(&self, path: &str, iface: &str, method: &str, body: &(impl serde::Serialize + zbus::zvariant::DynamicType)) -> Result<T, String> {
        let reply = self.bus.call_method(Some(MUTTER), path, Some(iface), method, body).map_err(err)?;
        reply.body().deserialize().map_err(err)
    }

    /// A new cast of the window mutter has focused.
    fn cast_focused(&self, window: u64) -> Result<WindowCast, String> {
        let no_options: HashMap<&str, Value> = HashMap::new();
        let session: OwnedObjectPath = self.call("/org/gnome/Mutter/ScreenCast", MUTTER, "CreateSession", &(no_options,))?;
        let started = (|| {
            let options = HashMap::from([("cursor-mode", Value::from(CURSOR_HIDDEN))]);
            let stream: OwnedObjectPath = self.call(session.as_str(), SESSION, "RecordWindow", &(options,))?;
            // The stream names its PipeWire node once started: listen before starting it.
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .interface(STREAM)
                .and_then(|r| r.member("PipeWireStreamAdded"))
                .and_then(|r| r.path(stream.as_str()))
                .map_err(err)?
                .build();
            let signals = zbus::blocking::MessageIterator::for_match_rule(rule, &self.bus, Some(4)).map_err(err)?;
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                if let Some(node) = signals.flatten().find_map(|m| m.body().deserialize::<u32>().ok()) {
                    let _ = tx.send(node);
                }
            });
            let node = self.call::<()>(session.as_str(), SESSION, "Start", &()).and_then(|_| rx.recv_timeout(START_TIMEOUT).map_err(|_| "mutter named no PipeWire stream".to_string()));
            if node.is_err() {
                // The listening thread ends with a signal it takes for the one it waits for.
                let _ = self.bus.emit_signal(None::<&str>, stream.as_str(), STREAM, "PipeWireStreamAdded", &(NO_NODE,));
            }
            let node = node.ok().filter(|&n| n != NO_NODE).ok_or("mutter named no PipeWire stream")?;
            let cast = Cast::start(node, None)?;
            cast.wait_first(START_TIMEOUT)?;
            Ok(cast)
        })();
        match started {
            Ok(cast) => Ok(WindowCast { window, session, cast }),
            Err(e) => {
                let _ = self.call::<()>(session.as_str(), SESSION, "Stop", &());
                Err(e)
            }
        }
    }

    fn stop(&self) {
        let old = self.cast.borrow_mut().take();
        if let Some(old) = old {
            self.end(old);
        }
    }

    /// Stops reading a cast, then has mutter stop it.
    fn end(&self, c: WindowCast) {
        drop(c.cast);
        let _ = self.call::<()>(c.session.as_str(), SESSION, "Stop", &());
    }
}

impl Drop for Gnome {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Backend for Gnome {
    fn describe(&self) -> String {
        "GNOME (mutter's screen cast of the focused window over PipeWire; windows from accessibility)".into()
    }

    fn activity(&self) -> Result<Option<Activity>, BackendError> {
        let idle_ms: Option<u64> = answer(&self.bus, ("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core", "org.gnome.Mutter.IdleMonitor", "GetIdletime"), &());
        // The lock screen is gnome-shell's; bare mutter has none.
        let saver_on = answer(&self.bus, ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver", "GetActive"), &()).unwrap_or(false);
        Ok(idle_ms.map(|ms| Activity { saver_on, idle_ms: ms.min(u32::MAX as u64) as u32 }))
    }

    fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError> {
        let Some(mut window) = self.a11y.focused() else {
            self.stop();
            return Ok(None);
        };
        if self.cast.borrow().as_ref().is_some_and(|c| c.cast.failed().is_some()) {
            // The cast broke (PipeWire restarted, the window is going): a new one next time.
            self.stop();
            return Ok(None);
        }
        let current = self.cast.borrow().as_ref().map(|c| c.window);
        if current != Some(window.id) {
            self.stop();
            if self.failed.borrow().is_some_and(|(id, when)| id == window.id && when.elapsed() < RETRY_AFTER) {
                return Ok(None);
            }
            let Ok(cast) = self.cast_focused(window.id) else {
                *self.failed.borrow_mut() = Some((window.id, std::time::Instant::now()));
                return Ok(None);
            };
            // mutter cast the window focused when asked: it is this one only if focus stayed.
            if self.a11y.focused().map(|w| w.id) != Some(window.id) {
                self.end(cast);
                return Ok(None);
            }
            *self.cast.borrow_mut() = Some(cast);
        }
        let size = self.cast.borrow().as_ref().and_then(|c| c.cast.size());
        window.rect = size.map(|(w, h)| Rect { x: 0, y: 0, w, h });
        Ok(Some(window))
    }

    /// A window's cast holds its own pixels only: nothing above it is in them.
    fn covering(&self, _: &ActiveWindow, _: Rect) -> Result<Vec<Rect>, BackendError> {
        Ok(Vec::new())
    }

    /// The focused window's newest frame (the "screen" is that window alone).
    fn grab(&self) -> Result<Image, BackendError> {
        let cast = self.cast.borrow();
        let cast = cast.as_ref().ok_or_else(|| BackendError("no window is being cast".into()))?;
        cast.cast.latest().map_err(BackendError)
    }
}
