//! `engram-extract`: engram's extraction worker. Started by engram (src/extract/worker.rs),
//! never by hand. It sandboxes itself (see `sandbox`), says it is ready (`worker::READY`), then
//! reads requests on stdin and answers on stdout until stdin closes: each request is a JSON header and a file's bytes, each answer
//! the JSON of `Result<Document, Skip>` (frames: an 8-byte little-endian length, then the
//! bytes). It opens no user file itself: the parent reads them.
//!
//! PDFs go to `pdf` (a separate binary so its reader's libraries are never loaded by engram
//! itself), everything else to the library's `extract_bytes`. Its stderr is read and dropped
//! by the parent, never shown.

mod pdf;
mod sandbox;

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use engram::extract::worker::{self, Request};
use engram::extract::{Document, Skip};

/// The largest file a request may carry (engram's own cap, files.max_file_bytes, is lower).
const MAX_FILE: u64 = 4 << 30;

struct Args {
    parent: Option<i32>,
    memory_mb: u64,
    self_test: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { parent: None, memory_mb: 2048, self_test: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--parent" => args.parent = Some(value("--parent")?.parse().map_err(|_| "--parent needs a process id")?),
            "--memory-mb" => args.memory_mb = value("--memory-mb")?.parse().map_err(|_| "--memory-mb needs a number")?,
            "--self-test-sandbox" => args.self_test = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    engram::harden::apply();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("engram-extract: {e}; this is engram's extraction worker, started by engram itself");
            return ExitCode::from(2);
        }
    };
    if !sandbox::tie_to_parent(args.parent) {
        return ExitCode::from(1);
    }
    // The protocol gets private descriptors; stdout becomes stderr (so a library that prints
    // cannot corrupt an answer) and stdin /dev/null.
    let (input, output) = match private_stdio() {
        Ok(io) => io,
        Err(e) => {
            eprintln!("engram-extract: could not set up its input and output: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = sandbox::limit_resources(args.memory_mb).and_then(|_| sandbox::filter_syscalls()) {
        eprintln!("engram-extract: could not sandbox itself: {e}");
        return ExitCode::from(1);
    }
    if args.self_test {
        return self_test::run(output);
    }
    // Long steps (a page of OCR) tell the parent the work goes on, and get CPU time for it.
    match output.try_clone() {
        Ok(progress_out) => {
            let progress_out = std::sync::Mutex::new(progress_out);
            worker::set_progress_hook(move || {
                let _ = sandbox::arm_cpu(CPU_SECS.load(Ordering::Relaxed));
                if let Ok(mut out) = progress_out.lock() {
                    let _ = worker::write_frame(&mut *out, worker::PROGRESS);
                }
            });
        }
        Err(e) => {
            eprintln!("engram-extract: could not set up its output: {e}");
            return ExitCode::from(1);
        }
    }
    serve(input, output)
}

/// The CPU seconds the current request may use between two steps.
static CPU_SECS: AtomicU64 = AtomicU64::new(60);

/// Answers requests until the input ends. A reader that panicked may have left its libraries
/// in a bad state: the answer is sent, then the worker ends and the parent starts a fresh one.
fn serve(input: File, output: File) -> ExitCode {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut output = BufWriter::new(output);
    // Sandboxed: say so, before anything is sent.
    if worker::write_frame(&mut output, worker::READY).and_then(|_| output.flush()).is_err() {
        return ExitCode::from(1);
    }
    loop {
        let header = match worker::read_frame(&mut input, worker::MAX_HEADER) {
            Ok(Some(h)) => h,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::from(1),
        };
        let Ok(request) = serde_json::from_slice::<Request>(&header) else { return ExitCode::from(1) };
        let bytes = match worker::read_frame(&mut input, MAX_FILE) {
            Ok(Some(b)) => b,
            _ => return ExitCode::from(1),
        };
        CPU_SECS.store(request.cpu_secs, Ordering::Relaxed);
        let _ = sandbox::arm_cpu(request.cpu_secs);
        let (result, panicked) = match catch_unwind(AssertUnwindSafe(|| extract(&request, &bytes))) {
            Ok(r) => (r, false),
            Err(_) => (Err(Skip::Corrupt("its reader failed on it".into())), true),
        };
        drop(bytes);
        let answer = serde_json::to_vec(&result).expect("an answer serialises");
        if worker::write_frame(&mut output, &answer).and_then(|_| output.flush()).is_err() {
            return ExitCode::from(1);
        }
        if panicked {
            return ExitCode::SUCCESS;
        }
    }
}

fn extract(request: &Request, bytes: &[u8]) -> Result<Document, Skip> {
    if worker::is_pdf(&request.name, bytes) {
        pdf::extract(bytes, &request.pdf)
    } else {
        engram::extract::extract_bytes(Path::new(&request.name), bytes)
    }
}

/// Moves stdin and stdout to descriptors of their own (close-on-exec), then puts /dev/null on
/// stdin and stderr on stdout.
fn private_stdio() -> std::io::Result<(File, File)> {
    let dup = |fd| {
        // SAFETY: duplicates a descriptor this process has; the copy is ours alone.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `new` is a fresh descriptor owned by nothing else.
        Ok(unsafe { File::from_raw_fd(new) })
    };
    let (input, output) = (dup(0)?, dup(1)?);
    let null = File::open("/dev/null")?;
    // SAFETY: dup2 onto the standard descriptors, which this process owns.
    unsafe {
        use std::os::fd::AsRawFd;
        if libc::dup2(null.as_raw_fd(), 0) < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((input, output))
}

/// `--self-test-sandbox`: tries what the sandbox must refuse and what it must allow, and
/// prints what happened as JSON (each probe's errno; 0 when it succeeded).
mod self_test {
    use std::ffi::CString;
    use std::fs::File;
    use std::io::Write;
    use std::process::ExitCode;

    fn errno_of(rc: i64) -> i32 {
        if rc < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    }

    fn open(path: &str, flags: libc::c_int) -> i32 {
        let p = CString::new(path).unwrap();
        // SAFETY: a NUL-terminated path; a descriptor that opens is closed at once.
        let fd = unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
        let e = errno_of(fd as i64);
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        e
    }

    fn socket(domain: libc::c_int) -> i32 {
        // SAFETY: a socket that opens is closed at once.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        let e = errno_of(fd as i64);
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        e
    }

    fn rlimit(resource: libc::__rlimit_resource_t) -> u64 {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into `l`.
        unsafe { libc::getrlimit(resource, &mut l) };
        l.rlim_cur
    }

    pub fn run(mut out: File) -> ExitCode {
        let probe = format!("/tmp/engram-sandbox-probe-{}", std::process::id());
        let cpath = CString::new(probe.clone()).unwrap();
        // SAFETY: fork in a single-threaded process; a child that appears exits at once.
        let fork = unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(0);
            }
            if pid > 0 {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            errno_of(pid as i64)
        };
        let exec = {
            let prog = CString::new("/bin/true").unwrap();
            let argv = [prog.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: NUL-terminated program and argument lists; returns only on failure.
            errno_of(unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) } as i64)
        };
        let thread = std::thread::spawn(|| 6 * 7).join().ok() == Some(42);
        // SAFETY: the calls below only read, or fail under the filter; their paths are
        // NUL-terminated and the memfd is closed.
        let (kill_parent, kill_self, unlink, mkdir, memfd) = unsafe {
            // Anonymous memory files open; writing to one is past RLIMIT_FSIZE (EFBIG).
            let memfd = {
                let name = CString::new("probe").unwrap();
                let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC);
                let e = if fd < 0 { errno_of(-1) } else { errno_of(libc::write(fd, b"x".as_ptr().cast(), 1) as i64) };
                if fd >= 0 {
                    libc::close(fd);
                }
                e
            };
            (
                errno_of(libc::kill(libc::getppid(), 0) as i64),
                errno_of(libc::kill(libc::getpid(), 0) as i64),
                errno_of(libc::unlinkat(libc::AT_FDCWD, cpath.as_ptr(), 0) as i64),
                errno_of(libc::mkdirat(libc::AT_FDCWD, cpath.as_ptr(), 0o700) as i64),
                memfd,
            )
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("").to_string()
        };
        let report = serde_json::json!({
            "open_write_create": open(&probe, libc::O_WRONLY | libc::O_CREAT),
            "open_read_write": open("/dev/null", libc::O_RDWR),
            "open_write": open("/dev/null", libc::O_WRONLY),
            "open_truncate": open("/dev/null", libc::O_RDONLY | libc::O_TRUNC),
            "open_read": open("/proc/self/status", libc::O_RDONLY),
            "created": std::path::Path::new(&probe).exists(),
            "socket_inet": socket(libc::AF_INET),
            "socket_inet6": socket(libc::AF_INET6),
            "socket_unix": socket(libc::AF_UNIX),
            "fork": fork,
            "exec": exec,
            "thread": thread,
            "kill_parent": kill_parent,
            "kill_self": kill_self,
            "unlink": unlink,
            "mkdir": mkdir,
            "memfd": memfd,
            "seccomp": field("Seccomp:"),
            "no_new_privs": field("NoNewPrivs:"),
            // SAFETY: prctl(PR_GET_DUMPABLE) only reads a flag.
            "dumpable": unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) },
            "rlimit_as": rlimit(libc::RLIMIT_AS),
            "rlimit_fsize": rlimit(libc::RLIMIT_FSIZE),
            "rlimit_core": rlimit(libc::RLIMIT_CORE),
            "rlimit_cpu": rlimit(libc::RLIMIT_CPU),
        });
        let ok = writeln!(out, "{report}").is_ok();
        if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
    }
}
