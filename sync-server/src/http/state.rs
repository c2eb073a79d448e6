//! What every handler is given: the [`Services`] and the parts only the
//! HTTP layer uses (the rate limiter). It derefs to [`Services`], so a
//! handler passes `&state` wherever a service wants `&Services`.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use crate::adapters::ratelimit::{InProcessLimiter, RateLimiter};
use crate::clock::Clock;
use crate::config::Config;
use crate::services::Services;
use crate::services::organizer::ChainContext;
use crate::store::Store;

/// Everything a request handler may touch.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Where the ticketing API's rate-limit budgets live: in this process
    /// unless the configuration names a shared Redis.
    pub rate_limiter: Arc<dyn RateLimiter>,
}

impl AppState {
    pub fn new(
        store: Store,
        config: Config,
        server_key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            services: Services::new(store, config, server_key, clock),
            rate_limiter: Arc::new(InProcessLimiter::new()),
        }
    }

    /// The same state with `chain` attached.
    pub fn with_chain(mut self, chain: ChainContext) -> Self {
        self.services.chain = Some(Arc::new(chain));
        self
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Services {
        &mut self.services
    }
}
