//! Two simulated regions of one world: an interface endpoint in us-west-2 connected to an
//! endpoint service in us-east-1 (cross-region PrivateLink), found and created with
//! ServiceRegion (InvalidServiceName without it), accepted by the provider in its own region,
//! carrying bytes over the loopback data path, and keeping the service from being deleted.

use std::time::Duration;

use pld_cloud::sim::{echo_server, NewLoadBalancer, SimConfig, SimWorld, AZ_IDS};
use pld_cloud::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVIDER: &str = "111111111111";
const CONSUMER: &str = "222222222222";

fn config(region: &str) -> SimConfig {
    SimConfig {
        loopback_data_plane: true,
        ..SimConfig::instant(region)
    }
}

#[tokio::test]
async fn an_endpoint_in_one_region_reaches_a_service_in_another() {
    let world = SimWorld::new();
    let east = world.region(config("us-east-1"));
    let west = world.region(config("us-west-2"));
    let provider_vpc = east.add_vpc(PROVIDER, "10.0.0.0/16");
    let consumer_vpc = west.add_vpc(CONSUMER, "10.9.0.0/16");
    let echo = echo_server().await.unwrap();
    let nlb = east.add_load_balancer(NewLoadBalancer {
        account: PROVIDER,
        vpc_id: &provider_vpc.id,
        kind: LoadBalancerKind::Network,
        name: "demo",
        az_ids: &AZ_IDS,
        ports: &[7007],
        targets: &[echo],
    });
    let provider = east.client(PROVIDER);
    let consumer = west.client(CONSUMER);
    let es = provider
        .create_endpoint_service(&CreateEndpointService {
            load_balancer_arn: nlb.arn.clone(),
            acceptance_required: true,
            supported_regions: vec!["us-west-2".into()],
            private_dns_name: None,
            client_token: "es".into(),
            tags: Tags::new(),
        })
        .await
        .unwrap();
    provider
        .modify_allowed_principals(&es.id, &[format!("arn:aws:iam::{CONSUMER}:root")], &[])
        .await
        .unwrap();

    // Described from us-west-2: offered in that region's AZs.
    let detail = consumer.describe_service(&es.name).await.unwrap();
    assert!(
        detail.az_ids.iter().all(|a| a.starts_with("usw2-")),
        "{detail:?}"
    );
    let subnets = consumer.describe_subnets(&consumer_vpc.id).await.unwrap();
    let create = |service_region: Option<&str>| CreateEndpoint {
        kind: EndpointKind::Interface,
        vpc_id: consumer_vpc.id.clone(),
        service_name: es.name.clone(),
        service_region: service_region.map(str::to_string),
        subnet_ids: subnets.iter().take(2).map(|s| s.id.clone()).collect(),
        security_group_ids: Vec::new(),
        route_table_ids: Vec::new(),
        client_token: format!("ep-{service_region:?}"),
        tags: Tags::new(),
    };
    let without = consumer.create_endpoint(&create(None)).await;
    assert!(
        matches!(&without, Err(CloudError::InvalidParameter(m)) if m.contains("InvalidServiceName")),
        "{without:?}"
    );
    let ep = consumer
        .create_endpoint(&create(Some("us-east-1")))
        .await
        .unwrap();
    assert!(state_is(&ep.state, "pendingAcceptance"), "{ep:?}");

    // The provider sees and accepts it in its own region.
    let connections = provider.describe_connections(Some(&es.id)).await.unwrap();
    assert_eq!(
        connections
            .iter()
            .map(|c| c.endpoint_id.as_str())
            .collect::<Vec<_>>(),
        [ep.id.as_str()]
    );
    provider
        .accept_connections(&es.id, std::slice::from_ref(&ep.id))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let available = loop {
        let eps = consumer
            .describe_endpoints(&consumer_vpc.id, &Tags::new())
            .await
            .unwrap();
        if let Some(e) = eps.into_iter().find(|e| state_is(&e.state, "available")) {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "not available");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    // Bytes across regions.
    let addr: std::net::Ipv4Addr = available.addresses[0].parse().unwrap();
    let mut conn = tokio::net::TcpStream::connect((addr, 7007)).await.unwrap();
    conn.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(2), conn.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");

    // A service a remote endpoint connects to is not deleted.
    let busy = provider.delete_endpoint_service(&es.id).await;
    assert!(
        matches!(busy, Err(CloudError::DependencyViolation(_))),
        "{busy:?}"
    );
    consumer.delete_endpoint(&ep.id).await.unwrap();
    provider.delete_endpoint_service(&es.id).await.unwrap();
}
