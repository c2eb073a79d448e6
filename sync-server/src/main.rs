//! `sync-server`: the command line of the sync server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sync_server::Config;

/// The sync server of the NFT ticket gates: enrols gate boxes, keeps their
/// ticket cache fresh, collects their scan journals and flags conflicts.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Settings come from defaults, then this
    /// file, then SYNC_* environment variables, then flags.
    #[arg(long, short, global = true, env = "SYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// sqlite://FILE or postgres://USER@HOST/DB
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Check a configuration file and print the effective settings.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Create a one-time enrolment token for a gate (prints the token).
    EnrolToken {
        /// The event's id.
        #[arg(long)]
        event: u64,
        /// The gate's name.
        #[arg(long)]
        gate: String,
        /// Lifetime in seconds (default from the config).
        #[arg(long)]
        ttl_secs: Option<u32>,
    },
    /// Write an event's signed gate cache to a file, for gates with no
    /// network at all: put it on the boot partition as gate-cache.bin or on
    /// a USB stick (`gate-agent cache import FILE`).
    CacheFile {
        /// The event's id.
        #[arg(long)]
        event: u64,
        /// Where to write it.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
        /// The cache protocol the gates read: by default this server's;
        /// 4 for gate agents from before protocol 5 (they then do not hear
        /// of admissions other gates undid).
        #[arg(long, value_name = "VERSION")]
        protocol: Option<u16>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE (plus environment) and print the result; exits non-zero
    /// with the reason when something is wrong.
    Check { file: PathBuf },
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(file, std::env::vars())?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.json_logs);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = load(Some(&file))?;
            println!("{} is valid. Effective settings:\n", file.display());
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Serve {
            listen,
            database_url,
        } => {
            let mut config = load(cli.config.as_deref())?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(url) = database_url {
                config.database_url = url;
            }
            config.validate()?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            sync_server::run(config, listener, shutdown_signal()).await
        }
        Command::EnrolToken {
            event,
            gate,
            ttl_secs,
        } => {
            let config = load(cli.config.as_deref())?;
            let state = sync_server::open_state(config).await?;
            let token =
                sync_server::services::gates::issue_enrol_token(&state, event, &gate, ttl_secs)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", token.token);
            eprintln!(
                "valid for gate {} of event {} until {} (Unix time)",
                token.gate, token.event_id, token.expires_at
            );
            Ok(())
        }
        Command::CacheFile {
            event,
            out,
            protocol,
        } => {
            use sync_server::services::gates;
            let version =
                gates::cache_version(Some(protocol.unwrap_or(shared::wire::PROTOCOL_VERSION)))
                    .map_err(|e| anyhow::anyhow!("--protocol: {e}"))?;
            let config = load(cli.config.as_deref())?;
            let state = sync_server::open_state(config).await?;
            let signed = gates::cache_file(&state.services, event, version)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let snapshot: shared::wire::CacheSnapshot = signed
                .open(None)
                .map_err(|e| anyhow::anyhow!("the cache just signed does not read back: {e}"))?;
            let bytes = signed.to_file_bytes();
            let partial = out.with_extension("partial");
            std::fs::write(&partial, &bytes)
                .and_then(|()| std::fs::rename(&partial, &out))
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {} ({} bytes): event {event}, {} ticket(s), cursor {}, signed by {}",
                out.display(),
                bytes.len(),
                snapshot.tickets.len(),
                snapshot.cursor,
                signed.signer
            );
            Ok(())
        }
    }
}
