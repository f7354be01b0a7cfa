//! The command line: every flag and subcommand, and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Provision a scaled-up web infrastructure (HAProxy + keepalived, Nginx, your app, MariaDB,
/// nftables) onto real Linux hosts over SSH, from one declarative YAML topology.
#[derive(Debug, Parser)]
#[command(
    name = "infra",
    version,
    after_help = crate::exit::help_text(),
    after_long_help = crate::exit::help_text()
)]
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
        value_name = "PATH",
        env = "INFRA_FILE"
    )]
    pub file: PathBuf,
    /// When to colour the output: `auto` (on a terminal, unless NO_COLOR is set or TERM is
    /// `dumb`), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", env = "INFRA_COLOR")]
    pub color: ColorChoice,
    /// Never colour the output (the same as `--color never`).
    #[arg(long, global = true, env = "INFRA_NO_COLOR", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_color: bool,
    /// Show each script sent to a host, on stderr (file contents and SQL, where secrets
    /// travel, are left out).
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set or TERM is `dumb`.
    Auto,
    /// Always (CI logs that show colour).
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the topology: every error at once, each with file:line:col and a hint.
    Validate(ValidateArgs),
    /// Write (or print) exactly the files `apply` would put on each host, offline.
    Render(RenderArgs),
    /// Draw the topology: tiers, hosts, VIP, traffic, replication and firewall openings.
    Graph(GraphArgs),
    /// Print the JSON Schema of the topology file, for editors.
    Schema,
    /// Connect to every host, gather facts, and show what apply would change. Changes nothing.
    Plan(PlanArgs),
    /// Print a plan saved with `infra plan --out`: as text, JSON, or Markdown for a review.
    Show(ShowArgs),
    /// Per host: whether each managed service is active and each health check passes.
    Status(StatusArgs),
    /// Converge the hosts to the topology (or run a saved plan), after showing the plan.
    Apply(ApplyArgs),
    /// Remove what infra created on the hosts (per their records), after showing the plan.
    Destroy(DestroyArgs),
    /// Remove the hosts' lock left behind by a run that is gone.
    ForceUnlock(ForceUnlockArgs),
    /// What infra's records on the hosts say it created.
    #[command(subcommand)]
    State(StateCommand),
    /// Real Debian hosts for the topology on this machine, as Docker containers.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Print shell completions (`infra completions bash > /etc/bash_completion.d/infra`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff; docs/infra.1 is this output).
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Each host, whether it has a record, its serial and how many resources it lists.
    List(StateArgs),
    /// One host's record.
    Show(StateShowArgs),
    /// Forget one resource in a host's record (you take it over by hand; nothing is removed).
    Rm(StateRmArgs),
}

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    /// The host.
    pub host: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct StateRmArgs {
    /// The host.
    pub host: String,
    /// The resource, as the plan names it: `package["haproxy"]`, `file["/etc/x"]`...
    pub resource: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Wait this long for the host's lock (`30s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, env = "INFRA_LOCK_TIMEOUT")]
    pub lock_timeout: Duration,
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
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
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
    /// Hosts worked on at once (1-1024). The default is chosen in docs/performance.md.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1024), env = "INFRA_PARALLELISM")]
    pub parallelism: u16,
    /// Only these hosts (repeatable).
    #[arg(long = "target", value_name = "HOST")]
    pub targets: Vec<String>,
    /// Leave these hosts out (repeatable).
    #[arg(long = "exclude", value_name = "HOST")]
    pub excludes: Vec<String>,
    /// Trust a host key seen for the first time and record it (a changed key is still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An OpenSSH configuration file to use instead of `~/.ssh/config`.
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Seconds to wait for a connection (1-3600).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), env = "INFRA_CONNECT_TIMEOUT")]
    pub connect_timeout: u64,
    /// Seconds to wait for each remote command (1-86400).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=86_400))]
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
    /// Plan what `infra destroy` would remove (from the hosts' records) instead.
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
    /// Failed hosts a wave tolerates before the run stops: a count or a percentage (`25%`).
    #[arg(long, value_name = "N|N%", default_value = "0", value_parser = parse_max_fail, env = "INFRA_MAX_FAIL")]
    pub max_fail: MaxFailArg,
    /// Wait this long for the hosts' locks (`30s`, `5m`, `1h`); by default fail at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, env = "INFRA_LOCK_TIMEOUT")]
    pub lock_timeout: Duration,
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

/// The longest `--lock-timeout`: a day (longer waits belong to a scheduler, not a lock).
const LONGEST_WAIT: u64 = 86_400;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like `30s`, `5m` or `1h`");
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    let seconds = value
        .checked_mul(factor)
        .filter(|s| *s <= LONGEST_WAIT)
        .ok_or_else(|| format!("`{text}` is longer than a day (at most `24h`)"))?;
    Ok(Duration::from_secs(seconds))
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan --out FILE`: apply exactly it (refused if stale).
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
    /// How long apply waits for the edge to answer before it reports failure.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, env = "INFRA_EDGE_TIMEOUT")]
    pub edge_timeout: Duration,
}

/// The edge check: the site and the app's health path through the VIP, from this machine.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// Do not check the site through the VIP (for runners that cannot reach it).
    #[arg(long, env = "INFRA_NO_EDGE_CHECK", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_edge_check: bool,
    /// Reach the edge at this address instead of the VIP (`https://203.0.113.7:443`); the
    /// site is still asked for by its name and its certificate checked.
    #[arg(long, value_name = "URL", env = "INFRA_EDGE_URL")]
    pub edge_url: Option<String>,
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
    /// The lock ID (shown by the run that found the hosts locked).
    pub id: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// One JSON document on stdout: `valid`, and the diagnostics with file, line and column.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The saved plan.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: PathBuf,
    /// Print the plan's JSON view (the same as `infra plan --json`).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print a compact Markdown summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_and_never_overflow() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("18446744073709551615h").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
