//! The focused window's own text through accessibility (AT-SPI2 over D-Bus), on X11 and Wayland
//! alike: GTK, Qt, Chromium, Firefox and LibreOffice expose the text they draw, with its place,
//! so it is read exactly and at a fraction of OCR's cost; OCR reads only what is left.
//!
//! Only the focused window's application is asked, and only for what is showing. Each line is
//! one box: a redaction then blacks out the whole line it is in, never less than the secret.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::ActiveWindow;
use crate::extract::ocr::Word;
use crate::extract::picture::Rect;

const ACCESSIBLE: &str = "org.a11y.atspi.Accessible";
const TEXT: &str = "org.a11y.atspi.Text";
const COMPONENT: &str = "org.a11y.atspi.Component";
/// AT-SPI states (bits of the first word of `GetState`).
const ACTIVE: u32 = 1;
const SHOWING: u32 = 25;
/// Coordinates relative to the top-level window (screen coordinates mean nothing on Wayland).
const WINDOW_COORDS: u32 = 1;
/// How far into a window to look for a browser's address bar (it is in the toolbar, near the
/// top of the tree), and how long to trust that a window has none.
const MAX_BAR_NODES: usize = 600;
const NO_BAR_SECS: u64 = 30;
/// What browsers call their address bar (Chromium, Firefox, GNOME Web, in English and Chinese).
const BAR_NAMES: [&str; 6] = ["address", "location", "url", "地址", "网址", "位置"];
/// A window's accessible tree can be huge (a spreadsheet's cells): stop after this many objects.
const MAX_NODES: usize = 3000;
/// Bus names and windows remembered, at most (each cache is emptied when full).
const MAX_CACHED: usize = 256;
/// A frozen application must not stall capture.
const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct Accessibility {
    bus: Connection,
    /// Applications' bus names to their process ids.
    pids: RefCell<HashMap<String, Option<u32>>>,
    /// Each window's address bar, once found (or when it was last looked for in vain).
    bars: RefCell<HashMap<u64, Bar>>,
}

enum Bar {
    Found(Node),
    None(Instant),
}

/// What a window says it shows: its words (lines, in window coordinates) and the areas they
/// fill, which OCR need not read.
#[derive(Debug, Default)]
pub struct Said {
    pub words: Vec<Word>,
    pub regions: Vec<Rect>,
}

type Node = (String, OwnedObjectPath);

pub(super) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A method's answer, or `None` when the call or its answer fails (a service that is not there).
pub(super) fn answer<T: serde::de::DeserializeOwned + zbus::zvariant::Type>(
    bus: &Connection,
    (dest, path, iface, method): (&str, &str, &str, &str),
    body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
) -> Option<T> {
    bus.call_method(Some(dest), path, Some(iface), method, body).ok()?.body().deserialize().ok()
}

/// Whether a program owns `name` on the bus.
pub(super) fn has_name(bus: &Connection, name: &str) -> bool {
    answer(bus, ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner"), &(name,)) == Some(true)
}

impl Accessibility {
    /// The accessibility bus of this session. When the desktop has accessibility off, apps such
    /// as Firefox, Chromium and Qt expose nothing; `enable` (the user's consent, the setting
    /// `screen.enable_accessibility`) turns it on for the session.
    pub fn connect(enable: bool) -> Result<Accessibility, String> {
        let session = zbus::blocking::connection::Builder::session().map_err(err)?.method_timeout(CALL_TIMEOUT).build().map_err(err)?;
        if enable {
            let on: bool = property(&session, "org.a11y.Bus", "/org/a11y/bus", "org.a11y.Status", "IsEnabled")
                .and_then(|v| bool::try_from(v).map_err(err))
                .unwrap_or(false);
            if !on {
                let value = zbus::zvariant::Value::from(true);
                session
                    .call_method(Some("org.a11y.Bus"), "/org/a11y/bus", Some("org.freedesktop.DBus.Properties"), "Set", &("org.a11y.Status", "IsEnabled", value))
                    .map_err(err)?;
            }
        }
        let reply = session.call_method(Some("org.a11y.Bus"), "/org/a11y/bus", Some("org.a11y.Bus"), "GetAddress", &()).map_err(err)?;
        let address: String = reply.body().deserialize().map_err(err)?;
        let bus = zbus::blocking::connection::Builder::address(address.as_str()).map_err(err)?.method_timeout(CALL_TIMEOUT).build().map_err(err)?;
        Ok(Accessibility { bus, pids: RefCell::new(HashMap::new()), bars: RefCell::new(HashMap::new()) })
    }

    fn call<T: serde::de::DeserializeOwned + zbus::zvariant::Type>(&self, node: &Node, iface: &str, method: &str, body: &(impl serde::Serialize + zbus::zvariant::DynamicType)) -> Result<T, String> {
        let reply = self.bus.call_method(Some(node.0.as_str()), node.1.as_str(), Some(iface), method, body).map_err(err)?;
        reply.body().deserialize().map_err(err)
    }

    fn children(&self, node: &Node) -> Vec<Node> {
        self.call::<Vec<(String, OwnedObjectPath)>>(node, ACCESSIBLE, "GetChildren", &()).unwrap_or_default()
    }

    fn has_state(&self, node: &Node, bit: u32) -> bool {
        self.call::<Vec<u32>>(node, ACCESSIBLE, "GetState", &()).ok().and_then(|s| s.first().copied()).is_some_and(|s| s & (1 << bit) != 0)
    }

    fn name(&self, node: &Node) -> String {
        property(&self.bus, &node.0, node.1.as_str(), ACCESSIBLE, "Name").ok().and_then(|v| String::try_from(v).ok()).unwrap_or_default()
    }

    fn pid(&self, app: &str) -> Option<u32> {
        if let Some(p) = self.pids.borrow().get(app) {
            return *p;
        }
        let pid = answer(&self.bus, ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixProcessID"), &(app,));
        let mut pids = self.pids.borrow_mut();
        // Applications come and go with new bus names: forget them all now and then.
        if pids.len() >= MAX_CACHED {
            pids.clear();
        }
        pids.insert(app.to_string(), pid);
        pid
    }

    /// The window that has focus, as its application tells it: where the compositor names none
    /// (GNOME's mutter tells other clients nothing), accessibility is the only witness. The
    /// application's name stands for its app id; the place is left to the caller.
    pub fn focused(&self) -> Option<ActiveWindow> {
        let root: Node = ("org.a11y.atspi.Registry".into(), OwnedObjectPath::try_from("/org/a11y/atspi/accessible/root").ok()?);
        for app in self.children(&root) {
            for frame in self.children(&app) {
                if !self.has_state(&frame, ACTIVE) {
                    continue;
                }
                let name = self.name(&app);
                let pid = self.pid(&app.0);
                let id = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (&frame.0, frame.1.as_str()).hash(&mut h);
                    h.finish()
                };
                return Some(ActiveWindow { id, title: self.name(&frame), instance: name.clone(), app: name, pid, exe: pid.and_then(super::x11::executable), rect: None });
            }
        }
        None
    }

    /// The accessible top-level of `window`: a frame of its process that is active, else one
    /// that bears its title, else one of its process whose title begins with it (Chromium's
    /// private windows add "(Incognito)" there). A window focused as it opened may never be
    /// told it is active.
    fn find(&self, window: &ActiveWindow) -> Option<Node> {
        let root: Node = ("org.a11y.atspi.Registry".into(), OwnedObjectPath::try_from("/org/a11y/atspi/accessible/root").ok()?);
        let apps = self.children(&root);
        let (mut titled, mut extended) = (None, None);
        for app in apps.iter().filter(|a| window.pid.is_none() || self.pid(&a.0) == window.pid) {
            for frame in self.children(app) {
                let name = self.name(&frame);
                let named = name == window.title;
                if self.has_state(&frame, ACTIVE) && (named || window.pid.is_some()) {
                    return Some(frame);
                }
                if named && titled.is_none() {
                    titled = Some(frame);
                } else if window.pid.is_some() && !window.title.is_empty() && extended.is_none() && name.starts_with(&window.title) {
                    extended = Some(frame);
                }
            }
        }
        titled.or(extended)
    }

    /// The window's title as it tells accessibility, which may say more than the one the
    /// display knows: Chromium's private window adds "(Incognito)" only here.
    pub fn title(&self, window: &ActiveWindow) -> Option<String> {
        self.find(window).map(|frame| self.name(&frame))
    }

    /// The address a browser window shows in its address bar: an entry named as one.
    pub fn address(&self, window: &ActiveWindow) -> Option<String> {
        let known = match self.bars.borrow().get(&window.id) {
            Some(Bar::Found(node)) => Some(node.clone()),
            Some(Bar::None(when)) if when.elapsed().as_secs() < NO_BAR_SECS => return None,
            _ => None,
        };
        if let Some(node) = known {
            if let Ok(text) = self.call::<String>(&node, TEXT, "GetText", &(0, -1)) {
                return Some(text);
            }
        }
        let bar = self.find(window).and_then(|top| self.find_bar(top));
        let text = bar.as_ref().and_then(|b| self.call::<String>(b, TEXT, "GetText", &(0, -1)).ok());
        let entry = match bar {
            Some(b) => Bar::Found(b),
            None => Bar::None(Instant::now()),
        };
        let mut bars = self.bars.borrow_mut();
        if bars.len() >= MAX_CACHED {
            bars.clear();
        }
        bars.insert(window.id, entry);
        text
    }

    fn find_bar(&self, top: Node) -> Option<Node> {
        let mut queue = std::collections::VecDeque::from([top]);
        let mut seen = 0;
        while let Some(node) = queue.pop_front() {
            seen += 1;
            if seen > MAX_BAR_NODES {
                return None;
            }
            let role: String = self.call(&node, ACCESSIBLE, "GetRoleName", &()).unwrap_or_default();
            // Chromium and Firefox call it an entry, GTK 3 a text.
            if role == "entry" || role == "text" {
                let name = self.name(&node).to_lowercase();
                if BAR_NAMES.iter().any(|b| name.contains(b)) {
                    return Some(node);
                }
            }
            queue.extend(self.children(&node));
        }
        None
    }

    /// What the focused window shows, in window coordinates within a window of `size`; `None`
    /// when it exposes no text (or no accessible window is found).
    pub fn read(&self, window: &ActiveWindow, size: (u32, u32)) -> Option<Said> {
        let top = self.find(window)?;
        let view = Rect { x: 0, y: 0, w: size.0, h: size.1 };
        let mut said = Said::default();
        let mut queue = std::collections::VecDeque::from([top]);
        let mut seen = 0;
        let mut block = 0;
        while let Some(node) = queue.pop_front() {
            seen += 1;
            if seen > MAX_NODES {
                break;
            }
            if seen > 1 && !self.has_state(&node, SHOWING) {
                continue;
            }
            let interfaces: Vec<String> = self.call(&node, ACCESSIBLE, "GetInterfaces", &()).unwrap_or_default();
            // A password field is never read, whatever its toolkit shows in its place.
            let secret = || self.call::<String>(&node, ACCESSIBLE, "GetRoleName", &()).is_ok_and(|r| r == "password text");
            if interfaces.iter().any(|i| i == TEXT) && interfaces.iter().any(|i| i == COMPONENT) && !secret() {
                block += 1;
                self.read_text(&node, view, block, &mut said);
            }
            queue.extend(self.children(&node));
        }
        (!said.words.is_empty()).then_some(said)
    }

    /// The showing lines of one text object.
    fn read_text(&self, node: &Node, view: Rect, block: u32, said: &mut Said) {
        let Ok(extents) = self.call::<(i32, i32, i32, i32)>(node, COMPONENT, "GetExtents", &(WINDOW_COORDS,)) else { return };
        let Some(shown) = super::x11::intersect(Rect { x: extents.0, y: extents.1, w: extents.2.max(0) as u32, h: extents.3.max(0) as u32 }, view) else { return };
        // A long document shows a part of its text: the characters at the shown corners.
        let at = |x: i32, y: i32| self.call::<i32>(node, TEXT, "GetOffsetAtPoint", &(x, y, WINDOW_COORDS)).ok().filter(|&o| o >= 0);
        let whole = shown == Rect { x: extents.0, y: extents.1, w: extents.2 as u32, h: extents.3 as u32 };
        let (start, end) = if whole {
            (0, -1)
        } else {
            (at(shown.x, shown.y).unwrap_or(0), at(shown.x + shown.w as i32 - 1, shown.y + shown.h as i32 - 1).map_or(-1, |o| o + 1))
        };
        let Ok(text) = self.call::<String>(node, TEXT, "GetText", &(start, end)) else { return };
        if text.trim().is_empty() {
            return;
        }
        for (n, range, words) in lines(&text, start) {
            let Ok(b) = self.call::<(i32, i32, i32, i32)>(node, TEXT, "GetRangeExtents", &(range.0, range.1, WINDOW_COORDS)) else { continue };
            // A line scrolled out of sight, or one the toolkit could not place: its object's box.
            let rect = match super::x11::intersect(Rect { x: b.0, y: b.1, w: b.2.max(0) as u32, h: b.3.max(0) as u32 }, shown) {
                Some(r) => r,
                None if whole => shown,
                None => continue,
            };
            for w in words {
                said.words.push(Word { text: w.to_string(), rect, conf: 100.0, line: (block, 0, n as u32) });
            }
        }
        said.regions.push(shown);
    }
}

/// The lines of `text` (which begins at character `start`) that hold words: each line's number,
/// its range in characters (what AT-SPI counts in) and its words.
fn lines(text: &str, start: i32) -> Vec<(usize, (i32, i32), Vec<&str>)> {
    let mut offset = start;
    let mut out = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let len = line.chars().count() as i32;
        let range = (offset, offset + len);
        offset += len + 1;
        // Embedded objects (a link inside a paragraph) are read as objects of their own.
        let words: Vec<&str> = line.split(|c: char| c.is_whitespace() || c == '\u{fffc}').filter(|w| !w.is_empty()).collect();
        if !words.is_empty() {
            out.push((n, range, words));
        }
    }
    out
}

fn property(bus: &Connection, dest: &str, path: &str, iface: &str, name: &str) -> Result<OwnedValue, String> {
    let reply = bus.call_method(Some(dest), path, Some("org.freedesktop.DBus.Properties"), "Get", &(iface, name)).map_err(err)?;
    reply.body().deserialize::<OwnedValue>().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_characters_and_leave_out_embedded_objects() {
        let got = lines("ab cd\n\n项目 预算\u{fffc}x", 10);
        assert_eq!(got, vec![(0, (10, 15), vec!["ab", "cd"]), (2, (17, 24), vec!["项目", "预算", "x"])]);
        assert!(lines(" \n\u{fffc}", 0).is_empty());
    }
}
