//! An example program on pld's gRPC API: prints every service and the bindings to it, then,
//! with `--follow`, one line per catalog change as it happens.
//!
//! It uses the `pld-client` library, which retries on another controller when one is down
//! (writes and reads may go to any member) and resumes a watch where it broke off, so this
//! program keeps running across controller restarts and leader changes.
//!
//! ```text
//! cargo run -p pld-examples --bin pld-inventory -- --controller http://127.0.0.1:7400 --follow
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;

use pld_client::{Client, ClientError};
use pld_proto::v1::{object, Binding, EventType, Kind, ListRequest, Object, Service, WatchRequest};
use tokio_stream::StreamExt;

struct Args {
    controllers: Vec<String>,
    follow: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        controllers: vec![pld_client::DEFAULT_CONTROLLER.to_string()],
        follow: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--controller" => {
                let value = it.next().ok_or("--controller needs an address")?;
                args.controllers = vec![value];
            }
            "--follow" => args.follow = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; use --controller ADDR[,ADDR] and --follow"
                ))
            }
        }
    }
    Ok(args)
}

/// Lists every object of `kind` (a linearizable read: it reflects every acknowledged write).
async fn list(client: &Client, kind: Kind) -> Result<(Vec<Object>, u64), ClientError> {
    let response = client
        .list(ListRequest {
            kind: kind as i32,
            ..Default::default()
        })
        .await?;
    Ok((response.objects, response.revision))
}

fn describe_service(s: &Service) -> String {
    let status = s.status.clone().unwrap_or_default();
    format!(
        "service {} in {} ports {:?}: {}{}",
        s.name,
        s.vpc_id,
        s.ports,
        if status.state.is_empty() {
            "pending"
        } else {
            &status.state
        },
        if status.endpoint_service_name.is_empty() {
            String::new()
        } else {
            format!(" ({})", status.endpoint_service_name)
        }
    )
}

fn describe_binding(b: &Binding) -> String {
    let status = b.status.clone().unwrap_or_default();
    let mut line = format!(
        "binding {} <- {}: {}",
        b.service,
        b.consumer_vpc_id,
        if status.phase.is_empty() {
            "pending"
        } else {
            &status.phase
        }
    );
    if !status.dns_name.is_empty() {
        line.push_str(&format!(" at {}", status.dns_name));
    }
    if !status.message.is_empty() {
        line.push_str(&format!(" ({})", status.message));
    }
    line
}

fn describe(object: &Object) -> String {
    match &object.object {
        Some(object::Object::Service(s)) => describe_service(s),
        Some(object::Object::Binding(b)) => describe_binding(b),
        Some(object::Object::Agent(a)) => format!("agent of {} in {}", a.vpc_id, a.account_id),
        None => "an empty object".to_string(),
    }
}

async fn run(args: Args) -> Result<(), ClientError> {
    let client = Client::new(&args.controllers)?;
    let (services, _) = list(&client, Kind::Service).await?;
    let (bindings, revision) = list(&client, Kind::Binding).await?;
    let mut by_service: BTreeMap<String, Vec<&Binding>> = BTreeMap::new();
    for b in &bindings {
        if let Some(object::Object::Binding(b)) = &b.object {
            by_service.entry(b.service.clone()).or_default().push(b);
        }
    }
    for s in &services {
        let Some(object::Object::Service(s)) = &s.object else {
            continue;
        };
        println!("{}", describe_service(s));
        for b in by_service.get(&s.name).into_iter().flatten() {
            println!("  {}", describe_binding(b));
        }
    }
    println!("-- catalog revision {revision}");
    if !args.follow {
        return Ok(());
    }
    // Start right after the listed revision: no change between the list and the watch is missed.
    let mut events = client.watch(WatchRequest {
        start_revision: revision + 1,
        kinds: vec![Kind::Service as i32, Kind::Binding as i32],
        prefix: String::new(),
    });
    while let Some(event) = events.next().await {
        let event = event?;
        let what = event.object.as_ref().map(describe).unwrap_or_default();
        match EventType::try_from(event.r#type) {
            Ok(EventType::Delete) => println!("@{} deleted {what}", event.revision),
            _ => println!("@{} {what}", event.revision),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
