//! The stages every command composes: load the topology, render the desired state, connect,
//! gather, plan. `plan`, `apply` and `destroy` are compositions of these; destroy is the same
//! plan in another mode.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use infra_exec::gather::{self, Connections, Gathered};
use infra_exec::ssh::{ConnectOptions, HostKeyPolicy, SshConnector, control};
use infra_exec::transport::Connector;
use infra_plan::facts::GatherRequest;
use infra_plan::hash::Fingerprinter;
use infra_plan::lock::{Lease, LockFact, format_time};
use infra_plan::plan::{self, Plan, PlanInput, PlanMode, TierOrder};
use infra_plan::{DesiredState, Templates};
use infra_topology::{Host, HostName, LoadError, Loaded, Secret, SqlName, Topology};

use crate::certificate::{self, Keep};
use crate::cli::ConnectArgs;
use crate::output::{self, Hinted};
use crate::settings::Settings;

/// Whether a command needs the secrets' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretValues {
    /// Unset variables are errors (validate, render, plan, apply).
    Required,
    /// Unset variables are fine (graph, lab, destroy, force-unlock, state): they stand in as a
    /// placeholder that passes every rule.
    NotNeeded,
}

/// What an unset secret stands in as when its value is not needed.
const PLACEHOLDER_SECRET: &str = "unresolv";

/// Loads the topology, printing warnings. `Ok(None)` when it is invalid (findings printed).
pub fn load(settings: &Settings, secrets: SecretValues) -> anyhow::Result<Option<Loaded>> {
    let environment = &settings.environment;
    let required = |name: &str| environment.get(name).map(str::to_owned);
    let optional = |name: &str| {
        Some(
            environment
                .get(name)
                .map_or_else(|| PLACEHOLDER_SECRET.to_owned(), str::to_owned),
        )
    };
    let lookup: infra_topology::EnvLookup<'_> = match secrets {
        SecretValues::Required => &required,
        SecretValues::NotNeeded => &optional,
    };
    let style = settings.style;
    match infra_topology::load(&settings.file, lookup) {
        Ok(loaded) => {
            output::hide_secrets(loaded.topology.secrets().iter().map(|s| s.expose()));
            if !loaded.warnings.is_empty() {
                eprint!(
                    "{}",
                    output::scrub(&style.diagnostics(&loaded.warnings.render(&loaded.source)))
                );
            }
            Ok(Some(loaded))
        }
        Err(LoadError::Invalid {
            source_file,
            diagnostics,
        }) => {
            eprint!(
                "{}",
                output::scrub(&style.diagnostics(&diagnostics.render(&source_file)))
            );
            let errors = diagnostics.error_count();
            let warnings = diagnostics.warning_count();
            let mut summary = format!(
                "error: `{}` is not valid: {errors} error{}",
                source_file.path().display(),
                if errors == 1 { "" } else { "s" }
            );
            if warnings > 0 {
                summary.push_str(&format!(
                    ", {warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                ));
            }
            output::errln(style.diagnostics(&summary).trim_end());
            let json = diagnostics
                .to_json(&source_file)
                .into_iter()
                .map(|d| serde_json::from_str(&output::scrub(&d.to_string())).unwrap_or(d))
                .collect();
            output::json_diagnostics(settings.output, json);
            Ok(None)
        }
        Err(LoadError::Read(source)) => {
            let path = settings.file.display().to_string();
            let hint = match source.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("create `{path}` (see examples/scale-up/infra.yaml) or pass `-f PATH`")
                }
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => format!(
                    "a topology is a regular YAML file of at most {} KiB",
                    infra_topology::TOPOLOGY_LIMIT / 1024
                ),
                _ => "check the file's permissions".to_owned(),
            };
            Err(anyhow::Error::new(source)).context(Hinted::new(
                format!("cannot read the topology `{path}`"),
                hint,
            ))
        }
    }
}

/// A topology with its desired state, ready to plan.
pub struct Prepared {
    /// The topology.
    pub topology: Topology,
    /// Every host's desired state.
    pub desired: DesiredState,
    /// Fingerprints keyed by the topology's secrets.
    pub fingerprinter: Fingerprinter,
    /// The tier order.
    pub order: TierOrder,
    /// The database accounts' passwords, for SQL steps.
    pub passwords: BTreeMap<SqlName, Secret>,
    /// The templates in force (to render again once the hosts' certificate is known).
    pub templates: Templates,
    /// The edge certificate the desired state was rendered with.
    pub certificate: Option<infra_plan::EdgeCertificate>,
    /// Records of an earlier version's local `.infra/state.json`, moved to the hosts by the
    /// next apply.
    pub local_records: BTreeMap<HostName, infra_plan::record::HostRecord>,
}

/// The local state of earlier versions.
pub fn local_state_path(topology: &Topology) -> std::path::PathBuf {
    topology.base_dir.join(".infra").join("state.json")
}

/// Reads an earlier version's local state, if there is one.
fn local_records(
    topology: &Topology,
) -> anyhow::Result<BTreeMap<HostName, infra_plan::record::HostRecord>> {
    let path = local_state_path(topology);
    if !path.is_file() {
        return Ok(BTreeMap::new());
    }
    let text = infra_topology::read_regular_file(&path, 16 * 1024 * 1024)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    match infra_plan::migrate::read_local_state(&text, topology.name.as_str()) {
        Ok(records) => Ok(records),
        // Another topology file in the same folder wrote it: that one moves it.
        Err(infra_plan::migrate::MigrateError::OtherTopology { .. }) => Ok(BTreeMap::new()),
        Err(error) => Err(anyhow::Error::new(Hinted::new(
            format!("cannot move `{}` to the hosts: {error}", path.display()),
            "fix or remove the file (the hosts keep their own records now)",
        ))),
    }
}

impl Prepared {
    /// Takes the edge certificate the hosts already hold (or renews it), and renders the
    /// desired state again if it is not the one rendered with. Read from the facts just
    /// gathered: no extra round trip.
    pub fn settle_certificate(&mut self, gathered: &Gathered) -> anyhow::Result<()> {
        let settled = certificate::settle(
            &self.topology,
            &self.desired.hosts,
            &gathered.facts,
            self.certificate.clone(),
        )?;
        let same = match (&settled, &self.certificate) {
            (Some(a), Some(b)) => a.chain_pem == b.chain_pem && a.renewal == b.renewal,
            (None, None) => true,
            (Some(_), None) | (None, Some(_)) => false,
        };
        if same {
            if let Some(certificate) = &settled {
                certificate::keep(&self.topology, certificate)?;
            }
        } else {
            self.desired =
                infra_plan::desired_state(&self.topology, &self.templates, settled.as_ref())
                    .context("the topology is valid but its files cannot be rendered")?;
            self.certificate = settled;
        }
        Ok(())
    }
}

/// Loads the topology and renders its desired state.
pub fn prepare(settings: &Settings, secrets: SecretValues) -> anyhow::Result<Option<Prepared>> {
    let Some(loaded) = load(settings, secrets)? else {
        return Ok(None);
    };
    let topology = loaded.topology;
    let templates = templates(&topology)?;
    // Kept on disk only if the hosts do not hold one (see `settle_certificate`).
    let certificate = certificate::generated(&topology, Keep::InMemory)?;
    if let Some(certificate) = &certificate {
        output::hide_secrets([certificate.key_pem.expose()]);
    }
    let desired = infra_plan::desired_state(&topology, &templates, certificate.as_ref())
        .context("the topology is valid but its files cannot be rendered")?;
    let secret_values: Vec<&str> = topology.secrets().iter().map(|s| s.expose()).collect();
    let fingerprinter = Fingerprinter::new(topology.name.as_str(), &secret_values);
    let passwords: BTreeMap<SqlName, Secret> = topology
        .database_users()
        .into_iter()
        .map(|user| (user.name.clone(), user.password.clone()))
        .collect();
    let local_records = local_records(&topology)?;
    Ok(Some(Prepared {
        order: TierOrder::of(&topology),
        topology,
        desired,
        fingerprinter,
        passwords,
        templates,
        certificate,
        local_records,
    }))
}

/// Loads the templates in force for `topology` (built-in, or the user's overrides).
pub fn templates(topology: &Topology) -> anyhow::Result<Templates> {
    Templates::load(topology.templates.as_deref()).context("cannot load the templates")
}

/// The hosts a run works on: all, or `--target`s, minus `--exclude`s; unknown names are errors.
pub fn selected(topology: &Topology, args: &ConnectArgs) -> anyhow::Result<Vec<Host>> {
    let names: Vec<&str> = topology.hosts.iter().map(|h| h.name.as_str()).collect();
    for name in args.targets.iter().chain(&args.excludes) {
        if !names.contains(&name.as_str()) {
            anyhow::bail!(Hinted::new(
                format!(
                    "no host `{}` in the topology",
                    infra_topology::text::visible_line(name)
                ),
                format!("the hosts are: {}", names.join(", "))
            ));
        }
    }
    Ok(topology
        .hosts
        .iter()
        .filter(|h| args.targets.is_empty() || args.targets.iter().any(|t| t == h.name.as_str()))
        .filter(|h| !args.excludes.iter().any(|e| e == h.name.as_str()))
        .cloned()
        .collect())
}

/// How to reach the hosts: a private control folder, the lab's files only when the lab that
/// wrote them runs here, the user's own SSH configuration otherwise.
pub async fn connector(
    settings: &Settings,
    topology: &Topology,
    args: &ConnectArgs,
) -> anyhow::Result<Arc<dyn Connector>> {
    let options = ssh_options(settings, topology, args).await?;
    Ok(Arc::new(SshConnector { options }))
}

/// The SSH options of [`connector`].
pub async fn ssh_options(
    settings: &Settings,
    topology: &Topology,
    args: &ConnectArgs,
) -> anyhow::Result<ConnectOptions> {
    let control_dir =
        control::control_directory(settings.runtime_dir.as_deref(), control::current_uid())
            .map_err(|error| {
                let hint = error.hint();
                anyhow::Error::new(Hinted::new(error.to_string(), hint))
            })?;
    let lab = infra_exec::lab::access(topology).await;
    let options = ConnectOptions {
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: Duration::from_secs(args.connect_timeout),
        command_timeout: Duration::from_secs(args.command_timeout),
        control_dir,
        lab,
        user_config: args
            .ssh_config
            .clone()
            .or_else(|| settings.user_ssh_config.clone()),
        verbose: settings.verbose,
    };
    Ok(options)
}

/// What to ask each host; an apply (`mode`) also judges its preflight (destroy and `status`
/// do not: a host too full or too far off in time can still be cleaned up and looked at).
pub fn requests(
    prepared: &Prepared,
    hosts: &[Host],
    mode: Option<PlanMode>,
) -> Vec<(Host, GatherRequest)> {
    hosts
        .iter()
        .map(|host| {
            let mut request = match prepared.desired.host(&host.name) {
                Some(state) => GatherRequest::for_host(&prepared.topology.name, state),
                None => GatherRequest::for_host(
                    &prepared.topology.name,
                    &infra_plan::HostState::absent(host.name.clone(), host.address),
                ),
            };
            request.preflight = match mode {
                Some(PlanMode::Apply) => Some(infra_plan::preflight::PreflightRequest::for_host(
                    &prepared.topology,
                    &host.name,
                )),
                Some(PlanMode::Destroy(_)) | None => None,
            };
            (host.clone(), request)
        })
        .collect()
}

/// Connects and gathers, printing how long it took.
pub async fn gather(
    connector: Arc<dyn Connector>,
    prepared: &Prepared,
    hosts: &[Host],
    mode: Option<PlanMode>,
    parallelism: usize,
    connections: Connections,
) -> Gathered {
    let started = std::time::Instant::now();
    let gathered = gather::gather(
        connector,
        requests(prepared, hosts, mode),
        parallelism,
        connections,
    )
    .await;
    output::errln(&format!(
        "gathered facts from {} of {} hosts in {:.2} s ({} SSH round trips)",
        gathered.facts.len(),
        hosts.len(),
        started.elapsed().as_secs_f64(),
        gathered.round_trips
    ));
    gathered
}

/// The plan of `mode` from what was gathered.
pub fn plan(prepared: &Prepared, mode: PlanMode, gathered: &Gathered) -> Plan {
    let mut plan = plan::make(PlanInput {
        mode,
        desired: &prepared.desired,
        facts: &gathered.facts,
        unreachable: gathered.unreachable(),
        order: &prepared.order,
        fingerprinter: &prepared.fingerprinter,
        new_lineage: infra_plan::record::new_lineage(),
        local_records: &prepared.local_records,
    });
    plan.resolved = infra_plan::plan::ResolvedName::of(&prepared.topology);
    // What preflight found that does not stop a host (apt's lock held) is said with it.
    for (host, warning) in &gathered.warnings {
        if let Some(entry) = plan.hosts.iter_mut().find(|h| &h.host == host) {
            entry.notes.push(warning.clone());
        }
    }
    plan
}

/// Why a saved plan no longer matches the topology or the hosts.
/// Why a saved plan is stale, and the host that changed when one did.
#[derive(Debug)]
pub struct Stale {
    /// Why.
    pub reason: String,
    /// The host that changed.
    pub host: Option<HostName>,
}

pub fn stale(saved: &Plan, fresh: &Plan) -> Result<(), Stale> {
    let whole = |reason: String| Stale { reason, host: None };
    if saved.format_version != fresh.format_version {
        return Err(whole(format!(
            "it has format {}, this infra writes {}",
            saved.format_version, fresh.format_version
        )));
    }
    if saved.topology != fresh.topology {
        return Err(whole(format!(
            "it is for topology `{}`, not `{}`",
            saved.topology, fresh.topology
        )));
    }
    for then in &saved.resolved {
        let now = fresh
            .resolved
            .iter()
            .find(|r| r.host == then.host && r.key == then.key && r.name == then.name);
        if now.is_none_or(|now| now.address != then.address) {
            return Err(Stale {
                reason: format!(
                    "`{}` ({}'s {}) resolved to {} when it was made, and {}",
                    then.name,
                    then.host,
                    then.key,
                    then.address,
                    now.map_or_else(
                        || "the topology no longer names it".to_owned(),
                        |n| format!("to {} now", n.address)
                    )
                ),
                host: Some(then.host.clone()),
            });
        }
    }
    if saved.desired != fresh.desired {
        return Err(whole(
            "the topology, its templates, its files or its secrets changed since it was made"
                .to_owned(),
        ));
    }
    for host in &saved.hosts {
        let reason = match fresh.host(&host.host) {
            Some(now) if now.expects == host.expects => continue,
            Some(now) if now.expects.serial != host.expects.serial => format!(
                "`{}` was changed by another run since it was made (its record went from serial {} to {})",
                host.host,
                serial_text(host.expects.serial),
                serial_text(now.expects.serial)
            ),
            Some(_) => format!("`{}` changed since it was made", host.host),
            None => format!("`{}` could not be read now", host.host),
        };
        return Err(Stale {
            reason,
            host: Some(host.host.clone()),
        });
    }
    Ok(())
}

fn serial_text(serial: Option<u64>) -> String {
    serial.map_or_else(|| "none".to_owned(), |s| s.to_string())
}

/// The error for a host whose lock another run holds: who, since when, from where, and
/// whether that run looks gone.
pub fn held(host: &HostName, fact: &LockFact, settings: &Settings) -> anyhow::Error {
    let Some(holder) = &fact.holder else {
        return anyhow::Error::new(
            Hinted::new(
                format!("`{host}` is locked, and its lock cannot be read"),
                "look at /var/lib/infra/lock on the host",
            )
            .on(host),
        );
    };
    let mut message = format!(
        "`{host}` is locked by {}@{} (pid {}) for `{}` of topology `{}` since {} (lock ID {})",
        holder.user,
        holder.controller,
        holder.pid,
        holder.operation,
        holder.topology,
        format_time(holder.since),
        holder.id
    );
    if let Some(ci) = &holder.ci {
        message.push_str(&format!(", from {ci}"));
    }
    let same_machine = holder.controller == settings.identity.controller;
    let process_gone =
        same_machine && !std::path::Path::new(&format!("/proc/{}", holder.pid)).exists();
    let hint = match fact.lease {
        Lease::Expired => format!(
            "its holder stopped renewing its lease at {}: that run is dead (killed, or its machine lost). Remove the lock with `infra force-unlock {}`",
            format_time(holder.expires),
            holder.id
        ),
        Lease::Live if process_gone => format!(
            "process {} no longer runs on this machine: that run is dead. Remove the lock with `infra force-unlock {}`",
            holder.pid, holder.id
        ),
        Lease::Live => format!(
            "wait for it (`--lock-timeout 5m`), or if that run is gone: `infra force-unlock {}`",
            holder.id
        ),
    };
    if matches!(fact.lease, Lease::Expired) || process_gone {
        message.push_str(": its holder is dead");
    }
    anyhow::Error::new(Hinted::new(message, hint).on(host))
}

#[cfg(test)]
mod tests {
    use infra_plan::hash::{Fingerprint, Sha256};
    use infra_plan::plan::{FORMAT_VERSION, Plan, PlanMode, ResolvedName};
    use infra_topology::{HostName, Name};

    fn plan(web1_is: &str) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.to_owned(),
            mode: PlanMode::Apply,
            topology: Name::new("t").expect("name"),
            desired: Fingerprint::from(&Sha256::of(b"the same desired state")),
            hosts: Vec::new(),
            waves: Vec::new(),
            unreachable: Vec::new(),
            resolved: vec![ResolvedName {
                host: HostName::new("web1".to_owned()).expect("name"),
                key: "address".to_owned(),
                name: "web1.example.test".to_owned(),
                address: web1_is.parse().expect("address"),
            }],
        }
    }

    #[test]
    fn a_saved_plan_is_stale_once_a_host_name_resolves_elsewhere() {
        assert!(super::stale(&plan("10.0.0.21"), &plan("10.0.0.21")).is_ok());
        let stale = super::stale(&plan("10.0.0.21"), &plan("10.0.0.99")).expect_err("moved");
        assert_eq!(
            stale.reason,
            "`web1.example.test` (web1's address) resolved to 10.0.0.21 when it was made, and to 10.0.0.99 now"
        );
        assert_eq!(stale.host.map(|h| h.to_string()).as_deref(), Some("web1"));
    }
}
