//! Membership, snapshots and raft: admins and controllers only.

use std::process::Command;

use pld_client::tls::TlsFiles;
use pld_proto::v1::raft_transport_client::RaftTransportClient;
use pld_proto::v1::{Kind, RaftBatch, RemoveMemberRequest, SnapshotSaveRequest};
use tonic::Code;

use super::fixture::*;

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
