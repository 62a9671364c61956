//! The regions an endpoint service is offered to (cross-region PrivateLink): kept equal to the
//! service's `regions` through ModifyVpcEndpointServiceConfiguration's AddSupportedRegions and
//! RemoveSupportedRegions, its own region left alone (AWS always offers a service where it is).

use crate::aws::types::{state_is, EndpointService, SupportedRegion};
use crate::aws::Call;

use super::{Planned, Reason};

/// States in which a region no longer counts as offered: being removed, removed, or closed by
/// AWS (EC2 API reference, SupportedRegionDetail).
const LEAVING: [&str; 3] = ["Deleting", "Deleted", "Closed"];

fn leaving(r: &SupportedRegion) -> bool {
    LEAVING.iter().any(|s| state_is(&r.state, s))
}

/// The other regions `es` is offered to, as far as they count.
pub fn offered(es: &EndpointService) -> Vec<&str> {
    es.supported_regions
        .iter()
        .filter(|r| r.region != es.region() && !leaving(r))
        .map(|r| r.region.as_str())
        .collect()
}

/// The change that makes the other regions `es` is offered to those of `wanted`, or `None`
/// when they are already.
pub fn plan_regions(es: &EndpointService, wanted: &[String]) -> Option<Planned> {
    let home = es.region();
    let now = offered(es);
    let add: Vec<String> = wanted
        .iter()
        .filter(|r| r.as_str() != home && !now.contains(&r.as_str()))
        .cloned()
        .collect();
    let remove: Vec<String> = now
        .iter()
        .filter(|r| !wanted.iter().any(|w| w == *r))
        .map(|r| r.to_string())
        .collect();
    if add.is_empty() && remove.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !add.is_empty() {
        what.push(format!("the service is offered to {} too", add.join(", ")));
    }
    if !remove.is_empty() {
        what.push(format!("no longer to {}", remove.join(", ")));
    }
    Some(Planned {
        call: Call::ModifySupportedRegions {
            service_id: es.id.clone(),
            add,
            remove,
        },
        reason: Reason::Drift(what.join("; ")),
    })
}

/// Each other region of `es` as a status reports it: those the service lists (a region not
/// offered yet is `Pending`, as AWS reports one just added), then those it is leaving.
pub fn region_states(es: &EndpointService, wanted: &[String]) -> Vec<SupportedRegion> {
    let home = es.region();
    let mut states: Vec<SupportedRegion> = wanted
        .iter()
        .filter(|r| r.as_str() != home)
        .map(|r| {
            let state = es
                .supported_regions
                .iter()
                .find(|s| &s.region == r && !leaving(s))
                .map_or("Pending", |s| s.state.as_str());
            SupportedRegion {
                region: r.clone(),
                state: state.to_string(),
            }
        })
        .collect();
    states.extend(
        es.supported_regions
            .iter()
            .filter(|s| s.region != home && !wanted.contains(&s.region))
            .filter(|s| !state_is(&s.state, "Deleted"))
            .cloned(),
    );
    states
}

/// Whether a region of `es` is on its way in or out: worth looking at again soon.
pub fn settling(es: &EndpointService) -> bool {
    es.supported_regions
        .iter()
        .any(|r| state_is(&r.state, "Pending") || state_is(&r.state, "Deleting"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::types::Tags;

    fn es(regions: &[(&str, &str)]) -> EndpointService {
        EndpointService {
            id: "vpce-svc-1".into(),
            name: "com.amazonaws.vpce.us-east-1.vpce-svc-1".into(),
            state: "Available".into(),
            acceptance_required: true,
            load_balancer_arns: Vec::new(),
            az_ids: Vec::new(),
            supported_regions: regions
                .iter()
                .map(|(region, state)| SupportedRegion {
                    region: region.to_string(),
                    state: state.to_string(),
                })
                .collect(),
            tags: Tags::new(),
        }
    }

    fn wanted(regions: &[&str]) -> Vec<String> {
        regions.iter().map(|r| r.to_string()).collect()
    }

    fn change(p: Option<Planned>) -> Option<(Vec<String>, Vec<String>)> {
        p.map(|p| match p.call {
            Call::ModifySupportedRegions { add, remove, .. } => (add, remove),
            other => panic!("not a region change: {other:?}"),
        })
    }

    #[test]
    fn regions_are_added_and_removed_and_the_home_region_left_alone() {
        let home = ("us-east-1", "Available");
        let s = es(&[home]);
        assert_eq!(
            change(plan_regions(&s, &wanted(&["us-west-2"]))),
            Some((wanted(&["us-west-2"]), vec![]))
        );
        assert_eq!(change(plan_regions(&s, &[])), None);
        let s = es(&[home, ("us-west-2", "Available"), ("eu-west-1", "Pending")]);
        assert_eq!(
            change(plan_regions(&s, &wanted(&["us-west-2", "eu-west-1"]))),
            None
        );
        assert_eq!(
            change(plan_regions(&s, &wanted(&["eu-west-1"]))),
            Some((vec![], wanted(&["us-west-2"])))
        );
        // Listed again while it is being removed: added again.
        let s = es(&[home, ("us-west-2", "Deleting")]);
        assert_eq!(
            change(plan_regions(&s, &wanted(&["us-west-2"]))),
            Some((wanted(&["us-west-2"]), vec![]))
        );
        assert!(settling(&s));
    }

    #[test]
    fn the_status_shows_each_listed_region_then_those_being_left() {
        let s = es(&[
            ("us-east-1", "Available"),
            ("us-west-2", "Available"),
            ("eu-west-1", "Deleting"),
        ]);
        let states = region_states(&s, &wanted(&["us-west-2", "ap-south-1"]));
        let pairs: Vec<(&str, &str)> = states
            .iter()
            .map(|r| (r.region.as_str(), r.state.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("us-west-2", "Available"),
                ("ap-south-1", "Pending"),
                ("eu-west-1", "Deleting")
            ]
        );
    }
}
