//! The CLI as a user runs it: files, JSON output, exit codes, backups.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pld_tests::process::ProcessCluster;

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

fn run(controller: &str, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(pld())
        .args(["--controller", controller, "--timeout", "3"])
        .args(args)
        .env("PLD_LOG", "off")
        .output()?)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_round_trip_through_the_cli_with_documented_exit_codes() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let c = cluster.address(1);
    let dir = tempfile::tempdir()?;

    // Register from a file, then read it back as JSON.
    let file = dir.path().join("billing.toml");
    std::fs::write(
        &file,
        r#"
name = "billing"
vpc = "vpc-0a1b2c3d"
load_balancer = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/billing/50dc6c495c0c9188"
ports = [443, 8443]
acceptance = "manual"
allow = ["arn:aws:iam::210987654321:root"]
"#,
    )?;
    let out = run(
        &c,
        &[
            "services",
            "register",
            "-f",
            file.to_str().unwrap_or_default(),
        ],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&c, &["services", "list", "-o", "json"])?;
    let list: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(list[0]["name"], "billing");
    assert_eq!(list[0]["ports"], serde_json::json!([443, 8443]));
    assert_eq!(list[0]["acceptance"], "manual");
    assert_eq!(list[0]["meta"]["mod_revision"], 1);

    // Exit codes scripts can rely on.
    let code = |o: &Output| o.status.code();
    assert_eq!(
        code(&run(&c, &["services", "get", "nope"])?),
        Some(3),
        "not found"
    );
    let again = run(
        &c,
        &[
            "services",
            "register",
            "-f",
            file.to_str().unwrap_or_default(),
            "--expect-revision",
            "0",
        ],
    )?;
    assert_eq!(code(&again), Some(4), "conflict");
    let bad = run(
        &c,
        &[
            "services",
            "register",
            "Bad!",
            "--vpc",
            "vpc-1",
            "--load-balancer",
            "x",
            "--port",
            "1",
        ],
    )?;
    assert_eq!(code(&bad), Some(6), "invalid");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("service.name"));
    let port = pld_tests::free_port()?;
    let down = run(&format!("127.0.0.1:{port}"), &["services", "list"])?;
    assert_eq!(code(&down), Some(5), "no controller");
    assert_eq!(
        code(&run(&c, &["services", "frobnicate"])?),
        Some(2),
        "usage"
    );

    // Back up, deregister, restore: the service is back.
    let backup = dir.path().join("catalog.bak");
    let out = run(
        &c,
        &["snapshot", "save", backup.to_str().unwrap_or_default()],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run(&c, &["services", "deregister", "billing"])?
        .status
        .success());
    assert_eq!(code(&run(&c, &["services", "get", "billing"])?), Some(3));
    let out = run(
        &c,
        &["snapshot", "restore", backup.to_str().unwrap_or_default()],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run(&c, &["services", "get", "billing"])?.status.success());

    // A file that is not a backup is refused and changes nothing.
    std::fs::write(&backup, b"not a backup")?;
    let out = run(
        &c,
        &["snapshot", "restore", backup.to_str().unwrap_or_default()],
    )?;
    assert_eq!(code(&out), Some(6));
    assert!(run(&c, &["services", "get", "billing"])?.status.success());
    Ok(())
}

#[test]
fn pld_agent_refuses_bad_configs_with_one_line_naming_the_problem() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/agent.toml"))?;
    let cases = [
        (
            example.replace("cloud = \"aws\"", "cloud = \"sim\""),
            "pld dev",
        ),
        (
            example.replace("vpc-0a1b2c3d4e5f60718", "vpc-xyz"),
            "vpc_id",
        ),
        (
            example.replace("zone = \"pld.internal\"", "zone = \"Bad Zone\""),
            "dns.zone",
        ),
        (format!("{example}\nsurprise = 1\n"), "surprise"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("agent{i}.toml"));
        std::fs::write(&path, text)?;
        let out = Command::new(pld())
            .args(["agent", "--config", path.to_str().unwrap_or_default()])
            .env("PLD_LOG", "off")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} started");
        assert!(stderr.contains(expected), "case {i}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    Ok(())
}
