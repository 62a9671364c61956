//! The agent config: parsing, validation and what a reload may change.

use super::*;

#[test]
fn the_shipped_example_config_loads_and_validates() {
    let cfg = AgentConfig::from_toml(include_str!("../../../deploy/agent.toml")).expect("parses");
    cfg.validate().expect("valid");
    assert_eq!(cfg.services.len(), 2);
    assert_eq!(cfg.service_spec(&cfg.services[0]).regions, ["us-west-2"]);
    let on_alb = cfg.service_spec(&cfg.services[1]);
    let check = on_alb.health_check.expect("the ALB example's health check");
    assert_eq!(
        (check.protocol, check.path.as_str(), check.matcher.as_str()),
        (
            pld_proto::v1::HealthCheckProtocol::Https as i32,
            "/healthz",
            "200-299"
        )
    );
    assert_eq!(cfg.zone_fqdn(), "pld.internal.");
    assert_eq!(cfg.dns.ttl_seconds, 30);
}

#[test]
fn a_host_api_other_hosts_reach_needs_a_list_of_their_networks() {
    let example = include_str!("../../../deploy/agent.toml");
    let wide = example.replace("listen = \"127.0.0.1:7500\"", "listen = \"0.0.0.0:7500\"");
    let cfg = AgentConfig::from_toml(&wide).expect("parses");
    assert_eq!(cfg.host_api.allowed_networks.len(), 2);
    cfg.validate()
        .expect("a VPC-wide listener with its networks");
    let open = wide.replace("allowed_networks = [\"10.0.0.0/16\", \"127.0.0.1/32\"]", "");
    let err = AgentConfig::from_toml(&open)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "host_api.allowed_networks");
    assert!(err.reason.contains("0.0.0.0:7500"), "{err}");
    // On loopback the list may be left out.
    let local = example.replace("allowed_networks = [\"10.0.0.0/16\", \"127.0.0.1/32\"]", "");
    AgentConfig::from_toml(&local)
        .expect("parses")
        .validate()
        .expect("loopback");
    let bad_cidr = example.replace("10.0.0.0/16", "10.0.0.0/33");
    let err = AgentConfig::from_toml(&bad_cidr).unwrap_err();
    assert!(err.to_string().contains("allowed_networks"), "{err}");
    let bad_name = example.replace("[\"billing\", \"s3\"]", "[\"billing\", \"Not A Name\"]");
    let err = AgentConfig::from_toml(&bad_name)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "host_api.on_demand_services[1]");
}

#[test]
fn a_bad_field_is_named() {
    let text =
        include_str!("../../../deploy/agent.toml").replace("vpc-0a1b2c3d4e5f60718", "vpc-nope");
    let err = AgentConfig::from_toml(&text)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "vpc_id");
    let text = include_str!("../../../deploy/agent.toml").replace("ports = [443]", "ports = [0]");
    let err = AgentConfig::from_toml(&text)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "services[0].ports");
    let text = include_str!("../../../deploy/agent.toml")
        .replace("regions = [\"us-west-2\"]", "regions = [\"cn-north-1\"]");
    let err = AgentConfig::from_toml(&text)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "services[0].regions");
    assert!(err.reason.contains("partition aws-cn"), "{err}");
    for bad in ["0", "86401"] {
        let text = include_str!("../../../deploy/agent.toml").replace(
            "pass_deadline_seconds = 600",
            &format!("pass_deadline_seconds = {bad}"),
        );
        let err = AgentConfig::from_toml(&text)
            .expect("parses")
            .validate()
            .unwrap_err();
        assert_eq!(err.key, "pass_deadline_seconds", "{bad}");
        let text = include_str!("../../../deploy/agent.toml")
            .replace("ttl_seconds = 30", &format!("ttl_seconds = {bad}"));
        let err = AgentConfig::from_toml(&text)
            .expect("parses")
            .validate()
            .unwrap_err();
        assert_eq!(err.key, "dns.ttl_seconds", "{bad}");
    }
    let text = include_str!("../../../deploy/agent.toml").replace("\"200-299\"", "\"200-600\"");
    let err = AgentConfig::from_toml(&text)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "services[1].health_check.matcher");
    let text = include_str!("../../../deploy/agent.toml")
        .replace("protocol = \"HTTPS\"", "protocol = \"TCP\"");
    assert!(
        AgentConfig::from_toml(&text).is_err(),
        "TCP is no health check protocol"
    );
    for bad in ["0", "2592001"] {
        let text = include_str!("../../../deploy/agent.toml").replace(
            "drain_grace_seconds = 86400",
            &format!("drain_grace_seconds = {bad}"),
        );
        let err = AgentConfig::from_toml(&text)
            .expect("parses")
            .validate()
            .unwrap_err();
        assert_eq!(err.key, "drain_grace_seconds", "{bad}");
    }
}
