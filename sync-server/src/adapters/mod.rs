//! Adapters to the world outside the server's own storage and chain: the
//! mail relay, the card payment provider, rate-limit budgets (in process or
//! in Redis) and the short-lived cache of public reads. Each is a trait
//! chosen by configuration, so tests swap in a stand-in that speaks the same
//! protocol. Adapters know nothing of HTTP handlers or services.

pub mod cache;
pub mod mail;
pub mod payments;
pub mod ratelimit;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the adapters' traits (mailer, payment provider, rate
/// limiter) can be used as trait objects chosen by configuration.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
