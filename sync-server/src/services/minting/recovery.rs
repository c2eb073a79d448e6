//! Finishing what a crash (or a chain that stopped answering) cut off.
//!
//! On start, [`recover_on_start`] publishes every ticket the chain has and
//! the database does not (by id, holes included: one event's mints may land
//! out of request order) and settles every recorded mint transaction by its
//! signature. Then the worker ([`run`]) takes each open mint request whose
//! lease is free and drives it to its end: the rest of its tickets minted,
//! or, after a refusal, its landed tickets revoked.

use std::time::Duration;

use tokio::sync::watch;

use super::drive;
use crate::services::{ServiceError, Services, organizer};

/// How often the worker looks for requests to finish.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(1);

/// Brings the database level with the chain after a restart: tickets on
/// chain but unknown here are published, and mint transactions recorded
/// before the crash are settled by signature. Settling needs no lease: it
/// only records what the chain already decided, and repeating it changes
/// nothing. Returns how many tickets were published.
pub async fn recover_on_start(services: &Services) -> Result<usize, ServiceError> {
    let published = organizer::reconcile(services).await?;
    for request_id in services.store.open_mint_requests().await? {
        let Some(request) = services.store.mint_request(&request_id).await? else {
            continue;
        };
        if let Err(e) = drive::settle_recorded(services, &request).await {
            tracing::warn!(request = %request_id, error = %e, "a mint transaction is not settled yet");
        }
    }
    let open = services.store.open_mint_requests().await?.len();
    if open > 0 {
        tracing::warn!(
            requests = open,
            "mint requests cut off before they finished; the mint worker completes them"
        );
    }
    Ok(published)
}

/// One round: drives every open request whose lease is free. Returns how
/// many it took on.
pub async fn round(services: &Services) -> Result<usize, ServiceError> {
    let now = services.clock.now();
    let lease = super::lease_secs(services);
    let mut taken = 0;
    for request_id in services.store.mint_requests_to_resume(now).await? {
        let holder = uuid::Uuid::now_v7().to_string();
        if !services
            .store
            .lease_mint_request(&request_id, &holder, now + lease, now)
            .await?
        {
            continue;
        }
        taken += 1;
        if let Err(e) = drive::run(services, &request_id, &holder).await {
            tracing::warn!(request = %request_id, error = %e, "mint request not finished this round");
            services
                .store
                .release_mint_request_lease(&request_id, &holder)
                .await?;
        }
    }
    Ok(taken)
}

/// The mint worker: [`round`] every [`ROUND_INTERVAL`] until `stop`.
pub async fn run(services: Services, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = round(&services).await {
            tracing::warn!(error = %e, "mint round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
