//! Serving connections: accepting them, timing them out, capping them.
//!
//! A connection is always in one of three phases, and only two of them can
//! time out:
//! - **head**: from the connection opening (or the first byte of a later
//!   request) until the request's headers are in; closed after
//!   `header_timeout_secs` (a client trickling its headers);
//! - **busy**: a request is being answered, from its headers until its
//!   response's last byte left. Its body has its own deadline (see
//!   [`crate::http::deadline`]) and handlers bound their own waits (a gate's
//!   long poll), so nothing here cuts it;
//! - **idle**: kept alive between requests with no byte of the next one yet;
//!   closed after `idle_timeout_secs`.
//!
//! At most `max_connections` are open. A new connection past the cap closes
//! the one that has waited longest for a request (idle or in its head), so
//! sockets that say nothing cannot lock everyone else out; when every one
//! is busy, the newcomer is answered 503 `overloaded` and closed. Each
//! request carries the peer's address as [`ConnectInfo`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::ConnectionSettings;
use crate::http::error::ErrorBody;

/// Where a connection is; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct Track {
    phase: Phase,
    /// When the phase began.
    since: Instant,
    /// Requests being answered (HTTP/1.1 answers one at a time, but a
    /// response body may outlive the next request's start by a moment).
    in_flight: u32,
    /// Closed to make room for a newer connection.
    evicted: bool,
}

/// One open connection as the cap and the timeouts see it.
struct Connection {
    track: Mutex<Track>,
    /// Woken on every change of `track`.
    changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere while holding it leaves nothing broken.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Connection {
    fn new() -> Self {
        Self {
            track: Mutex::new(Track {
                phase: Phase::Head,
                since: Instant::now(),
                in_flight: 0,
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Track) -> bool) {
        if f(&mut lock(&self.track)) {
            self.changed.notify_waiters();
        }
    }

    /// Bytes arrived: an idle connection starts its next request's head.
    fn received(&self) {
        self.update(|t| {
            let starts = t.phase == Phase::Idle;
            if starts {
                t.phase = Phase::Head;
                t.since = Instant::now();
            }
            starts
        });
    }

    fn request_started(&self) {
        self.update(|t| {
            t.in_flight += 1;
            t.phase = Phase::Busy;
            true
        });
    }

    fn request_finished(&self) {
        self.update(|t| {
            t.in_flight = t.in_flight.saturating_sub(1);
            if t.in_flight == 0 && t.phase == Phase::Busy {
                t.phase = Phase::Idle;
                t.since = Instant::now();
            }
            true
        });
    }

    fn evict(&self) {
        self.update(|t| {
            t.evicted = true;
            true
        });
    }

    fn is_busy(&self) -> bool {
        lock(&self.track).phase == Phase::Busy
    }

    /// Resolves when the connection must go, saying why.
    async fn deadline(&self, settings: &ConnectionSettings) -> Ending {
        let header = Duration::from_secs(settings.header_timeout_secs.into());
        let idle = Duration::from_secs(settings.idle_timeout_secs.into());
        loop {
            let changed = self.changed.notified();
            let (phase, since, evicted) = {
                let t = lock(&self.track);
                (t.phase, t.since, t.evicted)
            };
            if evicted {
                return Ending::Now;
            }
            let (limit, ending) = match phase {
                Phase::Busy => {
                    changed.await;
                    continue;
                }
                Phase::Head => (header, Ending::Now),
                Phase::Idle => (idle, Ending::Idle),
            };
            tokio::select! {
                () = tokio::time::sleep_until(since + limit) => {
                    let t = lock(&self.track);
                    if t.phase == phase && t.since == since {
                        return ending;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Kept alive between requests for too long.
    Idle,
    /// Its head did not arrive in time, or it was closed to make room.
    Now,
}

/// The open connections, for the cap.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// Registers a new connection, making room past `cap` by evicting the
    /// one that has waited longest for a request; `None` when every open
    /// connection is busy.
    fn admit(&self, cap: usize) -> Option<(u64, Arc<Connection>)> {
        let mut open = lock(&self.open);
        if open.len() >= cap {
            let waiting = open
                .values()
                .filter_map(|c| {
                    let t = lock(&c.track);
                    // Idle ones first, then the oldest heads.
                    (t.phase != Phase::Busy && !t.evicted)
                        .then(|| ((t.phase != Phase::Idle, t.since), Arc::clone(c)))
                })
                .min_by_key(|(order, _)| *order);
            let (_, victim) = waiting?;
            victim.evict();
            tracing::debug!(
                cap,
                "connection cap reached: closed the longest waiting one"
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new());
        open.insert(id, Arc::clone(&connection));
        Some((id, connection))
    }

    fn remove(&self, id: u64) {
        lock(&self.open).remove(&id);
    }
}

/// The connection cap that fits the process's open-file limit: the
/// configured one, or lower (with a warning) when the limit leaves less
/// room beside the files already open (database, chain file, logs) and
/// some spare for the database pool to grow.
fn effective_cap(configured: u32) -> usize {
    const SPARE: usize = 64;
    let configured = configured as usize;
    let (Some(limit), Some(open)) = (open_file_limit(), open_files()) else {
        return configured;
    };
    let room = limit.saturating_sub(open + SPARE).max(1);
    if room < configured {
        tracing::warn!(
            configured,
            open_file_limit = limit,
            serving = room,
            "connections.max_connections is above what the open-file limit allows; serving fewer"
        );
        return room;
    }
    configured
}

/// The soft limit on open files, where the system tells (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Files this process has open now, where the system tells (Linux).
fn open_files() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Serves `router` on `listener` under `settings` until `shutdown`
/// completes, then lets open requests finish.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = effective_cap(settings.max_connections);
    let settings = Arc::new(settings);
    let registry = Arc::new(Registry::default());
    // Every connection holds a receiver; `closed()` waits for them all.
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a connection reset before it was
                // taken: wait a moment rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((id, connection)) = registry.admit(cap) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let (router, settings, registry, stop) = (
            router.clone(),
            Arc::clone(&settings),
            Arc::clone(&registry),
            stop.clone(),
        );
        tokio::spawn(async move {
            serve_connection(stream, peer, &connection, router, &settings, stop).await;
            registry.remove(id);
        });
    }
    drop(listener);
    drop(stop);
    let _ = stopping.send(true);
    stopping.closed().await;
    Ok(())
}

/// Answers a connection past the cap with 503 and closes it, without
/// reading its request.
async fn refuse(mut stream: TcpStream) {
    let body = serde_json::to_vec(&ErrorBody {
        error: "overloaded".into(),
        message: "the server has as many connections as it serves; retry shortly".into(),
        field: None,
    })
    .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let answer = [head.as_bytes(), &body].concat();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
        // Read what the client sent until it closes: a socket closed with
        // unread bytes is reset, and the reset can swallow the answer.
        let mut discard = [0u8; 1024];
        while matches!(stream.read(&mut discard).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    connection: &Arc<Connection>,
    router: Router,
    settings: &ConnectionSettings,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        connection: Arc::clone(connection),
    });
    let watched = Arc::clone(connection);
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        let router = router.clone();
        let guard = RequestGuard::start(Arc::clone(&watched));
        request.extensions_mut().insert(ConnectInfo(peer));
        async move {
            let response = match tower::ServiceExt::oneshot(router, request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, std::convert::Infallible>(guarded(response, guard))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // The deadlines are kept here, not by hyper's timer.
    http.header_read_timeout(None);
    let conn = http.serve_connection(io, service);
    let mut conn = pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            ending = connection.deadline(settings) => {
                // Idle or still in its head: no answer is owed, so the
                // socket just closes.
                tracing::debug!(%peer, ?ending, "connection closed");
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                if !connection.is_busy() {
                    return;
                }
                // Finish the answer under way, then close.
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's socket, reporting arriving bytes (the start of a
/// request's head).
struct WatchedStream {
    inner: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.received();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request under way: the connection is busy until this is dropped,
/// which is when the response's body is done (or the request abandoned).
struct RequestGuard(Arc<Connection>);

impl RequestGuard {
    fn start(connection: Arc<Connection>) -> Self {
        connection.request_started();
        Self(connection)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// `response` with `guard` riding on its body.
fn guarded(response: Response, guard: RequestGuard) -> Response {
    response.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            _guard: guard,
        })
    })
}

struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            ..ConnectionSettings::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_ends_at_the_header_timeout_and_an_idle_one_at_the_idle_timeout() {
        let connection = Connection::new();
        let start = Instant::now();
        assert_eq!(connection.deadline(&settings()).await, Ending::Now);
        assert_eq!(start.elapsed(), Duration::from_secs(10));

        connection.request_started();
        connection.request_finished();
        let idle_from = Instant::now();
        assert_eq!(connection.deadline(&settings()).await, Ending::Idle);
        assert_eq!(idle_from.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_never_times_out_and_its_idle_clock_starts_when_it_is_done() {
        let connection = Arc::new(Connection::new());
        connection.request_started();
        let watched = Arc::clone(&connection);
        let waiting = tokio::spawn(async move { watched.deadline(&settings()).await });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiting.is_finished(), "a long answer is not idle");
        connection.request_finished();
        let done = Instant::now();
        assert_eq!(waiting.await.unwrap(), Ending::Idle);
        assert_eq!(done.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_byte_of_a_request_starts_its_header_clock() {
        let connection = Arc::new(Connection::new());
        connection.request_started();
        connection.request_finished();
        tokio::time::sleep(Duration::from_secs(30)).await;
        connection.received();
        let started = Instant::now();
        assert_eq!(connection.deadline(&settings()).await, Ending::Now);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_cap_the_longest_idle_connection_makes_room_and_busy_ones_never_do() {
        let registry = Registry::default();
        let (_, busy) = registry.admit(2).unwrap();
        busy.request_started();
        let (idle_id, idle) = registry.admit(2).unwrap();
        idle.request_started();
        idle.request_finished();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, newer) = registry.admit(2).unwrap();
        assert!(lock(&idle.track).evicted);
        assert!(!lock(&busy.track).evicted);
        assert_eq!(idle.deadline(&settings()).await, Ending::Now);
        registry.remove(idle_id);
        // Both open ones answering: nobody can make room.
        newer.request_started();
        assert!(registry.admit(2).is_none(), "all busy");
        newer.request_finished();
        assert!(registry.admit(2).is_some(), "an idle one makes room again");
    }
}
