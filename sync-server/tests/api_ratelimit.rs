//! Rate limits over HTTP and in a real Redis: a spent budget answers 429
//! with Retry-After; two server instances on one Redis share one budget.
//!
//! The Redis tests use TEST_REDIS_URL, else 127.0.0.1:6379, and are skipped
//! (saying so) when neither answers; scripts/test.sh provides one.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use common::*;
use shared::PublicKeyBytes;
use sync_server::AppState;
use sync_server::adapters::ratelimit::{Budget, RateLimiter, RedisLimiter};
use sync_server::config::Quota;
use sync_server::http::api::auth::AuthUser;
use sync_server::http::error::ApiError;
use sync_server::http::limits::{check_mint, check_validate};
use sync_server::services::auth::{Role, issue_token};
use uuid::Uuid;

/// A Redis that answers, or `None` after saying why the test is skipped.
async fn redis_url() -> Option<String> {
    let mut candidates = Vec::new();
    if let Ok(url) = std::env::var("TEST_REDIS_URL") {
        candidates.push(url);
    }
    candidates.push("redis://127.0.0.1:6379".to_owned());
    for url in &candidates {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(3), RedisLimiter::connect(url)).await
        {
            return Some(url.clone());
        }
    }
    eprintln!(
        "SKIPPED: no Redis answered at {candidates:?}; set TEST_REDIS_URL or run scripts/test.sh, which starts one"
    );
    None
}

/// A key prefix no other test run uses.
fn fresh_prefix() -> String {
    format!("nft-gate-test:{}:", Uuid::now_v7().simple())
}

const THREE_PER_MINUTE: Quota = Quota {
    requests: 3,
    period_secs: 60,
};

#[tokio::test]
async fn two_limiters_on_one_redis_share_the_budget() {
    let Some(url) = redis_url().await else { return };
    let prefix = fresh_prefix();
    let a = RedisLimiter::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix);
    let b = RedisLimiter::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix);
    let mut allowed = 0;
    for limiter in [&a, &b, &a, &b, &a, &b] {
        if limiter
            .acquire("mint:alice", THREE_PER_MINUTE)
            .await
            .unwrap()
            == Budget::Allowed
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3, "one budget across both instances");
    // Another key is untouched.
    assert_eq!(
        b.acquire("mint:bob", THREE_PER_MINUTE).await.unwrap(),
        Budget::Allowed
    );
}

#[tokio::test]
async fn redis_tells_how_long_until_the_next_request_fits() {
    let Some(url) = redis_url().await else { return };
    let prefix = fresh_prefix();
    let limiter = RedisLimiter::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix);
    for _ in 0..3 {
        assert_eq!(
            limiter.acquire("k", THREE_PER_MINUTE).await.unwrap(),
            Budget::Allowed
        );
    }
    let Budget::Exhausted { retry_after } = limiter.acquire("k", THREE_PER_MINUTE).await.unwrap()
    else {
        panic!("the fourth request in a minute must wait");
    };
    // One interval (20 s), less the little time the test took so far.
    assert!(
        retry_after <= Duration::from_secs(20) && retry_after > Duration::from_secs(15),
        "{retry_after:?}"
    );

    // The key expires once the budget is whole again: nothing is left behind.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ttl_ms: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}k"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl_ms > 55_000 && ttl_ms <= 60_000, "{ttl_ms}");
}

/// Handlers a test server adds: a mint and a validation, each behind its
/// budget, so the real extractor, limiter and error mapping answer.
fn limited_routes(state: AppState) -> axum::Router {
    async fn mint(State(state): State<AppState>, user: AuthUser) -> Result<&'static str, ApiError> {
        check_mint(&state, &user).await?;
        Ok("minted")
    }
    async fn validate(
        State(state): State<AppState>,
        Path(gate): Path<u32>,
        user: AuthUser,
    ) -> Result<&'static str, ApiError> {
        user.require_role(&[Role::Validator])?;
        check_validate(&state, &user, EVENT, gate).await?;
        Ok("valid")
    }
    axum::Router::new()
        .route("/test/mint", post(mint))
        .route("/test/gates/{gate}/validate", post(validate))
        .with_state(state)
}

fn token_for(server: &TestServer, seed: u8) -> String {
    let wallet = PublicKeyBytes::from(&wallet(seed).verifying_key());
    issue_token(
        &server.state.config.api,
        &wallet,
        Role::Holder,
        server.clock.0.load(std::sync::atomic::Ordering::SeqCst),
    )
    .unwrap()
    .token
}

async fn send(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    server
        .http
        .post(format!("{}{path}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_budgets_answer_429_with_retry_after_over_http() {
    // Validations get a per-minute budget here so a slow machine cannot
    // refill it between the requests.
    let server = start_with(
        Db::Sqlite,
        |config| {
            config.api.rate_limits.validate = Quota {
                requests: 5,
                period_secs: 60,
            }
        },
        limited_routes,
    )
    .await;
    let alice = token_for(&server, 11);
    for _ in 0..10 {
        assert_eq!(send(&server, "/test/mint", &alice).await.status(), 200);
    }
    let r = send(&server, "/test/mint", &alice).await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((5..=6).contains(&retry_after), "{retry_after}");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "rate_limited"
    );
    // Bob's budget is his own.
    assert_eq!(
        send(&server, "/test/mint", &token_for(&server, 12))
            .await
            .status(),
        200
    );

    // Validations: per validator *and gate*.
    let carol = wallet(13);
    let r = server
        .http
        .put(format!(
            "{}/api/admin/wallets/{}/role",
            server.url,
            PublicKeyBytes::from(&carol.verifying_key())
        ))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "role": "validator" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let carol = token_for(&server, 13);
    let statuses: Vec<u16> = send_at_once(&server, "/test/gates/1/validate", &carol, 7).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        send(&server, "/test/gates/2/validate", &carol)
            .await
            .status(),
        200,
        "another gate has its own budget"
    );
}

/// Sends `n` requests at once; their statuses.
async fn send_at_once(server: &TestServer, path: &str, token: &str, n: usize) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = server
            .http
            .post(format!("{}{path}", server.url))
            .bearer_auth(token);
        tasks.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_instances_on_one_redis_share_a_wallets_budget() {
    let Some(url) = redis_url().await else { return };
    let prefix = fresh_prefix();
    let configure = |config: &mut sync_server::Config| {
        config.api.redis_url = url.clone();
        config.api.redis_key_prefix = prefix.clone();
        config.api.rate_limits.mint = THREE_PER_MINUTE;
    };
    let first = start_with(Db::Sqlite, configure, limited_routes).await;
    let second = start_with(Db::Sqlite, configure, limited_routes).await;
    let alice = token_for(&first, 11);
    let mut statuses = Vec::new();
    for server in [&first, &second, &first, &second] {
        statuses.push(send(server, "/test/mint", &alice).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 429]);
    let retry_after: u64 = statuses[3].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((15..=20).contains(&retry_after), "{retry_after}");
}
