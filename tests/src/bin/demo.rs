//! The whole system on one machine, with nothing to install: a sync server on
//! SQLite and the embedded chain running the real ticketing program, two gate
//! agents, tickets as QR images, a network cut, a double admission, and the
//! entries recorded on chain with their cost.
//!
//! `cargo run --release -p end-to-end --bin demo`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use end_to_end::{GateBox, NetSwitch, Server, is_inside, is_revoked, read_qr_png, write_qr_png};
use reqwest::Method;
use serde_json::{Value, json};
use solana_sdk::signature::{Keypair, Signer};

/// Runs the gate system end to end on this machine and explains each step.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Folder for the server's database and chain, the gates' journals and
    /// the tickets' QR images. Emptied first.
    #[arg(long, default_value = "demo-output")]
    dir: PathBuf,
    /// Tickets to mint.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(6..=100))]
    tickets: u32,
    /// Show the components' logs too.
    #[arg(long)]
    verbose: bool,
    /// Keep the server, the gates and the chain running after the demo, to
    /// look at the finished event in the organizer console (Ctrl-C stops).
    #[arg(long)]
    serve: bool,
}

fn step(n: u32, title: &str) {
    println!("\n\x1b[1m{n}. {title}\x1b[0m");
}

fn say(text: impl AsRef<str>) {
    println!("   {}", text.as_ref());
}

fn verdict(gate: &GateBox, ticket: u32, entry: &gate_agent::store::JournalEntry) {
    let mark = if entry.record.opened {
        "OPEN "
    } else {
        "SHUT "
    };
    say(format!(
        "{:<6} ticket #{ticket}: {mark} {} ({})",
        gate.name, entry.detail, entry.record.outcome
    ));
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = if args.verbose { "info" } else { "error" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("cannot empty {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(args.dir.join("qr"))?;
    let dir = args.dir.canonicalize()?;

    println!(
        "NFT ticket gates, end to end. Files go to {}",
        dir.display()
    );

    step(
        1,
        "Sync server: SQLite database, embedded chain with the ticketing program",
    );
    let server = Server::start(&dir.join("server"), None)?;
    let chain = server.admin_ok(Method::GET, "/api/admin/chain", None, 200)?;
    say(format!("listening on {}", server.url));
    say(format!(
        "chain: {}",
        chain["chain"].as_str().unwrap_or_default()
    ));
    say(format!(
        "server authority (organizer, pays fees): {}",
        chain["authority"].as_str().unwrap_or_default()
    ));

    step(
        2,
        "Organizer creates an event on chain and defines two entry gates",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let event_id = now as u64;
    let created = server.admin_ok(
        Method::POST,
        "/api/admin/events",
        Some(json!({
            "event_id": event_id,
            "name": "Harbour Lights",
            "venue": "Pier 4",
            "starts_at": now + 1800,
            "ends_at": now + 6 * 3600,
            "doors_open_at": now - 600,
            "doors_close_at": now + 6 * 3600,
            "capacity": 1000,
            "tiers": [{ "name": "general", "price_lamports": 0, "supply": 1000 }],
            "reentry": "forbidden",
            "transferable": true
        })),
        201,
    )?;
    say(format!(
        "event {event_id} at {} (validator key {})",
        created["address"].as_str().unwrap_or_default(),
        created["validator"].as_str().unwrap_or_default()
    ));
    for (number, name) in [(1, "north"), (2, "south")] {
        server.admin_ok(
            Method::PUT,
            &format!("/api/admin/events/{event_id}/gates"),
            Some(json!({ "number": number, "name": name, "direction": "entry" })),
            204,
        )?;
    }
    say("gates: 1 north (entry), 2 south (entry)");

    step(
        3,
        "Tickets minted on chain as NFTs; their QR codes written as images",
    );
    let wallets: Vec<Keypair> = (0..args.tickets).map(|_| Keypair::new()).collect();
    let progress = indicatif::ProgressBar::new(u64::from(args.tickets));
    progress.set_style(
        indicatif::ProgressStyle::with_template("   minting [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut codes: Vec<String> = Vec::new();
    for chunk in wallets.chunks(4) {
        let minted = server.admin_ok(
            Method::POST,
            &format!("/api/admin/events/{event_id}/tickets"),
            Some(json!({
                "recipients": chunk.iter().map(|w| json!({ "wallet": w.pubkey().to_string() })).collect::<Vec<_>>()
            })),
            201,
        )?;
        for ticket in minted["tickets"].as_array().context("no tickets")? {
            codes.push(ticket["code"].as_str().context("no code")?.to_owned());
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    let mut images = Vec::new();
    for (id, code) in codes.iter().enumerate() {
        let path = dir.join("qr").join(format!("ticket-{id}.png"));
        write_qr_png(code, &path)?;
        images.push(path);
    }
    say(format!(
        "{} tickets, ids 0..{}, QR images in {}",
        codes.len(),
        codes.len() - 1,
        dir.join("qr").display()
    ));
    say(format!(
        "ticket #0 is held by wallet {}",
        wallets[0].pubkey()
    ));

    step(
        4,
        "Two gate agents enrol with one-time tokens and load the ticket cache",
    );
    let switch = NetSwitch::start(&server.rt, server.addr)?;
    let north_dir = dir.join("gate-north");
    let south_dir = dir.join("gate-south");
    GateBox::enrol(
        &north_dir,
        &server.url,
        &server.enrol_token(event_id, "north")?,
    )?;
    // South reaches the server through a switch this demo can unplug.
    GateBox::enrol(
        &south_dir,
        &switch.url,
        &server.enrol_token(event_id, "south")?,
    )?;
    let north = GateBox::start(&north_dir, "north")?;
    let south = GateBox::start(&south_dir, "south")?;
    for gate in [&north, &south] {
        gate.wait_status("the ticket cache", Duration::from_secs(30), |s| {
            s["online"] == true && s["setup_error"].is_null() && !s["cache_generated_at"].is_null()
        })?;
        say(format!("{}: enrolled, online, cache loaded", gate.name));
    }

    step(
        5,
        "Holders scan their QR codes (images decoded like camera frames)",
    );
    let scan = |gate: &GateBox, ticket: usize| -> anyhow::Result<gate_agent::store::JournalEntry> {
        let text = read_qr_png(&images[ticket])?;
        let entry = gate.scan(&text)?;
        verdict(gate, ticket as u32, &entry);
        Ok(entry)
    };
    scan(&north, 0)?;
    scan(&north, 1)?;
    scan(&south, 2)?;
    let took = south.wait_ticket(
        event_id,
        0,
        "north's admission at south",
        Duration::from_secs(10),
        is_inside,
    )?;
    say(format!(
        "south heard of north's admission of #0 within {} ms",
        took.as_millis()
    ));
    scan(&south, 0)?;

    step(
        6,
        "The organizer revokes ticket #3; the gates hear it at once",
    );
    let revoked_at = Instant::now();
    server.admin_ok(
        Method::POST,
        &format!("/api/admin/events/{event_id}/tickets/3/revoke"),
        None,
        200,
    )?;
    north.wait_ticket(
        event_id,
        3,
        "the revocation at north",
        Duration::from_secs(10),
        is_revoked,
    )?;
    say(format!(
        "revoked on chain and known at the gate {} ms after the organizer asked",
        revoked_at.elapsed().as_millis()
    ));
    scan(&north, 3)?;

    step(
        7,
        "South loses its network; ticket #4 is admitted at BOTH gates",
    );
    switch.cut();
    south.wait_status("south offline", Duration::from_secs(20), |s| {
        s["online"] == false
    })?;
    say("south: OFFLINE (keeps admitting from its cache, journals every scan)");
    scan(&north, 4)?;
    std::thread::sleep(Duration::from_millis(1100));
    scan(&south, 4)?;
    scan(&south, 5)?;
    let backlog = south.status()?["counts"]["unsent"].clone();
    say(format!("south's unsent journal: {backlog} scans"));

    step(
        8,
        "South's network is back; its journal is uploaded and the conflict found",
    );
    switch.restore();
    south.wait_status(
        "south back online with an empty backlog",
        Duration::from_secs(30),
        |s| s["online"] == true && s["counts"]["unsent"] == 0,
    )?;
    let conflicts = server.admin_ok(
        Method::GET,
        &format!("/api/admin/events/{event_id}/conflicts"),
        None,
        200,
    )?;
    for c in conflicts.as_array().cloned().unwrap_or_default() {
        say(format!(
            "CONFLICT: ticket #{} admitted at gate {} after gate {} had admitted it {} ms earlier",
            c["ticket_id"],
            c["gate"],
            c["earlier_gate"],
            c["scanned_at_ms"].as_i64().unwrap_or(0)
                - c["earlier_scanned_at_ms"].as_i64().unwrap_or(0)
        ));
    }
    let gates = server.admin_ok(
        Method::GET,
        &format!("/api/admin/events/{event_id}/gates"),
        None,
        200,
    )?;
    say("gate     admitted  refused  inside  conflicts  online");
    for g in gates.as_array().cloned().unwrap_or_default() {
        let n = |key: &str| g[key].as_u64().unwrap_or(0);
        say(format!(
            "{:<8} {:>8} {:>8} {:>7} {:>10}  {}",
            g["name"].as_str().unwrap_or_default(),
            n("admitted"),
            n("rejected"),
            n("inside"),
            n("conflicts"),
            if g["online"] == true { "yes" } else { "no" }
        ));
    }

    step(
        9,
        "Every admission recorded on chain in batches (validate_entries)",
    );
    let summary = server.drain_replay(event_id)?;
    let ids: Vec<u32> = (0..codes.len() as u32).collect();
    for (id, ticket) in server
        .chain_tickets(event_id, &ids)?
        .into_iter()
        .enumerate()
    {
        if let Some(t) = ticket.filter(|t| t.entered) {
            say(format!(
                "ticket #{id}: entered on chain {} time(s), last at gate {}, inside: {}",
                t.entry_count, t.last_gate, t.inside
            ));
        }
    }
    let replay: Value = server.admin_ok(
        Method::GET,
        &format!("/api/admin/events/{event_id}/replay"),
        None,
        200,
    )?;
    say(format!(
        "{} scans confirmed on chain (each ticket as the fold of its scans), {} failed",
        summary.confirmed, summary.failed
    ));
    let per_entry = if summary.confirmed > 0 {
        summary.fees_lamports as f64 / summary.confirmed as f64
    } else {
        0.0
    };
    say(format!(
        "{} transaction(s), {} lamports in fees = {:.0} lamports ({:.9} SOL) per entry",
        replay["transactions"],
        summary.fees_lamports,
        per_entry,
        per_entry / 1e9
    ));

    let console = format!("{}/console", server.url);
    let link = sync_server::http::console::sign_in_link(&server.state)
        .map(|path| format!("{}{path}", server.url));
    println!(
        "\nDone in {:.1} s. Everything is in {}; run again to start over.",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    println!("\nOrganizer console: {console}");
    if let Some(link) = &link {
        println!(
            "One-time sign-in link (valid {} minutes): {link}",
            sync_server::http::console::LINK_SECS / 60
        );
    }
    if args.serve {
        println!(
            "The server, both gates and the chain keep running; Ctrl-C stops them. \
             (Without --serve they stop now.)"
        );
        server.rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    } else {
        println!("Run with --serve to keep them running and open the console.");
    }
    north.stop();
    south.stop();
    server.stop()?;
    Ok(())
}
