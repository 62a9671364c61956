//! Runs the example program against an in-process controller: it lists what is there, then
//! follows changes made after it started.

use std::process::Stdio;
use std::time::Duration;

use pld_proto::v1::Approval;
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::{put_binding, put_service};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_pld-inventory");

#[tokio::test]
async fn lists_then_follows_changes() -> anyhow::Result<()> {
    let cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let client = cluster.client();
    let address = format!(
        "http://{}",
        cluster.controller(1).expect("node 1").local_addr()
    );
    put_service(&client, "billing").await?;
    put_binding(&client, "billing", "vpc-0a1b2c3d", Approval::Unspecified).await?;

    let once = Command::new(BINARY)
        .args(["--controller", &address])
        .output()
        .await?;
    let text = String::from_utf8_lossy(&once.stdout);
    assert!(
        once.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert!(text.contains("service billing in "), "{text}");
    assert!(
        text.contains("  binding billing <- vpc-0a1b2c3d: pending"),
        "{text}"
    );

    let mut follower = Command::new(BINARY)
        .args(["--controller", &address, "--follow"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(follower.stdout.take().expect("piped")).lines();
    loop {
        let line: Option<String> =
            tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await??;
        let line = line.ok_or_else(|| anyhow::anyhow!("the example exited before listing"))?;
        if line.starts_with("-- catalog revision") {
            break;
        }
    }
    put_service(&client, "search").await?;
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await??
        .unwrap_or_default();
    assert!(
        line.starts_with('@') && line.contains("service search in "),
        "{line}"
    );
    follower.kill().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_bad_argument_is_refused() -> anyhow::Result<()> {
    let out = Command::new(BINARY).arg("--bogus").output().await?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument \"--bogus\""));
    Ok(())
}
