//! `infra state list | show HOST | rm HOST RESOURCE`: what the hosts' records say `infra`
//! created, read from the hosts themselves (one round trip each).

use std::collections::BTreeMap;

use infra_exec::executor::{self, Execution, HostOutcome, MaxFail};
use infra_exec::gather::{self, Connections, Gathered, close_all};
use infra_exec::locks::{self, AcquireError};
use infra_plan::Sensitivity;
use infra_plan::facts::{GatherRequest, HostFacts};
use infra_plan::lock::{LockHolder, LockId};
use infra_plan::plan::{
    Concurrency, Expectation, HostPlan, Plan, PlanMode, Step, StepKind, Task, Wave,
};
use infra_plan::record::{HostRecord, RecordEntry, format as format_record, sensitivity_word};
use infra_topology::{Host, HostName, Topology};

use super::runtime;
use crate::cli::{ConnectArgs, StateArgs, StateCommand, StateRmArgs, StateShowArgs};
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::output::{self, Hinted};
use crate::settings::Settings;

/// Runs a state subcommand.
pub fn run(settings: &Settings, command: &StateCommand) -> anyhow::Result<Exit> {
    match command {
        StateCommand::List(args) => list(settings, args),
        StateCommand::Show(args) => show(settings, args),
        StateCommand::Rm(args) => rm(settings, args),
    }
}

/// Reads the records of `hosts` (nothing else is asked).
fn records(
    settings: &Settings,
    topology: &Topology,
    hosts: &[Host],
    connect: &ConnectArgs,
) -> anyhow::Result<(tokio::runtime::Runtime, Gathered)> {
    let runtime = runtime()?;
    let gathered = runtime.block_on(async {
        let connector = ops::connector(settings, topology, connect).await?;
        let requests = hosts
            .iter()
            .map(|host| {
                let request = GatherRequest {
                    topology: topology.name.clone(),
                    packages: Vec::new(),
                    directories: Vec::new(),
                    files: Vec::new(),
                    units: Vec::new(),
                    database: None,
                    certificate: None,
                    preflight: None,
                };
                (host.clone(), request)
            })
            .collect();
        let gathered = gather::gather(
            connector,
            requests,
            usize::from(connect.parallelism),
            Connections::Keep,
        )
        .await;
        anyhow::Ok(gathered)
    })?;
    Ok((runtime, gathered))
}

fn list(settings: &Settings, args: &StateArgs) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let hosts = ops::selected(&loaded.topology, &args.connect)?;
    let (runtime, gathered) = records(settings, &loaded.topology, &hosts, &args.connect)?;
    let facts = gathered.facts_by_host();
    if args.json {
        let rows: Vec<serde_json::Value> = hosts
            .iter()
            .map(|host| match (facts.get(&host.name), gathered.failed.iter().find(|(h, _)| *h == host.name)) {
                (Some(facts), _) => serde_json::json!({
                    "host": host.name,
                    "record": facts.record.as_ref().map(|r| serde_json::json!({
                        "topology": r.topology, "lineage": r.lineage, "serial": r.serial, "resources": r.resource_count(),
                    })),
                    "locked": facts.lock.is_some(),
                }),
                (None, Some((_, error))) => serde_json::json!({ "host": host.name, "error": output::scrub(&error.to_string()) }),
                (None, None) => serde_json::json!({ "host": host.name }),
            })
            .collect();
        output::outln(&serde_json::to_string_pretty(&rows)?);
    } else {
        output::outln(&format!(
            "{:<12} {:<8} {:<34} {:<10} locked",
            "host", "serial", "lineage", "resources"
        ));
        for host in &hosts {
            match facts.get(&host.name) {
                Some(HostFacts {
                    record: Some(record),
                    lock,
                    ..
                }) => output::outln(&format!(
                    "{:<12} {:<8} {:<34} {:<10} {}",
                    host.name,
                    record.serial,
                    record.lineage,
                    record.resource_count(),
                    if lock.is_some() { "yes" } else { "no" }
                )),
                Some(facts) => output::outln(&format!(
                    "{:<12} {:<8} {:<34} {:<10} {}",
                    host.name,
                    "-",
                    "(no record of infra)",
                    0,
                    if facts.lock.is_some() { "yes" } else { "no" }
                )),
                None => {
                    let error = gathered
                        .failed
                        .iter()
                        .find(|(h, _)| *h == host.name)
                        .map_or_else(String::new, |(_, e)| e.to_string());
                    output::outln(&format!("{:<12} unreachable: {error}", host.name));
                }
            }
        }
    }
    runtime.block_on(close_all(gathered.transports.into_values()));
    Ok(if gathered.failed.is_empty() {
        Exit::Success
    } else {
        Exit::Error
    })
}

fn find_host(topology: &Topology, name: &str) -> anyhow::Result<Host> {
    topology
        .hosts
        .iter()
        .find(|h| h.name.as_str() == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
            anyhow::Error::new(Hinted::new(
                format!(
                    "no host `{}` in the topology",
                    infra_topology::text::visible_line(name)
                ),
                format!("the hosts are: {}", names.join(", ")),
            ))
        })
}

/// The record of one host, or the error that says why there is none.
fn one_record(gathered: &Gathered, host: &HostName) -> anyhow::Result<Option<HostRecord>> {
    if let Some((_, error)) = gathered.failed.iter().find(|(h, _)| h == host) {
        return Err(anyhow::anyhow!(
            "cannot read the record of `{host}`: {error}"
        ));
    }
    Ok(gathered
        .facts
        .iter()
        .find(|(h, _)| h == host)
        .and_then(|(_, f)| f.record.clone()))
}

fn show(settings: &Settings, args: &StateShowArgs) -> anyhow::Result<Exit> {
    let Some(loaded) = ops::load(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let host = find_host(&loaded.topology, &args.host)?;
    let (runtime, gathered) = records(
        settings,
        &loaded.topology,
        std::slice::from_ref(&host),
        &args.state.connect,
    )?;
    let record = one_record(&gathered, &host.name);
    runtime.block_on(close_all(gathered.transports.into_values()));
    let Some(record) = record? else {
        output::outln(&format!("`{}` has no record of `infra`", host.name));
        return Ok(Exit::Success);
    };
    // A sensitive file's hash is a guessing aid for short secrets: it is not shown.
    let hidden: Vec<_> = record
        .files
        .iter()
        .filter(|(_, f)| f.sensitivity == Sensitivity::Sensitive)
        .map(|(p, _)| p.clone())
        .collect();
    if args.state.json {
        let mut value = serde_json::to_value(&record)?;
        for path in &hidden {
            if let Some(file) = value["files"].get_mut(path.as_str()) {
                file["sha256"] = serde_json::Value::Null;
            }
        }
        output::outln(&serde_json::to_string_pretty(&value)?);
    } else {
        let text = format_record(&record);
        for line in text.lines() {
            let shown = match line.split('\t').collect::<Vec<_>>().as_slice() {
                ["+file", path, _, sensitivity]
                    if *sensitivity == sensitivity_word(Sensitivity::Sensitive) =>
                {
                    format!("+file\t{path}\t(sensitive)\tsensitive")
                }
                _ => line.to_owned(),
            };
            output::outln(&shown.replace('\t', "  "));
        }
    }
    Ok(Exit::Success)
}

fn rm(settings: &Settings, args: &StateRmArgs) -> anyhow::Result<Exit> {
    let entry = RecordEntry::parse(&args.resource).map_err(|message| {
        anyhow::Error::new(Hinted::new(
            message,
            "name the resource as the plan does: `package[\"haproxy\"]`, `file[\"/etc/x\"]`, `service[\"nginx.service\"]`",
        ))
    })?;
    let Some(prepared) = ops::prepare(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let host = find_host(&prepared.topology, &args.host)?;
    let (runtime, gathered) = records(
        settings,
        &prepared.topology,
        std::slice::from_ref(&host),
        &args.connect,
    )?;
    let lock = LockId::random();
    let result = runtime.block_on(async {
        let record = one_record(&gathered, &host.name)?;
        let Some(record) = record else {
            anyhow::bail!(
                "`{}` has no record of `infra`: nothing to forget",
                host.name
            );
        };
        if !entry.is_in(&record) {
            anyhow::bail!(Hinted::new(
                format!("the record of `{}` has no {}", host.name, args.resource),
                format!("see what it holds: infra state show {}", host.name)
            ));
        }
        let holder = LockHolder {
            id: lock.clone(),
            user: settings.identity.user.clone(),
            controller: settings.identity.controller.clone(),
            pid: settings.identity.pid,
            operation: "state rm".to_owned(),
            topology: prepared.topology.name.to_string(),
            ci: settings.identity.ci.clone(),
            since: 0,
            expires: 0,
        };
        let serials = BTreeMap::from([(host.name.clone(), Some(Some(record.serial)))]);
        let never = || false;
        match locks::acquire_all(
            &gathered.transports,
            &serials,
            &holder,
            &prepared.topology.name,
            args.lock_timeout,
            1,
            &never,
        )
        .await
        {
            Ok(()) => {}
            Err(AcquireError::Held { host, fact }) => {
                return Err(ops::held(&host, &fact, settings));
            }
            Err(AcquireError::Moved { host }) => {
                anyhow::bail!("`{host}` changed while its record was read: try again")
            }
            Err(AcquireError::Host { host, error }) => {
                return Err(
                    anyhow::Error::new(error).context(format!("cannot take the lock on `{host}`"))
                );
            }
            Err(AcquireError::Interrupted) => anyhow::bail!("interrupted"),
        }
        let plan = Plan {
            format_version: infra_plan::plan::FORMAT_VERSION.to_owned(),
            mode: PlanMode::Apply,
            topology: prepared.topology.name.clone(),
            desired: prepared.fingerprinter.full(b"state rm"),
            hosts: vec![HostPlan {
                host: host.name.clone(),
                expects: Expectation {
                    facts: prepared.fingerprinter.full(b"state rm"),
                    serial: Some(record.serial),
                },
                changes: Vec::new(),
                notes: Vec::new(),
            }],
            waves: vec![Wave {
                label: "state rm".to_owned(),
                concurrency: Concurrency::OneAtATime,
                tasks: vec![Task {
                    host: host.name.clone(),
                    steps: vec![
                        Step::new(StepKind::BeginRun {
                            lineage: record.lineage.clone(),
                            serial: record.serial + 1,
                        }),
                        Step::new(StepKind::Forget {
                            entry: entry.clone(),
                        }),
                        Step::new(StepKind::FinishRun),
                    ],
                }],
                unreachable: Vec::new(),
            }],
            unreachable: Vec::new(),
            resolved: Vec::new(),
        };
        let facts = gathered.facts_by_host();
        let execution = Execution {
            plan: &plan,
            desired: &prepared.desired,
            passwords: BTreeMap::new(),
            facts: &facts,
            fingerprinter: &prepared.fingerprinter,
            lock: lock.clone(),
            parallelism: 1,
            max_fail: MaxFail::Count(0),
            cancel: executor::Cancel::default(),
            reporter: std::sync::Arc::new(Quiet),
        };
        let report = executor::execute(&execution, &gathered.transports).await;
        locks::release_all(
            &gathered.transports,
            std::slice::from_ref(&host.name),
            &lock,
            1,
        )
        .await;
        match report.hosts.first() {
            Some((_, HostOutcome::Done(_))) => Ok(()),
            Some((_, HostOutcome::Failed(error, _))) => Err(anyhow::anyhow!("{error}")),
            Some((_, HostOutcome::Skipped(reason))) => Err(anyhow::anyhow!("{reason}")),
            None => Err(anyhow::anyhow!("nothing ran on `{}`", host.name)),
        }
    });
    runtime.block_on(close_all(gathered.transports.into_values()));
    result?;
    output::outln(&format!(
        "`{}` forgot {}: `infra` no longer manages it there (nothing on the host was changed)",
        host.name, args.resource
    ));
    Ok(Exit::Success)
}

/// `state rm` prints its own one line.
struct Quiet;

impl executor::Reporter for Quiet {
    fn event(&self, _event: executor::Event) {}
}
