//! The daemon's work: one process, the only writer while it runs.
//!
//! Threads: the folder watcher and the screen recorder send what they saw to the main thread,
//! which alone writes. Nothing is held only in memory: a frame is one store transaction, the
//! keyword index and the vectors catch up from the store's generation at every start, and the
//! watched folders are reconciled against the store at start, so `kill -9` loses at most the
//! frame being read.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engram::capture::Captured;
use engram::capture::{files, watch};
use engram::service::contract::{Request, Response};
use engram::service::worker::Call;
use engram::{AddEvent, Engram, Error, Result};
use super::record;
use engram::daemon::{free_bytes, running, socket, Options, Private, State, LOCK_FILE, STATE_FILE};

/// Wait for this long without events before reading changed files.
const SETTLE: Duration = Duration::from_millis(400);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// How long a failed write (a busy index, a full or read-only disk) waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Frames kept in memory while they cannot be written; older ones are dropped first.
const UNSAVED_FRAMES: usize = 8;
/// How often the free space on the data directory's disk is read.
const DISK_EVERY: Duration = Duration::from_secs(2);

// Without the `capture` feature no frame is ever sent.
#[cfg_attr(not(feature = "capture"), allow(dead_code))]
pub(super) enum Msg {
    Paths(Vec<PathBuf>),
    Frame(Box<Captured>),
    Started { backend: String },
    Tick(&'static str),
    Excluded,
    CaptureOff(String),
    WatchError(String),
    Request(Call),
    Captioned(usize),
    CaptionsOff(String),
}

/// Takes the daemon lock (held until the process ends); fails when another daemon holds it.
fn lock(dir: &Path) -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| Error::Other(format!("could not create {}: {e}", dir.join(LOCK_FILE).display())))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = running(dir).map(|s| format!(" (pid {})", s.pid)).unwrap_or_default();
        return Err(Error::Usage(format!("another engram daemon is already running on {}{pid}", dir.display())));
    }
    Ok(f)
}

pub fn run(mut engram: Engram, opts: Options, log: &dyn Fn(&str)) -> Result<State> {
    let dir = engram.dir().to_path_buf();
    let _lock = lock(&dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| Error::Other(format!("could not handle signals: {e}")))?;
    }
    let now = chrono::Utc::now().timestamp();
    let mut state = State {
        pid: std::process::id(),
        started: now,
        running: true,
        capture: "starting".into(),
        omp_thread_limit: std::env::var("OMP_THREAD_LIMIT").ok(),
        ..Default::default()
    };
    let roots: Vec<PathBuf> = opts.watch.iter().map(|p| files::absolute(p)).collect();
    state.watched_folders = roots.len();
    let mut state_file = StateFile { dir: dir.clone(), last: Vec::new() };
    state_file.save(&state);

    // Watch first, then reconcile: a change made during reconciliation is then seen twice,
    // never missed.
    let (tx, rx) = mpsc::channel::<Msg>();
    let _watcher = if roots.is_empty() {
        None
    } else {
        let (t1, t2) = (tx.clone(), tx.clone());
        let w = watch::watch(
            &roots,
            move |paths| {
                let _ = t1.send(Msg::Paths(paths));
            },
            move |e| {
                let _ = t2.send(Msg::WatchError(e));
            },
        )
        .map_err(|e| Error::Usage(e.to_string()))?;
        log(&format!("watching {}", roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")));
        Some(w)
    };
    // Catch up with what changed while stopped; what cannot be read now is tried again later.
    let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
    let mut retry_at = Instant::now();
    if !roots.is_empty() {
        log(&format!("reconciling {} watched folder(s)", roots.len()));
        match engram.add_paths(&roots, &mut |_: AddEvent| {}) {
            Ok(report) => {
                state.files_indexed += (report.added + report.updated) as u64;
                state.files_removed += report.removed as u64;
                log(&format!(
                    "reconciled: {} new, {} changed, {} removed, {} unchanged, {} skipped as before (unchanged since they failed)",
                    report.added, report.updated, report.removed, report.unchanged, report.skipped_as_before
                ));
                log_worker_failures(&report, log);
            }
            Err(e) => {
                failed(&mut state, log, "reconciling the watched folders", &e);
                pending.extend(roots.iter().cloned());
                retry_at = Instant::now() + RETRY_AFTER;
            }
        }
    }
    engram.release_worker();
    embed(&mut engram, &mut state, log);
    match engram.apply_retention(now) {
        Ok(removed) => state.retention_removed += removed as u64,
        Err(e) => failed(&mut state, log, "retention", &e),
    }

    // Set while the disk is too full to keep frames: the recorder then reads nothing.
    let no_room = Arc::new(AtomicBool::new(false));
    let recorder = if engram.config().screen.capture {
        Some(record::spawn(&engram, &dir, opts.interval, tx.clone(), stop.clone(), no_room.clone()))
    } else {
        state.capture = "off: [screen] capture = false in the config".into();
        None
    };
    // Whether the user is away (no input, or the screen locked), or the screen is not
    // recorded at all: captions are written only then.
    let away = Arc::new(AtomicBool::new(recorder.is_none()));
    let captioner = if engram.config().daemon.captions {
        // Captions are a nicety: if they cannot start, the daemon goes on without them.
        match spawn_captioner(&engram, tx.clone(), stop.clone(), away.clone()) {
            Ok(thread) => {
                state.captions = "on".into();
                Some(thread)
            }
            Err(e) => {
                state.captions = format!("off: {e}");
                None
            }
        }
    } else {
        state.captions = "off: [daemon] captions = false in the config".into();
        None
    };
    let server = {
        let t = tx.clone();
        socket::serve(&dir, move |p| t.send(Msg::Request(p)).is_ok(), stop.clone())
            .map_err(|e| Error::Other(format!("could not open the daemon socket {}: {e}", socket::path(&dir).display())))?
    };
    drop(tx);
    state.ready = true;
    state_file.save(&state);
    log("ready");

    let files_cfg = engram.config().files.clone();
    let min_free = engram.config().daemon.min_free_mb.saturating_mul(1 << 20);
    let excluded = files::exclusions(&files_cfg).map_err(|e| Error::Usage(e.to_string()))?;
    let mut private = Private::default();
    // Frames that could not be written yet, oldest first, each with the frame it replaces.
    let mut unsaved: std::collections::VecDeque<(Box<Captured>, bool)> = std::collections::VecDeque::new();
    let mut last_frame: Option<i64> = None;
    // Frames are stored but the keyword index has not caught up with them yet.
    let mut index_behind = false;
    let mut last_event = Instant::now();
    let mut last_retention = Instant::now();
    let mut last_state = Instant::now();
    let mut last_disk: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Msg::Paths(paths)) => {
                pending.extend(paths);
                last_event = Instant::now();
            }
            Ok(Msg::Frame(c)) => {
                away.store(false, Ordering::Relaxed);
                private.redactions += c.redactions as u64;
                state.ocr_ms_total += c.ocr_ms;
                state.capture = "on".into();
                let continues = c.continues;
                unsaved.push_back((c, continues));
                if unsaved.len() > UNSAVED_FRAMES {
                    unsaved.pop_front();
                    log("a frame was dropped: frames could not be written for a while");
                }
                if unsaved.len() == 1 || Instant::now() >= retry_at {
                    if save_frames(&mut engram, &mut unsaved, &mut last_frame, &mut state, log) {
                        index_behind = !catch_up(&mut engram, &mut state, log);
                    }
                    if !unsaved.is_empty() || index_behind {
                        retry_at = Instant::now() + RETRY_AFTER;
                    }
                }
            }
            Ok(Msg::Started { backend }) => {
                state.capture = "on".into();
                log(&format!("recording the screen every {}s through {backend}", opts.interval));
                state.backend = backend;
            }
            Ok(Msg::Tick(what)) => {
                away.store(matches!(what, "idle" | "locked"), Ordering::Relaxed);
                match what {
                    "unchanged" => state.frames_unchanged += 1,
                    NO_WINDOW => private.frames_without_window += 1,
                    _ => {}
                }
                if state.disk_full.is_none() {
                    state.capture = if matches!(what, "unchanged" | "typing") { "on" } else { what }.into();
                }
            }
            Ok(Msg::Excluded) => {
                private.frames_excluded += 1;
                state.capture = "on".into();
            }
            Ok(Msg::CaptureOff(why)) => {
                away.store(true, Ordering::Relaxed);
                log(&format!("screen capture is off: {why}"));
                state.capture = format!("off: {why}");
            }
            Ok(Msg::Request(call)) => {
                let asked = matches!(call.request, Request::Ask(_));
                call.answer(&engram, |last| {
                    if let Response::Status(s) = last {
                        // With what the daemon keeps only in memory.
                        s.daemon = Some(State { private: Some(private.clone()), ..state.clone() });
                    }
                });
                if asked {
                    // The daemon's memory budget has no room for the language model between questions.
                    engram.unload_generator();
                }
            }
            Ok(Msg::Captioned(n)) => {
                // Counted, not logged: one line per caption would crowd the log.
                state.captioned += n as u64;
            }
            Ok(Msg::CaptionsOff(why)) => {
                log(&format!("captions are off: {why}"));
                state.captions = format!("off: {why}");
            }
            Ok(Msg::WatchError(e)) => {
                log(&format!("folder watcher: {e}"));
                state.last_error = Some(e);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if roots.is_empty() {
                    log("nothing to do: no folders to watch and screen capture is off");
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if (!unsaved.is_empty() || index_behind) && Instant::now() >= retry_at {
            if save_frames(&mut engram, &mut unsaved, &mut last_frame, &mut state, log) {
                index_behind = !catch_up(&mut engram, &mut state, log);
            }
            if !unsaved.is_empty() || index_behind {
                retry_at = Instant::now() + RETRY_AFTER;
            }
        }
        if !pending.is_empty() && last_event.elapsed() >= SETTLE && Instant::now() >= retry_at {
            let paths = std::mem::take(&mut pending);
            if let Err((e, paths)) = apply_changes(&mut engram, &roots, &files_cfg, &excluded, paths, &mut state, log) {
                failed(&mut state, log, &format!("indexing {} changed path(s)", paths.len()), &e);
                pending.extend(paths);
                retry_at = Instant::now() + RETRY_AFTER;
            }
        }
        if last_retention.elapsed() >= RETENTION_EVERY {
            match engram.apply_retention(chrono::Utc::now().timestamp()) {
                Ok(n) => state.retention_removed += n as u64,
                Err(e) => failed(&mut state, log, "retention", &e),
            }
            // Fold the write-ahead log back into the database so it does not sit at its high mark.
            if let Err(e) = engram.store().checkpoint() {
                failed(&mut state, log, "checkpoint", &e.into());
            }
            last_retention = Instant::now();
        }
        if last_disk.is_none_or(|t| t.elapsed() >= DISK_EVERY) {
            last_disk = Some(Instant::now());
            check_room(&dir, min_free, &no_room, &mut state, log);
        }
        if last_state.elapsed() >= Duration::from_secs(1) {
            state_file.save(&state);
            last_state = Instant::now();
        }
    }
    log("stopping");
    stop.store(true, Ordering::Relaxed);
    if let Some(r) = recorder {
        let _ = r.join();
        // The frame it held back while the user typed, sent as it stopped.
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Frame(c) = msg {
                state.ocr_ms_total += c.ocr_ms;
                let continues = c.continues;
                unsaved.push_back((c, continues));
            }
        }
    }
    if let Some(c) = captioner {
        let _ = c.join();
    }
    let _ = server.join();
    if !unsaved.is_empty() && !save_frames(&mut engram, &mut unsaved, &mut last_frame, &mut state, log) {
        log(&format!("{} frame(s) could not be written before stopping", unsaved.len()));
    }
    if let Err(e) = engram.store().checkpoint() {
        failed(&mut state, log, "checkpoint", &e.into());
    }
    state.running = false;
    state_file.save(&state);
    Ok(state)
}

/// Reads changed files and forgets vanished ones, in one batch.
fn apply_changes(
    engram: &mut Engram,
    roots: &[PathBuf],
    cfg: &engram::config::FilesConfig,
    excluded: &globset::GlobSet,
    paths: BTreeSet<PathBuf>,
    state: &mut State,
    log: &dyn Fn(&str),
) -> std::result::Result<(), (Error, BTreeSet<PathBuf>)> {
    let (present, gone): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| p.exists());
    let present: Vec<PathBuf> = present.into_iter().filter(|p| watch::wanted(p, roots, cfg, excluded)).collect();
    // Adding and forgetting are each done whole or not at all, and redoing either is harmless:
    // on failure every path is handed back to be tried again.
    if !present.is_empty() {
        let report = engram.add_paths(&present, &mut |_: AddEvent| {});
        engram.release_worker();
        let report = report.map_err(|e| (e, paths.clone()))?;
        let changed = report.added + report.updated;
        state.files_indexed += changed as u64;
        state.files_removed += report.removed as u64;
        if changed > 0 {
            log(&format!("indexed {changed} changed file(s)"));
        }
        log_worker_failures(&report, log);
    }
    if !gone.is_empty() {
        // One pass and one index compaction for the whole batch (a deleted folder is many events).
        let removed = engram.drop_vanished(&gone).map_err(|e| (e, paths.clone()))?;
        state.files_removed += removed as u64;
        if removed > 0 {
            log(&format!("forgot {removed} deleted or moved file(s)"));
        }
    }
    Ok(())
}

/// Says how many files the extraction worker failed on, by how: counts only, never which
/// (`engram status` lists them to the user).
fn log_worker_failures(report: &engram::AddReport, log: &dyn Fn(&str)) {
    for (reason, n) in &report.worker_failures {
        let how = match *reason {
            "timed_out" => "it ran out of time",
            "out_of_memory" => "it ran out of memory",
            _ => "it crashed",
        };
        let files = if *n == 1 { "file" } else { "files" };
        log(&format!("{n} {files} could not be read by the extraction worker ({how}); skipped until changed, see `engram status`"));
    }
}

/// Writes the frames waiting in `unsaved`, oldest first; false when one could not be written
/// (it and those after it stay to be tried again).
fn save_frames(
    engram: &mut Engram,
    unsaved: &mut std::collections::VecDeque<(Box<Captured>, bool)>,
    last_frame: &mut Option<i64>,
    state: &mut State,
    log: &dyn Fn(&str),
) -> bool {
    while let Some((c, continues)) = unsaved.front() {
        let replaces = if *continues { *last_frame } else { None };
        let id = match engram.add_frame(c, replaces) {
            Ok(id) => id,
            Err(e) => {
                failed(state, log, &format!("writing a frame ({} waiting)", unsaved.len()), &e);
                return false;
            }
        };
        *last_frame = Some(id);
        if replaces.is_some() {
            state.frames_coalesced += 1;
        } else {
            state.frames_stored += 1;
        }
        // Counts only: the log may be kept on disk (the journal), and titles are content. How
        // many words were redacted is not said either: it would tell when secrets were on screen.
        log(&format!(
            "frame {id}{}: {} words, OCR {} ms over {} kpx, {} KiB",
            replaces.map(|r| format!(" (replaces {r}: same text and more)")).unwrap_or_default(),
            c.words.len(),
            c.ocr_ms,
            c.ocr_pixels / 1000,
            (c.image.len() + c.thumb.len()) / 1024
        ));
        unsaved.pop_front();
    }
    true
}

/// Brings the keyword index and the vectors up to the store; false when the index could not
/// (its writer is busy in another process, or the disk is full) and must be tried again.
fn catch_up(engram: &mut Engram, state: &mut State, log: &dyn Fn(&str)) -> bool {
    let indexed = match engram.sync_index() {
        Ok(()) => true,
        Err(e) => {
            failed(state, log, "indexing new frames", &e);
            false
        }
    };
    embed(engram, state, log);
    indexed
}

/// Logs a failed step by what it was and the kind of error, never its message (which may name
/// a file), and keeps the kind for `status`.
fn failed(state: &mut State, log: &dyn Fn(&str), what: &str, e: &Error) {
    let msg = format!("{what} failed ({}); will try again", e.area());
    if state.last_error.as_deref() != Some(msg.as_str()) {
        log(&msg);
    }
    state.last_error = Some(msg);
}

/// Pauses capture while the data directory's disk has less than `min_free` bytes free, and
/// resumes it when room returns (with a margin, so it does not flap at the edge).
fn check_room(dir: &Path, min_free: u64, no_room: &AtomicBool, state: &mut State, log: &dyn Fn(&str)) {
    let Some(free) = free_bytes(dir) else { return };
    let mib = |b: u64| b >> 20;
    match state.disk_full {
        None if free < min_free => {
            log(&format!("the disk is nearly full ({} MiB free, {} MiB needed): screen capture paused", mib(free), mib(min_free)));
            state.disk_full = Some(free);
            state.capture = format!("paused: disk full ({} MiB free)", mib(free));
            no_room.store(true, Ordering::Relaxed);
        }
        Some(_) if free >= min_free + min_free / 4 => {
            log(&format!("room again on the disk ({} MiB free): screen capture resumed", mib(free)));
            state.disk_full = None;
            state.capture = "on".into();
            no_room.store(false, Ordering::Relaxed);
        }
        Some(_) => {
            state.disk_full = Some(free);
            state.capture = format!("paused: disk full ({} MiB free)", mib(free));
        }
        None => {}
    }
}


fn embed(engram: &mut Engram, state: &mut State, log: &dyn Fn(&str)) {
    match engram.embed_pending(&mut |_: AddEvent| {}) {
        Ok(_) => {}
        Err(Error::Embed(e)) => {
            let msg = format!("semantic search is off: {e}");
            if state.last_error.as_deref() != Some(msg.as_str()) {
                log(&msg);
                state.last_error = Some(msg);
            }
        }
        // Chunks without a vector are found again at the next try.
        Err(e) => failed(state, log, "embedding", &e),
    }
}

/// The capture state while no window has focus.
pub(super) const NO_WINDOW: &str = "no focused window";

/// Captions memories in rounds, on a store connection of its own, at the lowest priority and
/// only while `away` (the user is idle, or the screen is not recorded): a caption is a nicety,
/// never worth slowing the user's own programs or the capture, or holding the model's memory
/// while they work. The language model is loaded for a round and freed after it.
fn spawn_captioner(engram: &Engram, tx: Sender<Msg>, stop: Arc<AtomicBool>, away: Arc<AtomicBool>) -> Result<std::thread::JoinHandle<()>> {
    let mut store = engram.store().reopen()?;
    let models = engram.config().models.clone();
    let every = Duration::from_secs(engram.config().daemon.caption_every_secs.max(1));
    let thread = std::thread::Builder::new().name("caption".into());
    Ok(thread
        .spawn(move || {
            set_nice(CAPTION_NICE);
            // The model's parallel matrix products run on a pool of this thread's own, of one
            // thread, which inherits its priority (the global pool may run at normal priority).
            let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(|i| format!("caption-{i}")).build() {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Msg::CaptionsOff(format!("could not start its threads: {e}")));
                    return;
                }
            };
            loop {
                // Each round waits first: start-up (reconciling, embedding) comes before captions.
                let slept = Instant::now();
                while slept.elapsed() < every && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if !away.load(Ordering::Relaxed) {
                    continue;
                }
                // The user coming back ends the round.
                let stopped = || stop.load(Ordering::Relaxed) || !away.load(Ordering::Relaxed);
                // Rest as long as each caption took: at most half of a core, whatever the backlog.
                let mut last = Instant::now();
                let mut rest = |_, _| {
                    let _ = tx.send(Msg::Captioned(1));
                    let took = last.elapsed();
                    while last.elapsed() < took * 2 && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    last = Instant::now();
                };
                let round = pool.install(|| engram::caption_contents(&mut store, &models, usize::MAX, &stopped, &|_| {}, &mut rest));
                if let Err(e) = round {
                    let _ = tx.send(Msg::CaptionsOff(e.to_string()));
                    return;
                }
            }
        })
        .expect("the caption thread starts"))
}

/// The nice value of the caption thread: the lowest.
const CAPTION_NICE: libc::c_int = 19;

/// Sets this thread's nice value.
pub(super) fn set_nice(nice: libc::c_int) {
    // SAFETY: both calls only read or change this thread's own scheduling weight.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}

/// `daemon.json`, rewritten (atomically) only when the state changed.
struct StateFile {
    dir: PathBuf,
    last: Vec<u8>,
}

impl StateFile {
    fn save(&mut self, state: &State) {
        let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        if bytes == self.last {
            return;
        }
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let ok = fs::File::create(&tmp).and_then(|mut f| f.write_all(&bytes)).and_then(|_| fs::rename(&tmp, self.dir.join(STATE_FILE)));
        match ok {
            Ok(()) => self.last = bytes,
            Err(e) => eprintln!("engram daemon: could not write {}: {e}", self.dir.join(STATE_FILE).display()),
        }
    }
}

