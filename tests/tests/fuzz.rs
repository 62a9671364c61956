//! Runs every fuzz target in `fuzz/` (cargo-fuzz, libFuzzer, coverage-guided) for a short while:
//! catalog log entries and snapshots, client requests and certificates, raft batches, config
//! files. A crash fails the test with the input saved and the command that replays it.
//!
//! Needs `cargo fuzz` (`cargo install cargo-fuzz`); without it the test says so and passes,
//! unless `PLD_REQUIRE_FUZZ` is set (CI installs it and sets it). It builds with
//! `--sanitizer none`, which works on a stable toolchain: the project forbids `unsafe`, so what
//! libFuzzer hunts here is panics, aborts, hangs and runaway memory. `PLD_FUZZ_SECONDS` sets
//! the time per target (default 15).

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: &[&str] = &[
    "catalog_entry",
    "client_request",
    "raft_batch",
    "config_file",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Where the instrumented build goes: next to the workspace's own build, never inside `fuzz/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo().join("target"), PathBuf::from)
        .join("fuzz")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(repo());
    c
}

fn have_cargo_fuzz() -> bool {
    cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Seeds for a target: the shipped example configs for `config_file`, nothing for the others.
fn seed(target: &str, corpus: &Path) -> anyhow::Result<()> {
    if target == "config_file" {
        for example in ["controller.toml", "agent.toml"] {
            std::fs::copy(repo().join("deploy").join(example), corpus.join(example))?;
        }
    }
    Ok(())
}

#[test]
fn every_fuzz_target_runs_without_a_crash() -> anyhow::Result<()> {
    if !have_cargo_fuzz() {
        assert!(
            std::env::var_os("PLD_REQUIRE_FUZZ").is_none(),
            "PLD_REQUIRE_FUZZ is set but `cargo fuzz` is not installed"
        );
        eprintln!("skipped: `cargo fuzz` is not installed (cargo install cargo-fuzz)");
        return Ok(());
    }
    let seconds: u64 = match std::env::var("PLD_FUZZ_SECONDS") {
        Ok(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("PLD_FUZZ_SECONDS={s:?} is not a number of seconds"))?,
        Err(_) => 15,
    };
    let target_dir = target_dir();
    let status = cargo()
        .args(["fuzz", "build", "--sanitizer", "none", "--target-dir"])
        .arg(&target_dir)
        .status()?;
    assert!(status.success(), "`cargo fuzz build` failed");

    for target in TARGETS {
        let corpus = tempfile::tempdir()?;
        seed(target, corpus.path())?;
        let artifacts = target_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts)?;
        let out = cargo()
            .args(["fuzz", "run", "--sanitizer", "none", "--target-dir"])
            .arg(&target_dir)
            .arg(target)
            .arg(corpus.path())
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .output()?;
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Done ")?.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        assert!(
            out.status.success(),
            "fuzz target {target} crashed; the input is in {} — replay with `cargo fuzz run \
             --sanitizer none {target} FILE`:\n{log}",
            artifacts.display()
        );
        eprintln!("{target}: {runs} inputs in {seconds} s, no crash");
    }
    Ok(())
}
