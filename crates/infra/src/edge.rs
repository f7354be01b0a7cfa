//! The edge check: from the controller, through the VIP, the way a client comes in. The site
//! and the app's health path are requested by the site's name, over HTTPS when the edge
//! speaks it, with the edge certificate `infra` manages as the only trust root (never "accept
//! any certificate"): an answer proves that the load balancer holding the VIP serves this
//! topology's site and reaches the app tier.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra_topology::{TlsMode, Topology};

/// What the edge check asks, and where.
#[derive(Debug, Clone)]
pub struct Edge {
    /// `https` or `http`.
    scheme: &'static str,
    /// The site's name (the `Host` and, over TLS, the name the certificate must carry).
    server_name: String,
    /// Where the controller connects: the VIP, or the address given by `--edge-url`.
    address: SocketAddr,
    /// The paths requested: the site, and the app's health path through the web tier.
    paths: Vec<String>,
    /// The trust roots (DER), over TLS.
    roots: Vec<Vec<u8>>,
}

/// One answer of the edge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    /// The URL asked.
    pub url: String,
    /// Whether it answered 2xx.
    pub ok: bool,
    /// `HTTP 200`, or why there was no answer.
    pub detail: String,
}

/// Why the edge check cannot even start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// `--edge-url` is not `http(s)://HOST[:PORT]` with an address `infra` can reach.
    #[error(
        "`{0}` is not an edge URL: expected `https://ADDRESS[:PORT]` or `http://ADDRESS[:PORT]`"
    )]
    BadUrl(String),
    /// The certificate to trust could not be read.
    #[error("the edge certificate cannot be used as the trust root: {0}")]
    Certificate(String),
    /// The HTTP client could not be built.
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

impl Edge {
    /// The edge of `topology`: `None` when it has no load balancer or no web tier. `chain_pem`
    /// is the certificate the edge serves (required over TLS); `url` replaces the VIP as the
    /// address connected to.
    pub fn of(
        topology: &Topology,
        chain_pem: Option<&str>,
        url: Option<&str>,
    ) -> Result<Option<Edge>, EdgeError> {
        let (Some(lb), Some(web)) = (&topology.load_balancer, &topology.web) else {
            return Ok(None);
        };
        let scheme = match lb.tls.mode {
            TlsMode::Off => "http",
            TlsMode::Terminate | TlsMode::Passthrough => "https",
        };
        let address = match url {
            Some(url) => parse_url(url, scheme)?,
            None => SocketAddr::new(lb.vip.addr(), if scheme == "https" { 443 } else { 80 }),
        };
        let roots = if scheme == "https" {
            let pem = chain_pem.ok_or_else(|| {
                EdgeError::Certificate("`infra` does not know the edge's certificate".to_owned())
            })?;
            der_certificates(pem)?
        } else {
            Vec::new()
        };
        let mut paths = vec!["/".to_owned()];
        if let Some(app) = &topology.app {
            paths.push(app.health_path_at_edge(web));
        }
        Ok(Some(Edge {
            scheme,
            server_name: web.server_name.clone(),
            address,
            paths,
            roots,
        }))
    }

    fn client(&self) -> Result<reqwest::Client, EdgeError> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .resolve(&self.server_name, self.address);
        let builder = if self.scheme == "https" {
            builder.tls_backend_preconfigured(self.tls()?)
        } else {
            builder
        };
        builder
            .build()
            .map_err(|error| EdgeError::Client(error.to_string()))
    }

    /// TLS that trusts only the edge certificate.
    fn tls(&self) -> Result<rustls::ClientConfig, EdgeError> {
        let mut roots = rustls::RootCertStore::empty();
        for der in &self.roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|error| EdgeError::Certificate(error.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| EdgeError::Client(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// Asks every path once.
    pub async fn probe(&self) -> Result<Vec<Answer>, EdgeError> {
        Ok(self.ask(&self.client()?).await)
    }

    /// Asks until every path answers 2xx or `timeout` has passed; returns the last answers.
    pub async fn wait(&self, timeout: Duration) -> Result<Vec<Answer>, EdgeError> {
        let client = self.client()?;
        let deadline = Instant::now() + timeout;
        loop {
            let answers = self.ask(&client).await;
            if answers.iter().all(|a| a.ok) || Instant::now() >= deadline {
                return Ok(answers);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Asks every path once with `client`.
    async fn ask(&self, client: &reqwest::Client) -> Vec<Answer> {
        let mut answers = Vec::new();
        for path in &self.paths {
            let url = format!("{}://{}{path}", self.scheme, self.server_name);
            let (ok, detail) = match client.get(&url).send().await {
                Ok(response) => {
                    let status = response.status();
                    (status.is_success(), format!("HTTP {}", status.as_u16()))
                }
                Err(error) => (false, describe(&error)),
            };
            answers.push(Answer {
                url: format!("{url} (at {})", self.address),
                ok,
                detail,
            });
        }
        answers
    }
}

fn parse_url(url: &str, scheme: &str) -> Result<SocketAddr, EdgeError> {
    let bad = || EdgeError::BadUrl(url.to_owned());
    let rest = url.strip_prefix(&format!("{scheme}://")).ok_or_else(bad)?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad());
    }
    if let Ok(address) = authority.parse::<SocketAddr>() {
        return Ok(address);
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let ip: std::net::IpAddr = authority
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, default_port))
}

fn der_certificates(pem: &str) -> Result<Vec<Vec<u8>>, EdgeError> {
    use rustls::pki_types::pem::PemObject as _;
    let mut ders = Vec::new();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|error| EdgeError::Certificate(error.to_string()))?;
        ders.push(certificate.to_vec());
    }
    if ders.is_empty() {
        return Err(EdgeError::Certificate(
            "no certificate in the edge's PEM".to_owned(),
        ));
    }
    Ok(ders)
}

/// An HTTP error in a few words, with its innermost cause (a refused connection, an unknown
/// certificate).
fn describe(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if error.is_timeout() {
        format!("no answer in time: {cause}")
    } else {
        format!("no answer: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_urls_are_addresses_with_the_right_scheme() {
        assert_eq!(
            parse_url("https://192.0.2.10", "https").expect("plain"),
            "192.0.2.10:443".parse().expect("address")
        );
        assert_eq!(
            parse_url("https://192.0.2.10:8443/", "https").expect("port"),
            "192.0.2.10:8443".parse().expect("address")
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]", "http").expect("v6"),
            "[2001:db8::1]:80".parse().expect("address")
        );
        for bad in [
            "http://192.0.2.10",
            "https://example.com",
            "https://192.0.2.10/path",
            "https://",
            "192.0.2.10",
        ] {
            assert!(parse_url(bad, "https").is_err(), "{bad}");
        }
    }

    /// A self-signed certificate for `name`: (certificate DER, key DER).
    fn certificate(name: &str) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        let certificate = params.self_signed(&key).expect("certificate");
        (certificate.der().to_vec(), key.serialize_der())
    }

    /// A one-shot HTTPS server on loopback that answers 200 with `served`'s certificate.
    fn serve_once(served: (Vec<u8>, Vec<u8>)) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(served.0)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(served.1.into()),
            )
            .expect("server config");
        let config = Arc::new(config);
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            if let Ok((socket, _)) = listener.accept()
                && let Ok(connection) = rustls::ServerConnection::new(config)
            {
                let mut tls = rustls::StreamOwned::new(connection, socket);
                let mut buffer = [0u8; 1024];
                if tls.read(&mut buffer).is_ok() {
                    let _ = tls.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    let _ = tls.flush();
                }
            }
        });
        address
    }

    fn edge_at(address: SocketAddr, trusted: &[u8]) -> Edge {
        Edge {
            scheme: "https",
            server_name: "site.test".to_owned(),
            address,
            paths: vec!["/".to_owned()],
            roots: vec![trusted.to_vec()],
        }
    }

    #[tokio::test]
    async fn only_the_pinned_certificate_is_trusted() {
        let ours = certificate("site.test");
        let other = certificate("site.test");
        // The edge serves ours and we pin ours: it answers.
        let answers = edge_at(serve_once(ours.clone()), &ours.0)
            .probe()
            .await
            .expect("probe");
        assert!(answers[0].ok, "{answers:?}");
        // The edge serves a certificate for the same name that is not ours: refused.
        let answers = edge_at(serve_once(other), &ours.0)
            .probe()
            .await
            .expect("probe");
        assert!(!answers[0].ok, "{answers:?}");
        assert!(answers[0].detail.contains("certificate"), "{answers:?}");
    }

    #[test]
    fn only_certificates_are_trusted_roots() {
        assert!(der_certificates("not a pem").is_err());
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(der_certificates(key_only).is_err());
    }
}
