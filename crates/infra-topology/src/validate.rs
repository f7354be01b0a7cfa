//! Every semantic check of a topology, collecting all findings at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    Algorithm, App, Become, CertificateSource, Database, DatabaseUser, EnvValue, Firewall,
    HealthCheck, Host, HostName, Lab, LoadBalancer, Ssh, Stats, Tls, TlsMode, Topology, Web,
};
use crate::node::{closest, list};
use crate::raw::{self, Sp};
use crate::rules;
use crate::secret::{self, Secret, SecretSource};
use crate::source::Position;

/// Looks up environment variables for `${env:NAME}` secrets (the binary passes the process
/// environment; tests pass a map).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Checks `raw` and builds the model. Returns `None` when any error was found; every finding
/// (errors and warnings) is added to `diagnostics`.
pub(crate) fn validate(
    raw: raw::RawTopology,
    base_dir: &Path,
    env: EnvLookup<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Topology> {
    let mut checker = Checker {
        base_dir,
        env,
        diagnostics,
    };
    checker.topology(raw)
}

struct Checker<'a, 'd> {
    base_dir: &'a Path,
    env: EnvLookup<'a>,
    diagnostics: &'d mut Diagnostics,
}

/// Listening ports a host would have, with the key that asked for each, where it is written,
/// and whether the port was written out (rather than a default).
type PortUse = BTreeMap<(String, u16), Vec<(String, Position, bool)>>;

impl Checker<'_, '_> {
    fn error(&mut self, position: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push_mut(Diagnostic::error(position, message))
    }

    fn warning(&mut self, position: Position, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push_mut(Diagnostic::warning(position, message))
    }

    fn topology(&mut self, raw: raw::RawTopology) -> Option<Topology> {
        let name = self.name(&raw.name, "topology name");
        let templates = raw
            .templates
            .as_ref()
            .map(|t| self.local_path(t, "templates", PathKind::Dir));
        let hosts = self.hosts(&raw);
        let host_names: BTreeMap<String, Position> = raw
            .hosts
            .value
            .keys()
            .map(|k| (k.value.clone(), k.position))
            .collect();
        let firewall = self.firewall(&raw.firewall);
        let load_balancer = raw
            .load_balancer
            .as_ref()
            .map(|lb| self.load_balancer(lb, &host_names, &hosts, &firewall));
        let web = raw.web.as_ref().map(|w| self.web(w, &host_names, &name));
        let app = raw.app.as_ref().map(|a| self.app(a, &host_names));
        let database = raw.database.as_ref().map(|d| self.database(d, &host_names));
        let lab = self.lab(&raw, &hosts, load_balancer.as_ref());

        if raw.load_balancer.is_some() && raw.web.is_none() {
            self.error(
                raw.load_balancer
                    .as_ref()
                    .map_or(Position::UNKNOWN, |l| l.position),
                "a load balancer tier needs a web tier to send traffic to",
            )
            .hint("add a `web:` section with at least one host");
        }
        self.tier_membership(&raw, &host_names);
        self.port_collisions(&raw);

        if self.diagnostics.has_errors() {
            return None;
        }
        Some(Topology {
            name,
            base_dir: self.base_dir.to_path_buf(),
            templates: templates.flatten(),
            hosts: hosts.into_iter().map(|(_, h)| h).collect(),
            load_balancer: load_balancer.flatten(),
            web: web.flatten(),
            app: app.flatten(),
            database: database.flatten(),
            firewall,
            lab,
        })
    }

    fn name(&mut self, name: &Sp<String>, what: &str) -> String {
        if !rules::is_name(&name.value) {
            self.error(
                name.position,
                format!("`{}` is not a valid {what}", name.value),
            )
            .expected("a lowercase letter, then lowercase letters, digits and `-` (at most 63)")
            .hint("names end up in file paths, container names and shell commands");
        }
        name.value.clone()
    }

    fn hosts(&mut self, raw: &raw::RawTopology) -> Vec<(Position, Host)> {
        if raw.hosts.value.is_empty() {
            self.error(raw.hosts.position, "`hosts` is empty")
                .expected("at least one host, e.g. `web1: { address: 10.77.0.21 }`");
        }
        let default_become = raw
            .defaults
            .become_method
            .as_ref()
            .and_then(|b| self.become_method(b));
        let mut seen: BTreeMap<IpAddr, (String, Position)> = BTreeMap::new();
        let mut hosts = Vec::new();
        for (name, host) in &raw.hosts.value {
            self.name(name, "host name");
            let address = match host.address.value.parse::<IpAddr>() {
                Ok(address) => {
                    if let Some((other, _)) = seen.get(&address) {
                        let message = format!(
                            "address `{address}` is used by `{other}` and `{}`",
                            name.value
                        );
                        self.error(host.address.position, message)
                            .expected("a different address for every host");
                    } else {
                        seen.insert(address, (name.value.clone(), host.address.position));
                    }
                    if address.is_unspecified() || address.is_multicast() {
                        let message = format!("`{address}` cannot be a host's address");
                        self.error(host.address.position, message)
                            .expected("a unicast address");
                    }
                    Some(address)
                }
                Err(_) => {
                    let message = format!("`{}` is not an IP address", host.address.value);
                    self.error(host.address.position, message)
                        .expected("an IPv4 or IPv6 address such as `10.77.0.21`")
                        .hint("host names are not resolved: give the address itself");
                    None
                }
            };
            let ssh = self.ssh(&raw.defaults.ssh, host.ssh.as_ref());
            let become_method = host
                .become_method
                .as_ref()
                .and_then(|b| self.become_method(b))
                .or(default_become)
                .unwrap_or(if ssh.user == "root" {
                    Become::None
                } else {
                    Become::Sudo
                });
            if let Some(address) = address {
                hosts.push((
                    name.position,
                    Host {
                        name: HostName::new_unchecked(name.value.clone()),
                        address,
                        ssh,
                        become_method,
                    },
                ));
            }
        }
        hosts
    }

    fn become_method(&mut self, value: &Sp<String>) -> Option<Become> {
        match value.value.as_str() {
            "none" => Some(Become::None),
            "sudo" => Some(Become::Sudo),
            other => {
                self.error(value.position, format!("unknown become method `{other}`"))
                    .expected("`none` or `sudo`");
                None
            }
        }
    }

    fn ssh(&mut self, defaults: &raw::RawSsh, own: Option<&raw::RawSsh>) -> Ssh {
        let pick =
            |f: fn(&raw::RawSsh) -> Option<&Sp<String>>| own.and_then(f).or_else(|| f(defaults));
        let user = pick(|s| s.user.as_ref());
        let identity = pick(|s| s.identity_file.as_ref());
        let jump = pick(|s| s.jump.as_ref());
        let port = own.and_then(|s| s.port.as_ref()).or(defaults.port.as_ref());
        if let Some(user) = user.filter(|u| !rules::is_user_name(&u.value)) {
            self.error(
                user.position,
                format!("`{}` is not a valid SSH user", user.value),
            )
            .expected("letters, digits, `_` and `-`, starting with a letter or `_`");
        }
        if let Some(jump) = jump.filter(|j| !rules::is_jump(&j.value)) {
            self.error(
                jump.position,
                format!("`{}` is not a valid jump host", jump.value),
            )
            .expected("`[user@]host[:port]` as OpenSSH's ProxyJump takes it");
        }
        if let Some(port) = port.filter(|p| p.value == 0) {
            self.error(port.position, "SSH port 0 is not a port")
                .expected("1-65535");
        }
        Ssh {
            user: user.map_or_else(|| "root".to_owned(), |u| u.value.clone()),
            port: port.map_or(22, |p| p.value),
            identity_file: identity.map(|i| expand_home(&i.value, self.base_dir)),
            jump: jump.map(|j| j.value.clone()),
        }
    }

    /// Resolves a list of host references, reporting undeclared and repeated names.
    fn host_list(
        &mut self,
        list: &Sp<Vec<Sp<String>>>,
        known: &BTreeMap<String, Position>,
        tier: &str,
    ) -> Vec<HostName> {
        if list.value.is_empty() {
            self.error(list.position, format!("`{tier}.hosts` is empty"))
                .expected("at least one host name declared under `hosts`");
        }
        let mut seen = BTreeSet::new();
        let mut names = Vec::new();
        for name in &list.value {
            if let Some(resolved) = self.host_ref(name, known, tier) {
                if seen.insert(name.value.clone()) {
                    names.push(resolved);
                } else {
                    self.error(
                        name.position,
                        format!("host `{}` is listed twice in `{tier}`", name.value),
                    )
                    .expected("each host once");
                }
            }
        }
        names
    }

    fn host_ref(
        &mut self,
        name: &Sp<String>,
        known: &BTreeMap<String, Position>,
        tier: &str,
    ) -> Option<HostName> {
        if known.contains_key(&name.value) {
            return Some(HostName::new_unchecked(name.value.clone()));
        }
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        let diagnostic = self
            .error(
                name.position,
                format!("`{tier}` refers to undeclared host `{}`", name.value),
            )
            .expected(format!(
                "one of the hosts declared under `hosts`: {}",
                list(&names)
            ));
        if let Some(close) = closest(&name.value, &names) {
            diagnostic.hint = Some(format!("did you mean `{close}`?"));
        } else {
            diagnostic.hint = Some(format!(
                "declare it under `hosts:` as `{}: {{ address: ... }}`",
                name.value
            ));
        }
        None
    }

    fn load_balancer(
        &mut self,
        lb: &Sp<raw::RawLoadBalancer>,
        known: &BTreeMap<String, Position>,
        hosts: &[(Position, Host)],
        firewall: &Firewall,
    ) -> Option<LoadBalancer> {
        let raw = &lb.value;
        let names = self.host_list(&raw.hosts, known, "load_balancer");
        if raw.hosts.value.len() < 2 {
            self.warning(
                raw.hosts.position,
                "a single load balancer is a single point of failure",
            )
            .expected("2 or more hosts, so keepalived can move the VIP")
            .hint("add a second host to `load_balancer.hosts`");
        }
        let vip = match raw.vip.value.parse::<IpNet>() {
            Ok(vip) => Some(vip),
            Err(_) => {
                let hint = if raw.vip.value.parse::<IpAddr>().is_ok() {
                    format!(
                        "write it with the subnet's prefix length, e.g. `{}/24`",
                        raw.vip.value
                    )
                } else {
                    "the VIP is an address on the load balancers' subnet".to_owned()
                };
                self.error(
                    raw.vip.position,
                    format!("`{}` is not an address with a prefix length", raw.vip.value),
                )
                .expected("an address and prefix such as `10.77.0.10/24`")
                .hint(hint);
                None
            }
        };
        if let Some(vip) = vip {
            for (_, host) in hosts.iter().filter(|(_, h)| names.contains(&h.name)) {
                if !vip.contains(&host.address) {
                    let message = format!(
                        "the VIP `{vip}` is not in the subnet of load balancer `{}` ({})",
                        host.name, host.address
                    );
                    self.error(raw.vip.position, message)
                        .expected(format!("an address in `{}`", vip.trunc()))
                        .hint("VRRP only moves an address between hosts on the same subnet");
                }
            }
            if let Some((_, host)) = hosts.iter().find(|(_, h)| h.address == vip.addr()) {
                let message = format!(
                    "the VIP `{}` is also the address of host `{}`",
                    vip.addr(),
                    host.name
                );
                self.error(raw.vip.position, message)
                    .expected("an address no host uses")
                    .hint("pick a free address in the same subnet");
            }
            if vip.prefix_len() < vip.max_prefix_len()
                && (vip.addr() == vip.network() || vip.addr() == vip.broadcast())
            {
                self.error(
                    raw.vip.position,
                    format!(
                        "`{}` is the network or broadcast address of `{}`",
                        vip.addr(),
                        vip.trunc()
                    ),
                )
                .expected("a host address inside the subnet");
            }
        }
        let interface = match &raw.interface {
            Some(i) if !rules::is_interface_name(&i.value) => {
                self.error(
                    i.position,
                    format!("`{}` is not a valid interface name", i.value),
                )
                .expected("at most 15 letters, digits, `.`, `_` or `-`");
                String::new()
            }
            Some(i) => i.value.clone(),
            None => "eth0".to_owned(),
        };
        let virtual_router_id = match &raw.virtual_router_id {
            Some(id) => match u8::try_from(id.value) {
                Ok(v) if v >= 1 => v,
                _ => {
                    self.error(
                        id.position,
                        format!("virtual router ID {} is out of range", id.value),
                    )
                    .expected("1-255");
                    0
                }
            },
            None => 51,
        };
        let vrrp_password = raw
            .vrrp_password
            .as_ref()
            .and_then(|p| self.secret(p, "vrrp_password"));
        if let (Some(secret), Some(position)) = (
            &vrrp_password,
            raw.vrrp_password.as_ref().map(|p| p.position),
        ) && secret.expose().len() > 8
        {
            self.warning(
                position,
                "keepalived uses only the first 8 characters of `vrrp_password`",
            )
            .hint("use a password of at most 8 characters");
        }
        let algorithm = match &raw.algorithm {
            None => Algorithm::Roundrobin,
            Some(a) => match a.value.as_str() {
                "roundrobin" => Algorithm::Roundrobin,
                "leastconn" => Algorithm::Leastconn,
                "source" => Algorithm::Source,
                other => {
                    let known = ["roundrobin", "leastconn", "source"];
                    let d = self
                        .error(a.position, format!("unknown balancing algorithm `{other}`"))
                        .expected(list(&known));
                    if let Some(close) = closest(other, &known) {
                        d.hint = Some(format!("did you mean `{close}`?"));
                    }
                    Algorithm::Roundrobin
                }
            },
        };
        let health_check = self.health_check(&raw.health_check);
        let stats = raw.stats.as_ref().map(|s| self.stats(s, firewall));
        let tls = self.tls(&raw.tls);
        Some(LoadBalancer {
            hosts: names,
            vip: vip?,
            interface,
            virtual_router_id,
            vrrp_password,
            preempt: raw.preempt.as_ref().is_none_or(|p| p.value),
            algorithm,
            health_check,
            stats: stats.flatten(),
            tls: tls?,
        })
    }

    fn health_check(&mut self, raw: &raw::RawHealthCheck) -> HealthCheck {
        let path = self.url_path(raw.path.as_ref(), "/healthz");
        let interval_ms = raw.interval_ms.as_ref().map_or(2000, |i| i.value);
        if let Some(i) = raw.interval_ms.as_ref().filter(|i| i.value < 100) {
            self.error(
                i.position,
                format!("a health check every {} ms is too often", i.value),
            )
            .expected("100 ms or more");
        }
        let mut count = |value: &Option<Sp<u16>>, default: u16, key: &str| match value {
            Some(v) if v.value == 0 => {
                self.error(v.position, format!("`{key}` must be at least 1"))
                    .expected("1 or more");
                default
            }
            Some(v) => v.value,
            None => default,
        };
        let rise = count(&raw.rise, 2, "rise");
        let fall = count(&raw.fall, 3, "fall");
        HealthCheck {
            path,
            interval_ms,
            rise,
            fall,
        }
    }

    fn stats(&mut self, raw: &Sp<raw::RawStats>, firewall: &Firewall) -> Option<Stats> {
        let raw = &raw.value;
        let user = match &raw.user {
            Some(u) if !rules::is_user_name(&u.value) => {
                self.error(
                    u.position,
                    format!("`{}` is not a valid stats user", u.value),
                )
                .expected("letters, digits, `_` and `-`");
                String::new()
            }
            Some(u) => u.value.clone(),
            None => "admin".to_owned(),
        };
        let password = self.secret(&raw.password, "stats.password");
        let allow_from = match &raw.allow_from {
            Some(list) => self.networks(list),
            None => firewall.admin_sources.clone(),
        };
        Some(Stats {
            port: raw.port.as_ref().map_or(8404, |p| p.value),
            user,
            password: password?,
            allow_from,
        })
    }

    fn tls(&mut self, raw: &raw::RawTls) -> Option<Tls> {
        let mode = match &raw.mode {
            None => TlsMode::Off,
            Some(m) => match m.value.as_str() {
                "terminate" => TlsMode::Terminate,
                "passthrough" => TlsMode::Passthrough,
                "off" => TlsMode::Off,
                other => {
                    self.error(m.position, format!("unknown TLS mode `{other}`"))
                        .expected("`terminate`, `passthrough` or `off`");
                    TlsMode::Off
                }
            },
        };
        let certificate = match (&raw.cert_file, &raw.key_file) {
            (None, None) => CertificateSource::Generated,
            (Some(cert), Some(key)) => {
                let cert = self.local_path(cert, "tls.cert_file", PathKind::File);
                let key = self.secret(key, "tls.key_file");
                CertificateSource::Files {
                    cert: cert?,
                    key: key?,
                }
            }
            (Some(cert), None) => {
                self.error(
                    cert.position,
                    "`tls.cert_file` is given without `tls.key_file`",
                )
                .expected(
                    "both `cert_file` and `key_file`, or neither (a certificate is then generated)",
                );
                return None;
            }
            (None, Some(key)) => {
                self.error(
                    key.position,
                    "`tls.key_file` is given without `tls.cert_file`",
                )
                .expected(
                    "both `cert_file` and `key_file`, or neither (a certificate is then generated)",
                );
                return None;
            }
        };
        Some(Tls { mode, certificate })
    }

    fn web(
        &mut self,
        web: &Sp<raw::RawWeb>,
        known: &BTreeMap<String, Position>,
        topology_name: &str,
    ) -> Option<Web> {
        let raw = &web.value;
        let hosts = self.host_list(&raw.hosts, known, "web");
        let server_name = match &raw.server_name {
            Some(s) if !rules::is_dns_name(&s.value) => {
                self.error(
                    s.position,
                    format!("`{}` is not a valid server name", s.value),
                )
                .expected("a DNS name such as `www.example.com`");
                String::new()
            }
            Some(s) => s.value.clone(),
            None => "localhost".to_owned(),
        };
        let static_dir = raw
            .static_dir
            .as_ref()
            .map(|s| self.local_path(s, "web.static_dir", PathKind::Dir));
        let root = self.remote_path(
            raw.root.as_ref(),
            &format!("/var/www/{topology_name}"),
            "web.root",
        );
        let app_path = self.url_path(raw.app_path.as_ref(), "/api/");
        if let Some(p) = raw.app_path.as_ref().filter(|p| !p.value.ends_with('/')) {
            self.error(p.position, format!("`{}` must end with `/`", p.value))
                .expected("a path prefix such as `/api/`");
        }
        Some(Web {
            hosts,
            server_name,
            port: raw.port.as_ref().map_or(80, |p| p.value),
            tls_port: raw.tls_port.as_ref().map_or(443, |p| p.value),
            static_dir: static_dir.flatten(),
            root,
            app_path,
            status_port: raw.status_port.as_ref().map_or(8080, |p| p.value),
        })
    }

    fn app(&mut self, app: &Sp<raw::RawApp>, known: &BTreeMap<String, Position>) -> Option<App> {
        let raw = &app.value;
        let hosts = self.host_list(&raw.hosts, known, "app");
        let name = self.name(&raw.name, "app name");
        let source = raw
            .source
            .as_ref()
            .map(|s| self.local_path(s, "app.source", PathKind::Dir));
        let install_dir = self.remote_path(
            raw.install_dir.as_ref(),
            &format!("/opt/{name}"),
            "app.install_dir",
        );
        let mut packages = Vec::new();
        for package in &raw.packages {
            if rules::is_package_name(&package.value) {
                packages.push(package.value.clone());
            } else {
                self.error(
                    package.position,
                    format!("`{}` is not a Debian package name", package.value),
                )
                .expected(
                    "lowercase letters, digits, `+`, `-` and `.`, as `apt-get install` takes them",
                );
            }
        }
        let command: Vec<String> = raw
            .command
            .value
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        match command.first() {
            None => {
                self.error(raw.command.position, "`app.command` is empty")
                    .expected("the program's absolute path and its arguments");
            }
            Some(program) if !program.starts_with('/') => {
                self.error(
                    raw.command.position,
                    format!("`{program}` is not an absolute path"),
                )
                .expected("an absolute path such as `/usr/bin/python3`")
                .hint("systemd runs the command without a shell and without PATH lookup");
            }
            Some(_) => {}
        }
        if let Some(word) = command.iter().find(|w| !rules::is_command_word(w)) {
            self.error(
                raw.command.position,
                format!("`{word}` in `app.command` has characters that are not safe"),
            )
            .expected(
                "letters, digits and `/ . _ - = : , @ +` (no shell syntax, quotes, `$` or `%`)",
            )
            .hint("put shell logic in a script inside `app.source` and run that");
        }
        let mut environment = Vec::new();
        for (key, value) in &raw.environment {
            if !rules::is_env_name(&key.value) {
                self.error(
                    key.position,
                    format!("`{}` is not a valid environment variable name", key.value),
                )
                .expected("letters, digits and `_`, not starting with a digit");
            }
            if key.value.starts_with("DB_") {
                self.error(
                    key.position,
                    format!("`{}` is set by `infra` from the database tier", key.value),
                )
                .expected("a name that does not start with `DB_`");
            }
            let value = if secret::looks_like_reference(&value.value) {
                self.secret(value, &format!("app.environment.{}", key.value))
                    .map(EnvValue::Secret)
            } else if rules::is_env_value(&value.value) {
                Some(EnvValue::Plain(value.value.clone()))
            } else {
                self.error(
                    value.position,
                    format!(
                        "the value of `{}` has characters that are not safe",
                        key.value
                    ),
                )
                .expected("one printable line without `\"`, `\\`, `$`, `%` or backticks");
                None
            };
            if let Some(value) = value {
                environment.push((key.value.clone(), value));
            }
        }
        Some(App {
            hosts,
            name,
            source: source.flatten(),
            install_dir,
            packages,
            command,
            port: raw.port.as_ref().map_or(8000, |p| p.value),
            health_path: self.url_path(raw.health_path.as_ref(), "/health"),
            environment,
        })
    }

    fn database(
        &mut self,
        db: &Sp<raw::RawDatabase>,
        known: &BTreeMap<String, Position>,
    ) -> Option<Database> {
        let raw = &db.value;
        let primary = self.host_ref(&raw.primary, known, "database.primary");
        let replicas = match &raw.replicas {
            Some(list) if list.value.is_empty() => Vec::new(),
            Some(list) => self.host_list(list, known, "database.replicas"),
            None => Vec::new(),
        };
        for replica in raw.replicas.iter().flat_map(|r| &r.value) {
            if replica.value == raw.primary.value {
                self.error(
                    replica.position,
                    format!("`{}` is both the primary and a replica", replica.value),
                )
                .expected("replicas on hosts other than the primary")
                .hint("a server cannot replicate from itself");
            }
        }
        self.sql_identifier(&raw.name, "database name");
        let app_user = self.database_user(&raw.app_user, "app_user");
        let replication_user = raw
            .replication_user
            .as_ref()
            .map(|u| self.database_user(u, "replication_user"));
        if let Some(r) = &raw.replication_user
            && r.name.value == raw.app_user.name.value
        {
            self.error(
                r.name.position,
                "the replication user and the app user have the same name",
            )
            .expected("two different accounts");
        }
        if !replicas.is_empty() && raw.replication_user.is_none() {
            let position = raw.replicas.as_ref().map_or(db.position, |r| r.position);
            self.error(position, "replicas need a `replication_user`")
                .expected("`replication_user: { name: repl, password: \"${env:...}\" }`");
        }
        Some(Database {
            primary: primary?,
            replicas,
            name: raw.name.value.clone(),
            port: raw.port.as_ref().map_or(3306, |p| p.value),
            app_user: app_user?,
            replication_user: replication_user.flatten(),
        })
    }

    fn database_user(&mut self, raw: &raw::RawDatabaseUser, key: &str) -> Option<DatabaseUser> {
        self.sql_identifier(&raw.name, &format!("`{key}` name"));
        let password = self.secret(&raw.password, &format!("{key}.password"));
        Some(DatabaseUser {
            name: raw.name.value.clone(),
            password: password?,
        })
    }

    fn sql_identifier(&mut self, value: &Sp<String>, what: &str) {
        if !rules::is_sql_identifier(&value.value) {
            self.error(
                value.position,
                format!("`{}` is not a valid {what}", value.value),
            )
            .expected("ASCII letters, digits and `_` (at most 32, not only digits)");
        }
    }

    fn firewall(&mut self, raw: &raw::RawFirewall) -> Firewall {
        let admin_sources = match &raw.admin_sources {
            Some(list) => {
                if list.value.is_empty() {
                    self.error(list.position, "`firewall.admin_sources` is empty")
                        .expected(
                            "at least one network, or leave the key out to allow SSH from anywhere",
                        )
                        .hint("an empty list would lock everyone out of SSH");
                }
                self.networks(list)
            }
            None => vec![
                IpNet::V4(ipnet::Ipv4Net::default()),
                IpNet::V6(ipnet::Ipv6Net::default()),
            ],
        };
        Firewall {
            enabled: raw.enabled.as_ref().is_none_or(|e| e.value),
            admin_sources,
        }
    }

    fn networks(&mut self, list: &Sp<Vec<Sp<String>>>) -> Vec<IpNet> {
        let mut networks = Vec::new();
        for item in &list.value {
            match item
                .value
                .parse::<IpNet>()
                .or_else(|_| item.value.parse::<IpAddr>().map(IpNet::from))
            {
                Ok(net) => networks.push(net.trunc()),
                Err(_) => {
                    self.error(item.position, format!("`{}` is not a network", item.value))
                        .expected("an address or CIDR network such as `192.0.2.0/24`");
                }
            }
        }
        networks
    }

    fn lab(
        &mut self,
        raw: &raw::RawTopology,
        hosts: &[(Position, Host)],
        lb: Option<&Option<LoadBalancer>>,
    ) -> Lab {
        let Some(subnet) = &raw.lab.subnet else {
            return Lab { subnet: None };
        };
        let Ok(net) = subnet.value.parse::<IpNet>() else {
            self.error(
                subnet.position,
                format!("`{}` is not a subnet", subnet.value),
            )
            .expected("a CIDR network such as `10.77.0.0/24`");
            return Lab { subnet: None };
        };
        let mut outside: Vec<String> = hosts
            .iter()
            .filter(|(_, h)| !net.contains(&h.address))
            .map(|(_, h)| format!("`{}` ({})", h.name, h.address))
            .collect();
        if let Some(Some(lb)) = lb
            && !net.contains(&lb.vip.addr())
        {
            outside.push(format!("the VIP ({})", lb.vip.addr()));
        }
        if !outside.is_empty() {
            self.error(
                subnet.position,
                format!(
                    "the lab subnet `{net}` does not hold {}",
                    outside.join(", ")
                ),
            )
            .expected("a subnet that holds every host address and the VIP");
        }
        Lab {
            subnet: Some(net.trunc()),
        }
    }

    /// Hosts that are in no tier get a warning; the same host in both database roles is an error
    /// reported by [`Checker::database`].
    fn tier_membership(&mut self, raw: &raw::RawTopology, known: &BTreeMap<String, Position>) {
        let mut used = BTreeSet::new();
        let lists = [
            raw.load_balancer.as_ref().map(|l| &l.value.hosts.value),
            raw.web.as_ref().map(|w| &w.value.hosts.value),
            raw.app.as_ref().map(|a| &a.value.hosts.value),
            raw.database
                .as_ref()
                .and_then(|d| d.value.replicas.as_ref().map(|r| &r.value)),
        ];
        for list in lists.into_iter().flatten() {
            used.extend(list.iter().map(|n| n.value.clone()));
        }
        if let Some(db) = &raw.database {
            used.insert(db.value.primary.value.clone());
        }
        for (name, position) in known {
            if !used.contains(name) {
                let managed = if raw.firewall.enabled.as_ref().is_none_or(|e| e.value) {
                    "`infra` will only manage its firewall"
                } else {
                    "`infra` will manage nothing on it"
                };
                self.warning(*position, format!("host `{name}` is in no tier"))
                    .hint(format!("{managed}; add it to a tier or remove it"));
            }
        }
    }

    /// Two services on one host may not listen on the same port.
    fn port_collisions(&mut self, raw: &raw::RawTopology) {
        let mut ports: PortUse = BTreeMap::new();
        let mut add = |hosts: &[Sp<String>],
                       port: Option<&Sp<u16>>,
                       default: u16,
                       what: &str,
                       fallback: Position| {
            let (value, position, explicit) =
                port.map_or((default, fallback, false), |p| (p.value, p.position, true));
            for host in hosts {
                ports.entry((host.value.clone(), value)).or_default().push((
                    what.to_owned(),
                    position,
                    explicit,
                ));
            }
        };
        if let Some(lb) = &raw.load_balancer {
            let hosts = &lb.value.hosts.value;
            add(
                hosts,
                None,
                80,
                "load_balancer (HTTP)",
                lb.value.hosts.position,
            );
            if lb.value.tls.mode.as_ref().is_some_and(|m| m.value != "off") {
                add(
                    hosts,
                    None,
                    443,
                    "load_balancer (HTTPS)",
                    lb.value.hosts.position,
                );
            }
            if let Some(stats) = &lb.value.stats {
                add(
                    hosts,
                    stats.value.port.as_ref(),
                    8404,
                    "load_balancer.stats.port",
                    stats.position,
                );
            }
        }
        if let Some(web) = &raw.web {
            let hosts = &web.value.hosts.value;
            add(
                hosts,
                web.value.port.as_ref(),
                80,
                "web.port",
                web.value.hosts.position,
            );
            add(
                hosts,
                web.value.status_port.as_ref(),
                8080,
                "web.status_port",
                web.value.hosts.position,
            );
            let passthrough = raw
                .load_balancer
                .as_ref()
                .and_then(|l| l.value.tls.mode.as_ref())
                .is_some_and(|m| m.value == "passthrough");
            if passthrough {
                add(
                    hosts,
                    web.value.tls_port.as_ref(),
                    443,
                    "web.tls_port",
                    web.value.hosts.position,
                );
            }
        }
        if let Some(app) = &raw.app {
            add(
                &app.value.hosts.value,
                app.value.port.as_ref(),
                8000,
                "app.port",
                app.value.hosts.position,
            );
        }
        if let Some(db) = &raw.database {
            let mut hosts = vec![db.value.primary.clone()];
            hosts.extend(
                db.value
                    .replicas
                    .iter()
                    .flat_map(|r| r.value.iter().cloned()),
            );
            hosts.dedup_by(|a, b| a.value == b.value);
            add(
                &hosts,
                db.value.port.as_ref(),
                3306,
                "database.port",
                db.value.primary.position,
            );
        }
        for ((host, port), users) in ports {
            let mut sites: Vec<&(String, Position, bool)> = users.iter().collect();
            sites.dedup_by(|a, b| a.0 == b.0);
            if sites.len() > 1 {
                let names: Vec<String> = sites.iter().map(|(w, _, _)| format!("`{w}`")).collect();
                // Point at a port the user wrote, if any: that is the one to change.
                let position = sites
                    .iter()
                    .filter(|(_, _, explicit)| *explicit)
                    .map(|(_, p, _)| *p)
                    .max()
                    .or_else(|| sites.iter().map(|(_, p, _)| *p).max())
                    .unwrap_or_default();
                self.error(
                    position,
                    format!(
                        "port {port} on host `{host}` is wanted by {}",
                        names.join(" and ")
                    ),
                )
                .expected("a different port for each service on a host")
                .hint("move one of them to another port, or put the tiers on different hosts");
            }
        }
    }

    fn url_path(&mut self, value: Option<&Sp<String>>, default: &str) -> String {
        match value {
            Some(p) if !rules::is_url_path(&p.value) => {
                self.error(p.position, format!("`{}` is not a safe URL path", p.value))
                    .expected("a path starting with `/` made of letters, digits and `/ . _ - ~`");
                default.to_owned()
            }
            Some(p) => p.value.clone(),
            None => default.to_owned(),
        }
    }

    fn remote_path(&mut self, value: Option<&Sp<String>>, default: &str, key: &str) -> String {
        match value {
            Some(p) if !rules::is_safe_absolute_path(&p.value) => {
                self.error(
                    p.position,
                    format!("`{}` in `{key}` is not a safe absolute path", p.value),
                )
                .expected("an absolute path of letters, digits and `/ . _ -`, without `..`");
                default.to_owned()
            }
            Some(p) => p.value.trim_end_matches('/').to_owned(),
            None => default.to_owned(),
        }
    }

    fn local_path(&mut self, value: &Sp<String>, key: &str, kind: PathKind) -> Option<PathBuf> {
        if value.value.contains('\0') || value.value.is_empty() {
            self.error(value.position, format!("`{key}` is not a usable path"))
                .expected("a file path");
            return None;
        }
        let path = self.base_dir.join(&value.value);
        let ok = match kind {
            PathKind::Dir => path.is_dir(),
            PathKind::File => path.is_file(),
        };
        if !ok {
            let what = match kind {
                PathKind::Dir => "folder",
                PathKind::File => "file",
            };
            self.error(
                value.position,
                format!("`{key}`: {what} `{}` does not exist", path.display()),
            )
            .expected(format!("an existing {what}, relative to the topology file"));
            return None;
        }
        Some(path)
    }

    /// Resolves a `${env:NAME}` or `${file:PATH}` reference; literals are refused.
    fn secret(&mut self, value: &Sp<String>, key: &str) -> Option<Secret> {
        let Some(source) = secret::parse_reference(&value.value) else {
            let d = self.error(
                value.position,
                format!("`{key}` must be a secret reference"),
            );
            d.expected = Some("`${env:NAME}` or `${file:PATH}`".to_owned());
            d.hint = Some(if secret::looks_like_reference(&value.value) {
                "only `env:` and `file:` references are supported".to_owned()
            } else {
                "secrets are never written in the topology: put the value in an environment variable or a file".to_owned()
            });
            return None;
        };
        let resolved = match &source {
            SecretSource::Env(name) => {
                if !rules::is_env_name(name) {
                    self.error(
                        value.position,
                        format!("`{name}` is not a valid environment variable name"),
                    )
                    .expected("letters, digits and `_`");
                    return None;
                }
                match (self.env)(name) {
                    Some(v) => v,
                    None => {
                        self.error(value.position, format!("environment variable `{name}` for `{key}` is not set"))
                            .expected("the variable to be set when `infra` runs")
                            .hint(format!("export {name}=... (for example `export {name}=$(openssl rand -hex 16)`)"));
                        return None;
                    }
                }
            }
            SecretSource::File(path) => match fs_err::read_to_string(self.base_dir.join(path)) {
                Ok(text) => text.trim_end_matches(['\n', '\r']).to_owned(),
                Err(error) => {
                    self.error(
                        value.position,
                        format!("cannot read secret file for `{key}`: {error}"),
                    )
                    .expected("a readable file, relative to the topology file");
                    return None;
                }
            },
        };
        let is_key = key == "tls.key_file";
        if !is_key && !rules::is_secret_value(&resolved) {
            self.error(value.position, format!("the value of {source} for `{key}` has characters `infra` cannot write safely"))
                .expected("1-256 printable ASCII characters without spaces, quotes, `\\`, `#`, `$`, `%` or `:`")
                .hint("generate one with `openssl rand -hex 16`");
            return None;
        }
        if is_key && !resolved.contains("PRIVATE KEY-----") {
            self.error(
                value.position,
                format!("{source} for `{key}` is not a PEM private key"),
            )
            .expected("a PEM file that contains `-----BEGIN ... PRIVATE KEY-----`");
            return None;
        }
        Some(Secret::new(source, resolved))
    }
}

#[derive(Clone, Copy)]
enum PathKind {
    Dir,
    File,
}

fn expand_home(path: &str, base_dir: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
        None => base_dir.join(path),
    }
}
