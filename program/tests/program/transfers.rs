//! transfer_ticket and the email transfer: open, claim, cancel, expire.

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, EntryRecord, TicketAccounts};
use ticketing::error::TicketingError;

const EMAIL: &str = "friend@example.org";

async fn holder_with_ticket(fx: &mut Fixture) -> (Keypair, u32) {
    let holder = fx.buyer().await;
    let ticket_id = fx.issue(&holder.pubkey()).await;
    (holder, ticket_id)
}

#[tokio::test]
async fn transfer_ticket_moves_the_token_and_bumps_the_generation() {
    for standard in STANDARDS {
        let mut fx = Fixture::of(standard).await;
        let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
        let friend = fx.chain.wallet(SOL).await.unwrap();
        fx.send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await
        .unwrap();
        let ticket = fx.ticket_state(ticket_id).await;
        assert_eq!(ticket.owner, friend.pubkey());
        assert_eq!(ticket.generation, 1);
        assert_eq!(
            fx.holding(ticket_id, &friend.pubkey()).await,
            Some((1, true))
        );
        assert_eq!(
            fx.holding(ticket_id, &holder.pubkey()).await,
            Some((0, false))
        );

        // And back: the old owner's emptied account receives it and is frozen again.
        fx.send(
            &[client::transfer_ticket(
                &friend.pubkey(),
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&friend],
        )
        .await
        .unwrap();
        let ticket = fx.ticket_state(ticket_id).await;
        assert_eq!((ticket.owner, ticket.generation), (holder.pubkey(), 2));
        assert_eq!(
            fx.holding(ticket_id, &holder.pubkey()).await,
            Some((1, true))
        );
        assert_eq!(
            fx.holding(ticket_id, &friend.pubkey()).await,
            Some((0, false))
        );
    }
}

#[tokio::test]
async fn transfer_ticket_refuses_anyone_but_the_owner() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let thief = fx.buyer().await;
    let result = fx
        .send(
            &[client::transfer_ticket(
                &thief.pubkey(),
                &thief.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&thief],
        )
        .await;
    // The thief's token account for this mint does not exist, so the ticket's owner check and
    // the token program both stand in the way; the program refuses first.
    assert_refused(result, TicketingError::NotTicketOwner);
    assert_eq!(fx.ticket_state(ticket_id).await.owner, holder.pubkey());
    assert_eq!(
        fx.holding(ticket_id, &holder.pubkey()).await,
        Some((1, true))
    );
}

#[tokio::test]
async fn transfer_ticket_refuses_when_the_event_forbids_transfers() {
    let mut fx = Fixture::with(|params| params.transferable = false).await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::TransferForbidden);
    assert_eq!(
        fx.holding(ticket_id, &holder.pubkey()).await,
        Some((1, true))
    );
}

#[tokio::test]
async fn transfer_ticket_refuses_after_the_transfer_deadline() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    fx.set_time(STARTS_AT).await;
    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::TransferForbidden);
}

#[tokio::test]
async fn transfer_ticket_refuses_a_frozen_ticket() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let organizer = fx.organizer.insecure_clone();
    fx.send(
        &[client::freeze_ticket(
            &organizer.pubkey(),
            &fx.event,
            ticket_id,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::TicketNotActive);
    assert_eq!(fx.ticket_state(ticket_id).await.owner, holder.pubkey());
}

#[tokio::test]
async fn transfer_ticket_refuses_a_ticket_used_to_enter() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let validator = fx.validator.insecure_clone();
    let record = EntryRecord {
        scans: 1,
        entries: 1,
        inside: true,
        gate: 3,
        at_ms: (NOW + 10) * 1000,
    };
    fx.send(
        &[client::validate_entries(
            &validator.pubkey(),
            &fx.event,
            &[(ticket_id, record)],
        )],
        &[&validator],
    )
    .await
    .unwrap();
    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::AlreadyEntered);
}

async fn open(fx: &mut Fixture, holder: &Keypair, ticket_id: u32, claim_key: &Keypair) {
    fx.send(
        &[client::open_email_transfer(
            &holder.pubkey(),
            &fx.event,
            ticket_id,
            client::email_hash(EMAIL),
            &claim_key.pubkey(),
            NOW + 3600,
            fx.standard,
        )],
        &[holder],
    )
    .await
    .unwrap();
}

fn delegation_of(fx: &Fixture, ticket_id: u32) -> solana_sdk::pubkey::Pubkey {
    let ticket = TicketAccounts::derive(&fx.event, ticket_id).ticket;
    client::delegation_address(&ticket).0
}

#[tokio::test]
async fn open_email_transfer_records_the_hash_and_claim_key_and_blocks_direct_transfer() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let claim_key = Keypair::new();
    open(&mut fx, &holder, ticket_id, &claim_key).await;

    let data = fx
        .chain
        .data(&delegation_of(&fx, ticket_id))
        .await
        .unwrap()
        .unwrap();
    let delegation = client::decode_delegation(&data).unwrap();
    assert_eq!(
        delegation.email_hash,
        client::email_hash(" Friend@Example.org ")
    );
    assert_eq!(delegation.claim_key, claim_key.pubkey());
    assert_eq!(delegation.owner, holder.pubkey());
    assert_eq!(delegation.expires_at, NOW + 3600);
    assert!(fx.ticket_state(ticket_id).await.transfer_pending);
    // The token has not moved and is still frozen.
    assert_eq!(
        fx.holding(ticket_id, &holder.pubkey()).await,
        Some((1, true))
    );

    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::TransferPending);
}

#[tokio::test]
async fn open_email_transfer_refuses_anyone_but_the_owner_and_a_past_expiry() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let thief = fx.buyer().await;
    let claim_key = Keypair::new();
    let result = fx
        .send(
            &[client::open_email_transfer(
                &thief.pubkey(),
                &fx.event,
                ticket_id,
                client::email_hash(EMAIL),
                &claim_key.pubkey(),
                NOW + 3600,
                fx.standard,
            )],
            &[&thief],
        )
        .await;
    assert_refused(result, TicketingError::NotTicketOwner);
    let result = fx
        .send(
            &[client::open_email_transfer(
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                client::email_hash(EMAIL),
                &claim_key.pubkey(),
                NOW,
                fx.standard,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::InvalidExpiry);
    assert!(!fx.exists(&delegation_of(&fx, ticket_id)).await);
}

#[tokio::test]
async fn claim_email_transfer_with_the_one_time_key_moves_the_ticket_once() {
    for standard in STANDARDS {
        let mut fx = Fixture::of(standard).await;
        let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
        let claim_key = Keypair::new();
        open(&mut fx, &holder, ticket_id, &claim_key).await;
        let holder_before = fx.chain.balance(&holder.pubkey()).await.unwrap();

        let recipient = fx.chain.wallet(SOL).await.unwrap();
        fx.send(
            &[client::claim_email_transfer(
                &recipient.pubkey(),
                &claim_key.pubkey(),
                &recipient.pubkey(),
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&recipient, &claim_key],
        )
        .await
        .unwrap();

        let ticket = fx.ticket_state(ticket_id).await;
        assert_eq!(ticket.owner, recipient.pubkey());
        assert_eq!(ticket.generation, 1);
        assert!(!ticket.transfer_pending);
        assert_eq!(
            fx.holding(ticket_id, &recipient.pubkey()).await,
            Some((1, true))
        );
        assert_eq!(
            fx.holding(ticket_id, &holder.pubkey()).await,
            Some((0, false))
        );
        // The delegation is closed and its rent went back to the holder who opened it.
        assert!(!fx.exists(&delegation_of(&fx, ticket_id)).await);
        assert!(fx.chain.balance(&holder.pubkey()).await.unwrap() > holder_before);

        // A second claim with the same key finds nothing to claim.
        let second = fx.chain.wallet(SOL).await.unwrap();
        let result = fx
            .send(
                &[client::claim_email_transfer(
                    &second.pubkey(),
                    &claim_key.pubkey(),
                    &second.pubkey(),
                    &holder.pubkey(),
                    &fx.event,
                    ticket_id,
                    fx.standard,
                )],
                &[&second, &claim_key],
            )
            .await;
        assert_anchor_refused(result, anchor_lang::error::ErrorCode::AccountNotInitialized);
        assert_eq!(
            fx.holding(ticket_id, &recipient.pubkey()).await,
            Some((1, true))
        );
    }
}

#[tokio::test]
async fn claim_email_transfer_refuses_a_claim_without_the_one_time_key() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let claim_key = Keypair::new();
    open(&mut fx, &holder, ticket_id, &claim_key).await;

    // An observer who read the delegation knows the claim key's public half, not its secret.
    let observer = fx.chain.wallet(SOL).await.unwrap();
    let result = fx
        .send(
            &[client::claim_email_transfer(
                &observer.pubkey(),
                &observer.pubkey(),
                &observer.pubkey(),
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&observer],
        )
        .await;
    assert_refused(result, TicketingError::WrongClaimKey);

    // Naming the real claim key without its signature is refused before anything runs.
    let mut instruction = client::claim_email_transfer(
        &observer.pubkey(),
        &claim_key.pubkey(),
        &observer.pubkey(),
        &holder.pubkey(),
        &fx.event,
        ticket_id,
        fx.standard,
    );
    instruction.accounts[1].is_signer = false;
    let result = fx.send(&[instruction], &[&observer]).await;
    assert_anchor_refused(result, anchor_lang::error::ErrorCode::AccountNotSigner);

    assert_eq!(fx.ticket_state(ticket_id).await.owner, holder.pubkey());
    assert_eq!(
        fx.holding(ticket_id, &holder.pubkey()).await,
        Some((1, true))
    );
}

#[tokio::test]
async fn claim_email_transfer_refuses_after_expiry() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let claim_key = Keypair::new();
    open(&mut fx, &holder, ticket_id, &claim_key).await;
    fx.set_time(NOW + 3600).await;
    let recipient = fx.chain.wallet(SOL).await.unwrap();
    let result = fx
        .send(
            &[client::claim_email_transfer(
                &recipient.pubkey(),
                &claim_key.pubkey(),
                &recipient.pubkey(),
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&recipient, &claim_key],
        )
        .await;
    assert_refused(result, TicketingError::DelegationExpired);
    assert_eq!(fx.ticket_state(ticket_id).await.owner, holder.pubkey());
}

#[tokio::test]
async fn cancel_email_transfer_returns_the_ticket_to_its_owner() {
    for standard in STANDARDS {
        let mut fx = Fixture::of(standard).await;
        let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
        let claim_key = Keypair::new();
        open(&mut fx, &holder, ticket_id, &claim_key).await;

        let thief = fx.buyer().await;
        let result = fx
            .send(
                &[client::cancel_email_transfer(
                    &thief.pubkey(),
                    &fx.event,
                    ticket_id,
                    fx.standard,
                )],
                &[&thief],
            )
            .await;
        assert_refused(result, TicketingError::NotTicketOwner);

        fx.send(
            &[client::cancel_email_transfer(
                &holder.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await
        .unwrap();
        assert!(!fx.exists(&delegation_of(&fx, ticket_id)).await);
        assert!(!fx.ticket_state(ticket_id).await.transfer_pending);
        assert_eq!(
            fx.holding(ticket_id, &holder.pubkey()).await,
            Some((1, true))
        );

        // The cancelled claim link is dead; the owner can transfer directly again.
        let recipient = fx.chain.wallet(SOL).await.unwrap();
        let result = fx
            .send(
                &[client::claim_email_transfer(
                    &recipient.pubkey(),
                    &claim_key.pubkey(),
                    &recipient.pubkey(),
                    &holder.pubkey(),
                    &fx.event,
                    ticket_id,
                    fx.standard,
                )],
                &[&recipient, &claim_key],
            )
            .await;
        assert_anchor_refused(result, anchor_lang::error::ErrorCode::AccountNotInitialized);
        fx.send(
            &[client::transfer_ticket(
                &holder.pubkey(),
                &recipient.pubkey(),
                &fx.event,
                ticket_id,
                fx.standard,
            )],
            &[&holder],
        )
        .await
        .unwrap();
        assert_eq!(
            fx.holding(ticket_id, &recipient.pubkey()).await,
            Some((1, true))
        );
    }
}

#[tokio::test]
async fn expire_email_transfer_is_refused_before_expiry_and_open_to_anyone_after() {
    let mut fx = Fixture::new().await;
    let (holder, ticket_id) = holder_with_ticket(&mut fx).await;
    let claim_key = Keypair::new();
    open(&mut fx, &holder, ticket_id, &claim_key).await;

    let result = fx
        .send(
            &[client::expire_email_transfer(
                &holder.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[],
        )
        .await;
    assert_refused(result, TicketingError::DelegationNotExpired);

    fx.set_time(NOW + 3600).await;
    let holder_before = fx.chain.balance(&holder.pubkey()).await.unwrap();
    // Sent and paid by the chain's payer, a stranger to the ticket.
    fx.send(
        &[client::expire_email_transfer(
            &holder.pubkey(),
            &fx.event,
            ticket_id,
        )],
        &[],
    )
    .await
    .unwrap();
    assert!(!fx.exists(&delegation_of(&fx, ticket_id)).await);
    assert!(!fx.ticket_state(ticket_id).await.transfer_pending);
    assert!(fx.chain.balance(&holder.pubkey()).await.unwrap() > holder_before);
    assert_eq!(
        fx.holding(ticket_id, &holder.pubkey()).await,
        Some((1, true))
    );
}
