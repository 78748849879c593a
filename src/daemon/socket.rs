//! The daemon's local socket: `engram search` and `engram status` ask the warm daemon instead
//! of unlocking the store and loading the embedder themselves.
//!
//! A Unix domain socket in the data directory, mode 0600, and a peer check: only processes of
//! the user who runs the daemon are answered. One JSON line in, one JSON line out.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::service::contract::{Request, Response};
use crate::service::worker::Call;
use crate::ErrorKind;

pub const SOCKET_FILE: &str = "daemon.sock";
/// The longest request line read: a search or a question is far shorter.
const MAX_REQUEST: u64 = 64 * 1024;
/// How often the listener looks whether the daemon is stopping.
const STOP_CHECK: Duration = Duration::from_millis(200);

pub fn path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_FILE)
}

/// Listens until `stop`; each request is passed to `forward` and answered with its reply.
pub fn serve(dir: &Path, forward: impl Fn(Call) -> bool + Send + 'static, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let path = path(dir);
    // A socket left by a killed daemon: the lock proved no daemon owns it.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            // Wait for a connection, waking to look at `stop`: a fixed sleep between tries added
            // its mean to every search's wall time.
            if !readable(&listener, STOP_CHECK) {
                continue;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    if same_user(&stream) {
                        let _ = answer(stream, &forward);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = std::fs::remove_file(&path);
    }))
}

fn answer(stream: UnixStream, forward: &impl Fn(Call) -> bool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, MAX_REQUEST)).read_line(&mut line)?;
    if !line.ends_with('\n') && line.len() as u64 >= MAX_REQUEST {
        return write_line(&stream, &Response::Error { message: format!("request too large (over {MAX_REQUEST} bytes)"), kind: ErrorKind::Usage });
    }
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            if forward(Call { request, reply: tx }) {
                // Every reply until the main thread drops its sender (ask sends several).
                let mut any = false;
                while let Some(reply) = rx.blocking_recv() {
                    write_line(&stream, &reply)?;
                    any = true;
                }
                if any {
                    return Ok(());
                }
            }
            Response::Error { message: "the daemon is stopping".into(), kind: ErrorKind::Unavailable }
        }
        Err(e) => Response::Error { message: format!("bad request: {e}"), kind: ErrorKind::Usage },
    };
    write_line(&stream, &reply)
}

fn write_line(mut stream: &UnixStream, reply: &Response) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(reply).expect("replies serialise");
    out.push(b'\n');
    stream.write_all(&out)
}

/// Whether a connection waits on `listener`, waiting at most `timeout` for one.
fn readable(listener: &UnixListener, timeout: Duration) -> bool {
    let mut fd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the listener that outlives the call.
    let n = unsafe { libc::poll(&mut fd, 1, timeout.as_millis() as libc::c_int) };
    n > 0 && fd.revents & libc::POLLIN != 0
}

/// Whether the peer runs as the same user as this process (SO_PEERCRED).
fn same_user(stream: &UnixStream) -> bool {
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred as *mut _ as *mut libc::c_void, &mut len)
    };
    // SAFETY: getuid cannot fail.
    rc == 0 && cred.uid == unsafe { libc::getuid() }
}

/// Sends a request to the running daemon and returns its last reply, handing every earlier one
/// (the pieces of an answer) to `on_reply`. `None` when no daemon answers (then the caller opens
/// the store itself); a daemon that answers with an error gives `Some(Response::Error)`.
pub fn call(dir: &Path, request: &Request, timeout: Duration, on_reply: &mut dyn FnMut(&Response)) -> Option<Response> {
    let stream = UnixStream::connect(path(dir)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut line = serde_json::to_vec(request).ok()?;
    line.push(b'\n');
    (&stream).write_all(&line).ok()?;
    let mut last = None;
    for line in BufReader::new(&stream).lines() {
        let reply: Response = serde_json::from_str(&line.ok()?).ok()?;
        if let Some(prev) = last.replace(reply) {
            on_reply(&prev);
        }
    }
    last
}
