//! Who is calling, read from the client certificate, and which calls each kind of caller may
//! make.
//!
//! With mutual TLS every caller presents a certificate the cluster's CA signed, and its URI SAN
//! says who it is, SPIFFE-style:
//!
//! | URI SAN                                   | may                                              |
//! |-------------------------------------------|--------------------------------------------------|
//! | `spiffe://pld/controller[/ID]`            | raft (as node ID only), join, all an admin may   |
//! | `spiffe://pld/admin/NAME`                 | everything: membership, snapshots, any object    |
//! | `spiffe://pld/operator/NAME`              | read; write and delete services and bindings     |
//! | `spiffe://pld/agent/ACCOUNT/VPC`          | read; its own VPC's agent record, services, bindings, status and lease |
//!
//! Everyone with an identity may read (get, list, watch, member and node status). What an agent
//! may change depends on the catalog's state (whose service is this?), so the API only marks
//! its commands with a [`Scope`] and the state machine enforces it ([`pld_core::access`]).
//!
//! Without TLS nobody can be told apart: every caller may do everything, as with etcd or Consul
//! before auth is turned on. So a node serves without TLS only when its config says
//! `insecure = true`, and then says so at every start and in `pld_insecure`.

use std::fmt;

use pld_core::command::Scope;
use pld_proto::v1::Kind;
use tonic::{Request, Status};
use x509_parser::extensions::GeneralName;

/// Every pld identity URI starts with this.
pub const IDENTITY_PREFIX: &str = "spiffe://pld/";

/// A caller, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A controller node.
    Controller(String),
    /// An administrator.
    Admin(String),
    /// Someone who manages services and bindings.
    Operator(String),
    /// The agent of one VPC.
    Agent(Scope),
    /// Anyone at all: the controller serves without TLS.
    Unauthenticated,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Controller(n) if n.is_empty() => write!(f, "{IDENTITY_PREFIX}controller"),
            Identity::Controller(n) => write!(f, "{IDENTITY_PREFIX}controller/{n}"),
            Identity::Admin(n) => write!(f, "{IDENTITY_PREFIX}admin/{n}"),
            Identity::Operator(n) => write!(f, "{IDENTITY_PREFIX}operator/{n}"),
            Identity::Agent(s) => write!(f, "{IDENTITY_PREFIX}agent/{}/{}", s.account_id, s.vpc_id),
            Identity::Unauthenticated => f.write_str("an unauthenticated caller"),
        }
    }
}

impl Identity {
    /// Parses a pld identity URI.
    ///
    /// # Errors
    /// Saying what is wrong with it: an unknown role, a missing name, a malformed account or VPC.
    pub fn parse(uri: &str) -> Result<Identity, String> {
        let rest = uri
            .strip_prefix(IDENTITY_PREFIX)
            .ok_or_else(|| format!("{uri:?} does not start with {IDENTITY_PREFIX}"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let named = |role: &str| match parts.as_slice() {
            [_, name] if !name.is_empty() => Ok(name.to_string()),
            _ => Err(format!("{uri:?}: expected {IDENTITY_PREFIX}{role}/NAME")),
        };
        match parts.first().copied() {
            Some("controller") if parts.len() == 1 => Ok(Identity::Controller(String::new())),
            Some("controller") => named("controller").map(Identity::Controller),
            Some("admin") => named("admin").map(Identity::Admin),
            Some("operator") => named("operator").map(Identity::Operator),
            Some("agent") => match parts.as_slice() {
                [_, account, vpc] => {
                    pld_core::validate::account_id("account", account)
                        .and_then(|()| pld_core::validate::vpc_id("vpc", vpc))
                        .map_err(|e| format!("{uri:?}: {e}"))?;
                    Ok(Identity::Agent(Scope {
                        account_id: account.to_string(),
                        vpc_id: vpc.to_string(),
                    }))
                }
                _ => Err(format!(
                    "{uri:?}: expected {IDENTITY_PREFIX}agent/ACCOUNT/VPC"
                )),
            },
            _ => Err(format!(
                "{uri:?}: the role must be controller, admin, operator or agent"
            )),
        }
    }

    /// The identity a DER certificate names in its URI SANs.
    ///
    /// # Errors
    /// When the certificate does not parse, names no pld identity, or names more than one.
    pub fn from_certificate(der: &[u8]) -> Result<Identity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the client certificate does not parse: {e}"))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| format!("the client certificate's SAN extension does not parse: {e}"))?;
        let uris: Vec<&str> = san
            .iter()
            .flat_map(|s| s.value.general_names.iter())
            .filter_map(|n| match n {
                GeneralName::URI(u) if u.starts_with(IDENTITY_PREFIX) => Some(*u),
                _ => None,
            })
            .collect();
        match uris.as_slice() {
            [uri] => Identity::parse(uri),
            [] => Err(format!(
                "the client certificate names no pld identity (a URI SAN such as \
                 {IDENTITY_PREFIX}operator/NAME)"
            )),
            _ => Err(format!(
                "the client certificate names {} pld identities ({}); it must name one",
                uris.len(),
                uris.join(", ")
            )),
        }
    }

    fn deny(&self, action: &str, who_may: &str) -> Status {
        tracing::info!(caller = %self, action, "permission denied");
        Status::permission_denied(format!(
            "permission denied: {self} may not {action}; {who_may} may"
        ))
    }

    /// Membership changes, snapshot save and restore.
    ///
    /// # Errors
    /// PERMISSION_DENIED unless an admin or a controller calls.
    pub fn admin(&self, action: &str) -> Result<(), Status> {
        match self {
            Identity::Controller(_) | Identity::Admin(_) | Identity::Unauthenticated => Ok(()),
            _ => Err(self.deny(action, "only an admin certificate")),
        }
    }

    /// Raft messages.
    ///
    /// # Errors
    /// PERMISSION_DENIED unless a controller calls.
    pub fn raft_peer(&self) -> Result<(), Status> {
        match self {
            Identity::Controller(_) | Identity::Unauthenticated => Ok(()),
            _ => Err(self.deny("send raft messages", "only a controller certificate")),
        }
    }

    /// The raft id a controller certificate names (`spiffe://pld/controller/2`): that node
    /// sends raft messages only as itself. `None` for a certificate naming no number
    /// (`spiffe://pld/controller`, `.../controller/east`), which may speak as any member, and
    /// for every other identity.
    pub fn controller_id(&self) -> Option<u64> {
        match self {
            Identity::Controller(name) => name.parse().ok(),
            _ => None,
        }
    }

    /// Put or delete an object of `kind`. Returns the scope an agent's command is confined to.
    ///
    /// # Errors
    /// PERMISSION_DENIED for an operator writing agent records.
    /// `action` describes the call for the refusal; it is only formatted when there is one, as
    /// this runs on every write.
    pub fn write(
        &self,
        kind: Kind,
        action: impl FnOnce() -> String,
    ) -> Result<Option<Scope>, Status> {
        match self {
            Identity::Agent(scope) => Ok(Some(scope.clone())),
            Identity::Operator(_) if kind == Kind::Agent => {
                Err(self.deny(&action(), "only the VPC's agent or an admin"))
            }
            _ => Ok(None),
        }
    }

    /// Status reports and lease renewals: what agents write about what they did.
    ///
    /// # Errors
    /// PERMISSION_DENIED for an operator.
    pub fn report(&self, action: &str) -> Result<Option<Scope>, Status> {
        match self {
            Identity::Agent(scope) => Ok(Some(scope.clone())),
            Identity::Operator(_) => Err(self.deny(action, "only an agent or an admin")),
            _ => Ok(None),
        }
    }
}

/// Tells callers apart, or does not (without TLS).
#[derive(Debug, Clone, Copy)]
pub struct Authz {
    enforce: bool,
}

impl Authz {
    /// `enforce`: the server requires client certificates (mutual TLS).
    pub fn new(enforce: bool) -> Self {
        Authz { enforce }
    }

    /// Who sent `req`.
    ///
    /// # Errors
    /// UNAUTHENTICATED when TLS is on but no certificate arrived; PERMISSION_DENIED when the
    /// certificate names no valid pld identity, saying why.
    pub fn caller<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        if !self.enforce {
            return Ok(Identity::Unauthenticated);
        }
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        Identity::from_certificate(leaf.as_ref())
            .map_err(|e| Status::permission_denied(format!("permission denied: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_role() {
        assert_eq!(
            Identity::parse("spiffe://pld/controller"),
            Ok(Identity::Controller(String::new()))
        );
        assert_eq!(
            Identity::parse("spiffe://pld/controller/2"),
            Ok(Identity::Controller("2".into()))
        );
        assert_eq!(
            Identity::parse("spiffe://pld/admin/alice"),
            Ok(Identity::Admin("alice".into()))
        );
        assert_eq!(
            Identity::parse("spiffe://pld/operator/ci"),
            Ok(Identity::Operator("ci".into()))
        );
        assert_eq!(
            Identity::parse("spiffe://pld/agent/111111111111/vpc-0123456789abcdef0"),
            Ok(Identity::Agent(Scope {
                account_id: "111111111111".into(),
                vpc_id: "vpc-0123456789abcdef0".into(),
            }))
        );
        let shown =
            Identity::parse("spiffe://pld/agent/111111111111/vpc-01234567").map(|i| i.to_string());
        assert_eq!(
            shown.as_deref(),
            Ok("spiffe://pld/agent/111111111111/vpc-01234567")
        );
    }

    #[test]
    fn refuses_what_is_not_an_identity() {
        for (uri, says) in [
            ("spiffe://other/admin/x", "does not start with"),
            ("spiffe://pld/root/x", "the role must be"),
            ("spiffe://pld/admin", "admin/NAME"),
            ("spiffe://pld/admin/", "admin/NAME"),
            ("spiffe://pld/operator/a/b", "operator/NAME"),
            ("spiffe://pld/agent/111111111111", "agent/ACCOUNT/VPC"),
            ("spiffe://pld/agent/1111/vpc-01234567", "12-digit"),
            ("spiffe://pld/agent/111111111111/subnet-1", "vpc"),
        ] {
            let err = Identity::parse(uri).expect_err(uri);
            assert!(err.contains(says), "{uri}: {err}");
        }
    }

    #[test]
    fn operators_manage_services_and_bindings_but_not_the_cluster() {
        let op = Identity::Operator("ci".into());
        assert_eq!(op.write(Kind::Service, || "put".into()).ok(), Some(None));
        assert_eq!(op.write(Kind::Binding, || "put".into()).ok(), Some(None));
        let denied = op
            .write(Kind::Agent, || "put an agent".into())
            .expect_err("agent record");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied
            .message()
            .contains("spiffe://pld/operator/ci may not put an agent"));
        assert!(op.admin("add members").is_err());
        assert!(op.raft_peer().is_err());
        assert!(op.report("report status").is_err());
        let admin = Identity::Admin("root".into());
        assert!(admin.admin("add members").is_ok());
        assert!(admin.raft_peer().is_err(), "admins do not speak raft");
        assert!(Identity::Controller(String::new()).raft_peer().is_ok());
    }

    #[test]
    fn a_numbered_controller_certificate_speaks_only_as_its_node() {
        assert_eq!(Identity::Controller("2".into()).controller_id(), Some(2));
        assert_eq!(Identity::Controller(String::new()).controller_id(), None);
        assert_eq!(Identity::Controller("east".into()).controller_id(), None);
        assert_eq!(Identity::Admin("2".into()).controller_id(), None);
    }
}
