//! `gate-agent`: the turnstile daemon and the technician's tools.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use gate_agent::config::{Config, ConfigError, Sources};
use gate_agent::gate::{Clock, Gate, Scan, SystemClock};
use gate_agent::store::{ExportFormat, Store};

/// Gate agent: scans tickets, decides offline from the local cache, records every
/// scan in a durable journal, then opens the turnstile.
#[derive(Debug, Parser)]
#[command(
    name = "gate-agent",
    version,
    about,
    after_help = "Examples:
  gate-agent config check /etc/gate-agent/gate-agent.toml
  gate-agent enrol --server http://sync.venue.lan:8080 --token 7Q2...   (once per box)
  gate-agent enrol --from-file /boot/firmware/gate-enrol.toml --wait 10min   (first boot)
  gate-agent cache import /media/usb/gate-cache.bin
  gate-agent status
  gate-agent decode ticket-photo.jpg
  gate-agent verify ABCD...          (what the gate would say, nothing recorded)
  gate-agent journal export --format csv -o /media/usb/journal.csv

Logs: RUST_LOG=debug for more detail; --log-json for JSON lines."
)]
struct Cli {
    /// Config file (TOML). Environment variables GATE_AGENT__SECTION__KEY override it.
    #[arg(long, short, global = true, env = "GATE_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. --set store.path=/tmp/gate.db (repeatable; wins over all).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// Database file (same as --set store.path=PATH).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Log as JSON lines (for log shippers).
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gate: read scanners, decide, record, actuate, serve the status page.
    Run(RunArgs),
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Register this box with the sync server (once), using a one-time token
    /// from the organizer. Creates the device key beside the store file.
    #[command(
        after_help = "After enrolment `gate-agent run` keeps the ticket cache current and \
uploads the journal by itself; the gate's number, name, direction and event come from the \
server. A box is enrolled once: to enrol it again (e.g. for another event), stop the agent \
and move the store file and device.key aside."
    )]
    Enrol(EnrolArgs),
    /// Print the payload of every QR code found in images, one per line.
    Decode {
        /// Image files (PNG, JPEG, PGM).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Show the verdict the gate would give for a code, without recording it.
    Verify {
        /// The code as a scanner would send it.
        code: String,
    },
    /// Ticket cache: import a cache file, show what is cached.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Scan journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Show the gate's state: cache, counts, journal backlog.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Undo this gate's last admission: the holder did not pass (the
    /// turnstile was not turned), so their ticket may be scanned again.
    #[command(
        after_help = "Only within the event's turnstile undo window (set by the organizer; \
off unless set), and only the last admission at this gate, once. The undo is journaled and \
uploaded like a scan; the server then leaves the admission out of its counts and off the chain. \
The status page has the same action as a button. Exits 0 when undone, 1 when refused."
    )]
    Undo {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Also read codes from standard input, one per line.
    #[arg(long)]
    stdin: bool,
    /// Status page address (same as --set status.listen=ADDR).
    #[arg(long, value_name = "ADDR")]
    status_listen: Option<String>,
}

#[derive(Debug, Args)]
struct EnrolArgs {
    /// The sync server's base URL, e.g. http://sync.venue.lan:8080
    #[arg(long, value_name = "URL", required_unless_present = "from_file")]
    server: Option<String>,
    /// The one-time enrolment token shown to the organizer for this gate.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GATE_AGENT_ENROL_TOKEN",
        hide_env_values = true,
        required_unless_present = "from_file"
    )]
    token: Option<String>,
    /// Read the server and token from a file instead (TOML: `server = "..."`
    /// and `token = "..."`), e.g. gate-enrol.toml on the boot partition.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["server", "token"])]
    from_file: Option<PathBuf>,
    /// Keep trying this long while the server cannot be reached or answers
    /// 5xx (e.g. 10min at first boot, before the network is up). A refused
    /// token fails at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "0s")]
    wait: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file and the profiles it names; exit status 2 if invalid.
    Check {
        file: PathBuf,
        /// Print the effective configuration (defaults, file, environment, flags).
        #[arg(long)]
        print: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Load a signed cache file (from the server or a USB stick) into the store.
    Import {
        file: PathBuf,
        /// A missing file is no error (a start-up hook looking for a file
        /// on the boot partition or a USB stick).
        #[arg(long)]
        if_present: bool,
        /// Only when the file is ahead of the cache (its cursor is newer),
        /// so an old file never rolls the gate back.
        #[arg(long)]
        if_newer: bool,
    },
    /// Show the cached events and ticket counts.
    Info {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Write the journal to standard output or a file.
    Export {
        /// Only scans at or after this time (RFC 3339, e.g. 2026-11-25T18:00:00Z, or Unix ms).
        #[arg(long)]
        since: Option<String>,
        /// jsonl: one JSON object per scan (for re-import and tools); csv: for spreadsheets.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `run` logs as its config says; the tools log plainly to stderr.
    if !matches!(cli.command, Command::Run(_)) {
        init_tracing("warn", cli.log_json);
    }
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(default_filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init()
    } else {
        builder.init()
    }
}

fn load_config(cli: &Cli, extra: &[String]) -> Result<Config, ConfigError> {
    let mut flags = cli.set.clone();
    if let Some(db) = &cli.db {
        flags.push(format!("store.path={}", toml_string(&db.to_string_lossy())));
    }
    flags.extend_from_slice(extra);
    let default_file = PathBuf::from("/etc/gate-agent/gate-agent.toml");
    let file = cli
        .config
        .clone()
        .or_else(|| default_file.exists().then_some(default_file));
    let mut config = Config::load(&Sources::from_process_env(file, flags))?;
    if let Err(e) = gate_agent::enrolment::apply_stored(&mut config) {
        tracing::warn!(error = %e, "cannot read the enrolment from the store");
    }
    Ok(config)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Config(ConfigCommand::Check { file, print }) => {
            let sources = Sources::from_process_env(Some(file.clone()), cli.set.clone());
            match Config::load(&sources) {
                Ok(config) => {
                    for w in config.warnings() {
                        eprintln!("warning: {w}");
                    }
                    if *print {
                        print!("{}", config.to_toml());
                    }
                    println!("{}: OK", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Enrol(args) => {
            let config = load_config(&cli, &[])?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let file = match &args.from_file {
                Some(path) => gate_agent::enrol_file::read(path)?,
                None => gate_agent::enrol_file::EnrolFile {
                    server: args.server.clone().unwrap_or_default(),
                    token: args.token.clone().unwrap_or_default(),
                },
            };
            let enrolled = runtime.block_on(gate_agent::enrol_file::enrol_until(
                &config, &file, args.wait,
            ));
            // A box enrolled from this very file whose power went before the
            // file was removed: done already, so the file may go now.
            if let Err(gate_agent::enrolment::EnrolError::AlreadyEnrolled {
                server_url,
                device_id,
                ..
            }) = &enrolled
                && args.from_file.is_some()
                && server_url == file.server.trim_end_matches('/')
            {
                println!("already enrolled with {server_url} (device {device_id}); nothing to do");
                return Ok(ExitCode::SUCCESS);
            }
            let enrolment = enrolled?;
            println!(
                "enrolled as gate {} \"{}\" ({:?}) of event {}\ndevice id   {}\nserver key  {}\nstore       {}\ndevice key  {}",
                enrolment.gate.number,
                enrolment.gate.name,
                enrolment.gate.direction,
                enrolment.event_id,
                enrolment.device_id,
                enrolment.server_key,
                config.store.path.display(),
                gate_agent::enrolment::key_path(&config).display(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode { images } => {
            let mut failed = false;
            let mut out = std::io::stdout().lock();
            for path in images {
                match gate_agent::qr::load_frame(path) {
                    Ok(frame) => {
                        let codes = gate_agent::qr::decode_frame(&frame, true);
                        if codes.is_empty() {
                            eprintln!("{}: no QR code found", path.display());
                        }
                        for code in codes {
                            writeln!(out, "{code}")?;
                        }
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run(args) => {
            let mut extra = Vec::new();
            if let Some(listen) = &args.status_listen {
                extra.push(format!("status.listen={}", toml_string(listen)));
            }
            let mut config = load_config(&cli, &extra)?;
            init_tracing(&config.log.filter, config.log.json || cli.log_json);
            if args.stdin
                && !config
                    .scanners
                    .iter()
                    .any(|s| matches!(s, gate_agent::config::ScannerConfig::Stdin { .. }))
            {
                config
                    .scanners
                    .push(gate_agent::config::ScannerConfig::Stdin { name: None });
            }
            run_daemon(config)
        }
        Command::Verify { code } => {
            let config = load_config(&cli, &[])?;
            let store = open_store(&config)?;
            let gate = Gate::new(&config.gate, &store.events()?);
            let scan = Scan {
                source: "verify".into(),
                text: code.trim().to_owned(),
            };
            let lookup = |e: u64, t: u32| store.ticket_state(e, t).ok().flatten();
            let outcome = gate.evaluate(&scan, &lookup, SystemClock.now_ms(), uuid::Uuid::now_v7());
            let verdict = gate.verdict(&outcome, false);
            println!(
                "{}: {}",
                if verdict.opens { "OPEN" } else { "REFUSE" },
                verdict.text
            );
            println!("outcome: {}", verdict.outcome);
            if let Some(r) = outcome.record.ticket_id {
                println!(
                    "ticket: {r} (event {})",
                    outcome.record.event_id.unwrap_or_default()
                );
            }
            if let Some(t) = verdict.tier {
                println!(
                    "tier: {}",
                    verdict.tier_name.unwrap_or_else(|| t.to_string())
                );
            }
            println!("(not recorded)");
            Ok(if verdict.opens {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Cache(CacheCommand::Import {
            file,
            if_present,
            if_newer,
        }) => {
            if *if_present && !file.exists() {
                println!("{}: no such file; nothing imported", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            let config = load_config(&cli, &[])?;
            let mut store = open_store(&config)?;
            let key = config.gate.server_key.as_deref();
            let now = SystemClock.now_ms();
            let summary = if *if_newer {
                match gate_agent::cache_file::import_if_newer(&mut store, file, key, now)? {
                    gate_agent::cache_file::Imported::Done(summary) => summary,
                    gate_agent::cache_file::Imported::NotNewer {
                        file_cursor,
                        cache_cursor,
                    } => {
                        println!(
                            "{}: not newer than the cache (cursor {file_cursor}, cache at {cache_cursor}); nothing imported",
                            file.display()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            } else {
                gate_agent::cache_file::import(&mut store, file, key, now)?
            };
            println!(
                "imported {} event(s), {} ticket(s) into {} (kept local presence of {})",
                summary.events,
                summary.tickets,
                store.path().display(),
                summary.kept_local_presence
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Undo { json } => {
            let mut config = load_config(&cli, &[])?;
            // An enrolled box is the gate the server says it is.
            gate_agent::enrolment::apply_stored(&mut config)
                .context("cannot read the enrolment")?;
            let mut store = open_store(&config)?;
            let gate = Gate::new(&config.gate, &store.events()?);
            let now_ms = SystemClock.now_ms();
            let answer = match gate_agent::undo::undo_last(&mut store, &gate, now_ms, "cli")? {
                Ok(done) => gate_agent::undo::UndoAnswer::done(&done),
                Err(refusal) => gate_agent::undo::UndoAnswer::refused(refusal, now_ms),
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                println!(
                    "{}: {}",
                    if answer.undone { "UNDONE" } else { "REFUSED" },
                    answer.text
                );
            }
            Ok(if answer.undone {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Cache(CacheCommand::Info { json }) | Command::Status { json } => {
            let config = load_config(&cli, &[])?;
            let store = open_store(&config)?;
            let info = store.cache_info()?;
            let counts = store.counts()?;
            if *json {
                let value = serde_json::json!({ "cache": info, "counts": counts, "gate": {
                    "number": config.gate.number, "name": config.gate.name,
                    "direction": config.gate.direction } });
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            let gate = Gate::new(&config.gate, &store.events()?);
            println!(
                "gate:      {} (#{}, {:?})",
                config.gate.name, config.gate.number, config.gate.direction
            );
            println!("store:     {}", store.path().display());
            for e in &info.events {
                println!("event:     {} {}", e.event_id, e.name);
            }
            println!("tickets:   {} cached, {} inside", info.tickets, info.inside);
            let now = SystemClock.now_ms() / 1000;
            match info.generated_at {
                Some(g) => println!(
                    "cache age: {} s (cursor {})",
                    now - g,
                    info.cursor.unwrap_or(0)
                ),
                None => println!("cache age: no cache imported"),
            }
            println!(
                "scans:     {} admitted, {} rejected, {} exits",
                counts.admitted, counts.rejected, counts.exits
            );
            println!(
                "journal:   {} entries, {} not uploaded",
                info.journal_entries, info.journal_unsent
            );
            if let Some(e) = gate.setup_error() {
                println!("PROBLEM:   {e}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal(JournalCommand::Export {
            since,
            format,
            output,
        }) => {
            let config = load_config(&cli, &[])?;
            let store = open_store(&config)?;
            let since_ms = since.as_deref().map(parse_since).transpose()?;
            let format = match format {
                Format::Jsonl => ExportFormat::Jsonl,
                Format::Csv => ExportFormat::Csv,
            };
            let rows = match output {
                Some(path) => {
                    let mut f = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let n = store.export_journal(since_ms, format, &mut f)?;
                    f.sync_all()?;
                    n
                }
                None => store.export_journal(since_ms, format, &mut std::io::stdout().lock())?,
            };
            eprintln!("exported {rows} scan(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.store.path).context("cannot open the gate's store")
}

fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("--since {s}: expected RFC 3339 time or Unix milliseconds"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

fn run_daemon(config: Config) -> anyhow::Result<ExitCode> {
    let (inputs, problems) = gate_agent::inputs_from_config(&config);
    for p in &problems {
        tracing::error!(problem = %p, "input left out");
    }
    let outputs = match gate_agent::outputs::from_config(&config.outputs) {
        Ok(o) => o,
        Err(e) => {
            // Without outputs the gate can still record and show verdicts; staff
            // open the turnstile by hand.
            tracing::error!(error = %e, "outputs unavailable; verdicts are shown and recorded only");
            Box::new(gate_agent::outputs::LogOutputs)
        }
    };
    let passage = passage_sensor(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let options = gate_agent::RunOptions {
            passage,
            ..gate_agent::RunOptions::default()
        };
        gate_agent::run_with(config, inputs, outputs, shutdown, options).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The board's passage contact, when `outputs.passage_timeout_ms` asks for it.
fn passage_sensor(config: &Config) -> Option<Box<dyn gate_agent::passage::PassageSensor>> {
    use gate_agent::config::OutputKind;
    if config.outputs.passage_timeout_ms == 0 || config.outputs.kind != OutputKind::Gpio {
        return None;
    }
    let path = config.outputs.board_profile.clone()?;
    match gate_agent::profiles::BoardProfile::load(&path) {
        Ok(board) => match gate_agent::passage::GpioPassage::from_profile(&board) {
            Some(sensor) => Some(Box::new(sensor)),
            None => {
                tracing::error!(profile = %path.display(), "no passage line in the board profile; undos are left to staff");
                None
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "board profile unreadable; undos are left to staff");
            None
        }
    }
}
