//! `pld watch`: streams catalog changes, resuming across controller failures.

use futures::StreamExt;
use pld_proto::v1::{object, Event, Kind, WatchRequest};

use super::Context;
use crate::output::{event_json, event_type_name, kind_name, migration_line, out, Format};

#[derive(clap::Args)]
pub struct Args {
    /// First revision to show; default: only changes from now on.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Only these kinds.
    #[arg(long, value_enum)]
    kind: Vec<KindArg>,
    /// Only keys with this prefix.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Service,
    Binding,
    Agent,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Service => Kind::Service,
            KindArg::Binding => Kind::Binding,
            KindArg::Agent => Kind::Agent,
        }
    }
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let mut stream = Box::pin(
        client.watch(WatchRequest {
            start_revision: args.from,
            kinds: args
                .kind
                .into_iter()
                .map(|k| Kind::from(k) as i32)
                .collect(),
            prefix: args.prefix,
        }),
    );
    let mut seen = 0u64;
    while let Some(event) = stream.next().await {
        let event = event?;
        match ctx.format {
            // One JSON object per line, so scripts can stream it.
            Format::Json => out!("{}", event_json(&event)),
            Format::Table => out!(
                "{:>8}  {:<6}  {:<7}  {}{}",
                event.revision,
                event_type_name(event.r#type),
                kind_name(event.kind),
                event.key,
                summary(&event)
            ),
        }
        seen += 1;
        if args.count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(())
}

/// Where a changed object stands, after its key: a binding's phase (and its move's step while
/// its service moves), a service's state; nothing for a deletion or an agent.
fn summary(event: &Event) -> String {
    match event.object.as_ref().and_then(|o| o.object.as_ref()) {
        Some(object::Object::Binding(b)) => match &b.status {
            Some(st) if !st.phase.is_empty() => match &st.migration {
                Some(m) => format!("  {} {}", st.phase, migration_line(m)),
                None => format!("  {}", st.phase),
            },
            _ => String::new(),
        },
        Some(object::Object::Service(s)) => match &s.status {
            Some(st) if !st.state.is_empty() => format!("  {}", st.state),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use pld_proto::v1::{Binding, BindingMigration, BindingStatus, Object, Service, ServiceStatus};

    use super::*;

    fn event(object: object::Object) -> Event {
        Event {
            object: Some(Object {
                object: Some(object),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_step_of_a_move_shows_after_the_key() {
        let moving = Binding {
            status: Some(BindingStatus {
                phase: "migrating".into(),
                migration: Some(BindingMigration {
                    from_endpoint_id: "vpce-old".into(),
                    to_endpoint_id: "vpce-new".into(),
                    step: "draining".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            summary(&event(object::Object::Binding(moving))),
            "  migrating vpce-old -> vpce-new (draining)"
        );
        let creating = Binding {
            status: Some(BindingStatus {
                phase: "migrating".into(),
                migration: Some(BindingMigration {
                    from_endpoint_id: "vpce-old".into(),
                    to_endpoint_id: String::new(),
                    step: "creating".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            summary(&event(object::Object::Binding(creating))),
            "  migrating vpce-old -> (not created yet) (creating)"
        );
        let ready = Binding {
            status: Some(BindingStatus {
                phase: "ready".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(summary(&event(object::Object::Binding(ready))), "  ready");
        let service = Service {
            status: Some(ServiceStatus {
                state: "available".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            summary(&event(object::Object::Service(service))),
            "  available"
        );
        assert_eq!(summary(&Event::default()), "");
    }
}
