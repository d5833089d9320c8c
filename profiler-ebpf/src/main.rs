//! flameprof's BPF programs. Built only for `bpfel-unknown-none` (see
//! profiler/build.rs); on the host this binary is an empty stub so that
//! workspace-wide commands still build.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Atomic adds on shared map values (see bpf/maps.rs).
#![cfg_attr(target_arch = "bpf", allow(internal_features), feature(core_intrinsics))]

#[cfg(target_arch = "bpf")]
mod bpf;

#[cfg(not(target_arch = "bpf"))]
fn main() {}
