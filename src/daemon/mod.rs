//! What every engram process knows of the daemon (`engram daemon`, the program
//! `engram-daemon`): its state file and lock, the pause file, its socket's protocol, and the
//! free space it keeps. The daemon's own work, the only writer while it runs, is in
//! `src/bin/engram-daemon/`.

pub mod socket;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The lock and status file in the data directory (pid, counters: no content).
pub const STATE_FILE: &str = "daemon.json";
pub const LOCK_FILE: &str = "daemon.lock";
/// Present while capture is paused; holds the unix time it ends (0: until `engram resume`).
pub const PAUSE_FILE: &str = "paused";

pub struct Options {
    pub interval: f64,
    pub watch: Vec<PathBuf>,
}

/// What the daemon reports about itself in `daemon.json`: counts and states only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    pub started: i64,
    pub running: bool,
    /// Watching, reconciled and answering on the socket.
    pub ready: bool,
    /// "on", "paused", "idle", "locked", or "off: why".
    pub capture: String,
    /// What records the screen and why: "X11, as DISPLAY is set …", "Wayland (wlr-screencopy; …)";
    /// empty while it does not.
    #[serde(default)]
    pub backend: String,
    pub frames_stored: u64,
    /// Frames that only added text to the previous one and replaced it.
    pub frames_coalesced: u64,
    pub frames_unchanged: u64,
    /// Milliseconds of OCR over all stored frames.
    pub ocr_ms_total: u64,
    pub files_indexed: u64,
    pub files_removed: u64,
    pub retention_removed: u64,
    pub watched_folders: usize,
    /// Memories the language model captioned in the background.
    #[serde(default)]
    pub captioned: u64,
    /// "on", "off: why".
    #[serde(default)]
    pub captions: String,
    pub omp_thread_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Bytes free on the data directory's disk when capture paused for want of room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_full: Option<u64>,
    /// Told only over the socket: never in `daemon.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<Private>,
}

/// Counters that would tell how often a password manager, a private window or a secret was on
/// screen: kept in memory and told only to the user's own processes over the socket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Private {
    pub frames_excluded: u64,
    /// Ticks with no focused window, or focus that moved during the grab.
    pub frames_without_window: u64,
    pub redactions: u64,
}

/// Reads the pause file: `Some(until)` while paused (0 = until resumed).
pub fn paused(dir: &Path, now: i64) -> Option<i64> {
    let text = fs::read_to_string(dir.join(PAUSE_FILE)).ok()?;
    let until: i64 = text.trim().parse().unwrap_or(0);
    (until == 0 || until > now).then_some(until)
}

pub fn pause(dir: &Path, until: Option<i64>) -> std::io::Result<()> {
    fs::write(dir.join(PAUSE_FILE), until.unwrap_or(0).to_string())
}

pub fn resume(dir: &Path) -> std::io::Result<bool> {
    match fs::remove_file(dir.join(PAUSE_FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The running daemon's state, if one holds the lock.
pub fn running(dir: &Path) -> Option<State> {
    let state: State = serde_json::from_slice(&fs::read(dir.join(STATE_FILE)).ok()?).ok()?;
    // SAFETY: kill with signal 0 only checks that the process exists.
    (state.running && unsafe { libc::kill(state.pid as i32, 0) } == 0).then_some(state)
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(path.as_ptr(), &mut st) } == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_until_a_time_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(paused(dir.path(), 100), None);
        pause(dir.path(), Some(200)).unwrap();
        assert_eq!(paused(dir.path(), 100), Some(200));
        assert_eq!(paused(dir.path(), 300), None, "a pause ends by itself");
        pause(dir.path(), None).unwrap();
        assert_eq!(paused(dir.path(), i64::MAX - 1), Some(0));
        assert!(resume(dir.path()).unwrap());
        assert_eq!(paused(dir.path(), 100), None);
        assert!(!resume(dir.path()).unwrap());
    }
}
