//! Mutual TLS between every pld process and the controllers: each side presents a certificate
//! signed by the cluster's CA and accepts only peers whose certificate that CA signed. Files are
//! PEM; a controller's certificate must name (SAN) the address its peers and clients dial.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Where the PEM files are: the `[tls]` table of the controller's and the agent's config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that signs every controller, agent and operator certificate.
    pub ca: PathBuf,
    /// This process's certificate (chain).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS {what} {} is not PEM (no \"-----BEGIN\" line)", path.display())]
    NotPem { what: &'static str, path: PathBuf },
    /// The file is PEM but holds the wrong thing, e.g. a key where the certificate belongs.
    /// Only the PEM labels are named, never the contents.
    #[error("the TLS {what} {} holds no {wanted} (it holds: {found})", path.display())]
    WrongContent {
        what: &'static str,
        path: PathBuf,
        wanted: &'static str,
        found: String,
    },
    #[error("TLS needs all of {0}; set the missing ones or none")]
    Incomplete(&'static str),
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// Loaded certificates, ready for servers and clients.
#[derive(Clone)]
pub struct Tls {
    ca: Certificate,
    identity: Identity,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("Tls { .. }")
    }
}

/// Picks rustls's cryptography once per process. Builds with the AWS SDK link both of rustls's
/// providers (ring here, aws-lc-rs there), and rustls refuses to guess between them.
fn use_ring() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when another provider was installed first, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads a PEM file and checks that it holds certificates, or a private key when `key`.
fn read_pem(what: &'static str, path: &Path, key: bool) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(TlsError::NotPem {
            what,
            path: path.to_path_buf(),
        });
    }
    check_content(what, path, &bytes, key)?;
    Ok(bytes)
}

/// The labels of the PEM blocks in `pem` ("CERTIFICATE", "PRIVATE KEY"...), which say what a
/// file holds without quoting any of it.
fn pem_labels(pem: &[u8]) -> String {
    let labels: Vec<String> = String::from_utf8_lossy(pem)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .map(str::to_string)
        .collect();
    if labels.is_empty() {
        "nothing readable".to_string()
    } else {
        labels.join(", ")
    }
}

/// Checks that `pem` (read from `path`) holds what it should: certificates, or one private key.
fn check_content(what: &'static str, path: &Path, pem: &[u8], key: bool) -> Result<(), TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let ok = if key {
        PrivateKeyDer::from_pem_slice(pem).is_ok()
    } else {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(pem).collect();
        !certs.is_empty() && certs.iter().all(Result::is_ok)
    };
    if ok {
        Ok(())
    } else {
        Err(TlsError::WrongContent {
            what,
            path: path.to_path_buf(),
            wanted: if key { "private key" } else { "certificate" },
            found: pem_labels(pem),
        })
    }
}

impl TlsFiles {
    /// From three optional paths that must come together (flags, config keys); `None` when
    /// none is set.
    ///
    /// # Errors
    /// [`TlsError::Incomplete`] when some but not all are set; `names` says which keys.
    pub fn from_parts(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        names: &'static str,
    ) -> Result<Option<TlsFiles>, TlsError> {
        match (ca, cert, key) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles { ca, cert, key })),
            _ => Err(TlsError::Incomplete(names)),
        }
    }

    /// Reads the files.
    ///
    /// # Errors
    /// Naming the file that cannot be read or is not PEM.
    pub fn load(&self) -> Result<Tls, TlsError> {
        use_ring();
        let ca = read_pem("CA certificate", &self.ca, false)?;
        let cert = read_pem("certificate", &self.cert, false)?;
        let key = read_pem("private key", &self.key, true)?;
        Ok(Tls {
            ca: Certificate::from_pem(ca),
            identity: Identity::from_pem(cert, key),
        })
    }
}

impl Tls {
    /// For dialing controllers: trust only the CA, present our certificate.
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
    }

    /// For serving: present our certificate, require one the CA signed from every client.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
    }
}
