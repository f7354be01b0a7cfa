//! The edge certificate `infra` generates when the topology asks for TLS without giving one.
//!
//! It is generated once, then read back from the hosts that hold it (the load balancers with
//! `tls: terminate`, the web hosts with `passthrough`): a fresh clone of the repository, a new
//! CI runner, plans no certificate change while the one on the hosts is valid for the
//! topology's names and more than 30 days from expiry. Renewal is a planned change that says
//! why. The private key is read into memory only: it is never printed (every output is
//! scrubbed of it) and never written into a plan.
//!
//! Until the first apply puts it on the hosts, a generated certificate is kept under
//! `.infra/tls/` beside the topology (git-ignored, key mode 0600), so `plan --out` and
//! `apply FILE` on one machine agree.

use std::path::PathBuf;

use anyhow::Context as _;
use infra_plan::facts::HostFacts;
use infra_plan::{CertificateFiles, EdgeCertificate, HostState};
use infra_topology::{CertificateSource, HostName, Secret, SecretSource, TlsMode, Topology};

/// A certificate must be valid for this long, or it is renewed.
const RENEW_BEFORE_DAYS: i64 = 30;
/// How long a generated certificate is valid.
const VALID_DAYS: i64 = 397;

/// Whether a newly generated certificate is kept on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Write it under `.infra/tls/` (render, plan, apply).
    OnDisk,
    /// Only in memory (validate: checking must not write anything).
    InMemory,
}

fn folder(topology: &Topology) -> PathBuf {
    topology.base_dir.join(".infra").join("tls")
}

/// Whether the topology wants a generated certificate.
pub fn wants_generated(topology: &Topology) -> bool {
    topology.load_balancer.as_ref().is_some_and(|lb| {
        lb.tls.mode != TlsMode::Off && matches!(lb.tls.certificate, CertificateSource::Generated)
    })
}

/// The names a certificate of `topology` must hold: the site's name and the VIP.
fn names(topology: &Topology) -> Vec<String> {
    let server_name = topology
        .web
        .as_ref()
        .map_or("localhost", |w| w.server_name.as_str());
    let mut names = vec![server_name.to_owned()];
    if let Some(lb) = &topology.load_balancer {
        names.push(lb.vip.addr().to_string());
    }
    names
}

/// The certificate to render with before the hosts are read: the one kept locally, or a new
/// one (kept locally with `Keep::OnDisk`). `None` when the topology does not want one.
pub fn generated(topology: &Topology, keep: Keep) -> anyhow::Result<Option<EdgeCertificate>> {
    if !wants_generated(topology) {
        return Ok(None);
    }
    let dir = folder(topology);
    let cert_path = dir.join(format!("{}.crt", topology.name));
    let key_path = dir.join(format!("{}.key", topology.name));
    if cert_path.is_file() && key_path.is_file() {
        let chain_pem = infra_topology::read_regular_file(&cert_path, 1024 * 1024)
            .with_context(|| format!("cannot read `{}`", cert_path.display()))?;
        let key = infra_topology::read_regular_file(&key_path, 1024 * 1024)
            .with_context(|| format!("cannot read `{}`", key_path.display()))?;
        let kept = EdgeCertificate {
            chain_pem,
            key_pem: Secret::new(SecretSource::File(key_path.clone()), key),
            renewal: None,
        };
        if problem(topology, &kept.chain_pem).is_none() {
            return Ok(Some(kept));
        }
    }
    let (chain_pem, key_pem) = generate(topology)?;
    if keep == Keep::OnDisk {
        write_private(&cert_path, &chain_pem, 0o644)?;
        write_private(&key_path, &key_pem, 0o600)?;
    }
    Ok(Some(EdgeCertificate {
        chain_pem,
        key_pem: Secret::new(SecretSource::File(key_path), key_pem),
        renewal: None,
    }))
}

/// Keeps `certificate` under `.infra/tls/` until it is on the hosts (a no-op when it is kept
/// already).
pub fn keep(topology: &Topology, certificate: &EdgeCertificate) -> anyhow::Result<()> {
    if !wants_generated(topology) {
        return Ok(());
    }
    let dir = folder(topology);
    let cert_path = dir.join(format!("{}.crt", topology.name));
    let key_path = dir.join(format!("{}.key", topology.name));
    let kept = infra_topology::read_regular_file(&cert_path, 1024 * 1024).ok();
    if kept.as_deref() != Some(certificate.chain_pem.as_str()) {
        write_private(&cert_path, &certificate.chain_pem, 0o644)?;
        write_private(&key_path, certificate.key_pem.expose(), 0o600)?;
    }
    Ok(())
}

fn generate(topology: &Topology) -> anyhow::Result<(String, String)> {
    let names = names(topology);
    let mut params = rcgen::CertificateParams::new(names.clone())
        .context("cannot generate the edge certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        format!("infra ({})", topology.name),
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALID_DAYS);
    let key = rcgen::KeyPair::generate().context("cannot generate the edge certificate's key")?;
    let certificate = params
        .self_signed(&key)
        .context("cannot sign the edge certificate")?;
    Ok((certificate.pem(), key.serialize_pem()))
}

fn write_private(path: &std::path::Path, text: &str, mode: u32) -> anyhow::Result<()> {
    infra_exec::files::write_atomic(path, text.as_bytes(), mode)
        .with_context(|| format!("cannot write `{}`", path.display()))
}

/// What is wrong with a certificate for `topology`, if anything: it does not parse, does not
/// name the site or the VIP, or expires within 30 days.
fn problem(topology: &Topology, chain_pem: &str) -> Option<String> {
    let Some(der) = pem_blocks(chain_pem, "CERTIFICATE").into_iter().next() else {
        return Some("it holds no certificate".to_owned());
    };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&der) else {
        return Some("its certificate cannot be read".to_owned());
    };
    let mut held: Vec<String> = Vec::new();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => held.push((*dns).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        held.push(std::net::Ipv4Addr::from(octets).to_string());
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        held.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(missing) = names(topology).into_iter().find(|n| !held.contains(n)) {
        return Some(format!("it does not name `{missing}`"));
    }
    let expires = certificate.validity().not_after.to_datetime();
    let left = expires - time::OffsetDateTime::now_utc();
    if left.whole_days() < RENEW_BEFORE_DAYS {
        return Some(format!(
            "it expires on {} ({} days from now)",
            expires.date(),
            left.whole_days()
        ));
    }
    None
}

/// The DER bytes of each `-----BEGIN {label}-----` block of `text`.
fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            blocks.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    blocks
}

/// The whole PEM block of the private key in `text`, if there is one.
fn key_block(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN ")?;
    let text = &text[start..];
    let header_end = text.find("-----\n").or_else(|| text.find("-----\r\n"))?;
    let header = &text[..header_end + 5];
    if !header.contains("PRIVATE KEY") {
        let next = &text[header.len()..];
        return key_block(next);
    }
    let label = header
        .trim_start_matches("-----BEGIN ")
        .trim_end_matches("-----");
    let end = format!("-----END {label}-----");
    let stop = text.find(&end)?;
    Some(format!("{}\n", &text[..stop + end.len()]))
}

/// The certificate on one host, as its files hold it.
fn found_on(files: &CertificateFiles, facts: &HostFacts) -> Option<(String, String)> {
    let text = |path| {
        facts
            .certificate_files
            .get(path)
            .map(|k| String::from_utf8_lossy(&k.0).into_owned())
    };
    match files {
        CertificateFiles::Bundle { path } => {
            let bundle = text(path)?;
            let key = key_block(&bundle)?;
            let chain: String = bundle.replace(&key, "");
            Some((format!("{}\n", chain.trim()), key))
        }
        CertificateFiles::Pair { chain, key } => Some((text(chain)?, text(key)?)),
    }
}

/// The certificate to use, once the hosts were read: the first valid one found on the hosts
/// that hold it (in the plan's order), else `provisional`; a renewal when the one on the hosts
/// is no longer fit, with the reason. `None` when the topology does not want one generated.
pub fn settle(
    topology: &Topology,
    hosts: &[HostState],
    facts: &[(HostName, HostFacts)],
    provisional: Option<EdgeCertificate>,
) -> anyhow::Result<Option<EdgeCertificate>> {
    if !wants_generated(topology) {
        return Ok(provisional);
    }
    let mut unfit = None;
    for state in hosts {
        let (Some(files), Some((_, host_facts))) = (
            &state.edge_certificate,
            facts.iter().find(|(name, _)| name == &state.name),
        ) else {
            continue;
        };
        let Some((chain_pem, key_pem)) = found_on(files, host_facts) else {
            continue;
        };
        crate::output::hide_secrets([key_pem.as_str()]);
        match problem(topology, &chain_pem) {
            None => {
                return Ok(Some(EdgeCertificate {
                    chain_pem,
                    key_pem: Secret::new(
                        SecretSource::File(PathBuf::from(format!(
                            "{}:{}",
                            state.name,
                            files.paths()[0]
                        ))),
                        key_pem,
                    ),
                    renewal: None,
                }));
            }
            Some(reason) => {
                unfit.get_or_insert(format!(
                    "renewal: the certificate on `{}` is no longer fit: {reason}",
                    state.name
                ));
            }
        }
    }
    let Some(reason) = unfit else {
        return Ok(provisional);
    };
    // The provisional one may be the local copy of the unfit one: make a new one.
    let provisional = provisional.filter(|p| problem(topology, &p.chain_pem).is_none());
    let (chain_pem, key_pem) = match provisional {
        Some(p) => (p.chain_pem, p.key_pem.expose().to_owned()),
        None => generate(topology)?,
    };
    crate::output::hide_secrets([key_pem.as_str()]);
    Ok(Some(EdgeCertificate {
        chain_pem,
        key_pem: Secret::new(SecretSource::File(folder(topology)), key_pem),
        renewal: Some(reason),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_in_a_bundle_and_the_chain_is_the_rest() {
        let bundle = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n";
        let key = key_block(bundle).expect("a key");
        assert_eq!(
            key,
            "-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(pem_blocks(bundle, "CERTIFICATE").len(), 1);
    }
}
