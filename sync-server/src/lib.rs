//! The sync server: gate enrolment and cache sync, scan ingest and conflict
//! detection, on-chain replay, and the ticketing API.
//!
//! A server is a function: [`run`] takes a config, a bound listener and a
//! shutdown future, so tests start the real thing on port 0.
//! [`http::app`] builds the router over an [`AppState`].
//!
//! Layers, lowest first; a module imports only from its own layer or below
//! (`tests/layers.rs` keeps it so):
//! 1. [`config`], [`clock`], [`failpoint`]: settings and the time;
//! 2. [`store`] (all SQL), [`chain`], [`adapters`] (mail, payments, rate
//!    limits, read cache), [`metrics`] (the registry);
//! 3. [`services`]: the server's work and its background workers;
//! 4. [`http`]: routes, extractors, handlers, the error mapping, OpenAPI;
//! 5. this file: opening everything and serving it.
//!
//! It never re-implements admission rules (those are in `shared`) or
//! on-chain layouts (those are the program crate's).

pub mod adapters;
pub mod chain;
pub mod clock;
pub mod config;
pub mod failpoint;
pub mod http;
pub mod metrics;
pub mod services;
pub mod store;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use tokio::net::TcpListener;

pub use clock::{Clock, SystemClock};
pub use config::Config;
pub use http::{AppState, app};
pub use services::Services;
pub use store::Store;

/// Loads the server's signing key, creating it (mode 0600) on first start.
pub fn load_or_create_server_key(path: &Path) -> anyhow::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .with_context(|| format!("{}: not a hex key", path.display()))?;
            let secret: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{}: a server key is 32 bytes", path.display()))?;
            Ok(SigningKey::from_bytes(&secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            write_private(path, hex::encode(secret).as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new server key");
            Ok(SigningKey::from_bytes(&secret))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Opens the chain named by `config` with the server's keys for it, funding
/// the authority from the cluster's faucet where there is one.
pub async fn open_chain(config: &Config) -> anyhow::Result<services::organizer::ChainContext> {
    use solana_sdk::signature::Signer;
    let settings = &config.chain;
    let authority = chain::load_or_create_keypair(&settings.authority_key_file)?;
    let issuer = load_or_create_server_key(&settings.issuer_key_file)?;
    let chain: chain::SharedChain = if settings.rpc_url == "embedded" {
        Arc::new(chain::embedded::EmbeddedChain::open(&settings.embedded_file).await?)
    } else {
        Arc::new(chain::rpc::RpcChain::new(
            &settings.rpc_url,
            Arc::new(authority.insecure_clone()),
            std::time::Duration::from_secs(u64::from(settings.rpc_timeout_secs)),
        )?)
    };
    const SOL: u64 = 1_000_000_000;
    if let Err(e) =
        chain::ops::ensure_funded(chain.as_ref(), None, &authority.pubkey(), SOL, 100 * SOL).await
    {
        tracing::warn!(
            authority = %authority.pubkey(),
            error = %e,
            "the chain authority holds less than 1 SOL and the cluster has no faucet; fund it"
        );
    }
    tracing::info!(chain = %chain.describe(), authority = %authority.pubkey(), "chain ready");
    Ok(services::organizer::ChainContext {
        chain,
        authority,
        issuer,
    })
}

/// Opens the storage, keys and chain named by `config`: the state a server
/// runs on.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    let key = load_or_create_server_key(&config.server_key_file)?;
    let chain = open_chain(&config).await?;
    let rate_limiter = adapters::ratelimit::limiter_for(&config.api)
        .await
        // Not the URL itself: it may carry a password.
        .context("cannot reach the Redis named by api.redis_url")?;
    let mut state = AppState::new(store, config, key, Arc::new(SystemClock)).with_chain(chain);
    state.rate_limiter = rate_limiter;
    Ok(state)
}

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "sync server listening");
    let connections = state.config.connections.clone();
    http::connections::serve(app(state), listener, connections, shutdown).await?;
    Ok(())
}

/// Opens everything `config` names and serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = open_state(config).await?;
    run_state(state, listener, shutdown).await
}

/// Serves an opened `state` until `shutdown`: first repairs the database
/// from the chain, then runs the background workers
/// ([`services::workers`]) beside the HTTP server and stops them on the way
/// out.
pub async fn run_state(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if state.chain.is_some() {
        match services::minting::recovery::recover_on_start(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(repaired = n, "database repaired from the chain"),
            Err(e) => tracing::warn!(error = %e, "could not compare the database with the chain"),
        }
    }
    if !state.config.chain.rpc_listen.is_empty()
        && let Some(ctx) = &state.chain
    {
        let addr: std::net::SocketAddr = state
            .config
            .chain
            .rpc_listen
            .parse()
            .context("chain.rpc_listen")?;
        let rpc_listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the chain's RPC"))?;
        tracing::info!(%addr, "serving the embedded chain as Solana JSON-RPC");
        let router = chain::rpc_service::router(ctx.chain.clone(), Default::default());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(rpc_listener, router).await {
                tracing::error!(error = %e, "chain RPC server stopped");
            }
        });
    }
    let workers = services::workers::Workers::start(&state.services);
    let watchdog = systemd_ready();
    let served = serve(state, listener, shutdown).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    workers.stop().await;
    served
}

/// Tells systemd (`Type=notify`) the server is ready: the database is open
/// and repaired, the workers run and the socket listens. Under `WatchdogSec`
/// a task pings the watchdog at a third of its period, so a runtime that no
/// longer schedules tasks gets the service restarted. Without systemd
/// (`NOTIFY_SOCKET` unset) this does nothing.
fn systemd_ready() -> Option<tokio::task::JoinHandle<()>> {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = std::time::Duration::from_micros(usec / 3);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    }))
}
