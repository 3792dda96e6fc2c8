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

/// `GET url`, expecting 200; the body.
pub async fn get(client: &reqwest::Client, url: &str) -> Res<String> {
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(format!("GET {url}: {}", res.status()));
    }
    res.text().await.map_err(|e| format!("GET {url}: {e}"))
}

/// (p50, p99, max) in milliseconds of `GET url` at `rate` requests per second for
/// `seconds`, open loop: each request is sent at its scheduled instant whatever the
/// earlier ones are doing, and its latency counts from that instant (a late send is the
/// server's delay too). The client's connection pool is warmed first.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    rate: u64,
    seconds: u64,
) -> Res<(f64, f64, f64)> {
    for _ in 0..8 {
        get(client, url).await?;
    }
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(at).await;
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            get(&client, &url).await?;
            Ok::<f64, String>(at.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut ms = Vec::with_capacity(tasks.len());
    for t in tasks {
        ms.push(t.await.map_err(|e| e.to_string())??);
    }
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    Ok((pick(0.5), pick(0.99), ms[ms.len() - 1]))
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
