use super::*;

#[test]
fn dns_labels() {
    assert!(dns_label("f", "billing-api").is_ok());
    assert!(dns_label("f", "a").is_ok());
    assert!(dns_label("f", "").is_err());
    assert!(dns_label("f", "-a").is_err());
    assert!(dns_label("f", "a-").is_err());
    assert!(dns_label("f", "Billing").is_err());
    assert!(dns_label("f", "a.b").is_err());
    assert!(dns_label("f", &"a".repeat(63)).is_ok());
    assert!(dns_label("f", &"a".repeat(64)).is_err());
    assert_eq!(dns_label("svc.name", "A").unwrap_err().field, "svc.name");
}

#[test]
fn pending_steps_in_a_status_report_are_bounded() {
    let step = |reason: &str| pld_proto::v1::PlannedStep {
        action: "ChangeResourceRecordSets".into(),
        target: "demo.pld.internal.".into(),
        reason: reason.into(),
    };
    let status = |pending| pld_proto::v1::BindingStatus {
        phase: "publishing".into(),
        pending,
        ..Default::default()
    };
    assert!(binding_status(&status(vec![step("missing")])).is_ok());
    let many = status(vec![step("missing"); MAX_PENDING_STEPS + 1]);
    assert_eq!(binding_status(&many).unwrap_err().field, "status.pending");
    let long = status(vec![step(&"x".repeat(MAX_STATUS_MESSAGE + 1))]);
    assert_eq!(
        binding_status(&long).unwrap_err().field,
        "status.pending.reason"
    );
    let service = pld_proto::v1::ServiceStatus {
        state: "failed".into(),
        pending: vec![step("missing"); MAX_PENDING_STEPS + 1],
        ..Default::default()
    };
    assert_eq!(
        service_status(&service).unwrap_err().field,
        "status.pending"
    );
}

#[test]
fn vpc_ids() {
    assert!(vpc_id("f", "vpc-0123abcd").is_ok());
    assert!(vpc_id("f", "vpc-0123456789abcdef0").is_ok());
    assert!(vpc_id("f", "vpc-0123ABCD").is_err());
    assert!(vpc_id("f", "vpc-012").is_err());
    assert!(vpc_id("f", "subnet-0123abcd").is_err());
}

#[test]
fn load_balancer_arns() {
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/demo/50dc6c495c0c9188";
    let gwlb =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/gwy/fw/50dc6c495c0c9188";
    let alb =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
    assert_eq!(load_balancer_arn("f", nlb), Ok(LoadBalancerType::Network));
    assert_eq!(load_balancer_arn("f", gwlb), Ok(LoadBalancerType::Gateway));
    assert_eq!(
        load_balancer_arn("f", alb),
        Ok(LoadBalancerType::Application)
    );
    assert!(load_balancer_arn("f", &alb.replace("/web/", "/-web/")).is_err());
    assert!(load_balancer_arn("f", "arn:aws:s3:::bucket").is_err());
    assert!(load_balancer_arn("f", "nope").is_err());
}

#[test]
fn health_checks() {
    use pld_proto::v1::HealthCheck;
    let check = |path: &str, matcher: &str| {
        health_check(
            "h",
            &HealthCheck {
                protocol: 1,
                path: path.into(),
                matcher: matcher.into(),
            },
        )
    };
    for (path, matcher) in [
        ("", ""),
        ("/", "200"),
        ("/healthz?x=1", "200,204"),
        ("/a", "200-399"),
    ] {
        assert!(check(path, matcher).is_ok(), "{path:?} {matcher:?}");
    }
    for (path, field) in [
        ("healthz", "h.path"),
        ("/a b", "h.path"),
        (&"/".repeat(1025), "h.path"),
    ] {
        assert_eq!(check(path, "").unwrap_err().field, field, "{path:?}");
    }
    for matcher in [
        "ok",
        "199",
        "500",
        "300-200",
        "200-",
        "200,,204",
        "200-300-400",
    ] {
        assert_eq!(
            check("/", matcher).unwrap_err().field,
            "h.matcher",
            "{matcher:?}"
        );
    }
    let bad = HealthCheck {
        protocol: 7,
        ..HealthCheck::default()
    };
    assert_eq!(health_check("h", &bad).unwrap_err().field, "h.protocol");
}

#[test]
fn principals() {
    assert!(principal("f", "*").is_ok());
    assert!(principal("f", "arn:aws:iam::123456789012:root").is_ok());
    assert!(principal("f", "arn:aws:iam::123456789012:role/consumer").is_ok());
    assert!(principal("f", "arn:aws:iam::12345:root").is_err());
    assert!(principal("f", "123456789012").is_err());
}

#[test]
fn regions() {
    assert!(region("f", "us-east-1").is_ok());
    assert!(region("f", "us-gov-west-1").is_ok());
    assert!(region("f", "useast1").is_err());
    assert!(region("f", "us-east-").is_err());
}

#[test]
fn a_service_s_regions_are_other_regions_of_its_partition() {
    let service = |arn: &str, regions: &[&str]| pld_proto::v1::Service {
        name: "demo".into(),
        vpc_id: "vpc-0a000001".into(),
        load_balancer_arn: arn.into(),
        ports: vec![443],
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..pld_proto::v1::Service::default()
    };
    let nlb = "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/net/demo/0a1b";
    assert!(super::service(&service(nlb, &["us-west-2", "eu-west-1"])).is_ok());
    let message = |regions: &[&str]| {
        let e = super::service(&service(nlb, regions)).unwrap_err();
        assert_eq!(e.field, "service.regions");
        e.to_string()
    };
    let unknown = message(&["us-west-9"]);
    assert!(
        unknown.contains("us-west-9") && unknown.contains("us-west-2"),
        "names the partition's regions: {unknown}"
    );
    assert!(message(&["cn-north-1"]).contains("partition aws-cn"));
    assert!(message(&["us-east-1"]).contains("own region"));
    assert!(message(&["us-west-2", "us-west-2"]).contains("twice"));
    let many: Vec<&str> = crate::regions::Partition::Aws
        .regions()
        .map(|r| r.code)
        .filter(|c| *c != "us-east-1")
        .collect();
    assert!(many.len() > MAX_SERVICE_REGIONS);
    assert!(message(&many).contains("at most"));
    // GovCloud reaches GovCloud.
    let gov =
        "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:111111111111:loadbalancer/net/d/0a";
    assert!(super::service(&service(gov, &["us-gov-east-1"])).is_ok());
    assert!(super::service(&service(gov, &["us-west-2"])).is_err());
}
