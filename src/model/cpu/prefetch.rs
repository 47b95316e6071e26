//! A hint to the CPU to start loading memory that a loop reads soon.

#![allow(unsafe_code)]

/// Asks for the cache line holding `data[at]` (nothing when `at` is past
/// the end, or off x86-64).
#[allow(clippy::inline_always)]
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = data.get(at) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing into the program and cannot
        // fault; the address is that of an element of `data`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}
