//! The command line: every flag and subcommand, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0    success (for `plan --detailed-exitcode`: no changes)
  1    error: invalid topology, unreachable host, failed step
  2    `plan --detailed-exitcode` only: changes are present
  3    partial apply: some hosts changed, the state records which
  64   usage error: unknown flag, missing argument
  130  interrupted (Ctrl-C)";

/// Provision a scaled-up web infrastructure (HAProxy + keepalived, Nginx, your app, MariaDB,
/// nftables) onto real Linux hosts over SSH, from one declarative YAML topology.
#[derive(Debug, Parser)]
#[command(name = "infra", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The topology file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "infra.yaml",
        value_name = "PATH"
    )]
    pub file: PathBuf,
    /// Never colour the output (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the topology: every error at once, each with file:line:col and a hint.
    Validate,
    /// Write (or print) exactly the files `apply` would put on each host, offline.
    Render(RenderArgs),
    /// Draw the topology: tiers, hosts, VIP, traffic, replication and firewall openings.
    Graph(GraphArgs),
    /// Print the JSON Schema of the topology file, for editors.
    Schema,
    /// Connect to every host, gather facts, and show what apply would change. Changes nothing.
    Plan(PlanArgs),
    /// Per host: whether each managed service is active and each health check passes.
    Status(StatusArgs),
    /// Converge the hosts to the topology (or to a saved plan), after showing the plan.
    Apply(ApplyArgs),
    /// Remove what infra created on the hosts (per its state), after showing the plan.
    Destroy(DestroyArgs),
    /// Remove a lock left behind by a run that is gone.
    ForceUnlock(ForceUnlockArgs),
    /// Real Debian hosts for the topology on this machine, as Docker containers.
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create (or keep) one container per host, wait until each answers over SSH.
    Up(LabUpArgs),
    /// Each host, its address, whether it runs and whether SSH answers.
    Status,
    /// Remove exactly the containers, network and files `lab up` created.
    Down,
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// Replace existing hosts with fresh ones.
    #[arg(long)]
    pub recreate: bool,
    /// Debian mirror for building the base image with debootstrap.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://deb.debian.org/debian"
    )]
    pub mirror: String,
    /// Seconds to wait for each host to answer over SSH.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub ssh_timeout: u64,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Write the files under DIR/<host>/<path> instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Show secrets instead of `(sensitive value)`.
    #[arg(long)]
    pub show_sensitive: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The diagram language.
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
    pub format: GraphFormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormatArg {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// How to reach hosts: flags shared by every command that connects.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Hosts connected to at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub parallelism: usize,
    /// Only these hosts (repeatable).
    #[arg(long = "target", value_name = "HOST")]
    pub targets: Vec<String>,
    /// Leave these hosts out (repeatable).
    #[arg(long = "exclude", value_name = "HOST")]
    pub excludes: Vec<String>,
    /// Trust a host key seen for the first time and record it (a changed key is still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Seconds to wait for a connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds to wait for each remote command.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub command_timeout: u64,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Save the plan to FILE (for `apply FILE`); it holds no secret.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (format documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show what `infra destroy` would remove (from the state) instead.
    #[arg(long)]
    pub destroy: bool,
    /// With `--destroy`: as `infra destroy --delete-data` would.
    #[arg(long, requires = "destroy")]
    pub delete_data: bool,
}

/// Flags shared by apply and destroy.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// One JSON event per line on stdout, for CI.
    #[arg(long)]
    pub json: bool,
    /// Failed hosts a tier tolerates before the run stops: a count or a percentage (`25%`).
    #[arg(long, value_name = "N|N%", default_value = "0", value_parser = parse_max_fail)]
    pub max_fail: MaxFailArg,
    /// Wait this long for the state lock (`30s`, `5m`); by default fail at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy)]
pub enum MaxFailArg {
    Count(usize),
    Percent(u8),
}

fn parse_max_fail(text: &str) -> Result<MaxFailArg, String> {
    if let Some(percent) = text.strip_suffix('%') {
        let value: u8 = percent
            .parse()
            .map_err(|_| format!("`{text}` is not a percentage"))?;
        if value > 100 {
            return Err(format!("`{text}` is more than 100%"));
        }
        Ok(MaxFailArg::Percent(value))
    } else {
        text.parse()
            .map(MaxFailArg::Count)
            .map_err(|_| format!("`{text}` is not a count or a percentage"))
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `30s` or `5m`"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("`{text}` is not a duration like `30s` or `5m`")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan --out FILE`: apply exactly it (refused if stale).
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub change: ChangeArgs,
    /// Also drop the databases and accounts infra created (data is kept by default).
    #[arg(long)]
    pub delete_data: bool,
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    /// The lock ID (shown by the run that found the state locked).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
}
