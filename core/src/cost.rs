//! `pld cost`: what the catalog's PrivateLink costs an hour and a month, per binding, service,
//! VPC and account, and what the same traffic would cost over a NAT gateway, VPC peering or a
//! transit gateway. Pure: the catalog's objects (with the facts agents report), the prices
//! ([`prices`]) and the traffic estimate in; figures out.
//!
//! Where an endpoint goes is decided as its agent decides it: one AZ per AZ the service offers
//! among the VPC's subnets ([`choose_subnets`] on the reported facts), so the AZ-hours counted
//! are the ones AWS bills.

pub mod prices;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pld_proto::v1::{Agent, Binding, Service};

use crate::aws::types::EndpointKind;
use crate::network::{self, BindingPaths};
use crate::plan::endpoint::Target;
use crate::plan::placement::{choose_subnets, Placement};
use crate::plan::preview::seen;
use crate::plan::{builtin, target};
pub use prices::{CostFile, Item, Price, Prices, Traffic, HOURS_PER_MONTH};

/// A cost: what runs by the hour, and what the month's data adds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub fixed_per_hour: f64,
    pub data_per_month: f64,
}

impl Cost {
    /// The cost of an hour, the month's data spread over its hours.
    pub fn per_hour(&self) -> f64 {
        self.fixed_per_hour + self.data_per_month / HOURS_PER_MONTH
    }

    /// The cost of a month.
    pub fn per_month(&self) -> f64 {
        self.fixed_per_hour * HOURS_PER_MONTH + self.data_per_month
    }

    fn add(&mut self, other: Cost) {
        self.fixed_per_hour += other.fixed_per_hour;
        self.data_per_month += other.data_per_month;
    }
}

/// A cost, or why it could not be worked out (a price missing, facts not reported) or why
/// the way it prices cannot carry the traffic at all.
pub type Priced = Result<Cost, String>;

/// One binding: its endpoint, and the other ways the same traffic could go.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingCost {
    pub service: String,
    pub consumer_vpc: String,
    /// The consumer's account and region ("" when its agent is unknown).
    pub account: String,
    pub region: String,
    pub kind: EndpointKind,
    /// AZs the endpoint is (or would be) in: each is billed by the hour.
    pub azs: usize,
    pub gb_per_month: f64,
    /// An endpoint exists now (it bills in any state, rejected included).
    pub billing_now: bool,
    pub privatelink: Priced,
    pub nat_gateway: Priced,
    pub peering: Priced,
    pub transit_gateway: Priced,
    /// Why the figure is what it is, when that is not obvious (no endpoint can be placed).
    pub note: String,
}

/// One service: the NLB pld built in front of its ALB, and its consumers' endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCost {
    pub name: String,
    pub provider_vpc: String,
    pub account: String,
    /// `None` when pld built no load balancer for it.
    pub nlb: Option<Priced>,
    pub bindings: usize,
    /// The NLB and every priced endpoint of its bindings (paid by their consumers).
    pub total: Cost,
}

/// A VPC's or an account's share.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub id: String,
    /// The account (of a VPC), or "" (of an account).
    pub account: String,
    pub cost: Cost,
}

/// The whole catalog's alternatives to PrivateLink, for the same traffic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alternatives {
    /// A NAT gateway in each AZ of each consumer VPC, all its bindings' data through it.
    pub nat_gateway: Cost,
    /// Peering each consumer–provider pair that can be peered: data between AZs only.
    pub peering: Cost,
    /// A transit gateway with each VPC of the bindings it can carry attached once.
    pub transit_gateway: Cost,
    /// Bindings neither peering nor a transit gateway could carry (overlapping ranges, AWS
    /// services): their traffic is in neither figure.
    pub not_routable: usize,
}

/// The estimate for a catalog.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Estimate {
    pub bindings: Vec<BindingCost>,
    pub services: Vec<ServiceCost>,
    pub vpcs: Vec<Share>,
    pub accounts: Vec<Share>,
    /// Everything priced.
    pub total: Cost,
    pub alternatives: Alternatives,
    /// What could not be priced and why, once each: the total leaves it out.
    pub unpriced: Vec<String>,
}

/// How much data each binding carries a month: the default, or its service's estimate.
fn gb_for(traffic: &Traffic, service: &str) -> f64 {
    traffic
        .services
        .get(service)
        .copied()
        .unwrap_or(traffic.gb_per_month)
}

/// Where one binding's endpoint goes: its kind and AZ count, or why that is unknown.
fn placement(
    b: &Binding,
    svc: Option<&Service>,
    provider: Option<&Agent>,
    consumer: Option<&Agent>,
) -> (EndpointKind, Result<usize, String>, String) {
    let kind_hint = svc.map_or_else(
        || {
            builtin::lookup(&b.service, "us-east-1")
                .map_or(EndpointKind::Interface, |(_, kind)| kind)
        },
        seen::endpoint_kind,
    );
    let Some(agent) = consumer else {
        return (
            kind_hint,
            Err(format!("no agent has registered {}", b.consumer_vpc_id)),
            String::new(),
        );
    };
    let Some(facts) = &agent.facts else {
        return (
            kind_hint,
            Err(format!(
                "the agent of {} has not reported its VPC's facts: its AZs are unknown",
                b.consumer_vpc_id
            )),
            String::new(),
        );
    };
    let subnets = seen::subnets(&b.consumer_vpc_id, facts);
    let name = match target::target(b, svc, &agent.region) {
        Target::Service { name, .. } => name,
        _ => String::new(),
    };
    let detail = seen::consumer_detail(&b.service, svc, provider, agent, &subnets, &name);
    if detail.kind == EndpointKind::Gateway {
        return (detail.kind, Ok(0), String::new());
    }
    match choose_subnets(
        &subnets,
        &agent.endpoint_subnet_ids,
        &detail.az_ids,
        detail.kind,
    ) {
        Ok(chosen) => (detail.kind, Ok(chosen.len()), String::new()),
        Err(Placement(why)) => (
            detail.kind,
            Ok(0),
            format!("no endpoint can be placed: {why}"),
        ),
    }
}

/// The per-AZ-hour and per-GB items of an endpoint of `kind`; `None` for a free one.
fn endpoint_items(kind: EndpointKind) -> Result<Option<(Item, Item)>, String> {
    match kind {
        EndpointKind::Interface => Ok(Some((
            Item::InterfaceEndpointAzHour,
            Item::InterfaceEndpointGb,
        ))),
        EndpointKind::GatewayLoadBalancer => {
            Ok(Some((Item::GwlbEndpointAzHour, Item::GwlbEndpointGb)))
        }
        // Gateway endpoints are free (AWS PrivateLink pricing: gateway endpoints have no
        // hourly or data processing charge).
        EndpointKind::Gateway => Ok(None),
        other => Err(format!(
            "pld makes no {other:?} endpoints and has no price for one"
        )),
    }
}

/// The estimate for `agents`, `services` and `bindings` at `prices`, with `traffic`.
pub fn estimate(
    agents: &[Agent],
    services: &[Service],
    bindings: &[Binding],
    prices: &Prices,
    traffic: &Traffic,
) -> Estimate {
    let by_vpc: HashMap<&str, &Agent> = agents.iter().map(|a| (a.vpc_id.as_str(), a)).collect();
    let by_name: HashMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    let agent_of = |vpc: &str| by_vpc.get(vpc).copied();
    let service_of = |name: &str| by_name.get(name).copied();
    let net = network::view(agents, services, bindings);
    let mut unpriced = BTreeSet::new();

    // Interface endpoints' data is tiered on each account's monthly volume in a region: the
    // volumes first, then each binding at its account's average rate.
    let placed: Vec<_> = bindings
        .iter()
        .map(|b| {
            let svc = service_of(&b.service);
            let provider = svc.and_then(|s| agent_of(&s.vpc_id));
            placement(b, svc, provider, agent_of(&b.consumer_vpc_id))
        })
        .collect();
    let mut volume: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (b, (kind, azs, _)) in bindings.iter().zip(&placed) {
        if let (EndpointKind::Interface, Ok(n), Some(a)) = (kind, azs, agent_of(&b.consumer_vpc_id))
        {
            if *n > 0 {
                *volume
                    .entry((a.account_id.clone(), a.region.clone()))
                    .or_default() += gb_for(traffic, &b.service);
            }
        }
    }
    let average_rate = |account: &str, region: &str, price: &Price| {
        let gb = volume
            .get(&(account.to_string(), region.to_string()))
            .copied()
            .unwrap_or(0.0);
        if gb > 0.0 {
            price.for_volume(gb) / gb
        } else {
            price.rate()
        }
    };

    let mut out = Estimate::default();
    for ((b, (kind, azs, note)), paths) in bindings.iter().zip(placed).zip(&net.bindings) {
        let consumer = agent_of(&b.consumer_vpc_id);
        let (account, region) = consumer.map_or((String::new(), String::new()), |a| {
            (a.account_id.clone(), a.region.clone())
        });
        let gb = gb_for(traffic, &b.service);
        let privatelink = match (&azs, &endpoint_items(kind)) {
            (Err(why), _) | (_, Err(why)) => Err(why.clone()),
            (Ok(_), Ok(None)) | (Ok(0), _) => Ok(Cost::default()),
            (Ok(n), Ok(Some((hourly, per_gb)))) => {
                let hour = prices.get(&region, *hourly);
                let data = prices.get(&region, *per_gb);
                match (hour, data) {
                    (Ok(h), Ok(d)) => {
                        let rate = if kind == EndpointKind::Interface {
                            average_rate(&account, &region, d)
                        } else {
                            d.rate()
                        };
                        Ok(Cost {
                            fixed_per_hour: *n as f64 * h.rate(),
                            data_per_month: gb * rate,
                        })
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
        };
        let nat_azs = azs.as_ref().map_or(1, |n| (*n).max(1));
        let nat_gateway = nat(prices, &region, nat_azs, gb);
        let provider_region = paths
            .provider_vpc
            .as_deref()
            .and_then(agent_of)
            .map_or(region.as_str(), |a| a.region.as_str());
        let (peering, transit_gateway) = routed(prices, &region, provider_region, gb, paths);
        for priced in [&privatelink, &nat_gateway] {
            if let Err(e) = priced {
                unpriced.insert(e.clone());
            }
        }
        out.bindings.push(BindingCost {
            service: b.service.clone(),
            consumer_vpc: b.consumer_vpc_id.clone(),
            account,
            region,
            kind,
            azs: azs.unwrap_or(0),
            gb_per_month: gb,
            billing_now: b.status.as_ref().is_some_and(|s| !s.endpoint_id.is_empty()),
            privatelink,
            nat_gateway,
            peering,
            transit_gateway,
            note,
        });
    }
    services_and_shares(&mut out, &by_vpc, services, prices, &mut unpriced);
    out.alternatives = alternatives(&out.bindings, &net.bindings, prices);
    out.unpriced = unpriced.into_iter().collect();
    out
}

/// A NAT gateway in each of `azs` AZs carrying `gb` a month.
fn nat(prices: &Prices, region: &str, azs: usize, gb: f64) -> Priced {
    let hour = prices.get(region, Item::NatGatewayHour)?;
    let data = prices.get(region, Item::NatGatewayGb)?;
    Ok(Cost {
        fixed_per_hour: azs as f64 * hour.rate(),
        data_per_month: data.for_volume(gb),
    })
}

/// Peering and a transit gateway for one binding, or why neither could carry it.
fn routed(
    prices: &Prices,
    region: &str,
    provider_region: &str,
    gb: f64,
    paths: &BindingPaths,
) -> (Priced, Priced) {
    let Some(provider) = &paths.provider_vpc else {
        let why = "an AWS service: reached through an endpoint or the internet, not by peering";
        return (Err(why.into()), Err(why.into()));
    };
    let Some(p) = &paths.paths else {
        let why = format!(
            "{} or {provider} has reported no facts: whether their ranges overlap is unknown",
            paths.consumer_vpc
        );
        return (Err(why.clone()), Err(why));
    };
    let peering = p
        .peering
        .clone()
        .and_then(|()| peering_data(prices, region, provider_region, gb));
    let transit = p.transit_gateway.clone().and_then(|()| {
        let attach = prices.get(region, Item::TransitGatewayAttachmentHour)?;
        let data = prices.get(region, Item::TransitGatewayGb)?;
        Ok(Cost {
            // One attachment for each of the two VPCs.
            fixed_per_hour: 2.0 * attach.rate(),
            data_per_month: data.for_volume(gb),
        })
    });
    (peering, transit)
}

/// Peering has no hourly charge; its data is free within an AZ and charged between AZs on
/// both sides (or between regions). Counted as if all of it crossed AZs: the bound it can
/// reach, since which AZ each flow lands in is not in the catalog.
fn peering_data(prices: &Prices, region: &str, other_region: &str, gb: f64) -> Priced {
    let data_per_month = if region == other_region {
        2.0 * prices.get(region, Item::InterAzGbEachWay)?.for_volume(gb)
    } else {
        prices.get(region, Item::InterRegionGb)?.for_volume(gb)
    };
    Ok(Cost {
        fixed_per_hour: 0.0,
        data_per_month,
    })
}

/// Services (with the NLBs pld built), and the VPC, account and catalog totals.
fn services_and_shares(
    out: &mut Estimate,
    by_vpc: &HashMap<&str, &Agent>,
    services: &[Service],
    prices: &Prices,
    unpriced: &mut BTreeSet<String>,
) {
    let mut vpcs: BTreeMap<String, Share> = BTreeMap::new();
    let mut charge = |vpc: &str, account: &str, cost: Cost| {
        vpcs.entry(vpc.to_string())
            .or_insert_with(|| Share {
                id: vpc.to_string(),
                account: account.to_string(),
                cost: Cost::default(),
            })
            .cost
            .add(cost);
    };
    for b in &out.bindings {
        if let Ok(c) = &b.privatelink {
            charge(&b.consumer_vpc, &b.account, *c);
        }
    }
    let mut by_service: HashMap<&str, Vec<&BindingCost>> = HashMap::new();
    for b in &out.bindings {
        by_service.entry(b.service.as_str()).or_default().push(b);
    }
    for s in services {
        let provider = by_vpc.get(s.vpc_id.as_str());
        let (account, region) =
            provider.map_or(("", ""), |a| (a.account_id.as_str(), a.region.as_str()));
        let mine = by_service.remove(s.name.as_str()).unwrap_or_default();
        let built = s
            .status
            .as_ref()
            .and_then(|st| st.alb_front.as_ref())
            .is_some_and(|f| !f.load_balancer_arn.is_empty());
        let nlb = built.then(|| -> Priced {
            // An NLCU is 1 GB an hour of processed bytes (ELB pricing): with the traffic
            // spread evenly, a month's NLCU-hours are its GB.
            let gb: f64 = mine.iter().map(|b| b.gb_per_month).sum();
            let hour = prices.get(region, Item::NlbHour)?;
            let nlcu = prices.get(region, Item::NlbNlcuHour)?;
            Ok(Cost {
                fixed_per_hour: hour.rate(),
                data_per_month: gb * nlcu.rate(),
            })
        });
        let mut total = Cost::default();
        match &nlb {
            Some(Ok(c)) => {
                total.add(*c);
                charge(&s.vpc_id, account, *c);
            }
            Some(Err(e)) => {
                unpriced.insert(e.clone());
            }
            None => {}
        }
        for b in &mine {
            if let Ok(c) = &b.privatelink {
                total.add(*c);
            }
        }
        out.services.push(ServiceCost {
            name: s.name.clone(),
            provider_vpc: s.vpc_id.clone(),
            account: account.to_string(),
            nlb,
            bindings: mine.len(),
            total,
        });
    }
    let mut accounts: BTreeMap<String, Cost> = BTreeMap::new();
    for share in vpcs.values() {
        accounts
            .entry(share.account.clone())
            .or_default()
            .add(share.cost);
        out.total.add(share.cost);
    }
    out.vpcs = vpcs.into_values().collect();
    out.accounts = accounts
        .into_iter()
        .map(|(id, cost)| Share {
            id,
            account: String::new(),
            cost,
        })
        .collect();
}

/// The catalog's traffic over each alternative: NAT gateways shared by a VPC's bindings (one
/// per AZ), attachments shared by the VPCs a transit gateway connects.
fn alternatives(bindings: &[BindingCost], paths: &[BindingPaths], prices: &Prices) -> Alternatives {
    let mut alt = Alternatives::default();
    let mut nat_azs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut attached: BTreeSet<(&str, String)> = BTreeSet::new();
    for (b, p) in bindings.iter().zip(paths) {
        if let Ok(c) = &b.nat_gateway {
            alt.nat_gateway.data_per_month += c.data_per_month;
            let azs = nat_azs.entry((&b.consumer_vpc, &b.region)).or_default();
            *azs = (*azs).max(b.azs.max(1));
        }
        match (&b.peering, &b.transit_gateway) {
            (Ok(peer), Ok(tgw)) => {
                alt.peering.add(*peer);
                alt.transit_gateway.data_per_month += tgw.data_per_month;
                attached.insert((&b.region, b.consumer_vpc.clone()));
                if let Some(provider) = &p.provider_vpc {
                    attached.insert((&b.region, provider.clone()));
                }
            }
            _ => alt.not_routable += 1,
        }
    }
    for ((_, region), azs) in nat_azs {
        if let Ok(h) = prices.get(region, Item::NatGatewayHour) {
            alt.nat_gateway.fixed_per_hour += azs as f64 * h.rate();
        }
    }
    for (region, _) in attached {
        if let Ok(h) = prices.get(region, Item::TransitGatewayAttachmentHour) {
            alt.transit_gateway.fixed_per_hour += h.rate();
        }
    }
    alt
}

#[cfg(test)]
mod tests;
