//! `infra status`: each host's services and health checks (checked on the host), which load
//! balancer holds the VIP, and the edge check through it.

use infra_exec::gather::{Connections, close_all};
use infra_exec::hosts::for_each_host;
use infra_exec::ssh::Connection;
use infra_exec::status::{self, StatusLine};
use infra_topology::{HostName, Topology};

use super::runtime;
use crate::cli::StatusArgs;
use crate::edge::{Answer, Edge};
use crate::exit::Exit;
use crate::ops::{self, Prepared, SecretValues};
use crate::settings::Settings;

/// Which load balancer holds the VIP.
#[derive(Debug, Clone, serde::Serialize)]
struct VipHolder {
    /// The VIP.
    vip: String,
    /// The load balancers that hold it (exactly one when all is well).
    holders: Vec<HostName>,
    /// Exactly one holds it.
    ok: bool,
}

/// The edge check's result.
#[derive(Debug, Clone, serde::Serialize)]
struct EdgeStatus {
    ok: bool,
    answers: Vec<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Prints each host's services and health checks, the VIP's holder and the edge check; exit 1
/// when any is not fine.
pub fn run(settings: &Settings, args: &StatusArgs) -> anyhow::Result<Exit> {
    let Some(mut prepared) = ops::prepare(settings, SecretValues::Required)? else {
        return Ok(Exit::Error);
    };
    let hosts = ops::selected(&prepared.topology, &args.connect)?;
    let parallelism = usize::from(args.connect.parallelism);
    let runtime = runtime()?;
    let (results, edge) = runtime.block_on(async {
        let options = ops::ssh_options(settings, &prepared.topology, &args.connect).await?;
        let items: Vec<_> = prepared
            .desired
            .hosts
            .iter()
            .filter_map(|state| {
                let host = hosts.iter().find(|h| h.name == state.name)?.clone();
                let script = status::script(&prepared.topology, state);
                Some((host.name.clone(), (host, script)))
            })
            .collect();
        let results = for_each_host(items, parallelism, |_, (host, script)| {
            let options = options.clone();
            async move {
                let connection = Connection::open(&host, &options).await?;
                let output = connection.run_script(&script).await;
                connection.close().await;
                Ok(status::parse(&output?.stdout))
            }
        })
        .await;
        let edge = if args.edge.no_edge_check {
            None
        } else {
            Some(edge_status(settings, args, &mut prepared, &hosts, parallelism).await)
        };
        anyhow::Ok((results, edge))
    })?;
    let vip = vip_holder(&prepared.topology, &results);
    let host_lines_fine = results
        .iter()
        .all(|(_, r)| r.as_ref().is_ok_and(|lines| lines.iter().all(|l| l.ok)));
    let all_fine =
        host_lines_fine && vip.as_ref().is_none_or(|v| v.ok) && edge.as_ref().is_none_or(|e| e.ok);
    if args.json {
        let hosts: Vec<serde_json::Value> = results
            .iter()
            .map(|(host, result)| match result {
                Ok(lines) => serde_json::json!({
                    "host": host,
                    "ok": lines.iter().all(|l| l.ok),
                    "checks": lines.iter().map(|l| serde_json::json!({
                        "kind": l.kind, "name": l.name, "ok": l.ok, "detail": l.detail,
                    })).collect::<Vec<_>>(),
                }),
                Err(error) => serde_json::json!({
                    "host": host, "ok": false, "error": error.to_string(),
                }),
            })
            .collect();
        let monitoring = monitoring_summary(&prepared.topology, &results);
        crate::outln!(
            "{}",
            serde_json::json!({ "ok": all_fine, "hosts": hosts, "vip": vip, "edge": edge, "monitoring": monitoring })
        );
    } else {
        print_text(&results, vip.as_ref(), edge.as_ref());
    }
    Ok(if all_fine { Exit::Success } else { Exit::Error })
}

fn print_text(
    results: &[(
        HostName,
        Result<Vec<StatusLine>, infra_exec::transport::HostError>,
    )],
    vip: Option<&VipHolder>,
    edge: Option<&EdgeStatus>,
) {
    let row = |host: &str, kind: &str, name: &str, ok: bool, detail: &str| {
        crate::outln!(
            "{host:<10} {kind:<8} {:<38} {:<5} {}",
            infra_topology::text::visible_line(name),
            if ok { "ok" } else { "FAIL" },
            infra_topology::text::visible_line(detail)
        );
    };
    crate::outln!(
        "{:<10} {:<8} {:<38} {:<5} detail",
        "host",
        "kind",
        "name",
        "state"
    );
    for (host, result) in results {
        match result {
            Ok(lines) => {
                for line in lines {
                    row(host.as_str(), &line.kind, &line.name, line.ok, &line.detail);
                }
            }
            Err(error) => row(host.as_str(), "host", "ssh", false, &error.to_string()),
        }
    }
    if let Some(vip) = vip {
        let detail = match vip.holders.as_slice() {
            [] => format!("no load balancer holds {}", vip.vip),
            [one] => format!("{one} holds {}", vip.vip),
            many => format!(
                "{} all hold {}: split brain",
                many.iter()
                    .map(HostName::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                vip.vip
            ),
        };
        row("(vip)", "check", "vip holder", vip.ok, &detail);
    }
    if let Some(edge) = edge {
        if let Some(error) = &edge.error {
            row("(edge)", "check", "edge", false, error);
        }
        for answer in &edge.answers {
            row("(edge)", "check", &answer.url, answer.ok, &answer.detail);
        }
    }
}

/// What each monitoring host's Prometheus says: its targets up out of all, and the alerts
/// that fire (`None`: no monitoring tier).
fn monitoring_summary(
    topology: &Topology,
    results: &[(
        HostName,
        Result<Vec<StatusLine>, infra_exec::transport::HostError>,
    )],
) -> Option<Vec<serde_json::Value>> {
    let monitoring = topology.monitoring.as_ref()?;
    Some(
        results
            .iter()
            .filter(|(host, _)| monitoring.hosts.contains(host))
            .map(|(host, result)| {
                let lines = result.as_deref().unwrap_or_default();
                let targets: Vec<&StatusLine> =
                    lines.iter().filter(|l| l.kind == "target").collect();
                let firing: Vec<serde_json::Value> = lines
                    .iter()
                    .filter(|l| l.kind == "alert" && !l.ok)
                    .map(|l| serde_json::json!({ "alert": l.name, "detail": l.detail }))
                    .collect();
                serde_json::json!({
                    "host": host,
                    "answered": result.is_ok()
                        && !lines.iter().any(|l| l.kind == "check" && l.name.starts_with(status::PROMETHEUS_API)),
                    "targets": targets.len(),
                    "targets_up": targets.iter().filter(|l| l.ok).count(),
                    "down": targets.iter().filter(|l| !l.ok).map(|l| l.name.as_str()).collect::<Vec<_>>(),
                    "firing": firing,
                })
            })
            .collect(),
    )
}

/// Which load balancers said they hold the VIP (`None`: no load balancer tier).
fn vip_holder(
    topology: &Topology,
    results: &[(
        HostName,
        Result<Vec<StatusLine>, infra_exec::transport::HostError>,
    )],
) -> Option<VipHolder> {
    let lb = topology.load_balancer.as_ref()?;
    let holders: Vec<HostName> = results
        .iter()
        .filter(|(host, _)| lb.hosts.contains(host))
        .filter(|(_, result)| {
            result.as_ref().is_ok_and(|lines| {
                lines
                    .iter()
                    .any(|l| l.name == "vip" && l.detail.starts_with("holds "))
            })
        })
        .map(|(host, _)| host.clone())
        .collect();
    Some(VipHolder {
        vip: lb.vip.addr().to_string(),
        ok: holders.len() == 1,
        holders,
    })
}

/// The edge check, with the certificate the load balancers hold as its trust root.
async fn edge_status(
    settings: &Settings,
    args: &StatusArgs,
    prepared: &mut Prepared,
    hosts: &[infra_topology::Host],
    parallelism: usize,
) -> EdgeStatus {
    let failed = |error: String| EdgeStatus {
        ok: false,
        answers: Vec::new(),
        error: Some(error),
    };
    // A generated certificate is trusted as the hosts hold it: read it the way plan does, from
    // the hosts that hold it only (the load balancers, or the web tier in passthrough).
    if crate::certificate::wants_generated(&prepared.topology) {
        let holders: Vec<infra_topology::Host> = hosts
            .iter()
            .filter(|h| {
                prepared
                    .desired
                    .host(&h.name)
                    .is_some_and(|state| state.edge_certificate.is_some())
            })
            .cloned()
            .collect();
        let connector = match ops::connector(settings, &prepared.topology, &args.connect).await {
            Ok(connector) => connector,
            Err(error) => return failed(error.to_string()),
        };
        let gathered = ops::gather(
            connector,
            prepared,
            &holders,
            None,
            parallelism,
            Connections::Close,
        )
        .await;
        let settled = prepared.settle_certificate(&gathered);
        close_all(gathered.transports.into_values()).await;
        if let Err(error) = settled {
            return failed(format!("{error:#}"));
        }
    }
    let chain = prepared.certificate.as_ref().map(|c| c.chain_pem.as_str());
    let edge = match Edge::of(&prepared.topology, chain, args.edge.edge_url.as_deref()) {
        Ok(Some(edge)) => edge,
        Ok(None) => {
            return EdgeStatus {
                ok: true,
                answers: Vec::new(),
                error: None,
            };
        }
        Err(error) => return failed(error.to_string()),
    };
    match edge.probe().await {
        Ok(answers) => EdgeStatus {
            ok: answers.iter().all(|a| a.ok),
            answers,
            error: None,
        },
        Err(error) => failed(error.to_string()),
    }
}
