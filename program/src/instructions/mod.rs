//! One module per instruction: its `Accounts` struct and its handler.

pub mod add_validator;
pub mod buy_ticket;
pub mod cancel_email_transfer;
pub mod cancel_event;
pub mod claim_email_transfer;
pub mod close_event;
pub mod close_ticket;
pub mod create_event;
pub mod expire_email_transfer;
pub mod freeze_ticket;
pub mod issue;
pub mod mint_tickets;
pub mod open_email_transfer;
pub mod remove_validator;
pub mod revoke_ticket;
pub mod transfer_ticket;
pub mod unfreeze_ticket;
pub mod update_event;
pub mod validate_entries;
pub mod withdraw_proceeds;

pub use buy_ticket::*;
pub use cancel_email_transfer::*;
pub use claim_email_transfer::*;
pub use close_event::*;
pub use close_ticket::*;
pub use create_event::*;
pub use expire_email_transfer::*;
pub use freeze_ticket::*;
pub use mint_tickets::*;
pub use open_email_transfer::*;
pub use revoke_ticket::*;
pub use transfer_ticket::*;
pub use update_event::*;
pub use validate_entries::*;
pub use withdraw_proceeds::*;
