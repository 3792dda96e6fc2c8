//! # slotcast — the broadcaster tool
//!
//! The terminal side of slotcast (`slotcast` binary): sign in to a slotcast server, look at
//! channels and free slots, book, confirm with the e-mailed reservation key — which stores
//! the connection profile, encrypted for this device's own key, in the tool's data
//! directory, nothing to copy by hand — list, show, change and cancel reservations, and
//! measure this machine's clock against the server's, NTP-style.
//!
//! It talks to the server only through the REST API (`/api/v1`, [`api`]); it keeps its
//! session, its device key and the profiles in one data directory ([`local`], files mode
//! 0600); every command says what went wrong in one line and exits with a code that tells
//! the kind of failure ([`Error::exit_code`]). It decides nothing the server decides.

pub mod agent;
pub mod api;
pub mod cli;
pub mod clock;
pub mod dashboard;
pub mod local;
pub mod run;

/// What can go wrong, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session in the data directory.
    #[error("not signed in: run `slotcast login --server URL --email ADDRESS`")]
    NotSignedIn,
    /// The server no longer knows the session.
    #[error("the session has ended: run `slotcast login` again")]
    SessionEnded,
    /// The server could not be reached.
    #[error("cannot reach {server}: {reason}")]
    Unreachable {
        /// Its address.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server refused the request, with its message.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// The API's message (and field problems).
        message: String,
    },
    /// The input on the command line is not usable.
    #[error("{0}")]
    Input(String),
    /// A file of the data directory could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// Which.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code: 2 bad input, 3 not signed in, 4 not found, 5 refused,
    /// 6 unreachable, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::NotSignedIn | Error::SessionEnded => 3,
            Error::Refused { status: 404, .. } => 4,
            Error::Refused { .. } => 5,
            Error::Unreachable { .. } => 6,
            Error::Local { .. } => 1,
        }
    }
}

/// A result of the tool.
pub type Result<T, E = Error> = std::result::Result<T, E>;
