//! The edge certificate `infra` generates when the topology asks for TLS without giving one.
//!
//! It is generated once and kept under `.infra/tls/` beside the topology (git-ignored, key
//! mode 0600), so every plan and apply sees the same certificate.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use infra_plan::EdgeCertificate;
use infra_topology::{CertificateSource, Secret, SecretSource, TlsMode, Topology};

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

/// The certificate to use when the topology wants one generated; `None` when it does not.
pub fn generated(topology: &Topology, keep: Keep) -> anyhow::Result<Option<EdgeCertificate>> {
    let Some(lb) = &topology.load_balancer else {
        return Ok(None);
    };
    if lb.tls.mode == TlsMode::Off || !matches!(lb.tls.certificate, CertificateSource::Generated) {
        return Ok(None);
    }
    let dir = folder(topology);
    let cert_path = dir.join(format!("{}.crt", topology.name));
    let key_path = dir.join(format!("{}.key", topology.name));
    if cert_path.is_file() && key_path.is_file() {
        let chain_pem = fs_err::read_to_string(&cert_path)?;
        let key = fs_err::read_to_string(&key_path)?;
        return Ok(Some(EdgeCertificate {
            chain_pem,
            key_pem: Secret::new(SecretSource::File(key_path), key),
        }));
    }
    let server_name = topology
        .web
        .as_ref()
        .map_or("localhost", |w| w.server_name.as_str());
    let names = vec![server_name.to_owned(), lb.vip.addr().to_string()];
    let mut params =
        rcgen::CertificateParams::new(names).context("cannot generate the edge certificate")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, server_name);
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        format!("infra lab ({})", topology.name),
    );
    let key = rcgen::KeyPair::generate().context("cannot generate the edge certificate's key")?;
    let certificate = params
        .self_signed(&key)
        .context("cannot sign the edge certificate")?;
    let chain_pem = certificate.pem();
    let key_pem = key.serialize_pem();
    if keep == Keep::OnDisk {
        write_private(&cert_path, &chain_pem, 0o644)?;
        write_private(&key_path, &key_pem, 0o600)?;
    }
    Ok(Some(EdgeCertificate {
        chain_pem,
        key_pem: Secret::new(SecretSource::File(key_path), key_pem),
    }))
}

fn write_private(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    infra_exec::files::write_atomic(path, text.as_bytes(), mode)
        .with_context(|| format!("cannot write `{}`", path.display()))
}
