//! The fuzz harnesses: one function per target, shared by the libFuzzer
//! targets in `fuzz_targets/` and by the stable corpus regression tests of
//! `shared` and `gate-agent`, which include these files.

pub mod corpus;
pub mod gate;
pub mod protocol;
