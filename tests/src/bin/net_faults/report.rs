//! Figures of a run: latency distributions and their table.

use std::time::Duration;

/// p50, p90, p99 and max of a set of latencies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Distribution {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Distribution {
    pub fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        // Nearest rank.
        let rank = |p: f64| {
            let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[i - 1]
        };
        Self {
            n: sorted.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        }
    }

    pub fn row(&self, label: &str) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        format!(
            "| {label} | {} | {} | {} | {} | {} |",
            self.n,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

pub const TABLE_HEAD: &str = "| scans written while | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let d = Distribution::of(&samples);
        assert_eq!(d.n, 100);
        assert_eq!(d.p50, Duration::from_millis(50));
        assert_eq!(d.p90, Duration::from_millis(90));
        assert_eq!(d.p99, Duration::from_millis(99));
        assert_eq!(d.max, Duration::from_millis(100));
        assert_eq!(Distribution::of(&[]).n, 0);
    }
}
