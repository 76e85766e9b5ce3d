//! Host build of optprobe's pure logic: these are the module's own files,
//! compiled unchanged (no copies), so `cargo test` tests what the kernel runs.
#![no_std]

#[path = "../../../src/insn.rs"]
pub mod insn;
#[path = "../../../src/control.rs"]
pub mod control;
#[path = "../../../src/tramp.rs"]
pub mod tramp;
#[path = "../../../src/fixed_str.rs"]
pub mod fixed_str;
