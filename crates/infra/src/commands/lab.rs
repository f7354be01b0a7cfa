//! `infra lab up | status | down`.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use infra_exec::lab::{self, HostOutcome, ImageSource, Recreate, Reporter, UpOptions};

use crate::cli::LabCommand;
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::output::Hinted;
use crate::settings::Settings;

/// Progress lines on stderr, prefixed with the elapsed time when not on a terminal.
struct LineReporter {
    started: Instant,
    timestamps: bool,
}

impl Reporter for LineReporter {
    fn step(&self, host: Option<&str>, message: &str) {
        let prefix = if self.timestamps {
            format!("[{:>6.1}s] ", self.started.elapsed().as_secs_f64())
        } else {
            String::new()
        };
        match host {
            Some(host) => crate::errln!("{prefix}{host}: {message}"),
            None => crate::errln!("{prefix}{message}"),
        }
    }
}

fn lab_error(error: lab::LabError) -> anyhow::Error {
    match error.hint() {
        Some(hint) => anyhow::Error::new(Hinted::new(error.to_string(), hint)),
        None => anyhow::Error::new(error),
    }
}

/// Runs a lab subcommand.
pub fn run(settings: &Settings, command: &LabCommand) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let topology = loaded.topology;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reporter = LineReporter {
        started: Instant::now(),
        timestamps: !std::io::stderr().is_terminal(),
    };
    match command {
        LabCommand::Up(args) => {
            let options = UpOptions {
                recreate: if args.recreate {
                    Recreate::All
                } else {
                    Recreate::Keep
                },
                mirror: args.mirror.clone(),
                ssh_timeout: Duration::from_secs(args.ssh_timeout),
            };
            let report = runtime
                .block_on(lab::up(&topology, &options, &reporter))
                .map_err(lab_error)?;
            let images: Vec<String> = report
                .images
                .iter()
                .map(|(release, source)| {
                    let how = match source {
                        ImageSource::Cached => "cached",
                        ImageSource::BuiltFromDebianImage => "built from the Debian image",
                        ImageSource::BuiltWithDebootstrap => "built with debootstrap",
                    };
                    format!("{} {how}", lab::image(*release))
                })
                .collect();
            crate::outln!(
                "lab `{}` is up on network `{}` ({}): {} in {:.1} s, hosts ready in {:.1} s",
                report.layout.topology,
                report.layout.network,
                report.layout.subnet,
                images.join(", "),
                report.image_time.as_secs_f64(),
                report.hosts_time.as_secs_f64()
            );
            for (host, outcome) in &report.hosts {
                let outcome = match outcome {
                    HostOutcome::Kept => "kept",
                    HostOutcome::Started => "started",
                    HostOutcome::Created => "created",
                };
                crate::outln!(
                    "  {:<12} {:<16} {:<8} {:<9} {}",
                    host.name,
                    host.address,
                    outcome,
                    host.release.codename(),
                    host.container
                );
            }
            crate::outln!(
                "ssh: ssh -F {} <address>",
                report.files.ssh_config().display()
            );
            Ok(Exit::Success)
        }
        LabCommand::Status => {
            let statuses = runtime
                .block_on(lab::status(&topology))
                .map_err(lab_error)?;
            crate::outln!("{:<12} {:<16} {:<10} ssh", "host", "address", "container");
            let mut all_good = true;
            for status in &statuses {
                let state = status.container_state.as_deref().unwrap_or("absent");
                all_good &= status.ssh;
                crate::outln!(
                    "{:<12} {:<16} {:<10} {}",
                    status.host.name,
                    status.host.address,
                    state,
                    if status.ssh { "answers" } else { "no answer" }
                );
            }
            Ok(if all_good { Exit::Success } else { Exit::Error })
        }
        LabCommand::Down => {
            let report = runtime
                .block_on(lab::down(&topology, &reporter))
                .map_err(lab_error)?;
            crate::outln!(
                "lab `{}` is down: removed {} containers and {} networks",
                topology.name,
                report.containers.len(),
                report.networks.len()
            );
            Ok(Exit::Success)
        }
    }
}
