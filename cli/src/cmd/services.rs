//! `pld services register|move|offer|withdraw|list|get|deregister`.

mod regions;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use pld_core::Phase;
use pld_proto::v1::{object, Acceptance, HealthCheck, Kind, ListRequest, Object, Service};
use serde::Deserialize;

use super::Context;
use crate::output::{acceptance_name, out, print_json, print_pending, service_json, table, Format};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create or replace a service this VPC offers.
    Register(RegisterArgs),
    /// List services.
    List {
        /// Only services of this provider VPC.
        #[arg(long)]
        vpc: Option<String>,
        /// Only names starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only services in this state (registered, pending, available, failed...).
        #[arg(long)]
        state: Option<String>,
    },
    /// Move a live service to another load balancer (and VPC), make-before-break: its
    /// consumers move to a new endpoint service without a dropped connection. The rest of the
    /// spec is kept; the change is refused if the service changed since it was read.
    Move(MoveArgs),
    /// Offer a service to consumers in other regions of its partition too (cross-region
    /// PrivateLink); the rest of the spec is kept, and the change refused if the service
    /// changed since it was read.
    Offer(regions::RegionsArgs),
    /// Stop offering a service to other regions (their consumers' bindings then fail).
    Withdraw(regions::RegionsArgs),
    /// Show one service.
    Get { name: String },
    /// Remove a service from the catalog; its agent then deletes the endpoint service.
    Deregister {
        name: String,
        /// Only if the service's mod revision is still this.
        #[arg(long)]
        expect_revision: Option<u64>,
    },
}

#[derive(clap::Args)]
pub struct RegisterArgs {
    /// Service name, a DNS label (consumers reach it as NAME.<zone>).
    #[arg(required_unless_present = "file")]
    name: Option<String>,
    /// Read the service from a TOML file (keys: name, vpc, load_balancer, ports, acceptance,
    /// allow, description, regions, and a [health_check] table of protocol, path, matcher)
    /// instead of flags.
    #[arg(short = 'f', long, conflicts_with_all = ["name", "vpc", "load_balancer", "port", "allow", "description", "region", "health_check_protocol", "health_check_path", "health_check_matcher"])]
    file: Option<PathBuf>,
    /// Provider VPC id.
    #[arg(long, required_unless_present = "file")]
    vpc: Option<String>,
    /// ARN of the NLB or GWLB in front of the service, or of its ALB: the provider's agent
    /// then builds an NLB in front of the ALB, which it never changes.
    #[arg(long, required_unless_present = "file")]
    load_balancer: Option<String>,
    /// Port the service listens on; repeat for several.
    #[arg(long, required_unless_present = "file")]
    port: Vec<u32>,
    /// How connection requests are accepted.
    #[arg(long, value_enum)]
    acceptance: Option<AcceptanceArg>,
    /// Principal allowed to connect (IAM ARN or "*"); repeat for several.
    #[arg(long)]
    allow: Vec<String>,
    #[arg(long)]
    description: Option<String>,
    /// Another region of the load balancer's partition whose consumers may connect too
    /// (cross-region PrivateLink; the provider's agent needs vpce:AllowMultiRegion); repeat
    /// for several.
    #[arg(long)]
    region: Vec<String>,
    /// For a service on an ALB: the protocol of the health checks the NLB in front sends it
    /// (default: that of the ALB's listener on each port).
    #[arg(long, value_enum)]
    health_check_protocol: Option<HealthCheckProtocolArg>,
    /// For a service on an ALB: the path its health checks ask for (default "/").
    #[arg(long)]
    health_check_path: Option<String>,
    /// For a service on an ALB: the HTTP codes of a healthy answer, e.g. "200" or "200-299"
    /// (default "200-399").
    #[arg(long)]
    health_check_matcher: Option<String>,
    /// Compare-and-set: only if the current mod revision is this (0: only create).
    #[arg(long)]
    expect_revision: Option<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, clap::ValueEnum)]
pub enum HealthCheckProtocolArg {
    #[serde(rename = "HTTP")]
    #[value(name = "HTTP", alias = "http")]
    Http,
    #[serde(rename = "HTTPS")]
    #[value(name = "HTTPS", alias = "https")]
    Https,
}

/// `[health_check]` of a `-f` file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HealthCheckFile {
    #[serde(default)]
    protocol: Option<HealthCheckProtocolArg>,
    #[serde(default)]
    path: String,
    #[serde(default)]
    matcher: String,
}

/// The catalog's health check, when any part of one is given.
fn health_check(
    protocol: Option<HealthCheckProtocolArg>,
    path: String,
    matcher: String,
) -> Option<Box<HealthCheck>> {
    use pld_proto::v1::HealthCheckProtocol as P;
    if protocol.is_none() && path.is_empty() && matcher.is_empty() {
        return None;
    }
    Some(Box::new(HealthCheck {
        protocol: match protocol {
            None => P::Unspecified,
            Some(HealthCheckProtocolArg::Http) => P::Http,
            Some(HealthCheckProtocolArg::Https) => P::Https,
        } as i32,
        path,
        matcher,
    }))
}

#[derive(clap::Args)]
pub struct MoveArgs {
    #[command(flatten)]
    to: MoveTo,
    /// Wait until every consumer is on the new endpoint service and the old one is deleted,
    /// showing each change.
    #[arg(long)]
    wait: bool,
}

/// Where `pld services move` (and `pld plan services move`) puts a service.
#[derive(clap::Args)]
pub struct MoveTo {
    name: String,
    /// ARN of the load balancer the service moves to (an NLB, GWLB or ALB).
    #[arg(long)]
    load_balancer: String,
    /// The VPC of that load balancer, when it is not the service's VPC now.
    #[arg(long)]
    vpc: Option<String>,
}

/// A service moved as `to` says, ready to put: the service as the catalog holds it with its
/// new load balancer (and VPC), the revision it was read at, and whether it is there already.
///
/// # Errors
/// The service cannot be read, or the moved service is not valid.
pub(super) async fn move_spec(ctx: &Context, to: &MoveTo) -> anyhow::Result<(Service, u64, bool)> {
    let found = crate::catalog::get(ctx, Kind::Service, &to.name).await?;
    let mut service = as_service(Some(found)).context("the controller returned no service")?;
    let read_at = service.meta.map_or(0, |m| m.mod_revision);
    let unchanged = service.load_balancer_arn == to.load_balancer
        && to.vpc.as_ref().is_none_or(|v| *v == service.vpc_id);
    service.load_balancer_arn = to.load_balancer.clone();
    if let Some(vpc) = &to.vpc {
        service.vpc_id = vpc.clone();
    }
    service.meta = None;
    service.status = None;
    pld_core::validate::service(&service)?;
    Ok((service, read_at, unchanged))
}

#[derive(Clone, Copy, Debug, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AcceptanceArg {
    Auto,
    Manual,
}

impl From<AcceptanceArg> for Acceptance {
    fn from(a: AcceptanceArg) -> Self {
        match a {
            AcceptanceArg::Auto => Acceptance::Auto,
            AcceptanceArg::Manual => Acceptance::Manual,
        }
    }
}

/// A service as written in a `-f` file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    vpc: String,
    load_balancer: String,
    ports: Vec<u32>,
    #[serde(default)]
    acceptance: Option<AcceptanceArg>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    health_check: Option<HealthCheckFile>,
}

pub(crate) fn service_from_args(args: RegisterArgs) -> anyhow::Result<(Service, Option<u64>)> {
    let expect = args.expect_revision;
    let service = if let Some(path) = args.file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // A file that does not say a service is bad input (exit 6), like a bad flag.
        let f: ServiceFile = toml::from_str(&text).map_err(|e| pld_core::validate::FieldError {
            field: path.display().to_string(),
            reason: e.message().to_string(),
        })?;
        Service {
            name: f.name,
            vpc_id: f.vpc,
            load_balancer_arn: f.load_balancer,
            ports: f.ports,
            acceptance: Acceptance::from(
                args.acceptance
                    .or(f.acceptance)
                    .unwrap_or(AcceptanceArg::Auto),
            ) as i32,
            allowed_principals: f.allow,
            description: f.description,
            regions: f.regions,
            health_check: f
                .health_check
                .and_then(|h| health_check(h.protocol, h.path, h.matcher)),
            ..Default::default()
        }
    } else {
        Service {
            name: args.name.unwrap_or_default(),
            vpc_id: args.vpc.unwrap_or_default(),
            load_balancer_arn: args.load_balancer.unwrap_or_default(),
            ports: args.port,
            acceptance: Acceptance::from(args.acceptance.unwrap_or(AcceptanceArg::Auto)) as i32,
            allowed_principals: args.allow,
            description: args.description.unwrap_or_default(),
            regions: args.region,
            health_check: health_check(
                args.health_check_protocol,
                args.health_check_path.unwrap_or_default(),
                args.health_check_matcher.unwrap_or_default(),
            ),
            ..Default::default()
        }
    };
    // Check locally first, so a typo is reported without a round trip.
    pld_core::validate::service(&service)?;
    Ok((service, expect))
}

/// The other regions a service is offered to, each with its state as the provider's agent
/// last reported it, and those it is still leaving.
fn print_regions(service: &Service) {
    let states = service
        .status
        .as_ref()
        .map(|st| st.regions.as_slice())
        .unwrap_or_default();
    let mut shown: Vec<String> = service
        .regions
        .iter()
        .map(|r| match states.iter().find(|s| &s.region == r) {
            Some(s) => format!("{r} ({})", s.state.to_ascii_lowercase()),
            None => format!("{r} (not reported yet)"),
        })
        .collect();
    shown.extend(
        states
            .iter()
            .filter(|s| !service.regions.contains(&s.region))
            .map(|s| format!("{} (leaving: {})", s.region, s.state.to_ascii_lowercase())),
    );
    if !shown.is_empty() {
        out!("regions:       {}", shown.join(", "));
    }
}

fn print_services(ctx: &Context, services: &[Service]) {
    match ctx.format {
        Format::Json => print_json(&serde_json::Value::Array(
            services.iter().map(service_json).collect(),
        )),
        Format::Table => table(
            &["NAME", "VPC", "PORTS", "ACCEPTANCE", "STATE", "REVISION"],
            &services
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.vpc_id.clone(),
                        s.ports
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        acceptance_name(s.acceptance).to_string(),
                        crate::catalog::service_state(s),
                        s.meta.map_or(0, |m| m.mod_revision).to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

fn as_service(o: Option<Object>) -> Option<Service> {
    match o?.object? {
        object::Object::Service(s) => Some(s),
        _ => None,
    }
}

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        Command::Register(args) => {
            let (service, expect) = service_from_args(args)?;
            let object = Object {
                object: Some(object::Object::Service(service)),
            };
            let r = client.put(object, expect).await?;
            print_services(ctx, &as_service(r.object).into_iter().collect::<Vec<_>>());
        }
        Command::Move(args) => move_service(ctx, args).await?,
        Command::Offer(args) => regions::run(ctx, regions::Change::Offer, args).await?,
        Command::Withdraw(args) => regions::run(ctx, regions::Change::Withdraw, args).await?,
        Command::List { vpc, prefix, state } => {
            let req = ListRequest {
                kind: Kind::Service as i32,
                prefix,
                vpc_id: vpc.unwrap_or_default(),
                ..Default::default()
            };
            let services: Vec<Service> =
                crate::catalog::services(crate::catalog::list(ctx, req).await?)
                    .into_iter()
                    .filter(|s| {
                        state
                            .as_ref()
                            .is_none_or(|st| &crate::catalog::service_state(s) == st)
                    })
                    .collect();
            print_services(ctx, &services);
        }
        Command::Get { name } => {
            let found = crate::catalog::get(ctx, Kind::Service, &name).await?;
            let service = as_service(Some(found)).context("the controller returned no service")?;
            match ctx.format {
                Format::Json => print_json(&service_json(&service)),
                Format::Table => {
                    print_services(ctx, std::slice::from_ref(&service));
                    out!("");
                    out!("load balancer: {}", service.load_balancer_arn);
                    if !service.allowed_principals.is_empty() {
                        out!("allowed:       {}", service.allowed_principals.join(", "));
                    }
                    print_regions(&service);
                    if let Some(st) = &service.status {
                        if !st.endpoint_service_name.is_empty() {
                            out!("endpoint svc:  {}", st.endpoint_service_name);
                        }
                        if !st.load_balancer_arns.is_empty()
                            && st.load_balancer_arns != [service.load_balancer_arn.clone()]
                        {
                            out!("on:            {}", st.load_balancer_arns.join(", "));
                        }
                        for (i, r) in st.retiring.iter().enumerate() {
                            let label = if i == 0 { "retiring:" } else { "" };
                            let cut = if r.grace_ends_unix_ms == 0 {
                                String::new()
                            } else {
                                format!(
                                    "; the rest are cut {}",
                                    crate::catalog::ago(r.grace_ends_unix_ms)
                                )
                            };
                            out!(
                                "{label:<15}{} on {} ({} consumer{} still connected{cut})",
                                r.endpoint_service_name,
                                r.load_balancer_arns.join(", "),
                                r.connections,
                                if r.connections == 1 { "" } else { "s" }
                            );
                        }
                        if let Some(front) = &st.alb_front {
                            print_front(front);
                        }
                        if !st.message.is_empty() {
                            out!("message:       {}", st.message);
                        }
                        print_pending(&st.pending, 15);
                    }
                }
            }
        }
        Command::Deregister {
            name,
            expect_revision,
        } => {
            let r = client.delete(Kind::Service, &name, expect_revision).await?;
            match ctx.format {
                Format::Json => {
                    print_json(&serde_json::json!({"deregistered": name, "revision": r.revision}))
                }
                Format::Table => out!("deregistered {name} at revision {}", r.revision),
            }
        }
    }
    Ok(())
}

/// The NLB pld built in front of a service's ALB, a line per port: its listener and group,
/// the ALB's health in the group, and the ALB's own targets behind that port.
fn print_front(front: &pld_proto::v1::AlbFront) {
    out!(
        "front:         {} ({})",
        front.load_balancer_arn,
        front.state
    );
    for p in &front.ports {
        let reason = if p.alb_health_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.alb_health_reason)
        };
        let behind = if p.alb_targets == 0 {
            String::new()
        } else {
            format!(
                "; the ALB's targets {}/{} healthy",
                p.alb_targets_healthy, p.alb_targets
            )
        };
        out!(
            "  port {:<9}listener {} -> {}: ALB {}{reason}{behind}",
            p.port,
            p.listener_arn,
            p.target_group_arn,
            if p.alb_health.is_empty() {
                "not registered"
            } else {
                p.alb_health.as_str()
            }
        );
    }
}

/// Reads the service, puts it back on the new load balancer (compare-and-set on what was
/// read), and with `--wait` follows its status until the move is over.
async fn move_service(ctx: &Context, args: MoveArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let (service, read_at, unchanged) = move_spec(ctx, &args.to).await?;
    let MoveTo {
        name,
        load_balancer,
        ..
    } = &args.to;
    if !unchanged {
        let object = Object {
            object: Some(object::Object::Service(service)),
        };
        client
            .put(object, Some(read_at))
            .await
            // A conflict: the service changed since it was read; the command is safe to run
            // again.
            .with_context(|| format!("moving {name} (read at revision {read_at})"))?;
    }
    if !args.wait {
        let service = current(ctx, name).await?;
        match ctx.format {
            Format::Json => print_json(&service_json(&service)),
            Format::Table if unchanged => {
                out!("{} is on {} already", name, load_balancer)
            }
            Format::Table => out!(
                "moving {} to {}; `pld services get {}` shows its consumers moving",
                name,
                load_balancer,
                name
            ),
        }
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + ctx.timeout.max(Duration::from_secs(300));
    let mut last = String::new();
    loop {
        let service = current(ctx, name).await?;
        let req = ListRequest {
            kind: Kind::Binding as i32,
            service: name.clone(),
            ..Default::default()
        };
        let bindings = crate::catalog::bindings(crate::catalog::list(ctx, req).await?);
        // Consumers still moving (a move to another VPC retires the old endpoint service in
        // that VPC's agent, which the service's status does not list).
        let moving = bindings
            .iter()
            .filter(|b| crate::catalog::binding_phase(b) == Phase::Migrating.as_str())
            .count();
        let mut line = move_line(&service);
        if moving > 0 {
            line.push_str(&format!(
                "; {moving} consumer{} moving",
                if moving == 1 { "" } else { "s" }
            ));
        }
        if line != last && ctx.format == Format::Table {
            out!("{line}");
        }
        last = line;
        if moving == 0 && moved(&service, load_balancer) {
            if ctx.format == Format::Json {
                print_json(&service_json(&service));
            }
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} has not finished moving in time: {last}",
            name
        );
        // Watching would need the revision to start from; a move takes seconds to minutes,
        // and a read per half second is nothing to the controller.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn current(ctx: &Context, name: &str) -> anyhow::Result<Service> {
    let found = crate::catalog::get(ctx, Kind::Service, name).await?;
    as_service(Some(found)).context("the controller returned no service")
}

/// The move is over: the service's endpoint service is on `load_balancer`, available, and
/// none it moved off is left.
fn moved(service: &Service, load_balancer: &str) -> bool {
    service.status.as_ref().is_some_and(|st| {
        st.load_balancer_arns == [load_balancer.to_string()]
            && st.state == "available"
            && st.retiring.is_empty()
    })
}

/// Where a move stands, in one line.
fn move_line(service: &Service) -> String {
    let st = service.status.clone().unwrap_or_default();
    let mut line = format!(
        "{:<10} on {}",
        if st.state.is_empty() {
            "pending"
        } else {
            &st.state
        },
        if st.load_balancer_arns.is_empty() {
            "(no endpoint service yet)".to_string()
        } else {
            st.load_balancer_arns.join(", ")
        }
    );
    for r in &st.retiring {
        line.push_str(&format!(
            "; retiring {} ({} consumer{} still connected)",
            r.endpoint_service_name,
            r.connections,
            if r.connections == 1 { "" } else { "s" }
        ));
    }
    if !st.message.is_empty() {
        line.push_str(&format!(" ({})", st.message));
    }
    line
}
