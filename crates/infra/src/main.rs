//! `infra`: the command-line entry point. Parses arguments, resolves the settings, runs one
//! command, maps the outcome to an exit code. All decisions live in the library crates.

mod certificate;
mod cli;
mod commands;
mod edge;
mod exit;
mod interrupts;
mod ops;
mod output;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let exit = match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Success
                }
                _ => Exit::Usage,
            };
            // Help on a closed pipe (`infra --help | head`) is not an error.
            let _ = error.print();
            return ExitCode::from(exit.code());
        }
    };
    let settings = settings::Settings::resolve(&cli, settings::Environment::capture());
    let exit = match commands::run(&cli, &settings) {
        Ok(exit) => exit,
        Err(error) => {
            output::print_error(&error, settings.style);
            output::json_diagnostics(settings.output, vec![output::error_diagnostic(&error)]);
            Exit::Error
        }
    };
    ExitCode::from(exit.code())
}
