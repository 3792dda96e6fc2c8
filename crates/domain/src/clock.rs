//! The clock interface. The domain never reads a clock itself; edges hold an
//! `Arc<dyn Clock>` (the system or NTP-corrected clock in production, a manual clock in
//! tests) and pass `clock.now()` into domain functions.

use jiff::Timestamp;

/// A source of the current wall-clock time (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}
