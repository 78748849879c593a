//! Screen capture on KDE Plasma (Wayland). KWin shows two things only to programs that a desktop
//! file names: its window list (`org_kde_plasma_window_management`: each window's app_id, title,
//! process and state) and its screenshot service (`org.kde.KWin.ScreenShot2`), which draws one
//! window alone, in memory, and hands its pixels over a pipe. With both, engram knows the focused
//! window before reading a pixel, as on X11, and no window over it can be in the picture.
//!
//! The desktop file is written only when the user says so (`screen.kwin_permission`); without it
//! capture stays off and says how to turn it on. It names engram's executable and holds nothing
//! else.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{wl_registry, wl_seat};
use wayland_client::{delegate_dispatch, delegate_noop, Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::ext::idle_notify::v1::client::{ext_idle_notification_v1 as idle_notice, ext_idle_notifier_v1 as idle_notifier};
use wayland_protocols_plasma::plasma_window_management::client::{org_kde_plasma_window as window, org_kde_plasma_window_management as windows};
use zbus::zvariant::{Fd, OwnedValue, Value};

use super::accessibility::{answer, err, has_name};
use super::idle::{Idle, Since};
use super::{ActiveWindow, Activity, Backend, BackendError};
use crate::extract::picture::{Image, Rect};

const KWIN: &str = "org.kde.KWin";
const SCREENSHOT: &str = "org.kde.KWin.ScreenShot2";
const WINDOW_LIST: &str = "org_kde_plasma_window_management";
/// The window list's version that names windows by the uuid the screenshot service takes.
const WITH_UUID: u32 = 13;
const ACTIVE: u32 = 0x1;
const MINIMIZED: u32 = 0x2;
/// How long KWin may take to draw a window and send it.
const SHOT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long KWin may take to notice a desktop file engram has just written.
const PERMISSION_WAIT: Duration = Duration::from_secs(10);
/// Larger than any screen: a reply claiming more is not believed.
const MAX_SHOT_BYTES: usize = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum KdeError {
    #[error("this Wayland compositor offers no wlr-screencopy and is neither GNOME's mutter nor KDE's KWin (other compositors cast through the desktop portal, not supported yet: see the README)")]
    NotKde,
    #[error("KDE Plasma: KWin shows its window list and screenshots only to programs a desktop file names; set screen.kwin_permission = true to let engram write one ({0}), then restart the daemon")]
    NoPermission(String),
    #[error("KDE Plasma: KWin did not let engram see its windows although {0} names it (KWin 5.27 or later is needed)")]
    Refused(String),
    #[error("KDE Plasma: {0}")]
    Failed(String),
}

/// One window of KWin's list, as its events have told it.
#[derive(Default)]
struct Window {
    uuid: String,
    title: String,
    app_id: String,
    pid: Option<u32>,
    state: u32,
    /// Size in logical pixels, decorations included.
    size: (u32, u32),
}

#[derive(Default)]
struct State {
    windows: HashMap<u32, Window>,
}

pub struct Kde {
    _conn: Connection,
    queue: RefCell<EventQueue<State>>,
    state: RefCell<State>,
    bus: zbus::blocking::Connection,
    /// Kept alive so its events keep coming.
    _list: windows::OrgKdePlasmaWindowManagement,
    idle: Option<Idle>,
    /// Device pixels per logical pixel, learnt from KWin's screenshots.
    scale: Cell<f64>,
    /// The window being recorded, by KWin's uuid.
    focused: RefCell<Option<String>>,
}

impl Kde {
    /// Connects to KWin, writing the desktop file that names engram first if `permission` (the
    /// user's consent, `screen.kwin_permission`) and KWin does not yet show engram its windows.
    pub fn connect(permission: bool) -> Result<Kde, KdeError> {
        let bus = zbus::blocking::connection::Builder::session()
            .and_then(|b| b.method_timeout(SHOT_TIMEOUT).build())
            .map_err(|e| KdeError::Failed(format!("no session bus: {e}")))?;
        if !has_name(&bus, KWIN) {
            return Err(KdeError::NotKde);
        }
        if !has_name(&bus, SCREENSHOT) {
            return Err(KdeError::Failed("KWin offers no screenshot service (Plasma 5.22 or later is needed)".into()));
        }
        let file = desktop_file();
        let shown = file.display().to_string();
        if let Some(kde) = Self::attach(&bus)? {
            return Ok(kde);
        }
        if !permission {
            return Err(KdeError::NoPermission(shown));
        }
        let exe = std::env::current_exe().map_err(|e| KdeError::Failed(format!("cannot name engram's executable: {e}")))?;
        write_desktop_file(&file, &exe).map_err(|e| KdeError::Failed(format!("cannot write {shown}: {e}")))?;
        let start = Instant::now();
        while start.elapsed() < PERMISSION_WAIT {
            std::thread::sleep(Duration::from_millis(500));
            if let Some(kde) = Self::attach(&bus)? {
                return Ok(kde);
            }
        }
        Err(KdeError::Refused(shown))
    }

    /// A Wayland connection with KWin's window list, or `None` when KWin does not offer it.
    fn attach(bus: &zbus::blocking::Connection) -> Result<Option<Kde>, KdeError> {
        let failed = |e: &dyn std::fmt::Display| KdeError::Failed(format!("Wayland: {e}"));
        let conn = Connection::connect_to_env().map_err(|e| failed(&e))?;
        let (globals, mut queue) = registry_queue_init::<State>(&conn).map_err(|e| failed(&e))?;
        let qh = queue.handle();
        let Ok(list) = globals.bind::<windows::OrgKdePlasmaWindowManagement, _, _>(&qh, WITH_UUID..=16, ()) else {
            let offered = globals.contents().with_list(|l| l.iter().any(|g| g.interface == WINDOW_LIST));
            return match offered {
                true => Err(KdeError::Failed("KWin's window list is older than Plasma 5.27".into())),
                false => Ok(None),
            };
        };
        // Idle time, where KWin tells it (Plasma 5.27 and later).
        let idle = Idle::bind(&globals, &qh);
        let mut state = State::default();
        // The windows, then their titles, apps and states.
        for _ in 0..2 {
            queue.roundtrip(&mut state).map_err(|e| failed(&e))?;
        }
        Ok(Some(Kde {
            _conn: conn,
            queue: RefCell::new(queue),
            state: RefCell::new(state),
            bus: bus.clone(),
            _list: list,
            idle,
            scale: Cell::new(1.0),
            focused: RefCell::new(None),
        }))
    }

    fn sync(&self) -> Result<(), BackendError> {
        self.queue.borrow_mut().roundtrip(&mut self.state.borrow_mut()).map(|_| ()).map_err(|e| BackendError(format!("KWin: {e}")))
    }

    /// One window drawn alone by KWin, read from a pipe in memory.
    fn shot(&self, uuid: &str) -> Result<Image, String> {
        let (read, write) = pipe().map_err(err)?;
        let options: HashMap<&str, Value> = HashMap::from([
            ("include-decoration", Value::from(false)),
            ("include-cursor", Value::from(false)),
            ("native-resolution", Value::from(true)),
        ]);
        let reply = self.bus.call_method(Some(SCREENSHOT), "/org/kde/KWin/ScreenShot2", Some(SCREENSHOT), "CaptureWindow", &(uuid, options, Fd::from(&write)));
        drop(write);
        let results: HashMap<String, OwnedValue> = reply.map_err(err)?.body().deserialize().map_err(err)?;
        let number = |key: &str| results.get(key).and_then(|v| u32::try_from(v).ok().or_else(|| i32::try_from(v).ok().and_then(|n| u32::try_from(n).ok())));
        let kind = results.get("type").and_then(|v| <&str>::try_from(v).ok()).unwrap_or_default();
        let (Some(width), Some(height), Some(stride), Some(format)) = (number("width"), number("height"), number("stride"), number("format")) else {
            return Err("KWin's screenshot has no size".into());
        };
        if let Some(scale) = results.get("scale").and_then(|v| f64::try_from(v).ok()).filter(|s| *s > 0.0) {
            self.scale.set(scale);
        }
        let len = stride as usize * height as usize;
        if kind != "raw" || len > MAX_SHOT_BYTES || (stride as usize) < width as usize * 4 {
            return Err(format!("KWin sent a screenshot engram cannot read ({kind}, {width}x{height}, stride {stride})"));
        }
        let bytes = read_all(read, len, SHOT_TIMEOUT)?;
        to_rgb(&bytes, format, width, height, stride)
    }
}

impl Backend for Kde {
    fn describe(&self) -> String {
        "KDE Plasma (KWin's screenshots of the focused window alone; windows from KWin's window list)".into()
    }

    fn activity(&self) -> Result<Option<Activity>, BackendError> {
        self.sync()?;
        let saver_on = answer(&self.bus, ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver", "GetActive"), &()).unwrap_or(false);
        let idle_ms = self.idle.as_ref().map_or(0, Idle::idle_ms);
        Ok(Some(Activity { saver_on, idle_ms }))
    }

    fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError> {
        self.sync()?;
        let state = self.state.borrow();
        let Some(w) = state.windows.values().find(|w| w.state & ACTIVE != 0 && w.state & MINIMIZED == 0 && !w.uuid.is_empty()) else {
            *self.focused.borrow_mut() = None;
            return Ok(None);
        };
        *self.focused.borrow_mut() = Some(w.uuid.clone());
        let scale = self.scale.get();
        let (width, height) = ((w.size.0 as f64 * scale).round() as u32, (w.size.1 as f64 * scale).round() as u32);
        Ok(Some(ActiveWindow {
            id: uuid_id(&w.uuid),
            title: w.title.clone(),
            app: w.app_id.clone(),
            instance: w.app_id.clone(),
            pid: w.pid,
            exe: w.pid.and_then(super::x11::executable),
            // The screenshot holds the window alone, without its frame: at most this size.
            rect: Some(Rect { x: 0, y: 0, w: width, h: height }),
        }))
    }

    /// A window drawn alone holds nothing of the windows above it.
    fn covering(&self, _: &ActiveWindow, _: Rect) -> Result<Vec<Rect>, BackendError> {
        Ok(Vec::new())
    }

    fn grab(&self) -> Result<Image, BackendError> {
        let uuid = self.focused.borrow().clone().ok_or_else(|| BackendError("no window has focus".into()))?;
        self.shot(&uuid).map_err(|e| BackendError(format!("KWin's screenshot: {e}")))
    }
}

/// Where the desktop file that names engram to KWin goes (`$XDG_DATA_HOME/applications`).
fn desktop_file() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    data.join("applications/engram-capture.desktop")
}

/// The desktop entry KWin reads: engram's executable and the two things it may use, nothing else.
fn desktop_entry(exe: &Path) -> String {
    let exe = exe.display().to_string();
    // The Exec key's quoting (Desktop Entry spec): a path with spaces is quoted, `"` `\` `$` `` ` `` escaped.
    let exec = match exe.contains([' ', '"', '\\', '$', '`', '\'']) {
        true => format!("\"{}\"", exe.chars().flat_map(|c| if "\"\\$`".contains(c) { vec!['\\', c] } else { vec![c] }).collect::<String>()),
        false => exe,
    };
    format!(
        "[Desktop Entry]\nType=Application\nName=engram screen memory\nComment=Written by engram (screen.kwin_permission): lets KWin show it windows and the focused one's pixels\nExec={exec}\nNoDisplay=true\nX-KDE-Wayland-Interfaces={WINDOW_LIST}\nX-KDE-DBUS-Restricted-Interfaces={SCREENSHOT}\n"
    )
}

fn write_desktop_file(file: &Path, exe: &Path) -> std::io::Result<()> {
    let entry = desktop_entry(exe);
    if std::fs::read_to_string(file).is_ok_and(|old| old == entry) {
        return Ok(());
    }
    std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))?;
    let tmp = file.with_extension("desktop.tmp");
    std::fs::write(&tmp, entry)?;
    std::fs::rename(&tmp, file)
}

/// A window's id for [`ActiveWindow`]: its uuid, hashed.
fn uuid_id(uuid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uuid.hash(&mut h);
    h.finish()
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors, which are then owned here alone.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads `len` bytes, waiting at most `limit` for each part of them.
fn read_all(fd: OwnedFd, len: usize, limit: Duration) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    let mut file = std::fs::File::from(fd);
    while got < len {
        let mut poll = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as libc::c_int) };
        if ready == 0 {
            return Err("KWin sent no picture in time".into());
        }
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.to_string());
        }
        match file.read(&mut out[got..]) {
            Ok(0) => return Err(format!("KWin sent {got} of {len} bytes")),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(out)
}

/// QImage's 32-bit formats (RGB32 4, ARGB32 5, ARGB32_Premultiplied 6): 0xAARRGGBB in host
/// order, so B, G, R, A bytes on little-endian machines.
fn to_rgb(bytes: &[u8], format: u32, width: u32, height: u32, stride: u32) -> Result<Image, String> {
    if !(4..=6).contains(&format) {
        return Err(format!("KWin sent pixels in a format engram cannot read ({format})"));
    }
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for row in bytes.chunks_exact(stride as usize).take(height as usize) {
        for px in row[..width as usize * 4].chunks_exact(4) {
            let v = u32::from_ne_bytes([px[0], px[1], px[2], px[3]]);
            rgb.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        }
    }
    Ok(Image { width, height, rgb })
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(_: &mut Self, _: &wl_registry::WlRegistry, _: wl_registry::Event, _: &GlobalListContents, _: &Connection, _: &QueueHandle<Self>) {}
}

delegate_noop!(State: ignore wl_seat::WlSeat);
delegate_noop!(State: idle_notifier::ExtIdleNotifierV1);
delegate_dispatch!(State: [idle_notice::ExtIdleNotificationV1: std::sync::Arc<Since>] => Idle);

impl Dispatch<windows::OrgKdePlasmaWindowManagement, ()> for State {
    fn event(state: &mut Self, list: &windows::OrgKdePlasmaWindowManagement, event: windows::Event, _: &(), _: &Connection, qh: &QueueHandle<Self>) {
        if let windows::Event::WindowWithUuid { uuid, .. } = event {
            let w = list.get_window_by_uuid(uuid.clone(), qh, ());
            state.windows.insert(w.id().protocol_id(), Window { uuid, ..Window::default() });
        }
    }
}

impl Dispatch<window::OrgKdePlasmaWindow, ()> for State {
    fn event(state: &mut Self, handle: &window::OrgKdePlasmaWindow, event: window::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        let id = handle.id().protocol_id();
        if let window::Event::Unmapped = event {
            state.windows.remove(&id);
            handle.destroy();
            return;
        }
        let Some(w) = state.windows.get_mut(&id) else { return };
        match event {
            window::Event::TitleChanged { title } => w.title = title,
            window::Event::AppIdChanged { app_id } => w.app_id = app_id,
            window::Event::StateChanged { flags } => w.state = flags,
            window::Event::PidChanged { pid } => w.pid = (pid > 0).then_some(pid),
            window::Event::Geometry { width, height, .. } => w.size = (width, height),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qimage_pixels_read_as_rgb_whatever_the_stride() {
        // Two pixels a row, padded to 12 bytes: red, then half-transparent blue.
        let px = |v: u32| v.to_ne_bytes();
        let mut row = [px(0xFFFF_0000), px(0x800000FF)].concat();
        row.extend_from_slice(&[0; 4]);
        let img = to_rgb(&[row.clone(), row].concat(), 5, 2, 2, 12).unwrap();
        assert_eq!(img.rgb, [255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0, 255]);
        assert!(to_rgb(&[0; 16], 13, 2, 2, 8).is_err(), "a format engram cannot read is refused");
    }

    #[test]
    fn the_desktop_entry_names_the_executable_quoted_and_the_two_interfaces() {
        let plain = desktop_entry(Path::new("/usr/bin/engram-daemon"));
        assert!(plain.contains("\nExec=/usr/bin/engram-daemon\n"), "{plain}");
        assert!(plain.contains("X-KDE-Wayland-Interfaces=org_kde_plasma_window_management\n"));
        assert!(plain.contains("X-KDE-DBUS-Restricted-Interfaces=org.kde.KWin.ScreenShot2\n"));
        let spaced = desktop_entry(Path::new("/opt/my apps/$x/engram"));
        assert!(spaced.contains("\nExec=\"/opt/my apps/\\$x/engram\"\n"), "{spaced}");
    }

    #[test]
    fn a_pipe_that_closes_early_is_an_error_not_a_short_picture() {
        let (read, write) = pipe().unwrap();
        std::io::Write::write_all(&mut std::fs::File::from(write), b"abc").unwrap();
        let e = read_all(read, 8, Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("3 of 8"), "{e}");
    }
}
