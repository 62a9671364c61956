//! Service Quotas: GetServiceQuota for the quotas pld reads, each AWS's published default
//! unless the region was told an account's own value ([`super::SimRegion::set_quota`]).

use super::cloud::SimCloud;
use super::{SimRegion, State};
use crate::types::Quota;
use crate::{Action, CloudResult};

/// `account`'s value of `quota`.
pub(super) fn value(st: &State, account: &str, quota: Quota) -> u32 {
    st.quotas
        .get(&(account.to_string(), quota))
        .copied()
        .unwrap_or_else(|| quota.aws_default())
}

impl SimCloud {
    pub(super) async fn service_quota(&self, quota: Quota) -> CloudResult<u32> {
        let st = self.gate(Action::GetServiceQuota)?;
        Ok(value(&st, &self.account, quota))
    }
}

impl SimRegion {
    /// Sets `account`'s value of `quota` in this region, as an approved quota increase (or a
    /// lower value, to reach the quota in a test) would.
    pub fn set_quota(&self, account: &str, quota: Quota, value: u32) {
        self.state()
            .quotas
            .insert((account.to_string(), quota), value);
    }
}
