//! Gives back the free heap that starting left behind, once.
//!
//! Parsing the command line, reading the state and starting the child allocate and free on the
//! heap; glibc keeps what was freed for later allocations. Returned to the kernel once, just
//! before the loop first blocks with the child started, that is about 56 KiB of the 292 KiB of
//! anonymous memory an idle restartd holds (BENCHMARKS.md, "Tricks retired"): real memory, not
//! a figure, and no extra wakeup or system call later. Where the C library has no `malloc_trim`
//! (musl), nothing is given back.

/// Returns free heap to the kernel (`malloc_trim`).
pub fn give_back() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only hands memory the allocator holds free back to the kernel.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
