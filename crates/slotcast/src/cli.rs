//! The command line: every command and its options.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The slotcast broadcaster tool: book airtime, confirm, keep the connection settings.
#[derive(Debug, Parser)]
#[command(name = "slotcast", version, about)]
pub struct Cli {
    /// Where the tool keeps its session, device key and connection profiles (default: the
    /// XDG data directory, `~/.local/share/slotcast`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text (read commands).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to a slotcast server (the password is asked for, or read from stdin).
    Login {
        /// The server, e.g. `https://tv.example.org`.
        #[arg(long)]
        server: String,
        /// Your e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Sign out (the session ends on the server too).
    Logout,
    /// The channels: capacity, bitrate, price per slot.
    Channels,
    /// Free and taken slots per channel on a day.
    Availability {
        /// The day, `YYYY-MM-DD` in the service's time zone (default: today).
        #[arg(long)]
        date: Option<String>,
    },
    /// Book airtime: shows the fee and the confirm deadline and asks before booking.
    Reserve {
        /// The channel's name.
        #[arg(long)]
        channel: String,
        /// The start, RFC 3339 (e.g. `2026-12-24T20:00:00+09:00`).
        #[arg(long)]
        start: String,
        /// How many slots.
        #[arg(long, default_value_t = 1)]
        slots: i64,
        /// The program's title.
        #[arg(long)]
        title: String,
        /// `public`, `password` or `secret`.
        #[arg(long, default_value = "public")]
        visibility: String,
        /// The viewer password (password and secret programs).
        #[arg(long)]
        password: Option<String>,
        /// An address to invite (repeat for more).
        #[arg(long = "invitee")]
        invitees: Vec<String>,
        /// The genre.
        #[arg(long)]
        genre: Option<String>,
        /// A one-line outline.
        #[arg(long)]
        outline: Option<String>,
        /// A longer description.
        #[arg(long)]
        detail: Option<String>,
        /// Book without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Confirm a reservation with the key from the e-mail; stores its connection profile,
    /// encrypted for this device.
    Confirm {
        /// The reservation.
        id: i64,
        /// The reservation key (asked for when absent, never echoed).
        #[arg(long)]
        key: Option<String>,
    },
    /// Your reservations.
    List,
    /// One reservation, with whether its profile is stored here.
    Show {
        /// The reservation.
        id: i64,
    },
    /// Change a reservation's program (what is not given stays).
    Change {
        /// The reservation.
        id: i64,
        /// A new title.
        #[arg(long)]
        title: Option<String>,
        /// A new genre.
        #[arg(long)]
        genre: Option<String>,
        /// A new outline.
        #[arg(long)]
        outline: Option<String>,
        /// A new detail.
        #[arg(long)]
        detail: Option<String>,
        /// A new viewer password.
        #[arg(long)]
        password: Option<String>,
    },
    /// Cancel a reservation (a confirmed one stays billed); asks first.
    Cancel {
        /// The reservation.
        id: i64,
        /// Cancel without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Register the connection settings again for this device (the key is asked for).
    Profile {
        /// The reservation.
        id: i64,
        /// The reservation key (asked for when absent, never echoed).
        #[arg(long)]
        key: Option<String>,
    },
    /// Take the extension offered for a running program.
    Extend {
        /// The reservation.
        id: i64,
        /// Slots to add.
        #[arg(long, default_value_t = 1)]
        slots: u32,
    },
    /// Go on air by itself: wait for the connect window (reminding before the start),
    /// push through ffmpeg, fail over between the ingest endpoints, stop at the end.
    Agent {
        /// The reservation (default: the next one whose profile is stored here).
        id: Option<i64>,
        /// What to push: `test` (a test pattern), `file:PATH` (played from the start) or
        /// `device:PATH` (a capture device).
        #[arg(long, default_value = "test")]
        source: String,
        /// An effect: `clock`, `title` or `mono` (repeat for more).
        #[arg(long = "effect")]
        effects: Vec<String>,
        /// Minutes before the start to remind.
        #[arg(long, default_value_t = 10)]
        remind_minutes: u32,
        /// Log lines even on a terminal (no dashboard).
        #[arg(long)]
        no_dashboard: bool,
    },
    /// Prints the shell completions for `shell` (e.g. `slotcast completions bash >
    /// ~/.local/share/bash-completion/completions/slotcast`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// This machine's clock against the server's, measured NTP-style.
    Time {
        /// Round trips to measure (the shortest counts).
        #[arg(long, default_value_t = 8)]
        samples: u32,
        /// Set this machine's clock to the server's (needs the right to).
        #[arg(long)]
        set_clock: bool,
    },
}
