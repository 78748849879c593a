//! The extraction worker's parent side: documents are read by `engram-extract`, a child process
//! with memory and CPU limits, no network and no writes (see src/bin/engram-extract), so a file
//! that crashes its reader, hangs it or exhausts its memory costs that worker, never engram.
//!
//! One worker serves many files (its start is paid once) until it fails or has served
//! [`FILES_PER_WORKER`]; then the next file starts a fresh one. The parent reads each file and
//! sends its bytes and name over a socket pair (the worker's stdin and stdout), framed by
//! [`write_frame`]: a JSON [`Request`], then the bytes; the answer is one JSON
//! `Result<Document, Skip>`. The worker's stderr is read and dropped: it could quote a document.
//!
//! Not for: what a format means (the rest of `extract`) or remembering failures (`store`).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Document, Skip};

/// The worker's program name; it is looked for beside the running executable, then on PATH.
pub const PROGRAM: &str = "engram-extract";
/// A worker is replaced after this many files, so slow leaks in a reader cannot add up.
pub const FILES_PER_WORKER: usize = 500;
/// What the worker sends while it works through a long file, each time it begins a page of
/// OCR: the parent restarts the file's clock (at most `pdf.ocr_pages` times).
pub const PROGRESS: &[u8] = br#"{"progress":1}"#;
/// The largest request header and answer a side accepts.
pub const MAX_HEADER: u64 = 64 << 10;
pub const MAX_ANSWER: u64 = 512 << 20;
/// What the worker sends once it is sandboxed and ready for requests; the number is the version
/// of this protocol, so a worker from another engram is refused.
pub const READY: &[u8] = br#"{"ready":1}"#;
/// How long a new worker may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How much of the worker's stderr is kept, in memory only, to tell running out of memory from
/// other crashes. It is never shown, logged or stored.
const STDERR_TAIL: usize = 4096;

/// What a PDF reader may do (the worker's `pdf.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdfOptions {
    /// At most this many pages without a text layer are read by OCR (0: none).
    pub ocr_pages: u32,
    /// Tesseract languages for those pages, as `eng+chi_sim`.
    pub ocr_languages: String,
}

/// One file for the worker; its bytes follow in a frame of their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The file's name (its last component only): the type hint.
    pub name: String,
    pub pdf: PdfOptions,
    /// CPU seconds this file may use; the worker sets its RLIMIT_CPU soft limit to now + this.
    pub cpu_secs: u64,
}

/// The worker's limits, from the settings (`[files]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Address-space limit (RLIMIT_AS), in MiB.
    pub memory_mb: u64,
    /// Wall-clock time one file may take (a PDF gets more per page of OCR allowed).
    pub timeout: Duration,
    pub pdf: PdfOptions,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Limits {
        Limits {
            memory_mb: config.files.worker_memory_mb.max(64),
            timeout: Duration::from_secs(config.files.worker_timeout_secs.max(1)),
            pdf: PdfOptions { ocr_pages: config.files.pdf_ocr_pages, ocr_languages: config.screen.ocr_languages.clone() },
        }
    }

    /// CPU seconds a file may use between two restarts of its clock: a backstop to the wall
    /// clock, with room for threads (OCR) that use more CPU than wall time.
    pub fn cpu_secs(&self) -> u64 {
        self.timeout.as_secs().saturating_mul(2).max(1)
    }
}

/// Called by long steps of extraction (a page of OCR) to say the work goes on; in the worker
/// it tells the parent, which restarts the file's clock. Does nothing in any other process.
pub fn progress() {
    if let Some(hook) = PROGRESS_HOOK.get() {
        hook();
    }
}

/// Sets what [`progress`] does (the worker, once).
pub fn set_progress_hook(hook: impl Fn() + Send + Sync + 'static) {
    let _ = PROGRESS_HOOK.set(Box::new(hook));
}

type Hook = Box<dyn Fn() + Send + Sync>;
static PROGRESS_HOOK: std::sync::OnceLock<Hook> = std::sync::OnceLock::new();

/// The worker could not be started at all (as opposed to failing on a file, which is a [`Skip`]).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(
        "the extraction worker `{PROGRAM}` was not found beside {} or on PATH; it is built with engram (`cargo build` builds both) and must be installed beside it",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("the extraction worker {} could not be started: {why}", .program.display())]
    Spawn { program: PathBuf, why: String },
}

/// Writes one frame: its length (8 bytes, little-endian), then the bytes.
pub fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)
}

/// Reads one frame of at most `max` bytes; `None` at a clean end of input.
pub fn read_frame(r: &mut impl Read, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes is over the limit of {max}")));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Whether a file goes to the PDF reader: by its magic, else by its name.
pub fn is_pdf(name: &str, bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-") || Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
}

/// Where the worker program is: beside the running executable (for tests, also one folder up,
/// out of cargo's `deps`), else on PATH.
pub fn program() -> Result<PathBuf, WorkerError> {
    let exe = std::env::current_exe().unwrap_or_default();
    let beside = exe.parent().map(|d| d.join(PROGRAM));
    let above = exe.parent().filter(|d| d.ends_with("deps")).and_then(Path::parent).map(|d| d.join(PROGRAM));
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(PROGRAM)).collect::<Vec<_>>())
        .unwrap_or_default();
    beside.into_iter().chain(above).chain(on_path).find(|p| p.is_file()).ok_or(WorkerError::Missing(exe))
}

/// Runs the worker's `--self-test-sandbox` with this memory limit and checks what it found: the
/// filter in force, the network, programs, processes and writes refused, reading and threads
/// allowed, the limits set. Returns what holds, or the first thing that does not.
pub fn check_sandbox(memory_mb: u64) -> Result<String, String> {
    let program = program().map_err(|e| e.to_string())?;
    let out = Command::new(&program)
        .args(["--self-test-sandbox", "--memory-mb", &memory_mb.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("{} could not be run: {e}", program.display()))?;
    let r: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| format!("{} did not report on its sandbox ({})", program.display(), out.status))?;
    let (eperm, eacces) = (libc::EPERM as i64, libc::EACCES as i64);
    let errno = |k: &str| r[k].as_i64();
    let checks: [(&str, bool); 9] = [
        ("a seccomp filter with no new privileges", r["seccomp"] == "2" && r["no_new_privs"] == "1"),
        ("no sockets", ["socket_inet", "socket_inet6", "socket_unix"].iter().all(|k| errno(k) == Some(eperm))),
        ("no programs or processes", errno("exec") == Some(eperm) && errno("fork") == Some(eperm)),
        ("no signals to other processes", errno("kill_parent") == Some(eperm)),
        (
            "no file opened to write",
            ["open_write_create", "open_read_write", "open_write", "open_truncate"].iter().all(|k| errno(k) == Some(eacces)) && r["created"] == false,
        ),
        ("no file deleted or folder made", errno("unlink") == Some(eperm) && errno("mkdir") == Some(eperm)),
        ("files readable and threads working", errno("open_read") == Some(0) && r["thread"] == true),
        ("not dumpable, no core", r["dumpable"] == 0 && r["rlimit_core"] == 0),
        ("memory and file-size limits", r["rlimit_as"].as_u64() == Some(memory_mb << 20) && r["rlimit_fsize"] == 0),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((what, _)) => Err(format!("the extraction worker's sandbox is not in force: {what} failed its check")),
        None => Ok(format!(
            "documents are read in {PROGRAM}: {}; at most {memory_mb} MiB",
            checks.iter().map(|(what, _)| *what).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Environment variables the worker keeps; everything else (a passphrase variable not yet
/// read, for one) is left behind.
const KEPT_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LANGUAGE", "TESSDATA_PREFIX", "OMP_THREAD_LIMIT", "FONTCONFIG_FILE", "FONTCONFIG_PATH",
    "XDG_DATA_DIRS", "XDG_CACHE_HOME", "TMPDIR",
];

/// A long-lived extraction worker, started when the first file needs it and again after one
/// fails.
pub struct Worker {
    limits: Limits,
    /// The worker program, when not found by [`program`] (tests).
    program: Option<PathBuf>,
    child: Option<Running>,
    served: usize,
    /// Workers started so far (the first included).
    pub started: usize,
}

struct Running {
    child: Child,
    /// The parent's end of the socket pair: requests out, answers in. Non-blocking.
    sock: OwnedFd,
    /// The last bytes the worker wrote to stderr; read only to tell running out of memory.
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// The thread that drains stderr; it ends when the worker does.
    drain: Option<std::thread::JoinHandle<()>>,
    /// The largest address space seen while it worked, in KiB.
    peak_kib: u64,
}

impl Worker {
    /// A worker with these limits; no process is started until a file needs one.
    pub fn new(limits: Limits) -> Worker {
        Worker { limits, program: None, child: None, served: 0, started: 0 }
    }

    #[cfg(test)]
    fn with_program(limits: Limits, program: PathBuf) -> Worker {
        let mut w = Worker::new(limits);
        w.program = Some(program);
        w
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The running worker's process id, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.child.id())
    }

    /// Extracts one file's text in the worker. A worker that crashes, hangs past its time or
    /// runs out of memory is killed and gives [`Skip::Crashed`], [`Skip::TimedOut`] or
    /// [`Skip::OutOfMemory`]; the next file starts a fresh one. Errs only when no worker can be
    /// started.
    pub fn extract(&mut self, name: &str, bytes: &[u8]) -> Result<Result<Document, Skip>, WorkerError> {
        // A worker that ended between files (its parent thread exited, it was killed from
        // outside while idle) is replaced without blaming the next file.
        if let Some(r) = &mut self.child {
            if !matches!(r.child.try_wait(), Ok(None)) {
                self.retire();
            }
        }
        if self.child.is_none() {
            self.child = Some(self.spawn()?);
            self.served = 0;
            self.started += 1;
        }
        let request = Request { name: name.to_string(), pdf: self.limits.pdf.clone(), cpu_secs: self.limits.cpu_secs() };
        let clock = Clock { timeout: self.limits.timeout, deadline: Instant::now() + self.limits.timeout, restarts: self.limits.pdf.ocr_pages };
        let memory_kib = self.limits.memory_mb.saturating_mul(1024);
        let running = self.child.as_mut().expect("started above");
        let answer = exchange(running, &request, bytes, clock);
        let result = match answer {
            Ok(answer) => match serde_json::from_slice::<Result<Document, Skip>>(&answer) {
                Ok(result) => result,
                Err(_) => {
                    let failure = self.fail(Failure::Garbled, memory_kib);
                    return Ok(Err(failure));
                }
            },
            Err(failure) => return Ok(Err(self.fail(failure, memory_kib))),
        };
        self.served += 1;
        if self.served >= FILES_PER_WORKER {
            self.retire();
        }
        Ok(result)
    }

    /// Kills the failed worker and says what happened to it.
    fn fail(&mut self, failure: Failure, memory_kib: u64) -> Skip {
        let Some(mut r) = self.child.take() else { return Skip::Crashed("the extraction worker was gone".into()) };
        if failure == Failure::Timeout {
            let _ = r.child.kill();
        }
        // A dying worker is given a moment to be reaped with its real status; what its stderr
        // ended with says whether memory ran out, and goes no further.
        let peak_kib = r.peak_kib;
        let (status, tail) = end(r);
        classify(failure, status, tail.as_bytes(), peak_kib, memory_kib)
    }

    /// Ends the worker, if one runs; the next file starts a fresh one.
    pub fn release(&mut self) {
        self.retire();
    }

    /// Ends the worker: it exits when its input closes.
    fn retire(&mut self) {
        if let Some(mut r) = self.child.take() {
            drop(r.sock);
            let until = Instant::now() + Duration::from_millis(200);
            while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }

    fn spawn(&self) -> Result<Running, WorkerError> {
        let program = match &self.program {
            Some(p) => p.clone(),
            None => program()?,
        };
        let spawn_err = |e: io::Error| WorkerError::Spawn { program: program.clone(), why: e.to_string() };
        let (parent, child) = socket_pair().map_err(spawn_err)?;
        let mut cmd = Command::new(&program);
        cmd.env_clear();
        for (k, v) in std::env::vars_os() {
            let keep = k.to_str().is_some_and(|k| KEPT_ENV.contains(&k) || k.starts_with("LC_"));
            if keep {
                cmd.env(k, v);
            }
        }
        // Within an address-space limit, glibc's per-thread malloc arenas (64 MiB of address
        // space each, up to 8 per core) would crowd out the reader; OCR runs on one OpenMP
        // thread unless told otherwise, as in the daemon (faster on few cores, see README).
        cmd.env("MALLOC_ARENA_MAX", "2");
        if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
            cmd.env("OMP_THREAD_LIMIT", "1");
        }
        cmd.arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--memory-mb")
            .arg(self.limits.memory_mb.to_string())
            .stdin(Stdio::from(child.try_clone().map_err(spawn_err)?))
            .stdout(Stdio::from(child))
            .stderr(Stdio::piped());
        let mut proc = cmd.spawn().map_err(spawn_err)?;
        // The command holds the child's end of the socket: without this, a worker that dies
        // would never be seen to close it.
        drop(cmd);
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let mut drain = None;
        if let Some(mut err) = proc.stderr.take() {
            let tail = stderr_tail.clone();
            // Drained so the worker never blocks on it; kept in memory (the last few KiB) only
            // to tell running out of memory, then dropped. Never printed: it may quote a document.
            drain = std::thread::Builder::new().name("extract-stderr".into()).spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend_from_slice(&buf[..n]);
                        let over = t.len().saturating_sub(STDERR_TAIL);
                        t.drain(..over);
                    }
                }
            })
            .ok();
        }
        set_nonblocking(&parent).map_err(spawn_err)?;
        let mut running = Running { child: proc, sock: parent, stderr_tail, drain, peak_kib: 0 };
        // A worker that cannot sandbox itself (or is not this engram's) fails here, before any
        // file is sent, so no file is blamed for it.
        let deadline = Instant::now() + READY_WITHIN;
        let mut len = [0u8; 8];
        let said = recv_exact(&mut running, &mut len, deadline).and_then(|_| {
            let n = u64::from_le_bytes(len).min(256) as usize;
            let mut said = vec![0u8; n];
            recv_exact(&mut running, &mut said, deadline).map(|_| said)
        });
        match said {
            Ok(said) if said == READY => Ok(running),
            Ok(_) => {
                end(running);
                Err(WorkerError::Spawn {
                    program,
                    why: "it is not this engram's extraction worker (another version?); install engram and engram-extract together".into(),
                })
            }
            Err(_) => {
                // Before any document was sent, what it said is its own (why it could not start).
                let (status, said) = end(running);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|| "no status".into());
                let said = said.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {}", l.trim())).unwrap_or_default();
                Err(WorkerError::Spawn { program, why: format!("it ended before it was ready ({status}){said}") })
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.retire();
    }
}

/// Kills a worker and reaps it; returns how it ended and what its stderr ended with.
fn end(mut r: Running) -> (Option<std::process::ExitStatus>, String) {
    let until = Instant::now() + Duration::from_millis(500);
    while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = r.child.kill();
    let status = r.child.wait().ok();
    let until = Instant::now() + Duration::from_millis(500);
    while r.drain.as_ref().is_some_and(|d| !d.is_finished()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let tail = r.stderr_tail.lock().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
    (status, tail)
}

/// How an exchange with the worker went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// It closed its end or the connection broke: it died.
    Died,
    /// The wall clock ran out.
    Timeout,
    /// It answered something that is not an answer.
    Garbled,
}

/// Names what happened to a killed or dead worker, from how it ended, what its stderr ended
/// with (read, never shown), and how large it grew.
fn classify(failure: Failure, status: Option<std::process::ExitStatus>, tail: &[u8], peak_kib: u64, memory_kib: u64) -> Skip {
    use std::os::unix::process::ExitStatusExt;
    if failure == Failure::Timeout {
        return Skip::TimedOut;
    }
    let tail = String::from_utf8_lossy(tail).to_ascii_lowercase();
    let said_oom = ["memory allocation of", "bad_alloc", "out of memory", "failed to allocate", "cannot allocate memory"]
        .iter()
        .any(|m| tail.contains(m));
    let near_limit = memory_kib > 0 && peak_kib >= memory_kib / 10 * 9;
    let signal = status.and_then(|s| s.signal());
    if signal == Some(libc::SIGXCPU) {
        return Skip::TimedOut;
    }
    if said_oom || near_limit {
        return Skip::OutOfMemory;
    }
    let how = match (failure, signal, status.and_then(|s| s.code())) {
        (Failure::Garbled, _, _) => "it answered with something that is not a document".to_string(),
        (_, Some(sig), _) => format!("signal {sig}{}", signal_name(sig).map(|n| format!(", {n}")).unwrap_or_default()),
        (_, None, Some(code)) => format!("exit code {code}"),
        _ => "it ended".to_string(),
    };
    Skip::Crashed(how)
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// A file's wall clock: `timeout` from the start, restarted by each [`PROGRESS`] the worker
/// sends, at most `restarts` times.
struct Clock {
    timeout: Duration,
    deadline: Instant,
    restarts: u32,
}

/// Sends a request and its bytes, and reads the answer, within the clock.
fn exchange(r: &mut Running, request: &Request, bytes: &[u8], mut clock: Clock) -> Result<Vec<u8>, Failure> {
    let header = serde_json::to_vec(request).expect("a request serialises");
    let mut out = Vec::with_capacity(16 + header.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    send_all(r, &out, clock.deadline)?;
    send_all(r, bytes, clock.deadline)?;
    loop {
        let mut len = [0u8; 8];
        recv_exact(r, &mut len, clock.deadline)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_ANSWER {
            return Err(Failure::Garbled);
        }
        let mut answer = vec![0u8; len as usize];
        recv_exact(r, &mut answer, clock.deadline)?;
        if answer != PROGRESS {
            return Ok(answer);
        }
        if clock.restarts > 0 {
            clock.restarts -= 1;
            clock.deadline = clock.deadline.max(Instant::now() + clock.timeout);
        }
    }
}

/// Waits until the socket is ready for `events` or the deadline passes, noting the worker's
/// size as it goes.
fn wait_ready(r: &mut Running, events: libc::c_short, deadline: Instant) -> Result<(), Failure> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        let mut pfd = libc::pollfd { fd: r.sock.as_raw_fd(), events, revents: 0 };
        let slice = left.min(Duration::from_millis(100)).as_millis().max(1) as libc::c_int;
        // SAFETY: polls one descriptor we own, with a pollfd that lives across the call.
        let n = unsafe { libc::poll(&mut pfd, 1, slice) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(Failure::Died);
        }
        if let Some(kib) = vm_size_kib(r.child.id()) {
            r.peak_kib = r.peak_kib.max(kib);
        }
    }
}

fn send_all(r: &mut Running, mut buf: &[u8], deadline: Instant) -> Result<(), Failure> {
    while !buf.is_empty() {
        wait_ready(r, libc::POLLOUT, deadline)?;
        // SAFETY: sends from a live buffer on a socket we own; MSG_NOSIGNAL turns a dead worker
        // into EPIPE instead of a SIGPIPE that would end engram.
        let n = unsafe { libc::send(r.sock.as_raw_fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                _ => return Err(Failure::Died),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

fn recv_exact(r: &mut Running, mut buf: &mut [u8], deadline: Instant) -> Result<(), Failure> {
    while !buf.is_empty() {
        wait_ready(r, libc::POLLIN, deadline)?;
        // SAFETY: receives into a live buffer of the given length on a socket we own.
        let n = unsafe { libc::recv(r.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                _ => return Err(Failure::Died),
            }
        }
        if n == 0 {
            return Err(Failure::Died);
        }
        buf = &mut buf[n as usize..];
    }
    Ok(())
}

/// A connected pair of Unix stream sockets, close-on-exec (the child's end is put on its stdin
/// and stdout, which clears that flag there).
fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two new descriptors into `fds`, which we then own.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: reads and sets the status flags of a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A process's address-space size (VmSize), in KiB.
fn vm_size_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn frames_round_trip_and_a_clean_end_is_none() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 100).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_frame(&mut r, 100).unwrap().as_deref(), Some(&b""[..]));
        assert!(read_frame(&mut r, 100).unwrap().is_none());
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_before_it_is_read() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[7u8; 50]).unwrap();
        assert_eq!(read_frame(&mut &buf[..], 49).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn failures_are_named_by_how_the_worker_ended() {
        let signal = |s| Some(std::process::ExitStatus::from_raw(s));
        let gib = 1 << 20;
        assert_eq!(classify(Failure::Timeout, signal(libc::SIGKILL), b"", 0, gib), Skip::TimedOut);
        assert_eq!(classify(Failure::Died, signal(libc::SIGXCPU), b"", 0, gib), Skip::TimedOut);
        assert_eq!(classify(Failure::Died, signal(libc::SIGABRT), b"memory allocation of 2147483648 bytes failed\n", 0, gib), Skip::OutOfMemory);
        assert_eq!(classify(Failure::Died, signal(libc::SIGABRT), b"terminate called after throwing an instance of 'std::bad_alloc'", 0, gib), Skip::OutOfMemory);
        assert_eq!(classify(Failure::Died, signal(libc::SIGSEGV), b"", gib - 10, gib), Skip::OutOfMemory);
        assert_eq!(classify(Failure::Died, signal(libc::SIGSEGV), b"", 1000, gib), Skip::Crashed("signal 11, SIGSEGV".into()));
        assert_eq!(classify(Failure::Died, Some(std::process::ExitStatus::from_raw(3 << 8)), b"", 0, gib), Skip::Crashed("exit code 3".into()));
        assert!(matches!(classify(Failure::Garbled, None, b"", 0, gib), Skip::Crashed(_)));
    }

    /// A worker that is a shell script: it reads nothing and does `body`.
    fn fake_worker(dir: &Path, name: &str, body: &str) -> Worker {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\nprintf '\\013\\0\\0\\0\\0\\0\\0\\0{{\"ready\":1}}'\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let limits = Limits { memory_mb: 256, timeout: Duration::from_secs(1), pdf: PdfOptions::default() };
        Worker::with_program(limits, path)
    }

    #[test]
    fn a_worker_that_hangs_crashes_or_runs_out_of_memory_costs_one_file_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mut hangs = fake_worker(dir.path(), "hangs", "exec sleep 30");
        assert_eq!(hangs.extract("a.txt", b"words").unwrap().unwrap_err(), Skip::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5), "the wall clock was not kept: {:?}", started.elapsed());
        assert!(hangs.pid().is_none(), "the hung worker was not ended");
        // The next file gets a fresh worker (which hangs too).
        assert_eq!(hangs.extract("b.txt", b"words").unwrap().unwrap_err(), Skip::TimedOut);
        assert_eq!(hangs.started, 2);

        let mut segv = fake_worker(dir.path(), "segv", "kill -SEGV $$");
        assert_eq!(segv.extract("a.txt", b"words").unwrap().unwrap_err(), Skip::Crashed("signal 11, SIGSEGV".into()));
        // What a worker prints is read only to tell running out of memory; never returned.
        let mut oom = fake_worker(dir.path(), "oom", "echo 'memory allocation of 4294967296 bytes failed: zqxsecret' >&2; kill -ABRT $$");
        assert_eq!(oom.extract("a.txt", b"words").unwrap().unwrap_err(), Skip::OutOfMemory);
        let mut garbled = fake_worker(dir.path(), "garbled", "printf '\\005\\0\\0\\0\\0\\0\\0\\0hello'; exec sleep 30");
        assert!(matches!(garbled.extract("a.txt", b"words").unwrap().unwrap_err(), Skip::Crashed(how) if how.contains("not a document")));
        let mut exits = fake_worker(dir.path(), "exits", "exit 3");
        assert_eq!(exits.extract("a.txt", &vec![b'x'; 1 << 20]).unwrap().unwrap_err(), Skip::Crashed("exit code 3".into()));
    }

    #[test]
    fn a_worker_that_cannot_start_is_an_error_not_a_skip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-sandbox");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, "#!/bin/sh\necho 'engram-extract: could not sandbox itself: seccomp: refused' >&2\nexit 1\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let limits = Limits { memory_mb: 256, timeout: Duration::from_secs(1), pdf: PdfOptions::default() };
        let e = Worker::with_program(limits.clone(), path).extract("a.txt", b"x").unwrap_err().to_string();
        assert!(e.contains("before it was ready") && e.contains("could not sandbox itself"), "{e}");
        // One that says something else is not this engram's worker.
        let other = dir.path().join("other");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&other, "#!/bin/sh\nprintf '\\002\\0\\0\\0\\0\\0\\0\\0{}'\nexec sleep 30\n").unwrap();
            std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let e = Worker::with_program(limits, other).extract("a.txt", b"x").unwrap_err().to_string();
        assert!(e.contains("another version"), "{e}");
    }

    #[test]
    fn a_missing_worker_is_an_error_that_says_how_to_get_it() {
        let mut w = Worker::with_program(
            Limits { memory_mb: 256, timeout: Duration::from_secs(1), pdf: PdfOptions::default() },
            PathBuf::from("/nonexistent/engram-extract"),
        );
        let e = w.extract("a.txt", b"x").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/engram-extract"), "{e}");
        let missing = WorkerError::Missing(PathBuf::from("/opt/engram/engram")).to_string();
        assert!(missing.contains("engram-extract") && missing.contains("cargo build") && missing.contains("/opt/engram/engram"), "{missing}");
    }

    #[test]
    fn pdfs_are_known_by_magic_or_name() {
        assert!(is_pdf("x.bin", b"%PDF-1.7 ..."));
        assert!(is_pdf("Report.PDF", b"garbage"));
        assert!(!is_pdf("notes.txt", b"plain"));
    }

    #[test]
    fn each_page_of_ocr_restarts_the_clock_as_often_as_pages_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        // Three steps of 1.4 s, the first two announced, then an answer: 4.2 s in all, past
        // the 2 s timeout unless the clock restarts twice.
        let step = "sleep 1.4; printf '\\016\\0\\0\\0\\0\\0\\0\\0{\"progress\":1}'";
        let body = format!("{step}; {step}; sleep 1.4; printf '\\020\\0\\0\\0\\0\\0\\0\\0{{\"Err\":\"Binary\"}}'; exec sleep 30");
        let mut pages = fake_worker(dir.path(), "ocr", &body);
        pages.limits.pdf.ocr_pages = 2;
        pages.limits.timeout = Duration::from_secs(2);
        assert_eq!(pages.extract("scan.pdf", b"%PDF-").unwrap().unwrap_err(), Skip::Binary);
        let mut no_pages = fake_worker(dir.path(), "ocr", &body);
        no_pages.limits.pdf.ocr_pages = 1;
        no_pages.limits.timeout = Duration::from_secs(2);
        assert_eq!(no_pages.extract("scan.pdf", b"%PDF-").unwrap().unwrap_err(), Skip::TimedOut);
    }
}
