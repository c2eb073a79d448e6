//! The one place that starts and stops the server's background workers:
//! the replay worker (when `[replay] enabled`), and, with a chain, the
//! purchase worker, the mint worker (finishing organizer mints a crash cut
//! off), the cancellation worker (finishing event cancellations) and the
//! email-transfer expiry sweep. Each worker owns
//! its loop and stops at the shutdown signal after its current round.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Services;

/// The running workers of one server instance.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts every worker `services` is configured for.
    pub fn start(services: &Services) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if services.config.replay.enabled {
            tasks.push(tokio::spawn(super::replay::run(
                services.clone(),
                stopped.clone(),
            )));
        }
        if services.chain.is_some() {
            tasks.push(tokio::spawn(super::purchases::run(
                services.clone(),
                stopped.clone(),
            )));
            tasks.push(tokio::spawn(super::minting::recovery::run(
                services.clone(),
                stopped.clone(),
            )));
            tasks.push(tokio::spawn(super::cancellation::run(
                services.clone(),
                stopped.clone(),
            )));
            tasks.push(tokio::spawn(super::transfers::sweeper::run(
                services.clone(),
                stopped,
            )));
        }
        Self { stop, tasks }
    }

    /// Tells every worker to stop and waits until each has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
