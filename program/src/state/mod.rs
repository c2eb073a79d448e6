//! Accounts owned by the program.

mod delegation;
mod event;
mod ticket;

pub use delegation::*;
pub use event::*;
pub use ticket::*;
