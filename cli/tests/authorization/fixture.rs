//! The controller under test, its certificates, and the objects and calls the tests share.

use std::path::Path;
use std::time::Duration;

use pld_client::tls::{Tls, TlsFiles};
use pld_client::{Client, ClientError};
use pld_proto::v1::{
    object, report_status_request, Acceptance, Agent, Approval, Binding, BindingStatus,
    KeepAliveRequest, Kind, Object, ReportStatusRequest, Service, ServiceStatus,
};
use pld_tests::objects::NLB;
use pld_tests::pki::{tls_table, TestPki};
use pld_tests::process::ProcessCluster;
use tonic::Code;

pub const VPC_A: &str = "vpc-aaaaaaaa";
pub const VPC_B: &str = "vpc-bbbbbbbb";
pub const ACCOUNT_A: &str = "111111111111";
pub const ACCOUNT_B: &str = "222222222222";

pub fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

pub fn agent_record(vpc: &str, account: &str) -> Object {
    Object {
        object: Some(object::Object::Agent(Agent {
            vpc_id: vpc.into(),
            account_id: account.into(),
            region: "us-east-1".into(),
            lease_ttl_seconds: 600,
            ..Default::default()
        })),
    }
}

pub fn service(name: &str, vpc: &str, principals: &[&str]) -> Object {
    Object {
        object: Some(object::Object::Service(Service {
            name: name.into(),
            vpc_id: vpc.into(),
            load_balancer_arn: NLB.into(),
            ports: vec![443],
            acceptance: Acceptance::Manual as i32,
            allowed_principals: principals.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        })),
    }
}

pub fn binding(service: &str, vpc: &str, approval: Approval) -> Object {
    Object {
        object: Some(object::Object::Binding(Binding {
            service: service.into(),
            consumer_vpc_id: vpc.into(),
            approval: approval as i32,
            ..Default::default()
        })),
    }
}

pub async fn report(
    client: &Client,
    kind: Kind,
    key: &str,
    status: report_status_request::Status,
) -> Result<(), ClientError> {
    client
        .call(|mut s| {
            let req = ReportStatusRequest {
                kind: kind as i32,
                key: key.to_string(),
                status: Some(status.clone()),
            };
            async move { s.catalog().report_status(req).await }
        })
        .await
        .map(|_| ())
}

pub fn service_status() -> report_status_request::Status {
    report_status_request::Status::Service(ServiceStatus {
        state: "available".into(),
        ..Default::default()
    })
}

pub fn binding_status() -> report_status_request::Status {
    report_status_request::Status::Binding(BindingStatus {
        phase: "ready".into(),
        ..Default::default()
    })
}

pub async fn keep_alive(client: &Client, vpc: &str) -> Result<(), ClientError> {
    client
        .call(|mut s| {
            let req = KeepAliveRequest { vpc_id: vpc.into() };
            async move { s.catalog().keep_alive(req).await }
        })
        .await
        .map(|_| ())
}

/// `result` is PERMISSION_DENIED and its message holds every one of `says`.
#[track_caller]
pub fn denied<T: std::fmt::Debug>(result: Result<T, ClientError>, says: &[&str]) {
    match result {
        Err(e) if e.code() == Code::PermissionDenied => {
            let message = e.to_string();
            for s in says {
                assert!(message.contains(s), "{message:?} should say {s:?}");
            }
        }
        other => panic!("expected PERMISSION_DENIED saying {says:?}, got {other:?}"),
    }
}

pub struct Fixture {
    pub pki: TestPki,
    pub cluster: ProcessCluster,
    pub address: String,
    /// The trust domain the controller's identities live in.
    pub domain: String,
}

impl Fixture {
    /// A controller in the default trust domain, `pld`.
    pub async fn start() -> anyhow::Result<Fixture> {
        Fixture::start_in(None).await
    }

    /// A controller whose config names trust domain `domain` (none: the default), holding a
    /// certificate in it, with an admin client of that domain.
    pub async fn start_in(domain: Option<&str>) -> anyhow::Result<Fixture> {
        let pki = TestPki::new("cluster")?;
        let name = domain.unwrap_or("pld");
        let node = pki.issue("controller-1", &[&format!("spiffe://{name}/controller/1")])?;
        let mut cluster = ProcessCluster::unstarted(pld(), 1)?;
        let setting = domain.map_or(String::new(), |d| format!("trust_domain = {d:?}\n"));
        cluster.set_config(1, &format!("{setting}{}", tls_table(&node)))?;
        cluster.spawn(1)?;
        cluster.set_client_tls(Some(
            pki.issue("admin", &[&format!("spiffe://{name}/admin/root")])?
                .load()?,
        ));
        if let Err(e) = cluster.wait_leader(Duration::from_secs(30)).await {
            anyhow::bail!("{e}; the controller said:\n{}", cluster.log(1));
        }
        let address = cluster.address(1);
        Ok(Fixture {
            pki,
            cluster,
            address,
            domain: name.to_string(),
        })
    }

    pub fn files(&self, who: &str, identities: &[&str]) -> anyhow::Result<TlsFiles> {
        self.pki.issue(who, identities)
    }

    pub fn client(&self, who: &str, identities: &[&str]) -> anyhow::Result<Client> {
        let tls: Tls = self.files(who, identities)?.load()?;
        Ok(
            Client::connect(std::slice::from_ref(&self.address), Some(&tls))?
                .with_deadline(Duration::from_secs(10)),
        )
    }
}
