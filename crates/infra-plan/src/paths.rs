//! Where `infra` puts things on the hosts. One place, so plan, apply and destroy agree.

use infra_topology::{Name, RemotePath, Topology, UnitName};

/// HAProxy's main configuration.
pub fn haproxy_cfg() -> RemotePath {
    RemotePath::from_static("/etc/haproxy/haproxy.cfg")
}

/// keepalived's configuration.
pub fn keepalived_conf() -> RemotePath {
    RemotePath::from_static("/etc/keepalived/keepalived.conf")
}

/// `infra`'s folder in `/etc`.
pub fn etc_infra() -> RemotePath {
    RemotePath::from_static("/etc/infra")
}

/// `infra`'s firewall ruleset (the table `inet infra`).
pub fn firewall_nft() -> RemotePath {
    RemotePath::from_static("/etc/infra/firewall.nft")
}

/// The unit that loads the firewall at boot.
pub fn firewall_unit() -> RemotePath {
    RemotePath::from_static("/etc/systemd/system/infra-firewall.service")
}

/// The firewall unit's name.
pub fn firewall_unit_name() -> UnitName {
    unit("infra-firewall.service")
}

/// MariaDB's drop-in written by `infra`.
pub fn mariadb_cnf() -> RemotePath {
    RemotePath::from_static("/etc/mysql/mariadb.conf.d/60-infra.cnf")
}

/// Debian's default Nginx site, removed so ours is the default server.
pub fn nginx_default_site() -> RemotePath {
    RemotePath::from_static("/etc/nginx/sites-enabled/default")
}

/// HAProxy's certificate + key bundle for `tls: terminate`.
pub fn haproxy_pem(topology: &Topology) -> RemotePath {
    RemotePath::from_static("/etc/haproxy/certs").child_named(&topology.name, ".pem")
}

/// Nginx's certificate chain for `tls: passthrough`.
pub fn nginx_certificate(topology: &Topology) -> RemotePath {
    RemotePath::from_static("/etc/nginx/tls").child_named(&topology.name, ".crt")
}

/// Nginx's private key for `tls: passthrough`.
pub fn nginx_key(topology: &Topology) -> RemotePath {
    RemotePath::from_static("/etc/nginx/tls").child_named(&topology.name, ".key")
}

/// The Nginx site.
pub fn nginx_site(topology: &Topology) -> RemotePath {
    RemotePath::from_static("/etc/nginx/sites-enabled").child_named(&topology.name, "")
}

/// The app's unit file.
pub fn app_unit(app_name: &Name) -> RemotePath {
    RemotePath::from_static("/etc/systemd/system").child_named(app_name, ".service")
}

/// The app's folder in `/etc`.
pub fn app_etc(app_name: &Name) -> RemotePath {
    RemotePath::from_static("/etc").child_named(app_name, "")
}

/// The app's environment file.
pub fn app_environment(app_name: &Name) -> RemotePath {
    app_etc(app_name).child_named(&name("environment"), "")
}

/// Prometheus's configuration (Debian's path).
pub fn prometheus_yml() -> RemotePath {
    RemotePath::from_static("/etc/prometheus/prometheus.yml")
}

/// The alert rules `infra` ships, which `prometheus.yml` loads.
pub fn prometheus_rules() -> RemotePath {
    RemotePath::from_static("/etc/prometheus/infra-rules.yml")
}

/// The blackbox exporter's modules (Debian's path).
pub fn blackbox_yml() -> RemotePath {
    RemotePath::from_static("/etc/prometheus/blackbox.yml")
}

/// `infra`'s drop-in for the blackbox exporter's unit (its ICMP capability).
pub fn blackbox_drop_in() -> RemotePath {
    RemotePath::from_static("/etc/systemd/system/prometheus-blackbox-exporter.service.d/infra.conf")
}

/// The command-line arguments of a Debian service, read by its unit from `/etc/default`.
pub fn service_defaults(package: &'static str) -> RemotePath {
    RemotePath::from_static("/etc/default").child_named(&name(package), "")
}

/// The MariaDB exporter's client file (its account and password), beside MariaDB's own.
pub fn mysqld_exporter_credentials() -> RemotePath {
    RemotePath::from_static("/etc/mysql/prometheus-mysqld-exporter.cnf")
}

/// Where systemd unit files `infra` writes live (a change there needs `daemon-reload`).
pub fn systemd_units() -> RemotePath {
    RemotePath::from_static("/etc/systemd/system")
}

/// A unit name written in `infra`'s own source (never user input; the tests check each).
pub fn unit(name: &'static str) -> UnitName {
    UnitName::new(name).expect("a unit name literal in infra's source is valid")
}

fn name(text: &'static str) -> Name {
    Name::new(text).expect("a name literal in infra's source is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_path_and_unit_is_valid() {
        for path in [
            "/etc/haproxy/haproxy.cfg",
            "/etc/keepalived/keepalived.conf",
            "/etc/infra/firewall.nft",
            "/etc/systemd/system/infra-firewall.service",
            "/etc/mysql/mariadb.conf.d/60-infra.cnf",
            "/etc/nginx/sites-enabled/default",
        ] {
            assert!(RemotePath::new(path).is_some(), "{path}");
        }
        assert!(UnitName::new("infra-firewall.service").is_some());
        assert_eq!(
            app_environment(&Name::new("counter").expect("name")).as_str(),
            "/etc/counter/environment"
        );
    }
}

/// A file a package's daemon writes at run time outside what dpkg knows of, so purging the
/// package leaves it: removed after the purge when it still says it is the daemon's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftover {
    /// The package whose daemon writes it.
    pub package: &'static str,
    /// The file.
    pub path: &'static str,
    /// A line of it that shows the daemon wrote it.
    pub marker: &'static str,
    /// Folders the daemon made for it, innermost first: removed when empty.
    pub folders: &'static [&'static str],
}

/// keepalived 2.3 (Debian 13) registers its address protocol with iproute2 when it starts,
/// making `/etc/iproute2` for it where the release has none.
pub const LEFTOVERS: &[Leftover] = &[Leftover {
    package: "keepalived",
    path: "/etc/iproute2/rt_addrprotos.d/keepalived.conf",
    marker: "# added by keepalived",
    folders: &["/etc/iproute2/rt_addrprotos.d", "/etc/iproute2"],
}];
