//! `infra`: the command-line entry point. Parses arguments, runs one command, maps the
//! outcome to an exit code. All decisions live in the library crates.

mod certificate;
mod cli;
mod commands;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for usage errors. Never 2: `plan --detailed-exitcode` uses 2 for "changes present".
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let style = output::Style::detect(cli.global.no_color);
    match commands::run(&cli, style) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(error) => {
            output::print_error(&error, style);
            ExitCode::from(1)
        }
    }
}
