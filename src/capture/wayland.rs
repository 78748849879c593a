//! The Wayland side of screen capture on wlroots compositors (sway, Hyprland, river, labwc …):
//! pixels through `wlr-screencopy` into shared memory that exists only in RAM (a memfd), the
//! focused window's app_id and title through `wlr-foreign-toplevel-management`, and where the
//! window is from the compositor's own IPC (sway's, in `sway.rs`), since no Wayland protocol
//! tells a client where other clients' windows are.
//!
//! Without that place the focused window is kept only when it is fullscreen (then it is its
//! output); otherwise nothing on screen is known to be its own and no frame is stored.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{wl_buffer, wl_output, wl_registry, wl_shm, wl_shm_pool};
use wayland_client::protocol::wl_seat;
use wayland_client::{delegate_dispatch, delegate_noop, event_created_child, Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum};
use wayland_protocols::ext::idle_notify::v1::client::{ext_idle_notification_v1 as idle_notice, ext_idle_notifier_v1 as idle_notifier};
use wayland_protocols_wlr::foreign_toplevel::v1::client::{zwlr_foreign_toplevel_handle_v1 as toplevel, zwlr_foreign_toplevel_manager_v1 as toplevels};
use wayland_protocols_wlr::screencopy::v1::client::{zwlr_screencopy_frame_v1 as frame, zwlr_screencopy_manager_v1 as screencopy};

use super::idle::{Idle, Since};
use super::sway::Sway;
use super::x11::clip;
use super::{ActiveWindow, Activity, Backend, BackendError};
use crate::extract::picture::{Image, Rect};

#[derive(Debug, thiserror::Error)]
pub enum WaylandError {
    #[error("no Wayland display: WAYLAND_DISPLAY is not set")]
    NoDisplay,
    #[error("could not connect to the Wayland display: {0}")]
    Connect(String),
    #[error("this Wayland compositor offers no wlr-screencopy")]
    NoScreencopy,
    #[error("Wayland: {0}")]
    Protocol(String),
}

impl From<WaylandError> for BackendError {
    fn from(e: WaylandError) -> Self {
        BackendError(e.to_string())
    }
}

fn protocol(e: impl std::fmt::Display) -> WaylandError {
    WaylandError::Protocol(e.to_string())
}

#[derive(Default, Clone)]
struct Output {
    /// Position in the compositor's layout, in logical pixels.
    x: i32,
    y: i32,
    /// The current mode, in buffer pixels.
    width: i32,
    height: i32,
    scale: i32,
}

#[derive(Default, Clone)]
struct Toplevel {
    title: String,
    app_id: String,
    activated: bool,
    fullscreen: bool,
    outputs: Vec<u32>,
    /// Title, app_id and state arrive one by one; they hold together once `done` is sent.
    pending: Option<Box<Toplevel>>,
}

/// The shape of the buffer the compositor asked for, and how the copy went.
#[derive(Default)]
struct Copy {
    format: Option<wl_shm::Format>,
    width: u32,
    height: u32,
    stride: u32,
    buffer_done: bool,
    y_invert: bool,
    ready: bool,
    failed: bool,
}

#[derive(Default)]
struct State {
    outputs: HashMap<u32, Output>,
    toplevels: HashMap<u32, Toplevel>,
    copy: Copy,
}

pub struct Wayland {
    _conn: Connection,
    queue: RefCell<EventQueue<State>>,
    state: RefCell<State>,
    shm: wl_shm::WlShm,
    screencopy: screencopy::ZwlrScreencopyManagerV1,
    /// Objects kept alive so their events keep coming.
    outputs: Vec<wl_output::WlOutput>,
    has_toplevels: bool,
    sway: Option<Sway>,
    idle: Option<Idle>,
}

impl Wayland {
    /// Connects to `$WAYLAND_DISPLAY` and binds what capture needs.
    pub fn connect() -> Result<Wayland, WaylandError> {
        if std::env::var_os("WAYLAND_DISPLAY").is_none_or(|d| d.is_empty()) {
            return Err(WaylandError::NoDisplay);
        }
        let conn = Connection::connect_to_env().map_err(|e| WaylandError::Connect(e.to_string()))?;
        let (globals, mut queue) = registry_queue_init::<State>(&conn).map_err(protocol)?;
        let qh = queue.handle();
        let screencopy: screencopy::ZwlrScreencopyManagerV1 = globals.bind(&qh, 1..=3, ()).map_err(|_| WaylandError::NoScreencopy)?;
        let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).map_err(protocol)?;
        let outputs = globals
            .contents()
            .clone_list()
            .into_iter()
            .filter(|g| g.interface == wl_output::WlOutput::interface().name)
            .map(|g| globals.registry().bind::<wl_output::WlOutput, _, _>(g.name, g.version.min(3), &qh, g.name))
            .collect();
        let has_toplevels = globals.bind::<toplevels::ZwlrForeignToplevelManagerV1, _, _>(&qh, 1..=3, ()).is_ok();
        let idle = Idle::bind(&globals, &qh);
        let mut state = State::default();
        // Two round trips: the first brings the outputs' and toplevels' objects, the second
        // their properties.
        queue.roundtrip(&mut state).map_err(protocol)?;
        queue.roundtrip(&mut state).map_err(protocol)?;
        let sway = Sway::connect();
        Ok(Wayland { _conn: conn, queue: RefCell::new(queue), state: RefCell::new(state), shm, screencopy, outputs, has_toplevels, sway, idle })
    }

    fn sync(&self) -> Result<(), WaylandError> {
        self.queue.borrow_mut().roundtrip(&mut self.state.borrow_mut()).map(|_| ()).map_err(protocol)
    }

    /// The layout's bounding box, in logical pixels.
    fn layout(&self) -> (u32, u32) {
        let state = self.state.borrow();
        let w = state.outputs.values().map(|o| o.x + o.width / o.scale.max(1)).max().unwrap_or(0);
        let h = state.outputs.values().map(|o| o.y + o.height / o.scale.max(1)).max().unwrap_or(0);
        (w.max(0) as u32, h.max(0) as u32)
    }

    fn focused(&self) -> Result<Option<ActiveWindow>, WaylandError> {
        self.sync()?;
        let known = self.sway.as_ref().and_then(|s| s.focused().ok().flatten());
        let state = self.state.borrow();
        let top = state.toplevels.iter().find(|(_, t)| t.activated);
        let Some((&id, top)) = top else {
            // A compositor without foreign-toplevel: sway's own word, if any.
            return Ok(if self.has_toplevels { None } else { known });
        };
        let mut window = ActiveWindow { id: id as u64, title: top.title.clone(), app: top.app_id.clone(), instance: top.app_id.clone(), ..Default::default() };
        match known {
            // The same window as the compositor's IPC names: it says where it is, and whose.
            Some(k) if k.title == top.title && (k.app == top.app_id || top.app_id.is_empty()) => {
                window.id = k.id;
                window.rect = k.rect.and_then(|r| clip(r, self.layout()));
                (window.pid, window.exe) = (k.pid, k.exe);
            }
            Some(_) => return Ok(None),
            None if top.fullscreen => {
                let out = top.outputs.first().and_then(|o| state.outputs.get(o));
                window.rect = out.map(|o| Rect { x: o.x, y: o.y, w: (o.width / o.scale.max(1)) as u32, h: (o.height / o.scale.max(1)) as u32 });
            }
            None => {}
        }
        Ok(Some(window))
    }

    /// Every output, copied into one picture of the layout.
    fn grab_all(&self) -> Result<Image, WaylandError> {
        let (w, h) = self.layout();
        if w == 0 || h == 0 {
            return Err(WaylandError::Protocol("the compositor names no output".into()));
        }
        let mut screen = Image { width: w, height: h, rgb: vec![0; w as usize * h as usize * 3] };
        for out in &self.outputs {
            let Some(info) = self.state.borrow().outputs.get(&out.data::<u32>().copied().unwrap_or(0)).cloned() else { continue };
            if info.width <= 0 || info.height <= 0 {
                continue;
            }
            let shot = self.grab_output(out)?;
            paste(&mut screen, &shot, &info);
        }
        Ok(screen)
    }

    fn grab_output(&self, output: &wl_output::WlOutput) -> Result<Image, WaylandError> {
        let qh = self.queue.borrow().handle();
        self.state.borrow_mut().copy = Copy::default();
        let frame = self.screencopy.capture_output(0, output, &qh, ());
        let v3 = self.screencopy.version() >= 3;
        // The compositor first says what buffer it wants (and, from version 3, that it is done
        // saying so).
        let described = |c: &Copy| c.failed || (c.format.is_some() && (!v3 || c.buffer_done));
        while !described(&self.state.borrow().copy) {
            self.queue.borrow_mut().blocking_dispatch(&mut self.state.borrow_mut()).map_err(protocol)?;
        }
        let (format, width, height, stride) = {
            let c = &self.state.borrow().copy;
            if c.failed {
                frame.destroy();
                return Err(WaylandError::Protocol("the compositor refused to copy the screen".into()));
            }
            (c.format.unwrap(), c.width, c.height, c.stride)
        };
        let len = stride as usize * height as usize;
        let memory = Shared::new(len)?;
        let pool = self.shm.create_pool(memory.fd.as_fd(), len as i32, &qh, ());
        let buffer = pool.create_buffer(0, width as i32, height as i32, stride as i32, format, &qh, ());
        frame.copy(&buffer);
        let done = |c: &Copy| c.ready || c.failed;
        while !done(&self.state.borrow().copy) {
            self.queue.borrow_mut().blocking_dispatch(&mut self.state.borrow_mut()).map_err(protocol)?;
        }
        let (failed, y_invert) = {
            let c = &self.state.borrow().copy;
            (c.failed, c.y_invert)
        };
        frame.destroy();
        buffer.destroy();
        pool.destroy();
        if failed {
            return Err(WaylandError::Protocol("the screen copy failed".into()));
        }
        to_rgb(memory.bytes(), format, width, height, stride, y_invert)
    }
}

/// Shared memory for one frame: a memfd, so the screen's pixels are never in a file on disk.
struct Shared {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> Result<Shared, WaylandError> {
        // SAFETY: plain system calls; the fd is owned from here on and the mapping is undone in
        // Drop.
        unsafe {
            let raw = libc::memfd_create(c"engram-frame".as_ptr(), libc::MFD_CLOEXEC);
            if raw < 0 {
                return Err(protocol(std::io::Error::last_os_error()));
            }
            let fd = OwnedFd::from_raw_fd(raw);
            if libc::ftruncate(raw, len as libc::off_t) != 0 {
                return Err(protocol(std::io::Error::last_os_error()));
            }
            let ptr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, raw, 0);
            if ptr == libc::MAP_FAILED {
                return Err(protocol(std::io::Error::last_os_error()));
            }
            Ok(Shared { fd, ptr: ptr as *mut u8, len })
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: mapped for `len` bytes for the life of `self`; the compositor has finished
        // writing (the frame is ready).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// A frame in one of the 32-bit formats every wlroots compositor offers, as RGB rows top down.
fn to_rgb(bytes: &[u8], format: wl_shm::Format, width: u32, height: u32, stride: u32, y_invert: bool) -> Result<Image, WaylandError> {
    use wl_shm::Format::*;
    // Little-endian: Xrgb8888 is B, G, R, X in memory; Xbgr8888 is R, G, B, X.
    let (r, g, b) = match format {
        Xrgb8888 | Argb8888 => (2, 1, 0),
        Xbgr8888 | Abgr8888 => (0, 1, 2),
        other => return Err(WaylandError::Protocol(format!("the compositor offers the pixel format {other:?}, not one engram reads"))),
    };
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height as usize {
        let row = if y_invert { height as usize - 1 - y } else { y };
        let line = &bytes[row * stride as usize..][..width as usize * 4];
        for px in line.chunks_exact(4) {
            rgb.extend_from_slice(&[px[r], px[g], px[b]]);
        }
    }
    Ok(Image { width, height, rgb })
}

/// Puts an output's frame at its place in the layout, shrunk to logical pixels when scaled.
fn paste(screen: &mut Image, shot: &Image, at: &Output) {
    let scale = at.scale.max(1) as u32;
    let (w, h) = (shot.width / scale, shot.height / scale);
    for y in 0..h {
        let sy = at.y + y as i32;
        if sy < 0 || sy as u32 >= screen.height {
            continue;
        }
        for x in 0..w {
            let sx = at.x + x as i32;
            if sx < 0 || sx as u32 >= screen.width {
                continue;
            }
            let from = ((y * scale) as usize * shot.width as usize + (x * scale) as usize) * 3;
            let to = (sy as usize * screen.width as usize + sx as usize) * 3;
            screen.rgb[to..to + 3].copy_from_slice(&shot.rgb[from..from + 3]);
        }
    }
}

impl Backend for Wayland {
    fn describe(&self) -> String {
        let windows = match (&self.sway, self.has_toplevels) {
            (Some(_), true) => "windows from foreign-toplevel and sway",
            (Some(_), false) => "windows from sway",
            (None, true) => "windows from foreign-toplevel, fullscreen ones only (no compositor IPC says where windows are)",
            (None, false) => "no window information: nothing is kept",
        };
        format!("Wayland (wlr-screencopy; {windows})")
    }

    /// Idle time where the compositor offers ext-idle-notify (sway 1.8 and later, Hyprland,
    /// river); no wlroots compositor tells clients it is locked, but a locked session has no
    /// activated window, so nothing is kept while locked.
    fn activity(&self) -> Result<Option<Activity>, BackendError> {
        let Some(idle) = &self.idle else { return Ok(None) };
        self.sync()?;
        Ok(Some(Activity { saver_on: false, idle_ms: idle.idle_ms() }))
    }

    fn active_window(&self) -> Result<Option<ActiveWindow>, BackendError> {
        Ok(self.focused()?)
    }

    fn covering(&self, window: &ActiveWindow, area: Rect) -> Result<Vec<Rect>, BackendError> {
        Ok(match &self.sway {
            Some(s) => s.covering(window, area).map_err(protocol)?,
            None => Vec::new(),
        })
    }

    fn grab(&self) -> Result<Image, BackendError> {
        Ok(self.grab_all()?)
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(_: &mut Self, _: &wl_registry::WlRegistry, _: wl_registry::Event, _: &GlobalListContents, _: &Connection, _: &QueueHandle<Self>) {}
}

impl Dispatch<wl_output::WlOutput, u32> for State {
    fn event(state: &mut Self, _: &wl_output::WlOutput, event: wl_output::Event, name: &u32, _: &Connection, _: &QueueHandle<Self>) {
        let out = state.outputs.entry(*name).or_insert(Output { scale: 1, ..Default::default() });
        match event {
            wl_output::Event::Geometry { x, y, .. } => (out.x, out.y) = (x, y),
            wl_output::Event::Mode { flags: WEnum::Value(f), width, height, .. } if f.contains(wl_output::Mode::Current) => {
                (out.width, out.height) = (width, height)
            }
            wl_output::Event::Scale { factor } => out.scale = factor,
            _ => {}
        }
    }
}

impl Dispatch<toplevels::ZwlrForeignToplevelManagerV1, ()> for State {
    fn event(_: &mut Self, _: &toplevels::ZwlrForeignToplevelManagerV1, _: toplevels::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}

    event_created_child!(State, toplevels::ZwlrForeignToplevelManagerV1, [
        toplevels::EVT_TOPLEVEL_OPCODE => (toplevel::ZwlrForeignToplevelHandleV1, ()),
    ]);
}

impl Dispatch<toplevel::ZwlrForeignToplevelHandleV1, ()> for State {
    fn event(state: &mut Self, handle: &toplevel::ZwlrForeignToplevelHandleV1, event: toplevel::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        let id = handle.id().protocol_id();
        if let toplevel::Event::Closed = event {
            state.toplevels.remove(&id);
            handle.destroy();
            return;
        }
        let top = state.toplevels.entry(id).or_default();
        if let toplevel::Event::Done = event {
            if let Some(p) = top.pending.take() {
                *top = Toplevel { pending: None, ..*p };
            }
            return;
        }
        if top.pending.is_none() {
            top.pending = Some(Box::new(top.clone()));
        }
        let Some(pending) = top.pending.as_mut() else { return };
        match event {
            toplevel::Event::Title { title } => pending.title = title,
            toplevel::Event::AppId { app_id } => pending.app_id = app_id,
            toplevel::Event::State { state: s } => {
                let states: Vec<u32> = s.chunks_exact(4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect();
                pending.activated = states.contains(&(toplevel::State::Activated as u32));
                pending.fullscreen = states.contains(&(toplevel::State::Fullscreen as u32));
            }
            toplevel::Event::OutputEnter { output } => pending.outputs.extend(output.data::<u32>().copied()),
            toplevel::Event::OutputLeave { output } => {
                let gone = output.data::<u32>().copied();
                pending.outputs.retain(|o| Some(*o) != gone);
            }
            _ => {}
        }
    }
}

impl Dispatch<frame::ZwlrScreencopyFrameV1, ()> for State {
    fn event(state: &mut Self, _: &frame::ZwlrScreencopyFrameV1, event: frame::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        let c = &mut state.copy;
        match event {
            frame::Event::Buffer { format: WEnum::Value(format), width, height, stride } => {
                (c.format, c.width, c.height, c.stride) = (Some(format), width, height, stride)
            }
            frame::Event::BufferDone => c.buffer_done = true,
            frame::Event::Flags { flags: WEnum::Value(f) } => c.y_invert = f.contains(frame::Flags::YInvert),
            frame::Event::Ready { .. } => c.ready = true,
            frame::Event::Failed => c.failed = true,
            _ => {}
        }
    }
}

delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: screencopy::ZwlrScreencopyManagerV1);
delegate_noop!(State: ignore wl_seat::WlSeat);
delegate_noop!(State: idle_notifier::ExtIdleNotifierV1);
delegate_dispatch!(State: [idle_notice::ExtIdleNotificationV1: std::sync::Arc<Since>] => Idle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_byte_orders_and_upside_down_frames_read_as_rgb() {
        // Two pixels a row, two rows, stride padded to 12 bytes; red then blue, white then black.
        let bgrx = [0, 0, 255, 0, 255, 0, 0, 0, 9, 9, 9, 9, 255, 255, 255, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        let img = to_rgb(&bgrx, wl_shm::Format::Xrgb8888, 2, 2, 12, false).unwrap();
        assert_eq!(img.rgb, [255, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0]);
        let flipped = to_rgb(&bgrx, wl_shm::Format::Argb8888, 2, 2, 12, true).unwrap();
        assert_eq!(flipped.rgb, [255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255]);
        let rgbx = [255, 0, 0, 0, 0, 0, 255, 0];
        assert_eq!(to_rgb(&rgbx, wl_shm::Format::Xbgr8888, 2, 1, 8, false).unwrap().rgb, [255, 0, 0, 0, 0, 255]);
        assert!(to_rgb(&rgbx, wl_shm::Format::Rgb565, 2, 1, 8, false).is_err());
    }

    #[test]
    fn a_scaled_output_is_pasted_at_its_place_in_logical_pixels() {
        let mut screen = Image { width: 4, height: 2, rgb: vec![0; 24] };
        // A 4x2-pixel output at scale 2 is 2x1 logical pixels, placed at (2, 1).
        let shot = Image { width: 4, height: 2, rgb: (0..24).map(|i| if i < 12 { 200 } else { 50 }).collect() };
        paste(&mut screen, &shot, &Output { x: 2, y: 1, width: 4, height: 2, scale: 2 });
        let px = |x: usize, y: usize| screen.rgb[(y * 4 + x) * 3];
        assert_eq!((px(1, 1), px(2, 1), px(3, 1), px(2, 0)), (0, 200, 200, 0));
    }
}
