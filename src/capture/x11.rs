//! The X11 side of screen capture: whole-screen frames (MIT-SHM when the server offers it), the
//! active window's title, app and pid, and whether the user is idle or the screen is locked.

use std::os::fd::AsRawFd;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::screensaver;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, ImageFormat, MapState, Window, WindowClass};
use x11rb::rust_connection::RustConnection;

use super::{ActiveWindow, Activity, Backend, BackendError};
use crate::extract::picture::{Image, Rect};

#[derive(Debug, thiserror::Error)]
pub enum X11Error {
    #[error("no display to record: neither WAYLAND_DISPLAY nor DISPLAY is set")]
    NoDisplay,
    #[error("could not connect to the X display {0}: {1}")]
    Connect(String, String),
    #[error("the X server uses {0} bits per pixel; screen capture reads 32-bit true-colour screens only")]
    PixelFormat(u8),
    #[error("X request failed: {0}")]
    Request(String),
}

macro_rules! x11_err {
    ($($t:ty),*) => {$(impl From<$t> for X11Error {
        fn from(e: $t) -> Self { X11Error::Request(e.to_string()) }
    })*};
}
x11_err!(x11rb::errors::ConnectionError, x11rb::errors::ReplyError, x11rb::errors::ReplyOrIdError);

struct Atoms {
    net_active_window: u32,
    net_wm_name: u32,
    net_wm_pid: u32,
    utf8_string: u32,
    compound_text: u32,
}

struct ShmSeg {
    seg: shm::Seg,
    ptr: *mut u8,
    len: usize,
}

pub struct Display {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
    atoms: Atoms,
    shm: Option<ShmSeg>,
    screensaver: bool,
}

impl Display {
    /// Connects to `$DISPLAY`.
    pub fn connect() -> Result<Display, X11Error> {
        let name = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()).ok_or(X11Error::NoDisplay)?;
        let (conn, screen_num) = RustConnection::connect(Some(&name)).map_err(|e| X11Error::Connect(name.clone(), e.to_string()))?;
        let screen = &conn.setup().roots[screen_num];
        let (root, width, height, depth) = (screen.root, screen.width_in_pixels, screen.height_in_pixels, screen.root_depth);
        let bpp = conn.setup().pixmap_formats.iter().find(|f| f.depth == depth).map(|f| f.bits_per_pixel).unwrap_or(0);
        if bpp != 32 {
            return Err(X11Error::PixelFormat(bpp));
        }
        let atom = |n: &str| -> Result<u32, X11Error> { Ok(conn.intern_atom(false, n.as_bytes())?.reply()?.atom) };
        let atoms = Atoms {
            net_active_window: atom("_NET_ACTIVE_WINDOW")?,
            net_wm_name: atom("_NET_WM_NAME")?,
            net_wm_pid: atom("_NET_WM_PID")?,
            utf8_string: atom("UTF8_STRING")?,
            compound_text: atom("COMPOUND_TEXT")?,
        };
        let screensaver = conn.extension_information(screensaver::X11_EXTENSION_NAME).ok().flatten().is_some();
        let mut display = Display { conn, root, width, height, atoms, shm: None, screensaver };
        display.shm = display.attach_shm().ok();
        Ok(display)
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width as u32, self.height as u32)
    }

    /// Whether frames travel through shared memory (fast) or the socket.
    pub fn uses_shm(&self) -> bool {
        self.shm.is_some()
    }

    /// A server-created segment (MIT-SHM 1.2), mapped here: frames then cost a copy, not a
    /// socket transfer of the whole screen.
    fn attach_shm(&self) -> Result<ShmSeg, X11Error> {
        let version = self.conn.shm_query_version()?.reply()?;
        if (version.major_version, version.minor_version) < (1, 2) {
            return Err(X11Error::Request("MIT-SHM 1.2 not offered".into()));
        }
        let len = self.width as usize * self.height as usize * 4;
        let seg = self.conn.generate_id()?;
        let reply = self.conn.shm_create_segment(seg, len as u32, false)?.reply()?;
        let fd = reply.shm_fd;
        // SAFETY: maps the server's segment, which is `len` bytes long; unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
        };
        if ptr == libc::MAP_FAILED {
            let _ = self.conn.shm_detach(seg);
            return Err(X11Error::Request(format!("mmap of the shared segment failed: {}", std::io::Error::last_os_error())));
        }
        Ok(ShmSeg { seg, ptr: ptr as *mut u8, len })
    }

    /// The whole screen.
    pub fn grab(&self) -> Result<Image, X11Error> {
        let (w, h) = (self.width, self.height);
        let pixels = w as usize * h as usize;
        let mut rgb = Vec::with_capacity(pixels * 3);
        match &self.shm {
            Some(s) => {
                self.conn.shm_get_image(self.root, 0, 0, w, h, !0, ImageFormat::Z_PIXMAP.into(), s.seg, 0)?.reply()?;
                // SAFETY: the server has written the frame and the reply has arrived; the
                // segment stays mapped for the life of `self`.
                let bgrx = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
                bgrx_to_rgb(bgrx, &mut rgb);
            }
            None => {
                let reply = self.conn.get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, w, h, !0)?.reply()?;
                bgrx_to_rgb(&reply.data, &mut rgb);
            }
        }
        rgb.truncate(pixels * 3);
        Ok(Image { width: w as u32, height: h as u32, rgb })
    }

    /// The focused window, or `None` when the window manager names none.
    pub fn active_window(&self) -> Result<Option<ActiveWindow>, X11Error> {
        let reply = self.conn.get_property(false, self.root, self.atoms.net_active_window, AtomEnum::WINDOW, 0, 1)?.reply()?;
        let Some(win) = reply.value32().and_then(|mut v| v.next()).filter(|&w| w != 0) else { return Ok(None) };
        // The window may close between the two requests: then there is no active window.
        match self.describe(win) {
            Ok(w) => Ok(Some(w)),
            Err(X11Error::Request(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn describe(&self, win: Window) -> Result<ActiveWindow, X11Error> {
        let title = self.title(win)?;
        let class = self.conn.get_property(false, win, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 256)?.reply()?.value;
        let mut parts = class.split(|&b| b == 0).map(latin1);
        let instance = parts.next().unwrap_or_default();
        let app = parts.next().filter(|s| !s.is_empty()).unwrap_or_else(|| instance.clone());
        let pid = self
            .conn
            .get_property(false, win, self.atoms.net_wm_pid, AtomEnum::CARDINAL, 0, 1)?
            .reply()?
            .value32()
            .and_then(|mut v| v.next());
        let geo = self.conn.get_geometry(win)?.reply()?;
        let at = self.conn.translate_coordinates(win, self.root, 0, 0)?.reply()?;
        let rect = clip(Rect { x: at.dst_x as i32, y: at.dst_y as i32, w: geo.width as u32, h: geo.height as u32 }, self.size());
        let exe = pid.and_then(executable);
        Ok(ActiveWindow { id: win as u64, title, app, instance, pid, exe, rect })
    }

    /// The parts of `area` covered by other windows stacked above `win` (notifications, menus,
    /// tooltips, another app's always-on-top window): their pixels are not `win`'s to keep.
    /// Without a compositor every window draws straight to the screen, so the stacking order
    /// of the root's children is what is seen.
    pub fn covering(&self, win: Window, area: Rect) -> Result<Vec<Rect>, X11Error> {
        let top = self.top_level(win)?;
        let stack = self.conn.query_tree(self.root)?.reply()?.children;
        let Some(pos) = stack.iter().position(|&w| w == top) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for &above in &stack[pos + 1..] {
            // A window that closed meanwhile covers nothing.
            let Ok(attrs) = self.conn.get_window_attributes(above)?.reply() else { continue };
            if attrs.map_state != MapState::VIEWABLE || attrs.class == WindowClass::INPUT_ONLY {
                continue;
            }
            let Ok(geo) = self.conn.get_geometry(above)?.reply() else { continue };
            let border = geo.border_width as i32;
            let r = Rect { x: geo.x as i32, y: geo.y as i32, w: geo.width as u32 + 2 * border as u32, h: geo.height as u32 + 2 * border as u32 };
            if let Some(overlap) = intersect(r, area) {
                out.push(overlap);
            }
        }
        Ok(out)
    }

    /// The child of the root that holds `win` (the window manager's frame around it, or `win`).
    fn top_level(&self, mut win: Window) -> Result<Window, X11Error> {
        loop {
            let tree = self.conn.query_tree(win)?.reply()?;
            if tree.parent == self.root || tree.parent == 0 {
                return Ok(win);
            }
            win = tree.parent;
        }
    }

    /// `_NET_WM_NAME`, else `WM_NAME` decoded by the type it was actually stored with.
    fn title(&self, win: Window) -> Result<String, X11Error> {
        let net = self.conn.get_property(false, win, self.atoms.net_wm_name, self.atoms.utf8_string, 0, 1024)?.reply()?;
        if !net.value.is_empty() {
            return Ok(String::from_utf8_lossy(&net.value).into_owned());
        }
        let old = self.conn.get_property(false, win, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)?.reply()?;
        Ok(if old.type_ == self.atoms.utf8_string {
            String::from_utf8_lossy(&old.value).into_owned()
        } else if old.type_ == self.atoms.compound_text {
            compound_text(&old.value)
        } else {
            latin1(&old.value)
        })
    }

    /// Idle time and screen saver state; `None` when the server lacks the extension.
    pub fn activity(&self) -> Result<Option<Activity>, X11Error> {
        if !self.screensaver {
            return Ok(None);
        }
        let info = screensaver::query_info(&self.conn, self.root)?.reply()?;
        Ok(Some(Activity { saver_on: info.state == u8::from(screensaver::State::ON), idle_ms: info.ms_since_user_input }))
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(s) = self.shm.take() {
            let _ = self.conn.shm_detach(s.seg);
            let _ = self.conn.flush();
            // SAFETY: unmaps exactly what attach_shm mapped.
            unsafe { libc::munmap(s.ptr as *mut libc::c_void, s.len) };
        }
    }
}

fn bgrx_to_rgb(bgrx: &[u8], rgb: &mut Vec<u8>) {
    for px in bgrx.chunks_exact(4) {
        rgb.extend_from_slice(&[px[2], px[1], px[0]]);
    }
}

/// The file name of a process's executable, from /proc (Linux).
pub(super) fn executable(pid: u32) -> Option<String> {
    let path = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(path.file_name()?.to_string_lossy().trim_end_matches(" (deleted)").to_string())
}

impl From<X11Error> for BackendError {
    fn from(e: X11Error) -> Self {
        BackendError(e.to_string())
    }
}

impl Backend for Display {
    fn describe(&self) -> String {
        if self.uses_shm() { "X11".into() } else { "X11 (without MIT-SHM)".into() }
    }

    fn activity(&self) -> Result<Option<Activity>, BackendError> {
        Ok(Display::activity(self)?)
    }

    fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError> {
        Ok(Display::active_window(self)?)
    }

    fn covering(&self, window: &ActiveWindow, area: Rect) -> Result<Vec<Rect>, BackendError> {
        Ok(Display::covering(self, window.id as Window, area)?)
    }

    fn grab(&self) -> Result<Image, BackendError> {
        Ok(Display::grab(self)?)
    }
}

/// The part of `a` that is also in `b`.
pub fn intersect(a: Rect, b: Rect) -> Option<Rect> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.w as i32).min(b.x + b.w as i32);
    let y1 = (a.y + a.h as i32).min(b.y + b.h as i32);
    (x1 > x0 && y1 > y0).then(|| Rect { x: x0, y: y0, w: (x1 - x0) as u32, h: (y1 - y0) as u32 })
}

/// The part of `r` on a screen of this size.
pub(super) fn clip(r: Rect, (sw, sh): (u32, u32)) -> Option<Rect> {
    intersect(r, Rect { x: 0, y: 0, w: sw, h: sh })
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Decodes COMPOUND_TEXT (ISO 2022 as X uses it): Latin-1 by default, with the UTF-8 escape and
/// the common CJK 94² sets in the right half (GB 2312, JIS X 0208, KS C 5601). Unknown sets are
/// shown as replacement characters rather than as escape bytes.
pub fn compound_text(b: &[u8]) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum Right {
        Latin1,
        Gb2312,
        Jis0208,
        Ksc5601,
        Unknown,
    }
    let mut out = String::new();
    let mut right = Right::Latin1;
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0x1b {
            let rest = &b[i + 1..];
            if rest.starts_with(b"%G") {
                // UTF-8 up to ESC % @ (or the end).
                let body = &rest[2..];
                let end = body.windows(3).position(|w| w == b"\x1b%@").unwrap_or(body.len());
                out.push_str(&String::from_utf8_lossy(&body[..end]));
                i += 3 + end + if end < body.len() { 3 } else { 0 };
                continue;
            }
            let (len, set) = match rest {
                [b'-', b'A', ..] => (3, Right::Latin1),
                [b'$', b')', b'A', ..] => (4, Right::Gb2312),
                [b'$', b')', b'B', ..] => (4, Right::Jis0208),
                [b'$', b')', b'C', ..] => (4, Right::Ksc5601),
                [b'(', _, ..] => (3, right),
                [b'-', _, ..] | [b'$', b')', _, ..] => (if rest[0] == b'-' { 3 } else { 4 }, Right::Unknown),
                _ => (1, right),
            };
            right = set;
            i += len;
            continue;
        }
        if b[i] < 0x80 || right == Right::Latin1 {
            out.push(b[i] as char);
            i += 1;
            continue;
        }
        let end = b[i..].iter().position(|&c| c < 0x80).map_or(b.len(), |p| i + p);
        let run = &b[i..end];
        let encoding = match right {
            Right::Gb2312 => Some(encoding_rs::GBK),
            Right::Jis0208 => Some(encoding_rs::EUC_JP),
            Right::Ksc5601 => Some(encoding_rs::EUC_KR),
            _ => None,
        };
        match encoding {
            Some(enc) => out.push_str(&enc.decode_without_bom_handling(run).0),
            None => out.extend(std::iter::repeat_n('\u{fffd}', run.len())),
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_text_latin1_utf8_and_gb2312() {
        assert_eq!(compound_text(b"caf\xe9 menu"), "café menu");
        assert_eq!(compound_text(b"a\x1b%G\xe4\xbd\xa0\xe5\xa5\xbd\x1b%@b"), "a你好b");
        // 你好 in GB 2312 (EUC-CN bytes), designated to the right half.
        assert_eq!(compound_text(b"x \x1b$)A\xc4\xe3\xba\xc3 y"), "x 你好 y");
        assert_eq!(compound_text(b"\x1b$)B\xa4\xa2"), "あ");
        // An unknown set never shows escape bytes.
        assert!(!compound_text(b"\x1b-Z\xc1\xc2").contains('\x1b'));
    }

    #[test]
    fn clip_keeps_windows_on_screen() {
        assert_eq!(clip(Rect { x: -10, y: 5, w: 100, h: 50 }, (80, 40)), Some(Rect { x: 0, y: 5, w: 80, h: 35 }));
        assert_eq!(clip(Rect { x: 100, y: 0, w: 10, h: 10 }, (80, 40)), None);
    }
}
