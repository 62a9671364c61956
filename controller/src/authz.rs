//! Who is calling, read from the client certificate, and which calls each kind of caller may
//! make.
//!
//! With mutual TLS every caller presents a certificate the cluster's CA signed, and its URI SAN
//! says who it is, SPIFFE-style, in the cluster's trust domain (`trust_domain`, `pld` unless
//! the config names another; shown as `pld` below):
//!
//! | URI SAN                                   | may                                              |
//! |-------------------------------------------|--------------------------------------------------|
//! | `spiffe://pld/controller[/ID]`            | raft (as node ID only), join, all an admin may   |
//! | `spiffe://pld/admin/NAME`                 | everything: membership, snapshots, any object    |
//! | `spiffe://pld/operator/NAME`              | read everything; write and delete services and bindings |
//! | `spiffe://pld/agent/ACCOUNT/VPC`          | read services and its VPC's own objects; change its own VPC's agent record, services, bindings, status and lease |
//!
//! What an agent may read or change depends on the catalog's state (whose service is this?),
//! so the API hands its [`Scope`] to [`pld_core::access`]: the state machine enforces writes,
//! and reads are filtered against the catalog they read.
//!
//! Without TLS nobody can be told apart: every caller may do everything, as with etcd or Consul
//! before auth is turned on. So a node serves without TLS only when its config says
//! `insecure = true`, and then says so at every start and in `pld_insecure`.

use std::fmt;
use std::sync::Arc;

use pld_core::command::Scope;
use pld_proto::v1::Kind;
use serde::Deserialize;
use tonic::{Request, Status};
use x509_parser::extensions::GeneralName;

/// The SPIFFE trust domain pld identities live in unless a config names another.
pub const DEFAULT_TRUST_DOMAIN: &str = "pld";

/// A SPIFFE trust domain: the host part of `spiffe://DOMAIN/...`. Certificates naming another
/// domain are not pld identities here, so two clusters sharing a CA can still be told apart.
/// Held as its URI prefix, which every request's certificate is matched against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustDomain {
    prefix: Arc<str>,
}

impl TrustDomain {
    /// Checks `name` against the SPIFFE ID standard (section 2.1): lowercase letters, digits,
    /// dots, dashes and underscores, at most 255 bytes.
    ///
    /// # Errors
    /// Saying which rule `name` breaks.
    pub fn new(name: &str) -> Result<TrustDomain, String> {
        if name.is_empty() {
            return Err("a trust domain must not be empty".into());
        }
        if name.len() > 255 {
            return Err(format!(
                "trust domain {name:?} is {} bytes long; at most 255",
                name.len()
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
        {
            return Err(format!(
                "trust domain {name:?} holds {c:?}; SPIFFE allows only lowercase letters, \
                 digits, '.', '-' and '_'"
            ));
        }
        Ok(TrustDomain {
            prefix: format!("spiffe://{name}/").into(),
        })
    }

    /// `spiffe://DOMAIN/`, the start of every identity URI in this domain.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        self.prefix
            .strip_prefix("spiffe://")
            .and_then(|p| p.strip_suffix('/'))
            .unwrap_or(&self.prefix)
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        TrustDomain {
            prefix: format!("spiffe://{DEFAULT_TRUST_DOMAIN}/").into(),
        }
    }
}

impl TryFrom<String> for TrustDomain {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        TrustDomain::new(&name)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a caller is, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
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

/// A caller: its role, in the trust domain its certificate named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The trust domain of the certificate's URI.
    pub domain: TrustDomain,
    /// What the caller is.
    pub role: Role,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.domain.prefix();
        match &self.role {
            Role::Controller(n) if n.is_empty() => write!(f, "{prefix}controller"),
            Role::Controller(n) => write!(f, "{prefix}controller/{n}"),
            Role::Admin(n) => write!(f, "{prefix}admin/{n}"),
            Role::Operator(n) => write!(f, "{prefix}operator/{n}"),
            Role::Agent(s) => write!(f, "{prefix}agent/{}/{}", s.account_id, s.vpc_id),
            Role::Unauthenticated => f.write_str("an unauthenticated caller"),
        }
    }
}

impl Identity {
    /// Parses a pld identity URI in `domain`.
    ///
    /// # Errors
    /// Saying what is wrong with it: another trust domain, an unknown role, a missing name, a
    /// malformed account or VPC.
    pub fn parse(uri: &str, domain: &TrustDomain) -> Result<Identity, String> {
        let prefix = domain.prefix();
        let rest = uri
            .strip_prefix(prefix)
            .ok_or_else(|| format!("{uri:?} does not start with {prefix}"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let named = |role: &str| match parts.as_slice() {
            [_, name] if !name.is_empty() => Ok(name.to_string()),
            _ => Err(format!("{uri:?}: expected {prefix}{role}/NAME")),
        };
        let role = match parts.first().copied() {
            Some("controller") if parts.len() == 1 => Role::Controller(String::new()),
            Some("controller") => named("controller").map(Role::Controller)?,
            Some("admin") => named("admin").map(Role::Admin)?,
            Some("operator") => named("operator").map(Role::Operator)?,
            Some("agent") => match parts.as_slice() {
                [_, account, vpc] => {
                    pld_core::validate::account_id("account", account)
                        .and_then(|()| pld_core::validate::vpc_id("vpc", vpc))
                        .map_err(|e| format!("{uri:?}: {e}"))?;
                    Role::Agent(Scope {
                        account_id: account.to_string(),
                        vpc_id: vpc.to_string(),
                    })
                }
                _ => return Err(format!("{uri:?}: expected {prefix}agent/ACCOUNT/VPC")),
            },
            _ => {
                return Err(format!(
                    "{uri:?}: the role must be controller, admin, operator or agent"
                ))
            }
        };
        Ok(Identity {
            domain: domain.clone(),
            role,
        })
    }

    /// The identity a DER certificate names in its URI SANs, in `domain`. URIs of other trust
    /// domains are not looked at: a certificate may carry identities for other systems.
    ///
    /// # Errors
    /// When the certificate does not parse, names no pld identity in `domain`, or names more
    /// than one.
    pub fn from_certificate(der: &[u8], domain: &TrustDomain) -> Result<Identity, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the client certificate does not parse: {e}"))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| format!("the client certificate's SAN extension does not parse: {e}"))?;
        let prefix = domain.prefix();
        let uris: Vec<&str> = san
            .iter()
            .flat_map(|s| s.value.general_names.iter())
            .filter_map(|n| match n {
                GeneralName::URI(u) if u.starts_with(prefix) => Some(*u),
                _ => None,
            })
            .collect();
        match uris.as_slice() {
            [uri] => Identity::parse(uri, domain),
            [] => Err(format!(
                "the client certificate names no pld identity in trust domain {domain} (a URI \
                 SAN such as {prefix}operator/NAME)"
            )),
            _ => Err(format!(
                "the client certificate names {} pld identities ({}); it must name one",
                uris.len(),
                uris.join(", ")
            )),
        }
    }

    /// The caller when the server does not tell callers apart (no TLS).
    pub fn unauthenticated() -> Identity {
        Identity {
            domain: TrustDomain::default(),
            role: Role::Unauthenticated,
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
        match self.role {
            Role::Controller(_) | Role::Admin(_) | Role::Unauthenticated => Ok(()),
            _ => Err(self.deny(action, "only an admin certificate")),
        }
    }

    /// Raft messages.
    ///
    /// # Errors
    /// PERMISSION_DENIED unless a controller calls.
    pub fn raft_peer(&self) -> Result<(), Status> {
        match self.role {
            Role::Controller(_) | Role::Unauthenticated => Ok(()),
            _ => Err(self.deny("send raft messages", "only a controller certificate")),
        }
    }

    /// The raft id a controller certificate names (`spiffe://pld/controller/2`): that node
    /// sends raft messages only as itself. `None` for a certificate naming no number
    /// (`spiffe://pld/controller`, `.../controller/east`), which may speak as any member, and
    /// for every other identity.
    pub fn controller_id(&self) -> Option<u64> {
        match &self.role {
            Role::Controller(name) => name.parse().ok(),
            _ => None,
        }
    }

    /// What reads the whole catalog at once (`pld plan`): anyone but an agent, whose reads are
    /// confined to its VPC ([`Self::read_scope`]).
    ///
    /// # Errors
    /// PERMISSION_DENIED for an agent.
    pub fn reader_of_everything(&self, action: &str) -> Result<(), Status> {
        match self.role {
            Role::Agent(_) => Err(self.deny(action, "an operator or an admin")),
            _ => Ok(()),
        }
    }

    /// The VPC whose view of the catalog this caller reads ([`pld_core::access::may_read`]):
    /// an agent's. `None` for everyone else, who reads everything.
    pub fn read_scope(&self) -> Option<&Scope> {
        match &self.role {
            Role::Agent(scope) => Some(scope),
            _ => None,
        }
    }

    /// Reading object `key` of `kind` from `catalog`, as [`Self::read_scope`] allows.
    ///
    /// # Errors
    /// PERMISSION_DENIED for an agent asking for another VPC's object. It is decided from the
    /// key alone, so the answer does not tell whether the object exists.
    pub fn read(
        &self,
        catalog: &pld_core::catalog::Catalog,
        kind: Kind,
        key: &str,
    ) -> Result<(), Status> {
        match self.read_scope() {
            Some(scope) if !pld_core::access::may_read(catalog, scope, kind, key) => Err(self
                .deny(
                    &format!("read {} {key:?}", pld_core::catalog::kind_name(kind)),
                    "only its own VPC's agent, an operator or an admin",
                )),
            _ => Ok(()),
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
        match &self.role {
            Role::Agent(scope) => Ok(Some(scope.clone())),
            Role::Operator(_) if kind == Kind::Agent => {
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
        match &self.role {
            Role::Agent(scope) => Ok(Some(scope.clone())),
            Role::Operator(_) => Err(self.deny(action, "only an agent or an admin")),
            _ => Ok(None),
        }
    }
}

/// Tells callers apart, or does not (without TLS).
#[derive(Debug, Clone)]
pub struct Authz {
    enforce: bool,
    domain: TrustDomain,
}

impl Authz {
    /// `enforce`: the server requires client certificates (mutual TLS), naming identities in
    /// `domain`.
    pub fn new(enforce: bool, domain: TrustDomain) -> Self {
        Authz { enforce, domain }
    }

    /// Who sent `req`.
    ///
    /// # Errors
    /// UNAUTHENTICATED when TLS is on but no certificate arrived; PERMISSION_DENIED when the
    /// certificate names no valid pld identity, saying why.
    pub fn caller<T>(&self, req: &Request<T>) -> Result<Identity, Status> {
        if !self.enforce {
            return Ok(Identity::unauthenticated());
        }
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate"))?;
        Identity::from_certificate(leaf.as_ref(), &self.domain)
            .map_err(|e| Status::permission_denied(format!("permission denied: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pld(uri: &str) -> Result<Role, String> {
        Identity::parse(uri, &TrustDomain::default()).map(|i| i.role)
    }

    fn with(role: Role) -> Identity {
        Identity {
            domain: TrustDomain::default(),
            role,
        }
    }

    #[test]
    fn parses_each_role() {
        assert_eq!(
            pld("spiffe://pld/controller"),
            Ok(Role::Controller(String::new()))
        );
        assert_eq!(
            pld("spiffe://pld/controller/2"),
            Ok(Role::Controller("2".into()))
        );
        assert_eq!(
            pld("spiffe://pld/admin/alice"),
            Ok(Role::Admin("alice".into()))
        );
        assert_eq!(
            pld("spiffe://pld/operator/ci"),
            Ok(Role::Operator("ci".into()))
        );
        assert_eq!(
            pld("spiffe://pld/agent/111111111111/vpc-0123456789abcdef0"),
            Ok(Role::Agent(Scope {
                account_id: "111111111111".into(),
                vpc_id: "vpc-0123456789abcdef0".into(),
            }))
        );
        let shown = Identity::parse(
            "spiffe://pld/agent/111111111111/vpc-01234567",
            &TrustDomain::default(),
        )
        .map(|i| i.to_string());
        assert_eq!(
            shown.as_deref(),
            Ok("spiffe://pld/agent/111111111111/vpc-01234567")
        );
    }

    #[test]
    fn refuses_what_is_not_an_identity() {
        for (uri, says) in [
            (
                "spiffe://other/admin/x",
                "does not start with spiffe://pld/",
            ),
            ("spiffe://pld/root/x", "the role must be"),
            ("spiffe://pld/admin", "admin/NAME"),
            ("spiffe://pld/admin/", "admin/NAME"),
            ("spiffe://pld/operator/a/b", "operator/NAME"),
            ("spiffe://pld/agent/111111111111", "agent/ACCOUNT/VPC"),
            ("spiffe://pld/agent/1111/vpc-01234567", "12-digit"),
            ("spiffe://pld/agent/111111111111/subnet-1", "vpc"),
        ] {
            let err = pld(uri).expect_err(uri);
            assert!(err.contains(says), "{uri}: {err}");
        }
    }

    #[test]
    fn identities_live_in_the_configured_trust_domain() {
        let prod = TrustDomain::new("prod.example.org").expect("a valid domain");
        let admin = Identity::parse("spiffe://prod.example.org/admin/alice", &prod)
            .expect("an admin of prod");
        assert_eq!(admin.role, Role::Admin("alice".into()));
        assert_eq!(admin.to_string(), "spiffe://prod.example.org/admin/alice");
        // The default domain's identities mean nothing in another cluster's domain.
        let err = Identity::parse("spiffe://pld/admin/alice", &prod).expect_err("other domain");
        assert!(
            err.contains("does not start with spiffe://prod.example.org/"),
            "{err}"
        );
        // Nor does a domain that merely starts with the configured one.
        assert!(Identity::parse("spiffe://prod.example.org.evil/admin/x", &prod).is_err());
    }

    #[test]
    fn a_trust_domain_follows_the_spiffe_rules() {
        for ok in ["pld", "prod.example.org", "a-b_c.9"] {
            assert!(TrustDomain::new(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("", "must not be empty"),
            ("Prod", "'P'"),
            ("pld/x", "'/'"),
            ("pl d", "' '"),
            ("ex:8443", "':'"),
        ] {
            let err = TrustDomain::new(bad).expect_err(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        let long = "a".repeat(256);
        assert!(TrustDomain::new(&long)
            .expect_err("too long")
            .contains("at most 255"));
    }

    #[test]
    fn operators_manage_services_and_bindings_but_not_the_cluster() {
        let op = with(Role::Operator("ci".into()));
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
        assert_eq!(op.read_scope(), None, "operators read everything");
        let admin = with(Role::Admin("root".into()));
        assert!(admin.admin("add members").is_ok());
        assert!(admin.raft_peer().is_err(), "admins do not speak raft");
        assert!(with(Role::Controller(String::new())).raft_peer().is_ok());
    }

    #[test]
    fn a_numbered_controller_certificate_speaks_only_as_its_node() {
        assert_eq!(with(Role::Controller("2".into())).controller_id(), Some(2));
        assert_eq!(with(Role::Controller(String::new())).controller_id(), None);
        assert_eq!(with(Role::Controller("east".into())).controller_id(), None);
        assert_eq!(with(Role::Admin("2".into())).controller_id(), None);
    }
}
