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
            let ssh = self.ssh(&raw.defaults.ssh, host.ssh.as_ref());
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
            if let (Some(name), Some(address)) = (checked, address) {
                hosts.push((
                    position,
                    Host {
                        name,
                        address,
                        ssh,
                        become_method,
                    },
                ));
            }
        }
        hosts
    }

    /// A host's address: an IP address, unique, unicast, and written in its plain form (an
    /// IPv4-mapped IPv6 address is the IPv4 host under another spelling).
    fn address(
        &mut self,
        value: &Sp<String>,
        host: &str,
        seen: &mut BTreeMap<IpAddr, String>,
    ) -> Option<IpAddr> {
        let Ok(address) = value.value.parse::<IpAddr>() else {
            let message = format!("`{}` is not an IP address", value.value);
            self.error(value.position, message)
                .expected("an IPv4 or IPv6 address such as `10.77.0.21`")
                .hint("host names are not resolved: give the address itself");
            return None;
        };
        let canonical = address.to_canonical();
        if canonical != address {
            self.error(
                value.position,
                format!("`{address}` is an IPv4 address written as IPv6"),
            )
            .expected(format!("`{canonical}`"))
            .hint("the firewall, the database accounts and the lab compare addresses as written");
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
        Some(canonical)
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
