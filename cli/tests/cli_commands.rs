//! The CLI as a user runs it: files, JSON output, exit codes, backups.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pld_tests::process::ProcessCluster;
use pld_tests::wait_until;

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
regions = ["us-west-2"]
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
    assert_eq!(list[0]["regions"], serde_json::json!(["us-west-2"]));
    assert_eq!(list[0]["meta"]["mod_revision"], 1);
    let get = stdout(&run(&c, &["services", "get", "billing"])?);
    assert!(
        get.contains("regions:       us-west-2 (not reported yet)"),
        "{get}"
    );

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
    // Regions changed without restating the spec.
    let offered = run(
        &c,
        &[
            "-o",
            "json",
            "services",
            "offer",
            "billing",
            "--region",
            "eu-west-1",
        ],
    )?;
    assert!(
        offered.status.success(),
        "{}",
        String::from_utf8_lossy(&offered.stderr)
    );
    let offered: serde_json::Value = serde_json::from_str(&stdout(&offered))?;
    assert_eq!(
        offered["regions"],
        serde_json::json!(["us-west-2", "eu-west-1"])
    );
    assert_eq!(
        offered["ports"],
        serde_json::json!([443, 8443]),
        "the rest is kept"
    );
    let withdrawn = run(
        &c,
        &[
            "-o",
            "json",
            "services",
            "withdraw",
            "billing",
            "--region",
            "us-west-2",
        ],
    )?;
    let withdrawn: serde_json::Value = serde_json::from_str(&stdout(&withdrawn))?;
    assert_eq!(withdrawn["regions"], serde_json::json!(["eu-west-1"]));
    let nowhere = run(&c, &["services", "offer", "billing", "--region", "mars-1"])?;
    assert_eq!(code(&nowhere), Some(6), "invalid");
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("mars-1"));
    // A region of another partition is refused before any call, naming it.
    let foreign = run(
        &c,
        &[
            "services",
            "register",
            "billing2",
            "--vpc",
            "vpc-0a1b2c3d",
            "--load-balancer",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/b2/50dc6c495c0c9188",
            "--port",
            "443",
            "--region",
            "cn-north-1",
        ],
    )?;
    assert_eq!(code(&foreign), Some(6), "invalid");
    let why = String::from_utf8_lossy(&foreign.stderr);
    assert!(
        why.contains("service.regions") && why.contains("partition aws-cn"),
        "{why}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_service_nobody_registered_is_refused_unless_asked_to_wait(
) -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let c = cluster.address(1);
    let vpc = "vpc-0a1b2c3d";

    let out = run(&c, &["connect", "ghost", "--vpc", vpc])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "not found: {err}");
    assert!(
        err.contains("\"ghost\" is not in the catalog") && err.contains("--allow-missing"),
        "{err}"
    );
    let get = run(&c, &["bindings", "get", "ghost", "--vpc", vpc])?;
    assert_eq!(get.status.code(), Some(3), "nothing was created");

    let out = run(&c, &["connect", "ghost", "--vpc", vpc, "--allow-missing"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = run(&c, &["bindings", "get", "ghost", "--vpc", vpc])?;
    assert!(get.status.success(), "the binding waits for its service");

    let out = run(&c, &["connect", "s3", "--vpc", vpc])?;
    assert!(
        out.status.success(),
        "a built-in needs no registration: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The `[tls]` table of deploy/agent.toml.
const TLS_TABLE: &str = "[tls]\nca = \"/etc/pld/tls/ca.pem\"\ncert = \"/etc/pld/tls/agent.pem\"\nkey = \"/etc/pld/tls/agent.key\"\n";

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
        (
            example.replace(TLS_TABLE, ""),
            "tls: missing: an agent talks to the controllers over mutual TLS",
        ),
        (
            format!("insecure = true\n{example}"),
            "insecure: set together with [tls]",
        ),
    ];
    assert!(
        example.contains(TLS_TABLE),
        "deploy/agent.toml changed its [tls] table"
    );
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

/// Writes an agent object and a few bindings straight through the API, as agents would.
async fn seed_catalog(client: &pld_client::Client) -> anyhow::Result<()> {
    use pld_proto::v1::{
        object, report_status_request, Agent, Approval, BindingStatus, Kind, Object, PlannedStep,
        ReportStatusRequest, RetiringEndpointService, ServiceStatus,
    };
    let agent = Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: "vpc-0c0c0c0c".into(),
            account_id: "222222222222".into(),
            region: "us-east-1".into(),
            address: "127.0.0.1:7501".into(),
            lease_ttl_seconds: 60,
            ..Default::default()
        })),
    };
    client.put(agent, None).await?;
    pld_tests::objects::put_service(client, "billing").await?;
    // A service whose agent may not create its endpoint service lists that step as pending.
    let report = |req: ReportStatusRequest| async move {
        client
            .call(|mut s| {
                let req = req.clone();
                async move { s.catalog().report_status(req).await }
            })
            .await
    };
    report(ReportStatusRequest {
        kind: Kind::Service as i32,
        key: "billing".into(),
        status: Some(report_status_request::Status::Service(ServiceStatus {
            state: "failed".into(),
            message: "unauthorized: ec2:CreateVpcEndpointServiceConfiguration".into(),
            pending: vec![PlannedStep {
                action: "CreateVpcEndpointServiceConfiguration".into(),
                target: "endpoint service on arn:aws:elasticloadbalancing:demo".into(),
                reason: "missing".into(),
            }],
            // Moved off another load balancer, whose endpoint service still serves two.
            retiring: vec![RetiringEndpointService {
                endpoint_service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-old".into(),
                load_balancer_arns: vec!["arn:aws:elasticloadbalancing:old".into()],
                connections: 2,
                // The drain grace period ends in about an hour.
                grace_ends_unix_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as u64
                    + 3_600_000
                    + 59_000,
            }],
            ..Default::default()
        })),
    })
    .await?;
    for (vpc, phase, message) in [
        ("vpc-0c0c0c0c", "ready", ""),
        (
            "vpc-0d0d0d0d",
            "failed",
            "subnet-1 is in use1-az9, which the service does not offer",
        ),
        ("vpc-0f0f0f0f", "publishing", ""),
    ] {
        // A binding on its way lists what its agent's plan still waits on.
        let pending = if phase == "publishing" {
            vec![PlannedStep {
                action: "ChangeResourceRecordSets".into(),
                target: "billing.pld.internal.".into(),
                reason: "missing".into(),
            }]
        } else {
            Vec::new()
        };
        pld_tests::objects::put_binding(client, "billing", vpc, Approval::Unspecified).await?;
        report(ReportStatusRequest {
            kind: Kind::Binding as i32,
            key: format!("billing/{vpc}"),
            status: Some(report_status_request::Status::Binding(BindingStatus {
                phase: phase.into(),
                message: message.into(),
                pending,
                ..Default::default()
            })),
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_agents_and_bindings_give_the_whole_picture() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let c = cluster.address(1);
    seed_catalog(&cluster.client()).await?;
    let cluster_id = wait_until(Duration::from_secs(10), "the cluster id", || async {
        cluster.client().cluster_id().await.ok().flatten()
    })
    .await?;

    let out = run(&c, &["status"])?;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("CLUSTER   {cluster_id} · leader 1")),
        "{text}"
    );
    assert!(text.contains("AGENTS    1 alive"), "{text}");
    assert!(
        text.contains("BINDINGS  1 failed, 1 publishing, 1 ready"),
        "{text}"
    );
    assert!(text.contains("FAILING BINDINGS"), "{text}");
    assert!(text.contains("which the service does not offer"), "{text}");

    let out = run(&c, &["status", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["cluster"]["leader_id"], 1);
    assert_eq!(v["cluster"]["id"], cluster_id.as_str());
    assert_eq!(v["cluster"]["members"][0]["lag"], 0);
    assert_eq!(v["agents"]["alive"], 1);
    assert_eq!(v["services"]["total"], 1);
    assert_eq!(v["bindings"]["by_phase"]["ready"], 1);
    assert_eq!(
        v["bindings"]["failing"][0]["consumer_vpc_id"],
        "vpc-0d0d0d0d"
    );

    let out = run(&c, &["bindings", "list", "--failing", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    // Each side's region: the consumer's agent's, and the service's load balancer's (a VPC
    // with no agent yet has none to say).
    assert_eq!(v[0]["consumer_region"], "", "{v}");
    assert_eq!(v[0]["service_region"], "us-east-1", "{v}");
    let out = run(&c, &["bindings", "list", "--phase", "ready", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v[0]["consumer_region"], "us-east-1", "{v}");
    let out = run(&c, &["bindings", "list", "--phase", "ready"])?;
    assert!(stdout(&out).contains("vpc-0c0c0c0c") && !stdout(&out).contains("vpc-0d0d0d0d"));
    let out = run(&c, &["bindings", "get", "billing", "--vpc", "vpc-0d0d0d0d"])?;
    assert!(
        stdout(&out).contains("message:   subnet-1"),
        "{}",
        stdout(&out)
    );
    let out = run(&c, &["bindings", "get", "billing", "--vpc", "vpc-0f0f0f0f"])?;
    assert!(
        stdout(&out).contains("pending:   ChangeResourceRecordSets billing.pld.internal.: missing"),
        "{}",
        stdout(&out)
    );
    let out = run(
        &c,
        &[
            "bindings",
            "get",
            "billing",
            "--vpc",
            "vpc-0f0f0f0f",
            "-o",
            "json",
        ],
    )?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["status"]["pending"][0]["reason"], "missing", "{v}");
    let out = run(&c, &["services", "get", "billing"])?;
    assert!(
        stdout(&out).contains(
            "pending:       CreateVpcEndpointServiceConfiguration endpoint service on \
             arn:aws:elasticloadbalancing:demo: missing"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(
            "retiring:      com.amazonaws.vpce.us-east-1.vpce-svc-old on \
             arn:aws:elasticloadbalancing:old (2 consumers still connected; the rest are cut \
             in 60m)"
        ),
        "{}",
        stdout(&out)
    );
    let out = run(&c, &["services", "get", "billing", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        v["status"]["pending"][0]["action"], "CreateVpcEndpointServiceConfiguration",
        "{v}"
    );
    assert_eq!(v["status"]["retiring"][0]["connections"], 2, "{v}");
    assert!(
        v["status"]["retiring"][0]["grace_ends_unix_ms"].as_u64() > Some(0),
        "{v}"
    );
    let out = run(&c, &["bindings", "get", "billing", "--vpc", "vpc-0e0e0e0e"])?;
    assert_eq!(
        out.status.code(),
        Some(3),
        "a missing binding is exit code 3"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("see what exists with `pld bindings list`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    let out = run(&c, &["agents", "list", "--state", "alive", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v[0]["vpc_id"], "vpc-0c0c0c0c");
    let out = run(&c, &["agents", "list", "--state", "expired", "-o", "json"])?;
    assert_eq!(stdout(&out).trim(), "[]");
    let out = run(&c, &["agents", "get", "vpc-0c0c0c0c"])?;
    assert!(
        stdout(&out).contains("lease ttl:     60s"),
        "{}",
        stdout(&out)
    );
    let out = run(&c, &["agents", "get", "not-a-vpc"])?;
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A reader that goes away (`pld services list | head -0`) ends the command quietly.
    let mut child = Command::new(pld())
        .args(["--controller", &c, "services", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );

    let out = run(&c, &["services", "list", "--state", "failed", "-o", "json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v[0]["name"], "billing");
    let out = run(
        &c,
        &["services", "list", "--state", "registered", "-o", "json"],
    )?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v.as_array().map(Vec::len), Some(0), "{v}");
    Ok(())
}

#[test]
fn shell_completions_are_generated() -> anyhow::Result<()> {
    for (shell, marker) in [
        ("bash", "_pld()"),
        ("zsh", "#compdef pld"),
        ("fish", "complete -c pld"),
    ] {
        let out = Command::new(pld()).args(["completions", shell]).output()?;
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        assert!(text.contains("connect"), "{shell} completes subcommands");
    }
    let out = Command::new(pld()).args(["completions", "tcsh"]).output()?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[test]
fn bad_log_settings_are_refused_naming_the_variable() -> anyhow::Result<()> {
    for (var, value, expected) in [
        (
            "PLD_LOG",
            "pld=loud",
            "PLD_LOG=\"pld=loud\" is not a log filter",
        ),
        (
            "PLD_LOG_FORMAT",
            "xml",
            "PLD_LOG_FORMAT=\"xml\" is not a log format",
        ),
    ] {
        let out = Command::new(pld())
            .args(["--controller", "127.0.0.1:1", "services", "list"])
            .env(var, value)
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    Ok(())
}
