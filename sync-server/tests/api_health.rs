//! `/health` against a real SMTP server: the relay is asked at most once
//! per `smtp.health_cache_secs` (by the server's clock), however often a
//! load balancer polls.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::sync::atomic::Ordering;

use common::*;
use smtp_sink::{SinkRules, SmtpSink};
use sync_server::config::SmtpTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_asks_the_mail_relay_at_most_once_per_cache_period() {
    let sink = SmtpSink::start(SinkRules::default()).await;
    let server = start_with(
        Db::Sqlite,
        |config| {
            config.smtp.host = sink.addr.ip().to_string();
            config.smtp.port = sink.addr.port();
            config.smtp.tls = SmtpTls::None;
            config.smtp.health_cache_secs = 30;
        },
        |_| axum::Router::new(),
    )
    .await;
    let health = || async {
        let (status, body, _) = server
            .call(reqwest::Method::GET, "/health", None, None)
            .await;
        (status, body["smtp"].as_bool())
    };
    // Ten polls in a row, five of them at once.
    for _ in 0..5 {
        assert_eq!(health().await, (200, Some(true)));
    }
    let together = tokio::join!(health(), health(), health(), health(), health());
    let together = [together.0, together.1, together.2, together.3, together.4];
    assert!(
        together.iter().all(|h| *h == (200, Some(true))),
        "{together:?}"
    );
    assert_eq!(sink.sessions(), 1, "one SMTP session for ten polls");

    // 29 s later the answer is still fresh; at 30 s the relay is asked again.
    server.clock.0.fetch_add(29, Ordering::SeqCst);
    assert_eq!(health().await, (200, Some(true)));
    assert_eq!(sink.sessions(), 1);
    server.clock.0.fetch_add(1, Ordering::SeqCst);
    assert_eq!(health().await, (200, Some(true)));
    assert_eq!(sink.sessions(), 2);
}
