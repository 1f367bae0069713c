//! The `agentos` binary: parses arguments and hands off to the library crates.
//!
//! No business logic lives here; every subcommand resolves its flags into a library call.

mod cli;
mod cmd;
mod global;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    global::init_tracing(&cli.global);
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed stdout (e.g. `| head`) is not a failure.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("agentos: {err:#}");
            ExitCode::from(2)
        }
    }
}
