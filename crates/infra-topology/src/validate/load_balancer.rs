//! `load_balancer:`: hosts, the VIP, VRRP, the health check, stats and TLS.

use std::net::IpAddr;

use ipnet::IpNet;

use super::values::SecretUse;
use super::{Checker, Known};
use crate::model::{
    Algorithm, CertificateSource, Firewall, HealthCheck, Host, LoadBalancer, Preempt, Stats, Tls,
    TlsMode,
};
use crate::raw::{self, Sp};
use crate::rules;
use crate::source::{self, Position};

/// The largest certificate chain `infra` reads.
const CERTIFICATE_LIMIT: u64 = 1024 * 1024;

impl Checker<'_, '_> {
    pub(super) fn load_balancer(
        &mut self,
        lb: &Sp<raw::RawLoadBalancer>,
        known: &Known,
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
        let vip = self.vip(&raw.vip, &names, hosts);
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
            .and_then(|p| self.secret(p, "vrrp_password", SecretUse::VRRP));
        let health_check = self.health_check(&raw.health_check);
        let stats = raw.stats.as_ref().and_then(|s| self.stats(s, firewall));
        let tls = self.tls(&raw.tls);
        Some(LoadBalancer {
            hosts: names,
            vip: vip?,
            interface,
            virtual_router_id,
            vrrp_password,
            preempt: match raw.preempt.as_ref().is_none_or(|p| p.value) {
                true => Preempt::TakeBack,
                false => Preempt::Stay,
            },
            algorithm: raw
                .algorithm
                .as_ref()
                .map_or(Algorithm::Roundrobin, |a| a.value),
            health_check,
            stats,
            tls: tls?,
        })
    }

    fn vip(
        &mut self,
        value: &Sp<String>,
        names: &[crate::model::HostName],
        hosts: &[(Position, Host)],
    ) -> Option<IpNet> {
        let vip = match value.value.parse::<IpNet>() {
            Ok(vip) => vip,
            Err(_) => {
                let hint = if value.value.parse::<IpAddr>().is_ok() {
                    format!(
                        "write it with the subnet's prefix length, e.g. `{}/24`",
                        value.value
                    )
                } else {
                    "the VIP is an address on the load balancers' subnet".to_owned()
                };
                self.error(
                    value.position,
                    format!("`{}` is not an address with a prefix length", value.value),
                )
                .expected("an address and prefix such as `10.77.0.10/24`")
                .hint(hint);
                return None;
            }
        };
        for (_, host) in hosts.iter().filter(|(_, h)| names.contains(&h.name)) {
            if !vip.contains(&host.address) {
                let message = format!(
                    "the VIP `{vip}` is not in the subnet of load balancer `{}` ({})",
                    host.name, host.address
                );
                self.error(value.position, message)
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
            self.error(value.position, message)
                .expected("an address no host uses")
                .hint("pick a free address in the same subnet");
        }
        if vip.prefix_len() < vip.max_prefix_len()
            && (vip.addr() == vip.network() || vip.addr() == vip.broadcast())
        {
            self.error(
                value.position,
                format!(
                    "`{}` is the network or broadcast address of `{}`",
                    vip.addr(),
                    vip.trunc()
                ),
            )
            .expected("a host address inside the subnet");
        }
        Some(vip)
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
        let password = self.secret(&raw.password, "stats.password", SecretUse::STATS);
        let allow_from = match &raw.allow_from {
            Some(list) => self.networks(list),
            None => firewall.admin_sources.clone(),
        };
        Some(Stats {
            port: raw
                .port
                .as_ref()
                .map_or(LoadBalancer::DEFAULT_STATS_PORT, |p| p.value),
            user,
            password: password?,
            allow_from,
        })
    }

    fn tls(&mut self, raw: &raw::RawTls) -> Option<Tls> {
        let mode = raw.mode.as_ref().map_or(TlsMode::Off, |m| m.value);
        let certificate = match (&raw.cert_file, &raw.key_file) {
            (None, None) => CertificateSource::Generated,
            (Some(cert), Some(key)) => {
                let cert = self.certificate_file(cert);
                let key = self.pem_key(key, "tls.key_file");
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

    /// The certificate chain file: a regular file, read now so a bad one is reported here.
    fn certificate_file(&mut self, value: &Sp<String>) -> Option<std::path::PathBuf> {
        let path = self.base_dir.join(&value.value);
        match source::read_regular_file(&path, CERTIFICATE_LIMIT) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => Some(path),
            Ok(_) => {
                self.error(
                    value.position,
                    format!(
                        "`tls.cert_file`: `{}` is not a PEM certificate",
                        path.display()
                    ),
                )
                .expected("a PEM file that contains `-----BEGIN CERTIFICATE-----`");
                None
            }
            Err(error) => {
                self.error(
                    value.position,
                    format!(
                        "`tls.cert_file`: file `{}` cannot be read: {error}",
                        path.display()
                    ),
                )
                .expected("an existing regular file, relative to the topology file");
                None
            }
        }
    }
}
