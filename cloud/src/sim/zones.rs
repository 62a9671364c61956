//! Where a simulated region's things are, as AWS names them: the AZ IDs its VPCs span, each
//! account's names of them, and where the region starts numbering its resources.

/// The AZ IDs every simulated VPC spans.
pub const AZ_IDS: [&str; 3] = ["use1-az1", "use1-az2", "use1-az4"];

/// The AZ IDs every simulated VPC of `region` spans: [`AZ_IDS`] in us-east-1; elsewhere three
/// of the region's own, spelled as AWS spells AZ IDs (`usw2-az1`: the region's code with each
/// direction shortened to its initials, "AZ IDs for your AWS resources", AWS RAM user guide).
pub fn region_az_ids(region: &str) -> Vec<String> {
    if region == "us-east-1" {
        return AZ_IDS.iter().map(|a| a.to_string()).collect();
    }
    let parts: Vec<&str> = region.split('-').collect();
    let mut prefix = String::new();
    for (i, part) in parts.iter().enumerate() {
        prefix.push_str(match (i, *part) {
            (0, p) => p,
            (_, "north") => "n",
            (_, "south") => "s",
            (_, "east") => "e",
            (_, "west") => "w",
            (_, "central") => "c",
            (_, "northeast") => "ne",
            (_, "southeast") => "se",
            (_, "northwest") => "nw",
            (_, "southwest") => "sw",
            (_, p) => p,
        });
    }
    (1..=3).map(|n| format!("{prefix}-az{n}")).collect()
}

/// `account`'s name of the zone `az_id` in `region`. AWS maps AZ names to AZ IDs independently
/// for each account ("AZ IDs for your AWS resources", AWS RAM user guide), so the same zone
/// has other names in other accounts; the sim rotates the letters by the account number.
pub fn az_name(region: &str, account: &str, az_id: &str) -> String {
    const LETTERS: &[u8] = b"abcdef";
    let index = region_az_ids(region)
        .iter()
        .position(|a| a == az_id)
        .unwrap_or(0);
    let shift = account
        .parse::<u64>()
        .unwrap_or_else(|_| account.bytes().map(u64::from).sum());
    let letter = LETTERS[(index + (shift % LETTERS.len() as u64) as usize) % LETTERS.len()] as char;
    format!("{region}{letter}")
}

/// Where a region starts numbering its resources: ids at AWS are unique across regions, so
/// the regions of one test never hand out the same VPC or subnet id. us-east-1 starts at 0,
/// keeping the ids `pld dev` prints (and the README shows); each other known region at its
/// own multiple of 2^20.
pub(super) fn id_base(region: &str) -> u64 {
    if region == "us-east-1" {
        return 0;
    }
    let index = pld_core::regions::REGIONS
        .iter()
        .position(|r| r.code == region)
        .map_or(pld_core::regions::REGIONS.len(), |i| i);
    (index as u64 + 1) << 20
}
