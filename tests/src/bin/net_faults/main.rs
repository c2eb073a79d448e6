//! The network-fault campaign's driver (run by `scripts/net-faults.sh`):
//! the real `sync-server` (SQLite, embedded chain) in one network namespace,
//! four real `gate-agent` processes in theirs, each gate on its own faulty
//! link to the server. A scripted event feeds thousands of scans into the
//! gates' stdin scanners while every link goes through loss, delay and
//! jitter, reordering, duplication, partitions and link flaps; then the
//! network heals and the driver checks that every journaled scan reached
//! the server once, every admission is on chain once, no gate was
//! restarted, and prints the gates' verdict latency with and without
//! faults.
//!
//! Expects to run as root inside a namespace of its own, with the server's
//! and the gates' namespaces already made (`PREFIX-srv`, `PREFIX-g1` to
//! `PREFIX-g4`); the script does that and removes them afterwards.

mod net;
mod plan;
mod report;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use solana_sdk::signature::{Keypair, Signer};

use net::{GateLink, LinkKind};
use plan::{EXIT_GATE, FaultKind, GATES, LinkAction, ScanKind};
use report::{Distribution, TABLE_HEAD};

const ADMIN: &str = "net-faults-admin-token";
const GATE_NAMES: [&str; GATES] = ["north", "east", "south", "exit"];

/// Network-fault campaign: four gates and the server in network
/// namespaces, faulty links, a scripted event, exactly-once checks.
#[derive(Debug, Parser)]
struct Args {
    /// Namespaces are PREFIX-srv and PREFIX-g1..PREFIX-g4.
    #[arg(long)]
    prefix: String,
    /// Scans in the scripted event, over all gates.
    #[arg(long, default_value_t = 6000)]
    scans: usize,
    /// Length of the scripted event in seconds (one hour of doors, compressed).
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// How gate links are impaired (default: netem where the kernel has it).
    #[arg(long, value_enum)]
    link: Option<LinkKind>,
    #[arg(long)]
    gate_agent: PathBuf,
    #[arg(long)]
    sync_server: PathBuf,
    /// Working directory (databases, logs).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 0x6e65_745f_6661)]
    seed: u64,
    /// How long to wait for the gates and the chain to settle after the network heals.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match campaign(&args) {
        Ok(failures) if failures.is_empty() => {
            println!("\nnet-faults: PASS");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            println!("\nnet-faults: FAIL");
            for f in failures {
                println!("  - {f}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("net-faults: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// HTTP to the server and the gates over the management links.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    server: String,
}

impl Http {
    fn get(&self, url: &str, admin: bool) -> anyhow::Result<(u16, Value)> {
        self.request(reqwest::Method::GET, url, None, admin)
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        admin: bool,
    ) -> anyhow::Result<(u16, Value)> {
        self.rt.block_on(async {
            let mut request = self
                .client
                .request(method, url)
                .timeout(Duration::from_secs(60));
            if admin {
                request = request.bearer_auth(ADMIN);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok((
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            ))
        })
    }

    fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.request(
            method.clone(),
            &format!("{}{path}", self.server),
            body,
            true,
        )?;
        if status != expect {
            bail!("{method} {path}: {status} {json}");
        }
        Ok(json)
    }
}

/// A gate-agent process in its namespace, fed through its stdin scanner.
struct GateProc {
    n: usize,
    name: &'static str,
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    db: PathBuf,
    status_url: String,
    /// When each verdict line came out, in order.
    verdicts: Arc<Mutex<Vec<Instant>>>,
}

impl GateProc {
    fn status(&self, http: &Http) -> anyhow::Result<Value> {
        let (code, json) = http.get(&self.status_url, false)?;
        if code != 200 {
            bail!("gate {} status: {code}", self.n);
        }
        Ok(json)
    }
}

impl Drop for GateProc {
    // Ends the gate if the driver stops early (after the run it is gone).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills what it holds when the driver ends early.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check().unwrap_or(false) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            // One more try for its error, if any.
            check()?;
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[allow(clippy::too_many_lines)]
fn campaign(args: &Args) -> anyhow::Result<Vec<String>> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir)?;
    let server_ns = format!("{}-srv", args.prefix);
    let gate_ns: Vec<String> = (1..=GATES)
        .map(|n| format!("{}-g{n}", args.prefix))
        .collect();
    let link_kind = args.link.unwrap_or_else(|| {
        if net::netem_available(&server_ns) {
            LinkKind::Netem
        } else {
            LinkKind::Wire
        }
    });
    let length = Duration::from_secs(args.seconds);
    println!(
        "net-faults: {} scans over {} s ({:.0}x compression of a one-hour event), 4 gates, links: {}",
        args.scans,
        args.seconds,
        3600.0 / args.seconds as f64,
        match link_kind {
            LinkKind::Netem => "veth + tc netem",
            LinkKind::Wire =>
                "TUN pairs + userspace wire (this kernel has no sch_netem; same impairments in userspace)",
        }
    );

    // --- the network ---------------------------------------------------------
    net::management_link(&server_ns, 0)?;
    let mut links = Vec::new();
    for (i, ns) in gate_ns.iter().enumerate() {
        net::management_link(ns, i + 1)?;
        links.push(GateLink::create(
            link_kind,
            &server_ns,
            ns,
            i + 1,
            args.seed.wrapping_add(i as u64),
        )?);
    }

    // --- the server ------------------------------------------------------------
    let server_dir = dir.join("server");
    std::fs::create_dir_all(&server_dir)?;
    let server_config = server_dir.join("sync-server.toml");
    std::fs::write(
        &server_config,
        format!(
            "listen = \"0.0.0.0:8080\"\n\
             database_url = \"sqlite://{db}\"\n\
             server_key_file = \"{dir}/server-key.json\"\n\
             admin_token = \"{ADMIN}\"\n\
             [gates]\nmax_wait_secs = 5\n\
             [replay]\nidle_ms = 200\n\
             [chain]\nembedded_file = \"{dir}/chain.sqlite\"\n\
             authority_key_file = \"{dir}/chain-authority.json\"\n\
             issuer_key_file = \"{dir}/issuer-key.json\"\n",
            db = server_dir.join("sync.db").display(),
            dir = server_dir.display(),
        ),
    )?;
    let mut children = Children(Vec::new());
    let server_log = std::fs::File::create(dir.join("server.log"))?;
    let server = Command::new("ip")
        .args(["netns", "exec", &server_ns])
        .arg(&args.sync_server)
        .arg("--config")
        .arg(&server_config)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(server_log.try_clone()?)
        .stderr(server_log)
        .spawn()
        .context("cannot start sync-server")?;
    let server_pid = server.id();
    children.0.push(server);
    let http = Http {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        client: reqwest::Client::new(),
        server: format!("http://{}:8080", net::mgmt_addresses(0).1),
    };
    wait_for("the server's /health", Duration::from_secs(60), || {
        Ok(http.get(&format!("{}/health", http.server), false)?.0 == 200)
    })?;

    // --- the event -------------------------------------------------------------
    let tickets = plan::tickets_needed(args.scans);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let event = now as u64;
    let created = http.admin(
        reqwest::Method::POST,
        "/api/admin/events",
        Some(json!({
            "event_id": event, "name": "Network faults", "venue": "Hall",
            "starts_at": now + 600, "ends_at": now + 6 * 3600,
            "doors_open_at": now - 600, "doors_close_at": now + 6 * 3600,
            "capacity": tickets,
            "tiers": [{ "name": "general", "price_lamports": 0, "supply": tickets }],
            "reentry": { "allowed_after": { "min_outside_secs": 0 } },
            "transferable": true
        })),
        201,
    )?;
    let event_address: solana_sdk::pubkey::Pubkey = created["address"]
        .as_str()
        .context("no event address")?
        .parse()?;
    for (i, name) in GATE_NAMES.iter().enumerate() {
        let direction = if i == EXIT_GATE { "exit" } else { "entry" };
        http.admin(
            reqwest::Method::PUT,
            &format!("/api/admin/events/{event}/gates"),
            Some(json!({ "number": i + 1, "name": name, "direction": direction })),
            204,
        )?;
    }
    let minting = Instant::now();
    let mut codes = Vec::with_capacity(tickets);
    let mut ticket_ids: Vec<u32> = Vec::with_capacity(tickets);
    let wallets: Vec<String> = (0..tickets)
        .map(|_| Keypair::new().pubkey().to_string())
        .collect();
    for chunk in wallets.chunks(100) {
        let minted = http.admin(
            reqwest::Method::POST,
            &format!("/api/admin/events/{event}/tickets"),
            Some(json!({ "recipients": chunk.iter().map(|w| json!({ "wallet": w })).collect::<Vec<_>>() })),
            201,
        )?;
        let mut batch: Vec<(u64, String)> = minted["tickets"]
            .as_array()
            .context("no tickets")?
            .iter()
            .map(|t| {
                (
                    t["ticket_id"].as_u64().unwrap_or(0),
                    t["code"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        batch.sort();
        for (id, code) in batch {
            ticket_ids.push(u32::try_from(id)?);
            codes.push(code);
        }
    }
    println!(
        "event {event}: {tickets} tickets minted on chain in {:.1} s",
        minting.elapsed().as_secs_f64()
    );

    // --- the gates ---------------------------------------------------------------
    let mut gates = Vec::new();
    for (i, ns) in gate_ns.iter().enumerate() {
        let n = i + 1;
        let gate_dir = dir.join(format!("gate-{n}"));
        std::fs::create_dir_all(&gate_dir)?;
        let config = gate_dir.join("gate-agent.toml");
        let db = gate_dir.join("gate.db");
        let status_listen = format!("{}:8088", net::mgmt_addresses(n).1);
        std::fs::write(
            &config,
            format!(
                "[store]\npath = \"{db}\"\n\
                 [outputs]\nkind = \"file\"\nfile = \"{relay}\"\n\
                 [status]\nenabled = true\nlisten = \"{status_listen}\"\n\
                 [sync]\npoll_wait_secs = 5\nrequest_timeout_secs = 3\nslow_request_ms = 2000\nmax_backoff_secs = 5\n\
                 [log]\nfilter = \"info\"\njson = true\n\
                 [[scanner]]\nkind = \"stdin\"\n",
                db = db.display(),
                relay = gate_dir.join("relay.jsonl").display(),
            ),
        )?;
        let token = http.admin(
            reqwest::Method::POST,
            &format!("/api/admin/events/{event}/enrol-tokens"),
            Some(json!({ "gate": GATE_NAMES[i] })),
            201,
        )?["token"]
            .as_str()
            .context("no enrolment token")?
            .to_owned();
        let enrol = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&args.gate_agent)
            .arg("--config")
            .arg(&config)
            .args(["enrol", "--wait", "30s", "--server"])
            .arg(format!("http://{}:8080", net::data_addresses(n).0))
            .arg("--token")
            .arg(&token)
            .output()?;
        if !enrol.status.success() {
            bail!(
                "gate {n} enrolment: {}",
                String::from_utf8_lossy(&enrol.stderr)
            );
        }
        let log = std::fs::File::create(gate_dir.join("gate.log"))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&args.gate_agent)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start gate-agent")?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().context("no stderr")?;
        let verdicts = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&verdicts);
        std::thread::Builder::new()
            .name(format!("gate-{n}-log"))
            .spawn(move || {
                let mut log = std::io::BufWriter::new(log);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let at = Instant::now();
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["outcome"].is_string()
                        && v["fields"]["scan_id"].is_string()
                        && let Ok(mut seen) = seen.lock()
                    {
                        seen.push(at);
                    }
                    let _ = writeln!(log, "{line}");
                }
                let _ = log.flush();
            })?;
        let gate = GateProc {
            n,
            name: GATE_NAMES[i],
            pid: child.id(),
            child,
            stdin,
            db,
            status_url: format!("http://{status_listen}/api/status"),
            verdicts,
        };
        gates.push(gate);
    }
    for gate in &gates {
        wait_for(
            &format!("gate {} online with its cache", gate.n),
            Duration::from_secs(60),
            || {
                let s = gate.status(&http)?;
                Ok(s["online"] == true && s["setup_error"].is_null())
            },
        )?;
    }
    println!("4 gates enrolled and online: {}", GATE_NAMES.join(", "));

    // --- the event runs ----------------------------------------------------------
    let script = plan::scan_script(args.scans, length, args.seed);
    let (steps, windows) = plan::fault_schedule(length);
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now() + Duration::from_millis(500);

    // Online/offline as each gate's status page shows it, twice a second.
    let status_urls: Vec<String> = gates.iter().map(|g| g.status_url.clone()).collect();
    let monitor = {
        let stop = Arc::clone(&stop_monitor);
        std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || monitor_online(&status_urls, t0, &stop))?
    };

    let mut feeders = Vec::new();
    for gate in &mut gates {
        let index = gate.n - 1;
        let lines: Vec<(Duration, String)> = script
            .iter()
            .filter(|s| s.gate == index)
            .map(|s| {
                let code = match s.ticket {
                    Some(t) => codes[t].clone(),
                    None => format!("NOT-A-TICKET-{}", s.at.as_millis()),
                };
                (s.at, code)
            })
            .collect();
        let mut stdin = gate.stdin.take().context("gate stdin")?;
        feeders.push(
            std::thread::Builder::new()
                .name(format!("feed-{}", gate.n))
                .spawn(
                    move || -> std::io::Result<(Vec<(Duration, Instant)>, ChildStdin)> {
                        let mut written = Vec::with_capacity(lines.len());
                        for (at, code) in lines {
                            let due = t0 + at;
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            written.push((at, Instant::now()));
                            stdin.write_all(format!("{code}\n").as_bytes())?;
                            stdin.flush()?;
                        }
                        // Handed back and kept open: the scanner stays connected.
                        Ok((written, stdin))
                    },
                )?,
        );
    }

    let mut injected: BTreeMap<FaultKind, usize> = BTreeMap::new();
    let mut fault_errors = Vec::new();
    for step in &steps {
        let due = t0 + step.at;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let link = &links[step.gate];
        let result = match step.action {
            LinkAction::Impair(kind) => {
                *injected.entry(kind).or_default() += 1;
                link.impair(&kind.impairment())
            }
            LinkAction::Clear => link.impair(&net::Impairment::default()),
            LinkAction::Down => {
                *injected.entry(FaultKind::Flap).or_default() += 1;
                link.set_up(false)
            }
            LinkAction::Up => link.set_up(true),
        };
        if let Err(e) = result {
            fault_errors.push(format!("gate {} {:?}: {e:#}", step.gate + 1, step.action));
        }
    }
    let mut written = Vec::new();
    for (gate, feeder) in gates.iter_mut().zip(feeders) {
        let (w, stdin) = feeder
            .join()
            .map_err(|_| anyhow::anyhow!("a feeder panicked"))??;
        gate.stdin = Some(stdin);
        written.push(w);
    }
    // Heal: every link clear and up (the schedule ends so; this makes sure).
    for link in &links {
        link.impair(&net::Impairment::default())?;
        link.set_up(true)?;
    }
    let healed = Instant::now();
    println!(
        "event over: {} scans written in {:.1} s; network healed",
        written.iter().map(Vec::len).sum::<usize>(),
        (healed - t0).as_secs_f64()
    );

    let mut failures: Vec<String> = fault_errors;

    // Every scan has its verdict line.
    for (gate, w) in gates.iter().zip(&written) {
        let ok = wait_for(
            &format!("gate {}'s verdicts", gate.n),
            Duration::from_secs(60),
            || Ok(gate.verdicts.lock().map(|v| v.len()).unwrap_or(0) >= w.len()),
        );
        if ok.is_err() {
            failures.push(format!(
                "gate {}: {} scans written, {} verdicts",
                gate.n,
                w.len(),
                gate.verdicts.lock().map(|v| v.len()).unwrap_or(0)
            ));
        }
    }

    // --- recovery: each gate online with nothing unsent, replay drained -------
    let settle = Duration::from_secs(args.settle_secs);
    let mut recovery = Vec::new();
    for gate in &gates {
        match wait_for(
            &format!("gate {} online with its journal uploaded", gate.n),
            settle,
            || {
                let s = gate.status(&http)?;
                Ok(s["online"] == true && s["counts"]["unsent"] == 0)
            },
        ) {
            Ok(_) => recovery.push(healed.elapsed()),
            Err(e) => {
                failures.push(format!("gate {} did not recover: {e:#}", gate.n));
                recovery.push(Duration::MAX);
            }
        }
    }
    let replay_path = format!("/api/admin/events/{event}/replay");
    let drained = wait_for("the replay to drain", settle, || {
        let r = http.admin(reqwest::Method::GET, &replay_path, None, 200)?;
        Ok(r["waiting"] == 0 && r["submitted"] == 0)
    });
    if let Err(e) = &drained {
        failures.push(format!("replay: {e:#}"));
    }
    let drained_after = healed.elapsed();
    stop_monitor.store(true, Ordering::SeqCst);
    let episodes = monitor
        .join()
        .map_err(|_| anyhow::anyhow!("the monitor panicked"))?;

    // --- checks --------------------------------------------------------------------
    // No gate was restarted: same processes, still running.
    for gate in &mut gates {
        if let Some(status) = gate.child.try_wait()? {
            failures.push(format!("gate {} exited: {status}", gate.n));
        }
    }
    if children.0[0].try_wait()?.is_some() {
        failures.push("the server exited".into());
    }

    // Journals against the server.
    let mut journal_opened: Vec<(String, u32, usize)> = Vec::new(); // scan, ticket, gate index
    let mut journal_counts = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut journaled_total = 0;
    for gate in &gates {
        let journal = gate_agent::store::Store::open(&gate.db)?.journal(None)?;
        journaled_total += journal.len();
        let mut ids = HashSet::new();
        let (mut admitted, mut rejected, mut exits) = (0u64, 0u64, 0u64);
        for e in &journal {
            if !ids.insert(e.record.scan_id) {
                failures.push(format!(
                    "gate {}: scan {} journaled twice",
                    gate.n, e.record.scan_id
                ));
            }
            *outcomes.entry(e.record.outcome.clone()).or_default() += 1;
            if !e.uploaded {
                failures.push(format!(
                    "gate {}: scan {} not uploaded",
                    gate.n, e.record.scan_id
                ));
            }
            match (e.record.opened, e.record.direction) {
                (false, _) => rejected += 1,
                (true, shared::Direction::Entry) => admitted += 1,
                (true, shared::Direction::Exit) => exits += 1,
            }
            if e.record.opened
                && let Some(t) = e.record.ticket_id
            {
                journal_opened.push((e.record.scan_id.to_string(), t, gate.n - 1));
            }
        }
        let w = written[gate.n - 1].len();
        if journal.len() != w {
            failures.push(format!(
                "gate {}: {w} scans written, {} journaled",
                gate.n,
                journal.len()
            ));
        }
        journal_counts.push((admitted, rejected, exits));
    }
    let per_gate = http.admin(
        reqwest::Method::GET,
        &format!("/api/admin/events/{event}/gates"),
        None,
        200,
    )?;
    let mut conflicts = 0;
    for (i, (admitted, rejected, exits)) in journal_counts.iter().enumerate() {
        let g = per_gate
            .as_array()
            .and_then(|a| a.iter().find(|g| g["gate"] == i + 1))
            .context("gate missing on the server")?;
        let server = (
            g["admitted"].as_u64().unwrap_or(u64::MAX),
            g["rejected"].as_u64().unwrap_or(u64::MAX),
            g["exits"].as_u64().unwrap_or(u64::MAX),
        );
        conflicts += g["conflicts"].as_u64().unwrap_or(0);
        if server != (*admitted, *rejected, *exits) {
            failures.push(format!(
                "gate {}: journal (admitted, rejected, exits) {:?}, server {server:?}",
                i + 1,
                (admitted, rejected, exits)
            ));
        }
        if g["backlog"] != 0 {
            failures.push(format!(
                "gate {}: server sees a backlog {}",
                i + 1,
                g["backlog"]
            ));
        }
    }
    let replay = http.admin(
        reqwest::Method::GET,
        &format!("{replay_path}?scans=true"),
        None,
        200,
    )?;
    let mut on_server: HashMap<String, usize> = HashMap::new();
    for s in replay["scans"].as_array().context("no scans")? {
        let id = s["scan_id"].as_str().unwrap_or_default().to_owned();
        *on_server.entry(id.clone()).or_default() += 1;
        if s["state"] != "confirmed" {
            failures.push(format!("scan {id} is {} on the server", s["state"]));
        }
    }
    let journal_ids: HashSet<&str> = journal_opened.iter().map(|(s, _, _)| s.as_str()).collect();
    let missing = journal_ids
        .iter()
        .filter(|id| !on_server.contains_key(**id))
        .count();
    let doubled = on_server.values().filter(|n| **n > 1).count();
    let extra = on_server
        .keys()
        .filter(|id| !journal_ids.contains(id.as_str()))
        .count();
    if missing + doubled + extra > 0 {
        failures.push(format!(
            "gate-opening scans: {missing} journaled but not on the server, {doubled} twice there, {extra} there but journaled nowhere"
        ));
    }
    let confirmed = replay["confirmed"].as_u64().unwrap_or(0);
    if confirmed != journal_opened.len() as u64 || replay["failed"] != 0 {
        failures.push(format!(
            "replay: {} gate-opening scans journaled, confirmed {confirmed}, failed {}",
            journal_opened.len(),
            replay["failed"]
        ));
    }

    // Gate processes: same PIDs as started, still online.
    let pids: Vec<String> = gates
        .iter()
        .map(|g| format!("{} pid {}", g.name, g.pid))
        .collect();

    // Stop everything, then read the chain the server kept.
    for gate in &gates {
        terminate(gate.pid);
    }
    for gate in &mut gates {
        let _ = gate.child.wait();
    }
    terminate(server_pid);
    let _ = children.0[0].wait();
    let mut expected: HashMap<u32, (u16, u16)> = HashMap::new(); // ticket -> (scans, entries)
    for (_, ticket, gate) in &journal_opened {
        let e = expected.entry(*ticket).or_default();
        e.0 += 1;
        if *gate != EXIT_GATE {
            e.1 += 1;
        }
    }
    let chain_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut chain_entries = 0u64;
    let mut chain_mismatch = 0usize;
    chain_rt.block_on(async {
        let chain =
            sync_server::chain::embedded::EmbeddedChain::open(&server_dir.join("chain.sqlite"))
                .await?;
        for chunk in ticket_ids.chunks(100) {
            let accounts = sync_server::chain::ops::tickets(&chain, &event_address, chunk).await?;
            for (id, account) in chunk.iter().zip(accounts) {
                let account = account.with_context(|| format!("ticket {id} not on chain"))?;
                let want = expected.get(id).copied().unwrap_or_default();
                chain_entries += u64::from(account.entry_count);
                if (account.scans_applied, account.entry_count) != want {
                    chain_mismatch += 1;
                    if chain_mismatch <= 5 {
                        failures.push(format!(
                            "ticket {id} on chain: {} scans, {} entries; journals: {} scans, {} entries",
                            account.scans_applied, account.entry_count, want.0, want.1
                        ));
                    }
                }
            }
        }
        anyhow::Ok(())
    })?;
    if chain_mismatch > 5 {
        failures.push(format!("{chain_mismatch} tickets differ on chain in all"));
    }

    // --- the figures ----------------------------------------------------------------
    let baseline_end = length.mul_f64(0.20);
    let mut by_fault: BTreeMap<FaultKind, Vec<Duration>> = BTreeMap::new();
    let (mut baseline, mut faulted, mut clear_after) = (Vec::new(), Vec::new(), Vec::new());
    for (gate, w) in gates.iter().zip(&written) {
        let verdicts = gate.verdicts.lock().map(|v| v.clone()).unwrap_or_default();
        for ((at, sent), out) in w.iter().zip(verdicts) {
            let latency = out.saturating_duration_since(*sent);
            if *at < baseline_end {
                baseline.push(latency);
            } else if let Some(kind) = plan::fault_at(&windows, gate.n - 1, *at) {
                faulted.push(latency);
                by_fault.entry(kind).or_default().push(latency);
            } else {
                clear_after.push(latency);
            }
        }
    }
    let mut kinds: BTreeMap<ScanKind, usize> = BTreeMap::new();
    for s in &script {
        *kinds.entry(s.kind).or_default() += 1;
    }
    println!("\n## Figures\n");
    println!(
        "scans scripted: {} ({})",
        script.len(),
        kinds
            .iter()
            .map(|(k, n)| format!("{k:?} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "verdicts journaled: {journaled_total} ({})",
        outcomes
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "faults injected (per gate link): {}",
        injected
            .iter()
            .map(|(k, n)| format!("{} x{n}", k.name()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    for (i, link) in links.iter().enumerate() {
        if let Some((carried, dropped, duplicated)) = link.wire_counts() {
            println!(
                "wire of gate {}: {carried} packets carried, {dropped} dropped, {duplicated} duplicated",
                i + 1
            );
        }
    }
    println!(
        "exactly once: {} gate-opening scans journaled, {} on the server ({missing} missing, {doubled} doubled, {extra} extra), {confirmed} confirmed on chain, failed {}, conflicts {conflicts}",
        journal_opened.len(),
        on_server.len(),
        replay["failed"]
    );
    println!(
        "chain: {} tickets read, {chain_mismatch} differ from the journals' fold; {chain_entries} entries on chain",
        tickets
    );
    println!("gates never restarted: {}", pids.join(", "));
    for (i, eps) in episodes.iter().enumerate() {
        let longest = eps.iter().map(|(a, b)| *b - *a).max().unwrap_or_default();
        println!(
            "gate {}: {} offline spells (longest {:.1} s), online with nothing unsent {:.1} s after the heal",
            i + 1,
            eps.len(),
            longest.as_secs_f64(),
            recovery[i].min(Duration::from_secs(99_999)).as_secs_f64()
        );
    }
    println!(
        "replay drained {:.1} s after the heal",
        drained_after.as_secs_f64()
    );
    println!("\nverdict latency at the gates (scan line written -> verdict line out):\n");
    println!("{TABLE_HEAD}");
    println!(
        "{}",
        Distribution::of(&baseline).row("fault-free baseline (first 20 %)")
    );
    println!(
        "{}",
        Distribution::of(&faulted).row("any fault on the gate's link")
    );
    for (kind, samples) in &by_fault {
        println!(
            "{}",
            Distribution::of(samples).row(&format!("- {}", kind.name()))
        );
    }
    println!(
        "{}",
        Distribution::of(&clear_after).row("between faults and after the heal")
    );
    Ok(failures)
}

/// Polls the gates' status pages until `stop`; returns each gate's offline
/// spells (from, to) relative to `t0`.
fn monitor_online(
    urls: &[String],
    t0: Instant,
    stop: &AtomicBool,
) -> Vec<Vec<(Duration, Duration)>> {
    let mut spells = vec![Vec::new(); urls.len()];
    let mut since: Vec<Option<Duration>> = vec![None; urls.len()];
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return spells;
    };
    let client = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        for (i, url) in urls.iter().enumerate() {
            let online = rt.block_on(async {
                let r = client
                    .get(url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .ok()?;
                let v: Value = r.json().await.ok()?;
                v["online"].as_bool()
            });
            let now = Instant::now().saturating_duration_since(t0);
            match (online, since[i]) {
                (Some(false), None) => since[i] = Some(now),
                (Some(true), Some(from)) => {
                    spells[i].push((from, now));
                    since[i] = None;
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = Instant::now().saturating_duration_since(t0);
    for (i, open) in since.into_iter().enumerate() {
        if let Some(from) = open {
            spells[i].push((from, end));
        }
    }
    spells
}
