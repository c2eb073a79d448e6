//! One error shape for every refusal, including the ones axum gives before
//! a handler runs: a path or query that does not parse, a body over the
//! size limit or of the wrong type, an unknown route or method. Those come
//! out of axum as plain text; this layer rewrites any error answer that is
//! not already JSON into [`ErrorBody`], keeping its status and headers
//! (`Retry-After`, `Allow`), so a client parses one shape everywhere.
//! HTML answers are left alone: those are the console's own error pages,
//! written for a person in a browser.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error::ErrorBody;

/// Longest plain-text rejection read back into the message.
const MAX_TEXT: usize = 4096;

/// The stable code of a refusal axum made on its own, by status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Words for a refusal axum made without any.
fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_owned(),
        s => s.canonical_reason().unwrap_or("refused").to_owned(),
    }
}

fn is_json_or_page(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

/// The middleware: error answers that are not JSON become [`ErrorBody`].
pub async fn as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_page(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        default_message(status)
    } else {
        text
    };
    let body = ErrorBody {
        error: code_of(status).into(),
        message,
        field: None,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn answer(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let response = router
            .layer(axum::middleware::from_fn(as_json))
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_path_that_does_not_parse_is_refused_as_json() {
        let router = Router::new().route(
            "/events/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<u64>| async move { id.to_string() }),
        );
        let (status, body) = answer(router, "/events/seven").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["message"].as_str().unwrap().contains("parse"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn an_unknown_route_is_refused_as_json() {
        let router = Router::new().route("/health", get(|| async { "ok" }));
        let (status, body) = answer(router, "/nothing/here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        assert_eq!(body["message"], "no such route");
    }

    #[tokio::test]
    async fn json_errors_and_successes_pass_unchanged() {
        let router = Router::new().route("/ok", get(|| async { "fine" })).route(
            "/teapot",
            get(|| async {
                (
                    StatusCode::CONFLICT,
                    axum::Json(serde_json::json!({"error": "conflict", "message": "m"})),
                )
            }),
        );
        let (status, body) = answer(router.clone(), "/teapot").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "conflict");
        let ok = router
            .layer(axum::middleware::from_fn(as_json))
            .oneshot(Request::get("/ok").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(ok.into_body(), 64).await.unwrap();
        assert_eq!(&bytes[..], b"fine");
    }
}
