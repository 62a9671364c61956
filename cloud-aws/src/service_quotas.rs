//! Service Quotas: the account's value of a quota pld plans against.

use pld_cloud::{Action, CloudError, CloudResult, Quota};

use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    pub(crate) async fn service_quota(&self, quota: Quota) -> CloudResult<u32> {
        let out = self
            .quotas
            .get_service_quota()
            .service_code(quota.service_code())
            .quota_code(quota.code())
            .send()
            .await
            .map_err(|e| error::map(Action::GetServiceQuota, e))?;
        let value = out.quota().and_then(|q| q.value()).ok_or_else(|| {
            CloudError::Client(format!("GetServiceQuota {}: no value", quota.code()))
        })?;
        // Quotas are whole counts sent as doubles; a value beyond u32 is as good as unlimited.
        if !(0.0..=f64::from(u32::MAX)).contains(&value) {
            return Err(CloudError::Client(format!(
                "GetServiceQuota {}: {value} is not a count",
                quota.code()
            )));
        }
        Ok(value as u32)
    }
}
