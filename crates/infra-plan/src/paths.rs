//! Where `infra` puts things on the hosts. One place, so plan, apply and destroy agree.

use infra_topology::Topology;

/// HAProxy's main configuration.
pub const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";
/// keepalived's configuration.
pub const KEEPALIVED_CONF: &str = "/etc/keepalived/keepalived.conf";
/// `infra`'s firewall ruleset (the table `inet infra`).
pub const FIREWALL_NFT: &str = "/etc/infra/firewall.nft";
/// Where apply records the hash of the loaded firewall table, to spot later changes to it.
pub const FIREWALL_RECORD: &str = "/var/lib/infra/firewall.sha256";
/// The unit that loads the firewall at boot.
pub const FIREWALL_UNIT: &str = "/etc/systemd/system/infra-firewall.service";
/// MariaDB's drop-in written by `infra`.
pub const MARIADB_CNF: &str = "/etc/mysql/mariadb.conf.d/60-infra.cnf";
/// Debian's default Nginx site, removed so ours is the default server.
pub const NGINX_DEFAULT_SITE: &str = "/etc/nginx/sites-enabled/default";

/// HAProxy's certificate + key bundle for `tls: terminate`.
pub fn haproxy_pem(topology: &Topology) -> String {
    format!("/etc/haproxy/certs/{}.pem", topology.name)
}

/// Nginx's certificate chain for `tls: passthrough`.
pub fn nginx_certificate(topology: &Topology) -> String {
    format!("/etc/nginx/tls/{}.crt", topology.name)
}

/// Nginx's private key for `tls: passthrough`.
pub fn nginx_key(topology: &Topology) -> String {
    format!("/etc/nginx/tls/{}.key", topology.name)
}

/// The Nginx site.
pub fn nginx_site(topology: &Topology) -> String {
    format!("/etc/nginx/sites-enabled/{}", topology.name)
}

/// The app's unit.
pub fn app_unit(app_name: &str) -> String {
    format!("/etc/systemd/system/{app_name}.service")
}

/// The app's environment file.
pub fn app_environment(app_name: &str) -> String {
    format!("/etc/{app_name}/environment")
}
