//! The two NFT standards an event may choose: SPL Token (the fixture's default) and Token-2022
//! with metadata. Transfers, email claims and batch mints run in both standards in their own
//! modules (`STANDARDS`); here is what only one standard has, and the token program check every
//! instruction that touches a token makes.

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, TicketAccounts, TokenStandard};
use ticketing::error::TicketingError;

async fn token_2022_event() -> Fixture {
    Fixture::of(TokenStandard::Token2022Metadata).await
}

#[tokio::test]
async fn token_2022_standard_mints_an_nft_that_wallets_can_name() {
    let mut fx = token_2022_event().await;
    let buyer = fx.buyer().await;
    let bought = fx.buy(&buyer, VIP).await.unwrap();
    let holder = fx.buyer().await;
    let issued = fx.issue(&holder.pubkey()).await;

    for (ticket_id, owner) in [(bought, buyer.pubkey()), (issued, holder.pubkey())] {
        let mint = fx.mint_state(ticket_id).await;
        assert_eq!(mint.program, anchor_spl::token_2022::ID);
        assert_eq!(
            (mint.supply, mint.decimals, mint.has_mint_authority),
            (1, 0, false)
        );
        assert_eq!(mint.freeze_authority, Some(fx.event));
        let metadata = mint.metadata.expect("token metadata extension");
        assert_eq!(metadata.name, format!("Harbour Lights #{ticket_id}"));
        assert_eq!(metadata.symbol, "HLT");
        assert_eq!(
            metadata.uri,
            format!("https://tickets.example/m/7/{ticket_id}")
        );
        assert_eq!(
            metadata.mint,
            TicketAccounts::derive(&fx.event, ticket_id).mint
        );
        assert_eq!(fx.holding(ticket_id, &owner).await, Some((1, true)));
        // Not in an SPL Token account of the same owner.
        let plain = TicketAccounts::derive(&fx.event, ticket_id)
            .token_account(&owner, TokenStandard::SplToken);
        assert!(!fx.exists(&plain).await);
    }
}

#[tokio::test]
async fn spl_token_standard_costs_less_than_the_token_2022_one() {
    let mut plain = Fixture::new().await;
    let mut rich = token_2022_event().await;
    let mut spent = Vec::new();
    for fx in [&mut plain, &mut rich] {
        let buyer = fx.buyer().await;
        let before = fx.chain.balance(&buyer.pubkey()).await.unwrap();
        fx.buy(&buyer, GENERAL).await.unwrap();
        spent.push(before - fx.chain.balance(&buyer.pubkey()).await.unwrap() - GENERAL_PRICE);
    }
    // Rent of ticket state + mint + token account, plus the fee (the cost report has the
    // breakdown): the SPL Token standard stays within the 0.005 SOL goal.
    assert!(spent[0] <= 5_000_000, "SPL Token ticket cost {}", spent[0]);
    assert!(spent[1] > spent[0], "Token-2022 ticket cost {}", spent[1]);
}

#[tokio::test]
async fn instructions_refuse_a_token_program_other_than_the_events() {
    let mut fx = Fixture::new().await;
    let buyer = fx.buyer().await;
    let before = fx.chain.balance(&buyer.pubkey()).await.unwrap();
    let result = fx
        .send(
            &[client::buy_ticket(
                &buyer.pubkey(),
                &fx.event,
                0,
                GENERAL,
                u64::MAX,
                TokenStandard::Token2022Metadata,
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::WrongTokenProgram);
    assert_eq!(fx.event_state().await.minted, 0);
    assert!(fx.chain.balance(&buyer.pubkey()).await.unwrap() >= before - 10_000);

    let minter = fx.minter.insecure_clone();
    let result = fx
        .send(
            &[client::mint_tickets(
                &minter.pubkey(),
                &fx.event,
                0,
                &[(buyer.pubkey(), GENERAL)],
                TokenStandard::Token2022Metadata,
            )],
            &[&minter],
        )
        .await;
    assert_refused(result, TicketingError::WrongTokenProgram);

    // A transfer built for the other standard names token accounts the event's tickets
    // never use.
    let ticket_id = fx.issue(&buyer.pubkey()).await;
    let friend = Keypair::new().pubkey();
    let result = fx
        .send(
            &[client::transfer_ticket(
                &buyer.pubkey(),
                &friend,
                &fx.event,
                ticket_id,
                TokenStandard::Token2022Metadata,
            )],
            &[&buyer],
        )
        .await;
    assert_refused(result, TicketingError::WrongAccount);
    assert_eq!(fx.ticket_state(ticket_id).await.owner, buyer.pubkey());
}

#[tokio::test]
async fn update_event_changes_the_standard_only_before_the_first_ticket() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let mut params = event_params(&fx.treasury, &fx.issuer, &fx.minter.pubkey());
    params.token_standard = TokenStandard::Token2022Metadata;
    fx.send(
        &[client::update_event(
            &organizer.pubkey(),
            &fx.event,
            params.clone(),
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    assert_eq!(
        fx.event_state().await.token_standard,
        TokenStandard::Token2022Metadata
    );
    fx.standard = TokenStandard::Token2022Metadata;
    let buyer = fx.buyer().await;
    fx.issue(&buyer.pubkey()).await;

    params.token_standard = TokenStandard::SplToken;
    let result = fx
        .send(
            &[client::update_event(&organizer.pubkey(), &fx.event, params)],
            &[&organizer],
        )
        .await;
    assert_refused(result, TicketingError::TokenStandardLocked);
    assert_eq!(
        fx.event_state().await.token_standard,
        TokenStandard::Token2022Metadata
    );
}
