//! Where a topology's lab lives: its Docker network, subnet, gateway and container names.
//! Pure: computed from the topology alone.

use std::net::IpAddr;

use infra_topology::{Release, Topology};
use ipnet::IpNet;

use super::LabError;

/// The Docker objects a topology's lab consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The topology's name (the value of the `infra.topology` label).
    pub topology: String,
    /// The Docker network, `infra-<topology>`.
    pub network: String,
    /// Its subnet.
    pub subnet: IpNet,
    /// The bridge's own address on it (the control machine's side).
    pub gateway: IpAddr,
    /// One container per host.
    pub hosts: Vec<LabHost>,
}

/// A host of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabHost {
    /// The topology's host name (also the container's hostname).
    pub name: String,
    /// Its address on the lab network.
    pub address: IpAddr,
    /// Where SSH reaches it: its address, or the loopback address its SSH port is published on
    /// when the topology gives it an `ssh_address`.
    pub ssh_address: IpAddr,
    /// The container, `infra-<topology>-<host>`.
    pub container: String,
    /// SSH port sshd listens on.
    pub ssh_port: u16,
    /// The port SSH connects to at `ssh_address`: `ssh_port`, or the port published for it.
    pub connect_port: u16,
    /// The login user.
    pub user: String,
    /// The Debian release its container runs.
    pub release: Release,
}

/// Label every lab object carries, so `down` removes exactly what `up` created.
pub const LABEL_LAB: &str = "infra.lab";
/// Label naming the topology a lab object belongs to.
pub const LABEL_TOPOLOGY: &str = "infra.topology";
/// Label naming the host a container plays.
pub const LABEL_HOST: &str = "infra.host";

impl Layout {
    /// Computes the layout. The subnet is `lab.subnet` if given, else the /24 that holds the
    /// first host; every host and the VIP must fit in it, and the gateway is the first address
    /// of the subnet that no host and no VIP uses.
    pub fn of(topology: &Topology) -> Result<Layout, LabError> {
        let first = topology.hosts.first().ok_or(LabError::NoHosts)?;
        let subnet = match topology.lab.subnet {
            Some(subnet) => subnet,
            None => {
                let prefix = if first.address.is_ipv4() { 24 } else { 64 };
                IpNet::new(first.address, prefix)
                    .map(|n| n.trunc())
                    .map_err(|_| LabError::NoHosts)?
            }
        };
        if !subnet.addr().is_ipv4() {
            return Err(LabError::Ipv6Subnet { subnet });
        }
        let mut used: Vec<IpAddr> = topology.hosts.iter().map(|h| h.address).collect();
        if let Some(lb) = &topology.load_balancer {
            used.push(lb.vip.addr());
        }
        let outside: Vec<String> = topology
            .hosts
            .iter()
            .filter(|h| !subnet.contains(&h.address))
            .map(|h| format!("`{}` ({})", h.name, h.address))
            .chain(
                topology
                    .load_balancer
                    .iter()
                    .filter(|lb| !subnet.contains(&lb.vip.addr()))
                    .map(|lb| format!("the VIP ({})", lb.vip.addr())),
            )
            .collect();
        if !outside.is_empty() {
            return Err(LabError::AddressesOutsideSubnet {
                subnet,
                outside: outside.join(", "),
            });
        }
        let gateway = subnet
            .hosts()
            .find(|candidate| !used.contains(candidate))
            .ok_or(LabError::NoFreeGateway { subnet })?;
        if let Some(host) = topology.hosts.iter().find(|h| {
            h.ssh_address() != h.address
                && !(h.ssh_address().is_loopback() && h.ssh_address().is_ipv4())
        }) {
            return Err(LabError::SshAddressOutsideLab {
                host: host.name.to_string(),
                address: host.ssh_address(),
            });
        }
        let hosts = topology
            .hosts
            .iter()
            .map(|h| LabHost {
                name: h.name.to_string(),
                address: h.address,
                ssh_address: h.ssh_address(),
                container: format!("infra-{}-{}", topology.name, h.name),
                ssh_port: h.ssh.port,
                connect_port: h.ssh_port(),
                user: h.ssh.user.clone(),
                release: topology.lab.release_of(&h.name),
            })
            .collect();
        Ok(Layout {
            topology: topology.name.to_string(),
            network: format!("infra-{}", topology.name),
            subnet,
            gateway,
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(yaml: &str) -> Topology {
        let source = infra_topology::SourceFile::new("t.yaml", yaml);
        match infra_topology::load_source(source, &|_| Some("s3cret".to_owned())) {
            Ok(loaded) => loaded.topology,
            Err(error) => panic!("test topology invalid: {error:?}"),
        }
    }

    #[test]
    fn the_subnet_defaults_to_the_first_hosts_slash_24_and_the_gateway_avoids_hosts() {
        let t =
            topology("name: t\nhosts:\n  a: { address: 10.1.2.1 }\n  b: { address: 10.1.2.2 }\n");
        let layout = Layout::of(&t).expect("layout");
        assert_eq!(layout.subnet.to_string(), "10.1.2.0/24");
        assert_eq!(layout.gateway.to_string(), "10.1.2.3");
        assert_eq!(layout.network, "infra-t");
        assert_eq!(layout.hosts[1].container, "infra-t-b");
    }

    #[test]
    fn hosts_outside_the_subnet_are_named() {
        let t =
            topology("name: t\nhosts:\n  a: { address: 10.1.2.1 }\n  b: { address: 10.1.3.1 }\n");
        let error = Layout::of(&t).expect_err("b is outside");
        assert_eq!(
            error.to_string(),
            "the lab subnet `10.1.2.0/24` does not hold `b` (10.1.3.1)"
        );
        assert!(error.hint().is_some_and(|h| h.contains("lab.subnet")));
    }

    #[test]
    fn the_vip_is_kept_free_of_the_gateway() {
        let t = topology(
            "name: t\nhosts:\n  a: { address: 10.1.2.2 }\n  b: { address: 10.1.2.3 }\n  w: { address: 10.1.2.4 }\n\
             load_balancer: { hosts: [a, b], vip: 10.1.2.1/24 }\nweb: { hosts: [w] }\n",
        );
        assert_eq!(
            Layout::of(&t).expect("layout").gateway.to_string(),
            "10.1.2.5"
        );
    }
}
