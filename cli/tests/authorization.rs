//! Authorization on a mutual-TLS controller (a real `pld controller` process): each certificate's
//! URI SAN names who holds it, and every refusal in the rules (deploy/INSTALL.md, TLS) is
//! exercised here with the identity that must be refused, next to one that must pass.
//!
//! Two agents: A (account 111111111111, vpc-aaaaaaaa) provides `alpha` (allows account
//! 222222222222) and `private` (allows nobody else); B (account 222222222222, vpc-bbbbbbbb)
//! consumes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pld_client::tls::{Tls, TlsFiles};
use pld_client::{Client, ClientError};
use pld_proto::v1::raft_transport_client::RaftTransportClient;
use pld_proto::v1::{
    object, report_status_request, Acceptance, Agent, Approval, Binding, BindingStatus,
    KeepAliveRequest, Kind, Object, RaftBatch, RemoveMemberRequest, ReportStatusRequest, Service,
    ServiceStatus, SnapshotSaveRequest,
};
use pld_tests::objects::NLB;
use pld_tests::pki::{tls_table, TestPki};
use pld_tests::process::ProcessCluster;
use tonic::Code;

const VPC_A: &str = "vpc-aaaaaaaa";
const VPC_B: &str = "vpc-bbbbbbbb";
const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

fn agent_record(vpc: &str, account: &str) -> Object {
    Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: account.into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: 600,
            ..Default::default()
        })),
    }
}

fn service(name: &str, vpc: &str, principals: &[&str]) -> Object {
    Object {
        object: Some(object::Object::Service(Service {
            name: name.into(),
            vpc_id: vpc.into(),
            load_balancer_arn: NLB.into(),
            ports: vec![443],
            acceptance: Acceptance::Manual as i32,
            allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn binding(service: &str, vpc: &str, approval: Approval) -> Object {
    Object {
        object: Some(object::Object::Binding(Binding {
            service: service.into(),
            consumer_vpc_id: vpc.into(),
            approval: approval as i32,
            ..Default::default()
        })),
    }
}

async fn report(
    client: &Client,
    kind: Kind,
    key: &str,
    status: report_status_request::Status,
) -> Result<(), ClientError> {
    client
        .call(|mut s| {
            let req = ReportStatusRequest {
                kind: kind as i32,
                key: key.to_string(),
                status: Some(status.clone()),
            };
            async move { s.catalog().report_status(req).await }
        })
        .await
        .map(|_| ())
}

fn service_status() -> report_status_request::Status {
    report_status_request::Status::Service(ServiceStatus {
        state: "available".into(),
        ..Default::default()
    })
}

fn binding_status() -> report_status_request::Status {
    report_status_request::Status::Binding(BindingStatus {
        phase: "ready".into(),
        ..Default::default()
    })
}

async fn keep_alive(client: &Client, vpc: &str) -> Result<(), ClientError> {
    client
        .call(|mut s| {
            let req = KeepAliveRequest { vpc_id: vpc.into() };
            async move { s.catalog().keep_alive(req).await }
        })
        .await
        .map(|_| ())
}

/// `result` is PERMISSION_DENIED and its message holds every one of `says`.
#[track_caller]
fn denied<T: std::fmt::Debug>(result: Result<T, ClientError>, says: &[&str]) {
    match result {
        Err(e) if e.code() == Code::PermissionDenied => {
            let message = e.to_string();
            for s in says {
                assert!(message.contains(s), "{message:?} should say {s:?}");
            }
        }
        other => panic!("expected PERMISSION_DENIED saying {says:?}, got {other:?}"),
    }
}

struct Fixture {
    pki: TestPki,
    cluster: ProcessCluster,
    address: String,
}

impl Fixture {
    async fn start() -> anyhow::Result<Fixture> {
        let pki = TestPki::new("cluster")?;
        let node = pki.issue("controller-1", &["spiffe://pld/controller/1"])?;
        let mut cluster = ProcessCluster::unstarted(pld(), 1)?;
        cluster.set_config(1, &tls_table(&node))?;
        cluster.spawn(1)?;
        cluster.set_client_tls(Some(
            pki.issue("admin", &["spiffe://pld/admin/root"])?.load()?,
        ));
        if let Err(e) = cluster.wait_leader(Duration::from_secs(30)).await {
            anyhow::bail!("{e}; the controller said:\n{}", cluster.log(1));
        }
        let address = cluster.address(1);
        Ok(Fixture {
            pki,
            cluster,
            address,
        })
    }

    fn files(&self, who: &str, identities: &[&str]) -> anyhow::Result<TlsFiles> {
        self.pki.issue(who, identities)
    }

    fn client(&self, who: &str, identities: &[&str]) -> anyhow::Result<Client> {
        let tls: Tls = self.files(who, identities)?.load()?;
        Ok(
            Client::connect(std::slice::from_ref(&self.address), Some(&tls))?
                .with_deadline(Duration::from_secs(10)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_touch_only_their_own_vpc() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let a = f.client(
        "agent-a",
        &[&format!("spiffe://pld/agent/{ACCOUNT_A}/{VPC_A}")],
    )?;
    let b = f.client(
        "agent-b",
        &[&format!("spiffe://pld/agent/{ACCOUNT_B}/{VPC_B}")],
    )?;
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;

    // Each agent registers itself and A its services.
    a.put(agent_record(VPC_A, ACCOUNT_A), None).await?;
    b.put(agent_record(VPC_B, ACCOUNT_B), None).await?;
    let allows_b = format!("arn:aws:iam::{ACCOUNT_B}:root");
    a.put(service("alpha", VPC_A, &[&allows_b]), None).await?;
    a.put(service("private", VPC_A, &[]), None).await?;
    report(&a, Kind::Service, "alpha", service_status()).await?;
    keep_alive(&a, VPC_A).await?;

    // Agent records: not another VPC's, not under another account.
    denied(
        b.put(agent_record(VPC_A, ACCOUNT_B), None).await,
        &[VPC_B, "cannot register the agent of vpc-aaaaaaaa"],
    );
    denied(
        b.put(agent_record(VPC_B, ACCOUNT_A), None).await,
        &["cannot register the agent of vpc-bbbbbbbb (account 111111111111)"],
    );
    denied(
        b.delete(Kind::Agent, VPC_A, None).await,
        &["belongs to vpc-aaaaaaaa"],
    );
    denied(
        keep_alive(&b, VPC_A).await,
        &["cannot renew the lease of vpc-aaaaaaaa"],
    );

    // Services: not taking over A's, not registering one for A, not deleting or reporting on A's.
    denied(
        b.put(service("alpha", VPC_B, &["*"]), None).await,
        &["service \"alpha\"", "belongs to vpc-aaaaaaaa"],
    );
    denied(
        b.put(service("beta", VPC_A, &["*"]), None).await,
        &["cannot register service \"beta\" for vpc-aaaaaaaa"],
    );
    denied(
        b.delete(Kind::Service, "alpha", None).await,
        &["belongs to vpc-aaaaaaaa"],
    );
    denied(
        report(&b, Kind::Service, "alpha", service_status()).await,
        &["belongs to vpc-aaaaaaaa"],
    );

    // Bindings: only its own VPC's, only to services that allow its account, never approved by
    // itself.
    denied(
        a.put(binding("alpha", VPC_B, Approval::Unspecified), Some(0))
            .await,
        &["cannot bind vpc-bbbbbbbb"],
    );
    denied(
        b.put(binding("private", VPC_B, Approval::Unspecified), Some(0))
            .await,
        &["account 222222222222 is not among its allowed principals"],
    );
    b.put(binding("alpha", VPC_B, Approval::Unspecified), Some(0))
        .await?;
    denied(
        b.put(binding("alpha", VPC_B, Approval::Accepted), None)
            .await,
        &["cannot approve or reject a binding"],
    );
    let key = pld_core::catalog::binding_key("alpha", VPC_B);
    // The provider's agent neither approves nor reports on the consumer's binding.
    denied(
        a.put(binding("alpha", VPC_B, Approval::Accepted), None)
            .await,
        &["cannot bind vpc-bbbbbbbb"],
    );
    denied(
        report(&a, Kind::Binding, &key, binding_status()).await,
        &["belongs to vpc-bbbbbbbb"],
    );
    // An operator approves; the consumer's agent reports; its own binding it may delete.
    operator
        .put(binding("alpha", VPC_B, Approval::Accepted), None)
        .await?;
    report(&b, Kind::Binding, &key, binding_status()).await?;
    let approved = b.get(Kind::Binding, &key).await?;
    assert!(
        matches!(&approved, Some(Object { object: Some(object::Object::Binding(x)) })
            if x.approval == Approval::Accepted as i32 && x.status.is_some()),
        "{approved:?}"
    );
    // Re-putting its own approved binding unconditionally keeps the approval it may not change.
    b.put(binding("alpha", VPC_B, Approval::Accepted), None)
        .await?;
    b.delete(Kind::Binding, &key, None).await?;

    // Reading is everyone's: the consumer sees the provider's services.
    assert!(b.get(Kind::Service, "alpha").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_need_an_allowed_principal_whoever_writes_them() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let admin = f.cluster.client();
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;
    admin.put(agent_record(VPC_A, ACCOUNT_A), None).await?;
    admin.put(agent_record(VPC_B, ACCOUNT_B), None).await?;
    admin.put(service("private", VPC_A, &[]), None).await?;
    admin.put(service("open", VPC_A, &["*"]), None).await?;

    // B's account is known from its registered agent, and `private` does not allow it.
    denied(
        operator
            .put(binding("private", VPC_B, Approval::Unspecified), None)
            .await,
        &[
            "binding vpc-bbbbbbbb to service \"private\" refused",
            "222222222222",
        ],
    );
    denied(
        admin
            .put(binding("private", VPC_B, Approval::Unspecified), None)
            .await,
        &["not among its allowed principals"],
    );
    // An unregistered VPC's account is unknown: refused with the reason, unless anyone may bind.
    denied(
        operator
            .put(
                binding("private", "vpc-cccccccc", Approval::Unspecified),
                None,
            )
            .await,
        &["unknown until that VPC's agent registers"],
    );
    operator
        .put(binding("open", "vpc-cccccccc", Approval::Unspecified), None)
        .await?;
    // The provider's own account may always bind; so may a VPC once the service allows it.
    admin
        .put(agent_record("vpc-a2a2a2a2", ACCOUNT_A), None)
        .await?;
    operator
        .put(
            binding("private", "vpc-a2a2a2a2", Approval::Unspecified),
            None,
        )
        .await?;
    admin
        .put(
            service(
                "private",
                VPC_A,
                &[&format!("arn:aws:iam::{ACCOUNT_B}:role/app")],
            ),
            None,
        )
        .await?;
    operator
        .put(binding("private", VPC_B, Approval::Unspecified), None)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_operations_need_an_admin_and_raft_needs_a_controller() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let admin = f.cluster.client();
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;
    let agent = f.client(
        "agent-a",
        &[&format!("spiffe://pld/agent/{ACCOUNT_A}/{VPC_A}")],
    )?;

    for (who, client) in [("operator/ci", &operator), ("agent/", &agent)] {
        let remove = client
            .call(|mut s| async move {
                s.cluster()
                    .remove_member(RemoveMemberRequest { id: 7 })
                    .await
            })
            .await;
        denied(remove, &[who, "may not remove members", "only an admin"]);
        let save = client
            .call(|mut s| async move { s.cluster().snapshot_save(SnapshotSaveRequest {}).await })
            .await;
        denied(save, &[who, "may not save snapshots"]);
    }
    // The operator manages services but not agent records, statuses or leases.
    denied(
        operator.put(agent_record(VPC_A, ACCOUNT_A), None).await,
        &[
            "operator/ci may not put agent",
            "only the VPC's agent or an admin",
        ],
    );
    admin.put(agent_record(VPC_A, ACCOUNT_A), None).await?;
    admin.put(service("alpha", VPC_A, &["*"]), None).await?;
    denied(
        report(&operator, Kind::Service, "alpha", service_status()).await,
        &["may not report status"],
    );
    denied(
        keep_alive(&operator, VPC_A).await,
        &["may not renew agent leases"],
    );
    operator.put(service("beta", VPC_A, &["*"]), None).await?;
    operator.delete(Kind::Service, "beta", None).await?;

    // The admin passes (and meets the ordinary checks behind).
    let remove = admin
        .call(|mut s| async move {
            s.cluster()
                .remove_member(RemoveMemberRequest { id: 7 })
                .await
        })
        .await;
    assert_eq!(
        remove.map(|_| ()).map_err(|e| e.code()),
        Err(Code::NotFound)
    );
    report(&admin, Kind::Service, "alpha", service_status()).await?;
    keep_alive(&admin, VPC_A).await?;

    // The CLI: a restore with the operator's certificate exits 7 and says why; the admin's works.
    let backup = tempfile::tempdir()?;
    let file = backup.path().join("catalog.backup");
    let cli = |files: &TlsFiles, args: &[&str]| {
        Command::new(pld())
            .args(["--controller", &f.address, "--timeout", "10"])
            .arg("--tls-ca")
            .arg(&files.ca)
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .args(args)
            .output()
    };
    let admin_files = f.files("admin-cli", &["spiffe://pld/admin/root"])?;
    let operator_files = f.files("operator-cli", &["spiffe://pld/operator/ci"])?;
    let file_arg = file.to_string_lossy().to_string();
    let out = cli(&admin_files, &["snapshot", "save", &file_arg])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&operator_files, &["snapshot", "restore", &file_arg])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("spiffe://pld/operator/ci may not restore snapshots")
            && stderr.contains("URI SAN of --tls-cert"),
        "{stderr}"
    );
    let out = cli(&operator_files, &["members", "remove", "7"])?;
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Raft messages: only from a controller's certificate. The controller's passes the identity
    // check and is refused for what it says (a batch for a node that is not this one).
    let batch = RaftBatch {
        from: 9,
        to: 99,
        ..Default::default()
    };
    for (who, uri) in [
        ("admin", "spiffe://pld/admin/root"),
        ("operator", "spiffe://pld/operator/ci"),
        ("agent", "spiffe://pld/agent/111111111111/vpc-aaaaaaaa"),
        ("controller-9", "spiffe://pld/controller/9"),
    ] {
        let tls = f.files(&format!("raft-{who}"), &[uri])?.load()?;
        let channel = pld_controller::dial::endpoint(&f.address, Some(&tls))
            .map_err(anyhow::Error::msg)?
            .connect()
            .await?;
        let sent = RaftTransportClient::new(channel).send(batch.clone()).await;
        let code = sent.as_ref().map(|_| ()).map_err(|e| e.code());
        if who.starts_with("controller") {
            assert_eq!(code, Err(Code::FailedPrecondition), "{sent:?}");
            // A certificate naming controller 9 speaks only as node 9.
            let impersonating = RaftBatch {
                from: 2,
                ..batch.clone()
            };
            let channel = pld_controller::dial::endpoint(&f.address, Some(&tls))
                .map_err(anyhow::Error::msg)?
                .connect()
                .await?;
            let sent = RaftTransportClient::new(channel).send(impersonating).await;
            let refused = sent.expect_err("a batch as another node");
            assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
            assert!(
                refused
                    .message()
                    .contains("names controller 9; it may not send raft messages as node 2"),
                "{refused:?}"
            );
        } else {
            assert_eq!(code, Err(Code::PermissionDenied), "{who}: {sent:?}");
            let message = sent.expect_err("denied").message().to_string();
            assert!(
                message.contains("only a controller certificate"),
                "{message}"
            );
        }
    }
    Ok(())
}

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
