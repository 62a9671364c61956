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
