//! `hosts:` and `defaults:`: names, addresses, SSH settings, and references to hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use super::values::expand_home;
use super::{Checker, Known};
use crate::model::{Become, Host, HostName, Ssh};
use crate::node::list;
use crate::raw::{self, Sp};
use crate::rules;
use crate::source::Position;

/// Hosts by where SSH reaches them (address, port, jump hosts), each with whether its
/// `ssh_address` said so.
type SshTargets = BTreeMap<(IpAddr, u16, Vec<String>), (String, bool)>;

/// At most this many known names are listed in an "expected" line.
const LISTED_NAMES: usize = 12;

impl Checker<'_, '_> {
    pub(super) fn hosts(&mut self, raw: &raw::RawTopology) -> Vec<(Position, Host)> {
        if raw.hosts.value.is_empty() {
            self.error(raw.hosts.position, "`hosts` is empty")
                .expected("at least one host, e.g. `web1: { address: 10.77.0.21 }`");
        }
        let default_become = raw.defaults.become_method.as_ref().map(|b| b.value);
        let mut seen: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut ssh_targets = SshTargets::new();
        let mut hosts = Vec::new();
        for (name, host) in &raw.hosts.value {
            let position = name.position;
            let checked = HostName::new(name.value.clone());
            if checked.is_none() {
                self.error(
                    name.position,
                    format!("`{}` is not a valid host name", name.value),
                )
                .expected("a lowercase letter, then lowercase letters, digits and `-` (at most 63)")
                .hint("names end up in file paths, container names and shell commands");
            }
            let address = self.address(&host.address, &name.value, &mut seen);
            let mut ssh = self.ssh(&raw.defaults.ssh, host.ssh.as_ref());
            if let Some(given) = &host.ssh_address
                && let Some((resolved, from_name, port)) = self.ssh_address(given, &name.value)
            {
                ssh.address = Some(resolved);
                ssh.address_name = from_name;
                ssh.address_port = port;
            }
            if let Some((resolved, _)) = &address {
                self.ssh_target(&mut ssh_targets, &name.value, host, &ssh, *resolved);
            }
            let become_method = host
                .become_method
                .as_ref()
                .map(|b| b.value)
                .or(default_become)
                .unwrap_or(if ssh.user == "root" {
                    Become::None
                } else {
                    Become::Sudo
                });
            if let (Some(name), Some((address, address_name))) = (checked, address) {
                hosts.push((
                    position,
                    Host {
                        name,
                        address,
                        address_name,
                        ssh,
                        become_method,
                    },
                ));
            }
        }
        hosts
    }

    /// A host's address: an IP address or a DNS name resolved to one, unique, unicast, and
    /// written in its plain form (an IPv4-mapped IPv6 address is the IPv4 host under another
    /// spelling). Returns the address and the name it came from.
    fn address(
        &mut self,
        value: &Sp<String>,
        host: &str,
        seen: &mut BTreeMap<IpAddr, String>,
    ) -> Option<(IpAddr, Option<String>)> {
        let (address, name) = self.resolve(value, &format!("the address of `{host}`"))?;
        // A name's address is already in its plain form; an address given must be written so.
        let canonical = address.to_canonical();
        if canonical != address {
            self.error(
                value.position,
                format!("`{address}` is an IPv4 address written as IPv6"),
            )
            .expected(format!("`{canonical}`"))
            .hint("the firewall, the database accounts and the lab compare addresses as written");
        }
        if name.is_some() && canonical.is_loopback() {
            self.warning(
                value.position,
                format!(
                    "`{}` (the address of `{host}`) resolves to {canonical}, a loopback address",
                    value.value
                ),
            )
            .hint("the other tiers reach a host at its address, and its firewall rules and database accounts name it: /etc/hosts may map this machine's own name to 127.0.1.1");
        }
        if let Some(other) = seen.get(&canonical) {
            let message = format!("address `{canonical}` is used by `{other}` and `{host}`");
            self.error(value.position, message)
                .expected("a different address for every host");
        } else {
            seen.insert(canonical, host.to_owned());
        }
        if canonical.is_unspecified() || canonical.is_multicast() {
            let message = format!("`{canonical}` cannot be a host's address");
            self.error(value.position, message)
                .expected("a unicast address");
        }
        Some((canonical, name))
    }

    /// Records where SSH reaches `name` (at `address` unless it has an `ssh_address`). Two hosts
    /// at one SSH address and port, with the same jump hosts, are one host to ssh; equal
    /// addresses are reported as such, so this speaks when an `ssh_address` makes them meet.
    fn ssh_target(
        &mut self,
        targets: &mut SshTargets,
        name: &str,
        host: &raw::RawHost,
        ssh: &Ssh,
        address: IpAddr,
    ) {
        let target = (
            ssh.address.unwrap_or(address),
            ssh.address_port.unwrap_or(ssh.port),
            ssh.jump.clone(),
        );
        let explicit = host.ssh_address.is_some();
        match targets.get(&target) {
            Some((other, other_explicit)) if explicit || *other_explicit => {
                let message = format!(
                    "`{other}` and `{name}` are both reached over SSH at {} port {}",
                    target.0, target.1
                );
                let at = host
                    .ssh_address
                    .as_ref()
                    .map_or(host.address.position, |a| a.position);
                self.error(at, message)
                    .expected("a different `ssh_address` or port for every host");
            }
            Some(_) => {}
            None => {
                targets.insert(target, (name.to_owned(), explicit));
            }
        }
    }

    /// A host's `ssh_address`: an IP address or DNS name, with a port after `:` when ssh
    /// connects to another port than `ssh.port` (a port forward: the firewall still opens
    /// `ssh.port`, where sshd listens). IPv6 with a port is bracketed: `[2001:db8::1]:2201`.
    fn ssh_address(
        &mut self,
        value: &Sp<String>,
        host: &str,
    ) -> Option<(IpAddr, Option<String>, Option<u16>)> {
        let text = value.value.as_str();
        let (address, port) = if let Some(inner) = text.strip_prefix('[') {
            match inner.split_once("]:") {
                Some((address, port)) => (address, Some(port)),
                None => (inner.strip_suffix(']').unwrap_or(inner), None),
            }
        } else {
            match text.split_once(':') {
                Some((address, port)) if !port.contains(':') => (address, Some(port)),
                _ => (text, None),
            }
        };
        let port = match port.map(str::parse::<u16>) {
            None => None,
            Some(Ok(port)) if port != 0 => Some(port),
            Some(_) => {
                self.error(value.position, format!("`{text}` does not end in a port"))
                    .expected("`ADDRESS` or `ADDRESS:PORT` (1-65535), `[IPV6]:PORT` for IPv6");
                return None;
            }
        };
        let part = Sp {
            value: address.to_owned(),
            position: value.position,
        };
        let (resolved, name) = self.resolve(&part, &format!("`{host}`'s `ssh_address`"))?;
        let canonical = resolved.to_canonical();
        if canonical.is_unspecified() || canonical.is_multicast() {
            self.error(
                value.position,
                format!("`{canonical}` cannot be an SSH address"),
            )
            .expected("a unicast address");
            return None;
        }
        Some((canonical, name, port))
    }

    /// `value` as an IP address, or the one address its DNS name resolves to (one IPv4
    /// address, else one IPv6 address), with the name. `what` says whose address it is.
    fn resolve(&mut self, value: &Sp<String>, what: &str) -> Option<(IpAddr, Option<String>)> {
        if let Ok(address) = value.value.parse::<IpAddr>() {
            return Some((address, None));
        }
        if !rules::is_dns_name(&value.value) || rules::looks_numeric(&value.value) {
            let message = format!("`{}` is not an IP address or a DNS name", value.value);
            self.error(value.position, message).expected(
                "an IPv4 or IPv6 address such as `10.77.0.21`, or a DNS name such as `web1.example.com`",
            );
            return None;
        }
        let found = match (self.resolve_name)(&value.value) {
            Ok(found) => found,
            Err(reason) => {
                let message = format!("`{}` ({what}) does not resolve: {reason}", value.value);
                self.error(value.position, message)
                    .expected("a name this machine resolves, or the address itself");
                return None;
            }
        };
        let mut found: Vec<IpAddr> = found.iter().map(IpAddr::to_canonical).collect();
        found.sort();
        found.dedup();
        let v4: Vec<IpAddr> = found.iter().copied().filter(IpAddr::is_ipv4).collect();
        let pick = match (v4.as_slice(), found.as_slice()) {
            ([one], _) => Some(*one),
            ([], [one]) => Some(*one),
            _ => None,
        };
        let Some(address) = pick else {
            let listed: Vec<String> = found.iter().map(ToString::to_string).collect();
            let message = if found.is_empty() {
                format!("`{}` ({what}) resolves to no address", value.value)
            } else {
                format!(
                    "`{}` ({what}) resolves to several addresses: {}",
                    value.value,
                    listed.join(", ")
                )
            };
            self.error(value.position, message)
                .expected("a name with one IPv4 address (or one IPv6 address), or the address itself")
                .hint("the firewall and the database accounts are written with the one address the host is reached at");
            return None;
        };
        Some((address, Some(value.value.clone())))
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
        let mut hops = Vec::new();
        if let Some(jump) = jump {
            for hop in jump.value.split(',') {
                if rules::is_jump_hop(hop) {
                    hops.push(hop.to_owned());
                } else {
                    self.error(
                        jump.position,
                        format!("`{hop}` is not a valid jump host"),
                    )
                    .expected("`[user@]host[:port]` as OpenSSH's ProxyJump takes it, several separated by `,`")
                    .hint("a host may not start with `-`: ssh would read it as an option");
                }
            }
        }
        if let Some(port) = port.filter(|p| p.value == 0) {
            self.error(port.position, "SSH port 0 is not a port")
                .expected("1-65535");
        }
        let identity_file = identity.and_then(|i| {
            if i.value.chars().any(|c| c.is_control() || c == '"') {
                self.error(
                    i.position,
                    format!("`{}` is not a usable key path", i.value),
                )
                .expected("a path without quotes or control characters");
                return None;
            }
            let home = (self.env)("HOME").map(PathBuf::from);
            Some(expand_home(&i.value, self.base_dir, home.as_deref()))
        });
        Ssh {
            user: user.map_or_else(|| "root".to_owned(), |u| u.value.clone()),
            port: port.map_or(22, |p| p.value),
            identity_file,
            jump: hops,
            address: None,
            address_name: None,
            address_port: None,
        }
    }

    /// Resolves a list of host references, reporting undeclared and repeated names.
    pub(super) fn host_list(
        &mut self,
        list: &Sp<Vec<Sp<String>>>,
        known: &Known,
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

    pub(super) fn host_ref(
        &mut self,
        name: &Sp<String>,
        known: &Known,
        tier: &str,
    ) -> Option<HostName> {
        if known.contains_key(&name.value) {
            return HostName::new(name.value.clone());
        }
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        let suggestion = self.suggest(&name.value, &names);
        let shown = if names.len() > LISTED_NAMES {
            format!(
                "{} (and {} more)",
                list(&names[..LISTED_NAMES]),
                names.len() - LISTED_NAMES
            )
        } else {
            list(&names)
        };
        let diagnostic = self
            .error(
                name.position,
                format!("`{tier}` refers to undeclared host `{}`", name.value),
            )
            .expected(format!("one of the hosts declared under `hosts`: {shown}"));
        diagnostic.hint = Some(match suggestion {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "declare it under `hosts:` as `{}: {{ address: ... }}`",
                name.value
            ),
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::{LoadError, SourceFile, Topology, load_source_resolving};

    /// A resolver that knows a few names and says why it cannot resolve the others.
    fn resolve(name: &str) -> Result<Vec<IpAddr>, String> {
        let found: &[&str] = match name {
            "web1.example.test" => &["10.9.0.21"],
            "dual.example.test" => &["2001:db8::21", "10.9.0.22"],
            "two.example.test" => &["10.9.0.23", "10.9.0.24"],
            "bastion.example.test" => &["203.0.113.7"],
            _ => return Err("Name or service not known".to_owned()),
        };
        Ok(found.iter().filter_map(|a| a.parse().ok()).collect())
    }

    fn load(hosts: &str) -> Result<Topology, String> {
        let text = format!("name: t\nhosts:\n{hosts}");
        let source = SourceFile::new("t.yaml", text);
        match load_source_resolving(source, &|_| None, &resolve) {
            Ok(loaded) => Ok(loaded.topology),
            Err(LoadError::Invalid { diagnostics, .. }) => Err(diagnostics
                .sorted()
                .iter()
                .filter(|d| d.severity == crate::diagnostic::Severity::Error)
                .map(|d| format!("{}:{}: {}", d.position.line, d.position.column, d.message))
                .collect::<Vec<_>>()
                .join("\n")),
            Err(other) => Err(other.to_string()),
        }
    }

    #[test]
    fn a_host_named_in_dns_gets_the_address_its_name_resolves_to() {
        let topology = load(
            "  web1: { address: web1.example.test }\n  web2: { address: dual.example.test }\n",
        )
        .expect("valid");
        let web1 = &topology.hosts[0];
        assert_eq!(web1.address.to_string(), "10.9.0.21");
        assert_eq!(web1.address_name.as_deref(), Some("web1.example.test"));
        assert_eq!(web1.ssh_address(), web1.address);
        // Both families: the IPv4 address is the one.
        assert_eq!(topology.hosts[1].address.to_string(), "10.9.0.22");
    }

    #[test]
    fn ssh_goes_to_the_ssh_address_while_the_tiers_use_the_address() {
        let topology = load(
            "  web1: { address: 10.9.0.21, ssh_address: bastion.example.test, ssh: { port: 2201 } }\n  web2: { address: 10.9.0.22, ssh_address: 203.0.113.7, ssh: { port: 2202 } }\n",
        )
        .expect("valid: one public address, a port per host");
        let web1 = &topology.hosts[0];
        assert_eq!(web1.address.to_string(), "10.9.0.21");
        assert_eq!(web1.ssh_address().to_string(), "203.0.113.7");
        assert_eq!(
            web1.resolved_names(),
            [(
                "ssh_address",
                "bastion.example.test",
                "203.0.113.7".parse::<IpAddr>().expect("address")
            )]
        );
        assert_eq!(topology.hosts[1].ssh_address().to_string(), "203.0.113.7");
    }

    #[test]
    fn names_that_do_not_resolve_to_one_address_are_errors_at_their_position() {
        let error = load("  web1: { address: nowhere.example.test }\n").expect_err("unresolved");
        assert_eq!(
            error,
            "3:20: `nowhere.example.test` (the address of `web1`) does not resolve: Name or service not known"
        );
        let error = load("  web1: { address: two.example.test }\n").expect_err("ambiguous");
        assert_eq!(
            error,
            "3:20: `two.example.test` (the address of `web1`) resolves to several addresses: 10.9.0.23, 10.9.0.24"
        );
        let error = load("  web1: { address: 10.9.0.21, ssh_address: nowhere.example.test }\n")
            .expect_err("unresolved ssh_address");
        assert!(
            error.contains("(`web1`'s `ssh_address`) does not resolve"),
            "{error}"
        );
        // A mistyped address is never looked up as a name.
        let error = load("  web1: { address: 10.9.0.300 }\n").expect_err("not an address");
        assert_eq!(
            error,
            "3:20: `10.9.0.300` is not an IP address or a DNS name"
        );
    }

    #[test]
    fn an_ssh_address_may_name_the_port_of_a_forward_and_the_firewall_keeps_ssh_port() {
        let topology = load(
            "  web1: { address: 10.9.0.21, ssh_address: \"bastion.example.test:2201\" }\n  web2: { address: 10.9.0.22, ssh_address: \"[2001:db8::7]:2202\" }\n  web3: { address: 10.9.0.23, ssh_address: \"2001:db8::8\", ssh: { port: 2222 } }\n",
        )
        .expect("valid");
        let [web1, web2, web3] = &topology.hosts[..] else {
            panic!("three hosts");
        };
        assert_eq!(
            (web1.ssh_address().to_string(), web1.ssh_port()),
            ("203.0.113.7".to_owned(), 2201)
        );
        assert_eq!(web1.ssh.port, 22, "sshd's port, which the firewall opens");
        assert_eq!(
            (web2.ssh_address().to_string(), web2.ssh_port()),
            ("2001:db8::7".to_owned(), 2202)
        );
        assert_eq!(
            (web3.ssh_address().to_string(), web3.ssh_port()),
            ("2001:db8::8".to_owned(), 2222)
        );
    }

    #[test]
    fn ssh_addresses_that_cannot_be_one_hosts_are_refused() {
        let refused = |hosts: &str, said: &str| {
            let error = load(hosts).expect_err(said);
            assert!(error.contains(said), "`{said}` not in: {error}");
        };
        refused(
            "  web1: { address: 10.9.0.21, ssh_address: \"10.9.0.1:0\" }\n",
            "`10.9.0.1:0` does not end in a port",
        );
        refused(
            "  web1: { address: 10.9.0.21, ssh_address: 0.0.0.0 }\n",
            "`0.0.0.0` cannot be an SSH address",
        );
        refused(
            "  web1: { address: 10.9.0.21, ssh_address: 0x7f000001 }\n",
            "`0x7f000001` is not an IP address or a DNS name",
        );
        refused(
            "  web1: { address: 10.9.0.21, ssh_address: \"203.0.113.7:2201\" }\n  web2: { address: 10.9.0.22, ssh_address: \"bastion.example.test:2201\" }\n",
            "`web1` and `web2` are both reached over SSH at 203.0.113.7 port 2201",
        );
        refused(
            "  web1: { address: 10.9.0.21, ssh_address: \"::ffff:10.9.0.22\" }\n  web2: { address: 10.9.0.22 }\n",
            "`web1` and `web2` are both reached over SSH at 10.9.0.22 port 22",
        );
        // Through different bastions, one address is two hosts.
        load("  web1: { address: 10.9.0.21, ssh_address: 192.168.0.5, ssh: { jump: a.example.test } }\n  web2: { address: 10.9.0.22, ssh_address: 192.168.0.5, ssh: { jump: b.example.test } }\n")
            .expect("different jump hosts");
    }

    #[test]
    fn a_name_and_an_address_of_the_same_host_are_one_address_twice() {
        let error =
            load("  web1: { address: web1.example.test }\n  web2: { address: 10.9.0.21 }\n")
                .expect_err("duplicate");
        assert!(
            error.contains("address `10.9.0.21` is used by `web1` and `web2`"),
            "{error}"
        );
    }
}
