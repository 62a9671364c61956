//! The regions an endpoint service is offered to (cross-region PrivateLink), as both backends
//! must report them: what was added is offered, what was removed is not. The states differ:
//! AWS (and the sim) list a region added as `Pending` first and a region removed as `Deleting`
//! for a while, and the service's own region too; moto lists each as it was given, `Available`,
//! and no own region. `plan::regions::offered` reads both the same.

use pld_core::plan::regions::offered;

use crate::types::*;
use crate::Cloud;

async fn offered_now(cloud: &dyn Cloud, es: &EndpointService, owned: &Tags) -> Vec<String> {
    let found = cloud
        .describe_endpoint_services(owned)
        .await
        .expect("DescribeVpcEndpointServiceConfigurations");
    let now = found
        .iter()
        .find(|s| s.id == es.id)
        .expect("the service is still listed");
    let mut regions: Vec<String> = offered(now).into_iter().map(str::to_string).collect();
    regions.sort();
    regions
}

/// Adds and removes regions of `es` (a service of `owned`), checking each change is seen.
///
/// # Panics
/// On the first disagreement, naming it.
pub async fn run(cloud: &dyn Cloud, es: &EndpointService, owned: &Tags) {
    let r = |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
    assert!(
        offered_now(cloud, es, owned).await.is_empty(),
        "a service created for no other region is offered in none"
    );
    cloud
        .modify_supported_regions(&es.id, &r(&["us-west-2"]), &[])
        .await
        .expect("ModifyVpcEndpointServiceConfiguration AddSupportedRegions");
    assert_eq!(offered_now(cloud, es, owned).await, r(&["us-west-2"]));
    cloud
        .modify_supported_regions(&es.id, &r(&["eu-west-1"]), &r(&["us-west-2"]))
        .await
        .expect("ModifyVpcEndpointServiceConfiguration Add and RemoveSupportedRegions");
    assert_eq!(offered_now(cloud, es, owned).await, r(&["eu-west-1"]));
    cloud
        .modify_supported_regions(&es.id, &[], &r(&["eu-west-1"]))
        .await
        .expect("ModifyVpcEndpointServiceConfiguration RemoveSupportedRegions");
    assert!(offered_now(cloud, es, owned).await.is_empty());
}
