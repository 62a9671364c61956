//! AZ names to AZ IDs. pld places everything by AZ ID, which names the same zone in every
//! account; when a response carries only AZ names (they differ per account) they are
//! translated with this account's DescribeAvailabilityZones, read once.

use std::collections::HashMap;

use pld_cloud::{Action, CloudResult};

use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    /// AZ name → AZ ID for this account.
    pub(crate) async fn az_map(&self) -> CloudResult<&HashMap<String, String>> {
        self.az_ids
            .get_or_try_init(|| async {
                let out = self
                    .ec2
                    .describe_availability_zones()
                    .send()
                    .await
                    .map_err(|e| error::map(Action::DescribeAvailabilityZones, e))?;
                Ok(out
                    .availability_zones()
                    .iter()
                    .filter_map(|z| Some((z.zone_name()?.to_string(), z.zone_id()?.to_string())))
                    .collect())
            })
            .await
    }

    /// AZ IDs from a response that may carry IDs, names, or both.
    pub(crate) async fn az_ids_of(
        &self,
        ids: &[String],
        names: &[String],
    ) -> CloudResult<Vec<String>> {
        if !ids.is_empty() {
            return Ok(ids.to_vec());
        }
        let map = self.az_map().await?;
        Ok(names
            .iter()
            .map(|n| map.get(n).cloned().unwrap_or_else(|| n.clone()))
            .collect())
    }
}
