//! The kiosk status page on localhost (big green/red verdict, reason in staff
//! words, counts, cache age, journal backlog), its live feed (SSE), a JSON view,
//! and Prometheus metrics. One action: staff may undo the last admission
//! (`POST /api/undo`), which the decision loop carries out; nothing else here
//! changes the gate's state.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::gate::{Clock, Verdict};
use crate::store::Counts;
use crate::undo::{StaffCommand, UndoAnswer};

/// What the page shows, as JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusView {
    pub gate_name: String,
    pub gate_number: u32,
    pub direction: String,
    pub last: Option<Verdict>,
    pub counts: Counts,
    /// When the server generated the cache (Unix seconds).
    pub cache_generated_at: Option<i64>,
    pub cache_age_secs: Option<i64>,
    /// Whether the gate talks to its sync server (always false without sync).
    pub online: bool,
    /// Whether a sync task runs (the gate is enrolled and sync is enabled).
    pub sync_enabled: bool,
    /// When the sync server last answered (Unix seconds).
    pub last_sync_at: Option<i64>,
    /// Seconds since the server last answered.
    pub last_sync_age_secs: Option<i64>,
    /// How far this box's clock is from the server's (positive: ahead), in
    /// whole seconds, from the `Date` of the server's last answer. Doors-open
    /// and end-time windows are decided on this box's clock.
    pub clock_skew_secs: Option<i64>,
    /// Why the last sync request failed, while it does.
    pub sync_error: Option<String>,
    /// Why scans cannot be recorded right now, if they cannot.
    pub journal_error: Option<String>,
    /// Whether that is because the data disk is full.
    pub storage_full: bool,
    /// Why the gate cannot admit anyone (empty cache, ...).
    pub setup_error: Option<String>,
    /// Each input and its state ("reading", "waiting for /dev/ttyACM0: ...").
    pub inputs: BTreeMap<String, String>,
}

const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

#[derive(Debug, Default)]
struct Metrics {
    counters: HashMap<String, u64>,
    decision_buckets: [u64; BUCKETS.len()],
    decision_count: u64,
    decision_sum: f64,
}

/// Shared between the decision loop, the inputs and the status server.
pub struct StatusBoard {
    view: Mutex<StatusView>,
    metrics: Mutex<Metrics>,
    updates: broadcast::Sender<()>,
    clock: Arc<dyn Clock>,
    /// Where staff commands go (the decision loop), once it runs.
    staff: Mutex<Option<std::sync::mpsc::SyncSender<StaffCommand>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data; keep serving it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StatusBoard {
    pub fn new(view: StatusView, clock: Arc<dyn Clock>) -> Arc<Self> {
        let (updates, _) = broadcast::channel(64);
        Arc::new(Self {
            view: Mutex::new(view),
            metrics: Mutex::default(),
            updates,
            clock,
            staff: Mutex::new(None),
        })
    }

    /// Connects the page's undo button to the decision loop.
    pub fn set_staff_commands(&self, sender: std::sync::mpsc::SyncSender<StaffCommand>) {
        *lock(&self.staff) = Some(sender);
    }

    pub fn update(&self, f: impl FnOnce(&mut StatusView)) {
        f(&mut lock(&self.view));
        let _ = self.updates.send(());
    }

    pub fn view(&self) -> StatusView {
        let mut v = lock(&self.view).clone();
        v.cache_age_secs = v
            .cache_generated_at
            .map(|g| (self.clock.now_ms().div_euclid(1000) - g).max(0));
        v.last_sync_age_secs = v
            .last_sync_at
            .map(|t| (self.clock.now_ms().div_euclid(1000) - t).max(0));
        v
    }

    pub fn set_input(&self, name: &str, state: impl Into<String>) {
        let state = state.into();
        self.update(|v| {
            v.inputs.insert(name.to_owned(), state);
        });
    }

    /// Adds to a counter; `series` is the full Prometheus series, labels included.
    pub fn count(&self, series: &str, by: u64) {
        *lock(&self.metrics)
            .counters
            .entry(series.to_owned())
            .or_default() += by;
    }

    pub fn observe_decision(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = lock(&self.metrics);
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                m.decision_buckets[i] += 1;
            }
        }
        m.decision_count += 1;
        m.decision_sum += secs;
    }

    pub fn prometheus(&self) -> String {
        let view = self.view();
        let m = lock(&self.metrics);
        let mut out = String::new();
        let mut counters: Vec<_> = m.counters.iter().collect();
        counters.sort();
        let mut last_name = "";
        for (series, value) in counters {
            let name = series.split('{').next().unwrap_or(series);
            if name != last_name {
                let _ = writeln!(out, "# TYPE {name} counter");
                last_name = name;
            }
            let _ = writeln!(out, "{series} {value}");
        }
        let _ = writeln!(out, "# TYPE gate_decision_seconds histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "gate_decision_seconds_bucket{{le=\"{le}\"}} {}",
                m.decision_buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "gate_decision_seconds_bucket{{le=\"+Inf\"}} {}",
            m.decision_count
        );
        let _ = writeln!(out, "gate_decision_seconds_sum {}", m.decision_sum);
        let _ = writeln!(out, "gate_decision_seconds_count {}", m.decision_count);
        for (name, value) in [
            ("gate_people_inside", view.counts.inside as f64),
            ("gate_journal_unsent", view.counts.unsent as f64),
            (
                "gate_journal_ok",
                if view.journal_error.is_none() {
                    1.0
                } else {
                    0.0
                },
            ),
            (
                "gate_storage_full",
                if view.storage_full { 1.0 } else { 0.0 },
            ),
            ("gate_online", if view.online { 1.0 } else { 0.0 }),
            (
                "gate_sync_enabled",
                if view.sync_enabled { 1.0 } else { 0.0 },
            ),
            (
                "gate_last_sync_timestamp_seconds",
                view.last_sync_at.map_or(f64::NAN, |t| t as f64),
            ),
            (
                "gate_cache_age_seconds",
                view.cache_age_secs.map_or(f64::NAN, |a| a as f64),
            ),
            (
                "gate_clock_skew_seconds",
                view.clock_skew_secs.map_or(f64::NAN, |s| s as f64),
            ),
        ] {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
        }
        out
    }

    fn subscribe(&self) -> broadcast::Receiver<()> {
        self.updates.subscribe()
    }
}

/// The status server's routes.
pub fn app(board: Arc<StatusBoard>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(status_json))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .route("/api/undo", post(undo))
        .with_state(board)
}

/// Serves `app` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    board: Arc<StatusBoard>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(board))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn status_json(State(board): State<Arc<StatusBoard>>) -> impl IntoResponse {
    axum::Json(board.view())
}

/// `POST /api/undo` (JSON body, so another site's page cannot post it):
/// voids the gate's last admission within the event's undo window. 200
/// with the answer when undone, 409 with the reason when refused.
async fn undo(State(board): State<Arc<StatusBoard>>, headers: HeaderMap) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/json",
        )
            .into_response();
    }
    let Some(sender) = lock(&board.staff).clone() else {
        let answer = UndoAnswer::unavailable("the gate is not running");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(answer)).into_response();
    };
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    let command = StaffCommand::Undo {
        source: "status-page".to_owned(),
        reply,
    };
    if sender.try_send(command).is_err() {
        let answer = UndoAnswer::unavailable("the gate is busy; try again");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(answer)).into_response();
    }
    let answer =
        tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(5))).await;
    match answer {
        Ok(Ok(answer)) => {
            let status = if answer.undone {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (status, axum::Json(answer)).into_response()
        }
        _ => {
            let answer = UndoAnswer::unavailable("the gate did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(answer)).into_response()
        }
    }
}

async fn metrics(State(board): State<Arc<StatusBoard>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        board.prometheus(),
    )
}

async fn events(
    State(board): State<Arc<StatusBoard>>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let first = tokio_stream::once(());
    // A lagging page just gets the latest view, so lag errors count as an update.
    let rest = BroadcastStream::new(board.subscribe()).map(|_| ());
    let stream = first.chain(rest).map(move |()| {
        let json = serde_json::to_string(&board.view()).unwrap_or_else(|_| "{}".to_owned());
        Ok(Event::default().event("status").data(json))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gate</title>
<style>
  html,body{margin:0;height:100%;font-family:system-ui,sans-serif;background:#111;color:#fff}
  #verdict{height:62vh;display:flex;flex-direction:column;justify-content:center;align-items:center;
    text-align:center;padding:0 4vw}
  #verdict.ok{background:#0a8a2a} #verdict.no{background:#c01818} #verdict.idle{background:#333}
  #big{font-size:14vh;font-weight:800;letter-spacing:.05em}
  #reason{font-size:5vh;margin-top:2vh} #tier{font-size:4vh;margin-top:1vh;opacity:.9}
  #bar{display:grid;grid-template-columns:repeat(3,1fr);gap:1vh;padding:2vh}
  .cell{background:#222;border-radius:1vh;padding:1.5vh;text-align:center}
  .n{font-size:6vh;font-weight:700} .l{font-size:2.2vh;opacity:.75}
  #foot{display:flex;justify-content:space-between;padding:0 2vh;font-size:2.4vh;opacity:.85}
  .warn{color:#ffcc33;font-weight:700}
</style></head><body>
<div id="verdict" class="idle"><div id="big">READY</div><div id="reason">Scan a ticket</div><div id="tier"></div></div>
<div id="bar">
  <div class="cell"><div class="n" id="admitted">0</div><div class="l">admitted</div></div>
  <div class="cell"><div class="n" id="rejected">0</div><div class="l">rejected</div></div>
  <div class="cell"><div class="n" id="inside">0</div><div class="l">inside</div></div>
</div>
<div id="foot"><span id="gate"></span><span id="net"></span><span id="cache"></span><span id="unsent"></span></div>
<div id="alert" class="warn" style="padding:0 2vh;font-size:2.6vh"></div>
<div style="padding:1vh 2vh"><button id="undo" type="button" style="font-size:3vh;padding:1vh 3vh">Undo last admission (did not pass)</button> <span id="undo-answer" role="status"></span></div>
<script>
function age(s){if(s==null)return "no cache";if(s<120)return s+" s";if(s<7200)return Math.floor(s/60)+" min";return Math.floor(s/3600)+" h";}
function show(v){
  const el=document.getElementById("verdict");
  if(v.last){el.className=v.last.opens?"ok":"no";
    document.getElementById("big").textContent=v.last.opens?"GO":"STOP";
    document.getElementById("reason").textContent=v.last.text;
    document.getElementById("tier").textContent=v.last.tier_name?("Tier: "+v.last.tier_name):(v.last.tier!=null?("Tier "+v.last.tier):"");}
  document.getElementById("admitted").textContent=v.counts.admitted;
  document.getElementById("rejected").textContent=v.counts.rejected;
  document.getElementById("inside").textContent=v.counts.inside;
  document.getElementById("gate").textContent=v.gate_name+" ("+v.direction+")";
  document.getElementById("net").textContent=(v.online?"online":"offline")+(v.last_sync_age_secs!=null?(", synced "+age(v.last_sync_age_secs)+" ago"):(v.sync_enabled?", never synced":""))+(v.clock_skew_secs!=null&&Math.abs(v.clock_skew_secs)>=2?(", clock "+Math.abs(v.clock_skew_secs)+" s "+(v.clock_skew_secs>0?"ahead":"behind")):"");
  document.getElementById("cache").textContent="cache age "+age(v.cache_age_secs);
  document.getElementById("unsent").textContent=v.counts.unsent+" not uploaded";
  const down=Object.entries(v.inputs||{}).filter(([,st])=>!st.startsWith("reading")).map(([n,st])=>"Scanner "+n+": "+st);
  document.getElementById("alert").textContent=[v.journal_error,v.setup_error,v.sync_enabled&&!v.online?v.sync_error:null].concat(down).filter(Boolean).join(" | ");
}
fetch("/api/status").then(r=>r.json()).then(show);
document.getElementById("undo").addEventListener("click",()=>{
  fetch("/api/undo",{method:"POST",headers:{"content-type":"application/json"},body:"{}"})
    .then(r=>r.json()).then(a=>{document.getElementById("undo-answer").textContent=a.text;})
    .catch(()=>{document.getElementById("undo-answer").textContent="The gate did not answer";});
});
const es=new EventSource("/events");
es.addEventListener("status",e=>show(JSON.parse(e.data)));
</script></body></html>
"#;
