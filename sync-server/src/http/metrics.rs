//! `GET /metrics` and the layer that times every request by route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::state::AppState;

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
        (status = 500, description = "`internal`: the metrics could not be encoded", body = crate::http::error::ErrorBody),
    )
)]
pub async fn render(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => crate::http::error::ApiError::Internal(e.to_string()).into_response(),
    }
}
