//! The `agentos` binary: parses arguments and hands off to the library crates.
//!
//! No business logic lives here; every subcommand resolves its flags into a library call and
//! prints the result. What lives where:
//!
//! | Module | Holds |
//! |---|---|
//! | `main.rs` | process entry: tracing, dispatch, the error → exit code mapping |
//! | [`cli`] | the clap command tree and the dispatch to `cmd::…::run` |
//! | [`context`] | global flags, the lazily loaded configuration, data dir, license keyring, delivery settings, `[collector]` / `[ingest]` sections (the only file that touches `Config`) |
//! | [`output`] | colours (`NO_COLOR`, tty), warnings and notes, JSON, tables, progress bars, [`output::ExitStatus`] |
//! | [`flags`] | flag groups shared by several subcommands (`--threads`, `--prices`, `--strict` and their `PricedRun` bundle, `--json`, `--database`) |
//! | `cmd/…` | one file per subcommand: parse → call a library crate → print via `output` |
//!
//! Every subcommand has the shape `run(args, &Context) -> anyhow::Result<ExitStatus>`, and no
//! subcommand file imports from another: shared code goes to `context`, `output` or `flags`.

mod cli;
mod cmd;
mod context;
mod flags;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::output::ExitStatus;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init_tracing(&cli.global.log);
    match cli::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            // A closed stdout (e.g. `| head`) is not a failure.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitStatus::Ok.into();
            }
            eprintln!("agentos: {err:#}");
            // A path the user named that is not there is a mistake in this invocation, not a
            // broken installation: exit 1, like other "ran but found a problem" outcomes.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<agentos_ingest::IngestError>())
                .any(|e| matches!(e, agentos_ingest::IngestError::MissingRoot { .. }))
            {
                return ExitStatus::Failure.into();
            }
            ExitStatus::Fatal.into()
        }
    }
}
