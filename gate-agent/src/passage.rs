//! The turnstile's passage contact: the signal a turnstile gives when its
//! arm turned (someone went through). With it the gate knows when an
//! admitted holder did not pass: no passage within `outputs.passage_timeout_ms`
//! after the relay opened, and the decision loop undoes the admission itself
//! (the same undo staff make, under the event's undo window, journaled as
//! `source = "turnstile"`), so the ticket can be scanned again.
//!
//! One trait for the sensor; the GPIO character device for the turnstile
//! HAT (the board profile's `passage` line). Tests drive the trait through a
//! channel, since no GPIO chip runs here.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::Duration;

use uuid::Uuid;

use crate::profiles::{BoardProfile, LineSpec};
use crate::stop::Stop;

/// A turnstile passage sensor: a thread that sends `()` per passage.
pub trait PassageSensor: Send {
    fn name(&self) -> String;
    /// Starts the sensor's thread; it returns when `stop` is triggered.
    /// A passage that finds the channel full is dropped (the loop is far
    /// behind; one passage of a burst is as good as many).
    fn start(
        self: Box<Self>,
        passages: SyncSender<()>,
        stop: Stop,
    ) -> std::io::Result<JoinHandle<()>>;
}

/// The passage contact on a GPIO line, read as edge events (debounced), so a
/// passage is never missed between two polls.
pub struct GpioPassage {
    chip: PathBuf,
    line: LineSpec,
}

impl GpioPassage {
    /// The sensor of `profile`, if the board has a passage line.
    pub fn from_profile(profile: &BoardProfile) -> Option<Self> {
        profile.passage.clone().map(|line| Self {
            chip: profile.chip.clone(),
            line,
        })
    }
}

/// How long a contact must settle before an edge counts.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// How often the sensor thread looks at the stop signal.
const POLL: Duration = Duration::from_millis(200);

impl PassageSensor for GpioPassage {
    fn name(&self) -> String {
        format!("passage:{}:{}", self.chip.display(), self.line.line)
    }

    fn start(
        self: Box<Self>,
        passages: SyncSender<()>,
        stop: Stop,
    ) -> std::io::Result<JoinHandle<()>> {
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&self.chip)
            .with_consumer("gate-agent-passage")
            .with_line(self.line.line)
            .as_input()
            .with_edge_detection(gpiocdev::line::EdgeDetection::RisingEdge)
            .with_debounce_period(DEBOUNCE);
        if self.line.active_low {
            builder.as_active_low();
        }
        let request = builder.request().map_err(std::io::Error::other)?;
        let name = self.name();
        std::thread::Builder::new()
            .name("passage".into())
            .spawn(move || {
                while !stop.is_triggered() {
                    match request.wait_edge_event(POLL) {
                        Ok(false) => {}
                        Ok(true) => match request.read_edge_event() {
                            Ok(_) => {
                                let _ = passages.try_send(());
                            }
                            Err(e) => tracing::error!(sensor = %name, error = %e, "passage read failed"),
                        },
                        Err(e) => {
                            tracing::error!(sensor = %name, error = %e, "passage sensor failed; retrying");
                            std::thread::sleep(POLL);
                        }
                    }
                }
            })
    }
}

/// The admission waiting for its passage, as the decision loop keeps it.
/// One at a time: a turnstile holds one unlock, so a new admission replaces
/// the one before it (which is taken as passed: the gate never undoes an
/// admission that is not its last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageWatch {
    timeout_ms: i64,
    waiting: Option<Waiting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    scan_id: Uuid,
    deadline_ms: i64,
}

/// What a passage meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passage {
    /// The admitted holder went through.
    Passed(Uuid),
    /// The turnstile turned with no admission waiting (pushed, or a second
    /// person through one unlock): counted and logged.
    Unexpected,
}

impl PassageWatch {
    /// A watch that waits `timeout_ms` for each admission's passage.
    pub fn new(timeout_ms: u64) -> Self {
        Self {
            timeout_ms: i64::try_from(timeout_ms).unwrap_or(i64::MAX),
            waiting: None,
        }
    }

    /// The turnstile opened for admission `scan_id` at `now_ms`.
    pub fn admitted(&mut self, scan_id: Uuid, now_ms: i64) {
        self.waiting = Some(Waiting {
            scan_id,
            deadline_ms: now_ms.saturating_add(self.timeout_ms),
        });
    }

    /// The turnstile turned.
    pub fn passed(&mut self) -> Passage {
        match self.waiting.take() {
            Some(w) => Passage::Passed(w.scan_id),
            None => Passage::Unexpected,
        }
    }

    /// Staff undid `scan_id` (or it is otherwise settled): stop waiting for it.
    pub fn forget(&mut self, scan_id: Uuid) {
        if self.waiting.is_some_and(|w| w.scan_id == scan_id) {
            self.waiting = None;
        }
    }

    /// The admission whose passage did not come by `now_ms`, once.
    pub fn expired(&mut self, now_ms: i64) -> Option<Uuid> {
        let w = self.waiting?;
        if now_ms < w.deadline_ms {
            return None;
        }
        self.waiting = None;
        Some(w.scan_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_passes_or_expires_once_and_a_newer_one_replaces_it() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut watch = PassageWatch::new(5_000);
        assert_eq!(watch.passed(), Passage::Unexpected);
        watch.admitted(a, 1_000);
        assert_eq!(watch.expired(5_999), None);
        assert_eq!(watch.passed(), Passage::Passed(a));
        assert_eq!(watch.expired(10_000), None, "passed: never expires");

        watch.admitted(a, 1_000);
        watch.admitted(b, 2_000);
        assert_eq!(watch.expired(6_000), None, "b's deadline counts");
        assert_eq!(watch.expired(7_000), Some(b));
        assert_eq!(watch.expired(8_000), None, "once");
        assert_eq!(watch.passed(), Passage::Unexpected);

        watch.admitted(a, 1_000);
        watch.forget(b);
        watch.forget(a);
        assert_eq!(watch.expired(9_000), None, "undone by staff first");
    }
}
