//! # slotcastd — the slotcast server, as a library
//!
//! The binary (`main.rs`) stays thin: it parses the command line, loads the
//! [`config::Config`] once and calls [`server`]. The modules live here so that
//! integration tests can start the whole server in-process (center and stream node wired
//! together, as role `all` runs them) with a clock of their choosing, through
//! [`server::start`]. Rules live in `slotcast-domain`, facts in the stores; nothing here
//! holds global configuration.

pub mod config;
pub mod link;
pub mod node;
pub mod remote_filler;
pub mod server;
pub mod storage;
