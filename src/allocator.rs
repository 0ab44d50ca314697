//! The process's `malloc` settings for burn-flex workloads.
//!
//! burn-flex writes the result of every tensor operation into a newly
//! allocated buffer. glibc's `malloc` serves a request above its mmap
//! threshold (128 KiB at start, raised as such blocks are freed, never past
//! 32 MiB) with a fresh mapping from the kernel and unmaps it on `free`, and
//! it hands memory at the top of its heaps back (`trim`); the next
//! operation then page-faults through new pages, which the kernel zeroes
//! first. In `perf` of a ConvNeXt-T pass, page faults, `memmove` and
//! `memset` on fresh pages were about 15 % of the samples.
//! [`keep_freed_memory`] raises the mmap threshold to its maximum and turns
//! trimming off, so that freed buffers are reused. Measured
//! (docs/benchmarks.md, "2026-12-07: the programs keep freed memory"):
//! GhostNet's zoo pass 44 % shorter, EdgeNeXt's 30 %, ConvNeXt's 12 %, and
//! the BoT ResNet-50 training step 7–8 %. The price: the process keeps
//! the memory it freed (its resident size stays near its peak) until it
//! exits.
//!
//! The `reid` command, the examples and the benchmarks call it first thing.
//! A program of your own can call it too; libraries should leave the
//! process's allocator settings to the program. Elsewhere than Linux with
//! glibc it does nothing. (mimalloc as the global allocator was measured
//! too: about as fast for inference, but 4–30 % slower for the BoT
//! training steps.)

/// The largest mmap threshold glibc accepts on 64-bit targets (32 MiB);
/// requests above it are still served by their own mappings.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Sets glibc's `M_MMAP_THRESHOLD` to [`MMAP_THRESHOLD`] and
/// `M_TRIM_THRESHOLD` to the largest value it takes (trimming off), for the
/// whole process. Returns whether both settings were applied (`false`
/// where the C library is not glibc). Safe to call more than once and from
/// any thread.
pub fn keep_freed_memory() -> bool {
    imp::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use super::MMAP_THRESHOLD;

    pub fn keep_freed_memory() -> bool {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes malloc's parameters under its own
        // lock; any values are accepted or refused (return 0).
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        // SAFETY: as above.
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) };
        mmap == 1 && trim == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn keep_freed_memory() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_both_settings_and_large_buffers_still_work() {
        assert!(keep_freed_memory());
        assert!(keep_freed_memory(), "a second call is accepted too");
        // Buffers below, at and above the threshold are usable and freed.
        for len in [
            1usize << 10,
            MMAP_THRESHOLD / 4,
            MMAP_THRESHOLD / 4 + 1,
            3 << 22,
        ] {
            let v = vec![1.5f32; len];
            assert_eq!(
                v.iter().map(|&x| f64::from(x)).sum::<f64>(),
                1.5 * len as f64
            );
        }
    }
}
