//! The BPF side: thin entry points over `try_*` functions, so that every
//! failure is counted in COUNTERS instead of vanishing.
mod code_unmap;
mod exec;
mod filter;
mod follow_fork;
mod leaf;
mod maps;
mod off_cpu;
mod on_cpu;
mod process;
mod registers;
mod stack;
mod unwind;
mod user_copy;
mod waker;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here.
    loop {}
}
