//! Rate limits: each kind of request has a budget per key (a wallet, or a
//! validator wallet at one gate), from `[api.rate_limits]`.
//!
//! Budgets follow the generic cell rate algorithm (GCRA): a quota of `n`
//! requests per period allows `n` at once, then one more every `period / n`.
//! Unlike fixed windows it has no window edge where twice the quota gets
//! through, and it stores one number per key. The arithmetic is
//! [`Gcra::check`]; both limiters apply exactly it:
//! - [`InProcessLimiter`]: a map in this process (one server instance);
//! - [`RedisLimiter`]: the same rule as one Lua script, atomic in Redis, on
//!   Redis's clock, so several server instances share one budget.
//!
//! Handlers spend budgets through `crate::http::limits`; a spent budget
//! becomes 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::adapters::BoxFuture;
use crate::config::{ApiSettings, Quota};

pub use crate::config::REDIS_KEY_PREFIX;

/// Whether a request fits its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Allowed,
    /// The budget is spent; one more request fits after `retry_after`.
    Exhausted {
        retry_after: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit store: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Where budgets are kept.
pub trait RateLimiter: Send + Sync + 'static {
    /// Spends one request of `key`'s budget under `quota`, if it fits.
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Budget, RateLimitError>>;
}

/// The GCRA of one quota, in milliseconds.
///
/// A key's state is its *theoretical arrival time* (TAT): when its budget
/// would be whole again. A request moves it `interval` later; the request
/// fits while the TAT stays within `window` of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval_ms: u64,
    pub window_ms: u64,
}

impl Gcra {
    pub fn new(quota: Quota) -> Self {
        let requests = u64::from(quota.requests.max(1));
        let period_ms = u64::from(quota.period_secs) * 1000;
        // Rounding the interval up never allows more than the quota.
        let interval_ms = period_ms.div_ceil(requests).max(1);
        Self {
            interval_ms,
            window_ms: interval_ms * requests,
        }
    }

    /// Given the stored TAT (`None` for a key never seen or long idle) and
    /// the time `now`, both in ms: `Ok(new TAT to store)` if the request
    /// fits, else `Err(ms to wait)`.
    pub fn check(&self, tat: Option<u64>, now: u64) -> Result<u64, u64> {
        let tat = tat.unwrap_or(now).max(now);
        let next = tat + self.interval_ms;
        if next - now > self.window_ms {
            return Err(next - now - self.window_ms);
        }
        Ok(next)
    }
}

/// Budgets in this process's memory. Time is tokio's, so tests can pause it.
pub struct InProcessLimiter {
    origin: tokio::time::Instant,
    keys: Mutex<InProcessKeys>,
}

struct InProcessKeys {
    tats: HashMap<String, u64>,
    /// Keys whose budget is whole again are dropped when the map grows
    /// past this; it doubles with the live keys so pruning stays cheap.
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 1024;

impl InProcessLimiter {
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            keys: Mutex::new(InProcessKeys {
                tats: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn acquire_now(&self, key: &str, quota: Quota) -> Budget {
        let now = self.now_ms();
        let gcra = Gcra::new(quota);
        // A panic elsewhere while holding the lock leaves the map usable.
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.tats.len() >= keys.prune_at {
            keys.tats.retain(|_, tat| *tat > now);
            keys.prune_at = (keys.tats.len() * 2).max(MIN_PRUNE_AT);
        }
        match gcra.check(keys.tats.get(key).copied(), now) {
            Ok(tat) => {
                keys.tats.insert(key.to_owned(), tat);
                Budget::Allowed
            }
            Err(wait) => Budget::Exhausted {
                retry_after: Duration::from_millis(wait),
            },
        }
    }
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter for InProcessLimiter {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Budget, RateLimitError>> {
        Box::pin(async move { Ok(self.acquire_now(key, quota)) })
    }
}

/// [`Gcra::check`] as one atomic step in Redis, on Redis's clock (server
/// instances' clocks need not agree). Returns 0 when the request fits, else
/// the milliseconds to wait. The key expires when its budget is whole again,
/// so idle keys cost nothing. Needs Redis 5 or newer (writes after TIME).
const GCRA_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next = tat + interval
if next - now > window then
  return next - now - window
end
redis.call('SET', KEYS[1], next, 'PX', next - now)
return 0
";

/// A request waits at most this long for Redis before the limiter gives up
/// (and [`enforce`] lets the request through).
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Budgets in Redis, shared by every server instance that uses it.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl RedisLimiter {
    /// Connects now, so a wrong URL stops the server at start; after that
    /// the connection is re-established by itself when Redis restarts.
    pub async fn connect(url: &str) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            script: redis::Script::new(GCRA_SCRIPT),
            prefix: REDIS_KEY_PREFIX.to_owned(),
        })
    }

    /// Keeps this limiter's keys under `prefix` instead of the default.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl RateLimiter for RedisLimiter {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Budget, RateLimitError>> {
        Box::pin(async move {
            let gcra = Gcra::new(quota);
            let mut connection = self.connection.clone();
            let wait_ms: u64 = self
                .script
                .key(format!("{}{key}", self.prefix))
                .arg(gcra.interval_ms)
                .arg(gcra.window_ms)
                .invoke_async(&mut connection)
                .await?;
            Ok(match wait_ms {
                0 => Budget::Allowed,
                ms => Budget::Exhausted {
                    retry_after: Duration::from_millis(ms),
                },
            })
        })
    }
}

/// The limiter `settings` ask for: Redis when `redis_url` is set, else
/// in-process.
pub async fn limiter_for(settings: &ApiSettings) -> Result<Arc<dyn RateLimiter>, RateLimitError> {
    if settings.redis_url.is_empty() {
        return Ok(Arc::new(InProcessLimiter::new()));
    }
    let limiter = RedisLimiter::connect(&settings.redis_url).await?;
    if !settings.redis_key_prefix.is_empty() {
        return Ok(Arc::new(
            limiter.with_prefix(settings.redis_key_prefix.clone()),
        ));
    }
    Ok(Arc::new(limiter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINT: Quota = Quota {
        requests: 10,
        period_secs: 60,
    };

    #[test]
    fn gcra_allows_the_quota_at_once_then_one_per_interval() {
        let gcra = Gcra::new(MINT);
        assert_eq!(
            gcra,
            Gcra {
                interval_ms: 6000,
                window_ms: 60_000
            }
        );
        let mut tat = None;
        for _ in 0..10 {
            tat = Some(gcra.check(tat, 0).unwrap());
        }
        assert_eq!(gcra.check(tat, 0), Err(6000), "the 11th waits one interval");
        assert_eq!(gcra.check(tat, 5999), Err(1));
        let at_6s = gcra.check(tat, 6000).unwrap();
        assert_eq!(gcra.check(Some(at_6s), 6000), Err(6000));
        // Idle for a whole period: the full budget again.
        let mut tat = Some(at_6s);
        for _ in 0..10 {
            tat = Some(gcra.check(tat, 200_000).unwrap());
        }
        assert!(gcra.check(tat, 200_000).is_err());
    }

    #[test]
    fn uneven_quotas_never_allow_more_than_asked() {
        let gcra = Gcra::new(Quota {
            requests: 3,
            period_secs: 1,
        });
        assert_eq!(gcra.interval_ms, 334);
        let mut tat = None;
        let mut allowed = 0;
        for _ in 0..10 {
            if let Ok(t) = gcra.check(tat, 0) {
                tat = Some(t);
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn in_process_budgets_are_per_key_and_refill_with_time() {
        let limiter = InProcessLimiter::new();
        for _ in 0..10 {
            assert_eq!(
                limiter.acquire("mint:a", MINT).await.unwrap(),
                Budget::Allowed
            );
        }
        assert_eq!(
            limiter.acquire("mint:a", MINT).await.unwrap(),
            Budget::Exhausted {
                retry_after: Duration::from_secs(6)
            }
        );
        assert_eq!(
            limiter.acquire("mint:b", MINT).await.unwrap(),
            Budget::Allowed,
            "another wallet has its own budget"
        );
        tokio::time::advance(Duration::from_millis(2500)).await;
        assert_eq!(
            limiter.acquire("mint:a", MINT).await.unwrap(),
            Budget::Exhausted {
                retry_after: Duration::from_millis(3500)
            }
        );
        tokio::time::advance(Duration::from_millis(3500)).await;
        assert_eq!(
            limiter.acquire("mint:a", MINT).await.unwrap(),
            Budget::Allowed
        );
        assert!(matches!(
            limiter.acquire("mint:a", MINT).await.unwrap(),
            Budget::Exhausted { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_pruned_once_the_map_grows() {
        let limiter = InProcessLimiter::new();
        let quota = Quota {
            requests: 1,
            period_secs: 1,
        };
        for i in 0..MIN_PRUNE_AT {
            limiter.acquire(&format!("k{i}"), quota).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        limiter.acquire("fresh", quota).await.unwrap();
        let keys = limiter.keys.lock().unwrap();
        assert_eq!(keys.tats.len(), 1, "only the live key is left");
        assert_eq!(keys.prune_at, MIN_PRUNE_AT);
    }
}
