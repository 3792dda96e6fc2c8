//! # slotcast-center — the reservation service
//!
//! The center owns everything a booking goes through outside the media path: the use
//! cases ([`ops`]: book, confirm, change, cancel, extend, go live, expire, remind,
//! complete, grant play — the one layer every entrance calls), the REST API (`/api/v1`,
//! [`api`]), accounts and sessions ([`auth`], [`secrets`]), the durable [`scheduler`]
//! (expiry, reminders, extension offers, completion), e-mail ([`mail`]: rendering and the
//! outbox sender), server [`time`] (SNTP), connection [`profile`]s, billing, [`metrics`],
//! the HTTP listener ([`net`]: peers that stop reading are dropped) and its side of the
//! center–stream [`port`].
//!
//! It decides nothing itself: every rule is asked of `slotcast-domain`, every fact of
//! `slotcast-store`, and every decision uses the one [`Clock`](slotcast_domain::Clock) in
//! [`state::Center`]. It must not touch media (that is the stream node's) nor read
//! configuration files (`slotcastd` builds [`state::Settings`]).

pub mod api;
pub mod auth;
pub mod cluster;
pub mod error;
pub mod hints;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod port;
pub mod profile;
pub mod scheduler;
pub mod secrets;
pub mod state;
pub mod time;

pub use api::router;
pub use port::{FillerPort, LiveView, NoStreamNode, RecordingInfo, StreamStats};
pub use scheduler::{HealthReport, Scheduler, SchedulerHealth, TickError};
pub use state::{AppState, Center, ReadinessCheck, Settings, Throttle};
