//! Hostile bytes at the catalog's doors: whatever arrives in a raft entry, a snapshot or a
//! request is refused with an error or applied — never a panic. (A stable-toolchain stand-in
//! for cargo-fuzz targets, which need nightly: proptest feeds random and mutated inputs.)

use pld_core::catalog::Catalog;
use pld_core::command::Envelope;
use pld_core::validate;
use pld_proto::v1::{Binding, Service};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        "[a-z0-9-]{0,70}",
        "(vpc|vpce|arn:aws:iam::)[-0-9a-f:/*]{0,30}",
        Just("*".to_string()),
    ]
}

prop_compose! {
    fn any_service()(
        name in text(), vpc in text(), lb in text(),
        ports in proptest::collection::vec(any::<u32>(), 0..70),
        acceptance in any::<i32>(),
        principals in proptest::collection::vec(text(), 0..5),
        description in ".{0,300}",
    ) -> Service {
        Service {
            name, vpc_id: vpc, load_balancer_arn: lb, ports, acceptance,
            allowed_principals: principals, description, ..Default::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes as a committed entry: they decode or not, and what decodes applies or is refused.
    #[test]
    fn any_entry_bytes_decode_or_fail_and_apply_or_are_refused(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut catalog = Catalog::new(16);
        if let Ok(env) = Envelope::decode_bytes(&bytes) {
            for cmd in env.command.iter().chain(env.commands.iter()) {
                let _ = catalog.apply(cmd);
            }
        }
    }

    /// Any bytes as a snapshot from a leader: a catalog or an error.
    #[test]
    fn any_snapshot_bytes_decode_or_fail(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024)
    ) {
        let _ = Catalog::decode_snapshot(&bytes, 16);
    }

    /// Any service a client sends is accepted or refused naming a field; accepted ones meet the
    /// documented rules.
    #[test]
    fn any_service_is_validated_without_panicking(s in any_service()) {
        match validate::service(&s) {
            Ok(()) => {
                prop_assert!(!s.name.is_empty() && s.name.len() <= 63);
                prop_assert!(!s.ports.is_empty() && s.ports.len() <= 64);
                prop_assert!(s.ports.iter().all(|p| (1..=65535).contains(p)));
                prop_assert!(s.description.len() <= 256);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The same for bindings.
    #[test]
    fn any_binding_is_validated_without_panicking(
        service in text(), vpc in text(), approval in any::<i32>()
    ) {
        let b = Binding {
            service, consumer_vpc_id: vpc, approval,
            ..Default::default()
        };
        let _ = validate::binding(&b);
    }
}
