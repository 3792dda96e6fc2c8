//! `slotcast`: parses the command line, runs the command, prints what went wrong in one
//! line and exits with its code.

use clap::Parser;

#[allow(clippy::print_stderr)]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = slotcast::cli::Cli::parse();
    if let Err(e) = slotcast::run::run(cli).await {
        eprintln!("slotcast: {e}");
        std::process::exit(e.exit_code());
    }
}
