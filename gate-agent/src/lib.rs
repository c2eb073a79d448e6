//! The gate agent (being written).
