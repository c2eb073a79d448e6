//! The sync server: gate enrolment and cache sync, scan ingest and conflict
//! detection, and (as it lands) on-chain replay and the ticketing API.
//!
//! A server is a function: [`run`] takes a config, a bound listener and a
//! shutdown future, so tests start the real thing on port 0. [`app`] builds
//! the router over an [`AppState`].
//!
//! It owns the server's storage (SQLite or PostgreSQL, [`store`]) and the
//! HTTP surface. It never re-implements admission rules (those are
//! `shared::decide`) or on-chain layouts (those are the program crate's).

pub mod admin_api;
pub mod api;
pub mod chain;
pub mod chain_admin_api;
pub mod config;
pub mod error;
pub mod gate_api;
pub mod metrics;
pub mod openapi;
pub mod organizer;
pub mod replay;
pub mod store;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use ed25519_dalek::SigningKey;
use shared::wire::{CachedEvent, CachedTicket};
use shared::{PublicKeyBytes, UnixSeconds};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

pub use config::Config;
pub use store::Store;

/// Largest request body accepted anywhere (a journal batch of the maximum
/// size fits comfortably).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Environment variable naming a failpoint at which the process aborts, so
/// crash-recovery tests can stop the server at an exact step (for example
/// right after the chain accepted a transaction and before the database
/// heard of it). Unset in production; costs one lookup per step. Not under
/// the `SYNC_` prefix, which is the configuration's.
pub const FAILPOINT_ENV: &str = "NFT_GATE_FAILPOINT";

/// Aborts the process, as a power cut would, when [`FAILPOINT_ENV`] names
/// `name`.
pub fn failpoint(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Where the server reads the time. Tests use a fixed or stepped clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixSeconds;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}

/// Everything a request handler may touch.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub server_key: Arc<SigningKey>,
    pub clock: Arc<dyn Clock>,
    /// Bumped on every cache change made through this instance; wakes
    /// long-polling gates at once.
    changes: Arc<watch::Sender<u64>>,
    /// Wakes the replay worker when new entries were ingested.
    pub replay_wakeup: Arc<Notify>,
    /// The chain and the keys for it; `None` runs the gate sync alone
    /// (no event creation, no replay).
    pub chain: Option<Arc<organizer::ChainContext>>,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Where the ticketing API's rate-limit budgets live: in this process
    /// unless [`open_state`] connected a shared Redis.
    pub rate_limiter: Arc<dyn api::ratelimit::RateLimiter>,
    /// Sends confirmation and claim mail; `None` when `[smtp]` names no
    /// relay (purchases and transfers still work, without mail).
    pub mailer: Option<Arc<dyn api::mail::Mailer>>,
    /// Card payments; `None` when `[stripe]` has no secret key (card
    /// purchases are then refused with 503, SOL purchases still work).
    pub payments: Option<Arc<dyn api::payments::PaymentProvider>>,
    /// Public event reads, reused for a second unless an event changed.
    pub read_cache: Arc<api::cache::ReadCache>,
}

impl AppState {
    pub fn new(
        store: Store,
        config: Config,
        server_key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mailer = api::mail::SmtpMailer::new(&config.smtp)
            .map(|m| Arc::new(m) as Arc<dyn api::mail::Mailer>)
            .inspect_err(|e| {
                if !matches!(e, api::mail::MailError::Disabled) {
                    tracing::error!(error = %e, "mail is off: the [smtp] settings do not work");
                }
            })
            .ok();
        let payments = api::payments::StripeProvider::new(&config.stripe)
            .map(|p| Arc::new(p) as Arc<dyn api::payments::PaymentProvider>)
            .inspect_err(|e| {
                if !matches!(e, api::payments::PaymentError::Disabled) {
                    tracing::error!(error = %e, "card payments are off: the [stripe] settings do not work");
                }
            })
            .ok();
        Self {
            mailer,
            payments,
            read_cache: Arc::default(),
            store,
            config: Arc::new(config),
            server_key: Arc::new(server_key),
            clock,
            changes: Arc::new(watch::channel(0).0),
            replay_wakeup: Arc::new(Notify::new()),
            chain: None,
            metrics: Arc::new(metrics::Metrics::new().expect("metric names are valid")),
            rate_limiter: Arc::new(api::ratelimit::InProcessLimiter::new()),
        }
    }

    /// The same state with `chain` attached.
    pub fn with_chain(mut self, chain: organizer::ChainContext) -> Self {
        self.chain = Some(Arc::new(chain));
        self
    }

    /// Wakes the gates' long polls: the change feed has something new.
    pub fn notify_gates(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Publishes a new or changed event to its gates.
    pub async fn publish_event(
        &self,
        event: &CachedEvent,
        organizer: &PublicKeyBytes,
    ) -> Result<(), store::StoreError> {
        self.store
            .upsert_event(event, organizer, self.clock.now())
            .await?;
        self.read_cache.invalidate();
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Publishes new tickets or changes of known ones (transfer, freeze,
    /// revocation) to the gates.
    pub async fn publish_tickets(&self, tickets: &[CachedTicket]) -> Result<(), store::StoreError> {
        self.store.upsert_tickets(tickets, self.clock.now()).await?;
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// The HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/gate/v1/enrol", post(gate_api::enrol))
        .route("/gate/v1/snapshot", get(gate_api::snapshot))
        .route("/gate/v1/delta", get(gate_api::delta))
        .route("/gate/v1/journal", post(gate_api::journal))
        .route(
            "/api/admin/events/{event}/gates",
            put(admin_api::put_gate).get(admin_api::gate_status),
        )
        .route(
            "/api/admin/events/{event}/enrol-tokens",
            post(admin_api::create_enrol_token),
        )
        .route(
            "/api/admin/events/{event}/conflicts",
            get(admin_api::conflicts),
        )
        .route(
            "/api/admin/devices/{device}/revoke",
            post(admin_api::revoke_device),
        )
        .route("/api/admin/chain", get(chain_admin_api::chain_info))
        .route("/api/admin/events", post(chain_admin_api::create_event))
        .route(
            "/api/admin/events/{event}/tickets",
            post(chain_admin_api::mint),
        )
        .route(
            "/api/admin/events/{event}/tickets/refresh",
            post(chain_admin_api::refresh),
        )
        .route(
            "/api/admin/events/{event}/tickets/{ticket}/revoke",
            post(chain_admin_api::revoke),
        )
        .route(
            "/api/admin/events/{event}/replay",
            get(chain_admin_api::replay_status),
        )
        .merge(api::routes())
        .route("/metrics", get(metrics::render))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs_page))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// What `GET /health` reports.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// The database answered.
    pub database: bool,
    /// The chain answered a blockhash within 5 s; `null` when the server
    /// runs without a chain.
    pub chain: Option<bool>,
    /// The configured SMTP relay greeted within 5 s; `null` without one.
    pub smtp: Option<bool>,
    pub smtp_configured: bool,
    pub payments_configured: bool,
}

/// Whether the server can serve
///
/// 200 while the database answers and the chain and mail relay (if any)
/// do; 503 with the
/// same body otherwise, so a load balancer or a supervisor can tell.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses(
        (status = 200, description = "Database and chain answer", body = Health),
        (status = 503, description = "The database, the chain or the mail relay does not answer", body = Health),
    )
)]
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, axum::Json<Health>) {
    let database = state.store.ping().await.is_ok();
    // The chain answers a blockhash within 5 s, or it counts as down.
    let chain = match &state.chain {
        None => None,
        Some(ctx) => {
            let answered = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                ctx.chain.latest_blockhash(),
            )
            .await;
            Some(matches!(answered, Ok(Ok(_))))
        }
    };
    // A configured relay must answer too: confirmations and claim links
    // are mail.
    let smtp = match &state.mailer {
        None => None,
        Some(mailer) => {
            let answered =
                tokio::time::timeout(std::time::Duration::from_secs(5), mailer.check()).await;
            Some(matches!(answered, Ok(Ok(()))))
        }
    };
    let healthy = database && chain != Some(false) && smtp != Some(false);
    let status = if healthy {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(Health {
            database,
            chain,
            smtp,
            smtp_configured: state.mailer.is_some(),
            payments_configured: state.payments.is_some(),
        }),
    )
}

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
pub async fn open_chain(config: &Config) -> anyhow::Result<organizer::ChainContext> {
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
    Ok(organizer::ChainContext {
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
    let rate_limiter = api::ratelimit::limiter_for(&config.api)
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
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
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
/// from the chain, then runs the replay worker (when enabled) and the email
/// transfer expiry sweep beside the HTTP server and stops them on the way
/// out.
pub async fn run_state(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match organizer::reconcile(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(repaired = n, "database repaired from the chain"),
        Err(e) => tracing::warn!(error = %e, "could not compare the database with the chain"),
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
    let (stop_worker, stopped) = watch::channel(false);
    let worker = state
        .config
        .replay
        .enabled
        .then(|| tokio::spawn(replay::run(state.clone(), stopped.clone())));
    let purchases = state
        .chain
        .is_some()
        .then(|| tokio::spawn(api::purchase::run(state.clone(), stopped.clone())));
    let sweeper = state
        .chain
        .is_some()
        .then(|| tokio::spawn(api::claims::run_sweeper(state.clone(), stopped)));
    let served = serve(state, listener, shutdown).await;
    let _ = stop_worker.send(true);
    for task in [worker, purchases, sweeper].into_iter().flatten() {
        let _ = task.await;
    }
    served
}
