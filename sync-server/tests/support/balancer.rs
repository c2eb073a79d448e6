//! A small TCP load balancer for tests that run several server instances:
//! each new connection goes to the next backend in turn, and to the one
//! after it when that one does not accept (it was killed), the way haproxy
//! with `option redispatch` spreads clients over a pool.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running balancer; dropping it stops accepting.
pub struct Balancer {
    pub url: String,
    /// Connections handed to each backend so far.
    pub served: Arc<Vec<AtomicU64>>,
    /// Connections no backend accepted.
    pub refused: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Balancer {
    /// Listens on a free port of 127.0.0.1 in front of `backends` (ports).
    pub async fn start(backends: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let refused = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let backends = Arc::new(backends);
        let accept = {
            let served = served.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let (backends, served, refused, next) = (
                        backends.clone(),
                        served.clone(),
                        refused.clone(),
                        next.clone(),
                    );
                    tokio::spawn(async move {
                        for _ in 0..backends.len() {
                            let i = next.fetch_add(1, Ordering::Relaxed) % backends.len();
                            if let Ok(mut upstream) =
                                TcpStream::connect(("127.0.0.1", backends[i])).await
                            {
                                served[i].fetch_add(1, Ordering::Relaxed);
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                                return;
                            }
                        }
                        refused.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        };
        Self {
            url,
            served,
            refused,
            accept,
        }
    }

    /// Connections per backend, in the order given to [`Balancer::start`].
    pub fn spread(&self) -> Vec<u64> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}
