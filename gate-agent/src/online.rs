//! Whether the gate counts as online, with hysteresis: a pure state machine
//! over how its sync requests went, so a slow or flaky link shows as what it
//! is instead of flapping with whichever request finished last.
//!
//! - Online, the gate goes offline after `offline_after_failures` requests
//!   in a row failed (unreachable, timed out) or were slow (answered later
//!   than `slow_request_ms` beyond the long-poll wait). One healthy request
//!   in between starts the count again.
//! - Offline (and at start), it goes online only once both halves of sync
//!   made a healthy round trip since: the cache feed (snapshot or delta) and
//!   the journal upload. A journal with nothing to send has nothing to prove:
//!   it counts as a healthy upload without touching the failure count.
//! - A server that answered with a refusal answered: for the link that is a
//!   round trip like any other (the refusal itself is shown as the sync error).

/// Which half of the sync task made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// Snapshot or delta.
    Feed,
    /// Journal upload.
    Upload,
}

/// How one request went, as far as the link is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered in time.
    Healthy,
    /// Answered, but later than `slow_request_ms`.
    Slow,
    /// No answer: unreachable or timed out.
    Failed,
    /// The uploader had nothing to send (no request was made).
    NothingToSend,
}

/// The state: whether the gate is online, and the evidence towards the
/// other state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineState {
    online: bool,
    /// Failed or slow requests in a row.
    bad_in_a_row: u32,
    /// Since the gate went offline: the feed made a healthy round trip.
    feed_ok: bool,
    /// Since the gate went offline: the upload made a healthy round trip
    /// (or had nothing to send).
    upload_ok: bool,
    offline_after: u32,
}

impl OnlineState {
    /// Offline until proven otherwise; offline after `offline_after`
    /// (at least 1) bad requests in a row.
    pub fn new(offline_after: u32) -> Self {
        Self {
            online: false,
            bad_in_a_row: 0,
            feed_ok: false,
            upload_ok: false,
            offline_after: offline_after.max(1),
        }
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Takes in how a request of `half` went; `Some(online)` when that
    /// changed whether the gate is online.
    pub fn record(&mut self, half: Half, outcome: Outcome) -> Option<bool> {
        let was = self.online;
        match outcome {
            Outcome::Healthy | Outcome::NothingToSend => {
                if outcome == Outcome::Healthy {
                    self.bad_in_a_row = 0;
                }
                match half {
                    Half::Feed => self.feed_ok = true,
                    Half::Upload => self.upload_ok = true,
                }
                if !self.online && self.feed_ok && self.upload_ok {
                    self.online = true;
                }
            }
            Outcome::Slow | Outcome::Failed => {
                self.bad_in_a_row = self.bad_in_a_row.saturating_add(1);
                match half {
                    Half::Feed => self.feed_ok = false,
                    Half::Upload => self.upload_ok = false,
                }
                if self.online && self.bad_in_a_row >= self.offline_after {
                    self.online = false;
                    self.feed_ok = false;
                    self.upload_ok = false;
                }
            }
        }
        (self.online != was).then_some(self.online)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Half::{Feed, Upload};
    use Outcome::{Failed, Healthy, NothingToSend, Slow};

    /// A case: its name, the requests in order, and online (1) or not (0)
    /// after each.
    type Case = (&'static str, &'static [(Half, Outcome)], &'static str);

    /// Feeds `steps` to a fresh state (offline after 3) and returns whether
    /// it was online after each.
    fn run(steps: &[(Half, Outcome)]) -> String {
        let mut state = OnlineState::new(3);
        steps
            .iter()
            .map(|&(half, outcome)| {
                state.record(half, outcome);
                if state.is_online() { '1' } else { '0' }
            })
            .collect()
    }

    #[test]
    fn online_and_offline_follow_the_table() {
        let cases: &[Case] = &[
            (
                "starts offline; both halves needed",
                &[(Feed, Healthy), (Upload, Healthy)],
                "01",
            ),
            (
                "an empty journal proves nothing but blocks nothing",
                &[(Upload, NothingToSend), (Feed, Healthy)],
                "01",
            ),
            (
                "a slow feed is not a healthy round trip",
                &[(Upload, Healthy), (Feed, Slow), (Feed, Healthy)],
                "001",
            ),
            (
                "two bad in a row stay online, the third goes offline",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Feed, Slow),
                    (Upload, Failed),
                    (Feed, Slow),
                ],
                "01110",
            ),
            (
                "a healthy request in between starts the count again",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Feed, Slow),
                    (Feed, Slow),
                    (Upload, Healthy),
                    (Feed, Slow),
                    (Feed, Slow),
                ],
                "0111111",
            ),
            (
                "an idle uploader does not reset the count",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Feed, Failed),
                    (Upload, NothingToSend),
                    (Feed, Failed),
                    (Upload, NothingToSend),
                    (Feed, Failed),
                ],
                "0111110",
            ),
            (
                "offline, a healthy feed alone is not enough while uploads fail",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Feed, Failed),
                    (Feed, Failed),
                    (Feed, Failed),
                    (Feed, Healthy),
                    (Upload, Failed),
                    (Feed, Healthy),
                ],
                "01110000",
            ),
            (
                "back online after both halves round-trip, in either order",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Upload, Failed),
                    (Upload, Failed),
                    (Upload, Failed),
                    (Upload, Healthy),
                    (Feed, Healthy),
                ],
                "0111001",
            ),
            (
                "offline, each half's latest round trip counts",
                &[
                    (Feed, Healthy),
                    (Upload, Healthy),
                    (Feed, Slow),
                    (Feed, Slow),
                    (Feed, Slow),
                    (Upload, Healthy),
                    (Feed, Slow),
                    (Feed, Healthy),
                ],
                "01110001",
            ),
            (
                "a slow link that answers everything stays offline",
                &[
                    (Feed, Slow),
                    (Upload, Slow),
                    (Feed, Slow),
                    (Upload, Slow),
                    (Feed, Slow),
                ],
                "00000",
            ),
        ];
        for (name, steps, expected) in cases {
            assert_eq!(run(steps), *expected, "{name}");
        }
    }

    #[test]
    fn a_change_is_reported_once() {
        let mut state = OnlineState::new(1);
        assert_eq!(state.record(Feed, Healthy), None);
        assert_eq!(state.record(Upload, Healthy), Some(true));
        assert_eq!(state.record(Feed, Healthy), None);
        assert_eq!(state.record(Feed, Failed), Some(false));
        assert_eq!(state.record(Feed, Failed), None);
    }
}
