//! Identifiers as AWS hands them out: resource ids, client-token idempotency, and ENI
//! addresses (loopback ones when the data plane is real).

use super::cloud::SimCloud;
use super::State;
use crate::types::Subnet;
use crate::{CloudError, CloudResult};

/// Next loopback ENI address of the loopback data plane.
static NEXT_LOOPBACK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// Next loopback address of an internet-facing load balancer of the loopback data plane.
static NEXT_INTERNET: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The address an internet-facing load balancer answers at in the loopback data plane:
/// `127.78.x.y`, process-wide like the ENI addresses (`127.77.x.y`).
pub(super) fn next_internet_address() -> String {
    let n = NEXT_INTERNET.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    format!("127.78.{}.{}", n / 250, n % 250 + 1)
}

/// The NotFound error of a missing (or another account's) resource.
pub(super) fn not_found(what: &'static str, id: &str) -> CloudError {
    CloudError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// A stable pseudo prefix-list id for a gateway service.
pub(super) fn hex_of(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", h as u32)
}

impl SimCloud {
    pub(super) fn new_id(st: &mut State, prefix: &str, width: usize) -> String {
        st.next_id += 1;
        let n = 0x0a1b_2c3d_0000_0000u64.wrapping_add(st.next_id * 7919);
        let id = format!("{n:0width$x}");
        format!("{prefix}{}", &id[id.len() - width..])
    }

    /// Idempotency: a known token with the same parameters returns the resource id.
    pub(super) fn check_token(
        &self,
        st: &State,
        token: &str,
        fingerprint: &str,
    ) -> CloudResult<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        match st.tokens.get(&(self.account.clone(), token.to_string())) {
            Some((fp, id)) if fp == fingerprint => Ok(Some(id.clone())),
            Some(_) => Err(CloudError::IdempotentParameterMismatch(token.to_string())),
            None => Ok(None),
        }
    }

    pub(super) fn next_address(st: &mut State, loopback: bool, subnet: &Subnet) -> String {
        if loopback {
            // Process-wide, so regions in one process (tests) never hand out the same address.
            let n = NEXT_LOOPBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            return format!("127.77.{}.{}", n / 250, n % 250 + 1);
        }
        let host = st.next_host.entry(subnet.id.clone()).or_insert(3);
        *host += 1;
        let prefix: Vec<&str> = subnet.cidr.split('.').take(3).collect();
        format!("{}.{}", prefix.join("."), *host)
    }
}
