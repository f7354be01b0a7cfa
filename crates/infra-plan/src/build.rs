//! Topology + templates -> the desired state of every host.

use std::path::{Path, PathBuf};

use infra_topology::{CertificateSource, Host, Secret, Tier, TlsMode, Topology};

use crate::RenderError;
use crate::context::{self, Secrets};
use crate::desired::{
    Check, DatabaseAccount, DatabaseObjects, DatabaseRole, DesiredState, Directory, HostState,
    ManagedFile, Mode, Origin, ReplicationSource, Service, Trigger, hex,
};
use crate::paths;
use crate::templates::Templates;

/// The edge certificate: a PEM chain and its private key.
#[derive(Debug, Clone)]
pub struct EdgeCertificate {
    /// The certificate chain, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: Secret,
}

/// Computes every host's desired state. `generated_certificate` is used when the topology asks
/// for TLS without giving a certificate (the caller generates and keeps it).
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
            let chain_pem = fs_err::read_to_string(cert).map_err(|source| RenderError::Read {
                path: cert.clone(),
                source,
            })?;
            Ok(Some(EdgeCertificate {
                chain_pem,
                key_pem: key.clone(),
            }))
        }
    }
}

/// Renders `template` for `host` twice (secrets shown and hidden) and builds the file.
struct Renderer<'a> {
    templates: &'a Templates,
    revealed: serde_json::Value,
    redacted: serde_json::Value,
}

impl Renderer<'_> {
    fn file(
        &self,
        template: &str,
        path: String,
        mode: u32,
        check: Option<Check>,
        notify: Option<(&str, Trigger)>,
    ) -> Result<ManagedFile, RenderError> {
        let content = with_final_newline(self.templates.render(template, &self.revealed)?);
        let display = with_final_newline(self.templates.render(template, &self.redacted)?);
        let sensitive = content != display;
        // A file that holds a secret is never readable by anyone but its owner.
        let mode = if sensitive { mode & 0o700 } else { mode };
        let origin = Origin::Template(template.to_owned());
        Ok(ManagedFile::new(
            path,
            mode,
            content.into_bytes(),
            Some(display),
            origin,
            check,
            notify,
            sensitive,
        ))
    }
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
    let mut state = HostState {
        name: host.name.clone(),
        address: host.address,
        tiers: tiers.clone(),
        packages: Vec::new(),
        directories: Vec::new(),
        files: Vec::new(),
        absent_files: Vec::new(),
        services: Vec::new(),
        database: None,
    };
    for tier in &tiers {
        match tier {
            Tier::Database => database(topology, host, &renderer, &mut state)?,
            Tier::App => app(topology, &renderer, &mut state)?,
            Tier::Web => web(topology, &renderer, certificate, &mut state)?,
            Tier::LoadBalancer => load_balancer(topology, &renderer, certificate, &mut state)?,
        }
    }
    if topology.firewall.enabled {
        state.packages.push("nftables".to_owned());
        state.directories.push(directory("/etc/infra", 0o755));
        state.files.push(renderer.file(
            "firewall.nft",
            paths::FIREWALL_NFT.to_owned(),
            0o600,
            Some(Check::Nftables),
            Some(("infra-firewall.service", Trigger::Reload)),
        )?);
        state.files.push(renderer.file(
            "infra-firewall.service",
            paths::FIREWALL_UNIT.to_owned(),
            0o644,
            Some(Check::SystemdUnit),
            Some(("infra-firewall.service", Trigger::Restart)),
        )?);
        state
            .services
            .push(service("infra-firewall.service", Trigger::Reload));
    }
    state.packages.sort();
    state.packages.dedup();
    Ok(state)
}

fn directory(path: &str, mode: u32) -> Directory {
    Directory {
        path: path.to_owned(),
        owner: "root".to_owned(),
        group: "root".to_owned(),
        mode: Mode(mode),
    }
}

fn service(unit: &str, on_change: Trigger) -> Service {
    Service {
        unit: unit.to_owned(),
        on_change,
    }
}

fn load_balancer(
    topology: &Topology,
    renderer: &Renderer<'_>,
    certificate: Option<&EdgeCertificate>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    state
        .packages
        .extend(["haproxy".to_owned(), "keepalived".to_owned()]);
    if let (Some(certificate), Some(lb)) = (certificate, &topology.load_balancer)
        && lb.tls.mode == TlsMode::Terminate
    {
        state
            .directories
            .push(directory("/etc/haproxy/certs", 0o700));
        let bundle = format!(
            "{}\n{}\n",
            certificate.chain_pem.trim_end(),
            certificate.key_pem.expose().trim_end()
        );
        let display = format!(
            "{}\n{}\n",
            certificate.chain_pem.trim_end(),
            context::PLACEHOLDER
        );
        state.files.push(ManagedFile::new(
            paths::haproxy_pem(topology),
            0o600,
            bundle.into_bytes(),
            Some(display),
            Origin::Generated("edge certificate and key".to_owned()),
            None,
            Some(("haproxy.service", Trigger::Reload)),
            true,
        ));
    }
    state.files.push(renderer.file(
        "haproxy.cfg",
        paths::HAPROXY_CFG.to_owned(),
        0o644,
        Some(Check::Haproxy),
        Some(("haproxy.service", Trigger::Reload)),
    )?);
    state.files.push(renderer.file(
        "keepalived.conf",
        paths::KEEPALIVED_CONF.to_owned(),
        0o600,
        Some(Check::Keepalived),
        Some(("keepalived.service", Trigger::Reload)),
    )?);
    state
        .services
        .push(service("haproxy.service", Trigger::Reload));
    state
        .services
        .push(service("keepalived.service", Trigger::Reload));
    Ok(())
}

fn web(
    topology: &Topology,
    renderer: &Renderer<'_>,
    certificate: Option<&EdgeCertificate>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(web) = &topology.web else {
        return Ok(());
    };
    state.packages.push("nginx".to_owned());
    if let (Some(certificate), Some(lb)) = (certificate, &topology.load_balancer)
        && lb.tls.mode == TlsMode::Passthrough
    {
        state.directories.push(directory("/etc/nginx/tls", 0o700));
        state.files.push(ManagedFile::new(
            paths::nginx_certificate(topology),
            0o644,
            certificate.chain_pem.clone().into_bytes(),
            Some(certificate.chain_pem.clone()),
            Origin::Generated("edge certificate".to_owned()),
            None,
            Some(("nginx.service", Trigger::Reload)),
            false,
        ));
        state.files.push(ManagedFile::new(
            paths::nginx_key(topology),
            0o600,
            certificate.key_pem.expose().as_bytes().to_vec(),
            Some(context::PLACEHOLDER.to_owned()),
            Origin::Generated("edge certificate key".to_owned()),
            None,
            Some(("nginx.service", Trigger::Reload)),
            true,
        ));
    }
    if let Some(static_dir) = &web.static_dir {
        upload(topology, static_dir, &web.root, None, state)?;
    } else {
        state.directories.push(directory(&web.root, 0o755));
    }
    state.files.push(renderer.file(
        "nginx-site.conf",
        paths::nginx_site(topology),
        0o644,
        Some(Check::Nginx),
        Some(("nginx.service", Trigger::Reload)),
    )?);
    state
        .absent_files
        .push(paths::NGINX_DEFAULT_SITE.to_owned());
    state
        .services
        .push(service("nginx.service", Trigger::Reload));
    Ok(())
}

fn app(
    topology: &Topology,
    renderer: &Renderer<'_>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(app) = &topology.app else {
        return Ok(());
    };
    let unit = format!("{}.service", app.name);
    state.packages.extend(app.packages.iter().cloned());
    if let Some(source) = &app.source {
        upload(
            topology,
            source,
            &app.install_dir,
            Some((&unit, Trigger::Restart)),
            state,
        )?;
    } else {
        state.directories.push(directory(&app.install_dir, 0o755));
    }
    state
        .directories
        .push(directory(&format!("/etc/{}", app.name), 0o755));
    state.files.push(renderer.file(
        "app.env",
        paths::app_environment(&app.name),
        0o600,
        None,
        Some((&unit, Trigger::Restart)),
    )?);
    state.files.push(renderer.file(
        "app.service",
        paths::app_unit(&app.name),
        0o644,
        Some(Check::SystemdUnit),
        Some((&unit, Trigger::Restart)),
    )?);
    state.services.push(service(&unit, Trigger::Restart));
    Ok(())
}

fn database(
    topology: &Topology,
    host: &Host,
    renderer: &Renderer<'_>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(db) = &topology.database else {
        return Ok(());
    };
    let role = if db.primary == host.name {
        DatabaseRole::Primary
    } else {
        DatabaseRole::Replica
    };
    state.packages.push("mariadb-server".to_owned());
    // The binary and relay logs live here; Debian's package does not always create it.
    state.directories.push(Directory {
        path: "/var/log/mysql".to_owned(),
        owner: "mysql".to_owned(),
        group: "mysql".to_owned(),
        mode: Mode(0o750),
    });
    let template = match role {
        DatabaseRole::Primary => "mariadb-primary.cnf",
        DatabaseRole::Replica => "mariadb-replica.cnf",
    };
    state.files.push(renderer.file(
        template,
        paths::MARIADB_CNF.to_owned(),
        0o644,
        Some(Check::Mariadb),
        Some(("mariadb.service", Trigger::Restart)),
    )?);
    state
        .services
        .push(service("mariadb.service", Trigger::Restart));
    let addresses = |tier: Tier| -> Vec<String> {
        topology
            .tier_hosts(tier)
            .iter()
            .map(|h| h.address.to_string())
            .collect()
    };
    let mut users = vec![DatabaseAccount {
        name: db.app_user.name.clone(),
        hosts: addresses(Tier::App),
        privileges: "ALL PRIVILEGES".to_owned(),
        on: format!("{}.*", db.name),
        password_sha256: hex(&sha2_of(db.app_user.password.expose())),
        password: db.app_user.password.clone(),
    }];
    if let Some(replication) = &db.replication_user {
        users.push(DatabaseAccount {
            name: replication.name.clone(),
            hosts: db
                .replicas
                .iter()
                .filter_map(|r| topology.host(r))
                .map(|h| h.address.to_string())
                .collect(),
            privileges: "REPLICATION SLAVE".to_owned(),
            on: "*.*".to_owned(),
            password_sha256: hex(&sha2_of(replication.password.expose())),
            password: replication.password.clone(),
        });
    }
    let replication_source = match (role, &db.replication_user, topology.host(&db.primary)) {
        (DatabaseRole::Replica, Some(user), Some(primary)) => Some(ReplicationSource {
            host: primary.address.to_string(),
            port: db.port,
            user: user.name.clone(),
            password: user.password.clone(),
        }),
        _ => None,
    };
    state.database = Some(DatabaseObjects {
        role,
        database: db.name.clone(),
        users,
        replication_source,
    });
    Ok(())
}

/// Config files end with a line break (HAProxy warns otherwise, and diffs read better).
fn with_final_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn sha2_of(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

/// Adds every regular file under `local` as a file under `remote`, and its folders.
fn upload(
    topology: &Topology,
    local: &Path,
    remote: &str,
    notify: Option<(&str, Trigger)>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    state.directories.push(directory(remote, 0o755));
    let mut pending = vec![(local.to_path_buf(), remote.to_owned())];
    while let Some((dir, target)) = pending.pop() {
        let read = fs_err::read_dir(&dir).map_err(|source| RenderError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut entries: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let remote_path = format!("{target}/{name}");
            if !infra_topology::rules::is_safe_absolute_path(&remote_path) {
                return Err(RenderError::UnsafeUploadName { path });
            }
            let metadata = fs_err::symlink_metadata(&path).map_err(|source| RenderError::Read {
                path: path.clone(),
                source,
            })?;
            if metadata.is_dir() {
                state.directories.push(directory(&remote_path, 0o755));
                pending.push((path, remote_path));
            } else if metadata.is_file() {
                let content = fs_err::read(&path).map_err(|source| RenderError::Read {
                    path: path.clone(),
                    source,
                })?;
                let display = String::from_utf8(content.clone()).ok();
                let relative = path.strip_prefix(&topology.base_dir).unwrap_or(&path);
                let mode = if is_executable(&metadata) {
                    0o755
                } else {
                    0o644
                };
                state.files.push(ManagedFile::new(
                    remote_path,
                    mode,
                    content,
                    display,
                    Origin::Upload(relative.display().to_string()),
                    None,
                    notify,
                    false,
                ));
            }
        }
    }
    state.directories.sort_by(|a, b| a.path.cmp(&b.path));
    state.directories.dedup_by(|a, b| a.path == b.path);
    Ok(())
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}
