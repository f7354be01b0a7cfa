//! `infra apply` and `infra destroy`: one composition. Gather, plan (or read a saved plan and
//! check it is still current), take the hosts' locks, show, confirm, execute, give the locks
//! back. Destroy is the same run of a plan made in destroy mode.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use anyhow::Context as _;
use infra_exec::executor::{self, Execution, HostOutcome, MaxFail, Report};
use infra_exec::gather::{self, Connections, Gathered, close_all};
use infra_exec::locks::{self, AcquireError};
use infra_exec::transport::LockAnswer;
use infra_plan::lock::{LockHolder, LockId};
use infra_plan::plan::{self, DataPolicy, Plan, PlanMode};
use infra_plan::view;
use infra_topology::HostName;

use super::runtime;
use crate::cli::{ApplyArgs, ChangeArgs, DestroyArgs, MaxFailArg};
use crate::edge::Edge;
use crate::exit::Exit;
use crate::interrupts::Interrupts;
use crate::ops::{self, Prepared, SecretValues};
use crate::output::{self, Hinted};
use crate::progress::Progress;
use crate::settings::Settings;

/// Gives the locks back, and says where that failed (a host that went away keeps this run's
/// lock until it is forced: the same advice Terraform gives).
async fn release(gathered: &Gathered, locked: &[HostName], lock: &LockId, parallelism: usize) {
    let answers = locks::release_all(&gathered.transports, locked, lock, parallelism).await;
    for (host, answer) in answers {
        let why = match answer {
            Ok(LockAnswer::Released | LockAnswer::NotHolder(None)) => continue,
            Ok(LockAnswer::Acquired | LockAnswer::SerialMoved { .. }) => {
                "it answered as if it were being taken".to_owned()
            }
            Ok(LockAnswer::Held(fact) | LockAnswer::NotHolder(Some(fact))) => match fact.holder {
                Some(holder) => format!("it is now held by lock {}", holder.id),
                None => "another lock is there, its holder unreadable".to_owned(),
            },
            Err(error) => error.to_string(),
        };
        output::errln(&format!(
            "warning: could not release the lock on `{host}` ({why}); once it answers again, remove it with `infra force-unlock {lock}`"
        ));
    }
}

/// The largest saved plan `infra` reads.
const PLAN_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads a plan saved by `infra plan --out`.
pub fn read_saved(path: &std::path::Path) -> anyhow::Result<Plan> {
    let text = infra_topology::read_regular_file(path, PLAN_FILE_LIMIT)
        .with_context(|| format!("cannot read the plan `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a plan saved by this version of `infra plan --out`",
            path.display()
        )
    })
}

/// Runs `infra apply [PLANFILE]`.
pub fn apply(settings: &Settings, args: &ApplyArgs) -> anyhow::Result<Exit> {
    let saved: Option<Plan> = args.plan_file.as_deref().map(read_saved).transpose()?;
    let mode = saved.as_ref().map_or(PlanMode::Apply, |p| p.mode);
    let edge = (!args.edge.no_edge_check).then_some(EdgeCheck {
        url: args.edge.edge_url.as_deref(),
        timeout: args.edge_timeout,
    });
    run(settings, &args.change, mode, saved, edge)
}

/// The edge check apply ends with.
#[derive(Debug, Clone, Copy)]
struct EdgeCheck<'a> {
    /// `--edge-url`.
    url: Option<&'a str>,
    /// How long to wait for it.
    timeout: std::time::Duration,
}

/// How the edge check went: `None` when there was none to do.
async fn check_edge(
    prepared: &Prepared,
    check: EdgeCheck<'_>,
    json: bool,
    progress: &Progress,
) -> Option<Result<(), String>> {
    let chain = prepared.certificate.as_ref().map(|c| c.chain_pem.as_str());
    let edge = match Edge::of(&prepared.topology, chain, check.url) {
        Ok(Some(edge)) => edge,
        Ok(None) => return None,
        Err(error) => return Some(Err(error.to_string())),
    };
    let answers = match edge.wait(check.timeout).await {
        Ok(answers) => answers,
        Err(error) => return Some(Err(error.to_string())),
    };
    let ok = answers.iter().all(|a| a.ok);
    if json {
        progress.json(serde_json::json!({ "type": "edge_check", "ok": ok, "answers": answers }));
    } else {
        for answer in &answers {
            output::outln(&format!(
                "edge: {} {}: {}",
                answer.url,
                if answer.ok { "ok" } else { "FAILED" },
                infra_topology::text::visible_line(&answer.detail)
            ));
        }
    }
    Some(if ok {
        Ok(())
    } else {
        Err(format!(
            "the site does not answer through the VIP within {} s: {}",
            check.timeout.as_secs(),
            answers
                .iter()
                .filter(|a| !a.ok)
                .map(|a| format!("{}: {}", a.url, a.detail))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

/// Runs `infra destroy`.
pub fn destroy(settings: &Settings, args: &DestroyArgs) -> anyhow::Result<Exit> {
    let data = if args.delete_data {
        DataPolicy::Delete
    } else {
        DataPolicy::Keep
    };
    run(settings, &args.change, PlanMode::Destroy(data), None, None)
}

fn max_fail(arg: MaxFailArg) -> MaxFail {
    match arg {
        MaxFailArg::Count(count) => MaxFail::Count(count),
        MaxFailArg::Percent(percent) => MaxFail::Percent(percent),
    }
}

fn verb(mode: PlanMode) -> &'static str {
    match mode {
        PlanMode::Apply => "Apply",
        PlanMode::Destroy(_) => "Destroy",
    }
}

/// How the run before the changes ended.
enum Ready {
    /// Locked, shown, approved.
    Go(Box<Plan>),
    /// Nothing to do, or the user said no: the exit.
    Done(Exit),
}

fn run(
    settings: &Settings,
    args: &ChangeArgs,
    mode: PlanMode,
    saved: Option<Plan>,
    edge: Option<EdgeCheck<'_>>,
) -> anyhow::Result<Exit> {
    // Destroy (a saved destroy plan too) leaves no site to check.
    let edge = edge.filter(|_| mode == PlanMode::Apply);
    let secrets = match mode {
        PlanMode::Apply => SecretValues::Required,
        PlanMode::Destroy(_) => SecretValues::NotNeeded,
    };
    let Some(mut prepared) = ops::prepare(settings, secrets)? else {
        return Ok(Exit::Error);
    };
    let hosts = ops::selected(&prepared.topology, &args.connect)?;
    let parallelism = usize::from(args.connect.parallelism);
    let progress = Arc::new(Progress::new(args.json, hosts.len()));
    progress.json(serde_json::json!({ "type": "version", "infra": env!("CARGO_PKG_VERSION"), "format_version": plan::FORMAT_VERSION }));
    let interrupts = Interrupts::default();
    let lock = LockId::random();
    let holder = LockHolder {
        id: lock.clone(),
        user: settings.identity.user.clone(),
        controller: settings.identity.controller.clone(),
        pid: settings.identity.pid,
        operation: match mode {
            PlanMode::Apply => "apply".to_owned(),
            PlanMode::Destroy(_) => "destroy".to_owned(),
        },
        topology: prepared.topology.name.to_string(),
        ci: settings.identity.ci.clone(),
        since: 0,
        expires: 0,
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let watcher = interrupts.watch();
        let connector = ops::connector(settings, &prepared.topology, &args.connect).await?;
        // Gathering ends by itself (every connection has a time limit); it is not cut short,
        // so every connection it opened is closed below, Ctrl-C or not.
        let gathered = ops::gather(
            connector,
            &prepared,
            &hosts,
            Some(mode),
            parallelism,
            Connections::Keep,
        )
        .await;
        if interrupts.aborted() {
            close_all(gathered.transports.into_values()).await;
            output::errln("\ninterrupted before any change: nothing was done");
            return Ok(Exit::Interrupted);
        }
        if let Err(error) = prepared.settle_certificate(&gathered) {
            close_all(gathered.transports.into_values()).await;
            return Err(error);
        }
        let prepared = &prepared;
        let mut locked: Vec<HostName> = Vec::new();
        let result = prepare_run(
            settings,
            args,
            mode,
            saved,
            prepared,
            gathered,
            &holder,
            &interrupts,
            &progress,
            &mut locked,
        )
        .await;
        let (ready, gathered) = match result {
            Ok(ready) => ready,
            Err((error, gathered)) => {
                release(&gathered, &locked, &lock, parallelism).await;
                close_all(gathered.transports.into_values()).await;
                if interrupts.aborted() {
                    output::errln("\ninterrupted before any change: nothing was done");
                    return Ok(Exit::Interrupted);
                }
                return Err(error);
            }
        };
        let plan = match ready {
            Ready::Go(plan) => plan,
            Ready::Done(exit) => {
                release(&gathered, &locked, &lock, parallelism).await;
                close_all(gathered.transports.into_values()).await;
                // Nothing to change: the site must still answer for apply to succeed.
                if exit == Exit::Success
                    && let Some(check) = edge
                    && let Some(Err(error)) = check_edge(prepared, check, args.json, &progress).await
                {
                    output::errln(&format!("error: {error}"));
                    return Ok(Exit::Error);
                }
                return Ok(exit);
            }
        };
        interrupts.changes_begin();
        let keep_alive = locks::keep_alive(&gathered.transports, &locked, &lock);
        progress.start();
        let facts = gathered.facts_by_host();
        let execution = Execution {
            plan: &plan,
            desired: &prepared.desired,
            passwords: prepared.passwords.clone(),
            facts: &facts,
            fingerprinter: &prepared.fingerprinter,
            lock: lock.clone(),
            parallelism,
            max_fail: max_fail(args.max_fail),
            cancel: interrupts.cancel(),
            reporter: progress.clone(),
        };
        let report = executor::execute(&execution, &gathered.transports).await;
        keep_alive.abort();
        release(&gathered, &locked, &lock, parallelism).await;
        close_all(gathered.transports.into_values()).await;
        watcher.abort();
        progress.finish();
        if !prepared.local_records.is_empty() && !report.failed() && !report.interrupted {
            let path = ops::local_state_path(&prepared.topology);
            let moved = path.with_extension("json.moved-to-hosts");
            if std::fs::rename(&path, &moved).is_ok() {
                output::errln(&format!(
                    "note: the hosts keep `infra`'s records now; the local `{}` was moved to the hosts and renamed `{}`",
                    path.display(),
                    moved.display()
                ));
            }
        }
        let edge = match edge {
            Some(check) if !report.failed() && !report.interrupted => {
                check_edge(prepared, check, args.json, &progress).await
            }
            Some(_) | None => None,
        };
        Ok(summary(&report, mode, args.json, &progress, edge))
    })
}

/// Everything before the first change: plan (or check the saved plan), lock, show, confirm.
/// On an error, the gathered connections come back so the caller can give back the locks.
#[expect(clippy::too_many_arguments, reason = "the inputs of one run")]
async fn prepare_run(
    settings: &Settings,
    args: &ChangeArgs,
    mode: PlanMode,
    saved: Option<Plan>,
    prepared: &Prepared,
    mut gathered: Gathered,
    holder: &LockHolder,
    interrupts: &Interrupts,
    progress: &Progress,
    locked: &mut Vec<HostName>,
) -> Result<(Ready, Gathered), (anyhow::Error, Gathered)> {
    let parallelism = usize::from(args.connect.parallelism);
    let hosts = ops::selected(&prepared.topology, &args.connect).unwrap_or_default();
    // A host that preflight stops stops the whole apply, before anything changes anywhere.
    let unfit: Vec<String> = gathered
        .failed
        .iter()
        .filter(|(_, error)| matches!(error, infra_exec::transport::HostError::Preflight { .. }))
        .map(|(_, error)| error.to_string())
        .collect();
    if !unfit.is_empty() {
        let plan = ops::plan(prepared, mode, &gathered);
        show(&plan, args.json, settings, progress);
        let error = Hinted::new(
            format!("preflight: {}; nothing was changed", unfit.join("; ")),
            "fix the host, or leave it out of this run with `--exclude HOST`",
        );
        return Err((anyhow::Error::new(error), gathered));
    }
    let mut attempts = 0;
    let plan = loop {
        attempts += 1;
        let fresh = ops::plan(prepared, mode, &gathered);
        let plan = match &saved {
            Some(saved) => {
                if let Err(stale) = ops::stale(saved, &fresh) {
                    let mut hinted = Hinted::new(
                        format!("the saved plan is stale: {}", stale.reason),
                        "make a new plan with `infra plan --out FILE` and apply that",
                    );
                    if let Some(host) = &stale.host {
                        hinted = hinted.on(host);
                    }
                    return Err((anyhow::Error::new(hinted), gathered));
                }
                saved.clone()
            }
            None => fresh,
        };
        if !plan.has_changes() {
            show(&plan, args.json, settings, progress);
            return Ok((
                Ready::Done(if plan.unreachable.is_empty() {
                    Exit::Success
                } else {
                    Exit::Error
                }),
                gathered,
            ));
        }
        let serials: BTreeMap<HostName, Option<Option<u64>>> = plan
            .changed_hosts()
            .into_iter()
            .map(|host| {
                let serial = plan.host(host).map(|h| h.expects.serial);
                (host.clone(), serial)
            })
            .collect();
        let cancelled = || interrupts.aborted();
        let acquired = locks::acquire_all(
            &gathered.transports,
            &serials,
            holder,
            &prepared.topology.name,
            args.lock_timeout,
            parallelism,
            &cancelled,
        )
        .await;
        match acquired {
            Ok(()) => {
                *locked = serials.keys().cloned().collect();
                break plan;
            }
            Err(AcquireError::Moved { host }) if saved.is_none() && attempts < 4 => {
                output::errln(&format!(
                    "`{host}` was changed by another run while this one planned: planning again"
                ));
                gathered = gather::refresh(
                    gathered,
                    ops::requests(prepared, &hosts, Some(mode)),
                    parallelism,
                )
                .await;
            }
            Err(AcquireError::Moved { host }) => {
                let error = anyhow::Error::new(
                    Hinted::new(
                        format!(
                            "the saved plan is stale: `{host}` was changed by another run since it was made"
                        ),
                        "make a new plan with `infra plan --out FILE` and apply that",
                    )
                    .on(&host),
                );
                return Err((error, gathered));
            }
            Err(AcquireError::Held { host, fact }) => {
                let error = ops::held(&host, &fact, settings);
                return Err((error, gathered));
            }
            Err(AcquireError::Host { host, error }) => {
                let error = anyhow::Error::new(error).context(
                    Hinted::new(
                        format!("cannot take the lock on `{host}`"),
                        "check that the host answers over SSH",
                    )
                    .on(&host),
                );
                return Err((error, gathered));
            }
            Err(AcquireError::Interrupted) => {
                return Err((anyhow::anyhow!("interrupted"), gathered));
            }
        }
    };
    show(&plan, args.json, settings, progress);
    if matches!(mode, PlanMode::Destroy(DataPolicy::Keep)) && !args.json {
        output::outln(
            "\nDatabase data is kept (pass --delete-data to drop the databases and accounts infra created).",
        );
    }
    let question = match mode {
        PlanMode::Apply => "Do you want to perform these actions?",
        PlanMode::Destroy(_) => "Do you really want to destroy what infra created?",
    };
    let approved = if args.auto_approve || saved.is_some() {
        Ok(true)
    } else {
        tokio::select! {
            answer = confirm(question) => answer,
            () = interrupts.abort_requested() => Err(anyhow::anyhow!("interrupted")),
        }
    };
    match approved {
        Ok(true) => Ok((Ready::Go(Box::new(plan)), gathered)),
        Ok(false) => {
            output::outln(&format!("\n{} cancelled.", verb(mode)));
            Ok((Ready::Done(Exit::Error), gathered))
        }
        Err(error) => Err((error, gathered)),
    }
}

fn show(plan: &Plan, json: bool, settings: &Settings, progress: &Progress) {
    if json {
        progress
            .json(serde_json::json!({ "type": "planned_changes", "plan": view::json::view(plan) }));
    } else {
        output::out(&view::text::text(plan, settings.style.plan_colour()));
    }
}

/// Asks for `yes` on a terminal; refuses without one (never waits for input that cannot come).
async fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(Hinted::new(
            "refusing to make changes without confirmation: standard input is not a terminal",
            "pass `--auto-approve`, or save a plan with `infra plan --out FILE` and run `infra apply FILE`"
        ));
    }
    output::out(&format!(
        "\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    ));
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map(|_| answer)
    })
    .await??;
    Ok(answer.trim() == "yes")
}

/// Prints how the run ended and picks the exit code.
fn summary(
    report: &Report,
    mode: PlanMode,
    json: bool,
    progress: &Progress,
    edge: Option<Result<(), String>>,
) -> Exit {
    let counts = report.counts();
    let edge_error = edge.and_then(Result::err);
    if json {
        progress.json(serde_json::json!({
            "type": "summary",
            "added": counts.added, "changed": counts.changed, "destroyed": counts.destroyed,
            "failed": report.failed() || edge_error.is_some(), "interrupted": report.interrupted,
        }));
    } else {
        for (_, outcome) in &report.hosts {
            if let HostOutcome::Failed(error, _) = outcome {
                output::errln(&format!(
                    "error: {}",
                    infra_topology::text::visible(&error.to_string())
                ));
            }
        }
        if let Some(error) = &edge_error {
            output::errln(&format!("error: {error}"));
        }
        let verb = verb(mode);
        let counts_text = format!(
            "Resources: {} added, {} changed, {} destroyed.",
            counts.added, counts.changed, counts.destroyed
        );
        if report.failed() || report.interrupted {
            output::outln(&format!(
                "\n{verb} stopped. {counts_text} The hosts' records keep what was done; run `infra {}` again to finish.",
                verb.to_lowercase()
            ));
        } else if edge_error.is_some() {
            output::outln(&format!(
                "\n{verb} made its changes, but the site does not answer through the VIP. {counts_text}"
            ));
        } else {
            output::outln(&format!("\n{verb} complete! {counts_text}"));
        }
    }
    let failed = report.failed() || edge_error.is_some();
    if report.interrupted {
        Exit::Interrupted
    } else if failed && report.changed_anything() {
        Exit::Partial
    } else if failed {
        Exit::Error
    } else {
        Exit::Success
    }
}
