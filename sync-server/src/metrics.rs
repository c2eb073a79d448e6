//! Prometheus metrics of the server, at `GET /metrics` (text format):
//!
//! - `sync_http_request_seconds{method,route,status}`: request latency by
//!   route template (never the raw path, so ids do not explode the series);
//! - `sync_scans_total{gate,outcome}`: scans stored from gates and handhelds
//!   by outcome code (`admitted`, `already_inside`, ...);
//! - `sync_replay_entries_total{result}`: scans settled by the replay worker
//!   (`confirmed`, `superseded`, `failed`, `expired`);
//! - `sync_chain_transactions_total{kind,result}`: transactions the server
//!   sent (`replay`), by outcome.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::AppState;

pub struct Metrics {
    registry: Registry,
    pub http: HistogramVec,
    pub scans: IntCounterVec,
    pub replay: IntCounterVec,
    pub transactions: IntCounterVec,
    pub purchases: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with every metric of the server.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http = HistogramVec::new(
            HistogramOpts::new("sync_http_request_seconds", "HTTP request latency").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
            ]),
            &["method", "route", "status"],
        )?;
        let scans = IntCounterVec::new(
            Opts::new("sync_scans_total", "Scans stored, by gate and outcome"),
            &["gate", "outcome"],
        )?;
        let replay = IntCounterVec::new(
            Opts::new(
                "sync_replay_entries_total",
                "Scans settled by the replay worker",
            ),
            &["result"],
        )?;
        let transactions = IntCounterVec::new(
            Opts::new(
                "sync_chain_transactions_total",
                "Transactions sent to the chain",
            ),
            &["kind", "result"],
        )?;
        let purchases = IntCounterVec::new(
            Opts::new(
                "sync_purchases_total",
                "Ticket purchases reaching a state, by payment method",
            ),
            &["method", "state"],
        )?;
        registry.register(Box::new(purchases.clone()))?;
        registry.register(Box::new(http.clone()))?;
        registry.register(Box::new(scans.clone()))?;
        registry.register(Box::new(replay.clone()))?;
        registry.register(Box::new(transactions.clone()))?;
        Ok(Self {
            registry,
            http,
            scans,
            replay,
            transactions,
            purchases,
        })
    }

    /// Counts stored scans (new ones only, not a retried upload's).
    pub fn count_scans<'a>(&self, scans: impl IntoIterator<Item = (u32, &'a str)>) {
        for (gate, outcome) in scans {
            self.scans
                .with_label_values(&[&gate.to_string(), outcome])
                .inc();
        }
    }

    /// Counts a purchase reaching `state` (reserved, paid, fulfilled, ...).
    pub fn purchase(&self, method: &str, state: &str) {
        self.purchases.with_label_values(&[method, state]).inc();
    }

    fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Times every request, labelled by its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .http
        .with_label_values(&[&method, &route, response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics
///
/// `GET /metrics`: the server's metrics in the Prometheus text format
/// (request latency by route template, scans by gate and outcome, replay
/// results, chain transactions). Unauthenticated: keep it on the venue's
/// private network or behind the proxy.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
        (status = 500, description = "`internal`: the metrics could not be encoded", body = crate::error::ErrorBody),
    )
)]
pub async fn render(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => crate::error::ApiError::Internal(e.to_string()).into_response(),
    }
}
