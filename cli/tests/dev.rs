//! `pld dev` as a newcomer runs it: connect, resolve, DNS and bytes through the endpoint, and
//! `demo` moved to the second NLB and back while a client keeps connecting through its name.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pld_tests::region::{dns_a_until, echo_through};
use pld_tests::traffic::Prober;
use pld_tests::{free_port, free_port_run};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// Whether every command in `tools` is on the PATH.
fn tools_present(tools: &[&str]) -> bool {
    tools.iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Kills `pld dev` when the test ends, however it ends.
struct Dev(std::process::Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /` from `address:port` (loopback only), the whole answer.
/// `pld --controller CTL -o json ARGS...`: its exit code and what it printed, if JSON.
fn json(ctl: &str, args: &[&str]) -> Option<(Option<i32>, serde_json::Value)> {
    let out = Command::new(pld())
        .args(["--controller", ctl, "-o", "json"])
        .args(args)
        .env("PLD_LOG", "off")
        .output()
        .ok()?;
    Some((out.status.code(), serde_json::from_slice(&out.stdout).ok()?))
}

async fn http_get(address: &str, port: u16) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ip: std::net::Ipv4Addr = address.parse()?;
    anyhow::ensure!(ip.is_loopback(), "only loopback: {ip}");
    let mut conn = tokio::net::TcpStream::connect((ip, port)).await?;
    conn.write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pld_dev_connects_a_consumer_and_carries_bytes() -> anyhow::Result<()> {
    // The agents use three consecutive ports from each base.
    let (controller, agent, dns) = (free_port()?, free_port_run(3)?, free_port_run(3)?);
    let stderr_log = tempfile::NamedTempFile::new()?;
    let mut child = Command::new(pld())
        .args(["dev", "--latency-ms", "50"])
        .args(["--controller-port", &controller.to_string()])
        .args(["--agent-port", &agent.to_string()])
        .args(["--dns-port", &dns.to_string()])
        .env("PLD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr_log.reopen()?)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut dev = Dev(child);
    // Read the banner until the consumer line names its VPC and the hint that sends bytes
    // through the endpoint with dig and nc.
    let banner = tokio::task::spawn_blocking(move || {
        let mut consumer = None;
        let mut overlapping = None;
        let mut nlbs = (None, None);
        let mut alb_address = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.ok()?;
            let first_word = |prefix: &str| {
                let rest = line.trim_start().strip_prefix(prefix)?;
                rest.split_whitespace().next().map(str::to_string)
            };
            if let Some(vpc) = first_word("consumer ") {
                consumer = Some(vpc);
            }
            if let Some(vpc) = first_word("overlapping ") {
                overlapping = Some(vpc);
            }
            if let Some(arn) = first_word("nlb ") {
                nlbs.0 = Some(arn);
            }
            if let Some(arn) = first_word("nlb-b ") {
                nlbs.1 = Some(arn);
            }
            // `alb ARN (web is on it; its internet clients use http://ADDRESS:PORT/)`
            if first_word("alb ").is_some() {
                alb_address = line
                    .split("http://")
                    .nth(1)
                    .and_then(|rest| rest.split(':').next())
                    .map(str::to_string);
            }
            if line.contains("| nc ") {
                return Some((
                    (consumer?, overlapping?),
                    line.trim().to_string(),
                    (nlbs.0?, nlbs.1?),
                    alb_address?,
                ));
            }
        }
        None
    });
    let ((consumer, overlapping), nc_hint, (nlb, nlb_b), alb_address) =
        tokio::time::timeout(Duration::from_secs(60), banner)
            .await??
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "pld dev printed no consumer VPC; its stderr: {}",
                    std::fs::read_to_string(stderr_log.path()).unwrap_or_default()
                )
            })?;
    let ctl = format!("127.0.0.1:{controller}");

    // Before connecting: the plan, from the facts the agents reported, is clean and says what
    // the consumer's agent will make.
    let plan = pld_tests::wait_until(Duration::from_secs(20), "a clean plan for demo", || async {
        let (code, plan) = json(&ctl, &["plan", "connect", "demo", "--vpc", &consumer])?;
        (code == Some(0) && plan["clean"] == true).then_some(plan)
    })
    .await?;
    assert!(
        plan.to_string().contains("CreateVpcEndpoint"),
        "the plan shows the endpoint: {plan}"
    );

    // The network view finds the VPC that overlaps the provider, once its facts are in.
    let network = pld_tests::wait_until(
        Duration::from_secs(20),
        "the overlapping VPC in pld network",
        || async {
            let (_, network) = json(&ctl, &["network"])?;
            (network["vpcs"].as_array().map(Vec::len) == Some(3)).then_some(network)
        },
    )
    .await?;
    assert_eq!(
        network["overlaps"][0]["ranges"],
        serde_json::json!(["10.0.0.0/16"]),
        "{network}"
    );
    assert_eq!(network["overlaps"].as_array().map(Vec::len), Some(1));

    // `legacy` is offered in one AZ the overlapping VPC's agent may not use: its plan fails on
    // AZ fit (exit 8), naming the AZ on offer and those the VPC has.
    let misfit = pld_tests::wait_until(Duration::from_secs(20), "an AZ-fit plan", || async {
        let (code, plan) = json(&ctl, &["plan", "connect", "legacy", "--vpc", &overlapping])?;
        let problem = plan["problems"]
            .as_array()?
            .iter()
            .find(|p| p["kind"] == "az_fit")?
            .clone();
        Some((code, problem))
    })
    .await?;
    assert_eq!(misfit.0, Some(8), "{misfit:?}");
    let message = misfit.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("legacy is offered in use1-az4") && message.contains("use1-az1"),
        "{message}"
    );

    // A second service on web's ALB, on a port the ALB does not listen on: the register plan
    // runs the provider agent's front planner on the listeners its facts list, and refuses.
    let (_, web) = json(&ctl, &["services", "get", "web"])
        .ok_or_else(|| anyhow::anyhow!("pld services get web printed no JSON"))?;
    let (alb_arn, web_vpc) = (
        web["load_balancer_arn"].as_str().unwrap_or_default(),
        web["vpc_id"].as_str().unwrap_or_default(),
    );
    let refused = pld_tests::wait_until(
        Duration::from_secs(20),
        "a register plan refusing the port",
        || async {
            let (code, plan) = json(
                &ctl,
                &[
                    "plan",
                    "services",
                    "register",
                    "web2",
                    "--vpc",
                    web_vpc,
                    "--load-balancer",
                    alb_arn,
                    "--port",
                    "8443",
                ],
            )?;
            let problem = plan["problems"]
                .as_array()?
                .iter()
                .find(|p| p["kind"] == "refused")?
                .clone();
            Some((code, problem))
        },
    )
    .await?;
    assert_eq!(refused.0, Some(8), "{refused:?}");
    let message = refused.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no listener on port 8443") && message.contains("8080"),
        "{message}"
    );

    let out = Command::new(pld())
        .args([
            "--controller",
            &ctl,
            "connect",
            "demo",
            "--vpc",
            &consumer,
            "--wait",
        ])
        .env("PLD_LOG", "off")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("pendingAcceptance"),
        "each transition is shown: {text}"
    );
    assert!(
        text.lines().last().unwrap_or_default().starts_with("ready"),
        "{text}"
    );

    let (_, answer) = json(&ctl, &["resolve", "demo", "--vpc", &consumer])
        .ok_or_else(|| anyhow::anyhow!("pld resolve printed no JSON"))?;
    assert_eq!(answer["phase"], "ready");
    assert_eq!(answer["dns_name"], "demo.pld.internal");

    let dns_server = format!("127.0.0.1:{}", dns + 1).parse()?;
    let addrs = dns_a_until(
        dns_server,
        "demo.pld.internal.",
        "the consumer's DNS to answer demo",
        |a| !a.is_empty(),
    )
    .await?;
    assert_eq!(echo_through(addrs[0], 7007, "ping").await?, "ping");

    // The consumer's agent keeps its VPC's facts in the catalog, its new endpoint counted.
    let facts = pld_tests::wait_until(
        Duration::from_secs(20),
        "the consumer's facts with its endpoint",
        || async {
            let (_, agent) = json(&ctl, &["agents", "get", &consumer])?;
            let facts = agent.get(0)?.get("facts")?.clone();
            (facts["endpoints"] == 1).then_some(facts)
        },
    )
    .await?;
    assert_eq!(
        facts["subnets"].as_array().map(Vec::len),
        Some(3),
        "{facts}"
    );
    assert_eq!(facts["endpoint_quota"], 50, "{facts}");

    // What it costs: the demo binding's endpoint in each AZ it was placed in at $0.01 an hour,
    // and 100 GB a month at $0.01 (prices/aws.toml, us-east-1), worked out here by hand.
    let out = Command::new(pld())
        .args([
            "--controller",
            &ctl,
            "-o",
            "json",
            "cost",
            "--gb-per-month",
            "100",
        ])
        .env("PLD_LOG", "off")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cost: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let demo = cost["bindings"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["service"] == "demo"))
        .ok_or_else(|| anyhow::anyhow!("no demo binding in {cost}"))?;
    let azs = demo["azs"].as_f64().unwrap_or_default();
    assert!(azs >= 1.0 && demo["billing_now"] == true, "{demo}");
    let month = demo["privatelink"]["usd_per_month"]
        .as_f64()
        .unwrap_or_default();
    assert!(
        (month - (azs * 0.01 * 730.0 + 100.0 * 0.01)).abs() < 1e-6,
        "{demo}"
    );
    // The controller's metric: the consumer account's endpoint hours (no traffic configured).
    let consumer_account = demo["account_id"].as_str().unwrap_or_default().to_string();
    let series = format!("pld_estimated_cost_usd_per_hour{{account=\"{consumer_account}\"}}");
    let scraped = pld_tests::wait_until(Duration::from_secs(10), "the cost metric", || async {
        let metrics = pld_tests::scrape(ctl.parse().ok()?).await.ok()?;
        pld_tests::metric(&metrics, &series)
    })
    .await?;
    assert!((scraped - azs * 0.01).abs() < 1e-9, "{series} = {scraped}");

    // The banner's dig | nc line works as printed, though DNS answers one address per AZ.
    if tools_present(&["dig", "nc"]) {
        let out = Command::new("timeout")
            .args(["20", "sh", "-c", &nc_hint])
            .output()?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "hello",
            "`{nc_hint}` printed {:?}, stderr {:?}",
            out.stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(
            std::env::var_os("PLD_REQUIRE_DIG_NC").is_none(),
            "PLD_REQUIRE_DIG_NC is set but dig or nc is missing"
        );
        eprintln!("note: dig or nc is not installed; the banner's nc line is not tried");
    }

    // The consumer's agent (second of the agent ports) reports what it did.
    let metrics = pld_tests::scrape(format!("127.0.0.1:{}", agent + 1).parse()?).await?;
    let created = "pld_aws_calls_total{action=\"CreateVpcEndpoint\",outcome=\"ok\"}";
    assert_eq!(pld_tests::metric(&metrics, created), Some(1.0), "{metrics}");
    assert_eq!(
        pld_tests::metric(&metrics, "pld_agent_bindings{phase=\"ready\"}"),
        Some(1.0)
    );

    // The move's plan: the consumer's agent makes an endpoint to the new endpoint service,
    // flips the name, deletes the old endpoint; the provider's deletes the old endpoint service.
    let (code, plan) = json(
        &ctl,
        &[
            "plan",
            "services",
            "move",
            "demo",
            "--load-balancer",
            &nlb_b,
        ],
    )
    .ok_or_else(|| anyhow::anyhow!("pld plan services move printed no JSON"))?;
    assert_eq!(code, Some(0), "{plan}");
    let actions = |side: &str| -> Vec<String> {
        plan["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["vpcs"].as_array().cloned().unwrap_or_default())
            .filter(|v| v["side"] == side)
            .flat_map(|v| v["steps"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s["action"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        actions("consumer"),
        [
            "CreateVpcEndpoint",
            "ChangeResourceRecordSets",
            "DeleteVpcEndpoints"
        ],
        "{plan}"
    );
    assert!(
        actions("provider").contains(&"DeleteVpcEndpointServiceConfigurations".to_string()),
        "{plan}"
    );

    // The banner's move, there and back, while a client connects through the name every
    // 20 ms: not one connection fails.
    let prober = Prober::start(dns_server, "demo.pld.internal.", 7007);
    for to in [&nlb_b, &nlb] {
        let out = Command::new(pld())
            .args(["--controller", &ctl, "services", "move", "demo"])
            .args(["--load-balancer", to, "--wait"])
            .env("PLD_LOG", "off")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("retiring"), "each change is shown: {text}");
        assert!(
            text.lines()
                .last()
                .unwrap_or_default()
                .ends_with(to.as_str()),
            "{text}"
        );
    }
    let (ok, failures) = prober.stop().await?;
    assert!(
        failures.is_empty(),
        "{} of {} connections failed during the moves: {failures:?}",
        failures.len(),
        failures.len() as u64 + ok
    );
    let out = Command::new(pld())
        .args([
            "--controller",
            &ctl,
            "-o",
            "json",
            "bindings",
            "get",
            "demo",
        ])
        .args(["--vpc", &consumer])
        .env("PLD_LOG", "off")
        .output()?;
    let binding: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(binding["status"]["phase"], "ready", "{binding}");
    assert_eq!(binding["status"]["migration"], serde_json::Value::Null);
    let metrics = pld_tests::scrape(format!("127.0.0.1:{}", agent + 1).parse()?).await?;
    assert_eq!(
        pld_tests::metric(&metrics, "pld_agent_binding_moves_total"),
        Some(2.0),
        "{metrics}"
    );

    // `web`, behind its ALB: through the consumer's endpoint and the NLB the provider's agent
    // built, and at the ALB's own address, as its internet clients reach it.
    let out = Command::new(pld())
        .args(["--controller", &ctl, "connect", "web", "--vpc", &consumer])
        .arg("--wait")
        .env("PLD_LOG", "off")
        .output()?;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let addrs = dns_a_until(
        dns_server,
        "web.pld.internal.",
        "the consumer's DNS to answer web",
        |a| !a.is_empty(),
    )
    .await?;
    let through = http_get(&addrs[0].to_string(), 8080).await?;
    assert!(through.starts_with("HTTP/1.1 200 OK"), "{through}");
    assert!(
        through.ends_with("hello from web, behind its ALB\n"),
        "{through}"
    );
    let direct = http_get(&alb_address, 8080).await?;
    assert_eq!(direct, through, "the ALB's own address answers the same");
    let out = Command::new(pld())
        .args(["--controller", &ctl, "-o", "json", "services", "get", "web"])
        .env("PLD_LOG", "off")
        .output()?;
    let web: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let front = &web["status"]["alb_front"];
    assert_eq!(front["state"], "active", "{web}");
    assert_eq!(front["ports"][0]["alb_health"], "healthy", "{web}");

    Command::new("kill")
        .args(["-TERM", &dev.0.id().to_string()])
        .status()?;
    let status = tokio::task::spawn_blocking(move || dev.0.wait()).await??;
    assert!(status.success(), "pld dev exits 0 on SIGTERM");
    Ok(())
}
