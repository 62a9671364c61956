//! The real `pld` binary, three times over on loopback: SIGKILL, restart, SIGTERM, and refusals
//! of bad data dirs and contradicting flags.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use pld_proto::v1::WatchRequest;
use pld_tests::objects::{get_service, put_service};
use pld_tests::process::ProcessCluster;
use pld_tests::wait_until;
use tracing::info;

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_leader_sigkill_and_a_full_restart() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let mut cluster = ProcessCluster::start(pld(), 3)?;
    let client = cluster.client();
    let leader = cluster.wait_leader(Duration::from_secs(20)).await?;

    info!("writes through any member are acknowledged");
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let name = format!("svc-{i}");
        put_service(&client, &name).await?;
        acknowledged.push(name);
    }

    info!("SIGKILL the leader: writes continue within a few seconds");
    cluster.kill(leader);
    let killed_at = Instant::now();
    put_service(&client, "after-kill").await?;
    let recovery = killed_at.elapsed();
    acknowledged.push("after-kill".into());
    assert!(
        recovery < Duration::from_secs(8),
        "writes resumed only after {recovery:?}"
    );
    info!(?recovery, "writes resumed");
    for i in 20..30 {
        let name = format!("svc-{i}");
        put_service(&client, &name).await?;
        acknowledged.push(name);
    }

    info!("the old leader restarts and catches up");
    cluster.spawn(leader)?;
    let target = {
        let others: Vec<u64> = cluster
            .ids()
            .into_iter()
            .filter(|id| *id != leader)
            .collect();
        let mut best = 0;
        for id in others {
            if let Some(s) = cluster.node_status(id).await {
                best = best.max(s.revision);
            }
        }
        best
    };
    wait_until(
        Duration::from_secs(20),
        "the restarted node to catch up",
        || async {
            let s = cluster.node_status(leader).await?;
            (s.revision >= target).then_some(())
        },
    )
    .await?;
    let restarted = cluster.client_of(leader);
    assert!(get_service(&restarted, "after-kill", true).await?.is_some());

    info!("SIGKILL everything, start everything: every acknowledged write is there");
    for id in cluster.ids() {
        cluster.kill(id);
    }
    for id in cluster.ids() {
        cluster.spawn(id)?;
    }
    cluster.wait_leader(Duration::from_secs(20)).await?;
    for name in &acknowledged {
        assert!(
            get_service(&client, name, false).await?.is_some(),
            "acknowledged write {name} was lost"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_crosses_a_leader_change_with_no_gap_or_duplicate() -> anyhow::Result<()> {
    pld_tests::init_tracing();
    let mut cluster = ProcessCluster::start(pld(), 3)?;
    let leader = cluster.wait_leader(Duration::from_secs(20)).await?;
    // The watch starts on the leader, so killing the leader also kills its stream.
    let mut order = vec![cluster.address(leader)];
    order.extend(
        cluster
            .ids()
            .into_iter()
            .filter(|id| *id != leader)
            .map(|id| cluster.address(id)),
    );
    let watcher = pld_client::Client::new(&order)?.with_deadline(Duration::from_secs(20));
    let mut events = Box::pin(watcher.watch(WatchRequest {
        start_revision: 1,
        ..Default::default()
    }));
    let writer = cluster.client();
    let total = 60u64;
    let mut last_revision = 0;
    for i in 0..total {
        if i == total / 2 {
            info!("SIGKILL the leader in the middle of the stream");
            cluster.kill(leader);
        }
        last_revision = put_service(&writer, &format!("svc-{}", i % 10)).await?;
    }
    assert_eq!(last_revision, total, "each put is one revision");
    let mut seen = Vec::new();
    while seen.len() < total as usize {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
        seen.push(event.revision);
    }
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<u64>>(),
        "gap, duplicate or reorder"
    );
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_and_exits_zero() -> anyhow::Result<()> {
    let mut cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    put_service(&cluster.client(), "web").await?;
    assert_eq!(cluster.terminate(1).await?, Some(0));
    assert!(cluster.log(1).contains("controller stopped"));

    info!("an insecure node says so at every start, and in its metrics");
    cluster.spawn(1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let metrics = pld_tests::scrape(cluster.address(1).parse()?).await?;
    assert_eq!(
        pld_tests::metric(&metrics, "pld_insecure"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(cluster.terminate(1).await?, Some(0));
    let warned = cluster
        .log(1)
        .matches("insecure = true: TLS is off")
        .count();
    assert_eq!(warned, 2, "one warning per start:\n{}", cluster.log(1));
    Ok(())
}

/// Runs `pld controller --insecure` expecting it to refuse to start; returns stderr.
fn refused(args: &[&str], data_dir: &Path) -> anyhow::Result<String> {
    refused_as_given(&[args, &["--insecure"]].concat(), data_dir)
}

/// Runs `pld controller` with exactly `args` expecting it to refuse to start; returns stderr.
fn refused_as_given(args: &[&str], data_dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(pld())
        .arg("controller")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("PLD_LOG", "off")
        .output()?;
    assert!(!out.status.success(), "pld controller {args:?} started");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear line, got: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_dirs_and_contradicting_flags_are_refused_with_one_line() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let port = pld_tests::free_port()?;
    let listen = format!("127.0.0.1:{port}");

    info!("no [tls] and no --insecure: an open cluster must be chosen, not fallen into");
    let open = root.path().join("open");
    let err = refused_as_given(&["--id", "1", "--listen", &listen], &open)?;
    assert!(
        err.contains("tls: missing") && err.contains("--insecure"),
        "{err}"
    );
    assert!(!open.exists(), "a refused start touched its data dir");

    info!("a folder of someone else's files");
    let foreign = root.path().join("foreign");
    std::fs::create_dir_all(&foreign)?;
    std::fs::write(foreign.join("important.db"), "keep me")?;
    let err = refused(&["--id", "1", "--listen", &listen], &foreign)?;
    assert!(err.contains("not a pld controller data dir"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("important.db"))?,
        "keep me"
    );

    info!("a data dir made by node 1, started as node 2");
    let dir = root.path().join("node1");
    let mut cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    put_service(&cluster.client(), "web").await?;
    assert_eq!(cluster.terminate(1).await?, Some(0));
    let made = cluster.data_dir(1);
    copy_dir(&made, &dir)?;
    let err = refused(&["--id", "2", "--listen", &listen], &dir)?;
    assert!(err.contains("belongs to node 1"), "{err}");

    info!("--peers that give node 1 another address than the data dir records");
    let err = refused(
        &[
            "--id",
            "1",
            "--listen",
            &listen,
            "--peers",
            "1=127.0.0.1:1,2=127.0.0.1:2",
        ],
        &dir,
    )?;
    assert!(err.contains("records"), "{err}");

    info!("a corrupt data dir");
    for f in walk(&dir.join("raft.sled")) {
        let len = std::fs::metadata(&f)?.len().max(64) as usize;
        std::fs::write(&f, vec![0x5A; len])?;
    }
    let err = refused(&["--id", "1", "--listen", &listen], &dir)?;
    assert!(
        err.contains("corrupt") || err.contains("cannot open"),
        "{err}"
    );

    info!("bad flags");
    let err = refused(
        &["--id", "0", "--listen", &listen],
        &root.path().join("fresh"),
    )?;
    assert!(err.contains("id"), "{err}");
    let err = refused(
        &["--id", "3", "--listen", &listen, "--peers", "1=a:1,2=b:2"],
        &root.path().join("fresh"),
    )?;
    assert!(err.contains("not among the peers"), "{err}");
    Ok(())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}
