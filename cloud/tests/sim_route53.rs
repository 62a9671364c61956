//! Route 53 rules the simulated region models and moto does not (AWS-NOTES.md): caller
//! references are spent for good, and no two private zones of one name share a VPC.

use pld_cloud::sim::{SimConfig, SimRegion};
use pld_cloud::{Cloud, CloudError, Tags};

const ACCOUNT: &str = "123456789012";

#[tokio::test]
async fn a_caller_reference_is_refused_again_even_after_its_zone_is_deleted() {
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let cloud = region.client(ACCOUNT);
    let zone = cloud
        .create_hosted_zone("a.internal", &vpc.id, "ref-1", "")
        .await
        .expect("create");
    // A retry with the same reference is refused, and the refusal names no zone id to use.
    let again = cloud
        .create_hosted_zone("a.internal", &vpc.id, "ref-1", "")
        .await;
    match again {
        Err(CloudError::CallerReferenceUsed(message)) => {
            assert!(message.contains("HostedZoneAlreadyExists"), "{message}");
            assert!(!message.contains(&zone.id), "{message}");
        }
        other => panic!("expected HostedZoneAlreadyExists, got {other:?}"),
    }
    cloud.delete_hosted_zone(&zone.id).await.expect("delete");
    let after_delete = cloud
        .create_hosted_zone("a.internal", &vpc.id, "ref-1", "")
        .await;
    assert!(
        matches!(after_delete, Err(CloudError::CallerReferenceUsed(_))),
        "{after_delete:?}"
    );
    cloud
        .create_hosted_zone("a.internal", &vpc.id, "ref-2", "")
        .await
        .expect("a new reference creates");
}

#[tokio::test]
async fn two_private_zones_of_one_name_never_share_a_vpc() {
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let one = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let two = region.add_vpc(ACCOUNT, "10.1.0.0/16");
    let cloud = region.client(ACCOUNT);
    let first = cloud
        .create_hosted_zone("b.internal", &one.id, "b-1", "")
        .await
        .expect("create");
    let clash = cloud
        .create_hosted_zone("b.internal", &one.id, "b-2", "")
        .await;
    assert!(
        matches!(&clash, Err(CloudError::ConflictingDomain(m)) if m.contains(&first.id)),
        "{clash:?}"
    );
    // Same name in another VPC is allowed, and cannot then join the first VPC.
    let second = cloud
        .create_hosted_zone("b.internal", &two.id, "b-3", "")
        .await
        .expect("same name, other VPC");
    let join = cloud.associate_vpc(&second.id, &one.id).await;
    assert!(
        matches!(join, Err(CloudError::ConflictingDomain(_))),
        "{join:?}"
    );
    let named = cloud.hosted_zones_named("b.internal.").await.expect("list");
    assert_eq!(named.len(), 2);
}

#[tokio::test]
async fn zone_tags_follow_route_53s_limits() {
    let region = SimRegion::new(SimConfig::instant("us-east-1"));
    let vpc = region.add_vpc(ACCOUNT, "10.0.0.0/16");
    let cloud = region.client(ACCOUNT);
    let zone = cloud
        .create_hosted_zone("c.internal", &vpc.id, "c-1", "")
        .await
        .expect("create");
    let eleven: Tags = (0..11)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let refused = cloud.tag_hosted_zone(&zone.id, &eleven).await;
    assert!(
        matches!(refused, Err(CloudError::InvalidParameter(_))),
        "{refused:?}"
    );
    let missing = cloud.hosted_zone_tags("Z0000NOSUCHZONE").await;
    assert!(missing.is_err_and(|e| e.is_not_found()));
    // Another account sees neither the zone's tags nor the zone by name.
    let other = region.client("210987654321");
    assert!(other.hosted_zone_tags(&zone.id).await.is_err());
    assert!(other
        .hosted_zones_named("c.internal")
        .await
        .expect("list")
        .is_empty());
}
