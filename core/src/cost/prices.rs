//! The prices `pld cost` estimates with: `prices/aws.toml` in the repository (per region, each
//! with the page it was read from and the date), overridden entry by entry by a file of the same
//! layout. A price that is in neither is never guessed: the estimate names it as unpriced.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The prices shipped with pld, read from the repository at build time.
pub const BUILT_IN: &str = include_str!("../../../prices/aws.toml");

/// Hours in a month, as AWS's pricing examples count them (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What is priced. The TOML key of each is its snake-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// An interface endpoint, per AZ it is in, per hour.
    InterfaceEndpointAzHour,
    /// Data an interface endpoint processes, per GB, tiered by the month's regional volume.
    InterfaceEndpointGb,
    /// A Gateway Load Balancer endpoint (one AZ each), per hour.
    GwlbEndpointAzHour,
    /// Data a Gateway Load Balancer endpoint processes, per GB.
    GwlbEndpointGb,
    /// A Network Load Balancer, per hour.
    NlbHour,
    /// A Network Load Balancer capacity unit, per hour.
    NlbNlcuHour,
    /// A NAT gateway, per hour.
    NatGatewayHour,
    /// Data a NAT gateway processes, per GB.
    NatGatewayGb,
    /// A VPC's attachment to a transit gateway, per hour.
    TransitGatewayAttachmentHour,
    /// Data sent to a transit gateway, per GB.
    TransitGatewayGb,
    /// Data crossing from one AZ to another, per GB, charged on each side.
    InterAzGbEachWay,
    /// Data sent to another region, per GB.
    InterRegionGb,
}

impl Item {
    /// The key in a prices file.
    pub fn key(self) -> &'static str {
        match self {
            Item::InterfaceEndpointAzHour => "interface_endpoint_az_hour",
            Item::InterfaceEndpointGb => "interface_endpoint_gb",
            Item::GwlbEndpointAzHour => "gwlb_endpoint_az_hour",
            Item::GwlbEndpointGb => "gwlb_endpoint_gb",
            Item::NlbHour => "nlb_hour",
            Item::NlbNlcuHour => "nlb_nlcu_hour",
            Item::NatGatewayHour => "nat_gateway_hour",
            Item::NatGatewayGb => "nat_gateway_gb",
            Item::TransitGatewayAttachmentHour => "transit_gateway_attachment_hour",
            Item::TransitGatewayGb => "transit_gateway_gb",
            Item::InterAzGbEachWay => "inter_az_gb_each_way",
            Item::InterRegionGb => "inter_region_gb",
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One volume tier: its rate applies to the GB of the month up to `up_to_gb` (all of them
/// when unset, in the last tier).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub up_to_gb: Option<f64>,
    pub usd: f64,
}

/// One price: a flat rate or volume tiers, and where it came from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub usd: Option<f64>,
    pub tiers: Option<Vec<Tier>>,
    /// The page it was read from (an override may leave it out).
    #[serde(default)]
    pub source: String,
    /// The date it was read, YYYY-MM-DD (an override may leave it out).
    #[serde(default)]
    pub read: String,
    #[serde(default)]
    pub note: String,
}

impl Price {
    /// The cost of `gb` in one month at this price: tier by tier, or flat.
    pub fn for_volume(&self, gb: f64) -> f64 {
        match (&self.tiers, self.usd) {
            (Some(tiers), _) => {
                let (mut left, mut floor, mut usd) = (gb, 0.0, 0.0);
                for t in tiers {
                    let width = t.up_to_gb.map_or(f64::INFINITY, |up| up - floor);
                    let here = left.min(width);
                    usd += here * t.usd;
                    left -= here;
                    floor = t.up_to_gb.unwrap_or(floor);
                    if left <= 0.0 {
                        break;
                    }
                }
                usd
            }
            (None, Some(rate)) => gb * rate,
            (None, None) => 0.0,
        }
    }

    /// The flat rate, or the first tier's.
    pub fn rate(&self) -> f64 {
        match (&self.tiers, self.usd) {
            (Some(tiers), _) => tiers.first().map_or(0.0, |t| t.usd),
            (None, Some(rate)) => rate,
            (None, None) => 0.0,
        }
    }

    fn check(&self, at: &str, shipped: bool) -> Result<(), PriceError> {
        let bad = |why: String| Err(PriceError::Invalid(format!("{at}: {why}")));
        let sane = |usd: f64| usd.is_finite() && usd >= 0.0;
        match (&self.usd, &self.tiers) {
            (Some(_), Some(_)) | (None, None) => {
                return bad("give either usd or tiers".into());
            }
            (Some(usd), None) if !sane(*usd) => {
                return bad(format!(
                    "usd must be a number of dollars, 0 or more, not {usd}"
                ));
            }
            (None, Some(tiers)) => {
                if tiers.is_empty() || tiers.last().is_some_and(|t| t.up_to_gb.is_some()) {
                    return bad("the last tier has no up_to_gb (it takes the rest)".into());
                }
                let mut floor = 0.0;
                for (i, t) in tiers.iter().enumerate() {
                    if !sane(t.usd) {
                        return bad(format!("tier {}: usd must be 0 or more", i + 1));
                    }
                    match t.up_to_gb {
                        Some(up) if !(up.is_finite() && up > floor) => {
                            return bad(format!(
                                "tier {}: up_to_gb must rise above {floor}, not {up}",
                                i + 1
                            ));
                        }
                        Some(up) => floor = up,
                        None if i + 1 < tiers.len() => {
                            return bad(format!("tier {}: only the last tier is open", i + 1));
                        }
                        None => {}
                    }
                }
            }
            _ => {}
        }
        if shipped && (self.source.is_empty() || self.read.is_empty()) {
            return bad("a shipped price names its source page and the date it was read".into());
        }
        if !self.read.is_empty() && !is_date(&self.read) {
            return bad(format!(
                "read must be a date, YYYY-MM-DD, not {:?}",
                self.read
            ));
        }
        Ok(())
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// A prices file: region → item → price.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    #[serde(default)]
    pub regions: BTreeMap<String, BTreeMap<Item, Price>>,
}

/// How much data the estimate assumes each binding carries a month.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// GB each binding's endpoint processes a month (both directions), unless its service has
    /// its own estimate.
    #[serde(default)]
    pub gb_per_month: f64,
    /// Service name → GB each of its bindings processes a month.
    #[serde(default)]
    pub services: BTreeMap<String, f64>,
}

impl Traffic {
    /// Checks every volume is a number of GB, 0 or more.
    ///
    /// # Errors
    /// Names the volume that is not.
    pub fn check(&self, what: &str) -> Result<(), PriceError> {
        let sane = |gb: f64| gb.is_finite() && gb >= 0.0;
        if !sane(self.gb_per_month) {
            return Err(PriceError::Invalid(format!(
                "{what}: gb_per_month must be 0 or more, not {}",
                self.gb_per_month
            )));
        }
        for (service, gb) in &self.services {
            if !sane(*gb) {
                return Err(PriceError::Invalid(format!(
                    "{what}: traffic.services.{service} must be 0 or more GB, not {gb}"
                )));
            }
        }
        Ok(())
    }
}

/// A cost file, as `pld cost --prices FILE` and the controller's `[cost] prices` read it:
/// prices in the layout of `prices/aws.toml`, and the traffic to assume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostFile {
    #[serde(default)]
    pub regions: BTreeMap<String, BTreeMap<Item, Price>>,
    #[serde(default)]
    pub traffic: Traffic,
}

impl CostFile {
    /// A cost file from `text` (the file `what`).
    ///
    /// # Errors
    /// Unparsable TOML, an unknown key, or a price or volume that is not a number.
    pub fn parse(text: &str, what: &str) -> Result<CostFile, PriceError> {
        let file: CostFile = toml::from_str(text)
            .map_err(|e| PriceError::Invalid(format!("{what}: {}", e.message())))?;
        Prices {
            regions: file.regions.clone(),
        }
        .check(what, false)?;
        file.traffic.check(what)?;
        Ok(file)
    }

    /// The built-in prices with this file's in their place.
    pub fn prices(&self, what: &str) -> Result<Prices, PriceError> {
        let over = Prices {
            regions: self.regions.clone(),
        };
        Ok(Prices::built_in()?.overridden_by(&over, what))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("{0}")]
    Invalid(String),
}

impl Prices {
    /// The prices shipped with pld.
    ///
    /// # Errors
    /// Never for the file in the repository (a test reads it); the error names the entry.
    pub fn built_in() -> Result<Prices, PriceError> {
        Prices::parse(BUILT_IN, "prices/aws.toml", true)
    }

    /// Prices from `text` (a file named `what`); `shipped` requires source and date.
    ///
    /// # Errors
    /// Unparsable TOML, an unknown item, or a price that is not a number of dollars.
    pub fn parse(text: &str, what: &str, shipped: bool) -> Result<Prices, PriceError> {
        let prices: Prices = toml::from_str(text)
            .map_err(|e| PriceError::Invalid(format!("{what}: {}", e.message())))?;
        prices.check(what, shipped)?;
        Ok(prices)
    }

    /// Checks every entry.
    ///
    /// # Errors
    /// The first entry that is wrong, named `what.regions.REGION.ITEM`.
    pub fn check(&self, what: &str, shipped: bool) -> Result<(), PriceError> {
        for (region, items) in &self.regions {
            for (item, price) in items {
                price.check(&format!("{what}: regions.{region}.{item}"), shipped)?;
            }
        }
        Ok(())
    }

    /// These prices with `over`'s entries in place of theirs; an override without a source
    /// says it is one.
    pub fn overridden_by(mut self, over: &Prices, what: &str) -> Prices {
        for (region, items) in &over.regions {
            let mine = self.regions.entry(region.clone()).or_default();
            for (item, price) in items {
                let mut price = price.clone();
                if price.source.is_empty() {
                    price.source = format!("override in {what}");
                }
                mine.insert(*item, price);
            }
        }
        self
    }

    /// The price of `item` in `region`, or why there is none.
    ///
    /// # Errors
    /// Names the missing region or entry and where to add it.
    pub fn get(&self, region: &str, item: Item) -> Result<&Price, String> {
        let Some(items) = self.regions.get(region) else {
            return Err(format!(
                "no prices for region {region:?} (prices/aws.toml has {}): add \
                 [regions.{region}.{item}] to a file given with --prices",
                self.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        items.get(&item).ok_or_else(|| {
            format!(
                "no price for {item} in {region}: add [regions.{region}.{item}] to a file given \
                 with --prices"
            )
        })
    }
}
