//! Agent configuration (`pld agent --config agent.toml`).
//!
//! ```toml
//! account_id = "111111111111"
//! region = "us-east-1"
//! vpc_id = "vpc-0a1b2c3d"
//! controllers = ["10.0.1.10:7400", "10.0.2.10:7400"]
//! cloud = "aws"
//!
//! [dns]
//! zone = "pld.internal"
//!
//! [[services]]
//! name = "billing"
//! load_balancer_arn = "arn:aws:elasticloadbalancing:...:loadbalancer/net/billing/..."
//! ports = [443]
//! acceptance = "auto"
//! principals = ["arn:aws:iam::210987654321:root"]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Default host query API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7500";
/// Default DNS responder address.
pub const DEFAULT_DNS_LISTEN: &str = "127.0.0.1:8600";

/// Which cloud the agent talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudKind {
    /// Real AWS (or an AWS API endpoint such as moto).
    Aws,
    /// The simulated region (inside `pld dev` and tests).
    Sim,
}

/// How to reach AWS when `cloud = "aws"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Send every call here instead of AWS's public endpoints (moto, VPC-endpoint-only hosts).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Assume this role for every call (cross-account setups).
    #[serde(default)]
    pub assume_role_arn: Option<String>,
}

/// The private DNS zone the agent publishes bindings in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Zone name, e.g. `pld.internal`; services appear as `NAME.pld.internal`.
    pub zone: String,
    /// Pin the Route 53 hosted zone id instead of finding or creating one by name.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// TTL of the records the agent publishes (1-3600): how long resolvers may keep an
    /// answer, and so how long an old endpoint keeps serving after its name moved on.
    #[serde(default = "default_record_ttl")]
    pub ttl_seconds: u32,
}

fn default_record_ttl() -> u32 {
    pld_core::plan::records::RECORD_TTL
}

/// How a provided service accepts connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AcceptanceConfig {
    /// Accept connections from allowed principals, reject the rest.
    #[default]
    Auto,
    /// Leave connections pending for `pld bindings accept|reject`.
    Manual,
}

/// A service this VPC provides.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidedService {
    pub name: String,
    pub load_balancer_arn: String,
    pub ports: Vec<u32>,
    #[serde(default)]
    pub acceptance: AcceptanceConfig,
    /// IAM principals allowed to connect, or `*`.
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// For a service on an application load balancer: how the network load balancer pld
    /// builds in front of it checks the ALB.
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    /// Other regions of the load balancer's partition whose consumers may connect too
    /// (cross-region PrivateLink).
    #[serde(default)]
    pub regions: Vec<String>,
}

/// `[services.health_check]`: each left out is the default (the ALB listener's protocol, `/`,
/// `200-399`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    #[serde(default)]
    pub protocol: Option<HealthCheckProtocolConfig>,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub matcher: String,
}

/// The protocol of the health checks of an ALB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HealthCheckProtocolConfig {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl HealthCheckConfig {
    /// As the catalog holds it.
    pub fn to_proto(&self) -> pld_proto::v1::HealthCheck {
        use pld_proto::v1::HealthCheckProtocol as P;
        pld_proto::v1::HealthCheck {
            protocol: match self.protocol {
                None => P::Unspecified,
                Some(HealthCheckProtocolConfig::Http) => P::Http,
                Some(HealthCheckProtocolConfig::Https) => P::Https,
            } as i32,
            path: self.path.clone(),
            matcher: self.matcher.clone(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7500))
}

fn default_dns_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8600))
}

fn default_lease() -> u32 {
    15
}

fn default_resync() -> u64 {
    30
}

fn default_pass_deadline() -> u64 {
    600
}

/// A day: consumers whose agents are down that long have bigger trouble than a cut.
fn default_drain_grace() -> u64 {
    86_400
}

/// The longest `drain_grace_seconds` (30 days).
const MAX_DRAIN_GRACE: u64 = 30 * 86_400;

/// An agent's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub account_id: String,
    pub region: String,
    pub vpc_id: String,
    /// Controller addresses; any member will do.
    pub controllers: Vec<String>,
    pub cloud: CloudKind,
    /// AWS connection settings (credentials come from the default chain).
    #[serde(default)]
    pub aws: AwsConfig,
    /// Names this pld installation in ownership tags, so two installations never touch each
    /// other's resources. The catalog holds it (made when the cluster was bootstrapped) and
    /// the agent reads it from there; set here, it pins it: an agent whose pin differs from the
    /// catalog's refuses to start.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Subnets for interface endpoints; empty means every subnet of the VPC.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub dns: DnsConfig,
    #[serde(default)]
    pub services: Vec<ProvidedService>,
    /// Host query gRPC API. Loopback by default: the API creates bindings, which cost money,
    /// so a listener other hosts reach needs `host_api.allowed_networks`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Who may use the host API.
    #[serde(default)]
    pub host_api: HostApiConfig,
    /// DNS responder (UDP and TCP).
    #[serde(default = "default_dns_listen")]
    pub dns_listen: SocketAddr,
    #[serde(default = "default_lease")]
    pub lease_ttl_seconds: u32,
    /// Full reconcile interval even without catalog changes.
    #[serde(default = "default_resync")]
    pub resync_seconds: u64,
    /// A reconcile pass running longer than this is stuck (a hung call, a lock): liveness
    /// (`/healthz`) fails naming the pass, and the systemd watchdog is no longer fed, so
    /// systemd restarts the agent.
    #[serde(default = "default_pass_deadline")]
    pub pass_deadline_seconds: u64,
    /// How long an endpoint service a provided service moved off waits for its consumers to
    /// move (make-before-break) before the rest are cut and it is deleted: a consumer whose
    /// agent is down does not hold the old load balancer forever. Counted from when this agent
    /// first saw it retiring (a restart starts it again).
    #[serde(default = "default_drain_grace")]
    pub drain_grace_seconds: u64,
    /// Log filter, as `PLD_LOG` takes it (`info`, `pld_agent=debug,info`). `PLD_LOG` wins at
    /// start; on SIGHUP this key is applied.
    #[serde(default)]
    pub log: Option<String>,
    /// Mutual TLS to the controllers: PEM files `ca`, `cert`, `key` (a certificate the
    /// controllers' CA signed).
    #[serde(default)]
    pub tls: Option<pld_client::tls::TlsFiles>,
    /// Talk to the controllers without TLS (they must be insecure too). Required to start
    /// without a `[tls]` table, so that plaintext is a choice someone wrote down; the agent then
    /// says so at every start and in `pld_insecure`.
    #[serde(default)]
    pub insecure: bool,
}

/// Why an agent without `[tls]` does not start.
const NO_TLS: &str = "missing: an agent talks to the controllers over mutual TLS, a [tls] table \
     with ca, cert and key (deploy/INSTALL.md#tls). To talk plaintext to insecure controllers, \
     set insecure = true";

/// `[host_api]`: who may use the host query API on `listen`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostApiConfig {
    /// Client networks (CIDRs) whose hosts may connect; connections from elsewhere are closed
    /// at once. Required when `listen` is not a loopback address (list the VPC's CIDR, and
    /// 127.0.0.1/32 if local processes use it too); empty on loopback means any local process.
    #[serde(default)]
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// The services hosts may bind to on demand (their first Resolve). Left out, any service in
    /// the catalog; bindings made by operators (`pld connect`) answer either way.
    #[serde(default)]
    pub on_demand_services: Option<Vec<String>>,
    /// Serve the host API over mutual TLS: PEM files `ca` (that signed the hosts'
    /// certificates), `cert` and `key` (the agent's, naming the address hosts dial).
    #[serde(default)]
    pub tls: Option<pld_client::tls::TlsFiles>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid agent config: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn err(key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

impl AgentConfig {
    /// The config of an agent on the simulated region (`pld dev`, tests), with the same defaults
    /// a config file gets for every key it leaves out.
    pub fn simulated(
        account_id: &str,
        region: &str,
        vpc_id: &str,
        controllers: Vec<String>,
        zone: &str,
    ) -> Self {
        AgentConfig {
            account_id: account_id.into(),
            region: region.into(),
            vpc_id: vpc_id.into(),
            controllers,
            cloud: CloudKind::Sim,
            aws: AwsConfig::default(),
            cluster_id: None,
            subnet_ids: Vec::new(),
            security_group_ids: Vec::new(),
            dns: DnsConfig {
                zone: zone.into(),
                hosted_zone_id: None,
                ttl_seconds: default_record_ttl(),
            },
            services: Vec::new(),
            listen: default_listen(),
            host_api: HostApiConfig::default(),
            dns_listen: default_dns_listen(),
            lease_ttl_seconds: default_lease(),
            resync_seconds: default_resync(),
            pass_deadline_seconds: default_pass_deadline(),
            drain_grace_seconds: default_drain_grace(),
            log: None,
            tls: None,
            // The simulated region lives in one process on loopback (`pld dev`, tests).
            insecure: true,
        }
    }

    /// Keys that differ between `self` and `new` and only take effect on a restart (everything
    /// but `services` and `log`, which a SIGHUP applies).
    pub fn restart_needed(&self, new: &AgentConfig) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |key, same: bool| {
            if !same {
                keys.push(key);
            }
        };
        check("account_id", self.account_id == new.account_id);
        check("region", self.region == new.region);
        check("vpc_id", self.vpc_id == new.vpc_id);
        check("controllers", self.controllers == new.controllers);
        check("tls", self.tls == new.tls);
        check("insecure", self.insecure == new.insecure);
        check("cloud", self.cloud == new.cloud);
        check("aws", self.aws == new.aws);
        check("cluster_id", self.cluster_id == new.cluster_id);
        check("subnet_ids", self.subnet_ids == new.subnet_ids);
        check(
            "security_group_ids",
            self.security_group_ids == new.security_group_ids,
        );
        check("dns", self.dns == new.dns);
        check("listen", self.listen == new.listen);
        check("host_api", self.host_api == new.host_api);
        check("dns_listen", self.dns_listen == new.dns_listen);
        check(
            "lease_ttl_seconds",
            self.lease_ttl_seconds == new.lease_ttl_seconds,
        );
        check("resync_seconds", self.resync_seconds == new.resync_seconds);
        check(
            "pass_deadline_seconds",
            self.pass_deadline_seconds == new.pass_deadline_seconds,
        );
        check(
            "drain_grace_seconds",
            self.drain_grace_seconds == new.drain_grace_seconds,
        );
        keys
    }

    /// Parses TOML.
    ///
    /// # Errors
    /// The TOML error, naming line and key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| err("config file", e))
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use pld_core::validate;
        validate::account_id("account_id", &self.account_id)
            .map_err(|e| err("account_id", e.reason))?;
        validate::region("region", &self.region).map_err(|e| err("region", e.reason))?;
        validate::vpc_id("vpc_id", &self.vpc_id).map_err(|e| err("vpc_id", e.reason))?;
        match (&self.tls, self.insecure) {
            (None, false) => return Err(err("tls", NO_TLS)),
            (Some(_), true) => {
                return Err(err(
                    "insecure",
                    "set together with [tls]; keep [tls] and drop insecure",
                ))
            }
            _ => {}
        }
        if self.controllers.is_empty() {
            return Err(err(
                "controllers",
                "at least one controller address is required",
            ));
        }
        if let Some(id) = &self.cluster_id {
            validate::dns_label("cluster_id", id).map_err(|e| err("cluster_id", e.reason))?;
        }
        let zone = self.dns.zone.trim_end_matches('.');
        if zone.is_empty()
            || zone
                .split('.')
                .any(|l| validate::dns_label("dns.zone", l).is_err())
        {
            return Err(err(
                "dns.zone",
                format!(
                    "{:?} is not a DNS name of a-z, 0-9 and '-' labels",
                    self.dns.zone
                ),
            ));
        }
        if !self.listen.ip().is_loopback() && self.host_api.allowed_networks.is_empty() {
            return Err(err(
                "host_api.allowed_networks",
                format!(
                    "listen = \"{}\" is not a loopback address, and the host API creates \
                     bindings (which cost money): list the client networks that may use it \
                     (the VPC's CIDR), or listen on 127.0.0.1",
                    self.listen
                ),
            ));
        }
        for (i, name) in self
            .host_api
            .on_demand_services
            .iter()
            .flatten()
            .enumerate()
        {
            validate::dns_label("service", name)
                .map_err(|e| err(&format!("host_api.on_demand_services[{i}]"), e.reason))?;
        }
        if !(1..=3600).contains(&self.lease_ttl_seconds) {
            return Err(err("lease_ttl_seconds", "must be 1-3600"));
        }
        if !(1..=3600).contains(&self.dns.ttl_seconds) {
            return Err(err("dns.ttl_seconds", "must be 1-3600"));
        }
        if self.resync_seconds == 0 {
            return Err(err("resync_seconds", "must be at least 1"));
        }
        if !(1..=86_400).contains(&self.pass_deadline_seconds) {
            return Err(err("pass_deadline_seconds", "must be 1-86400"));
        }
        if !(1..=MAX_DRAIN_GRACE).contains(&self.drain_grace_seconds) {
            return Err(err(
                "drain_grace_seconds",
                format!("must be 1-{MAX_DRAIN_GRACE} (30 days)"),
            ));
        }
        if let Some(log) = &self.log {
            pld_telemetry::logging::check("log", log).map_err(|e| err("log", e))?;
        }
        for (i, s) in self.services.iter().enumerate() {
            let svc = self.service_spec(s);
            validate::service(&svc).map_err(|e| {
                err(
                    &format!("services[{i}].{}", e.field.trim_start_matches("service.")),
                    e.reason,
                )
            })?;
        }
        Ok(())
    }

    /// The catalog spec of a provided service.
    pub fn service_spec(&self, s: &ProvidedService) -> pld_proto::v1::Service {
        pld_proto::v1::Service {
            name: s.name.clone(),
            vpc_id: self.vpc_id.clone(),
            load_balancer_arn: s.load_balancer_arn.clone(),
            ports: s.ports.clone(),
            acceptance: match s.acceptance {
                AcceptanceConfig::Auto => pld_proto::v1::Acceptance::Auto,
                AcceptanceConfig::Manual => pld_proto::v1::Acceptance::Manual,
            } as i32,
            allowed_principals: s.principals.clone(),
            description: s.description.clone(),
            health_check: s.health_check.as_ref().map(|h| Box::new(h.to_proto())),
            regions: s.regions.clone(),
            ..Default::default()
        }
    }

    /// The zone name with a trailing dot.
    pub fn zone_fqdn(&self) -> String {
        pld_cloud::fqdn(&self.dns.zone.to_ascii_lowercase())
    }

    /// The resync interval.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds)
    }

    /// How long one reconcile pass may run before the agent counts as stuck.
    pub fn pass_deadline(&self) -> Duration {
        Duration::from_secs(self.pass_deadline_seconds)
    }

    /// How long an endpoint service a service moved off waits for its consumers.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_secs(self.drain_grace_seconds)
    }
}

#[cfg(test)]
mod tests;
