//! A short-lived cache of the public event reads (`GET /api/events`,
//! `GET /api/events/{id}`), the requests buyers make most: the seed's load
//! scenario is mostly these, and each otherwise costs a database round trip
//! and a JSON encoding.
//!
//! An answer is reused for at most [`FRESH_FOR`] and only while no event
//! changed through this server: [`crate::services::Services::publish_event`] bumps the
//! generation, so an organizer's edit shows at once here. Another server
//! instance sharing the database shows it within [`FRESH_FOR`]; so does an
//! event that ended (the list hides ended events).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// How long an answer is reused at most.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Most answers kept; past this the cache starts over (query strings are
/// the caller's choice, so the key space is unbounded).
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct ReadCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    made: Instant,
    generation: u64,
    body: Bytes,
}

impl ReadCache {
    /// Forgets every answer: an event changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The JSON answer under `key`, made by `make` when there is no fresh
    /// one. Errors are never cached.
    pub async fn json<E, F>(&self, key: String, make: F) -> Result<Response, E>
    where
        F: Future<Output = Result<Vec<u8>, E>>,
    {
        let generation = self.generation.load(Ordering::Acquire);
        let hit = self.lock().get(&key).and_then(|e| {
            (e.generation == generation && e.made.elapsed() < FRESH_FOR).then(|| e.body.clone())
        });
        let body = match hit {
            Some(body) => body,
            None => {
                let body = Bytes::from(make.await?);
                let mut entries = self.lock();
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(
                    key,
                    Entry {
                        made: Instant::now(),
                        generation,
                        body: body.clone(),
                    },
                );
                body
            }
        };
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves a usable map.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn answers_are_reused_until_an_event_changes() {
        let cache = ReadCache::default();
        let made = std::sync::atomic::AtomicU32::new(0);
        let make = || async {
            let n = made.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(format!("{{\"n\":{n}}}").into_bytes())
        };
        let first = body(cache.json("k".into(), make()).await.unwrap()).await;
        let second = body(cache.json("k".into(), make()).await.unwrap()).await;
        assert_eq!(first, second);
        assert_eq!(made.load(Ordering::SeqCst), 1);
        cache.invalidate();
        let third = body(cache.json("k".into(), make()).await.unwrap()).await;
        assert_eq!(third, b"{\"n\":1}");
        let other = body(cache.json("other".into(), make()).await.unwrap()).await;
        assert_eq!(other, b"{\"n\":2}");
        let failed: Result<Response, ()> = cache.json("e".into(), async { Err(()) }).await;
        assert!(failed.is_err());
        assert!(!cache.lock().contains_key("e"), "errors are not kept");
    }
}
