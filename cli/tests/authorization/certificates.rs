//! What a certificate must be: one valid identity in the cluster's trust domain, and its key
//! never printed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pld_proto::v1::Kind;
use pld_tests::pki::tls_table;

use super::fixture::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_must_name_exactly_one_valid_identity() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    for (who, identities, says) in [
        ("nobody", vec![], "names no pld identity"),
        (
            "twice",
            vec!["spiffe://pld/admin/a", "spiffe://pld/operator/b"],
            "names 2 pld identities",
        ),
        ("root", vec!["spiffe://pld/root/x"], "the role must be"),
        (
            "bad-agent",
            vec!["spiffe://pld/agent/123/vpc-aaaaaaaa"],
            "12-digit",
        ),
    ] {
        let client = f.client(who, &identities)?;
        // Reads too: a certificate that names nobody gets nothing.
        denied(client.get(Kind::Service, "alpha").await, &[says]);
        denied(
            client.put(service("alpha", VPC_A, &["*"]), None).await,
            &[says],
        );
    }
    // A URI outside pld's namespace is ignored, not taken for an identity.
    let other = f.client(
        "spiffe-elsewhere",
        &[
            "spiffe://example.org/ns/default",
            "spiffe://pld/operator/ok",
        ],
    )?;
    assert!(other.get(Kind::Service, "alpha").await?.is_none());
    Ok(())
}

/// The base64 lines of a PEM file: what must never be printed.
fn secret_lines(pem: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(pem)?
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_string)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_never_reach_logs_or_errors() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let operator = f.files("operator", &["spiffe://pld/operator/ci"])?;
    let secrets = secret_lines(&operator.key)?;
    assert!(!secrets.is_empty());

    // Files swapped by mistake: the key given as the certificate and as the CA.
    let cli = |ca: &Path, cert: &Path, key: &Path| {
        Command::new(pld())
            .args(["--controller", &f.address, "--timeout", "5"])
            .arg("--tls-ca")
            .arg(ca)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(["services", "list"])
            .output()
    };
    let mut printed = String::new();
    for (ca, cert, key, says) in [
        (&operator.ca, &operator.key, &operator.key, "certificate"),
        (
            &operator.key,
            &operator.cert,
            &operator.key,
            "CA certificate",
        ),
        (&operator.ca, &operator.cert, &operator.cert, "private key"),
    ] {
        let out = cli(ca, cert, key)?;
        assert!(!out.status.success(), "swapped files were accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The error names the file and what it holds instead.
        assert!(
            stderr.contains(&format!("the TLS {says} ")) && stderr.contains("(it holds: "),
            "{stderr}"
        );
        printed.push_str(&stderr);
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
    }

    // A controller whose key is given as its certificate, logging everything.
    let data = tempfile::tempdir()?;
    let config = data.path().join("controller.toml");
    let node = f.files("controller-2", &["spiffe://pld/controller/2"])?;
    let node_secrets = secret_lines(&node.key)?;
    let mut swapped = node.clone();
    swapped.cert = node.key.clone();
    std::fs::write(
        &config,
        format!(
            "id = 1\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\nlog = \"trace\"\n{}",
            data.path().join("data"),
            tls_table(&swapped)
        ),
    )?;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(pld())
            .args(["controller", "--config"])
            .arg(&config)
            .env("PLD_LOG", "trace")
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    assert!(
        !out.status.success(),
        "a controller started with a key for a certificate"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("holds no certificate (it holds: PRIVATE KEY)"),
        "{stderr}"
    );
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    printed.push_str(&String::from_utf8_lossy(&out.stdout));

    // And the running controller's own log, at whatever it logged while refusing all this.
    printed.push_str(&f.cluster.log(1));
    for line in secrets.iter().chain(&node_secrets) {
        assert!(
            !printed.contains(line.as_str()),
            "key material printed:\n{printed}"
        );
    }
    eprintln!("{printed}");
    Ok(())
}
