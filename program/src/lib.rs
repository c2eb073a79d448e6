//! The on-chain program (being written).
