//! `cargo xtask bench`: how `infra` grows with the number of hosts, measured on one lab of
//! real hosts in one run, against the SSH floor (one parallel round trip with fresh
//! connections to every host). It asserts nothing; it reports, and can write its tables and
//! plot into docs/performance.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};

use crate::fleet::{self, Shape};
use crate::report::{self, Cold, Parallelism, Row, Validation};

/// What to measure (`cargo xtask bench`'s flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Fleet sizes (comma-separated); the largest is the lab.
    #[arg(long, value_delimiter = ',', default_value = "1,8,25,50")]
    pub sizes: Vec<usize>,
    /// Runs of each measurement (medians are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also a cold apply of the largest fleet on fresh hosts, against its packages by hand.
    #[arg(long)]
    pub cold: bool,
    /// `--parallelism` values to compare on the largest fleet (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,25,50")]
    pub parallelism: Vec<u16>,
    /// Write the results into docs/performance.md and docs/performance.svg.
    #[arg(long)]
    pub write: bool,
    /// Leave the lab running at the end.
    #[arg(long)]
    pub keep_lab: bool,
}

/// The name of every bench topology (so each size reuses the same lab hosts).
const NAME: &str = "bench";

struct Bench {
    root: PathBuf,
    dir: PathBuf,
    infra: PathBuf,
    secrets: Vec<(String, String)>,
    largest: usize,
}

/// Runs the benchmark.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let Some(&largest) = options.sizes.iter().max() else {
        bail!("no fleet sizes to measure");
    };
    ensure!(options.runs > 0, "at least one run");
    ensure!(
        Path::new("/usr/bin/time").is_file(),
        "/usr/bin/time measures peak memory: install it (Debian: `apt-get install time`)"
    );
    check_sizes(&options.sizes, largest)?;
    eprintln!("== building infra (release)");
    status(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "--quiet", "-p", "infra"])
            .current_dir(&root),
    )?;
    let dir = root.join("target/bench");
    fs_err::create_dir_all(&dir)?;
    let bench = Bench {
        infra: root.join("target/release/infra"),
        secrets: secrets()?,
        largest,
        dir,
        root,
    };
    bench.write_topologies(&options.sizes)?;
    let started = Instant::now();
    let validation = bench.validation(options.runs)?;
    let measured = bench.measure(options, validation);
    if !options.keep_lab {
        eprintln!("== lab down");
        let _ = bench.infra(&["lab", "down", "-f", &bench.topology(largest)]);
    }
    let results = measured?;
    let markdown = report::markdown(&results);
    println!("{markdown}");
    if options.write {
        report::write_docs(&bench.root, &results)?;
        eprintln!("wrote docs/performance.md and docs/performance.svg");
    }
    eprintln!(
        "(the benchmark took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Each smaller fleet's hosts must be hosts of the largest (the lab), at the same addresses.
fn check_sizes(sizes: &[usize], largest: usize) -> anyhow::Result<()> {
    let lab = fleet::hosts(Shape::for_hosts(largest)?);
    for &size in sizes {
        for host in fleet::hosts(Shape::for_hosts(size)?) {
            ensure!(
                lab.contains(&host),
                "a fleet of {size} has `{}`, which the lab of {largest} has not: pick other sizes",
                host.0
            );
        }
    }
    Ok(())
}

/// Fresh random secrets for the bench topologies (never written to disk).
fn secrets() -> anyhow::Result<Vec<(String, String)>> {
    let mut random = [0u8; 52];
    std::io::Read::read_exact(&mut fs_err::File::open("/dev/urandom")?, &mut random)?;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(vec![
        ("INFRA_STATS_PASSWORD".to_owned(), hex(&random[..16])),
        ("INFRA_DB_APP_PASSWORD".to_owned(), hex(&random[16..32])),
        ("INFRA_DB_REPL_PASSWORD".to_owned(), hex(&random[32..48])),
        ("INFRA_VRRP_PASSWORD".to_owned(), hex(&random[48..])),
    ])
}

/// What one `infra` run took.
struct Sample {
    seconds: f64,
    peak_kib: u64,
    stderr: String,
    success: bool,
}

impl Bench {
    fn topology(&self, size: usize) -> String {
        self.dir
            .join(format!("fleet-{size}.yaml"))
            .display()
            .to_string()
    }

    fn ssh_config(&self) -> PathBuf {
        self.dir.join(".infra/lab").join(NAME).join("ssh_config")
    }

    fn write_topologies(&self, sizes: &[usize]) -> anyhow::Result<()> {
        for &size in sizes {
            let mut files = fleet::files(
                NAME,
                Shape::for_hosts(size)?,
                "cargo xtask bench",
                &self.root.join("examples/scale-up"),
            )?;
            for (path, _) in &mut files {
                if path == "infra.yaml" {
                    *path = format!("fleet-{size}.yaml");
                }
            }
            fleet::write(&self.dir, &files)?;
        }
        Ok(())
    }

    /// `infra ARGS` with the bench's secrets, output captured; fails unless it exits 0.
    fn infra(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.infra)
            .args(args)
            .envs(self.secrets.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.infra.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(
            output.status.success(),
            "`infra {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            tail(&stderr, 30)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// One timed `infra ARGS`, with its peak memory (GNU time).
    fn sample(&self, args: &[&str]) -> anyhow::Result<Sample> {
        let memory = self.dir.join("peak-kib");
        let started = Instant::now();
        let output = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&memory)
            .arg(&self.infra)
            .args(args)
            .envs(self.secrets.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        let peak_kib = fs_err::read_to_string(&memory)?
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        Ok(Sample {
            seconds,
            peak_kib,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            success: output.status.success(),
        })
    }

    /// One round trip with a fresh connection to each of `addresses`, all at once.
    fn floor(&self, addresses: &[String]) -> anyhow::Result<f64> {
        let config = self.ssh_config();
        let started = Instant::now();
        let children: Vec<_> = addresses
            .iter()
            .map(|address| {
                Command::new("ssh")
                    .arg("-F")
                    .arg(&config)
                    .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
                    .arg(address)
                    .arg("true")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        for child in children {
            let output = child.wait_with_output()?;
            ensure!(
                output.status.success(),
                "ssh failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// `infra validate` of the scale-up example with 20000 hosts that do not exist added to its
    /// web tier: a hostile topology must not make validation slow or its output endless.
    fn validation(&self, runs: usize) -> anyhow::Result<Validation> {
        const REFERENCES: usize = 20_000;
        eprintln!("== validation of {REFERENCES} dangling references");
        // Beside the fleets, whose `app/` and `site/` it uses as the example's.
        let example = self.root.join("examples/scale-up");
        let ghosts: Vec<String> = (0..REFERENCES).map(|n| format!("ghost{n}")).collect();
        let text = fs_err::read_to_string(example.join("infra.yaml"))?;
        let wanted = "  hosts: [web1, web2]";
        ensure!(
            text.contains(wanted),
            "the example's web tier changed: update the bench"
        );
        let text = text.replace(
            wanted,
            &format!("  hosts: [web1, web2, {}]", ghosts.join(", ")),
        );
        let topology = self.dir.join("validation.yaml");
        fs_err::write(&topology, &text)?;
        let topology = topology.display().to_string();
        let mut seconds = Vec::new();
        let mut error_lines = 0;
        for _ in 0..runs {
            let sample = self.sample(&["validate", "-f", &topology])?;
            ensure!(
                !sample.success,
                "a topology of dangling references was accepted"
            );
            error_lines = sample.stderr.lines().count();
            seconds.push(sample.seconds);
        }
        Ok(Validation {
            references: REFERENCES,
            bytes: text.len(),
            error_lines,
            seconds: report::median(&seconds),
        })
    }

    fn measure(
        &self,
        options: &Options,
        validation: Validation,
    ) -> anyhow::Result<report::Results> {
        let lab = self.topology(self.largest);
        let config = self.ssh_config().display().to_string();
        eprintln!("== lab of {} hosts", self.largest);
        let started = Instant::now();
        self.infra(&["lab", "up", "-f", &lab])?;
        let lab_up = started.elapsed().as_secs_f64();
        let idle = lab_memory_mib()?;
        let cold = if options.cold {
            Some(self.cold(&lab)?)
        } else {
            eprintln!("== converging the lab");
            self.infra(&["apply", "--auto-approve", "-f", &lab])?;
            None
        };
        let converged = lab_memory_mib()?;
        let mut rows = Vec::new();
        for &size in &options.sizes {
            rows.push(self.size(size, options.runs, &config)?);
        }
        let mut parallelism = Vec::new();
        let topology = self.topology(self.largest);
        for &p in &options.parallelism {
            let p_text = p.to_string();
            eprintln!("== plan of {} hosts, --parallelism {p}", self.largest);
            let mut seconds = Vec::new();
            for _ in 0..options.runs {
                let sample = self.sample(&[
                    "plan",
                    "-f",
                    &topology,
                    "--ssh-config",
                    &config,
                    "--parallelism",
                    &p_text,
                ])?;
                ensure!(sample.success, "plan failed:\n{}", tail(&sample.stderr, 20));
                seconds.push(sample.seconds);
            }
            parallelism.push(Parallelism {
                parallelism: p,
                plan: report::median(&seconds),
            });
        }
        Ok(report::Results {
            largest: self.largest,
            lab_up,
            idle_host_mib: report::median(&idle),
            converged_lab_mib: converged.iter().sum(),
            rows,
            cold,
            parallelism,
            runs: options.runs,
            machine: machine(),
            validation,
        })
    }

    /// Converges a fleet of `size` hosts of the lab, then measures it.
    fn size(&self, size: usize, runs: usize, config: &str) -> anyhow::Result<Row> {
        let topology = self.topology(size);
        let plan_args = ["plan", "-f", &topology, "--ssh-config", config];
        let apply_args = [
            "apply",
            "--auto-approve",
            "-f",
            &topology,
            "--ssh-config",
            config,
        ];
        eprintln!("== {size} hosts: converging");
        self.infra(&apply_args)?;
        self.infra(&[&plan_args[..], &["--detailed-exitcode"]].concat())
            .context("the hosts did not converge")?;
        let addresses: Vec<String> = fleet::hosts(Shape::for_hosts(size)?)
            .into_iter()
            .map(|(_, address)| address)
            .collect();
        let mut floor = Vec::new();
        let mut plan = Vec::new();
        let mut apply = Vec::new();
        let mut peak_kib = 0;
        let mut round_trips = None;
        for run in 1..=runs {
            eprintln!("== {size} hosts: run {run} of {runs}");
            floor.push(self.floor(&addresses)?);
            let sample = self.sample(&plan_args)?;
            ensure!(sample.success, "plan failed:\n{}", tail(&sample.stderr, 20));
            round_trips = Some(gathered_round_trips(&sample.stderr)?);
            peak_kib = peak_kib.max(sample.peak_kib);
            plan.push(sample.seconds);
            let sample = self.sample(&apply_args)?;
            ensure!(
                sample.success && sample.stderr.contains("round trips"),
                "no-op apply failed:\n{}",
                tail(&sample.stderr, 20)
            );
            peak_kib = peak_kib.max(sample.peak_kib);
            apply.push(sample.seconds);
        }
        let (hosts, trips) = round_trips.unwrap_or((size, 0));
        Ok(Row {
            hosts: size,
            floor: report::median(&floor),
            plan: report::median(&plan),
            apply: report::median(&apply),
            peak_mib: peak_kib as f64 / 1024.0,
            round_trips_per_host: trips as f64 / hosts.max(1) as f64,
        })
    }

    /// A cold apply on fresh hosts, against the same packages installed by hand.
    fn cold(&self, lab: &str) -> anyhow::Result<Cold> {
        eprintln!("== cold: the packages each host gets");
        self.infra(&["lab", "up", "--recreate", "-f", lab])?;
        let packages = self.packages(lab)?;
        eprintln!("== cold: apt-get by hand, every host at once");
        let config = self.ssh_config();
        let started = Instant::now();
        let children: Vec<_> = packages
            .iter()
            .map(|(address, list)| {
                Command::new("ssh")
                    .arg("-F")
                    .arg(&config)
                    .arg(address)
                    .arg(format!(
                        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {}",
                        list.join(" ")
                    ))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        let mut downloaded_mb = 0.0;
        let mut download_seconds = Vec::new();
        for child in children {
            let output = child.wait_with_output()?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            ensure!(
                output.status.success(),
                "apt-get failed: {}",
                tail(&String::from_utf8_lossy(&output.stderr), 10)
            );
            let (mb, seconds) = fetched(&stdout);
            downloaded_mb += mb;
            download_seconds.push(seconds);
        }
        let by_hand = started.elapsed().as_secs_f64();
        eprintln!("== cold: infra apply on fresh hosts");
        self.infra(&["lab", "up", "--recreate", "-f", lab])?;
        let started = Instant::now();
        self.infra(&["apply", "--auto-approve", "-f", lab])?;
        let apply = started.elapsed().as_secs_f64();
        Ok(Cold {
            hosts: packages.len(),
            apply,
            by_hand,
            downloaded_mb,
            download_seconds: report::median(&download_seconds),
        })
    }

    /// Per host address, the packages the plan installs (read from `infra plan --json`).
    fn packages(&self, lab: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
        let plan: serde_json::Value =
            serde_json::from_str(&self.infra(&["plan", "--json", "-f", lab])?)?;
        let addresses: BTreeMap<String, String> = fleet::hosts(Shape::for_hosts(self.largest)?)
            .into_iter()
            .collect();
        let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for change in plan["resource_changes"].as_array().into_iter().flatten() {
            if change["kind"] == "package" && change["after"]["installed"] == true {
                let (Some(host), Some(name)) = (change["host"].as_str(), change["name"].as_str())
                else {
                    continue;
                };
                let address = addresses
                    .get(host)
                    .with_context(|| format!("the plan names a host `{host}` the lab has not"))?;
                packages
                    .entry(address.clone())
                    .or_default()
                    .push(name.to_owned());
            }
        }
        ensure!(!packages.is_empty(), "the plan installs no package");
        Ok(packages)
    }
}

/// `(hosts, round trips)` from `infra`'s "gathered facts from X of Y hosts in Z s (R SSH round
/// trips)" line.
fn gathered_round_trips(stderr: &str) -> anyhow::Result<(usize, usize)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("gathered facts from "))
        .context("no `gathered facts` line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let hosts = words.get(3).and_then(|w| w.parse().ok());
    let trips = line
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|w| w.parse().ok());
    match (hosts, trips) {
        (Some(hosts), Some(trips)) => Ok((hosts, trips)),
        _ => bail!("cannot read `{line}`"),
    }
}

/// The megabytes apt says it fetched and the seconds it took ("Fetched 9,251 kB in 1min 2s
/// (4,625 kB/s)"), over every `Fetched` line.
fn fetched(output: &str) -> (f64, f64) {
    (fetched_mb(output), fetched_seconds(output))
}

fn fetched_seconds(output: &str) -> f64 {
    output
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.strip_prefix("Fetched ")?.split_once(" in ")?;
            let (time, _) = rest.split_once(" (").unwrap_or((rest, ""));
            time.split_whitespace()
                .map(|part| {
                    let (number, unit) =
                        part.split_at(part.find(|c: char| c.is_ascii_alphabetic())?);
                    let number: f64 = number.parse().ok()?;
                    Some(match unit {
                        "ms" => number / 1000.0,
                        "s" => number,
                        "min" => number * 60.0,
                        "h" => number * 3600.0,
                        _ => return None,
                    })
                })
                .sum::<Option<f64>>()
        })
        .sum()
}

fn fetched_mb(output: &str) -> f64 {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Fetched ")?;
            let mut words = rest.split_whitespace();
            let amount: f64 = words.next()?.replace(',', "").parse().ok()?;
            let factor = match words.next()? {
                "B" => 1e-6,
                "kB" => 1e-3,
                "MB" => 1.0,
                "GB" => 1e3,
                _ => return None,
            };
            Some(amount * factor)
        })
        .sum()
}

/// Memory in use by each of the bench lab's containers (`docker stats`), in MiB.
fn lab_memory_mib() -> anyhow::Result<Vec<f64>> {
    let output = Command::new("docker")
        .args([
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("infra-{NAME}-");
    Ok(text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let used = line.split_whitespace().nth(1)?;
            let (number, unit) = used.split_at(used.find(|c: char| c.is_ascii_alphabetic())?);
            let number: f64 = number.parse().ok()?;
            Some(match unit {
                "GiB" => number * 1024.0,
                "MiB" => number,
                "KiB" => number / 1024.0,
                _ => return None,
            })
        })
        .collect())
}

/// What the machine is: cores, memory, kernel.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = fs_err::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0);
    let ssh = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {memory_gib:.0} GiB; {ssh}")
}

fn status(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status()?;
    ensure!(status.success(), "{command:?} failed: {status}");
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_are_read_from_infra_and_apt() {
        assert_eq!(
            gathered_round_trips(
                "x\ngathered facts from 50 of 50 hosts in 3.48 s (50 SSH round trips)\n"
            )
            .expect("read"),
            (50, 50)
        );
        assert!(gathered_round_trips("nothing").is_err());
        let apt =
            "Get:1 ...\nFetched 9,251 kB in 2s (4,625 kB/s)\nFetched 31.5 MB in 3s (10 MB/s)\n";
        assert!((fetched_mb(apt) - 40.751).abs() < 1e-9);
        assert_eq!(fetched_seconds(apt), 5.0);
        assert_eq!(
            fetched_seconds("Fetched 120 MB in 1min 3s (1,900 kB/s)\n"),
            63.0
        );
    }

    #[test]
    fn sizes_must_be_hosts_of_the_lab() {
        assert!(check_sizes(&[1, 8, 25, 50], 50).is_ok());
        assert!(
            check_sizes(&[7, 8], 8).is_err(),
            "7 hosts have `web3`, a lab of 8 has two web hosts"
        );
    }
}
