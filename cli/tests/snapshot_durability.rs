//! `pld snapshot save` says "saved" only once the backup would survive a crash: the file is
//! fsynced before it is renamed into place, and its folder fsynced after the rename. What the
//! process asks the kernel is read with strace (Debian's `strace`, which `.ci/run` installs;
//! `PLD_REQUIRE_STRACE` makes a missing strace a failure, not a skip).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pld_tests::process::ProcessCluster;

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// The file descriptor a traced `openat(…"path"…) = FD` line returned.
fn opened(line: &str, path: &str) -> Option<String> {
    (line.contains("openat(") && line.contains(&format!("\"{path}\"")))
        .then(|| line.rsplit("= ").next().map(|fd| fd.trim().to_string()))
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_save_fsyncs_the_file_and_its_folder_before_it_reports_success(
) -> anyhow::Result<()> {
    if Command::new("strace").arg("-V").output().is_err() {
        anyhow::ensure!(
            std::env::var_os("PLD_REQUIRE_STRACE").is_none(),
            "PLD_REQUIRE_STRACE is set but strace is missing"
        );
        eprintln!("note: strace is not installed; snapshot durability is not checked");
        return Ok(());
    }
    let cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let dir = tempfile::tempdir()?;
    let folder = dir.path().to_string_lossy().to_string();
    let file = format!("{folder}/catalog.bak");
    let partial = format!("{folder}/catalog.partial");
    let trace = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-s", "64", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2,write",
        ])
        .arg(pld())
        .args([
            "--controller",
            &cluster.address(1),
            "snapshot",
            "save",
            &file,
        ])
        .env("PLD_LOG", "off")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace)?;
    // Each line is `PID call(...) = result`; only the order matters here.
    let lines: Vec<&str> = text.lines().collect();
    let at = |what: &str, pred: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .position(|l| pred(l))
            .ok_or_else(|| anyhow::anyhow!("no {what} in the trace:\n{text}"))
    };
    let file_fd = lines
        .iter()
        .find_map(|l| opened(l, &partial))
        .ok_or_else(|| anyhow::anyhow!("the partial file is never opened:\n{text}"))?;
    let synced = at("fsync of the file", &|l| {
        l.contains(&format!("fsync({file_fd})")) || l.contains(&format!("fdatasync({file_fd})"))
    })?;
    let renamed = at("rename into place", &|l| {
        l.contains("rename") && l.contains(&partial) && l.contains(&format!("\"{file}\""))
    })?;
    let folder_fd = lines[renamed..]
        .iter()
        .find_map(|l| opened(l, &folder))
        .ok_or_else(|| anyhow::anyhow!("the folder is never opened after the rename:\n{text}"))?;
    let folder_synced = lines
        .iter()
        .enumerate()
        .skip(renamed)
        .find(|(_, l)| l.contains(&format!("fsync({folder_fd})")))
        .map(|(i, _)| i)
        .ok_or_else(|| anyhow::anyhow!("the folder is never fsynced after the rename:\n{text}"))?;
    let reported = at("the report", &|l| l.contains("write(1, \"saved"))?;
    assert!(
        synced < renamed,
        "the file is fsynced before the rename:\n{text}"
    );
    assert!(
        renamed < folder_synced && folder_synced < reported,
        "the folder is fsynced after the rename and before `saved` is printed:\n{text}"
    );
    Ok(())
}
