//! sway's IPC (the i3 protocol over `$SWAYSOCK`): where the focused window is, its pid, and the
//! floating windows drawn over it. Wayland itself tells a client none of this.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use super::x11::intersect;
use super::ActiveWindow;
use crate::extract::picture::Rect;

const MAGIC: &[u8] = b"i3-ipc";
const GET_TREE: u32 = 4;

pub struct Sway {
    path: std::path::PathBuf,
}

impl Sway {
    /// sway, if `$SWAYSOCK` names a socket that answers.
    pub fn connect() -> Option<Sway> {
        let path = std::path::PathBuf::from(std::env::var_os("SWAYSOCK")?);
        let sway = Sway { path };
        sway.tree().ok().map(|_| sway)
    }

    fn tree(&self) -> std::io::Result<Value> {
        let mut s = UnixStream::connect(&self.path)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut msg = MAGIC.to_vec();
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&GET_TREE.to_ne_bytes());
        s.write_all(&msg)?;
        let mut head = [0u8; 14];
        s.read_exact(&mut head)?;
        if &head[..6] != MAGIC {
            return Err(std::io::Error::other("not an i3/sway IPC reply"));
        }
        let len = u32::from_ne_bytes(head[6..10].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body)?;
        serde_json::from_slice(&body).map_err(std::io::Error::other)
    }

    /// The focused window as sway sees it.
    pub fn focused(&self) -> std::io::Result<Option<ActiveWindow>> {
        Ok(focused(&self.tree()?))
    }

    /// The floating windows over `window` on its workspace, within `area`.
    pub fn covering(&self, window: &ActiveWindow, area: Rect) -> std::io::Result<Vec<Rect>> {
        Ok(covering(&self.tree()?, window.id, area))
    }
}

fn rect(v: &Value) -> Option<Rect> {
    Some(Rect { x: v["x"].as_i64()? as i32, y: v["y"].as_i64()? as i32, w: v["width"].as_u64()? as u32, h: v["height"].as_u64()? as u32 })
}

fn children(node: &Value) -> impl Iterator<Item = &Value> {
    let list = |k: &str| node[k].as_array().map(|a| a.as_slice()).unwrap_or(&[]).iter();
    list("nodes").chain(list("floating_nodes"))
}

fn find<'a>(node: &'a Value, pred: &dyn Fn(&Value) -> bool) -> Option<&'a Value> {
    if pred(node) {
        return Some(node);
    }
    children(node).find_map(|c| find(c, pred))
}

/// A window, not a container of windows: it has a pid.
fn is_window(n: &Value) -> bool {
    n["pid"].as_u64().is_some()
}

fn focused(tree: &Value) -> Option<ActiveWindow> {
    let node = find(tree, &|n| n["focused"].as_bool() == Some(true))?;
    if !is_window(node) {
        return None;
    }
    // `rect` is the container with its border; `window_rect` the client's part of it.
    let outer = rect(&node["rect"])?;
    let inner = rect(&node["window_rect"]).map(|w| Rect { x: outer.x + w.x, y: outer.y + w.y, w: w.w, h: w.h }).unwrap_or(outer);
    // Wayland windows have an app_id; XWayland ones a class.
    let app = node["app_id"].as_str().map(str::to_string).or_else(|| node["window_properties"]["class"].as_str().map(str::to_string)).unwrap_or_default();
    let instance = node["window_properties"]["instance"].as_str().map(str::to_string).unwrap_or_else(|| app.clone());
    let pid = node["pid"].as_u64().map(|p| p as u32);
    Some(ActiveWindow {
        id: node["id"].as_u64().unwrap_or(0),
        title: node["name"].as_str().unwrap_or_default().to_string(),
        app,
        instance,
        pid,
        exe: pid.and_then(super::x11::executable),
        rect: Some(inner),
    })
}

/// Floating windows are drawn over tiled ones, later ones over earlier ones; `id` is the
/// window's own sway id, or another protocol's (then every float on its workspace counts).
fn covering(tree: &Value, id: u64, area: Rect) -> Vec<Rect> {
    let workspace = find(tree, &|n| n["type"] == "workspace" && find(n, &|c| c["focused"].as_bool() == Some(true)).is_some());
    let Some(ws) = workspace else { return Vec::new() };
    let floats = ws["floating_nodes"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    let start = floats.iter().position(|f| find(f, &|c| c["id"].as_u64() == Some(id)).is_some()).map_or(0, |p| p + 1);
    floats[start..].iter().filter_map(|f| rect(&f["rect"])).filter_map(|r| intersect(r, area)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree() -> Value {
        json!({"type": "root", "nodes": [{"type": "output", "nodes": [{"type": "workspace", "nodes": [
            {"id": 7, "type": "con", "name": "Notes 笔记", "app_id": "foot", "pid": 1, "focused": true,
             "rect": {"x": 0, "y": 0, "width": 640, "height": 800}, "window_rect": {"x": 2, "y": 2, "width": 636, "height": 796}},
            {"id": 8, "type": "con", "name": "Other", "app_id": null, "pid": 2, "focused": false,
             "window_properties": {"class": "XTerm", "instance": "xterm"},
             "rect": {"x": 640, "y": 0, "width": 640, "height": 800}, "window_rect": {"x": 0, "y": 0, "width": 640, "height": 800}}],
          "floating_nodes": [{"id": 9, "type": "floating_con", "name": "Vault", "app_id": "org.keepassxc.KeePassXC", "pid": 3,
             "rect": {"x": 500, "y": 100, "width": 300, "height": 200}, "window_rect": {"x": 0, "y": 0, "width": 300, "height": 200}}]}]}]})
    }

    #[test]
    fn the_focused_window_is_its_client_area_with_app_id_and_pid() {
        let w = focused(&tree()).unwrap();
        assert_eq!((w.id, w.title.as_str(), w.app.as_str(), w.pid), (7, "Notes 笔记", "foot", Some(1)));
        assert_eq!(w.rect, Some(Rect { x: 2, y: 2, w: 636, h: 796 }));
        // A focused workspace (no window) is no window.
        assert!(focused(&json!({"type": "workspace", "focused": true, "nodes": []})).is_none());
    }

    #[test]
    fn floating_windows_cover_the_tiled_focused_one() {
        let covered = covering(&tree(), 7, Rect { x: 2, y: 2, w: 636, h: 796 });
        assert_eq!(covered, vec![Rect { x: 500, y: 100, w: 138, h: 200 }]);
        // The float itself, focused, is covered by nothing above it.
        assert!(covering(&tree(), 9, Rect { x: 500, y: 100, w: 300, h: 200 }).is_empty());
    }
}
