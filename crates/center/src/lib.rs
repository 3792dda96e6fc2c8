//! # slotcast-center — the reservation service
//!
//! The center owns everything a booking goes through outside the media path: the REST
//! API (`/api/v1`, [`api`]), accounts and sessions ([`auth`], [`secrets`]), the
//! reservation lifecycle as HTTP operations, the durable [`scheduler`] (expiry,
//! reminders, extension offers, completion), e-mail ([`mail`]: rendering and the outbox
//! sender), server [`time`] (SNTP), connection [`profile`]s, billing, [`metrics`], and the
//! HTTP listener ([`net`]: peers that stop reading are dropped).
//!
//! It decides nothing itself: every rule is asked of `slotcast-domain`, every fact of
//! `slotcast-store`, and every decision uses the one [`Clock`](slotcast_domain::Clock) in
//! [`state::Center`]. It must not touch media (that is the stream node's) nor read
//! configuration files (`slotcastd` builds [`state::Settings`]).

pub mod api;
pub mod auth;
pub mod error;
pub mod ingest;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod profile;
pub mod scheduler;
pub mod secrets;
pub mod state;
pub mod time;

pub use api::router;
pub use scheduler::{
    HealthReport, LiveView, NoStreamNode, RecordingInfo, Scheduler, SchedulerHealth, StreamStats,
    TickError,
};
pub use state::{AppState, Center, ReadinessCheck, Settings, Throttle};
