//! What each tier puts on its hosts.

use infra_topology::{
    AccountName, Host, Monitoring, RemotePath, SqlAccount, Tier, TlsMode, Topology,
};

use super::build::{EdgeCertificate, FileSpec, Renderer, directory, managed_file, package};
use super::upload::upload;
use super::{
    AbsentFile, Check, DatabaseAccount, DatabaseObjects, DatabaseRole, Directory, Display, Grant,
    Health, HealthGate, HostState, Mode, Origin, ReplicationSource, RestartEffect, Sensitivity,
    Service, Trigger,
};
use crate::RenderError;
use crate::context;
use crate::paths;

pub(super) fn load_balancer(
    topology: &Topology,
    renderer: &Renderer<'_>,
    certificate: Option<&EdgeCertificate>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let haproxy = paths::unit("haproxy.service");
    let keepalived = paths::unit("keepalived.service");
    state
        .packages
        .extend([package("haproxy"), package("keepalived")]);
    if let (Some(certificate), Some(lb)) = (certificate, &topology.load_balancer)
        && lb.tls.mode == TlsMode::Terminate
    {
        state.directories.push(directory(
            RemotePath::from_static("/etc/haproxy/certs"),
            0o700,
        ));
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
        state.edge_certificate = Some(super::CertificateFiles::Bundle {
            path: paths::haproxy_pem(topology),
        });
        let mut bundle_file = managed_file(
            FileSpec {
                path: paths::haproxy_pem(topology),
                mode: 0o600,
                check: None,
                notify: Some((haproxy.clone(), Trigger::Reload)),
            },
            bundle.into_bytes(),
            Display::Text(display),
            Origin::Generated("edge certificate and key".to_owned()),
            Sensitivity::Sensitive,
        );
        bundle_file.note.clone_from(&certificate.renewal);
        state.files.push(bundle_file);
    }
    state.files.push(renderer.file(
        "haproxy.cfg",
        FileSpec {
            path: paths::haproxy_cfg(),
            mode: 0o644,
            check: Some(Check::Haproxy),
            notify: Some((haproxy.clone(), Trigger::Reload)),
        },
    )?);
    state.files.push(renderer.file(
        "keepalived.conf",
        FileSpec {
            path: paths::keepalived_conf(),
            mode: 0o600,
            check: Some(Check::Keepalived),
            notify: Some((keepalived.clone(), Trigger::Reload)),
        },
    )?);
    state.services.push(Service {
        unit: haproxy,
        on_change: Trigger::Reload,
        health: None,
        restart: RestartEffect::TakesHostOut,
    });
    state.services.push(Service {
        unit: keepalived,
        on_change: Trigger::Reload,
        health: None,
        restart: RestartEffect::TakesHostOut,
    });
    Ok(())
}

pub(super) fn web(
    topology: &Topology,
    renderer: &Renderer<'_>,
    certificate: Option<&EdgeCertificate>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(web) = &topology.web else {
        return Ok(());
    };
    let nginx = paths::unit("nginx.service");
    state.packages.push(package("nginx"));
    if let (Some(certificate), Some(lb)) = (certificate, &topology.load_balancer)
        && lb.tls.mode == TlsMode::Passthrough
    {
        state
            .directories
            .push(directory(RemotePath::from_static("/etc/nginx/tls"), 0o700));
        state.edge_certificate = Some(super::CertificateFiles::Pair {
            chain: paths::nginx_certificate(topology),
            key: paths::nginx_key(topology),
        });
        let first = state.files.len();
        state.files.push(managed_file(
            FileSpec {
                path: paths::nginx_certificate(topology),
                mode: 0o644,
                check: None,
                notify: Some((nginx.clone(), Trigger::Reload)),
            },
            certificate.chain_pem.clone().into_bytes(),
            Display::Text(certificate.chain_pem.clone()),
            Origin::Generated("edge certificate".to_owned()),
            Sensitivity::Plain,
        ));
        state.files.push(managed_file(
            FileSpec {
                path: paths::nginx_key(topology),
                mode: 0o600,
                check: None,
                notify: Some((nginx.clone(), Trigger::Reload)),
            },
            certificate.key_pem.expose().as_bytes().to_vec(),
            Display::Text(format!("{}\n", context::PLACEHOLDER)),
            Origin::Generated("edge certificate key".to_owned()),
            Sensitivity::Sensitive,
        ));
        for file in &mut state.files[first..] {
            file.note.clone_from(&certificate.renewal);
        }
    }
    match &web.static_dir {
        Some(static_dir) => upload(topology, static_dir, &web.root, None, state)?,
        None => state.directories.push(directory(web.root.clone(), 0o755)),
    }
    state.files.push(renderer.file(
        "nginx-site.conf",
        FileSpec {
            path: paths::nginx_site(topology),
            mode: 0o644,
            check: Some(Check::Nginx),
            notify: Some((nginx.clone(), Trigger::Reload)),
        },
    )?);
    state.absent_files.push(AbsentFile {
        path: paths::nginx_default_site(),
        brought_by: package("nginx"),
        reload: nginx.clone(),
    });
    // Nginx answers the load balancers' own health check again.
    let health = Health {
        gate: HealthGate::Http {
            port: web.port,
            path: topology
                .load_balancer
                .as_ref()
                .map_or_else(|| "/healthz".to_owned(), |lb| lb.health_check.path.clone()),
            host: web.server_name.clone(),
        },
        timeout_seconds: web.rollout.timeout_seconds,
    };
    state.services.push(Service {
        unit: nginx,
        on_change: Trigger::Reload,
        health: Some(health),
        restart: RestartEffect::TakesHostOut,
    });
    Ok(())
}

pub(super) fn app(
    topology: &Topology,
    renderer: &Renderer<'_>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(app) = &topology.app else {
        return Ok(());
    };
    let unit = app.unit();
    state.migration = app.migrate.as_ref().map(|command| super::Migration {
        unit: unit.clone(),
        command: command.clone(),
        working_directory: app.install_dir.clone(),
        environment_file: paths::app_environment(&app.name),
        unit_file: paths::app_unit(&app.name),
    });
    state.packages.extend(app.packages.iter().cloned());
    match &app.source {
        Some(source) => upload(
            topology,
            source,
            &app.install_dir,
            Some((unit.clone(), Trigger::Restart)),
            state,
        )?,
        None => state
            .directories
            .push(directory(app.install_dir.clone(), 0o755)),
    }
    state
        .directories
        .push(directory(paths::app_etc(&app.name), 0o755));
    state.files.push(renderer.file(
        "app.env",
        FileSpec {
            path: paths::app_environment(&app.name),
            mode: 0o600,
            check: None,
            notify: Some((unit.clone(), Trigger::Restart)),
        },
    )?);
    state.files.push(renderer.file(
        "app.service",
        FileSpec {
            path: paths::app_unit(&app.name),
            mode: 0o644,
            check: Some(Check::SystemdUnit),
            notify: Some((unit.clone(), Trigger::Restart)),
        },
    )?);
    let health = Health {
        gate: HealthGate::Http {
            port: app.port,
            path: app.health_path.clone(),
            host: "localhost".to_owned(),
        },
        timeout_seconds: app.rollout.timeout_seconds,
    };
    state.services.push(Service {
        unit,
        on_change: Trigger::Restart,
        health: Some(health),
        restart: RestartEffect::TakesHostOut,
    });
    Ok(())
}

pub(super) fn database(
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
    let mariadb = paths::unit("mariadb.service");
    state.packages.push(package("mariadb-server"));
    // The binary and relay logs live here; Debian's package does not always create it.
    let mysql = AccountName::new("mysql").expect("`mysql` is a valid account name");
    state.directories.push(Directory {
        path: RemotePath::from_static("/var/log/mysql"),
        owner: mysql.clone(),
        group: mysql,
        mode: Mode(0o750),
    });
    let template = match role {
        DatabaseRole::Primary => "mariadb-primary.cnf",
        DatabaseRole::Replica => "mariadb-replica.cnf",
    };
    state.files.push(renderer.file(
        template,
        FileSpec {
            path: paths::mariadb_cnf(),
            mode: 0o644,
            check: Some(Check::Mariadb),
            notify: Some((mariadb.clone(), Trigger::Restart)),
        },
    )?);
    state.services.push(Service {
        unit: mariadb,
        on_change: Trigger::Restart,
        health: Some(Health {
            gate: HealthGate::Mariadb,
            timeout_seconds: db.rollout.timeout_seconds,
        }),
        restart: RestartEffect::TakesHostOut,
    });
    let addresses = |tier: Tier| -> Vec<std::net::IpAddr> {
        topology
            .tier_hosts(tier)
            .iter()
            .map(|h| h.address)
            .collect()
    };
    let mut users = vec![DatabaseAccount {
        name: db.app_user.name.clone(),
        hosts: addresses(Tier::App),
        grant: Grant::AllOn(db.name.clone()),
        password: db.app_user.password.clone(),
    }];
    if let Some(replication) = &db.replication_user {
        users.push(DatabaseAccount {
            name: replication.name.clone(),
            hosts: db
                .replicas
                .iter()
                .filter_map(|r| topology.host(r))
                .map(|h| h.address)
                .collect(),
            grant: Grant::Replication,
            password: replication.password.clone(),
        });
    }
    // MariaDB's exporter connects from the database host itself (the account reaches the
    // replicas with replication).
    if let Some(user) = topology
        .monitoring
        .as_ref()
        .and_then(|m| m.database_user.as_ref())
    {
        users.push(DatabaseAccount {
            name: user.name.clone(),
            hosts: vec![std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
            grant: Grant::Monitor,
            password: user.password.clone(),
        });
    }
    let replication_source = match (role, &db.replication_user, topology.host(&db.primary)) {
        (DatabaseRole::Replica, Some(user), Some(primary)) => Some(ReplicationSource {
            host: primary.address,
            port: db.port,
            user: user.name.clone(),
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

impl DatabaseAccount {
    /// One account per client address, as MariaDB keys them.
    pub fn accounts(&self) -> Vec<SqlAccount> {
        self.hosts
            .iter()
            .map(|host| SqlAccount::new(self.name.clone(), *host))
            .collect()
    }
}

/// Prometheus and the blackbox exporter (which probes the app's health and the VIP) on a
/// monitoring host. Both configs are checked with `promtool` before Prometheus reloads them.
pub(super) fn monitoring(
    topology: &Topology,
    renderer: &Renderer<'_>,
    state: &mut HostState,
) -> Result<(), RenderError> {
    let Some(monitoring) = &topology.monitoring else {
        return Ok(());
    };
    let prometheus = paths::unit("prometheus.service");
    let blackbox = paths::unit("prometheus-blackbox-exporter.service");
    state.packages.extend([
        package("prometheus"),
        package("prometheus-blackbox-exporter"),
    ]);
    let drop_in = paths::blackbox_drop_in();
    if let Some(folder) = drop_in.parent() {
        state.directories.push(directory(folder, 0o755));
    }
    // In this order: the rules before the configuration that names them (its check reads them).
    let files = [
        (
            "blackbox-exporter.conf",
            drop_in,
            None,
            &blackbox,
            Trigger::Restart,
        ),
        (
            "blackbox-exporter.default",
            paths::service_defaults("prometheus-blackbox-exporter"),
            None,
            &blackbox,
            Trigger::Restart,
        ),
        (
            "blackbox.yml",
            paths::blackbox_yml(),
            Some(Check::Blackbox),
            &blackbox,
            Trigger::Reload,
        ),
        (
            "prometheus-rules.yml",
            paths::prometheus_rules(),
            Some(Check::PrometheusRules),
            &prometheus,
            Trigger::Reload,
        ),
        (
            "prometheus.yml",
            paths::prometheus_yml(),
            Some(Check::PrometheusConfig),
            &prometheus,
            Trigger::Reload,
        ),
        (
            "prometheus.default",
            paths::service_defaults("prometheus"),
            None,
            &prometheus,
            Trigger::Restart,
        ),
    ];
    for (template, path, check, unit, trigger) in files {
        state.files.push(renderer.file(
            template,
            FileSpec {
                path,
                mode: 0o644,
                check,
                notify: Some((unit.clone(), trigger)),
            },
        )?);
    }
    state.services.push(Service {
        unit: blackbox,
        on_change: Trigger::Reload,
        health: Some(exporter_health(Monitoring::BLACKBOX_EXPORTER_PORT)),
        restart: RestartEffect::TakesHostOut,
    });
    state.services.push(Service {
        unit: prometheus,
        on_change: Trigger::Reload,
        health: Some(Health {
            gate: HealthGate::Http {
                port: monitoring.port,
                path: "/-/ready".to_owned(),
                host: "localhost".to_owned(),
            },
            timeout_seconds: 60,
        }),
        restart: RestartEffect::TakesHostOut,
    });
    Ok(())
}

/// The exporters on a host that `monitoring:` watches: the node exporter everywhere, Nginx's
/// on web hosts, MariaDB's on database hosts (HAProxy serves its own metrics).
pub(super) fn exporters(
    topology: &Topology,
    renderer: &Renderer<'_>,
    tiers: &[Tier],
    state: &mut HostState,
) -> Result<(), RenderError> {
    if topology.monitoring.is_none() || tiers.is_empty() {
        return Ok(());
    }
    exporter(
        renderer,
        state,
        Exporter {
            package: "prometheus-node-exporter",
            unit: "prometheus-node-exporter.service",
            arguments: None,
            port: Monitoring::NODE_EXPORTER_PORT,
            credentials: None,
        },
    )?;
    for tier in tiers {
        let own = match tier {
            Tier::Web => Exporter {
                package: "prometheus-nginx-exporter",
                unit: "prometheus-nginx-exporter.service",
                arguments: Some(("nginx-exporter.default", 0o644)),
                port: Monitoring::NGINX_EXPORTER_PORT,
                credentials: None,
            },
            Tier::Database => Exporter {
                package: "prometheus-mysqld-exporter",
                unit: "prometheus-mysqld-exporter.service",
                arguments: Some(("mysqld-exporter.default", 0o644)),
                port: Monitoring::MYSQLD_EXPORTER_PORT,
                credentials: Some("mysqld-exporter.cnf"),
            },
            Tier::App | Tier::LoadBalancer | Tier::Monitoring => continue,
        };
        exporter(renderer, state, own)?;
    }
    Ok(())
}

/// One of Debian's exporters on a watched host.
struct Exporter {
    /// Its package.
    package: &'static str,
    /// Its unit.
    unit: &'static str,
    /// The template of its arguments (`/etc/default/<package>`) and that file's mode, when
    /// Debian's defaults do not do.
    arguments: Option<(&'static str, u32)>,
    /// Where it answers `/metrics`.
    port: u16,
    /// The template of the client file holding its database password, when it has one. The
    /// exporter reads it itself (as `prometheus`), so the file is `root:prometheus 0640`: the
    /// one way both Debian 12's exporter (0.14) and Debian 13's (0.17, which no longer reads a
    /// data source name from the environment) take a password without it being an argument.
    credentials: Option<&'static str>,
}

/// The exporter's package, arguments file and service: restarting it takes nothing out of
/// service.
fn exporter(
    renderer: &Renderer<'_>,
    state: &mut HostState,
    exporter: Exporter,
) -> Result<(), RenderError> {
    let unit = paths::unit(exporter.unit);
    state.packages.push(package(exporter.package));
    if let Some((template, mode)) = exporter.arguments {
        state.files.push(renderer.file(
            template,
            FileSpec {
                path: paths::service_defaults(exporter.package),
                mode,
                check: None,
                notify: Some((unit.clone(), Trigger::Restart)),
            },
        )?);
    }
    if let Some(template) = exporter.credentials {
        let mut file = renderer.file(
            template,
            FileSpec {
                path: paths::mysqld_exporter_credentials(),
                mode: 0o600,
                check: None,
                notify: Some((unit.clone(), Trigger::Restart)),
            },
        )?;
        file.group = AccountName::new("prometheus").expect("`prometheus` is a valid account name");
        file.mode = Mode(0o640);
        state.files.push(file);
    }
    state.services.push(Service {
        unit,
        on_change: Trigger::Restart,
        health: Some(exporter_health(exporter.port)),
        restart: RestartEffect::Unnoticed,
    });
    Ok(())
}

/// An exporter works when it answers `/metrics`.
fn exporter_health(port: u16) -> Health {
    Health {
        gate: HealthGate::Http {
            port,
            path: "/metrics".to_owned(),
            host: "localhost".to_owned(),
        },
        timeout_seconds: 30,
    }
}
