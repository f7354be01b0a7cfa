//! `infra plan`: gather, diff, show. Changes nothing, takes no lock.

use infra_exec::gather::{Connections, close_all};
use infra_plan::plan::{DataPolicy, PlanMode};
use infra_plan::view;

use super::runtime;
use crate::cli::PlanArgs;
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::output::{self, Hinted};
use crate::settings::Settings;

/// Runs `infra plan`.
pub fn run(settings: &Settings, args: &PlanArgs) -> anyhow::Result<Exit> {
    let (mode, secrets) = if args.destroy {
        let data = if args.delete_data {
            DataPolicy::Delete
        } else {
            DataPolicy::Keep
        };
        (PlanMode::Destroy(data), SecretValues::NotNeeded)
    } else {
        (PlanMode::Apply, SecretValues::Required)
    };
    let Some(mut prepared) = ops::prepare(settings, secrets)? else {
        return Ok(Exit::Error);
    };
    let hosts = ops::selected(&prepared.topology, &args.connect)?;
    let runtime = runtime()?;
    let (plan, locked) = runtime.block_on(async {
        let connector = ops::connector(settings, &prepared.topology, &args.connect).await?;
        let gathered = ops::gather(
            connector,
            &prepared,
            &hosts,
            Some(mode),
            usize::from(args.connect.parallelism),
            Connections::Close,
        )
        .await;
        prepared.settle_certificate(&gathered)?;
        let plan = ops::plan(&prepared, mode, &gathered);
        let locked: Vec<_> = gathered
            .facts
            .iter()
            .filter_map(|(host, facts)| facts.lock.clone().map(|lock| (host.clone(), lock)))
            .collect();
        close_all(gathered.transports.into_values()).await;
        anyhow::Ok((plan, locked))
    })?;
    for (host, fact) in &locked {
        output::errln(&format!(
            "note: {}: another run may be changing it, so this plan may be out of date",
            ops::held(host, fact, settings)
        ));
    }
    if let Some(path) = &args.out {
        if !plan.unreachable.is_empty() {
            anyhow::bail!(Hinted::new(
                format!(
                    "the plan is not saved to `{}`: {} host(s) could not be planned",
                    path.display(),
                    plan.unreachable.len()
                ),
                "a saved plan is applied exactly, so it must cover every host: fix the hosts (or leave them out with `--exclude`) and plan again"
            ));
        }
        if let Some((host, fact)) = locked.first() {
            return Err(ops::held(host, fact, settings).context(format!(
                "the plan is not saved to `{}`: the hosts are locked by another run",
                path.display()
            )));
        }
        let text = serde_json::to_string_pretty(&plan)?;
        infra_exec::files::write_atomic(path, text.as_bytes(), 0o600)
            .map_err(|error| anyhow::anyhow!("cannot write `{}`: {error}", path.display()))?;
    }
    if args.json {
        output::outln(&serde_json::to_string_pretty(&view::json::view(&plan))?);
    } else {
        output::out(&view::text::text(&plan, settings.style.plan_colour()));
        if let Some(path) = &args.out {
            output::outln(&format!(
                "\nSaved the plan to `{}`. To apply exactly it: infra apply {}",
                path.display(),
                path.display()
            ));
        }
    }
    Ok(if !plan.unreachable.is_empty() {
        Exit::Error
    } else if args.detailed_exitcode && plan.has_changes() {
        Exit::ChangesPresent
    } else {
        Exit::Success
    })
}
