//! Helpers the benchmark binaries share: running lanes of work concurrently under one
//! timer, and medians of repeated rounds. Benchmarks only (not part of `cargo test`'s
//! subject matter); every figure a binary prints is a ratio against a baseline measured
//! in the same invocation.

use std::time::{Duration, Instant};

/// Result with a message for the terminal.
pub type Res<T> = Result<T, String>;

/// Runs each lane of `work` as its own task — items of a lane one after the other,
/// lanes in parallel — through `step`, and returns the wall time of the whole run. Fails
/// when a step fails or fewer than `expected` items were done.
pub async fn run_lanes<T, F, Fut>(
    work: Vec<Vec<T>>,
    expected: u32,
    label: &str,
    step: F,
) -> Res<Duration>
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
                let mut done = 0u32;
                for item in lane {
                    step(item).await?;
                    done += 1;
                }
                Ok::<u32, String>(done)
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.map_err(|e| format!("{label} task failed: {e}"))??;
    }
    let elapsed = started.elapsed();
    if done != expected {
        return Err(format!(
            "{label} run committed {done} of {expected} bookings"
        ));
    }
    Ok(elapsed)
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
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
