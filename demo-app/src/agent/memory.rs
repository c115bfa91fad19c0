//! Giving memory back to the OS after large requests.
//!
//! glibc's malloc keeps what is freed. A 4 MiB body buffer comes from `mmap` the first time,
//! but freeing it raises the mmap threshold to its size (glibc's dynamic threshold, up to
//! 32 MiB) and the trim threshold to twice that, so the next buffers of that size are carved
//! out of the arenas' heaps, and once freed they stay there, resident: tokio's worker threads
//! allocate from their own arenas, whose free top chunk glibc shrinks only above the (now
//! 8 MiB) trim threshold, and `malloc_trim` does not touch a thread arena's top chunk at all
//! (glibc 2.36 malloc/malloc.c `mtrim` calls `systrim` for the main arena only; arena.c
//! `heap_trim` compares the top chunk with `trim_threshold`). Measured: after twelve refused
//! 4 MiB requests the agent kept 4.3 MiB more anonymous memory, with three trims done.
//! So two things, on glibc only (musl gives large blocks back by itself):
//!
//! - [`unmap_large_allocations`] fixes the mmap threshold at [`LARGE`] (which also stops the
//!   dynamic raising of both thresholds): every buffer of a large request or batch is its own
//!   mapping, unmapped when freed. It costs an mmap/munmap and fresh page faults per such
//!   buffer, which is small next to filling a megabyte, and large buffers are a few per
//!   request;
//! - [`ReturnToOs`] calls `malloc_trim(0)` after large requests, for the free pages left
//!   between the many small allocations of a large request (a decoded OTLP/JSON body, the
//!   exporter's per-call state). It is not free, so it runs only when it pays:
//!   - only after a request or batch of at least [`LARGE`] bytes: the everyday small requests'
//!     memory is what the allocator reuses best, and there is little of it to give back;
//!   - at most once per [`MIN_INTERVAL`]: a trim locks each arena in turn (threads that
//!     allocate meanwhile wait) and touches every free chunk, and the pages it returns are
//!     faulted in and zeroed again by the next large request, so under a stream of them a
//!     trim per request would cost CPU for nothing;
//!   - always once after the last large request of a burst (one that comes during the pause
//!     is remembered), so the memory comes back within about `MIN_INTERVAL` of the burst.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Requests or batches at least this large ask for a trim once their buffers are freed.
pub const LARGE: usize = 1024 * 1024;
/// Trims are at least this far apart.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// Wait this long after being asked: the request that asked is still dropping its buffers
/// (it asks from its handler), and others of a burst end meanwhile.
const SETTLE: Duration = Duration::from_millis(50);

/// Asked by the intake and the workers, carried out by [`ReturnToOs::run`].
#[derive(Debug, Default)]
pub struct ReturnToOs {
    wanted: Notify,
}

impl ReturnToOs {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Buffers of `bytes` (a request's, or a sent batch's) were freed, or are being freed.
    pub fn freed(&self, bytes: usize) {
        if bytes >= LARGE {
            // One stored permit at most: many large requests still make one trim.
            self.wanted.notify_one();
        }
    }

    /// Trims after large requests, at most once per [`MIN_INTERVAL`], until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        self.run_with(stop, trim).await;
    }

    async fn run_with(self: Arc<Self>, stop: CancellationToken, trim: fn() -> bool) {
        loop {
            tokio::select! {
                () = self.wanted.notified() => {}
                () = stop.cancelled() => return,
            }
            tokio::time::sleep(SETTLE).await;
            // Walking the arenas takes a while on a large heap: not on a runtime thread.
            match tokio::task::spawn_blocking(trim).await {
                Ok(released) => tracing::debug!(released, "freed memory given back to the OS"),
                Err(e) => tracing::warn!(error = %e, "giving memory back to the OS failed"),
            }
            tokio::time::sleep(MIN_INTERVAL).await;
        }
    }
}

/// Makes allocations of at least [`LARGE`] bytes their own mappings, unmapped when freed,
/// whatever was allocated and freed before. Call once, when the agent starts.
pub fn unmap_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(LARGE).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes no pointers and only sets a parameter of glibc's malloc
        // (under its lock); it may be called at any time.
        let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if done != 1 {
            tracing::warn!(threshold, "could not set malloc's mmap threshold");
        }
    }
}

/// Releases the free memory of every malloc arena; true when some was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointers; it works on glibc's own arenas under their
    // locks, so it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static TRIMS: AtomicUsize = AtomicUsize::new(0);

    fn counted_trim() -> bool {
        TRIMS.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Waits (real time) until `n` trims were done; returns when.
    async fn until_trims(n: usize) -> tokio::time::Instant {
        let started = tokio::time::Instant::now();
        while TRIMS.load(Ordering::SeqCst) < n {
            assert!(started.elapsed() < Duration::from_secs(10), "no trim {n}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::Instant::now()
    }

    #[tokio::test]
    async fn one_trim_per_burst_at_most_one_per_interval_and_one_after_the_last() {
        let memory = ReturnToOs::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(memory.clone().run_with(stop.clone(), counted_trim));
        let trims = || TRIMS.load(Ordering::SeqCst);

        memory.freed(LARGE - 1);
        tokio::time::sleep(MIN_INTERVAL * 2).await;
        assert_eq!(trims(), 0, "a small request asks for nothing");

        for _ in 0..100 {
            memory.freed(LARGE);
        }
        let first = until_trims(1).await;
        // A large request during the pause after a trim: remembered, trimmed after it.
        memory.freed(LARGE);
        let second = until_trims(2).await;
        // They are MIN_INTERVAL + SETTLE apart; seen late by up to the polls' delays (without
        // the pause, the second would follow within SETTLE).
        assert!(
            second.duration_since(first) >= MIN_INTERVAL / 2,
            "at most one trim per interval"
        );
        tokio::time::sleep(MIN_INTERVAL * 3).await;
        assert_eq!(
            trims(),
            2,
            "one trim per burst, none while nothing is asked"
        );

        stop.cancel();
        task.await.unwrap();
    }
}
