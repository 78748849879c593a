//! The worker's sandbox, applied before it reads a request: resource limits, no core dumps, not
//! dumpable, killed with its parent, and a seccomp filter. The filter allows by default (the
//! readers are large C and Rust libraries whose system calls are not ours to list) and refuses
//! what a reader never needs and an exploited one would: the network, new processes and
//! programs, other processes, and every change to the file system. Reading files stays allowed
//! (poppler's CMaps, Tesseract's tessdata, fontconfig); opening one for writing, creating or
//! truncating one is refused with EACCES, the rest with EPERM. `clone3` and `openat2`, whose
//! flags sit in a struct a filter cannot read, answer ENOSYS, so glibc falls back to `clone`
//! and `openat`, which are filtered by their flags.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// Sets the resource limits: address space, no files written, no core, a CPU backstop.
pub fn limit_resources(memory_mb: u64) -> Result<(), String> {
    let bytes = memory_mb.saturating_mul(1 << 20);
    set(libc::RLIMIT_AS, bytes, bytes, "RLIMIT_AS")?;
    set(libc::RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE")?;
    // A write past it (to a memfd, say) then fails with EFBIG instead of ending the worker.
    // SAFETY: sets this process's disposition of one signal.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    set(libc::RLIMIT_CORE, 0, 0, "RLIMIT_CORE")?;
    // Re-armed for each file (see `arm_cpu`); until then, a minute for start-up.
    arm_cpu(60)
}

/// Lets the next file use `secs` more CPU seconds: past them the kernel sends SIGXCPU, which
/// ends the worker (the parent's wall clock is the main limit; this is the backstop).
pub fn arm_cpu(secs: u64) -> Result<(), String> {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let used = usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64 + 1;
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into `current`.
    unsafe { libc::getrlimit(libc::RLIMIT_CPU, &mut current) };
    let soft = (used + secs).min(current.rlim_max);
    set(libc::RLIMIT_CPU, soft, current.rlim_max, "RLIMIT_CPU")
}

fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64, name: &str) -> Result<(), String> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: changes only this process's own limit.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Killed when the parent dies (SIGKILL), and not dumpable. Returns false when the parent
/// `parent` is already gone (the death signal would never come).
pub fn tie_to_parent(parent: Option<i32>) -> bool {
    // SAFETY: prctl flags of this process only.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    // SAFETY: getppid only reads.
    parent.is_none_or(|p| unsafe { libc::getppid() } == p)
}

/// Installs the system-call filters (and with them PR_SET_NO_NEW_PRIVS). Each filter answers
/// one errno; the kernel applies all of them. On an architecture seccompiler does not know
/// (it knows x86_64, aarch64 and riscv64) the worker runs with its limits alone.
pub fn filter_syscalls() -> Result<(), String> {
    let Ok(arch) = seccompiler::TargetArch::try_from(std::env::consts::ARCH) else { return Ok(()) };
    // SAFETY: getpid only reads.
    let me = unsafe { libc::getpid() } as u64;
    let programs = [
        (denied(me), libc::EPERM),
        (write_opens(), libc::EACCES),
        // glibc falls back to clone (filtered above) and openat when these are missing.
        (always(&[libc::SYS_clone3, libc::SYS_openat2]), libc::ENOSYS),
    ];
    for (rules, errno) in programs {
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
            .map_err(|e| format!("seccomp: {e}"))?;
        let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))?;
        seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64, len: SeccompCmpArgLen) -> SeccompCondition {
    SeccompCondition::new(arg, len, op, value).expect("a valid condition")
}

fn rule(conditions: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conditions).expect("a valid rule")
}

fn always(calls: &[libc::c_long]) -> BTreeMap<i64, Vec<SeccompRule>> {
    calls.iter().map(|&c| (c, Vec::new())).collect()
}

/// Refused outright (an empty rule list matches every call), or when aimed elsewhere.
fn denied(me: u64) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut calls = vec![
        // The network, and sockets of any kind.
        libc::SYS_socket, libc::SYS_socketpair, libc::SYS_connect, libc::SYS_bind, libc::SYS_listen, libc::SYS_accept,
        libc::SYS_accept4, libc::SYS_sendto, libc::SYS_sendmsg, libc::SYS_sendmmsg,
        // Programs and other processes.
        libc::SYS_execve, libc::SYS_execveat, libc::SYS_ptrace, libc::SYS_process_vm_readv, libc::SYS_process_vm_writev,
        libc::SYS_pidfd_open, libc::SYS_pidfd_send_signal, libc::SYS_pidfd_getfd, libc::SYS_process_madvise, libc::SYS_kcmp,
        libc::SYS_tkill, libc::SYS_unshare, libc::SYS_setns,
        // Changes to the file system.
        libc::SYS_unlinkat, libc::SYS_renameat, libc::SYS_renameat2, libc::SYS_mkdirat, libc::SYS_truncate,
        libc::SYS_fchmod, libc::SYS_fchmodat, libc::SYS_fchown, libc::SYS_fchownat, libc::SYS_linkat, libc::SYS_symlinkat,
        libc::SYS_mknodat, libc::SYS_utimensat, libc::SYS_setxattr, libc::SYS_lsetxattr, libc::SYS_fsetxattr,
        libc::SYS_removexattr, libc::SYS_lremovexattr, libc::SYS_fremovexattr, libc::SYS_mount, libc::SYS_umount2,
        libc::SYS_pivot_root, libc::SYS_chroot, libc::SYS_name_to_handle_at, libc::SYS_open_by_handle_at,
        // Kernel interfaces no reader needs (io_uring could open files past this filter).
        libc::SYS_bpf, libc::SYS_perf_event_open, libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key,
        libc::SYS_userfaultfd, libc::SYS_io_uring_setup, libc::SYS_io_uring_enter, libc::SYS_io_uring_register,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        libc::SYS_fork, libc::SYS_vfork, libc::SYS_unlink, libc::SYS_rename, libc::SYS_mkdir, libc::SYS_rmdir,
        libc::SYS_chmod, libc::SYS_chown, libc::SYS_lchown, libc::SYS_link, libc::SYS_symlink, libc::SYS_mknod,
        libc::SYS_utime, libc::SYS_utimes, libc::SYS_futimesat,
    ]);
    let mut rules = always(&calls);
    // New processes: clone without CLONE_THREAD (fork, posix_spawn). Threads stay allowed.
    let no_thread = cond(0, SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64), 0, SeccompCmpArgLen::Qword);
    rules.insert(libc::SYS_clone, vec![rule(vec![no_thread])]);
    // Signals to any process but this one (its own threads are signalled with tgkill(me, …)).
    let elsewhere = || rule(vec![cond(0, SeccompCmpOp::Ne, me, SeccompCmpArgLen::Dword)]);
    rules.insert(libc::SYS_kill, vec![elsewhere()]);
    rules.insert(libc::SYS_tgkill, vec![elsewhere()]);
    rules
}

/// Opening a file to write, create or truncate it.
fn write_opens() -> BTreeMap<i64, Vec<SeccompRule>> {
    let writing = |flags_arg: u8| {
        [libc::O_WRONLY, libc::O_RDWR, libc::O_CREAT, libc::O_TRUNC]
            .iter()
            .map(|&bit| rule(vec![cond(flags_arg, SeccompCmpOp::MaskedEq(bit as u64), bit as u64, SeccompCmpArgLen::Dword)]))
            .collect::<Vec<_>>()
    };
    let mut rules = BTreeMap::new();
    rules.insert(libc::SYS_openat, writing(2));
    #[cfg(target_arch = "x86_64")]
    {
        rules.insert(libc::SYS_open, writing(1));
        rules.insert(libc::SYS_creat, Vec::new());
    }
    rules
}
