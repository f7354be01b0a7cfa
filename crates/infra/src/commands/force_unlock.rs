//! `infra force-unlock ID`: removes the hosts' lock `ID` (left by a run that is gone), from
//! any clone: the lock lives on the hosts, not in a working copy.

use std::sync::Arc;

use infra_exec::gather::close_all;
use infra_exec::hosts::for_each_host;
use infra_exec::transport::{LockAnswer, LockRequest};
use infra_plan::lock::LockId;

use super::runtime;
use crate::cli::ForceUnlockArgs;
use crate::exit::Exit;
use crate::ops::{self, SecretValues};
use crate::output::{self, Hinted};
use crate::settings::Settings;

/// Runs `infra force-unlock ID`.
pub fn run(settings: &Settings, args: &ForceUnlockArgs) -> anyhow::Result<Exit> {
    let Some(id) = LockId::parse(&args.id) else {
        anyhow::bail!(Hinted::new(
            format!(
                "`{}` is not a lock ID",
                infra_topology::text::visible_line(&args.id)
            ),
            "a lock ID is 16 hex digits, as the run that found the hosts locked printed it"
        ));
    };
    let Some(loaded) = ops::load(settings, SecretValues::NotNeeded)? else {
        return Ok(Exit::Error);
    };
    let topology = loaded.topology;
    let hosts = ops::selected(&topology, &args.connect)?;
    let parallelism = usize::from(args.connect.parallelism);
    let runtime = runtime()?;
    let results = runtime.block_on(async {
        let connector = ops::connector(settings, &topology, &args.connect).await?;
        let items: Vec<_> = hosts.iter().map(|h| (h.name.clone(), h.clone())).collect();
        let id = id.clone();
        let results = for_each_host(items, parallelism, move |_, host| {
            let connector = Arc::clone(&connector);
            let request = LockRequest::Release { id: id.clone() };
            async move {
                let transport = connector.connect(&host).await?;
                let answer = transport.lock(&request).await;
                close_all([transport]).await;
                answer
            }
        })
        .await;
        anyhow::Ok(results)
    })?;
    let mut released = 0;
    let mut failed = false;
    for (host, result) in results {
        match result {
            Ok(LockAnswer::Released) => {
                released += 1;
                output::outln(&format!("{host}: removed lock {id}"));
            }
            Ok(LockAnswer::NotHolder(Some(fact))) => {
                let other = fact.holder.map_or_else(
                    || "an unreadable lock".to_owned(),
                    |h| format!("lock {} of {}@{}", h.id, h.user, h.controller),
                );
                output::outln(&format!(
                    "{host}: not locked by {id} (it holds {other}): left alone"
                ));
            }
            Ok(
                LockAnswer::NotHolder(None)
                | LockAnswer::Acquired
                | LockAnswer::Held(_)
                | LockAnswer::SerialMoved { .. },
            ) => {
                output::outln(&format!("{host}: not locked"));
            }
            Err(error) => {
                failed = true;
                output::errln(&format!("error: {host}: {error}"));
            }
        }
    }
    if released == 0 && !failed {
        anyhow::bail!(Hinted::new(
            format!("no host holds lock {id}"),
            "the lock ID is the one in the error of the run that found the hosts locked"
        ));
    }
    Ok(if failed { Exit::Error } else { Exit::Success })
}
