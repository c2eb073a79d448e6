//! create_event, update_event, cancel_event, add_validator, remove_validator.

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, EventStatus, TierParams};
use ticketing::error::TicketingError;

#[tokio::test]
async fn create_event_stores_schedule_tiers_issuer_and_policy() {
    let mut fx = Fixture::new().await;
    let event = fx.event_state().await;
    assert_eq!(event.organizer, fx.organizer.pubkey());
    assert_eq!(event.event_id, 7);
    assert_eq!(event.status, EventStatus::Active);
    assert_eq!(event.name, "Harbour Lights");
    assert_eq!(event.venue, "Pier 4");
    assert_eq!((event.starts_at, event.ends_at), (STARTS_AT, ENDS_AT));
    assert_eq!(event.doors_open_at, STARTS_AT - 2 * 3600);
    assert_eq!(event.capacity, 5);
    assert_eq!(event.minted, 0);
    assert_eq!(event.tiers.len(), 2);
    assert_eq!(event.tiers[usize::from(VIP)].name, "vip");
    assert_eq!(event.tiers[usize::from(VIP)].price, VIP_PRICE);
    assert_eq!(event.issuer, fx.issuer);
    assert_eq!(event.treasury, fx.treasury);
    assert_eq!(event.minter, fx.minter.pubkey());
    assert!(event.transferable);
    assert_eq!(event.transfer_until, STARTS_AT);
    assert_eq!(event.validators, vec![fx.validator.pubkey()]);
}

#[tokio::test]
async fn create_event_refuses_inconsistent_parameters() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.pubkey();
    let mut params = event_params(&fx.treasury, &fx.issuer, &organizer);
    params.ends_at = params.starts_at;
    let result = fx
        .send(
            &[client::create_event(&organizer, 8, params)],
            &[&fx.organizer.insecure_clone()],
        )
        .await;
    assert_refused(result, TicketingError::InvalidSchedule);

    let mut params = event_params(&fx.treasury, &fx.issuer, &organizer);
    params.tiers = (0..5)
        .map(|i| TierParams {
            name: format!("t{i}"),
            price: 1,
            supply: 1,
        })
        .collect();
    let result = fx
        .send(
            &[client::create_event(&organizer, 8, params)],
            &[&fx.organizer.insecure_clone()],
        )
        .await;
    assert_refused(result, TicketingError::InvalidTierCount);

    let mut params = event_params(&fx.treasury, &fx.issuer, &organizer);
    params.name = "x".repeat(33);
    let result = fx
        .send(
            &[client::create_event(&organizer, 8, params)],
            &[&fx.organizer.insecure_clone()],
        )
        .await;
    assert_refused(result, TicketingError::TextTooLong);
    assert!(!fx.exists(&client::event_address(&organizer, 8).0).await);
}

#[tokio::test]
async fn create_event_requires_the_organizers_signature() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.pubkey();
    let mut instruction = client::create_event(
        &organizer,
        9,
        event_params(&fx.treasury, &fx.issuer, &organizer),
    );
    // Claim the organizer's key without its signature: the chain's payer signs instead.
    instruction.accounts[0].is_signer = false;
    let result = fx.send(&[instruction], &[]).await;
    assert_anchor_refused(result, anchor_lang::error::ErrorCode::AccountNotSigner);
}

#[tokio::test]
async fn update_event_changes_prices_and_keeps_sales() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    fx.buy(&buyer, VIP).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let mut params = event_params(&fx.treasury, &fx.issuer, &fx.minter.pubkey());
    params.tiers[0].price = 3 * GENERAL_PRICE;
    params.capacity = 10;
    params.transferable = false;
    fx.send(
        &[client::update_event(&organizer.pubkey(), &fx.event, params)],
        &[&organizer],
    )
    .await
    .unwrap();
    let event = fx.event_state().await;
    assert_eq!(event.tiers[0].price, 3 * GENERAL_PRICE);
    assert_eq!(event.tiers[1].sold, 1);
    assert_eq!(event.capacity, 10);
    assert!(!event.transferable);
}

#[tokio::test]
async fn update_event_refuses_shrinking_a_tier_below_its_sales() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    fx.buy(&buyer, VIP).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let mut params = event_params(&fx.treasury, &fx.issuer, &fx.minter.pubkey());
    params.tiers[1].supply = 0;
    let result = fx
        .send(
            &[client::update_event(&organizer.pubkey(), &fx.event, params)],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::InvalidTierSupply);

    let mut params = event_params(&fx.treasury, &fx.issuer, &fx.minter.pubkey());
    params.tiers.truncate(1);
    let result = fx
        .send(
            &[client::update_event(&organizer.pubkey(), &fx.event, params)],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::InvalidTierSupply);
}

#[tokio::test]
async fn update_event_refuses_anyone_but_the_organizer() {
    let mut fx = Fixture::new().await;
    let intruder = fx.buyer().await;
    let params = event_params(&fx.treasury, &fx.issuer, &intruder.pubkey());
    let result = fx
        .send(
            &[client::update_event(&intruder.pubkey(), &fx.event, params)],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert_eq!(fx.event_state().await.minter, fx.minter.pubkey());
}

#[tokio::test]
async fn cancel_event_marks_it_cancelled_and_only_the_organizer_may() {
    let mut fx = Fixture::new().await;
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::cancel_event(&intruder.pubkey(), &fx.event)],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert_eq!(fx.event_state().await.status, EventStatus::Active);

    let organizer = fx.organizer.insecure_clone();
    fx.send(
        &[client::cancel_event(&organizer.pubkey(), &fx.event)],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(fx.event_state().await.status, EventStatus::Cancelled);
}

#[tokio::test]
async fn a_cancelled_event_refuses_updates_sales_minting_transfers_and_entries() {
    let mut fx = Fixture::new().await;
    let holder = fx.buyer().await;
    let ticket_id = fx.issue(&holder.pubkey()).await;
    let organizer = fx.organizer.insecure_clone();
    fx.send(
        &[client::cancel_event(&organizer.pubkey(), &fx.event)],
        &[&organizer],
    )
    .await
    .unwrap();

    let params = event_params(&fx.treasury, &fx.issuer, &fx.minter.pubkey());
    let result = fx
        .send(
            &[client::update_event(&organizer.pubkey(), &fx.event, params)],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::EventCancelled);

    let buyer = fx.buyer().await;
    assert_refused(
        fx.buy(&buyer, GENERAL).await.map(|_| ()),
        TicketingError::EventCancelled,
    );

    let minter = fx.minter.insecure_clone();
    let result = fx
        .send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &fx.event,
                1,
                &[(buyer.pubkey(), GENERAL)],
                fx.standard,
            )],
            &[&minter],
        )
        .await;
    assert_refused(result, TicketingError::EventCancelled);

    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &buyer.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::EventCancelled);

    let validator = fx.validator.insecure_clone();
    let record = client::EntryRecord {
        scans: 1,
        entries: 1,
        inside: true,
        gate: 1,
        at_ms: STARTS_AT * 1000,
    };
    let result = fx
        .send(
            &[client::validate_entries(
                &validator.pubkey(),
                &fx.event,
                &[(ticket_id, record)],
            )],
            &[&validator],
        )
        .await;
    assert_refused(result, TicketingError::EventCancelled);
    assert_eq!(fx.event_state().await.minted, 1);
    assert_eq!(fx.ticket_state(ticket_id).await.entry_count, 0);
}

#[tokio::test]
async fn add_validator_authorizes_a_key_once_up_to_the_limit() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let existing = fx.validator.pubkey();
    let result = fx
        .send(
            &[client::add_validator(
                &organizer.pubkey(),
                &fx.event,
                &existing,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::ValidatorAlreadyAuthorized);

    let extra: Vec<_> = (0..3).map(|_| Keypair::new().pubkey()).collect();
    for key in &extra {
        fx.send(
            &[client::add_validator(&organizer.pubkey(), &fx.event, key)],
            &[&organizer],
        )
        .await
        .unwrap();
    }
    let event = fx.event_state().await;
    assert_eq!(event.validators.len(), 4);
    assert!(event.validators.contains(&extra[2]));

    let one_too_many = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::add_validator(
                &organizer.pubkey(),
                &fx.event,
                &one_too_many,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TooManyValidators);
}

#[tokio::test]
async fn add_validator_refuses_anyone_but_the_organizer() {
    let mut fx = Fixture::new().await;
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::add_validator(
                &intruder.pubkey(),
                &fx.event,
                &intruder.pubkey(),
            )],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert!(
        !fx.event_state()
            .await
            .validators
            .contains(&intruder.pubkey())
    );
}

#[tokio::test]
async fn remove_validator_revokes_entry_rights() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let validator = fx.validator.insecure_clone();
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::remove_validator(
                &intruder.pubkey(),
                &fx.event,
                &validator.pubkey(),
            )],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);

    fx.send(
        &[client::remove_validator(
            &organizer.pubkey(),
            &fx.event,
            &validator.pubkey(),
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert!(fx.event_state().await.validators.is_empty());
    let result = fx
        .send(
            &[client::remove_validator(
                &organizer.pubkey(),
                &fx.event,
                &validator.pubkey(),
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::ValidatorNotFound);
}
