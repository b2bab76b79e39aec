//! Giving freed memory back to the system.
//!
//! A call's media threads allocate and free many large buffers (a 640x480 picture is 460 KB)
//! from glibc's per-thread arenas, and glibc keeps what they free for reuse: its mmap
//! threshold grows to the largest buffer freed, so later pictures come from the arenas too.
//! Measured here, a `callisto answer` taking 640x480 WebRTC video calls one after another
//! held about 25 MB resident after the first call, 55 MB after four, 64 MB after six and
//! 68 MB after thirty, all but a few megabytes of it free memory. Fixing the threshold
//! instead would cost a page fault per page of every picture (about 0.7 % of a core more in
//! a video call), so Callisto returns the free memory once, when a call's media has stopped:
//! the same callee then stays at 23–28 MB (`tests/call_memory.rs` checks the growth over four
//! calls).

/// Returns the free memory of glibc's arenas to the system (`malloc_trim(0)`); elsewhere,
/// nothing. It walks every arena under its lock: call it when a call's media has stopped,
/// never on a media thread.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own allocator state, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
