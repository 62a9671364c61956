//! A moto server for tests (feature `test-support`): the AWS API peer of the aws backend's tests
//! and of the `pld agent` process tests, plus the VPCs and load balancers they start from.
//!
//! `start_moto` runs `PLD_MOTO_SERVER` (or `moto_server` on PATH) on a free loopback port and kills
//! it on drop. Without moto it returns `None` after saying so, so `cargo test` passes on a fresh
//! machine; with `PLD_REQUIRE_MOTO=1` (as `.ci/run` sets) a missing moto is an error.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct Moto {
    child: Child,
    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto on a free loopback port, or `None` when moto is not installed.
///
/// # Errors
/// When moto is required but missing, or does not listen within 30 s.
pub fn start_moto() -> anyhow::Result<Option<Moto>> {
    let binary = std::env::var("PLD_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = match Command::new(&binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("PLD_REQUIRE_MOTO").is_ok_and(|v| v == "1") {
                anyhow::bail!("PLD_REQUIRE_MOTO=1 but {binary} cannot start: {e}");
            }
            eprintln!("moto is not installed ({binary}: {e}); the AWS backend test does not run here (.ci/run installs moto)");
            return Ok(None);
        }
    };
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < end, "moto did not listen within 30s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Some(moto))
}

/// SDK settings for moto at `url`, with moto's test credentials.
pub async fn sdk(url: &str) -> aws_config::SdkConfig {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(url)
        .load()
        .await
}

/// A VPC with a subnet in each of two AZs; returns (vpc id, subnet ids).
///
/// # Errors
/// moto's error.
pub async fn vpc(
    ec2: &aws_sdk_ec2::Client,
    cidr: &str,
    subnets: [&str; 2],
) -> anyhow::Result<(String, Vec<String>)> {
    let vpc = ec2.create_vpc().cidr_block(cidr).send().await?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_string();
    let mut ids = Vec::new();
    for (cidr, az) in subnets.iter().zip(["us-east-1a", "us-east-1b"]) {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(*cidr)
            .availability_zone(az)
            .send()
            .await?;
        ids.push(
            s.subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_string(),
        );
    }
    Ok((vpc_id, ids))
}

/// A network load balancer in `subnets`; returns its ARN in the catalog's shape (moto writes
/// `app/` for NLBs; the backend finds them by name and type).
///
/// # Errors
/// moto's error.
pub async fn nlb(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    subnets: Vec<String>,
) -> anyhow::Result<String> {
    use aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum;
    let arn = load_balancer(elb, name, LoadBalancerTypeEnum::Network, subnets).await?;
    Ok(arn.replace(":loadbalancer/app/", ":loadbalancer/net/"))
}

/// A load balancer of `kind` in `subnets`; returns its ARN as moto spells it.
async fn load_balancer(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    kind: aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum,
    subnets: Vec<String>,
) -> anyhow::Result<String> {
    let out = elb
        .create_load_balancer()
        .name(name)
        .r#type(kind)
        .set_subnets(Some(subnets))
        .send()
        .await?;
    Ok(out
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .unwrap_or_default()
        .to_string())
}

/// An internet-facing application load balancer in `subnets` with an HTTP listener on `port`
/// forwarding to an empty `ip` target group: the ALB a team already serves through. Returns
/// its ARN.
///
/// # Errors
/// moto's error.
pub async fn alb(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    vpc_id: &str,
    subnets: Vec<String>,
    port: u16,
) -> anyhow::Result<String> {
    use aws_sdk_elasticloadbalancingv2::types as elb;
    use elb::{ActionTypeEnum, LoadBalancerTypeEnum, ProtocolEnum, TargetTypeEnum};
    let arn = load_balancer(elb, name, LoadBalancerTypeEnum::Application, subnets).await?;
    let group = elb
        .create_target_group()
        .name(format!("{name}-targets"))
        .target_type(TargetTypeEnum::Ip)
        .protocol(ProtocolEnum::Http)
        .port(i32::from(port))
        .vpc_id(vpc_id)
        .send()
        .await?;
    let group_arn = group
        .target_groups()
        .first()
        .and_then(|g| g.target_group_arn())
        .unwrap_or_default()
        .to_string();
    elb.create_listener()
        .load_balancer_arn(&arn)
        .protocol(ProtocolEnum::Http)
        .port(i32::from(port))
        .default_actions(
            elb::Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(group_arn)
                .build(),
        )
        .send()
        .await?;
    Ok(arn)
}

/// A VPC with two subnets and a network load balancer in them, made in moto at `url`; returns
/// (vpc id, load balancer ARN as the catalog takes it).
///
/// # Errors
/// moto's error.
pub async fn vpc_with_nlb(
    url: &str,
    cidr: &str,
    subnets: [&str; 2],
    name: &str,
) -> anyhow::Result<(String, String)> {
    let config = sdk(url).await;
    let (vpc_id, subnet_ids) = vpc(&aws_sdk_ec2::Client::new(&config), cidr, subnets).await?;
    let arn = nlb(
        &aws_sdk_elasticloadbalancingv2::Client::new(&config),
        name,
        subnet_ids,
    )
    .await?;
    Ok((vpc_id, arn))
}
