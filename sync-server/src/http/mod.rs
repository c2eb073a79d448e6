//! The HTTP layer: routes, request parsing and authorization, and the one
//! mapping of errors to statuses. Handlers parse, authorize, call a service
//! and map the result; they hold no SQL and no business rule.

pub mod admin;
pub mod api;
pub mod buyer;
pub mod chain_admin;
pub mod connections;
pub mod console;
pub mod deadline;
pub mod error;
pub mod gate;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod rejections;
pub mod state;
pub mod validation;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

pub use state::AppState;

/// Largest request body accepted anywhere (a journal batch of the maximum
/// size fits comfortably).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/gate/v1/enrol", post(gate::enrol))
        .route("/gate/v1/snapshot", get(gate::snapshot))
        .route("/gate/v1/delta", get(gate::delta))
        .route("/gate/v1/journal", post(gate::journal))
        .route(
            "/api/admin/events/{event}/gates",
            put(admin::put_gate).get(admin::gate_status),
        )
        .route(
            "/api/admin/events/{event}/enrol-tokens",
            post(admin::create_enrol_token),
        )
        .route("/api/admin/events/{event}/conflicts", get(admin::conflicts))
        .route("/api/admin/events/{event}/devices", get(admin::devices))
        .route(
            "/api/admin/events/{event}/cache-file",
            get(admin::cache_file),
        )
        .route(
            "/api/admin/devices/{device}/revoke",
            post(admin::revoke_device),
        )
        .route("/api/admin/chain", get(chain_admin::chain_info))
        .route("/api/admin/events", post(chain_admin::create_event))
        .route("/api/admin/events/{event}/tickets", post(chain_admin::mint))
        .route(
            "/api/admin/events/{event}/tickets/refresh",
            post(chain_admin::refresh),
        )
        .route(
            "/api/admin/events/{event}/tickets/{ticket}/revoke",
            post(chain_admin::revoke),
        )
        .route(
            "/api/admin/events/{event}/replay",
            get(chain_admin::replay_status),
        )
        .merge(api::routes())
        .merge(console::routes())
        .merge(buyer::routes())
        .route("/metrics", get(metrics::render))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs_page))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline::body_deadline,
        ))
        .layer(axum::middleware::from_fn(rejections::as_json))
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
    /// The configured SMTP relay greeted within 5 s, when last asked (at
    /// most `smtp.health_cache_secs` ago); `null` without one.
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
    let chain = crate::services::health::chain(&state).await;
    // A configured relay must answer too: confirmations and claim links
    // are mail. Its answer is reused for `smtp.health_cache_secs`.
    let smtp = crate::services::health::smtp(&state).await;
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
