//! `pld services offer|withdraw NAME --region R...`: the other regions a service is offered to,
//! changed without restating the rest of its spec (as `services move` changes its load
//! balancer): read, changed, and put back only if nobody changed it since.

use anyhow::Context as _;
use pld_proto::v1::{object, Kind, Object};

use super::{as_service, Context};
use crate::output::{out, print_json, service_json, Format};

/// Which way the regions change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Offer,
    Withdraw,
}

#[derive(clap::Args)]
pub struct RegionsArgs {
    name: String,
    /// A region of the load balancer's partition; repeat for several.
    #[arg(long = "region", required = true)]
    regions: Vec<String>,
}

pub async fn run(ctx: &Context, change: Change, args: RegionsArgs) -> anyhow::Result<()> {
    let found = crate::catalog::get(ctx, Kind::Service, &args.name).await?;
    let mut service = as_service(Some(found)).context("the controller returned no service")?;
    let read_at = service.meta.map_or(0, |m| m.mod_revision);
    let before = service.regions.clone();
    match change {
        Change::Offer => {
            for r in &args.regions {
                if !service.regions.contains(r) {
                    service.regions.push(r.clone());
                }
            }
        }
        Change::Withdraw => service.regions.retain(|r| !args.regions.contains(r)),
    }
    if service.regions != before {
        service.meta = None;
        service.status = None;
        // Checked here first, so a region that is not one is named without a round trip.
        pld_core::validate::service(&service)?;
        let object = Object {
            object: Some(object::Object::Service(service.clone())),
        };
        ctx.client()?
            .put(object, Some(read_at))
            .await
            // A conflict: the service changed since it was read; the command is safe to run
            // again.
            .with_context(|| {
                format!(
                    "changing {}'s regions (read at revision {read_at})",
                    args.name
                )
            })?;
    }
    match ctx.format {
        Format::Json => print_json(&service_json(&service)),
        Format::Table => out!(
            "{} is offered to {}; `pld services get {}` shows AWS's state of each",
            args.name,
            if service.regions.is_empty() {
                "its own region only".to_string()
            } else {
                format!("its own region and {}", service.regions.join(", "))
            },
            args.name
        ),
    }
    Ok(())
}
