//! The program's tests, in one test binary (each binary links the whole in-process runtime).
//! Native program-test with the real SPL Token, Token-2022 and associated token programs; every test
//! asserts account state and token balances.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers, not only #[test] functions: a failed step must fail the test"
)]

mod common;
mod entries;
mod events;
mod minting;
mod organizer;
mod standards;
mod transfers;
