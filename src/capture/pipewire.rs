//! Frames of a screen cast over PipeWire, as GNOME's mutter (and the desktop portal, for KDE)
//! hand them out: a thread runs PipeWire's loop and keeps only the newest frame, in shared
//! memory that PipeWire maps from a memfd; nothing touches a file.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipewire as pw;
use pw::spa;
use pw::spa::param::video::VideoFormat;
use pw::spa::pod::Pod;

use crate::extract::picture::Image;

/// Frames a second asked of the compositor: capture looks once a second at most, and each
/// frame is copied, so more would only cost CPU.
const MAX_FPS: u32 = 4;
/// Buffers in flight, fewest and most (mutter offers 2 to 16).
const BUFFERS: (i32, i32) = (2, 3);

/// The newest frame, still in the stream's byte order.
#[derive(Default)]
struct Latest {
    raw: Vec<u8>,
    width: u32,
    height: u32,
    stride: usize,
    /// Byte offsets of red, green and blue in a 4-byte pixel.
    order: Option<[usize; 3]>,
    /// The part of the frame that holds the picture: a window's cast sends frames of a fixed
    /// size with the window somewhere in them (x, y, width, height).
    crop: Option<(u32, u32, u32, u32)>,
    frames: u64,
    error: Option<String>,
}

/// One stream being read; stopping it (drop) ends the thread.
pub struct Cast {
    latest: Arc<Mutex<Latest>>,
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cast {
    /// Reads PipeWire node `node`, on the session's PipeWire or, with `remote`, on the
    /// connection a portal opened for us.
    pub fn start(node: u32, remote: Option<OwnedFd>) -> Result<Cast, String> {
        let latest = Arc::new(Mutex::new(Latest::default()));
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let shared = latest.clone();
        let thread = std::thread::Builder::new()
            .name("pipewire".into())
            .spawn(move || {
                if let Err(e) = run(node, remote, shared, quit_rx, &ready_tx) {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| e.to_string())?;
        let cast = Cast { latest, quit, thread: Some(thread) };
        ready_rx.recv_timeout(Duration::from_secs(5)).map_err(|_| "PipeWire did not answer".to_string())??;
        Ok(cast)
    }

    /// Waits up to `timeout` for the first frame.
    pub fn wait_first(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            {
                let l = self.latest.lock().unwrap();
                if let Some(e) = &l.error {
                    return Err(e.clone());
                }
                if l.frames > 0 {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err("the screen cast sent no frame".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Why the stream stopped, if it did (its window closed, PipeWire went away).
    pub fn failed(&self) -> Option<String> {
        self.latest.lock().unwrap().error.clone()
    }

    /// The newest frame's size.
    pub fn size(&self) -> Option<(u32, u32)> {
        let l = self.latest.lock().unwrap();
        (l.frames > 0 && l.order.is_some()).then(|| l.shown()).map(|(_, _, w, h)| (w, h))
    }

    /// The newest frame, as RGB (the last one sent, even when the stream has stopped since).
    pub fn latest(&self) -> Result<Image, String> {
        let l = self.latest.lock().unwrap();
        let order = l.order.filter(|_| l.frames > 0).ok_or("the screen cast sent no frame")?;
        Ok(to_rgb(&l.raw, l.stride, l.shown(), order))
    }
}

impl Drop for Cast {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Latest {
    /// The part of the frame to keep, within its bounds.
    fn shown(&self) -> (u32, u32, u32, u32) {
        match self.crop {
            Some((x, y, w, h)) if x < self.width && y < self.height => (x, y, w.min(self.width - x), h.min(self.height - y)),
            _ => (0, 0, self.width, self.height),
        }
    }

    /// Copies the frame in `buf`, and where its picture is.
    ///
    /// # Safety
    /// `buf` is a buffer the stream handed out and has not taken back.
    unsafe fn take(&mut self, buf: *const spa::sys::spa_buffer) {
        if buf.is_null() || (*buf).n_datas == 0 || (*buf).datas.is_null() {
            return;
        }
        let data = &*(*buf).datas;
        if data.data.is_null() || data.chunk.is_null() {
            return;
        }
        let chunk = &*data.chunk;
        let (offset, size, stride) = (chunk.offset as usize, chunk.size as usize, chunk.stride);
        // An empty chunk carries only the pointer's move.
        if size == 0 || stride <= 0 || offset + size > data.maxsize as usize || (self.height as usize) * (stride as usize) > size {
            return;
        }
        let bytes = std::slice::from_raw_parts((data.data as *const u8).add(offset), size);
        self.raw.clear();
        self.raw.extend_from_slice(bytes);
        self.stride = stride as usize;
        let region = spa::sys::spa_buffer_find_meta_data(buf, spa::sys::SPA_META_VideoCrop, std::mem::size_of::<spa::sys::spa_meta_region>()) as *const spa::sys::spa_meta_region;
        self.crop = region.as_ref().map(|r| r.region).filter(|r| r.size.width > 0 && r.size.height > 0).map(|r| (r.position.x.max(0) as u32, r.position.y.max(0) as u32, r.size.width, r.size.height));
        self.frames += 1;
    }
}

/// Where red, green and blue are in a 4-byte pixel of `format`; `None` for formats not asked for.
fn byte_order(format: VideoFormat) -> Option<[usize; 3]> {
    match format {
        f if f == VideoFormat::BGRx || f == VideoFormat::BGRA => Some([2, 1, 0]),
        f if f == VideoFormat::RGBx || f == VideoFormat::RGBA => Some([0, 1, 2]),
        f if f == VideoFormat::xRGB || f == VideoFormat::ARGB => Some([1, 2, 3]),
        f if f == VideoFormat::xBGR || f == VideoFormat::ABGR => Some([3, 2, 1]),
        _ => None,
    }
}

/// The `(x, y, width, height)` part of a frame of 4-byte pixels, as RGB.
fn to_rgb(raw: &[u8], stride: usize, (x, y, width, height): (u32, u32, u32, u32), order: [usize; 3]) -> Image {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for row in raw.chunks(stride).skip(y as usize).take(height as usize) {
        let part = row.get(x as usize * 4..(x + width) as usize * 4).unwrap_or_default();
        for px in part.chunks_exact(4) {
            rgb.extend_from_slice(&[px[order[0]], px[order[1]], px[order[2]]]);
        }
    }
    Image { width, height: (rgb.len() / 3 / width.max(1) as usize) as u32, rgb }
}

/// A parameter object as the bytes PipeWire reads.
fn bytes(obj: spa::pod::Object) -> Vec<u8> {
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &spa::pod::Value::Object(obj)).expect("a fixed pod serialises").0.into_inner()
}

/// Asks for the crop region with each buffer: where in the frame a window's picture is.
fn crop_meta() -> Vec<u8> {
    let region = spa::pod::Value::Int(std::mem::size_of::<spa::sys::spa_meta_region>() as i32);
    let obj = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamMeta,
        spa::param::ParamType::Meta,
        spa::pod::Property::new(spa::sys::SPA_PARAM_META_type, spa::pod::Value::Id(spa::utils::Id(spa::sys::SPA_META_VideoCrop))),
        spa::pod::Property::new(spa::sys::SPA_PARAM_META_size, region),
    );
    bytes(obj)
}

/// Asks for few buffers: each is a whole frame mapped into this process (8 MB at 1920×1080),
/// and only the newest is read.
fn few_buffers() -> Vec<u8> {
    use spa::utils::{Choice, ChoiceEnum, ChoiceFlags};
    let count = Choice(ChoiceFlags::empty(), ChoiceEnum::Range { default: BUFFERS.0, min: BUFFERS.0, max: BUFFERS.1 });
    let obj = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamBuffers,
        spa::param::ParamType::Buffers,
        spa::pod::Property::new(spa::sys::SPA_PARAM_BUFFERS_buffers, spa::pod::Value::Choice(spa::pod::ChoiceValue::Int(count))),
    );
    bytes(obj)
}

/// The formats asked for: 32-bit RGB in any byte order, any size, at most [`MAX_FPS`].
fn formats() -> Vec<u8> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::utils::{Fraction, Rectangle};
    let obj = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::BGRA,
            VideoFormat::RGBx,
            VideoFormat::RGBA,
            VideoFormat::xRGB,
            VideoFormat::ARGB,
            VideoFormat::xBGR,
            VideoFormat::ABGR
        ),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            Rectangle { width: 1920, height: 1080 },
            Rectangle { width: 1, height: 1 },
            Rectangle { width: 16384, height: 16384 }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: 0, denom: 1 },
            Fraction { num: 0, denom: 1 },
            Fraction { num: MAX_FPS, denom: 1 }
        ),
        spa::pod::property!(
            FormatProperties::VideoMaxFramerate,
            Choice,
            Range,
            Fraction,
            Fraction { num: MAX_FPS, denom: 1 },
            Fraction { num: 1, denom: 1 },
            Fraction { num: MAX_FPS, denom: 1 }
        ),
    );
    bytes(obj)
}

fn run(node: u32, remote: Option<OwnedFd>, latest: Arc<Mutex<Latest>>, quit: pw::channel::Receiver<()>, ready: &std::sync::mpsc::Sender<Result<(), String>>) -> Result<(), String> {
    let err = |e: pw::Error| format!("PipeWire: {e}");
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(err)?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(err)?;
    let core = match remote {
        Some(fd) => context.connect_fd_rc(fd, None),
        None => context.connect_rc(None),
    }
    .map_err(|e| format!("could not reach PipeWire: {e}"))?;
    let props = pw::properties::properties! {
        *pw::keys::MEDIA_TYPE => "Video",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Screen",
    };
    let stream = pw::stream::StreamBox::new(&core, "engram", props).map_err(err)?;
    let on_error = latest.clone();
    let _listener = stream
        .add_local_listener_with_user_data(latest)
        .state_changed(move |_, _, _, new| {
            if let pw::stream::StreamState::Error(e) = new {
                on_error.lock().unwrap().error = Some(format!("the screen cast failed: {e}"));
            }
        })
        .param_changed(|stream, latest, id, param| {
            let Some(param) = param.filter(|_| id == spa::param::ParamType::Format.as_raw()) else { return };
            let mut info = spa::param::video::VideoInfoRaw::default();
            if info.parse(param).is_ok() {
                let mut l = latest.lock().unwrap();
                l.order = byte_order(info.format());
                (l.width, l.height) = (info.size().width, info.size().height);
            }
            let (meta, buffers) = (crop_meta(), few_buffers());
            let _ = stream.update_params(&mut [Pod::from_bytes(&meta).expect("the pod just serialised"), Pod::from_bytes(&buffers).expect("the pod just serialised")]);
        })
        .process(|stream, latest| {
            // SAFETY: every buffer taken here is handed back before returning, and read only
            // in between.
            unsafe {
                // Only the newest buffer matters: older ones queued behind it are handed back.
                let mut newest: *mut pw::sys::pw_buffer = std::ptr::null_mut();
                loop {
                    let b = stream.dequeue_raw_buffer();
                    if b.is_null() {
                        break;
                    }
                    if !newest.is_null() {
                        stream.queue_raw_buffer(newest);
                    }
                    newest = b;
                }
                if newest.is_null() {
                    return;
                }
                latest.lock().unwrap().take((*newest).buffer);
                stream.queue_raw_buffer(newest);
            }
        })
        .register()
        .map_err(err)?;
    let values = formats();
    let mut params = [Pod::from_bytes(&values).expect("the pod just serialised")];
    stream
        .connect(spa::utils::Direction::Input, Some(node), pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS, &mut params)
        .map_err(err)?;
    let _quit = quit.attach(mainloop.loop_(), {
        let mainloop = mainloop.clone();
        move |_| mainloop.quit()
    });
    let _ = ready.send(Ok(()));
    mainloop.run();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_come_out_as_rgb_whatever_the_byte_order_and_stride() {
        // Two pixels a row, padded to 12 bytes: red then blue, in BGRx.
        let raw = [0, 0, 255, 0, 255, 0, 0, 0, 9, 9, 9, 9, 0, 255, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        let bgrx = byte_order(VideoFormat::BGRx).unwrap();
        let img = to_rgb(&raw, 12, (0, 0, 2, 2), bgrx);
        assert_eq!(img.rgb, [255, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0, 0]);
        // The crop region: the second column only.
        let img = to_rgb(&raw, 12, (1, 0, 1, 2), bgrx);
        assert_eq!((img.width, img.height, img.rgb), (1, 2, vec![0, 0, 255, 0, 0, 0]));
        let argb = [0, 1, 2, 3];
        assert_eq!(to_rgb(&argb, 4, (0, 0, 1, 1), byte_order(VideoFormat::ARGB).unwrap()).rgb, [1, 2, 3]);
        assert_eq!(byte_order(VideoFormat::I420), None);
    }
}
