//! A premium member's full card number is nowhere: not in the answer, not in the
//! database files, not in the logs (captured at TRACE level while registering and
//! signing in).

mod common;

use serde_json::json;
use slotcast_domain::Policy;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_full_card_number_is_nowhere_in_database_or_logs() {
    let logs = Capture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let app = common::open(common::Backend::Sqlite, "2026-06-01T08:00:00Z", Policy::default()).await.unwrap();
            let r = app
                .post("/api/v1/members", None, json!({"email": "pay@example.org", "password": "a long enough password", "display_name": "Pay", "tier": "premium",
                    "payment": {"card_number": "5555 5555 5555 4444", "exp_month": 4, "exp_year": 2029, "holder": "Pay Er"}}))
                .await;
            assert_eq!(r.status, axum::http::StatusCode::CREATED, "{}", r.text);
            app.post("/api/v1/sessions", None, json!({"email": "pay@example.org", "password": "a long enough password"})).await;
            let bad = app
                .post("/api/v1/members", None, json!({"email": "pay2@example.org", "password": "a long enough password", "display_name": "Pay", "tier": "premium",
                    "payment": {"card_number": "5555555555554445", "exp_month": 4, "exp_year": 2029, "holder": "Pay Er"}}))
                .await;
            assert!(!bad.text.contains("5555555555554445"), "the refusal does not echo the number");
            app.store.ping().await.unwrap();
            let mut all = String::new();
            for entry in std::fs::read_dir(app.dir()).unwrap() {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()));
            }
            for needle in ["5555555555554444", "5555 5555 5555 4444", "5555555555554445"] {
                assert!(!all.contains(needle), "card number in the database files");
            }
            assert!(all.contains("4444") && all.contains("mastercard"), "brand and last four digits are kept");
        })
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("member registered"),
        "logs were captured: {logs}"
    );
    for needle in [
        "5555555555554444",
        "5555 5555 5555 4444",
        "5555555555554445",
    ] {
        assert!(!logs.contains(needle), "card number in the logs");
    }
}
