//! Preflight: what a host must be before `infra` changes it, read in the same round trip as
//! every other fact and judged here, so `plan` reports it before anything is touched.

use std::net::IpAddr;

use infra_topology::{HostName, Release};
use serde::{Deserialize, Serialize};

use crate::facts::HostFacts;

/// The release of `os` (`ID VERSION_ID` of `/etc/os-release`, e.g. `debian 13`) when `infra`
/// converges it.
pub fn supported(os: &str) -> Option<Release> {
    let mut words = os.split_whitespace();
    let (id, version) = (words.next()?, words.next()?);
    Release::ALL
        .into_iter()
        .find(|r| id == "debian" && r.version() == version)
}

/// Below this much free space in `/var`, packages and MariaDB's data may not fit.
pub const MIN_VAR_FREE_KIB: u64 = 1024 * 1024;

/// A host's clock further than this from the controller's is too far off.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 60;

/// How long `apt-get` waits for the package lock that someone else holds.
pub const APT_LOCK_TIMEOUT_SECONDS: u32 = 300;

/// What preflight asks of a host beyond what every host is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightRequest {
    /// The interface that must carry the host's address (a load balancer's VRRP interface).
    pub interface: Option<String>,
}

impl PreflightRequest {
    /// What preflight asks of `host`: a load balancer's VRRP interface must carry its address.
    pub fn for_host(topology: &infra_topology::Topology, host: &HostName) -> PreflightRequest {
        PreflightRequest {
            interface: topology
                .load_balancer
                .as_ref()
                .filter(|lb| lb.hosts.contains(host))
                .map(|lb| lb.interface.clone()),
        }
    }
}

/// What the host said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightFacts {
    /// The host's clock, in seconds since the epoch, when it answered.
    pub clock: Option<i64>,
    /// Free space in `/var`, in KiB.
    pub var_free_kib: Option<u64>,
    /// Who holds dpkg's locks (`command (pid N)`).
    pub dpkg_lock: Vec<String>,
    /// The interface asked about.
    pub interface: Option<InterfaceFact>,
}

/// The interface asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InterfaceFact {
    /// It exists, with these addresses (`ADDRESS/PREFIX`).
    Present {
        /// Its name.
        name: String,
        /// Its addresses.
        addresses: Vec<String>,
    },
    /// It does not exist; these do.
    Missing {
        /// Its name.
        name: String,
        /// The host's interfaces.
        present: Vec<String>,
    },
}

/// Whether a finding stops the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The host is not planned: nothing is changed on it.
    Stops,
    /// The plan says so; apply goes on.
    Warns,
}

/// One thing preflight found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stop or warn.
    pub severity: Severity,
    /// What is wrong, naming the host.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl Finding {
    fn stops(message: String, hint: &str) -> Finding {
        Finding {
            severity: Severity::Stops,
            message,
            hint: Some(hint.to_owned()),
        }
    }
}

/// This machine's clock (seconds since the epoch) when it asked and when the answer came: the
/// host's clock was read in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    /// When the script was sent.
    pub sent: i64,
    /// When its answer arrived.
    pub answered: i64,
}

/// Judges `facts` of `host` (whose topology address is `address`), asked at `asked`.
pub fn check(host: &HostName, address: IpAddr, facts: &HostFacts, asked: Asked) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(os) = &facts.os
        && supported(os).is_none()
    {
        let names: Vec<String> = Release::ALL.into_iter().map(Release::title).collect();
        findings.push(Finding::stops(
            format!(
                "`{host}` runs {}; `infra` supports {}",
                if os.trim().is_empty() {
                    "an unknown system"
                } else {
                    os.trim()
                },
                names.join(" and ")
            ),
            "use a supported release for this host",
        ));
    }
    let preflight = &facts.preflight;
    if let Some(free) = preflight.var_free_kib
        && free < MIN_VAR_FREE_KIB
    {
        findings.push(Finding::stops(
            format!(
                "`{host}` has {} MiB free in /var; packages and MariaDB's data need at least {} MiB",
                free / 1024,
                MIN_VAR_FREE_KIB / 1024
            ),
            "free some space (`apt-get clean`, old logs) or grow the filesystem",
        ));
    }
    if let Some(clock) = preflight.clock {
        // Off only when outside the time the question took, widened by the tolerance.
        let skew = if clock < asked.sent {
            clock.saturating_sub(asked.sent)
        } else if clock > asked.answered {
            clock.saturating_sub(asked.answered)
        } else {
            0
        };
        if skew.unsigned_abs() > MAX_CLOCK_SKEW_SECONDS.unsigned_abs() {
            findings.push(Finding::stops(
                format!(
                    "the clock of `{host}` is {} {} this machine's",
                    duration(skew.unsigned_abs()),
                    if skew > 0 { "ahead of" } else { "behind" }
                ),
                "TLS certificates and replication need agreeing clocks: run an NTP client (`systemd-timesyncd`, `chrony`) on both",
            ));
        }
    }
    if !preflight.dpkg_lock.is_empty() {
        findings.push(Finding {
            severity: Severity::Warns,
            message: format!(
                "apt's lock on `{host}` is held by {}: apply waits up to {} minutes for it",
                preflight.dpkg_lock.join(", "),
                APT_LOCK_TIMEOUT_SECONDS / 60
            ),
            hint: None,
        });
    }
    match &preflight.interface {
        Some(InterfaceFact::Missing { name, present }) => findings.push(Finding::stops(
            format!(
                "`{host}` has no interface `{name}` for the VIP (it has {})",
                listed(present)
            ),
            "set `load_balancer.interface` to the interface that carries the host's address",
        )),
        Some(InterfaceFact::Present { name, addresses }) => {
            let carries = addresses.iter().any(|a| {
                a.split('/').next().and_then(|ip| ip.parse::<IpAddr>().ok()) == Some(address)
            });
            if !carries {
                findings.push(Finding::stops(
                    format!(
                        "interface `{name}` of `{host}` does not carry its address {address} (it has {})",
                        listed(addresses)
                    ),
                    "VRRP sends from the host's address on the VIP's interface: set `load_balancer.interface` to the one that carries it",
                ));
            }
        }
        None => {}
    }
    findings
}

fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn duration(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostName {
        HostName::new("lb1").expect("name")
    }

    fn address() -> IpAddr {
        "10.0.0.11".parse().expect("address")
    }

    fn facts(edit: impl FnOnce(&mut HostFacts)) -> HostFacts {
        let mut facts = HostFacts {
            os: Some("debian 12".to_owned()),
            ..HostFacts::default()
        };
        facts.preflight = PreflightFacts {
            clock: Some(1_000),
            var_free_kib: Some(10 * 1024 * 1024),
            dpkg_lock: Vec::new(),
            interface: Some(InterfaceFact::Present {
                name: "eth0".to_owned(),
                addresses: vec!["10.0.0.11/24".to_owned(), "10.0.0.10/24".to_owned()],
            }),
        };
        edit(&mut facts);
        facts
    }

    fn messages(facts: &HostFacts) -> Vec<(Severity, String)> {
        let asked = Asked {
            sent: 1_005,
            answered: 1_010,
        };
        check(&host(), address(), facts, asked)
            .into_iter()
            .map(|f| (f.severity, f.message))
            .collect()
    }

    #[test]
    fn a_fit_host_passes() {
        assert_eq!(messages(&facts(|_| {})), []);
        assert!(
            messages(&facts(|f| f.os = Some("debian 13".to_owned()))).is_empty(),
            "Debian 13 is supported"
        );
        assert_eq!(super::supported("debian 12"), Some(Release::Bookworm));
        assert_eq!(super::supported("debian 13"), Some(Release::Trixie));
        assert_eq!(super::supported("debian 14"), None);
        assert_eq!(super::supported("ubuntu 13"), None);
    }

    #[test]
    fn each_problem_is_named_with_its_host() {
        let cases: Vec<(HostFacts, Severity, &str)> = vec![
            (
                facts(|f| f.os = Some("ubuntu 22.04".to_owned())),
                Severity::Stops,
                "`lb1` runs ubuntu 22.04; `infra` supports Debian 12 (bookworm) and Debian 13 (trixie)",
            ),
            (
                facts(|f| f.os = Some("debian 11".to_owned())),
                Severity::Stops,
                "`lb1` runs debian 11; `infra` supports Debian 12 (bookworm) and Debian 13 (trixie)",
            ),
            (
                facts(|f| f.preflight.var_free_kib = Some(300 * 1024)),
                Severity::Stops,
                "`lb1` has 300 MiB free in /var; packages and MariaDB's data need at least 1024 MiB",
            ),
            (
                facts(|f| f.preflight.clock = Some(1_005 - 3 * 3600 - 120)),
                Severity::Stops,
                "the clock of `lb1` is 3 h 2 min behind this machine's",
            ),
            (
                facts(|f| f.preflight.clock = Some(1_010 + 90)),
                Severity::Stops,
                "the clock of `lb1` is 90 s ahead of this machine's",
            ),
            (
                facts(|f| f.preflight.dpkg_lock = vec!["unattended-upgr (pid 812)".to_owned()]),
                Severity::Warns,
                "apt's lock on `lb1` is held by unattended-upgr (pid 812): apply waits up to 5 minutes for it",
            ),
            (
                facts(|f| {
                    f.preflight.interface = Some(InterfaceFact::Missing {
                        name: "eth1".to_owned(),
                        present: vec!["eth0".to_owned(), "lo".to_owned()],
                    });
                }),
                Severity::Stops,
                "`lb1` has no interface `eth1` for the VIP (it has `eth0`, `lo`)",
            ),
            (
                facts(|f| {
                    f.preflight.interface = Some(InterfaceFact::Present {
                        name: "lo".to_owned(),
                        addresses: vec!["127.0.0.1/8".to_owned()],
                    });
                }),
                Severity::Stops,
                "interface `lo` of `lb1` does not carry its address 10.0.0.11 (it has `127.0.0.1/8`)",
            ),
        ];
        for (facts, severity, message) in cases {
            assert_eq!(messages(&facts), [(severity, message.to_owned())]);
        }
    }

    #[test]
    fn a_clock_within_a_minute_of_the_question_is_fine_and_any_value_is_safe() {
        for clock in [1_005 - 60, 1_007, 1_010 + 60] {
            assert_eq!(messages(&facts(|f| f.preflight.clock = Some(clock))), []);
        }
        for clock in [i64::MIN, i64::MAX] {
            assert_eq!(
                messages(&facts(|f| f.preflight.clock = Some(clock))).len(),
                1,
                "{clock}"
            );
        }
    }
}
