//! `cargo xtask`: developer chores of `infra` (see `cargo xtask --help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xtask::{bench, fleet, workspace_root};

/// Developer chores of infra.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a generated fleet example: a topology of the scale-up shape with any number of
    /// hosts, its app and its site (`cargo xtask fleet --hosts 50 --out examples/fleet-50`).
    Fleet {
        /// How many hosts (1 to 500).
        #[arg(long)]
        hosts: usize,
        /// The topology's name (default: `fleet-<hosts>`).
        #[arg(long)]
        name: Option<String>,
        /// The folder to write into (made if missing; files of the same name are replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// Measures infra on one lab of real hosts: for each fleet size, the SSH floor, no-op
    /// `infra plan` and `infra apply` (medians), peak memory and round trips per host; with
    /// `--cold`, a cold apply against the same packages by hand. Needs Docker (the lab).
    Bench(bench::Options),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fleet { hosts, name, out } => {
            let shape = fleet::Shape::for_hosts(hosts)?;
            let name = name.unwrap_or_else(|| format!("fleet-{hosts}"));
            let command = format!("cargo xtask fleet --hosts {hosts} --out {}", out.display());
            let files = fleet::files(
                &name,
                shape,
                &command,
                &workspace_root().join("examples/scale-up"),
            )?;
            fleet::write(&out, &files)?;
            eprintln!(
                "wrote `{}`: {} load balancers, {} web, {} app, {} database hosts",
                out.display(),
                shape.load_balancers,
                shape.web,
                shape.app,
                shape.database
            );
            Ok(())
        }
        Command::Bench(options) => bench::run(&options),
    }
}
