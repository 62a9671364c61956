//! What both systems are given, so their figures compare: the same value in every write and
//! the same number of connections.

use pld_proto::v1::{Acceptance, Service};
use prost::Message as _;

/// Connections each workload spreads its clients over.
pub const CONNECTIONS: usize = 8;

/// The value every write carries (also the etcd value, for equal sizes).
pub fn service(name: &str) -> Service {
    Service {
        name: name.into(),
        vpc_id: "vpc-0123abcd".into(),
        load_balancer_arn:
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188"
                .into(),
        ports: vec![443],
        acceptance: Acceptance::Auto as i32,
        ..Default::default()
    }
}

/// Encoded size of a benchmark value.
pub fn value_bytes(name: &str) -> Vec<u8> {
    service(name).encode_to_vec()
}
