//! Process hardening, done first in every command: no core dumps (a crash in Tesseract,
//! Leptonica or libwebp would otherwise write the data key and decrypted text to disk), no
//! attaching or /proc reading by the user's other processes, and panics reported by where they
//! happened, never by what they said (a parser's message may quote the document).
//!
//! Not for: key memory (see `crypto::locked`) or what logs may say (each module keeps its own
//! lines free of content).

use std::io::Write;

/// The protections in force in this process, as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Protections {
    /// RLIMIT_CORE is 0: a crash writes no core file.
    pub core_dumps_off: bool,
    /// PR_SET_DUMPABLE is 0: no core dump, no ptrace, /proc/PID files owned by root.
    pub not_dumpable: bool,
    /// Every key page so far was locked in RAM.
    pub keys_locked: bool,
}

/// Turns core dumps and ptrace off and installs the quiet panic hook.
pub fn apply() {
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: both calls change only this process's own limits and flags.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_else(|| "an unknown place".into());
        let thread = std::thread::current().name().unwrap_or("a worker").to_string();
        let _ = writeln!(std::io::stderr(), "engram: {} at {at} (thread {thread})", crate::INTERNAL_ERROR);
    }));
}

/// What is in force now.
pub fn protections() -> Protections {
    let mut core = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
    // SAFETY: getrlimit writes into `core`; prctl(PR_GET_DUMPABLE) only reads a flag.
    let (core_ok, dumpable) = unsafe { (libc::getrlimit(libc::RLIMIT_CORE, &mut core) == 0, libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0)) };
    Protections { core_dumps_off: core_ok && core.rlim_cur == 0, not_dumpable: dumpable == 0, keys_locked: crate::crypto::locked::all_locked() }
}
