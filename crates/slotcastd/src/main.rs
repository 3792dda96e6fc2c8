//! # slotcastd — the slotcast server
//!
//! This binary owns configuration loading (defaults → `--config` file →
//! `SLOTCAST__SECTION__KEY` environment), logging, choosing the storage backend by URL
//! and the wiring of the roles. It stays thin: rules live in `slotcast-domain`, facts in
//! the stores. It must not hold global configuration: the loaded [`config::Config`] is
//! passed down.

use clap::{Parser, Subcommand};
use slotcastd::{config, server};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "slotcastd",
    version,
    about = "slotcast: reserved live streaming server"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables SLOTCAST__SECTION__KEY override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: role `all` (center and stream node in one process, the default),
    /// `center` (a center replica on PostgreSQL) or `stream` (a stream node of a center).
    Serve {
        /// Overrides the configuration's `role`.
        #[arg(long, value_enum)]
        role: Option<config::Role>,
    },
    /// Check the configuration and print it (secrets redacted).
    CheckConfig,
    /// Administration.
    #[command(subcommand)]
    Admin(Admin),
    /// Filler between programs.
    #[command(subcommand)]
    Filler(Filler),
}

#[derive(Subcommand)]
enum Filler {
    /// Make a test-card filler loop and a "be right back" slate with ffmpeg, encoded to
    /// each channel's bitrate, into <data_dir>/filler/<channel>/ and <data_dir>/slate/.
    Generate {
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Register an operator (manages channels, sees billing). Reads the password from
    /// standard input (one line).
    CreateOperator {
        /// The operator's e-mail address (login).
        #[arg(long)]
        email: String,
        /// Shown name.
        #[arg(long, default_value = "Operator")]
        name: String,
    },
    /// Register a stream node (or give it a new credential) and print its credential,
    /// for the node's `node.credential`. Only its hash is stored.
    AddNode {
        /// The node's name (letters, digits, dashes), as in its `node.name`.
        #[arg(long)]
        name: String,
    },
}

#[allow(clippy::print_stderr, clippy::print_stdout)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut cfg = match config::Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("slotcastd: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            println!("configuration OK\n{cfg:#?}\n{:#?}", cfg.policy());
            ExitCode::SUCCESS
        }
        Command::Admin(Admin::CreateOperator { email, name }) => {
            let mut password = String::new();
            if std::io::stdin().read_line(&mut password).is_err() {
                eprintln!("slotcastd: cannot read the password from standard input");
                return ExitCode::from(2);
            }
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            match rt.block_on(server::create_operator(
                &cfg,
                &email,
                &name,
                password.trim_end_matches(['\r', '\n']),
            )) {
                Ok(id) => {
                    println!("operator {email} created (member {id})");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("slotcastd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Filler(Filler::Generate { channel }) => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            match rt.block_on(server::generate_filler(&cfg, channel.as_deref())) {
                Ok(made) => {
                    for line in made {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("slotcastd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(Admin::AddNode { name }) => {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            match rt.block_on(server::add_node(&cfg, &name)) {
                Ok(credential) => {
                    println!("node {name} registered; its credential (shown once):\n{credential}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("slotcastd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve { role } => {
            if let Some(role) = role {
                cfg.role = role;
            }
            init_logging(&cfg.log.format);
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cfg.runtime.workers(cores))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("slotcastd: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(server::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("slotcastd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SLOTCAST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
