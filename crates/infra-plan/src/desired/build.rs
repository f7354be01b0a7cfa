//! Topology + templates -> the desired state of every host.

use infra_topology::{
    AccountName, CertificateSource, FirewallMode, Host, RemotePath, Secret, Tier, TlsMode,
    Topology, UnitName,
};

use super::tiers;
use super::{
    Check, DesiredState, Directory, Display, FirewallWanted, HostState, ManagedFile, Mode, Notify,
    Origin, RestartEffect, Sensitivity, Service, Trigger,
};
use crate::RenderError;
use crate::context::{self, Secrets};
use crate::hash::Sha256;
use crate::paths;
use crate::templates::Templates;

/// The edge certificate: a PEM chain and its private key.
#[derive(Debug, Clone)]
pub struct EdgeCertificate {
    /// The certificate chain, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: Secret,
    /// Why this certificate replaces the one on the hosts, when it does (a renewal).
    pub renewal: Option<String>,
}

/// Computes every host's desired state. `generated_certificate` is used when the topology asks
/// for TLS without giving a certificate (the caller generates or reads it back).
pub fn desired_state(
    topology: &Topology,
    templates: &Templates,
    generated_certificate: Option<&EdgeCertificate>,
) -> Result<DesiredState, RenderError> {
    let certificate = edge_certificate(topology, generated_certificate)?;
    let mut hosts = Vec::new();
    for host in &topology.hosts {
        hosts.push(host_state(topology, templates, host, certificate.as_ref())?);
    }
    let order = |h: &HostState| {
        h.tiers
            .first()
            .copied()
            .map_or(Tier::ALL.len(), |t| t as usize)
    };
    hosts.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.name.cmp(&b.name)));
    Ok(DesiredState {
        topology: topology.name.clone(),
        hosts,
    })
}

fn edge_certificate(
    topology: &Topology,
    generated: Option<&EdgeCertificate>,
) -> Result<Option<EdgeCertificate>, RenderError> {
    let Some(lb) = topology
        .load_balancer
        .as_ref()
        .filter(|lb| lb.tls.mode != TlsMode::Off)
    else {
        return Ok(None);
    };
    match &lb.tls.certificate {
        CertificateSource::Generated => generated
            .cloned()
            .map(Some)
            .ok_or(RenderError::MissingCertificate),
        CertificateSource::Files { cert, key } => {
            let chain_pem =
                infra_topology::read_regular_file(cert, 1024 * 1024).map_err(|source| {
                    RenderError::Read {
                        path: cert.clone(),
                        source,
                    }
                })?;
            Ok(Some(EdgeCertificate {
                chain_pem,
                key_pem: key.clone(),
                renewal: None,
            }))
        }
    }
}

/// Renders `template` for one host twice (secrets shown and hidden) and builds the file.
pub(super) struct Renderer<'a> {
    templates: &'a Templates,
    revealed: serde_json::Value,
    redacted: serde_json::Value,
}

/// What a rendered file is for: its path, mode, check and the service it notifies.
pub(super) struct FileSpec {
    /// Where it goes.
    pub path: RemotePath,
    /// Its mode (a sensitive file loses every bit for others).
    pub mode: u32,
    /// How its host checks it.
    pub check: Option<Check>,
    /// The service it notifies.
    pub notify: Option<(UnitName, Trigger)>,
}

impl Renderer<'_> {
    pub(super) fn file(&self, template: &str, spec: FileSpec) -> Result<ManagedFile, RenderError> {
        let content = with_final_newline(self.templates.render(template, &self.revealed)?);
        let display = with_final_newline(self.templates.render(template, &self.redacted)?);
        let sensitivity = if content == display {
            Sensitivity::Plain
        } else {
            Sensitivity::Sensitive
        };
        Ok(managed_file(
            spec,
            content.into_bytes(),
            Display::Text(display),
            Origin::Template(template.to_owned()),
            sensitivity,
        ))
    }
}

/// A root-owned file. A file that holds a secret is never readable by anyone but its owner.
pub(super) fn managed_file(
    spec: FileSpec,
    content: Vec<u8>,
    display: Display,
    origin: Origin,
    sensitivity: Sensitivity,
) -> ManagedFile {
    let mode = match sensitivity {
        Sensitivity::Sensitive => spec.mode & 0o700,
        Sensitivity::Plain => spec.mode,
    };
    ManagedFile {
        path: spec.path,
        owner: root(),
        group: root(),
        mode: Mode(mode),
        sha256: Sha256::of(&content),
        content,
        display,
        sensitivity,
        origin,
        check: spec.check,
        notify: spec.notify.map(|(unit, trigger)| Notify { unit, trigger }),
        note: None,
    }
}

/// `root`, the owner of everything `infra` writes but MariaDB's log folder.
pub(super) fn root() -> AccountName {
    AccountName::new("root").expect("`root` is a valid account name")
}

fn host_state(
    topology: &Topology,
    templates: &Templates,
    host: &Host,
    certificate: Option<&EdgeCertificate>,
) -> Result<HostState, RenderError> {
    let renderer = Renderer {
        templates,
        revealed: context::for_host(topology, host, Secrets::Reveal),
        redacted: context::for_host(topology, host, Secrets::Redact),
    };
    let tiers = topology.tiers_of(&host.name);
    let mut state = HostState::absent(host.name.clone(), host.address);
    state.tiers.clone_from(&tiers);
    for tier in &tiers {
        match tier {
            Tier::Database => tiers::database(topology, host, &renderer, &mut state)?,
            Tier::App => tiers::app(topology, &renderer, &mut state)?,
            Tier::Web => tiers::web(topology, &renderer, certificate, &mut state)?,
            Tier::LoadBalancer => {
                tiers::load_balancer(topology, &renderer, certificate, &mut state)?;
            }
            Tier::Monitoring => tiers::monitoring(topology, &renderer, &mut state)?,
        }
    }
    tiers::exporters(topology, &renderer, &tiers, &mut state)?;
    match topology.firewall.mode {
        FirewallMode::Managed => firewall(&renderer, &mut state)?,
        FirewallMode::Unmanaged => {}
    }
    state.packages.sort();
    state.packages.dedup();
    state.directories.sort_by(|a, b| a.path.cmp(&b.path));
    state.directories.dedup_by(|a, b| a.path == b.path);
    Ok(state)
}

fn firewall(renderer: &Renderer<'_>, state: &mut HostState) -> Result<(), RenderError> {
    state.packages.push(package("nftables"));
    state.directories.push(directory(paths::etc_infra(), 0o755));
    state.firewall = FirewallWanted::Loaded;
    state.files.push(renderer.file(
        "firewall.nft",
        FileSpec {
            path: paths::firewall_nft(),
            mode: 0o600,
            check: Some(Check::Nftables),
            notify: None,
        },
    )?);
    state.files.push(renderer.file(
        "infra-firewall.service",
        FileSpec {
            path: paths::firewall_unit(),
            mode: 0o644,
            check: Some(Check::SystemdUnit),
            notify: None,
        },
    )?);
    // The table itself is loaded by `nft -f` when its file changes (see the plan); the unit
    // only loads it at boot, so it is enabled but never restarted for a change.
    state.services.push(Service {
        unit: paths::firewall_unit_name(),
        on_change: Trigger::Reload,
        health: None,
        restart: RestartEffect::Unnoticed,
    });
    Ok(())
}

/// A root-owned folder.
pub(super) fn directory(path: RemotePath, mode: u32) -> Directory {
    Directory {
        path,
        owner: root(),
        group: root(),
        mode: Mode(mode),
    }
}

/// A package name written in `infra`'s own source.
pub(super) fn package(name: &'static str) -> infra_topology::PackageName {
    infra_topology::PackageName::new(name).expect("a package literal in infra's source is valid")
}

/// Config files end with a line break (HAProxy warns otherwise, and diffs read better).
fn with_final_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
