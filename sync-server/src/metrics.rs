//! The server's Prometheus registry (served at `GET /metrics` by the HTTP
//! layer, text format):
//!
//! - `sync_http_request_seconds{method,route,status}`: request latency by
//!   route template (never the raw path, so ids do not explode the series);
//! - `sync_scans_total{gate,outcome}`: scans stored from gates and handhelds
//!   by outcome code (`admitted`, `already_inside`, ...);
//! - `sync_scans_refused_total{reason}`: scan records refused at ingest and
//!   never stored (`wrong_event`, `code_missing`, `code_invalid`, ...);
//! - `sync_incidents_total{reason}`: offline admissions the server would have
//!   refused (`revoked`, `stale_generation`, `event_ended`, ...);
//! - `sync_replay_entries_total{result}`: scans settled by the replay worker
//!   (`confirmed`, `failed`, `expired`);
//! - `sync_chain_transactions_total{kind,result}`: transactions the server
//!   sent (`replay`), by outcome.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http: HistogramVec,
    pub scans: IntCounterVec,
    pub refused: IntCounterVec,
    pub incidents: IntCounterVec,
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
        let refused = IntCounterVec::new(
            Opts::new(
                "sync_scans_refused_total",
                "Scan records refused at ingest, by reason",
            ),
            &["reason"],
        )?;
        let incidents = IntCounterVec::new(
            Opts::new(
                "sync_incidents_total",
                "Offline admissions the server would have refused, by reason",
            ),
            &["reason"],
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
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(incidents.clone()))?;
        registry.register(Box::new(replay.clone()))?;
        registry.register(Box::new(transactions.clone()))?;
        Ok(Self {
            registry,
            http,
            scans,
            refused,
            incidents,
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

    /// Counts scan records refused at ingest, by reason.
    pub fn count_refused<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        for reason in reasons {
            self.refused.with_label_values(&[reason]).inc();
        }
    }

    /// Counts newly recorded incidents, by reason.
    pub fn count_incidents<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        for reason in reasons {
            self.incidents.with_label_values(&[reason]).inc();
        }
    }

    /// Counts a purchase reaching `state` (reserved, paid, fulfilled, ...).
    pub fn purchase(&self, method: &str, state: &str) {
        self.purchases.with_label_values(&[method, state]).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
