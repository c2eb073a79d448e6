//! placeholder while the shared crate is being written
