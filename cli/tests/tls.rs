//! Mutual TLS: three real controllers with `[tls]` form a cluster (the raft transport and member
//! status run over mTLS), serve the CLI and the client library when they present a certificate
//! the cluster's CA signed, and refuse everything else: plaintext, no client certificate, a
//! certificate from another CA. Half-given TLS settings and unreadable files are refused with
//! the name of what is wrong.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pld_agent::config::AgentConfig;
use pld_agent::Agent;
use pld_client::tls::TlsFiles;
use pld_client::Client;
use pld_cloud::sim::{SimConfig, SimRegion};
use pld_proto::v1::catalog_client::CatalogClient;
use pld_proto::v1::{GetRequest, Kind};
use pld_tests::objects::{get_service, put_service};
use pld_tests::pki::{tls_table, TestPki};
use pld_tests::process::ProcessCluster;
use pld_tests::region::agent_listeners;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

const CONTROLLER: &str = "spiffe://pld/controller";
const OPERATOR: &str = "spiffe://pld/operator/test";

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// A read through `client` fails, and how.
async fn refused(client: &Client) -> String {
    match client.get(Kind::Service, "inside").await {
        Ok(_) => panic!("the cluster answered a client it should refuse"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_serves_its_own_certificates_and_refuses_the_rest() -> anyhow::Result<()> {
    let pki = TestPki::new("cluster")?;
    let node_files = pki.issue("controller", &[CONTROLLER])?;
    let operator_files = pki.issue("operator", &[OPERATOR])?;
    let operator = operator_files.load()?;

    let mut cluster = ProcessCluster::unstarted(pld(), 3)?;
    for id in cluster.ids() {
        cluster.set_config(id, &tls_table(&node_files))?;
        cluster.spawn(id)?;
    }
    cluster.set_client_tls(Some(operator.clone()));
    // A leader means the nodes talk raft to each other over mutual TLS.
    if let Err(e) = cluster.wait_leader(Duration::from_secs(30)).await {
        anyhow::bail!("{e}; node 1 said:\n{}", cluster.log(1));
    }
    let client = cluster.client().with_deadline(Duration::from_secs(10));
    put_service(&client, "inside").await?;
    assert!(get_service(&client, "inside", false).await?.is_some());

    // The CLI with the operator's files: lists the service, and `status` reaches every member.
    let addresses: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.address(id))
        .collect();
    let cli = |args: &[&str]| {
        Command::new(pld())
            .args(["--controller", &addresses.join(",")])
            .arg("--tls-ca")
            .arg(&operator_files.ca)
            .arg("--tls-cert")
            .arg(&operator_files.cert)
            .arg("--tls-key")
            .arg(&operator_files.key)
            .args(args)
            .output()
    };
    let out = cli(&["services", "list", "-o", "json"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"inside\""));
    let out = cli(&["status", "-o", "json"])?;
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{status}");
    for address in &addresses {
        assert!(status.contains(address.as_str()), "{status}");
    }
    assert!(
        !status.contains("unreachable"),
        "every member answered over TLS: {status}"
    );

    // Refused: plaintext,
    let plain = Client::new(&addresses)?.with_deadline(Duration::from_secs(2));
    let why = refused(&plain).await;
    eprintln!("plaintext: {why}");
    // a certificate from another CA,
    let rogue_pki = TestPki::new("rogue")?;
    let rogue = rogue_pki.issue("intruder", &[OPERATOR])?;
    let mut rogue_files = rogue.clone();
    rogue_files.ca = node_files.ca.clone(); // it trusts the cluster, the cluster not it
    let intruder = Client::connect(&addresses, Some(&rogue_files.load()?))?
        .with_deadline(Duration::from_secs(2));
    let why = refused(&intruder).await;
    eprintln!("rogue certificate: {why}");
    // and no client certificate at all.
    let ca_only = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&node_files.ca)?));
    let channel = Endpoint::from_shared(format!("https://{}", addresses[0]))?
        .tls_config(ca_only)?
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy();
    let anonymous = tokio::time::timeout(
        Duration::from_secs(10),
        CatalogClient::new(channel).get(GetRequest {
            kind: Kind::Service as i32,
            key: "inside".into(),
            stale: true,
        }),
    )
    .await?;
    assert!(
        anonymous.is_err(),
        "a client without a certificate was served"
    );

    // The CLI without TLS flags: refused, with a hint at the flags.
    let out = Command::new(pld())
        .args([
            "--controller",
            &addresses[0],
            "--timeout",
            "2",
            "services",
            "list",
        ])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs --tls-ca"), "{stderr}");

    // Half the CLI flags: refused before dialing, naming the flags.
    let out = Command::new(pld())
        .args(["--controller", &addresses[0], "--tls-ca"])
        .arg(&operator_files.ca)
        .args(["services", "list"])
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--tls-ca, --tls-cert and --tls-key"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_controller_with_an_unreadable_certificate_says_which_file() -> anyhow::Result<()> {
    let pki = TestPki::new("cluster")?;
    let mut files = pki.issue("controller", &[CONTROLLER])?;
    files.cert = pki.dir().join("missing.pem");
    let data = tempfile::tempdir()?;
    let config = data.path().join("controller.toml");
    std::fs::write(
        &config,
        format!(
            "id = 1\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n{}",
            data.path().join("data"),
            tls_table(&files)
        ),
    )?;
    let out = Command::new(pld())
        .args(["controller", "--config"])
        .arg(&config)
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the TLS certificate") && stderr.contains("missing.pem"),
        "{stderr}"
    );

    // Not PEM: named too.
    std::fs::write(pki.dir().join("missing.pem"), "not a certificate")?;
    let out = Command::new(pld())
        .args(["controller", "--config"])
        .arg(&config)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not PEM"), "{stderr}");
    Ok(())
}

/// A one-node mutual-TLS cluster of `pki`, its clients presenting the operator certificate,
/// which is returned.
async fn tls_cluster(pki: &TestPki) -> anyhow::Result<(ProcessCluster, TlsFiles)> {
    let node_files = pki.issue("controller", &[CONTROLLER])?;
    let mut cluster = ProcessCluster::unstarted(pld(), 1)?;
    cluster.set_config(1, &tls_table(&node_files))?;
    cluster.spawn(1)?;
    let operator = pki.issue("operator", &[OPERATOR])?;
    cluster.set_client_tls(Some(operator.load()?));
    cluster.wait_leader(Duration::from_secs(30)).await?;
    Ok((cluster, operator))
}

const ACCOUNT: &str = "111111111111";

/// The config of the agent of `vpc` in [`ACCOUNT`] on ephemeral loopback ports, talking to
/// `cluster` with `tls` (plaintext without, which it then has to say).
fn agent_config(cluster: &ProcessCluster, vpc: &str, tls: Option<TlsFiles>) -> AgentConfig {
    let mut cfg = AgentConfig::simulated(
        ACCOUNT,
        "us-east-1",
        vpc,
        vec![cluster.address(1)],
        "pld.test",
    );
    cfg.listen = "127.0.0.1:0".parse().expect("literal");
    cfg.dns_listen = "127.0.0.1:0".parse().expect("literal");
    cfg.insecure = tls.is_none();
    cfg.tls = tls;
    cfg
}

/// Starts an agent with `cfg` on `region`.
async fn start_agent(
    region: &std::sync::Arc<SimRegion>,
    cfg: AgentConfig,
) -> anyhow::Result<Agent> {
    Ok(Agent::start(
        cfg,
        std::sync::Arc::new(region.client(ACCOUNT)),
        agent_listeners().await?,
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reaches_a_tls_cluster_with_its_certificate_and_not_without() -> anyhow::Result<()>
{
    let pki = TestPki::new("cluster")?;
    let (cluster, _) = tls_cluster(&pki).await?;
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");

    // Without a certificate it cannot register, and says so.
    let refused = start_agent(&region, agent_config(&cluster, &vpc.id, None)).await;
    assert!(
        refused.is_err(),
        "an agent without a certificate registered"
    );

    // With one the CA signed, it registers.
    let agent_files = pki.issue(
        "agent",
        &[&format!("spiffe://pld/agent/{ACCOUNT}/{}", vpc.id)],
    )?;
    let agent = start_agent(&region, agent_config(&cluster, &vpc.id, Some(agent_files))).await?;
    let registered = cluster.client().get(Kind::Agent, &vpc.id).await?;
    assert!(registered.is_some(), "the agent is in the catalog");
    agent.shutdown().await;
    Ok(())
}

/// `pld resolve` asks the agent's host API directly. An agent whose `[host_api.tls]` is set
/// publishes `host_api_tls` in its record, and `pld` then dials it with the `--tls-*`
/// certificate it uses for the controller; the answer comes back over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pld_resolve_reaches_a_host_api_that_takes_tls() -> anyhow::Result<()> {
    let pki = TestPki::new("cluster")?;
    let (cluster, operator) = tls_cluster(&pki).await?;
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let agent_files = pki.issue(
        "agent",
        &[&format!("spiffe://pld/agent/{ACCOUNT}/{}", vpc.id)],
    )?;
    let mut cfg = agent_config(&cluster, &vpc.id, Some(agent_files));
    cfg.host_api.tls = Some(pki.issue("agent-host-api", &[])?);
    let agent = start_agent(&region, cfg).await?;

    let resolve = |files: &TlsFiles| {
        Command::new(pld())
            .args(["--controller", &cluster.address(1), "--timeout", "20"])
            .arg("--tls-ca")
            .arg(&files.ca)
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .args(["-o", "json", "resolve", "s3", "--vpc", &vpc.id])
            .env("PLD_LOG", "off")
            .output()
    };
    let out = resolve(&operator)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(answer["service"], "s3", "{answer}");

    // A certificate of another CA is refused by the host API (and by the controller first).
    let stranger = TestPki::new("elsewhere")?.issue("stranger", &[OPERATOR])?;
    let out = resolve(&stranger)?;
    assert!(!out.status.success(), "a foreign certificate was answered");
    agent.shutdown().await;
    Ok(())
}
