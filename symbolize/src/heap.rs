//! How much heap the process has in use, as the allocator counts it. Parsed
//! files are bounded by it: what blazesym builds for a file (line tables,
//! decompressed DWARF, sorted symbols) is unrelated to the file's size.

/// Bytes allocated and not yet freed (glibc's `mallinfo2`: heap chunks in
/// use plus chunks mapped on their own), over every arena. 0 where the
/// allocator cannot say (then nothing is evicted for it).
pub(crate) fn in_use() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's counters; it takes
        // the arenas' locks itself.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as u64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

/// Hands freed heap pages back to the kernel. Freed memory otherwise stays
/// in the process (and its RSS) for later allocations; after the files'
/// parsed state is dropped it is tens of MiB.
pub(crate) fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn an_allocation_shows_in_the_heap_in_use_until_freed() {
        let before = super::in_use();
        let block = vec![1u8; 8 << 20];
        let during = super::in_use();
        drop(std::hint::black_box(block));
        let after = super::in_use();
        assert!(during >= before + (8 << 20), "{before} then {during}");
        assert!(after + (8 << 20) <= during, "{during} then {after}");
    }
}
