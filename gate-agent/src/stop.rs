//! The agent's stop signal. Every thread of the agent (inputs, the decision
//! loop, the sync task, the status server) watches the same one; it lives in
//! its own module so each of them can name it without depending on the agent
//! that starts them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stop signal shared by every thread of the agent.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
