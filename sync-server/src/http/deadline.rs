//! The request body's deadline: a body must be in whole within
//! `connections.body_timeout_secs` of its headers. A client that trickles
//! its body is answered 408 `request_timeout` (the one error shape) and
//! its connection closed, whatever the handler was reading it for.
//!
//! The deadline is on the whole body, not on each piece of it: a byte every
//! few seconds would never trip a per-read timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// The middleware: the body gets its deadline; a handler that failed
/// because it ran out is answered 408 instead of whatever it said.
pub async fn body_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = Duration::from_secs(state.config.connections.body_timeout_secs.into());
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    tracing::debug!(?limit, "request body too slow");
    let mut response = ApiError::RequestTimeout(format!(
        "the request body did not arrive within {} s",
        limit.as_secs()
    ))
    .into_response();
    // The rest of the body may still be on its way: do not read it.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline passed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        Poll::Pending
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

    /// A body whose pieces the test sends when it likes.
    struct Trickle(tokio::sync::mpsc::Receiver<Bytes>);

    impl HttpBody for Trickle {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_still_arriving_at_the_deadline_fails_and_says_so() {
        let (sender, pieces) = tokio::sync::mpsc::channel(4);
        let expired = Arc::new(AtomicBool::new(false));
        let body = Body::new(DeadlineBody {
            inner: Body::new(Trickle(pieces)),
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(5))),
            expired: Arc::clone(&expired),
        });
        let read = tokio::spawn(axum::body::to_bytes(body, 1024));
        // A piece every 4 s: each read is quick, the whole is not.
        sender.send(Bytes::from_static(b"{")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!expired.load(Ordering::Acquire));
        sender.send(Bytes::from_static(b"\"a\"")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(read.await.unwrap().is_err(), "the whole body had 5 s");
        assert!(expired.load(Ordering::Acquire));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_reads_whole() {
        let (sender, pieces) = tokio::sync::mpsc::channel(4);
        let expired = Arc::new(AtomicBool::new(false));
        let body = Body::new(DeadlineBody {
            inner: Body::new(Trickle(pieces)),
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(5))),
            expired: Arc::clone(&expired),
        });
        sender.send(Bytes::from_static(b"{}")).await.unwrap();
        drop(sender);
        assert_eq!(&axum::body::to_bytes(body, 1024).await.unwrap()[..], b"{}");
        assert!(!expired.load(Ordering::Acquire));
    }
}
