//! A controller whose disk fills up: it stops acknowledging writes, says why in one line and
//! exits non-zero (so systemd restarts it); once there is space again, a restart on the same data
//! dir has every acknowledged write and takes new ones.
//!
//! The test mounts a 1 MiB tmpfs for the data dir, so it needs root; elsewhere it reports
//! `ignored, <why>` (never a pass), and `.ci/run` (root) sets PLD_REQUIRE_ROOT_TESTS=1 to make
//! that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use pld_proto::v1::{Kind, ListRequest};
use pld_tests::objects::put_service;
use pld_tests::systemd::wait_exit;
use pld_tests::{free_port, wait_until, Setup};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts `size` at `dir`, or a skip saying why this process may not mount.
    fn mount(dir: &Path, size: &str) -> anyhow::Result<Setup<Tmpfs>> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()?;
        if out.status.success() {
            return Ok(Setup::Ready(Tmpfs(dir.to_path_buf())));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().next().unwrap_or_default().trim();
        Setup::unavailable(format!("a tmpfs cannot be mounted here ({why})"))
    }

    fn resize(&self, size: &str) -> anyhow::Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()?;
        anyhow::ensure!(status.success(), "remount failed");
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A controller process, killed when dropped (also when an assertion fails).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data_dir: &Path, port: u16, stderr: &Path) -> anyhow::Result<Node> {
    Ok(Node(
        Command::new(pld())
            .args([
                "controller",
                "--insecure",
                "--id",
                "1",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("PLD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr)?)
            .spawn()?,
    ))
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test(
        "a_full_disk_stops_acknowledgements_and_loses_nothing",
        || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Failed::from(format!("a runtime: {e}")))?;
            let dir = tempfile::tempdir().map_err(|e| Failed::from(format!("a temp dir: {e}")))?;
            let ran = runtime.block_on(a_full_disk_stops_acknowledgements_and_loses_nothing(
                dir.path(),
            ));
            match ran.map_err(|e| Failed::from(format!("{e:?}")))? {
                Setup::Ready(()) => Ok(Completion::Completed),
                Setup::Skip(why) => Ok(Completion::ignored_with(why)),
            }
        },
    )];
    libtest_mimic::run(&args, trials).exit_code()
}

async fn a_full_disk_stops_acknowledgements_and_loses_nothing(
    dir: &Path,
) -> anyhow::Result<Setup<()>> {
    let disk = match Tmpfs::mount(&dir.join("disk"), "1m")? {
        Setup::Ready(disk) => disk,
        Setup::Skip(why) => return Ok(Setup::Skip(why)),
    };
    let data_dir = disk.0.join("data");
    let port = free_port()?;
    let log = dir.join("first.log");
    let mut node = start(&data_dir, port, &log)?;
    let client = pld_client::Client::new(&[format!("127.0.0.1:{port}")])?
        .with_deadline(Duration::from_secs(3));
    wait_until(
        Duration::from_secs(20),
        "the node to take writes",
        || async { put_service(&client, "first").await.ok() },
    )
    .await?;

    let mut acknowledged = vec!["first".to_string()];
    for i in 0..50_000 {
        let name = format!("svc-{i}");
        match put_service(&client, &name).await {
            Ok(_) => acknowledged.push(name),
            Err(_) => break,
        }
    }
    assert!(
        acknowledged.len() > 100,
        "the disk filled after {} writes",
        acknowledged.len()
    );
    // sled may report a failed background write only on the next flush, so clients that keep
    // trying (as agents do) make the node notice; it then stops with one clear line.
    let nudged = std::sync::atomic::AtomicBool::new(false);
    let _ = wait_until(Duration::from_secs(40), "the node to exit", || {
        let exited = !matches!(node.0.try_wait(), Ok(None));
        let (client, nudged) = (&client, &nudged);
        async move {
            if exited {
                return Some(());
            }
            if put_service(client, "nudge").await.is_ok() {
                nudged.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            None
        }
    })
    .await;
    if nudged.into_inner() {
        acknowledged.push("nudge".into());
    }
    let code = wait_exit(&mut node.0, Duration::from_secs(5))?;
    let stderr = std::fs::read_to_string(&log)?;
    assert_eq!(
        code,
        Some(1),
        "a node that cannot persist exits non-zero: {stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("free space or fix the disk"),
        "{last}"
    );

    disk.resize("64m")?;
    let node = start(&data_dir, port, &dir.join("second.log"))?;
    let listed = wait_until(
        Duration::from_secs(20),
        "the restarted node to answer",
        || async {
            client
                .list(ListRequest {
                    kind: Kind::Service as i32,
                    ..Default::default()
                })
                .await
                .ok()
        },
    )
    .await?;
    let names: BTreeSet<String> = pld_client_names(listed.objects);
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    // At most the write that failed may have made it; nothing else appeared.
    assert!(
        names.len() <= acknowledged.len() + 1,
        "{} stored, {} acknowledged",
        names.len(),
        acknowledged.len()
    );
    put_service(&client, "after").await?;
    drop(node);
    Ok(Setup::Ready(()))
}

fn pld_client_names(objects: Vec<pld_proto::v1::Object>) -> BTreeSet<String> {
    objects
        .into_iter()
        .filter_map(|o| match o.object? {
            pld_proto::v1::object::Object::Service(s) => Some(s.name),
            _ => None,
        })
        .collect()
}
