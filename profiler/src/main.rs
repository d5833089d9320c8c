//! The flameprof binary: everything is in the library (`lib.rs`).
fn main() {
    flameprof::main()
}
