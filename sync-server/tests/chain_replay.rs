//! Gate scans recorded on chain by the replay worker, against the real
//! program in the embedded chain, directly and through the real Solana RPC
//! client with faults injected; on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use sync_server::chain::rpc_service::Faults;
use sync_server::services::replay;

on_both_backends!(
    two_servers_on_one_database_share_the_replay_without_doubling,
    scans_go_on_chain_once_in_order_and_stay_there,
    a_late_upload_older_than_the_chain_still_counts_there,
    the_rpc_path_survives_dropped_requests_lost_answers_and_stale_blockhashes,
);

const DRAIN: Duration = Duration::from_secs(120);

async fn scans_go_on_chain_once_in_order_and_stay_there(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let health: serde_json::Value = reqwest::get(format!("{}/health", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], true, "{health}");
    assert_eq!(health["chain"], true, "{health}");
    server.seed_on_chain(3).await;
    let north = server.enrol("north", 11).await;
    let exit = server.enrol("exit", 12).await;
    let t = T0 * 1000;
    let entries = vec![
        north.scan(0, t),
        north.scan(0, t + 120_000),
        north.scan(1, t + 5_000),
        // A ticket the chain does not have (admitted by an offline policy).
        north.scan(999, t + 7_000),
    ];
    let exits = vec![exit.scan(0, t + 60_000)];
    assert_eq!(north.upload(entries.clone()).await.status(), 200);
    assert_eq!(exit.upload(exits).await.status(), 200);
    // The same upload again changes nothing on chain either.
    assert_eq!(north.upload(entries).await.status(), 200);

    let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(summary.confirmed, 4, "{summary:?}");
    assert_eq!(summary.failed, 1, "the unknown ticket: {summary:?}");
    assert_eq!(summary.waiting + summary.submitted, 0, "{summary:?}");
    assert!(summary.transactions >= 1);
    assert_eq!(
        summary.fees_lamports,
        summary.transactions * replay::FEE_PER_SIGNATURE
    );

    let tickets = server.chain_tickets(&[0, 1, 2]).await;
    let t0 = tickets[0].as_ref().unwrap();
    assert_eq!(t0.entry_count, 2, "two entries of ticket 0, each once");
    assert!(t0.inside, "entry, exit, entry: inside");
    assert_eq!(t0.last_scan_at_ms, (T0 + 120) * 1000);
    assert_eq!(t0.scans_applied, 3, "entry, exit, entry folded");
    let t1 = tickets[1].as_ref().unwrap();
    assert_eq!((t1.entry_count, t1.last_gate), (1, 1));
    assert!(!tickets[2].as_ref().unwrap().entered);

    // Every confirmed scan names its transaction; the failed one says why.
    let replays = server.state.store.scan_replays(EVENT).await.unwrap();
    for r in &replays {
        match r.state.as_str() {
            "confirmed" => assert!(r.signature.is_some(), "{r:?}"),
            "failed" => assert!(
                r.error.as_deref().unwrap_or_default().contains("not exist"),
                "{r:?}"
            ),
            other => panic!("unexpected state {other}: {r:?}"),
        }
    }
    let status = server
        .admin_get(&format!("/api/admin/events/{EVENT}/replay?scans=true"))
        .await;
    assert_eq!(status["confirmed"], 4);
    assert_eq!(status["scans"].as_array().unwrap().len(), 5);

    // Another pass finds nothing to do.
    let again = replay::round(&server.state, "another").await.unwrap();
    assert_eq!(again, replay::RoundReport::default());

    // The chain file alone, reopened, holds the same accounts.
    let reopened =
        sync_server::chain::embedded::EmbeddedChain::open(&server.dir().join("chain.sqlite"))
            .await
            .unwrap();
    let authority = {
        use solana_sdk::signature::Signer;
        server.state.chain.as_ref().unwrap().authority.pubkey()
    };
    let event = ticketing::client::event_address(&authority, EVENT).0;
    let after = sync_server::chain::ops::tickets(&reopened, &event, &[0, 1])
        .await
        .unwrap();
    assert_eq!(after[0].as_ref().unwrap().entry_count, 2);
    assert_eq!(after[1].as_ref().unwrap().entry_count, 1);
}

async fn a_late_upload_older_than_the_chain_still_counts_there(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(1).await;
    let north = server.enrol("north", 11).await;
    let south = server.enrol("south", 12).await;
    let t = T0 * 1000;
    assert_eq!(
        north
            .upload(vec![north.scan(0, t + 100_000)])
            .await
            .status(),
        200
    );
    let first = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(first.confirmed, 1);

    // South was offline and admitted the same ticket earlier.
    let late = south.scan(0, t + 50_000);
    let ack: shared::wire::JournalAck =
        south.upload(vec![late.clone()]).await.json().await.unwrap();
    assert_eq!(ack.stored, 1);
    let summary = replay::drain(&server.state, EVENT, DRAIN).await.unwrap();
    assert_eq!(
        (summary.confirmed, summary.superseded),
        (2, 0),
        "{summary:?}"
    );
    // The fold of both admissions: counted twice (a conflict), last at north.
    let ticket = server.chain_tickets(&[0]).await.pop().flatten().unwrap();
    assert_eq!((ticket.entry_count, ticket.scans_applied), (2, 2));
    assert_eq!(ticket.last_scan_at_ms, (T0 + 100) * 1000);
    // Kept on the server, and shown as a conflict for organizers.
    let conflicts = server
        .admin_get(&format!("/api/admin/events/{EVENT}/conflicts"))
        .await;
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{conflicts}");
}

/// Tickets in the RPC fault campaign: `RPC_FAULT_TICKETS` (default 12, at
/// most 1,000). The long run (figures in docs/reliability.md):
/// `RPC_FAULT_TICKETS=1000 cargo nextest run --workspace -E 'binary(chain_replay) and test(rpc_path)'`.
fn rpc_fault_tickets() -> u32 {
    std::env::var("RPC_FAULT_TICKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12u32)
        .clamp(1, 1000)
}

async fn the_rpc_path_survives_dropped_requests_lost_answers_and_stale_blockhashes(db: Db) {
    let faults = Faults {
        drop_every: 5,
        lose_answer_every: 7,
        stale_blockhash_every: 3,
        delay: Duration::from_millis(5),
        ..Faults::default()
    };
    let tally = faults.tally.clone();
    let server = start_on_chain(db, ChainMode::Rpc(faults)).await;
    let n = rpc_fault_tickets();
    // Creating the event and minting go through the faulty RPC too.
    let tickets = server.seed_on_chain(n).await;
    assert_eq!(tickets.len(), n as usize);
    let ids: Vec<u32> = tickets.iter().map(|t| t.ticket.ticket_id).collect();
    assert_eq!(ids, (0..n).collect::<Vec<_>>(), "each ticket minted once");
    eprintln!("{db:?}: minted {n} tickets; so far {}", tally.summary());

    let north = server.enrol("north", 11).await;
    let exit = server.enrol("exit", 12).await;
    let t = T0 * 1000;
    // Arrivals a second apart, closer for a long run: every scan stays
    // within the 240 s ahead of the chain's clock that the replay sends
    // (the chain's clock stands still here; later scans would wait for it).
    let spacing = (150_000 / i64::from(n)).min(1000);
    let mut entries = Vec::new();
    let mut exits = Vec::new();
    for id in 0..n {
        let at = t + i64::from(id) * spacing;
        entries.push(north.scan(id, at));
        exits.push(exit.scan(id, at + 30_000));
        entries.push(north.scan(id, at + 60_000));
    }
    // Uploads of at most 100 scans, as gates send them.
    for batch in entries.chunks(100) {
        assert_eq!(north.upload(batch.to_vec()).await.status(), 200);
    }
    for batch in exits.chunks(100) {
        assert_eq!(exit.upload(batch.to_vec()).await.status(), 200);
    }

    let summary = replay::drain(&server.state, EVENT, DRAIN * (1 + n / 50))
        .await
        .unwrap();
    eprintln!("{db:?}: replay {summary:?}; in all {}", tally.summary());
    assert_eq!(summary.confirmed, u64::from(3 * n), "{summary:?}");
    assert_eq!(
        summary.failed + summary.superseded + summary.waiting,
        0,
        "{summary:?}"
    );
    for (id, ticket) in server.chain_tickets(&ids).await.into_iter().enumerate() {
        let ticket = ticket.unwrap();
        assert_eq!(
            ticket.entry_count, 2,
            "ticket {id}: each entry exactly once"
        );
        assert!(ticket.inside, "ticket {id}");
    }
}

async fn two_servers_on_one_database_share_the_replay_without_doubling(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    server.seed_on_chain(20).await;
    let north = server.enrol("north", 11).await;
    let exit = server.enrol("exit", 12).await;
    let t = T0 * 1000;
    let mut entries = Vec::new();
    let mut exits = Vec::new();
    for id in 0..20u32 {
        let at = t + i64::from(id) * 1000;
        entries.push(north.scan(id, at));
        exits.push(exit.scan(id, at + 30_000));
        entries.push(north.scan(id, at + 60_000));
    }
    assert_eq!(north.upload(entries).await.status(), 200);
    assert_eq!(exit.upload(exits).await.status(), 200);

    // A second server: its own connection pool over the same database, the
    // same chain and keys, as a second instance behind a load balancer.
    let ctx = server.state.chain.as_ref().unwrap();
    let second = sync_server::AppState::new(
        sync_server::Store::connect(&server.state.config.database_url)
            .await
            .unwrap(),
        (*server.state.config).clone(),
        ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
        server.clock.clone(),
    )
    .with_chain(sync_server::services::organizer::ChainContext {
        chain: ctx.chain.clone(),
        authority: ctx.authority.insecure_clone(),
        issuer: ctx.issuer.clone(),
    });
    let work = |state: sync_server::AppState, holder: &'static str| async move {
        let mut sent = 0;
        let deadline = std::time::Instant::now() + DRAIN;
        while std::time::Instant::now() < deadline {
            let report = replay::round(&state, holder).await.unwrap();
            sent += report.transactions;
            let s = state.store.replay_summary(EVENT).await.unwrap();
            if s.waiting + s.submitted == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent
    };
    let (a, b) = tokio::join!(
        work(server.state.clone(), "server-a"),
        work(second, "server-b")
    );
    let summary = server.state.store.replay_summary(EVENT).await.unwrap();
    assert_eq!(summary.confirmed, 60, "{summary:?}");
    assert_eq!(summary.superseded + summary.failed, 0, "{summary:?}");
    assert_eq!(
        summary.transactions as usize,
        a + b,
        "every transaction sent counted once"
    );
    for (id, ticket) in server
        .chain_tickets(&(0..20).collect::<Vec<_>>())
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(ticket.unwrap().entry_count, 2, "ticket {id}");
    }
}
