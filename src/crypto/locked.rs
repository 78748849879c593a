//! Memory for keys: a value on pages of its own that are locked in RAM (never swapped out, where
//! the system allows it), left out of core dumps, and wiped when dropped.
//!
//! Why pages of their own: `mlock` and `MADV_DONTDUMP` work on whole pages, and a key moved about
//! by ordinary Rust moves would leave copies behind. A `Locked<T>` never moves its value.
//!
//! Not for: values that own heap memory (a `Vec` inside would live outside the page).

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether every lock so far succeeded (an unprivileged user's RLIMIT_MEMLOCK may refuse).
static ALL_LOCKED: AtomicBool = AtomicBool::new(true);

pub struct Locked<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: `Locked<T>` owns its value exactly as a `Box<T>` would.
unsafe impl<T: Send> Send for Locked<T> {}
// SAFETY: as above; shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for Locked<T> {}

impl<T> Locked<T> {
    /// Moves `value` onto locked pages. The caller should wipe any copy it still holds.
    pub fn new(value: T) -> Locked<T> {
        let page = page_size();
        let len = std::mem::size_of::<T>().max(1).div_ceil(page) * page;
        assert!(std::mem::align_of::<T>() <= page, "a page is aligned for any key type");
        // SAFETY: an anonymous private mapping of `len` bytes; checked below.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if ptr == libc::MAP_FAILED {
            // Out of address space: there is nothing sensible to go on with.
            panic!("could not map memory for a key: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `ptr` is a fresh mapping of `len` bytes that we own.
        unsafe {
            if libc::mlock(ptr, len) != 0 {
                ALL_LOCKED.store(false, Ordering::Relaxed);
            }
            libc::madvise(ptr, len, libc::MADV_DONTDUMP);
            std::ptr::write(ptr as *mut T, value);
        }
        Locked { ptr: ptr as *mut T, len }
    }
}

/// Whether every key page so far could be locked in RAM.
pub fn all_locked() -> bool {
    ALL_LOCKED.load(Ordering::Relaxed)
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

impl<T> std::ops::Deref for Locked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` holds a live `T` until drop.
        unsafe { &*self.ptr }
    }
}

impl<T> std::ops::DerefMut for Locked<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` is unique.
        unsafe { &mut *self.ptr }
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        // SAFETY: drops the value in place once, wipes every byte of the mapping with volatile
        // writes (so they are not optimised away), then unmaps exactly what `new` mapped.
        unsafe {
            std::ptr::drop_in_place(self.ptr);
            let bytes = self.ptr as *mut u8;
            for i in 0..self.len {
                std::ptr::write_volatile(bytes.add(i), 0);
            }
            libc::munlock(self.ptr as *mut libc::c_void, self.len);
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_value_reads_back_and_is_flagged_out_of_dumps() {
        let mut k = Locked::new([7u8; 32]);
        assert_eq!(*k, [7u8; 32]);
        k[0] = 1;
        assert_eq!(k[0], 1);
        // The mapping is marked "dd" (do not dump) in /proc/self/smaps.
        let addr = format!("{:x}-", k.ptr as usize);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let block = smaps.split_inclusive('\n').skip_while(|l| !l.starts_with(&addr)).take_while(|l| !l.starts_with("VmFlags")).count();
        let flags = smaps.lines().skip_while(|l| !l.starts_with(&addr)).nth(block).unwrap_or("");
        assert!(flags.starts_with("VmFlags") && flags.contains(" dd"), "{flags}");
    }
}
