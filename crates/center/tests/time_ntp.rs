//! The time service against a real SNTP exchange over loopback UDP
//! ([`slotcast_testkit::ntp::NtpResponder`]): offset measurement with positive and
//! negative skew, the system-clock fallback, and failover between servers.

use slotcast_center::time::{TimeError, TimeService, TimeSource};
use slotcast_domain::Clock;
use slotcast_domain::jiff::{SignedDuration, Timestamp};
use slotcast_testkit::ntp::{NtpResponder, unused_udp_addr};
use std::time::{Duration, Instant};

/// Loopback round trips are sub-millisecond; this leaves room for a loaded machine.
const TOLERANCE_MS: f64 = 50.0;

fn assert_close(what: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= TOLERANCE_MS,
        "{what}: {actual} ms, expected {expected} ± {TOLERANCE_MS} ms"
    );
}

/// How far `clock` is ahead of the system clock, in ms.
fn lead_over_system_ms(clock: &dyn Clock) -> f64 {
    let system = Timestamp::now();
    let corrected = clock.now();
    corrected.duration_since(system).as_secs_f64() * 1000.0
}

async fn check_skew(skew_ms: i64) {
    let ntp = NtpResponder::start(SignedDuration::from_millis(skew_ms)).await;
    let svc = TimeService::new(vec![ntp.addr.to_string()]);

    svc.sync_once().await.expect("sync with the responder");

    let st = svc.status();
    assert_eq!(st.source, TimeSource::Ntp);
    assert_eq!(st.ntp_server, Some(ntp.addr.to_string()));
    assert_close("offset_ms", st.offset_ms, skew_ms as f64);
    assert!(st.estimated_error_ms >= 0.0 && st.estimated_error_ms < TOLERANCE_MS);
    let last_sync = st.last_sync.expect("last_sync set");
    assert_close(
        "last_sync vs server clock",
        last_sync.duration_since(Timestamp::now()).as_secs_f64() * 1000.0,
        skew_ms as f64,
    );
    assert_close(
        "Clock::now lead",
        lead_over_system_ms(&*svc),
        skew_ms as f64,
    );
    assert_eq!(ntp.answered(), 1);
}

#[tokio::test]
async fn positive_skew_is_measured_and_applied() {
    check_skew(1500).await;
}

#[tokio::test]
async fn negative_skew_is_measured_and_applied() {
    check_skew(-2500).await;
}

#[tokio::test]
async fn unreachable_server_fails_fast_and_stays_on_the_system_clock() {
    let dead = unused_udp_addr();
    let svc = TimeService::new(vec![dead.to_string()]);

    let started = Instant::now();
    let result = svc.sync_once().await;
    let took = started.elapsed();

    match result {
        Err(TimeError::AllFailed(failures)) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].server, dead.to_string());
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let st = svc.status();
    assert_eq!(st.source, TimeSource::System);
    assert_eq!(st.offset_ms, 0.0);
    assert_eq!(st.ntp_server, None);
    assert_close("Clock::now lead", lead_over_system_ms(&*svc), 0.0);
}

#[tokio::test]
async fn no_servers_means_the_system_clock() {
    let svc = TimeService::new(Vec::new());
    assert!(matches!(svc.sync_once().await, Err(TimeError::NoServers)));
    // The background task has nothing to do and ends at once.
    std::sync::Arc::clone(&svc)
        .spawn(Duration::from_secs(1))
        .await
        .expect("task ends cleanly");
    let st = svc.status();
    assert_eq!(st.source, TimeSource::System);
    assert_eq!(st.offset_ms, 0.0);
    assert_close("Clock::now lead", lead_over_system_ms(&*svc), 0.0);
}

#[tokio::test]
async fn fails_over_to_the_next_server() {
    let dead = unused_udp_addr();
    let ntp = NtpResponder::start(SignedDuration::from_millis(800)).await;
    let svc = TimeService::new(vec![dead.to_string(), ntp.addr.to_string()]);

    let started = Instant::now();
    svc.sync_once().await.expect("second server answers");
    assert!(started.elapsed() < Duration::from_secs(3));

    let st = svc.status();
    assert_eq!(st.source, TimeSource::Ntp);
    assert_eq!(st.ntp_server, Some(ntp.addr.to_string()));
    assert_close("offset_ms", st.offset_ms, 800.0);
    assert_eq!(ntp.answered(), 1);
}

#[tokio::test]
async fn the_background_task_syncs_at_once() {
    let ntp = NtpResponder::start(SignedDuration::from_millis(1200)).await;
    let svc = TimeService::new(vec![ntp.addr.to_string()]);
    let task = std::sync::Arc::clone(&svc).spawn(Duration::from_secs(3600));

    let deadline = Instant::now() + Duration::from_secs(3);
    while svc.status().source != TimeSource::Ntp {
        assert!(Instant::now() < deadline, "no sync within 3 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_close("offset_ms", svc.status().offset_ms, 1200.0);
}

#[tokio::test]
async fn a_stopped_responder_stops_answering() {
    let ntp = NtpResponder::start(SignedDuration::ZERO).await;
    let addr = ntp.addr.to_string();
    drop(ntp);
    // Let the aborted task release the socket.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let svc = TimeService::new(vec![addr]);
    assert!(svc.sync_once().await.is_err());
    assert_eq!(svc.status().source, TimeSource::System);
}
