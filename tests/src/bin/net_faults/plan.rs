//! The scripted event, without I/O: which code is scanned at which gate
//! when, and which fault each gate's link suffers when. Both come from one
//! seed, so a run can be repeated.

use std::time::Duration;

use crate::net::Impairment;

/// Small deterministic generator (xorshift64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
}

/// Gates 1 to 3 are entry lanes; gate 4 is the exit.
pub const GATES: usize = 4;
pub const EXIT_GATE: usize = 3;

/// Why a scan is in the script (what a holder is doing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScanKind {
    /// A holder's first entry.
    Entry,
    /// The same code again at the same lane a moment later.
    Repeat,
    /// A code already used, shown at another entry lane (passed back).
    PassBack,
    /// Leaving through the exit lane.
    Exit,
    /// Coming back in after leaving.
    ReEntry,
    /// A code the scanner could not make sense of.
    Unreadable,
}

#[derive(Debug, Clone)]
pub struct PlannedScan {
    pub at: Duration,
    /// 0-based gate index.
    pub gate: usize,
    /// Index into the minted codes; `None` for an unreadable code.
    pub ticket: Option<usize>,
    pub kind: ScanKind,
}

/// How many distinct tickets a script of `scans` scans needs.
pub fn tickets_needed(scans: usize) -> usize {
    (scans * 72).div_ceil(100).max(1)
}

/// The event: `scans` scans over `length`, arrivals rising to a peak at
/// 40 % of the time, on top of a steady trickle. Sorted by time.
pub fn scan_script(scans: usize, length: Duration, seed: u64) -> Vec<PlannedScan> {
    let mut rng = Rng::new(seed);
    let total = length.as_secs_f64();
    let end = total * 0.97;
    let at = |s: f64| Duration::from_secs_f64(s.clamp(0.0, end));
    let entries = tickets_needed(scans).min(scans);
    let mut script = Vec::with_capacity(scans);
    for ticket in 0..entries {
        let t = if rng.chance(0.3) {
            rng.unit() * end
        } else {
            // Triangular on [0, end] with its mode at 40 %.
            let u = rng.unit();
            let c = 0.4;
            if u < c {
                end * (u * c).sqrt()
            } else {
                end * (1.0 - ((1.0 - u) * (1.0 - c)).sqrt())
            }
        };
        script.push(PlannedScan {
            at: at(t),
            gate: rng.below(EXIT_GATE as u64) as usize,
            ticket: Some(ticket),
            kind: ScanKind::Entry,
        });
    }
    let rest = scans - entries;
    let share = |p: f64| ((scans as f64) * p).round() as usize;
    let repeats = share(0.08).min(rest);
    let pass_backs = share(0.04).min(rest - repeats);
    let exits = share(0.07).min(rest - repeats - pass_backs);
    let reentries = share(0.05)
        .min(exits)
        .min(rest - repeats - pass_backs - exits);
    let unreadable = rest - repeats - pass_backs - exits - reentries;
    let entry =
        |rng: &mut Rng, script: &[PlannedScan]| script[rng.below(entries as u64) as usize].clone();
    for _ in 0..repeats {
        let e = entry(&mut rng, &script);
        script.push(PlannedScan {
            at: at(e.at.as_secs_f64() + 1.0 + rng.unit() * 3.0),
            kind: ScanKind::Repeat,
            ..e
        });
    }
    for _ in 0..pass_backs {
        let e = entry(&mut rng, &script);
        let other = (e.gate + 1 + rng.below(EXIT_GATE as u64 - 1) as usize) % EXIT_GATE;
        script.push(PlannedScan {
            at: at(e.at.as_secs_f64() + 2.0 + rng.unit() * total * 0.1),
            gate: other,
            kind: ScanKind::PassBack,
            ..e
        });
    }
    let mut left = Vec::new();
    for _ in 0..exits {
        let e = entry(&mut rng, &script);
        let out = at(e.at.as_secs_f64() + 5.0 + rng.unit() * total * 0.3);
        left.push((e.ticket, out));
        script.push(PlannedScan {
            at: out,
            gate: EXIT_GATE,
            ticket: e.ticket,
            kind: ScanKind::Exit,
        });
    }
    for (ticket, out) in left.into_iter().take(reentries) {
        script.push(PlannedScan {
            at: at(out.as_secs_f64() + 2.0 + rng.unit() * total * 0.2),
            gate: rng.below(EXIT_GATE as u64) as usize,
            ticket,
            kind: ScanKind::ReEntry,
        });
    }
    for _ in 0..unreadable {
        script.push(PlannedScan {
            at: at(rng.unit() * end),
            gate: rng.below(GATES as u64) as usize,
            ticket: None,
            kind: ScanKind::Unreadable,
        });
    }
    script.sort_by_key(|s| (s.at, s.gate));
    script
}

/// A kind of network fault, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Loss,
    DelayJitter,
    Reorder,
    Duplicate,
    Mixed,
    Partition,
    /// The link going down and up again (counted per down/up cycle).
    Flap,
    /// Every gate partitioned at once (a venue-wide outage).
    VenuePartition,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Loss => "loss 15%",
            Self::DelayJitter => "delay 250 ms +/- 200 ms",
            Self::Reorder => "reorder 30% (delay 60 ms)",
            Self::Duplicate => "duplicate 20%",
            Self::Mixed => "mixed (loss 5%, delay 80+/-40 ms, dup 5%, reorder 10%)",
            Self::Partition => "partition (loss 100%)",
            Self::Flap => "link down/up",
            Self::VenuePartition => "all gates partitioned",
        }
    }

    /// The impairment the kind applies while active (flaps take the link
    /// down instead).
    pub fn impairment(self) -> Impairment {
        let clear = Impairment::default();
        match self {
            Self::Loss => Impairment {
                loss: 0.15,
                ..clear
            },
            Self::DelayJitter => Impairment {
                delay_ms: 250,
                jitter_ms: 200,
                ..clear
            },
            Self::Reorder => Impairment {
                delay_ms: 60,
                reorder: 0.3,
                ..clear
            },
            Self::Duplicate => Impairment {
                duplicate: 0.2,
                ..clear
            },
            Self::Mixed => Impairment {
                loss: 0.05,
                delay_ms: 80,
                jitter_ms: 40,
                duplicate: 0.05,
                reorder: 0.1,
            },
            Self::Partition | Self::VenuePartition => Impairment { loss: 1.0, ..clear },
            Self::Flap => clear,
        }
    }
}

/// What happens to one gate's link at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkAction {
    Impair(FaultKind),
    Clear,
    Down,
    Up,
}

#[derive(Debug, Clone, Copy)]
pub struct FaultStep {
    pub at: Duration,
    pub gate: usize,
    pub action: LinkAction,
}

/// A stretch of time during which `kind` afflicts `gate`.
#[derive(Debug, Clone, Copy)]
pub struct FaultWindow {
    pub gate: usize,
    pub kind: FaultKind,
    pub from: Duration,
    pub to: Duration,
}

const ROTATION: [FaultKind; 7] = [
    FaultKind::Loss,
    FaultKind::DelayJitter,
    FaultKind::Reorder,
    FaultKind::Duplicate,
    FaultKind::Mixed,
    FaultKind::Partition,
    FaultKind::Flap,
];

/// The fault schedule over an event of `length`: the first 20 % is a
/// fault-free baseline; from 20 % to 88 % the time is cut into eight slots,
/// in each of which every gate suffers one fault for 80 % of the slot
/// (gates rotate through the kinds out of step, so at any moment the four
/// links suffer different faults) and the eighth slot partitions every gate
/// at once; the rest of the event runs on a healed network.
pub fn fault_schedule(length: Duration) -> (Vec<FaultStep>, Vec<FaultWindow>) {
    let start = length.mul_f64(0.20);
    let slot = length.mul_f64(0.68 / 8.0);
    let active = slot.mul_f64(0.8);
    let mut steps = Vec::new();
    let mut windows = Vec::new();
    for k in 0..8 {
        let from = start + slot * k;
        let to = from + active;
        for gate in 0..GATES {
            let kind = if k == 7 {
                FaultKind::VenuePartition
            } else {
                ROTATION[(k as usize + 2 * gate) % ROTATION.len()]
            };
            windows.push(FaultWindow {
                gate,
                kind,
                from,
                to,
            });
            if kind == FaultKind::Flap {
                // Three cycles of down then up within the window.
                let beat = active / 6;
                for c in 0..3 {
                    steps.push(FaultStep {
                        at: from + beat * (2 * c),
                        gate,
                        action: LinkAction::Down,
                    });
                    steps.push(FaultStep {
                        at: from + beat * (2 * c + 1),
                        gate,
                        action: LinkAction::Up,
                    });
                }
            } else {
                steps.push(FaultStep {
                    at: from,
                    gate,
                    action: LinkAction::Impair(kind),
                });
                steps.push(FaultStep {
                    at: to,
                    gate,
                    action: LinkAction::Clear,
                });
            }
        }
    }
    steps.sort_by_key(|s| s.at);
    (steps, windows)
}

/// The fault afflicting `gate` at `at`, if any.
pub fn fault_at(windows: &[FaultWindow], gate: usize, at: Duration) -> Option<FaultKind> {
    windows
        .iter()
        .find(|w| w.gate == gate && w.from <= at && at < w.to)
        .map(|w| w.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_the_asked_number_of_scans_in_time_order() {
        let script = scan_script(1000, Duration::from_secs(60), 7);
        assert_eq!(script.len(), 1000);
        assert!(script.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(script.iter().all(|s| s.at < Duration::from_secs(60)));
        let entries = script.iter().filter(|s| s.kind == ScanKind::Entry).count();
        assert_eq!(entries, tickets_needed(1000));
        assert!(script.iter().any(|s| s.kind == ScanKind::ReEntry));
        assert!(
            script
                .iter()
                .filter(|s| s.kind == ScanKind::Exit)
                .all(|s| s.gate == EXIT_GATE)
        );
    }

    #[test]
    fn faults_as_netem_arguments() {
        let netem = |k: FaultKind| k.impairment().netem_args().join(" ");
        assert_eq!(
            netem(FaultKind::Mixed),
            "netem loss 5.00% delay 80ms 40ms reorder 10.00% duplicate 5.00%"
        );
        assert_eq!(netem(FaultKind::Partition), "netem loss 100.00%");
        assert_eq!(netem(FaultKind::Reorder), "netem delay 60ms reorder 30.00%");
        assert!(FaultKind::Flap.impairment().is_clear());
    }

    #[test]
    fn every_gate_gets_every_fault_kind_and_one_venue_partition() {
        let (steps, windows) = fault_schedule(Duration::from_secs(100));
        for gate in 0..GATES {
            for kind in ROTATION.iter().chain([&FaultKind::VenuePartition]) {
                assert!(
                    windows.iter().any(|w| w.gate == gate && w.kind == *kind),
                    "gate {gate} {kind:?}"
                );
            }
        }
        assert!(fault_at(&windows, 0, Duration::from_secs(10)).is_none());
        assert!(fault_at(&windows, 0, Duration::from_secs(95)).is_none());
        // Every link ends clear and up.
        for gate in 0..GATES {
            let last = steps
                .iter()
                .rev()
                .find(|s| s.gate == gate)
                .map(|s| s.action);
            assert!(matches!(last, Some(LinkAction::Clear | LinkAction::Up)));
        }
    }
}
