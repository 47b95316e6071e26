//! Keeps freed activation buffers inside the process. By default glibc's
//! malloc shrinks a heap as soon as its top is free, so each training step
//! faulted its activations in again, page by page, with a TLB shootdown to
//! the other cores per fault: a tenth of a step's time on 2 cores
//! (`examples/profile_step.rs`, small shape: 0.67 s of system time in 3.1 s,
//! 0.23 s with this). A larger top pad keeps that much free memory at each
//! heap's top for the next step to reuse.

#![allow(unsafe_code)]

/// Free memory kept at the top of each malloc heap (and added to each
/// heap extension).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: i32 = 64 << 20;

/// Blocks below this come from a heap, not a mapping of their own (glibc's
/// largest allowed value; setting any parameter turns off its dynamic
/// threshold, which would otherwise rise towards this).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Sets malloc's parameters once; does nothing off glibc.
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes malloc's tuning parameters (under
    // malloc's own lock); it takes plain integers and touches no memory of
    // ours.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
    }
}
