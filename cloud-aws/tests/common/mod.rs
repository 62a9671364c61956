//! What the moto tests share: agents on the AWS backend pointed at a moto server.

use std::sync::Arc;

use pld_agent::config::ProvidedService;
use pld_agent::Agent;
use pld_cloud::Cloud;
use pld_cloud_aws::testing::{ACCOUNT, REGION};

/// Starts an agent with `cloud` on free loopback ports.
pub async fn start_agent(
    cfg: pld_agent::AgentConfig,
    cloud: Arc<dyn Cloud>,
) -> anyhow::Result<Agent> {
    Ok(Agent::start(cfg, cloud, pld_tests::region::agent_listeners().await?).await?)
}

/// An agent config for `vpc_id` on the AWS backend at `url`, zone `pld.moto`.
pub fn agent_config(
    controller: &str,
    vpc_id: &str,
    services: Vec<ProvidedService>,
    url: &str,
) -> pld_agent::AgentConfig {
    let mut cfg = pld_agent::AgentConfig::from_toml(&format!(
        r#"
account_id = "{ACCOUNT}"
region = "{REGION}"
vpc_id = "{vpc_id}"
controllers = ["{controller}"]
cloud = "aws"
listen = "127.0.0.1:0"
dns_listen = "127.0.0.1:0"
resync_seconds = 2
insecure = true
[aws]
endpoint_url = "{url}"
[dns]
zone = "pld.moto"
"#
    ))
    .expect("literal config parses");
    cfg.services = services;
    cfg
}

/// A one-node controller cluster, leader elected, and its address.
pub async fn one_controller() -> anyhow::Result<(pld_tests::cluster::TestCluster, String)> {
    use pld_tests::cluster::{fast_tuning, TestCluster};
    let cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let controller = cluster
        .controller(1)
        .map(|c| c.local_addr().to_string())
        .unwrap_or_default();
    Ok((cluster, controller))
}

/// The AWS backend on the moto server at `url`, as [`ACCOUNT`].
pub async fn aws(url: &str) -> anyhow::Result<pld_cloud_aws::AwsCloud> {
    let settings = pld_cloud_aws::AwsSettings {
        region: REGION.into(),
        endpoint_url: Some(url.to_string()),
        assume_role_arn: None,
    };
    Ok(pld_cloud_aws::AwsCloud::connect(ACCOUNT, &settings).await?)
}

/// The AWS backend on moto as an agent gets it: behind the limiter, at AWS's rates × 10.
pub async fn agent_cloud(url: &str) -> anyhow::Result<Arc<dyn Cloud>> {
    use pld_cloud::limiter::{Limited, Limiter};
    Ok(Arc::new(Limited::new(
        aws(url).await?,
        Limiter::new(Some(10.0)),
    )))
}
