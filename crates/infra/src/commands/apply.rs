//! `infra apply`, `infra destroy` and `infra force-unlock`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use infra_exec::apply::{self, ApplyOptions, ApplyReport, HostOutcome, MaxFail};
use infra_exec::lock::{self, Lock};
use infra_exec::{gather, state};
use infra_plan::plan::{self, Plan};
use infra_plan::show;

use super::plan::{connect_options, json_view, selected_hosts};
use super::{Outcome, load, templates};
use crate::certificate::{self, Keep};
use crate::cli::{ApplyArgs, ChangeArgs, Cli, ForceUnlockArgs, MaxFailArg};
use crate::output::{Hinted, Style};
use crate::progress::Progress;

/// Exit code for a partial apply: some hosts changed, the state records which.
const PARTIAL: u8 = 3;
/// Exit code after Ctrl-C.
const INTERRUPTED: u8 = 130;

fn max_fail(arg: MaxFailArg) -> MaxFail {
    match arg {
        MaxFailArg::Count(count) => MaxFail::Count(count),
        MaxFailArg::Percent(percent) => MaxFail::Percent(percent),
    }
}

fn lock_error(error: lock::LockError) -> anyhow::Error {
    match error.hint() {
        Some(hint) => anyhow::Error::new(Hinted::new(error.to_string(), hint)),
        None => anyhow::Error::new(error),
    }
}

/// Asks for `yes` on a terminal; refuses without one (never waits for input that cannot come).
fn confirm(question: &str, args: &ChangeArgs, approved_by_plan_file: bool) -> anyhow::Result<bool> {
    if args.auto_approve || approved_by_plan_file {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(Hinted::new(
            "refusing to make changes without confirmation: standard input is not a terminal",
            "pass `--auto-approve`, or save a plan with `infra plan --out FILE` and run `infra apply FILE`"
        ));
    }
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// The exit code of a finished run.
fn outcome_of(report: &ApplyReport) -> Outcome {
    if report.interrupted() {
        Outcome::Code(INTERRUPTED)
    } else if report.failed() && report.changed_anything() {
        Outcome::Code(PARTIAL)
    } else if report.failed() {
        Outcome::Failed
    } else {
        Outcome::Success
    }
}

fn print_failures(report: &ApplyReport) {
    for (host, outcome) in &report.hosts {
        if let HostOutcome::Failed(error, _) = outcome {
            eprintln!("error: {error}");
            let _ = host;
        }
    }
}

/// Watches SIGINT, SIGTERM and SIGHUP for a run that holds the lock. Before any change
/// (gathering, the plan, the prompt) the lock is released and the process exits 130 at once;
/// once changes run, the run is asked to stop after the steps under way (`cancel`).
fn watch_signals(
    base_dir: std::path::PathBuf,
    lock_id: String,
    changing: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
            if changing.load(Ordering::SeqCst) {
                eprintln!(
                    "\ninterrupted: finishing the steps under way, then stopping (the state records what was done)"
                );
                cancel.store(true, Ordering::SeqCst);
            } else {
                lock::release(&base_dir, &lock_id);
                eprintln!("\ninterrupted before any change: nothing was done");
                std::process::exit(i32::from(INTERRUPTED));
            }
        }
    })
}

/// Runs `infra apply`.
pub fn run(cli: &Cli, args: &ApplyArgs, style: Style) -> anyhow::Result<Outcome> {
    let change = &args.change;
    let Some(loaded) = load(cli, style)? else {
        return Ok(Outcome::Failed);
    };
    let topology = loaded.topology;
    let selected = selected_hosts(&topology, &change.connect)?;
    let templates = templates(&topology)?;
    let certificate = certificate::generated(&topology, Keep::OnDisk)?;
    let desired = infra_plan::desired_state(&topology, &templates, certificate.as_ref())?;
    let saved: Option<Plan> = match &args.plan_file {
        Some(path) => {
            let text = fs_err::read_to_string(path)?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "`{}` is not a plan saved by `infra plan --out`",
                    path.display()
                )
            })?)
        }
        None => None,
    };
    let lock =
        Lock::acquire(&topology.base_dir, "apply", change.lock_timeout).map_err(lock_error)?;
    let state = state::load(&topology.base_dir, &topology.name)?;
    let options = connect_options(&topology, &change.connect);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let progress = Arc::new(Progress::new(change.json, selected.len()));
    progress.json(serde_json::json!({ "type": "version", "infra": env!("CARGO_PKG_VERSION"), "format_version": plan::FORMAT_VERSION }));

    let cancel = Arc::new(AtomicBool::new(false));
    let changing = Arc::new(AtomicBool::new(false));
    let lock_id = lock.info().id.clone();
    runtime.block_on(async {
        let watcher = watch_signals(topology.base_dir.clone(), lock_id, Arc::clone(&changing), Arc::clone(&cancel));
        let gathered = gather::gather(&topology, &desired, &selected, &options, change.connect.parallelism).await;
        let fresh = plan::diff(&desired, &gathered.facts, &state.pending(), gathered.unreachable());
        let plan = match saved {
            Some(saved) => {
                if let Err(reason) = stale(&saved, &fresh) {
                    gathered.close().await;
                    anyhow::bail!(Hinted::new(
                        format!("the saved plan is stale: {reason}"),
                        "make a new plan with `infra plan --out FILE` and apply that"
                    ));
                }
                saved
            }
            None => fresh,
        };
        if change.json {
            progress.json(serde_json::json!({ "type": "planned_changes", "plan": json_view(&plan) }));
        } else {
            print!("{}", show::text(&plan, style.plan_colour()));
        }
        if !plan.has_changes() && plan.unreachable.is_empty() {
            gathered.close().await;
            return Ok(Outcome::Success);
        }
        if !confirm("Do you want to perform these actions?", change, args.plan_file.is_some())? {
            gathered.close().await;
            println!("\nApply cancelled.");
            return Ok(Outcome::Failed);
        }
        changing.store(true, Ordering::SeqCst);
        let apply_options = ApplyOptions {
            parallelism: change.connect.parallelism,
            max_fail: max_fail(change.max_fail),
        };
        progress.start();
        let reporter: Arc<dyn apply::ApplyReporter> = progress.clone();
        let (report, _state) = apply::apply(
            &topology,
            &desired,
            &plan,
            gathered.connections,
            state,
            &apply_options,
            Arc::clone(&reporter),
            cancel,
        )
        .await;
        watcher.abort();
        progress.finish();
        let (added, changed, destroyed) = report.counts();
        if change.json {
            println!(
                "{}",
                serde_json::json!({ "type": "summary", "added": added, "changed": changed, "destroyed": destroyed, "failed": report.failed(), "interrupted": report.interrupted() })
            );
        } else {
            print_failures(&report);
            if report.failed() || report.interrupted() {
                println!("\nApply stopped. Resources: {added} added, {changed} changed, {destroyed} destroyed. The state records what was done; run `infra apply` again to converge.");
            } else {
                println!("\nApply complete! Resources: {added} added, {changed} changed, {destroyed} destroyed.");
            }
        }
        Ok(outcome_of(&report))
    })
}

/// Why a saved plan no longer matches the topology or the hosts.
fn stale(saved: &Plan, fresh: &Plan) -> Result<(), String> {
    if saved.format_version != fresh.format_version {
        return Err(format!(
            "it has format {}, this infra writes {}",
            saved.format_version, fresh.format_version
        ));
    }
    if saved.topology != fresh.topology {
        return Err(format!(
            "it is for topology `{}`, not `{}`",
            saved.topology, fresh.topology
        ));
    }
    if saved.desired_sha256 != fresh.desired_sha256 {
        return Err(
            "the topology, its templates or its files changed since it was made".to_owned(),
        );
    }
    for host in &saved.hosts {
        match fresh.hosts.iter().find(|h| h.host == host.host) {
            Some(now) if now.facts_sha256 == host.facts_sha256 => {}
            Some(_) => return Err(format!("host `{}` changed since it was made", host.host)),
            None => return Err(format!("host `{}` could not be read now", host.host)),
        }
    }
    Ok(())
}

/// Runs `infra force-unlock ID`.
pub fn force_unlock(cli: &Cli, args: &ForceUnlockArgs, style: Style) -> anyhow::Result<Outcome> {
    let Some(loaded) = super::load_with(cli, style, super::SecretValues::NotNeeded)? else {
        return Ok(Outcome::Failed);
    };
    let held = lock::force_unlock(&loaded.topology.base_dir, &args.id).map_err(lock_error)?;
    println!(
        "removed the lock {} held by {} (pid {}) for `{}`",
        held.id, held.who, held.pid, held.operation
    );
    Ok(Outcome::Success)
}

/// Runs `infra destroy`.
pub fn destroy(cli: &Cli, args: &crate::cli::DestroyArgs, style: Style) -> anyhow::Result<Outcome> {
    let change = &args.change;
    let Some(loaded) = super::load_with(cli, style, super::SecretValues::NotNeeded)? else {
        return Ok(Outcome::Failed);
    };
    let topology = loaded.topology;
    let selected = selected_hosts(&topology, &change.connect)?;
    let lock =
        Lock::acquire(&topology.base_dir, "destroy", change.lock_timeout).map_err(lock_error)?;
    let state = state::load(&topology.base_dir, &topology.name)?;
    let mut plan = infra_exec::destroy::plan(&topology, &state, args.delete_data);
    plan.hosts.retain(|h| selected.contains(&h.host));
    let progress = Arc::new(Progress::new(change.json, plan.hosts.len()));
    progress.json(serde_json::json!({ "type": "version", "infra": env!("CARGO_PKG_VERSION"), "format_version": plan::FORMAT_VERSION }));
    if change.json {
        progress.json(serde_json::json!({ "type": "planned_changes", "plan": json_view(&plan) }));
    } else {
        print!("{}", show::text(&plan, style.plan_colour()));
    }
    if !plan.has_changes() {
        return Ok(Outcome::Success);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let changing = Arc::new(AtomicBool::new(false));
    // Signals are watched from here on, so a Ctrl-C at the prompt releases the lock too.
    let watcher = {
        let _entered = runtime.enter();
        watch_signals(
            topology.base_dir.clone(),
            lock.info().id.clone(),
            Arc::clone(&changing),
            Arc::clone(&cancel),
        )
    };
    if !args.delete_data && !change.json {
        println!(
            "\nDatabase data is kept (pass --delete-data to drop the databases and accounts infra created)."
        );
    }
    if !confirm(
        "Do you really want to destroy what infra created?",
        change,
        false,
    )? {
        println!("\nDestroy cancelled.");
        return Ok(Outcome::Failed);
    }
    let options = connect_options(&topology, &change.connect);
    let report = runtime.block_on(async {
        changing.store(true, Ordering::SeqCst);
        progress.start();
        let reporter: Arc<dyn apply::ApplyReporter> = progress.clone();
        let (report, _state) = infra_exec::destroy::destroy(
            &topology,
            &plan,
            state,
            args.delete_data,
            &options,
            change.connect.parallelism,
            reporter,
            cancel,
        )
        .await;
        watcher.abort();
        report
    });
    progress.finish();
    let (_, _, destroyed) = report.counts();
    if change.json {
        println!(
            "{}",
            serde_json::json!({ "type": "summary", "destroyed": destroyed, "failed": report.failed() })
        );
    } else {
        print_failures(&report);
        if report.failed() {
            println!(
                "\nDestroy stopped. Resources: {destroyed} destroyed. Run `infra destroy` again to finish."
            );
        } else {
            println!("\nDestroy complete! Resources: {destroyed} destroyed.");
        }
    }
    Ok(outcome_of(&report))
}
