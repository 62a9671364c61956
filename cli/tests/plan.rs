//! `pld plan connect` as a user runs it against a real controller process: a table or JSON,
//! exit 0 for a clean plan, 8 for one with errors, and the documented codes for bad input.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pld_client::Client;
use pld_proto::v1::{
    object, report_status_request, Agent, Kind, LoadBalancerFacts, Object, ReportStatusRequest,
    ServiceStatus, SubnetFacts, VpcFacts,
};
use pld_tests::process::ProcessCluster;

/// The provider VPC of `pld_tests::objects::service`.
const PROVIDER_VPC: &str = "vpc-0123abcd";
const WEB_NLB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/web/50dc6c495c0c9188";
const CONSUMER_VPC: &str = "vpc-0c0c0c0c";
const FAR_VPC: &str = "vpc-0e0e0e0e";

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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn report(client: &Client, req: ReportStatusRequest) -> anyhow::Result<()> {
    client
        .call(|mut s| {
            let req = req.clone();
            async move { s.catalog().report_status(req).await }
        })
        .await?;
    Ok(())
}

/// An agent of `vpc` in `account` whose subnets are in `azs`.
async fn agent(client: &Client, vpc: &str, account: &str, azs: &[&str]) -> anyhow::Result<()> {
    let agent = Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: account.into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: 600,
            dns_zone: "pld.internal".into(),
            ..Default::default()
        })),
    };
    client.put(agent, None).await?;
    let facts = VpcFacts {
        ipv4_cidrs: vec!["10.9.0.0/16".into()],
        subnets: azs
            .iter()
            .enumerate()
            .map(|(i, az)| SubnetFacts {
                id: format!("subnet-0{i}{i}{i}{i}{i}{i}{i}"),
                cidr: format!("10.9.{i}.0/24"),
                az_id: az.to_string(),
                az_name: format!("us-east-1{}", (b'a' + i as u8) as char),
                ipv6_cidr: String::new(),
            })
            .collect(),
        endpoint_quota: 50,
        // The provider's NLB that `web` is registered on below, as its agent reads it.
        load_balancers: if vpc == PROVIDER_VPC {
            vec![LoadBalancerFacts {
                arn: WEB_NLB.into(),
                kind: "network".into(),
                az_ids: azs.iter().map(|a| a.to_string()).collect(),
                state: "active".into(),
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    report(
        client,
        ReportStatusRequest {
            kind: Kind::Agent as i32,
            key: vpc.into(),
            status: Some(report_status_request::Status::Agent(facts)),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_connect_prints_the_steps_and_exits_by_what_it_found() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(pld(), 1)?;
    cluster.wait_leader(Duration::from_secs(20)).await?;
    let c = cluster.address(1);
    let client = cluster.client();
    agent(
        &client,
        PROVIDER_VPC,
        "123456789012",
        &["use1-az1", "use1-az2"],
    )
    .await?;
    // put_service allows every principal.
    pld_tests::objects::put_service(&client, "billing").await?;
    report(
        &client,
        ReportStatusRequest {
            kind: Kind::Service as i32,
            key: "billing".into(),
            status: Some(report_status_request::Status::Service(ServiceStatus {
                state: "available".into(),
                endpoint_service_name: "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
                    .into(),
                az_ids: vec!["use1-az1".into(), "use1-az2".into()],
                ..Default::default()
            })),
        },
    )
    .await?;
    agent(
        &client,
        CONSUMER_VPC,
        "222222222222",
        &["use1-az2", "use1-az4"],
    )
    .await?;
    agent(&client, FAR_VPC, "333333333333", &["use1-az5", "use1-az6"]).await?;

    // Clean: exit 0, and the JSON lists each account's steps.
    let out = run(
        &c,
        &[
            "-o",
            "json",
            "plan",
            "connect",
            "billing",
            "--vpc",
            CONSUMER_VPC,
        ],
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(plan["clean"], true, "{plan}");
    let consumer = plan["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["account_id"] == "222222222222"))
        .ok_or_else(|| anyhow::anyhow!("no consumer account: {plan}"))?;
    assert_eq!(consumer["vpcs"][0]["side"], "consumer");
    assert_eq!(
        consumer["vpcs"][0]["steps"][0]["action"], "CreateVpcEndpoint",
        "{plan}"
    );

    // A VPC whose subnets miss the service's AZs: the table names them, and exit 8.
    let out = run(&c, &["plan", "connect", "billing", "--vpc", FAR_VPC])?;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("az_fit") && shown.contains("use1-az5 (us-east-1a to 333333333333)"),
        "{shown}"
    );
    assert!(shown.contains("the plan has 1 error"), "{shown}");

    // Nothing changed: no binding was made by planning.
    let out = run(&c, &["-o", "json", "bindings", "list"])?;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout)?,
        serde_json::json!([]),
        "{}",
        text(&out)
    );

    // Bad input: an unknown service is 3, a malformed VPC id 6, no VPC a usage error (2).
    let out = run(&c, &["plan", "connect", "nope", "--vpc", CONSUMER_VPC])?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("\"nope\""), "{}", text(&out));
    let out = run(&c, &["plan", "connect", "billing", "--vpc", "vpc-xyz"])?;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("--vpc"), "{}", text(&out));
    let out = run(&c, &["plan", "connect", "billing"])?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Registering: from flags or a file, the provider's steps; a malformed file is invalid (6)
    // and names the file, a missing one a failure to read (1).
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("web.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"web\"\nvpc = \"{PROVIDER_VPC}\"\nports = [443]\nallow = [\"arn:aws:iam::222222222222:root\"]\n\
             load_balancer = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/web/50dc6c495c0c9188\"\n"
        ),
    )?;
    let file = file.display().to_string();
    let out = run(
        &c,
        &["-o", "json", "plan", "services", "register", "-f", &file],
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let steps = &plan["accounts"][0]["vpcs"][0]["steps"];
    assert_eq!(
        steps[0]["action"], "CreateVpcEndpointServiceConfiguration",
        "{plan}"
    );
    assert_eq!(
        steps[1]["action"], "ModifyVpcEndpointServicePermissions",
        "{plan}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"web\"\nports = \"many\"\n")?;
    let out = run(
        &c,
        &[
            "plan",
            "services",
            "register",
            "-f",
            &bad.display().to_string(),
        ],
    )?;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("bad.toml"), "{}", text(&out));
    let missing = dir.path().join("missing.toml").display().to_string();
    let out = run(&c, &["plan", "services", "register", "-f", &missing])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A load balancer of another account: exit 8, saying so.
    let out = run(
        &c,
        &[
            "plan", "services", "register", "web", "--vpc", PROVIDER_VPC, "--port", "443",
            "--load-balancer",
            "arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/net/web/50dc6c495c0c9188",
        ],
    )?;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert!(text(&out).contains("999999999999"), "{}", text(&out));

    // Disconnecting a VPC that is not bound: nothing to do, exit 0, and it says so.
    let out = run(
        &c,
        &["plan", "disconnect", "billing", "--vpc", CONSUMER_VPC],
    )?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("not bound"), "{}", text(&out));
    let out = run(&c, &["plan", "disconnect", "nope", "--vpc", CONSUMER_VPC])?;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    Ok(())
}
