//! AWS regions and the partitions they belong to: what a service's `regions` may name, and
//! what cross-region PrivateLink allows (an endpoint service is offered to regions of its own
//! partition only, AWS-NOTES "Cross-region").
//!
//! Source: the partition data of the pinned aws-sdk-ec2 1.274.0 (`src/endpoint_lib.rs`, which
//! the SDK resolves endpoints with), read 2026-12-07; the same list as
//! <https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html>. A region
//! opened since is added here with the SDK that knows it.

use std::fmt;

/// An AWS partition: regions of one partition reach each other; none reaches another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
    AwsEusc,
    AwsIso,
    AwsIsoB,
    AwsIsoE,
    AwsIsoF,
}

impl Partition {
    const ALL: [Partition; 8] = [
        Partition::Aws,
        Partition::AwsCn,
        Partition::AwsUsGov,
        Partition::AwsEusc,
        Partition::AwsIso,
        Partition::AwsIsoB,
        Partition::AwsIsoE,
        Partition::AwsIsoF,
    ];

    /// The name ARNs carry (`arn:PARTITION:...`).
    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsEusc => "aws-eusc",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
        }
    }

    /// The partition an ARN names.
    pub fn named(name: &str) -> Option<Partition> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its regions, in code order.
    pub fn regions(self) -> impl Iterator<Item = &'static Region> {
        REGIONS.iter().filter(move |r| r.partition == self)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub code: &'static str,
    pub name: &'static str,
    pub partition: Partition,
}

/// The region of `code`, if AWS has one.
pub fn lookup(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.code == code)
}

/// Every region, by partition then code.
pub const REGIONS: &[Region] = &[
    Region {
        code: "af-south-1",
        name: "Africa (Cape Town)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-east-1",
        name: "Asia Pacific (Hong Kong)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-east-2",
        name: "Asia Pacific (Taipei)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-northeast-1",
        name: "Asia Pacific (Tokyo)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-northeast-2",
        name: "Asia Pacific (Seoul)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-northeast-3",
        name: "Asia Pacific (Osaka)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-south-1",
        name: "Asia Pacific (Mumbai)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-south-2",
        name: "Asia Pacific (Hyderabad)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-1",
        name: "Asia Pacific (Singapore)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-2",
        name: "Asia Pacific (Sydney)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-3",
        name: "Asia Pacific (Jakarta)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-4",
        name: "Asia Pacific (Melbourne)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-5",
        name: "Asia Pacific (Malaysia)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-6",
        name: "Asia Pacific (New Zealand)",
        partition: Partition::Aws,
    },
    Region {
        code: "ap-southeast-7",
        name: "Asia Pacific (Thailand)",
        partition: Partition::Aws,
    },
    Region {
        code: "ca-central-1",
        name: "Canada (Central)",
        partition: Partition::Aws,
    },
    Region {
        code: "ca-west-1",
        name: "Canada West (Calgary)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-central-1",
        name: "Europe (Frankfurt)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-central-2",
        name: "Europe (Zurich)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-north-1",
        name: "Europe (Stockholm)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-south-1",
        name: "Europe (Milan)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-south-2",
        name: "Europe (Spain)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-west-1",
        name: "Europe (Ireland)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-west-2",
        name: "Europe (London)",
        partition: Partition::Aws,
    },
    Region {
        code: "eu-west-3",
        name: "Europe (Paris)",
        partition: Partition::Aws,
    },
    Region {
        code: "il-central-1",
        name: "Israel (Tel Aviv)",
        partition: Partition::Aws,
    },
    Region {
        code: "me-central-1",
        name: "Middle East (UAE)",
        partition: Partition::Aws,
    },
    Region {
        code: "me-south-1",
        name: "Middle East (Bahrain)",
        partition: Partition::Aws,
    },
    Region {
        code: "mx-central-1",
        name: "Mexico (Central)",
        partition: Partition::Aws,
    },
    Region {
        code: "sa-east-1",
        name: "South America (Sao Paulo)",
        partition: Partition::Aws,
    },
    Region {
        code: "us-east-1",
        name: "US East (N. Virginia)",
        partition: Partition::Aws,
    },
    Region {
        code: "us-east-2",
        name: "US East (Ohio)",
        partition: Partition::Aws,
    },
    Region {
        code: "us-west-1",
        name: "US West (N. California)",
        partition: Partition::Aws,
    },
    Region {
        code: "us-west-2",
        name: "US West (Oregon)",
        partition: Partition::Aws,
    },
    Region {
        code: "cn-north-1",
        name: "China (Beijing)",
        partition: Partition::AwsCn,
    },
    Region {
        code: "cn-northwest-1",
        name: "China (Ningxia)",
        partition: Partition::AwsCn,
    },
    Region {
        code: "eusc-de-east-1",
        name: "AWS European Sovereign Cloud (Germany)",
        partition: Partition::AwsEusc,
    },
    Region {
        code: "us-iso-east-1",
        name: "US ISO East",
        partition: Partition::AwsIso,
    },
    Region {
        code: "us-iso-west-1",
        name: "US ISO WEST",
        partition: Partition::AwsIso,
    },
    Region {
        code: "us-isob-east-1",
        name: "US ISOB East (Ohio)",
        partition: Partition::AwsIsoB,
    },
    Region {
        code: "us-isob-west-1",
        name: "US ISOB West",
        partition: Partition::AwsIsoB,
    },
    Region {
        code: "eu-isoe-west-1",
        name: "EU ISOE West",
        partition: Partition::AwsIsoE,
    },
    Region {
        code: "us-isof-east-1",
        name: "US ISOF EAST",
        partition: Partition::AwsIsoF,
    },
    Region {
        code: "us-isof-south-1",
        name: "US ISOF SOUTH",
        partition: Partition::AwsIsoF,
    },
    Region {
        code: "us-gov-east-1",
        name: "AWS GovCloud (US-East)",
        partition: Partition::AwsUsGov,
    },
    Region {
        code: "us-gov-west-1",
        name: "AWS GovCloud (US-West)",
        partition: Partition::AwsUsGov,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_found_with_their_partition() {
        assert_eq!(
            lookup("us-west-2").map(|r| r.partition),
            Some(Partition::Aws)
        );
        assert_eq!(
            lookup("cn-north-1").map(|r| r.partition),
            Some(Partition::AwsCn)
        );
        assert_eq!(
            lookup("us-gov-west-1").map(|r| r.partition),
            Some(Partition::AwsUsGov)
        );
        assert!(lookup("us-west-9").is_none());
        assert_eq!(Partition::named("aws-us-gov"), Some(Partition::AwsUsGov));
        assert_eq!(Partition::named("azure"), None);
        assert!(Partition::Aws.regions().any(|r| r.code == "mx-central-1"));
    }

    #[test]
    fn every_code_is_listed_once() {
        let mut codes: Vec<&str> = REGIONS.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), REGIONS.len());
    }
}
