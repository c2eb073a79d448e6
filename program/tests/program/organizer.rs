//! freeze_ticket, unfreeze_ticket, revoke_ticket, close_ticket, withdraw_proceeds, close_event.

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, TicketAccounts, TicketStatus};
use ticketing::error::TicketingError;

#[tokio::test]
async fn freeze_and_unfreeze_ticket_put_a_security_hold_on_and_off() {
    let mut fx = Fixture::new().await;
    let holder = fx.buyer().await;
    let ticket_id = fx.issue(&holder.pubkey()).await;
    let organizer = fx.organizer.insecure_clone();

    let result = fx
        .send(
            &[client::unfreeze_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TicketNotFrozen);

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
    assert_eq!(
        fx.ticket_state(ticket_id).await.status,
        TicketStatus::Frozen
    );
    let result = fx
        .send(
            &[client::freeze_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TicketNotActive);

    fx.send(
        &[client::unfreeze_ticket(
            &organizer.pubkey(),
            &fx.event,
            ticket_id,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(
        fx.ticket_state(ticket_id).await.status,
        TicketStatus::Active
    );
}

#[tokio::test]
async fn freeze_ticket_refuses_anyone_but_the_organizer() {
    let mut fx = Fixture::new().await;
    let holder = fx.buyer().await;
    let ticket_id = fx.issue(&holder.pubkey()).await;
    let result = fx
        .send(
            &[client::freeze_ticket(
                &holder.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    let result = fx
        .send(
            &[client::unfreeze_ticket(
                &holder.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert_eq!(
        fx.ticket_state(ticket_id).await.status,
        TicketStatus::Active
    );
}

#[tokio::test]
async fn revoke_ticket_refunds_the_on_chain_price_to_the_holder() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    let ticket_id = fx.buy(&buyer, VIP).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let buyer_before = fx.chain.balance(&buyer.pubkey()).await.unwrap();
    let event_before = fx.chain.balance(&fx.event).await.unwrap();

    fx.send(
        &[client::revoke_ticket(
            &organizer.pubkey(),
            &fx.event,
            ticket_id,
            &buyer.pubkey(),
        )],
        &[&organizer],
    )
    .await
    .unwrap();

    let ticket = fx.ticket_state(ticket_id).await;
    assert_eq!((ticket.status, ticket.paid), (TicketStatus::Refunded, 0));
    assert_eq!(
        fx.chain.balance(&buyer.pubkey()).await.unwrap() - buyer_before,
        VIP_PRICE
    );
    assert_eq!(
        event_before - fx.chain.balance(&fx.event).await.unwrap(),
        VIP_PRICE
    );
    assert_eq!(fx.event_state().await.proceeds, 0);

    let result = fx
        .send(
            &[client::revoke_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
                &buyer.pubkey(),
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TicketNotActive);
}

#[tokio::test]
async fn revoke_ticket_paid_off_chain_marks_it_revoked_and_moves_no_lamports() {
    let mut fx = Fixture::new().await;
    let holder = Keypair::new().pubkey();
    let ticket_id = fx.issue(&holder).await;
    let organizer = fx.organizer.insecure_clone();
    let event_before = fx.chain.balance(&fx.event).await.unwrap();
    fx.send(
        &[client::revoke_ticket(
            &organizer.pubkey(),
            &fx.event,
            ticket_id,
            &holder,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(
        fx.ticket_state(ticket_id).await.status,
        TicketStatus::Revoked
    );
    assert_eq!(fx.chain.balance(&fx.event).await.unwrap(), event_before);
}

#[tokio::test]
async fn revoke_ticket_refuses_another_refund_recipient_and_a_non_organizer() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    let ticket_id = fx.buy(&buyer, GENERAL).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let result = fx
        .send(
            &[client::revoke_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
                &organizer.pubkey(),
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::WrongAccount);
    let result = fx
        .send(
            &[client::revoke_ticket(
                &buyer.pubkey(),
                &fx.event,
                ticket_id,
                &buyer.pubkey(),
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert_eq!(
        fx.ticket_state(ticket_id).await.status,
        TicketStatus::Active
    );
}

#[tokio::test]
async fn close_ticket_after_the_event_returns_its_rent_to_the_organizer() {
    let mut fx = Fixture::new().await;
    let holder = Keypair::new().pubkey();
    let ticket_id = fx.issue(&holder).await;
    let organizer = fx.organizer.insecure_clone();
    let ticket_address = TicketAccounts::derive(&fx.event, ticket_id).ticket;

    let result = fx
        .send(
            &[client::close_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::EventNotEnded);

    fx.set_time(ENDS_AT).await;
    let rent = fx.chain.balance(&ticket_address).await.unwrap();
    let before = fx.chain.balance(&organizer.pubkey()).await.unwrap();
    fx.chain
        .send_from(
            &organizer,
            &[client::close_ticket(
                &organizer.pubkey(),
                &fx.event,
                ticket_id,
            )],
            &[],
        )
        .await
        .unwrap();
    assert!(!fx.exists(&ticket_address).await);
    assert_eq!(
        fx.chain.balance(&organizer.pubkey()).await.unwrap(),
        before + rent - 5_000
    );
    assert_eq!(fx.event_state().await.open_tickets, 0);
    // The NFT stays with its holder.
    assert_eq!(fx.holding(ticket_id, &holder).await, Some((1, true)));
}

#[tokio::test]
async fn close_ticket_refuses_anyone_but_the_organizer() {
    let mut fx = Fixture::new().await;
    let holder = fx.buyer().await;
    let ticket_id = fx.issue(&holder.pubkey()).await;
    fx.set_time(ENDS_AT).await;
    let result = fx
        .send(
            &[client::close_ticket(&holder.pubkey(), &fx.event, ticket_id)],
            &[&holder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert!(
        fx.exists(&TicketAccounts::derive(&fx.event, ticket_id).ticket)
            .await
    );
}

#[tokio::test]
async fn withdraw_proceeds_after_the_event_pays_the_treasury() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    fx.buy(&buyer, VIP).await.unwrap();
    fx.buy(&buyer, GENERAL).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let treasury = fx.treasury;

    let result = fx
        .send(
            &[client::withdraw_proceeds(
                &organizer.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::EventNotEnded);

    fx.set_time(ENDS_AT).await;
    let wrong = buyer.pubkey();
    let result = fx
        .send(
            &[client::withdraw_proceeds(
                &organizer.pubkey(),
                &fx.event,
                &wrong,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::WrongAccount);

    let event_before = fx.chain.balance(&fx.event).await.unwrap();
    fx.send(
        &[client::withdraw_proceeds(
            &organizer.pubkey(),
            &fx.event,
            &treasury,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(
        fx.chain.balance(&treasury).await.unwrap(),
        VIP_PRICE + GENERAL_PRICE
    );
    assert_eq!(
        event_before - fx.chain.balance(&fx.event).await.unwrap(),
        VIP_PRICE + GENERAL_PRICE
    );
    assert_eq!(fx.event_state().await.proceeds, 0);
}

#[tokio::test]
async fn withdraw_proceeds_refuses_a_cancelled_event_and_a_non_organizer() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    fx.buy(&buyer, VIP).await.unwrap();
    fx.set_time(ENDS_AT).await;
    let treasury = fx.treasury;
    let result = fx
        .send(
            &[client::withdraw_proceeds(
                &buyer.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);

    let organizer = fx.organizer.insecure_clone();
    fx.set_time(NOW).await;
    fx.send(
        &[client::cancel_event(&organizer.pubkey(), &fx.event)],
        &[&organizer],
    )
    .await
    .unwrap();
    fx.set_time(ENDS_AT).await;
    let result = fx
        .send(
            &[client::withdraw_proceeds(
                &organizer.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::EventCancelled);
    assert_eq!(fx.chain.balance(&treasury).await.unwrap(), 0);
}

#[tokio::test]
async fn close_event_needs_every_ticket_closed_then_returns_rent_and_proceeds() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    let ticket_id = fx.buy(&buyer, GENERAL).await.unwrap();
    let organizer = fx.organizer.insecure_clone();
    let treasury = fx.treasury;
    fx.set_time(ENDS_AT).await;

    let result = fx
        .send(
            &[client::close_event(
                &organizer.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TicketsOutstanding);

    fx.send(
        &[client::close_ticket(
            &organizer.pubkey(),
            &fx.event,
            ticket_id,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    let event_lamports = fx.chain.balance(&fx.event).await.unwrap();
    let organizer_before = fx.chain.balance(&organizer.pubkey()).await.unwrap();
    fx.send(
        &[client::close_event(
            &organizer.pubkey(),
            &fx.event,
            &treasury,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert!(!fx.exists(&fx.event.clone()).await);
    assert_eq!(fx.chain.balance(&treasury).await.unwrap(), GENERAL_PRICE);
    assert_eq!(
        fx.chain.balance(&organizer.pubkey()).await.unwrap() - organizer_before,
        event_lamports - GENERAL_PRICE
    );
}

#[tokio::test]
async fn close_event_refuses_before_the_end_and_a_non_organizer() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let treasury = fx.treasury;
    let result = fx
        .send(
            &[client::close_event(
                &organizer.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::EventNotEnded);
    fx.set_time(ENDS_AT).await;
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::close_event(
                &intruder.pubkey(),
                &fx.event,
                &treasury,
            )],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::NotOrganizer);
    assert!(fx.exists(&fx.event.clone()).await);
}
