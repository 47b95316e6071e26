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

/// Size of a transparent huge page on x86-64 and most arm64 kernels.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Asks Linux to back the memory under `spans` (each widened to whole huge
/// pages) with transparent huge pages, collapsing the pages already there
/// now (`MADV_COLLAPSE`, Linux 6.1). Decoding streams every weight from
/// memory once per token; on 4 KiB pages the CPU's prefetchers stop at
/// each page, and `SmolLM2` sampled a fifth slower (`benches/generate.rs`).
/// Contents are unchanged; a kernel that refuses (older, or THP off) only
/// leaves the pages as they were.
pub(crate) fn huge_pages<'a>(spans: impl IntoIterator<Item = &'a [f32]>) {
    #[cfg(target_os = "linux")]
    {
        let mut ranges: Vec<(usize, usize)> = spans
            .into_iter()
            .filter(|s| std::mem::size_of_val(*s) >= HUGE_PAGE)
            .map(|s| {
                let start = s.as_ptr() as usize;
                let end = start + std::mem::size_of_val(s);
                (
                    start / HUGE_PAGE * HUGE_PAGE,
                    end.next_multiple_of(HUGE_PAGE),
                )
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        for (start, end) in merged {
            for advice in [libc::MADV_HUGEPAGE, MADV_COLLAPSE] {
                // SAFETY: both pieces of advice keep the contents of every
                // page in the range (they change only how pages are
                // mapped) and fail, doing nothing, where a part of the
                // range is not ordinary anonymous memory; the range starts
                // on a page boundary, as madvise requires.
                unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) };
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = spans;
}

/// `MADV_COLLAPSE` (Linux 6.1; the `libc` crate names it for glibc only).
#[cfg(target_os = "linux")]
const MADV_COLLAPSE: libc::c_int = 25;
