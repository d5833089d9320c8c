//! Shared helpers for the end-to-end tests of the real `flameprof` binary.
//!
//! The binaries are expected in `target/release/` (built by
//! `cargo build --release -p flameprof -p flameprof-examples` before
//! `cargo test`). Tests need root and BPF: [`require_root`] fails the test
//! when `CI` is set and prints a loud SKIPPED line otherwise.
//!
//! One module per job; everything is re-exported here, so a test file needs
//! only `use flameprof_tests::*;`.

pub mod binaries;
pub mod bombs;
pub mod bpf;
pub mod c_program;
pub mod debuginfod;
pub mod failure;
pub mod folded;
pub mod kernel;
pub mod leaf_shares;
pub mod memory;
pub mod process;
pub mod retry;
pub mod root;
pub mod summary;
pub mod temp_dir;
pub mod tolerance;

pub use binaries::*;
pub use bombs::*;
pub use bpf::*;
pub use c_program::*;
pub use debuginfod::*;
pub use failure::*;
pub use folded::*;
pub use kernel::*;
pub use leaf_shares::*;
pub use memory::*;
pub use process::*;
pub use retry::*;
pub use root::*;
pub use summary::*;
pub use temp_dir::*;
pub use tolerance::*;
