//! The protocol crate of the gate system: what every other crate agrees on.
//!
//! It owns four things:
//! - [`credential`]: the ticket credential a QR code carries, its compact binary
//!   layout, its keyboard-safe text form, and its ed25519 signatures (issuer and
//!   optional rotating holder proof, signed by the owner's wallet or by a
//!   session key the wallet delegated);
//! - [`admission`]: the admission rules as one pure function, [`admission::decide`],
//!   used by the gate offline and by the server online so they never disagree;
//! - [`presence`]: where a holder is, folded from every gate's scans of a
//!   ticket (with the conflicts), and how a gate merges the server's view;
//! - [`wire`]: the messages between gate agents and the sync server, and
//!   [`device_request`]: the check of a gate's signed HTTP request.
//!
//! It must stay light enough for the gate: no Solana SDK, no async runtime, no
//! database, no HTTP and no I/O of any kind. Time is always passed in.
//!
//! The optional `openapi` feature derives OpenAPI schemas of the JSON wire
//! types for the sync server's API document (descriptions only, no I/O); the
//! gate does not enable it.

pub mod admission;
pub mod credential;
pub mod device_request;
pub mod keys;
pub mod presence;
pub mod wire;

pub use admission::{
    Admission, AdmissionKind, Decision, Direction, DoorsWindow, EventStatus, GatePolicy,
    HolderProofPolicy, Presence, Presented, ReentryPolicy, Rejection, TicketState, TicketStatus,
    TierGates, UnknownTicketPolicy, decide, evaluate, outcome_opens, review_admission,
};
pub use credential::{
    CheckedHolderProof, Credential, CredentialBody, CredentialError, Delegation, DelegationRequest,
    DelegationScope, HolderProof, IssuerKeys, VerifiedCredential,
};
pub use keys::PublicKeyBytes;

/// Seconds since the Unix epoch. Every rule takes time as a parameter; nothing
/// in this crate reads a clock.
pub type UnixSeconds = i64;
