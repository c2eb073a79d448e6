//! buy_ticket (paid in SOL) and mint_tickets (paid off chain, batch).

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, TicketAccounts, TicketStatus, TokenStandard};
use ticketing::error::TicketingError;

#[tokio::test]
async fn buy_ticket_mints_a_frozen_nft_and_pays_the_event() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    let event_before = fx.chain.balance(&fx.event).await.unwrap();
    let buyer_before = fx.chain.balance(&buyer.pubkey()).await.unwrap();

    let ticket_id = fx.buy(&buyer, VIP).await.unwrap();

    assert_eq!(ticket_id, 0);
    let ticket = fx.ticket_state(ticket_id).await;
    assert!(ticket.belongs_to(&TicketAccounts::derive(&fx.event, 0).ticket, &fx.event));
    assert_eq!(ticket.owner, buyer.pubkey());
    assert_eq!(ticket.ticket_id, 0);
    assert_eq!(ticket.tier, VIP);
    assert_eq!(ticket.generation, 0);
    assert_eq!(ticket.status, TicketStatus::Active);
    assert!(!ticket.entered && !ticket.inside);
    assert_eq!(ticket.paid, VIP_PRICE);

    assert_eq!(
        fx.holding(ticket_id, &buyer.pubkey()).await,
        Some((1, true))
    );
    let mint = fx.mint_state(ticket_id).await;
    assert_eq!(mint.program, TokenStandard::SplToken.program_id());
    assert_eq!(
        (mint.supply, mint.decimals, mint.has_mint_authority),
        (1, 0, false)
    );
    assert_eq!(mint.freeze_authority, Some(fx.event));
    assert_eq!(mint.size, 82, "a plain SPL Token mint, no extensions");
    assert!(mint.metadata.is_none());

    let event = fx.event_state().await;
    assert_eq!(event.minted, 1);
    assert_eq!(event.tiers[usize::from(VIP)].sold, 1);
    assert_eq!(event.proceeds, VIP_PRICE);
    assert_eq!(
        fx.chain.balance(&fx.event).await.unwrap() - event_before,
        VIP_PRICE
    );
    // The buyer paid the price plus rent for the ticket, mint and token accounts, plus the fee.
    let spent = buyer_before - fx.chain.balance(&buyer.pubkey()).await.unwrap();
    assert!(
        spent > VIP_PRICE && spent < VIP_PRICE + SOL / 100,
        "spent {spent}"
    );
}

#[tokio::test]
async fn buy_ticket_refuses_when_the_tier_is_sold_out() {
    let mut fx = Fixture::new().await;
    let first = fx.buyer().await;
    let second = fx.buyer().await;
    fx.buy(&first, VIP).await.unwrap();
    let before = fx.chain.balance(&second.pubkey()).await.unwrap();
    assert_refused(
        fx.buy(&second, VIP).await.map(|_| ()),
        TicketingError::TierSoldOut,
    );
    let event = fx.event_state().await;
    assert_eq!((event.minted, event.tiers[usize::from(VIP)].sold), (1, 1));
    assert!(fx.chain.balance(&second.pubkey()).await.unwrap() >= before - 10_000);
}

#[tokio::test]
async fn buy_ticket_refuses_beyond_capacity() {
    // Tier supply 4 + 1 = 5 = capacity; lower capacity to 2 so capacity is the binding limit.
    let mut fx = Fixture::with(|params| params.capacity = 2).await;
    let buyer = fx.buyer().await;
    fx.buy(&buyer, GENERAL).await.unwrap();
    fx.buy(&buyer, GENERAL).await.unwrap();
    assert_refused(
        fx.buy(&buyer, GENERAL).await.map(|_| ()),
        TicketingError::SoldOut,
    );
    assert_refused(
        fx.buy(&buyer, VIP).await.map(|_| ()),
        TicketingError::SoldOut,
    );
    let event = fx.event_state().await;
    assert_eq!(event.minted, 2);
    assert!(
        !fx.exists(&TicketAccounts::derive(&fx.event, 2).ticket)
            .await
    );
}

#[tokio::test]
async fn buy_ticket_refuses_an_unknown_tier_and_a_price_above_the_buyers_limit() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    assert_refused(
        fx.buy(&buyer, 3).await.map(|_| ()),
        TicketingError::UnknownTier,
    );
    let result = fx
        .send(
            &[client::buy_ticket(
                &buyer.pubkey(),
                &fx.event,
                0,
                VIP,
                VIP_PRICE - 1,
                fx.standard,
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::PriceAboveLimit);
    assert_eq!(fx.event_state().await.minted, 0);
}

#[tokio::test]
async fn buy_ticket_refuses_a_ticket_account_that_is_not_the_next_ticket() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    // Ticket id 3 is not the next one (0): its PDA does not match what the program derives.
    let result = fx
        .send(
            &[client::buy_ticket(
                &buyer.pubkey(),
                &fx.event,
                3,
                GENERAL,
                u64::MAX,
                fx.standard,
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::WrongAccount);
    assert_eq!(fx.event_state().await.minted, 0);
}

#[tokio::test]
async fn buy_ticket_pays_only_into_the_event_named_by_the_ticket() {
    // The payment recipient is the event account itself, which is also the seed of the ticket,
    // mint and authority: pairing one event's payment with another event's ticket is refused.
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let other_params = event_params(&fx.treasury, &fx.issuer, &organizer.pubkey());
    fx.send(
        &[client::create_event(&organizer.pubkey(), 99, other_params)],
        &[&organizer],
    )
    .await
    .unwrap();
    let other_event = client::event_address(&organizer.pubkey(), 99).0;
    let buyer = fx.buyer().await;
    let mut instruction = client::buy_ticket(
        &buyer.pubkey(),
        &fx.event,
        0,
        GENERAL,
        u64::MAX,
        fx.standard,
    );
    instruction.accounts[1].pubkey = other_event;
    let before = fx.chain.balance(&other_event).await.unwrap();
    let result = fx.send(&[instruction], &[&buyer]).await;
    assert_refused(result, TicketingError::WrongAccount);
    assert_eq!(fx.chain.balance(&other_event).await.unwrap(), before);
}

#[tokio::test]
async fn buy_ticket_still_works_when_someone_prefunded_the_next_ticket_address() {
    let mut fx = Fixture::new().await;
    let next = TicketAccounts::derive(&fx.event, 0);
    // A plain system account must hold at least its rent-exempt minimum.
    fx.chain.fund(&next.ticket, SOL / 1000).await.unwrap();
    fx.chain.fund(&next.mint, SOL / 1000).await.unwrap();
    let buyer = fx.buyer().await;
    fx.buy(&buyer, GENERAL).await.unwrap();
    assert_eq!(fx.ticket_state(0).await.owner, buyer.pubkey());
    assert_eq!(fx.holding(0, &buyer.pubkey()).await, Some((1, true)));
}

#[tokio::test]
async fn mint_tickets_issues_a_batch_paid_off_chain() {
    for standard in STANDARDS {
        let mut fx = Fixture::of(standard).await;
        let minter = fx.minter.insecure_clone();
        let recipients: Vec<_> = (0..4).map(|_| Keypair::new().pubkey()).collect();
        let batch: Vec<_> = vec![
            (recipients[0], GENERAL),
            (recipients[1], GENERAL),
            (recipients[2], VIP),
            (recipients[3], GENERAL),
        ];
        let event_before = fx.chain.balance(&fx.event).await.unwrap();
        fx.send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &fx.event,
                0,
                &batch,
                fx.standard,
            )],
            &[&minter],
        )
        .await
        .unwrap();
        for (ticket_id, (recipient, tier)) in (0u32..).zip(&batch) {
            let ticket = fx.ticket_state(ticket_id).await;
            assert_eq!(
                (ticket.owner, ticket.tier, ticket.paid),
                (*recipient, *tier, 0)
            );
            assert_eq!(fx.holding(ticket_id, recipient).await, Some((1, true)));
        }
        let event = fx.event_state().await;
        assert_eq!(event.minted, 4);
        assert_eq!(event.tiers[0].sold, 3);
        assert_eq!(event.tiers[1].sold, 1);
        assert_eq!(event.proceeds, 0);
        assert_eq!(fx.chain.balance(&fx.event).await.unwrap(), event_before);
    }
}

#[tokio::test]
async fn mint_tickets_by_the_organizer_is_allowed() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let recipient = Keypair::new().pubkey();
    fx.send(
        &[client::mint_tickets(
            &organizer.pubkey(),
            &fx.event,
            0,
            &[(recipient, VIP)],
            fx.standard,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(fx.holding(0, &recipient).await, Some((1, true)));
}

#[tokio::test]
async fn mint_tickets_refuses_a_key_that_is_not_a_minter() {
    let mut fx = Fixture::new().await;
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::mint_tickets(
                &intruder.pubkey(),
                &fx.event,
                0,
                &[(intruder.pubkey(), VIP)],
                fx.standard,
            )],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotMinter);
    assert_eq!(fx.event_state().await.minted, 0);
    assert_eq!(fx.holding(0, &intruder.pubkey()).await, None);
}

#[tokio::test]
async fn mint_tickets_refuses_a_batch_beyond_tier_supply_as_a_whole() {
    let mut fx = Fixture::new().await;
    let minter = fx.minter.insecure_clone();
    let a = Keypair::new().pubkey();
    let b = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &fx.event,
                0,
                &[(a, VIP), (b, VIP)],
                fx.standard,
            )],
            &[&minter],
        )
        .await;
    assert_refused(result, TicketingError::TierSoldOut);
    assert_eq!(fx.event_state().await.minted, 0);
    assert_eq!(fx.holding(0, &a).await, None);
}

#[tokio::test]
async fn mint_tickets_refuses_missing_accounts() {
    let mut fx = Fixture::new().await;
    let minter = fx.minter.insecure_clone();
    let mut instruction = client::mint_tickets(
        &minter.pubkey(),
        &fx.event,
        0,
        &[(Keypair::new().pubkey(), GENERAL)],
        fx.standard,
    );
    instruction.accounts.pop();
    let result = fx.send(&[instruction], &[&minter]).await;
    assert_refused(result, TicketingError::AccountsMismatch);
}

#[tokio::test]
async fn mint_tickets_refuses_more_than_the_batch_limit() {
    let mut fx = Fixture::with(|params| {
        params.capacity = 10;
        params.tiers[0].supply = 10;
    })
    .await;
    let minter = fx.minter.insecure_clone();
    let batch: Vec<_> = (0..=fx.standard.max_mint_batch())
        .map(|_| (Keypair::new().pubkey(), GENERAL))
        .collect();
    let result = fx
        .send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &fx.event,
                0,
                &batch,
                fx.standard,
            )],
            &[&minter],
        )
        .await;
    assert_refused(result, TicketingError::BatchTooLarge);
    assert_eq!(fx.event_state().await.minted, 0);
}
