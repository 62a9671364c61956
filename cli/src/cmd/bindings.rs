//! `pld connect|disconnect|resolve`, `pld bindings list|get|accept|reject`.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use pld_core::Phase;
use pld_proto::v1::host_query_client::HostQueryClient;
use pld_proto::v1::{
    object, Agent, Approval, Binding, Kind, ListRequest, Object, ResolveRequest, WatchRequest,
};
use serde_json::json;

use super::Context;
use crate::catalog;
use crate::exit;
use crate::output::{
    approval_name, binding_json, migration_line, out, print_json, print_pending, table, Format,
};

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Catalog service, or a built-in: s3, dynamodb, aws-ssm, aws-sts, aws-ecr-api...
    service: String,
    /// The consumer VPC.
    #[arg(long)]
    vpc: String,
    /// Wait until the binding is ready, showing each phase.
    #[arg(long)]
    wait: bool,
    /// Create the binding even though the service is not in the catalog yet: it waits for
    /// the service to be registered.
    #[arg(long)]
    allow_missing: bool,
}

#[derive(clap::Args)]
pub struct DisconnectArgs {
    service: String,
    #[arg(long)]
    vpc: String,
}

#[derive(clap::Args)]
pub struct ResolveArgs {
    service: String,
    /// The VPC whose agent answers.
    #[arg(long)]
    vpc: String,
    /// Seconds to wait for the binding to become ready (0: answer at once).
    #[arg(long, default_value_t = 0)]
    wait: u32,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// List bindings.
    List {
        /// Only bindings of this consumer VPC.
        #[arg(long)]
        vpc: Option<String>,
        /// Only bindings to this service.
        #[arg(long)]
        service: Option<String>,
        /// Only bindings in this phase (pending, creating, pendingAcceptance, ready, failed...).
        #[arg(long)]
        phase: Option<Phase>,
        /// Only bindings that are failing: failed, or held up with an error.
        #[arg(long, conflicts_with = "phase")]
        failing: bool,
    },
    /// Show one binding with its endpoint, DNS name and last error.
    Get {
        service: String,
        /// The consumer VPC.
        #[arg(long)]
        vpc: String,
    },
    /// Accept a pending connection to a manual-acceptance service.
    Accept {
        service: String,
        #[arg(long)]
        vpc: String,
    },
    /// Reject a binding under either acceptance policy: a pending connection is refused, a
    /// live one disconnected, and its endpoint removed until `accept`.
    Reject {
        service: String,
        #[arg(long)]
        vpc: String,
    },
}

fn binding_object(b: Binding) -> Object {
    Object {
        object: Some(object::Object::Binding(b)),
    }
}

async fn get_binding(ctx: &Context, service: &str, vpc: &str) -> anyhow::Result<Binding> {
    let key = pld_core::catalog::binding_key(service, vpc);
    match catalog::get(ctx, Kind::Binding, &key).await?.object {
        Some(object::Object::Binding(b)) => Ok(b),
        _ => anyhow::bail!("the controller returned no binding"),
    }
}

fn phase_line(b: &Binding) -> String {
    let st = b.status.clone().unwrap_or_default();
    let phase = if st.phase.is_empty() {
        "pending".to_string()
    } else {
        st.phase
    };
    let mut line = format!("{:<18}", phase);
    if !st.endpoint_id.is_empty() {
        line.push_str(&format!(" endpoint {}", st.endpoint_id));
    }
    if let Some(m) = &st.migration {
        line.push_str(&format!(" moving {}", migration_line(m)));
    }
    if !st.dns_name.is_empty() {
        line.push_str(&format!(" {} -> {}", st.dns_name, st.addresses.join(",")));
    }
    if !st.message.is_empty() {
        line.push_str(&format!(" ({})", st.message));
    }
    line
}

pub async fn connect(ctx: &Context, args: ConnectArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    pld_core::validate::vpc_id("--vpc", &args.vpc)?;
    if !args.allow_missing && !pld_agent::builtin::is_builtin(&args.service) {
        // A binding to a service nobody registered would only wait: say so now, with the
        // catalog's own not-found (exit 3).
        catalog::get(ctx, Kind::Service, &args.service)
            .await
            .map_err(|e| match exit::code_for(&e) {
                exit::NOT_FOUND => e.context(format!(
                    "service {:?} is not in the catalog: register it (`pld services register`), \
                     connect to a built-in (s3, dynamodb, aws-ssm...), or pass --allow-missing \
                     to wait for it",
                    args.service
                )),
                _ => e,
            })?;
    }
    let object = binding_object(Binding {
        service: args.service.clone(),
        consumer_vpc_id: args.vpc.clone(),
        ..Default::default()
    });
    let created = client.put(object, Some(0)).await;
    // Follow from the binding as created (so every later phase is shown), or as it is now
    // when it existed already.
    let created = match created {
        Ok(r) => match r.object.and_then(|o| o.object) {
            Some(object::Object::Binding(b)) => Some(b),
            _ => None,
        },
        Err(e) if e.code() == tonic::Code::FailedPrecondition => None,
        Err(e) => return Err(e.into()),
    };
    if !args.wait {
        let b = get_binding(ctx, &args.service, &args.vpc).await?;
        match ctx.format {
            Format::Json => print_json(&binding_json(&b)),
            Format::Table => out!(
                "connecting {} to {}: {}",
                args.vpc,
                args.service,
                phase_line(&b)
            ),
        }
        return Ok(());
    }
    let key = pld_core::catalog::binding_key(&args.service, &args.vpc);
    let mut current = match created {
        Some(b) => b,
        None => get_binding(ctx, &args.service, &args.vpc).await?,
    };
    let start = current.meta.map_or(0, |m| m.mod_revision) + 1;
    let mut events = Box::pin(client.watch(WatchRequest {
        start_revision: start,
        kinds: vec![Kind::Binding as i32],
        prefix: key.clone(),
    }));
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + ctx.timeout.max(Duration::from_secs(300));
    // A spinner with the elapsed time on stderr while waiting (hidden when stderr is not a
    // terminal, so scripts and logs get only the phase lines).
    let progress = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    loop {
        let line = phase_line(&current);
        if line != last {
            if ctx.format == Format::Table {
                progress.suspend(|| out!("{line}"));
            }
            progress.set_message(format!(
                "waiting for {} to be ready in {} ({})",
                args.service,
                args.vpc,
                catalog::binding_phase(&current)
            ));
            last = line;
        }
        let phase = current
            .status
            .as_ref()
            .map(|s| s.phase.clone())
            .unwrap_or_default();
        // A binding that moves serves all the while: connected.
        if Phase::of(&phase).is_some_and(|p| p.is_settled() || p.serves()) {
            progress.finish_and_clear();
            if ctx.format == Format::Json {
                print_json(&binding_json(&current));
            }
            anyhow::ensure!(
                Phase::of(&phase).is_some_and(Phase::serves),
                "binding {key} is {phase}: {}",
                current
                    .status
                    .as_ref()
                    .map(|s| s.message.clone())
                    .unwrap_or_default()
            );
            return Ok(());
        }
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .with_context(|| format!("binding {key} not ready in time"))?;
        match next {
            Some(Ok(event)) if event.key == key => match event.object.and_then(|o| o.object) {
                Some(object::Object::Binding(b))
                    if event.r#type == pld_proto::v1::EventType::Put as i32 =>
                {
                    current = b
                }
                _ => anyhow::bail!("binding {key} was deleted"),
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the watch ended"),
        }
    }
}

pub async fn disconnect(ctx: &Context, args: DisconnectArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let key = pld_core::catalog::binding_key(&args.service, &args.vpc);
    let r = client.delete(Kind::Binding, &key, None).await?;
    match ctx.format {
        Format::Json => print_json(&json!({"disconnected": key, "revision": r.revision})),
        Format::Table => out!(
            "disconnected {} from {}; its agent removes the endpoint and DNS name",
            args.vpc,
            args.service
        ),
    }
    Ok(())
}

async fn agent_of(ctx: &Context, vpc: &str) -> anyhow::Result<Agent> {
    let agent = catalog::get(ctx, Kind::Agent, vpc)
        .await
        .with_context(|| format!("no agent is registered for {vpc}"))?;
    match agent.object {
        Some(object::Object::Agent(a)) => Ok(a),
        _ => anyhow::bail!("the controller returned no agent"),
    }
}

pub async fn resolve(ctx: &Context, args: ResolveArgs) -> anyhow::Result<()> {
    let agent = agent_of(ctx, &args.vpc).await?;
    anyhow::ensure!(
        !agent.address.is_empty(),
        "the agent of {} publishes no host API address",
        args.vpc
    );
    // An agent whose host API takes TLS only gets the --tls-* certificate.
    let tls = match (&ctx.tls, agent.host_api_tls) {
        (Some(files), true) => Some(files.load()?),
        (None, true) => anyhow::bail!(
            "the agent of {} serves its host API over mutual TLS only: give --tls-ca, \
             --tls-cert and --tls-key (a certificate its host CA signed)",
            args.vpc
        ),
        (_, false) => None,
    };
    let channel = pld_controller::dial::endpoint(&agent.address, tls.as_ref())
        .map_err(anyhow::Error::msg)?
        .connect()
        .await
        .with_context(|| {
            format!(
                "cannot reach the agent of {} at {}",
                args.vpc, agent.address
            )
        })?;
    let mut client = HostQueryClient::new(channel);
    let progress = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    if args.wait > 0 {
        progress.set_message(format!(
            "asking the agent of {} for {} (waits up to {}s for it to be ready)",
            args.vpc, args.service, args.wait
        ));
        progress.enable_steady_tick(Duration::from_millis(120));
    }
    let answer = client
        .resolve(ResolveRequest {
            service: args.service.clone(),
            wait_seconds: args.wait,
        })
        .await;
    progress.finish_and_clear();
    let r = answer.map_err(pld_client::ClientError::from)?.into_inner();
    match ctx.format {
        Format::Json => print_json(&json!({
            "service": r.service, "dns_name": r.dns_name, "addresses": r.addresses,
            "ports": r.ports, "phase": r.phase, "message": r.message, "endpoint_id": r.endpoint_id,
        })),
        Format::Table => {
            out!("service:   {}", r.service);
            out!("phase:     {}", r.phase);
            if !r.dns_name.is_empty() {
                out!("dns name:  {}", r.dns_name);
            }
            if !r.addresses.is_empty() {
                out!("addresses: {}", r.addresses.join(", "));
            }
            out!(
                "ports:     {}",
                r.ports
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !r.message.is_empty() {
                out!("message:   {}", r.message);
            }
        }
    }
    Ok(())
}

pub async fn run(ctx: &Context, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::List {
            vpc,
            service,
            phase,
            failing,
        } => {
            let req = ListRequest {
                kind: Kind::Binding as i32,
                vpc_id: vpc.unwrap_or_default(),
                service: service.unwrap_or_default(),
                ..Default::default()
            };
            let bindings: Vec<Binding> = catalog::bindings(catalog::list(ctx, req).await?)
                .into_iter()
                .filter(|b| {
                    phase
                        .as_ref()
                        .is_none_or(|p| catalog::binding_phase(b) == p.as_str())
                })
                .filter(|b| !failing || catalog::binding_failing(b))
                .collect();
            print_bindings(ctx, &bindings, &Regions::read(ctx).await?);
        }
        Command::Get { service, vpc } => {
            pld_core::validate::vpc_id("--vpc", &vpc)?;
            let b = get_binding(ctx, &service, &vpc).await?;
            match ctx.format {
                Format::Json => print_json(&Regions::read(ctx).await?.json(&b)),
                Format::Table => {
                    print_bindings(ctx, std::slice::from_ref(&b), &Regions::read(ctx).await?);
                    let st = b.status.clone().unwrap_or_default();
                    out!("");
                    out!("approval:  {}", approval_name(b.approval));
                    if !st.endpoint_id.is_empty() {
                        out!("endpoint:  {}", st.endpoint_id);
                    }
                    if !st.addresses.is_empty() {
                        out!("addresses: {}", st.addresses.join(", "));
                    }
                    if let Some(m) = &st.migration {
                        out!("moving:    {}", migration_line(m));
                    }
                    if !st.message.is_empty() {
                        out!("message:   {}", st.message);
                    }
                    print_pending(&st.pending, 11);
                }
            }
        }
        Command::Accept { service, vpc } => decide(ctx, &service, &vpc, Approval::Accepted).await?,
        Command::Reject { service, vpc } => decide(ctx, &service, &vpc, Approval::Rejected).await?,
    }
    Ok(())
}

/// Where each side of a binding is: the consumer VPC's region (its agent's) and its service's
/// (the region of the provider's load balancer), read from the catalog.
pub struct Regions {
    consumers: std::collections::BTreeMap<String, String>,
    services: std::collections::BTreeMap<String, String>,
}

impl Regions {
    pub async fn read(ctx: &Context) -> anyhow::Result<Regions> {
        let consumers = catalog::agents(catalog::list_all(ctx, Kind::Agent).await?)
            .into_iter()
            .map(|a| (a.vpc_id, a.region))
            .collect();
        let services = catalog::services(catalog::list_all(ctx, Kind::Service).await?)
            .into_iter()
            .map(|s| {
                let region = s.load_balancer_arn.split(':').nth(3).unwrap_or_default();
                (s.name.clone(), region.to_string())
            })
            .collect();
        Ok(Regions {
            consumers,
            services,
        })
    }

    /// (the consumer's region, the service's); empty where the catalog does not say (no
    /// agent yet, an AWS service: in the consumer's region).
    fn of(&self, b: &Binding) -> (String, String) {
        let consumer = self
            .consumers
            .get(&b.consumer_vpc_id)
            .cloned()
            .unwrap_or_default();
        let service = self
            .services
            .get(&b.service)
            .cloned()
            .unwrap_or_else(|| consumer.clone());
        (consumer, service)
    }

    /// The binding as JSON, with both regions.
    fn json(&self, b: &Binding) -> serde_json::Value {
        let (consumer, service) = self.of(b);
        let mut v = binding_json(b);
        v["consumer_region"] = consumer.into();
        v["service_region"] = service.into();
        v
    }
}

pub fn print_bindings(ctx: &Context, bindings: &[Binding], regions: &Regions) {
    match ctx.format {
        Format::Json => print_json(&serde_json::Value::Array(
            bindings.iter().map(|b| regions.json(b)).collect(),
        )),
        Format::Table => table(
            &[
                "SERVICE",
                "VPC",
                "REGION",
                "SERVICE REGION",
                "PHASE",
                "DNS",
                "MESSAGE",
            ],
            &bindings
                .iter()
                .map(|b| {
                    let st = b.status.clone().unwrap_or_default();
                    let (consumer, service) = regions.of(b);
                    vec![
                        b.service.clone(),
                        b.consumer_vpc_id.clone(),
                        consumer,
                        service,
                        catalog::binding_phase(b),
                        st.dns_name,
                        st.message,
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

async fn decide(ctx: &Context, service: &str, vpc: &str, approval: Approval) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let mut binding = get_binding(ctx, service, vpc).await?;
    let revision = binding.meta.map_or(0, |m| m.mod_revision);
    binding.approval = approval as i32;
    client.put(binding_object(binding), Some(revision)).await?;
    let word = if approval == Approval::Accepted {
        "accepted"
    } else {
        "rejected"
    };
    match ctx.format {
        Format::Json => print_json(&json!({"service": service, "vpc": vpc, "approval": word})),
        Format::Table => {
            out!("{word} {vpc}'s connection to {service}; the provider's agent applies it")
        }
    }
    Ok(())
}
