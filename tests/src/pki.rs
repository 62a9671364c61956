//! A throwaway certificate authority for mutual-TLS tests: PEM files in a temporary dir.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use pld_client::tls::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tempfile::TempDir;

/// A CA that issues certificates for loopback (`127.0.0.1`, `localhost`).
pub struct TestPki {
    dir: TempDir,
    name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    /// A new CA called `name`.
    ///
    /// # Errors
    /// When a key cannot be made or a file written.
    pub fn new(name: &str) -> anyhow::Result<TestPki> {
        let dir = tempfile::tempdir()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
        Ok(TestPki {
            dir,
            name: name.to_string(),
            ca,
        })
    }

    /// The CA certificate's file.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for `who`, valid for loopback and naming `identities` (pld's
    /// `spiffe://pld/...` URIs: one for a valid identity); returns the files of it, its key and
    /// this CA.
    ///
    /// # Errors
    /// When signing or writing fails.
    pub fn issue(&self, who: &str, identities: &[&str]) -> anyhow::Result<TlsFiles> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        for uri in identities {
            params
                .subject_alt_names
                .push(SanType::URI(rcgen::string::Ia5String::try_from(*uri)?));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{who} ({})", self.name));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        let cert_path = self.dir.path().join(format!("{who}.pem"));
        let key_path = self.dir.path().join(format!("{who}.key"));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok(TlsFiles {
            ca: self.ca(),
            cert: cert_path,
            key: key_path,
        })
    }

    /// The dir holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An endpoint for a server at `addr` with a certificate of this CA, presenting `client`'s
    /// certificate, or none.
    ///
    /// # Errors
    /// When the files cannot be read or tonic refuses the settings.
    pub fn endpoint(
        &self,
        addr: std::net::SocketAddr,
        client: Option<&TlsFiles>,
    ) -> anyhow::Result<tonic::transport::Endpoint> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(self.ca())?));
        if let Some(files) = client {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(&files.cert)?,
                std::fs::read(&files.key)?,
            ));
        }
        Ok(Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls)?)
    }
}

/// A config file's `[tls]` table for `files`.
pub fn tls_table(files: &TlsFiles) -> String {
    format!(
        "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
        files.ca, files.cert, files.key
    )
}
