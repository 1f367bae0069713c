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

/// True for the panic `println!` raises when stdout is a closed pipe (`agentos … | head`).
fn is_closed_stdout(msg: Option<&str>) -> bool {
    msg.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe"))
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init_tracing(&cli.global.log);
    // A reader that stops early (`| head`) is not a failure, wherever the printing happens:
    // no panic message for it, and exit 0 like the `BrokenPipe` errors below.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_stdout(info.payload_as_str()) {
            default_hook(info);
        }
    }));
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::run(cli))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if is_closed_stdout(msg) {
                return ExitStatus::Ok.into();
            }
            std::panic::resume_unwind(payload)
        }
    };
    match result {
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
