//! Helpers the benchmark binaries share: running lanes of work concurrently under one
//! timer, and medians of repeated rounds. Benchmarks only (not part of `cargo test`'s
//! subject matter); every figure a binary prints is a ratio against a baseline measured
//! in the same invocation.

use std::time::{Duration, Instant};

/// Result with a message for the terminal.
pub type Res<T> = Result<T, String>;

/// What [`run_lanes`] measured.
#[derive(Debug)]
pub struct Lanes {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// How long each item took, every lane's items together, in no particular order.
    pub latencies: Vec<Duration>,
}

/// Runs each lane of `work` as its own task — items of a lane one after the other,
/// lanes in parallel — through `step`, timing the run and each item. Fails when a step
/// fails or fewer than `expected` items were done.
pub async fn run_lanes<T, F, Fut>(
    work: Vec<Vec<T>>,
    expected: u32,
    label: &str,
    step: F,
) -> Res<Lanes>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Res<()>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|lane| {
            let step = step.clone();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(lane.len());
                for item in lane {
                    let t = Instant::now();
                    step(item).await?;
                    took.push(t.elapsed());
                }
                Ok::<_, String>(took)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(|e| format!("{label} task failed: {e}"))??);
    }
    let elapsed = started.elapsed();
    let done = latencies.len();
    if done != expected as usize {
        return Err(format!(
            "{label} run committed {done} of {expected} bookings"
        ));
    }
    Ok(Lanes { elapsed, latencies })
}

/// The `q`-quantile (0 ≤ q ≤ 1, nearest rank) of `v` (sorts `v`); zero when `v` is empty.
pub fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    let Some(last) = v.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    v[((last as f64 * q).round() as usize).min(last)]
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::{median, quantile};
    use std::time::Duration;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn quantiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut v, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&mut v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&mut v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&mut [], 0.5), Duration::ZERO);
    }
}
