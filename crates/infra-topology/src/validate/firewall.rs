//! `firewall:` and `lab:`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::Checker;
use crate::model::{Firewall, FirewallMode, Host, Lab, LoadBalancer};
use crate::raw::{self, Sp};
use crate::source::Position;

impl Checker<'_, '_> {
    pub(super) fn firewall(&mut self, raw: &raw::RawFirewall) -> Firewall {
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
            mode: if raw.enabled.as_ref().is_none_or(|e| e.value) {
                FirewallMode::Managed
            } else {
                FirewallMode::Unmanaged
            },
            admin_sources,
        }
    }

    pub(super) fn networks(&mut self, list: &Sp<Vec<Sp<String>>>) -> Vec<IpNet> {
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

    pub(super) fn lab(
        &mut self,
        raw: &raw::RawTopology,
        hosts: &[(Position, Host)],
        lb: Option<&LoadBalancer>,
    ) -> Lab {
        let release = raw
            .lab
            .release
            .as_ref()
            .map(|r| r.value)
            .unwrap_or_default();
        let mut releases = BTreeMap::new();
        for (name, settings) in raw.lab.hosts.iter().flat_map(|h| h.value.iter()) {
            let Some((_, host)) = hosts.iter().find(|(_, h)| h.name.as_str() == name.value) else {
                self.error(
                    name.position,
                    format!("`lab.hosts` names `{}`, which is not a host", name.value),
                )
                .expected("a host declared under `hosts:`");
                continue;
            };
            if let Some(own) = &settings.release
                && own.value != release
            {
                releases.insert(host.name.clone(), own.value);
            }
        }
        let Some(subnet) = &raw.lab.subnet else {
            return Lab {
                subnet: None,
                release,
                releases,
            };
        };
        let Ok(net) = subnet.value.parse::<IpNet>() else {
            self.error(
                subnet.position,
                format!("`{}` is not a subnet", subnet.value),
            )
            .expected("a CIDR network such as `10.77.0.0/24`");
            return Lab {
                subnet: None,
                release,
                releases,
            };
        };
        let mut outside: Vec<String> = hosts
            .iter()
            .filter(|(_, h)| !net.contains(&h.address))
            .map(|(_, h)| format!("`{}` ({})", h.name, h.address))
            .collect();
        if let Some(lb) = lb
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
            release,
            releases,
        }
    }
}
