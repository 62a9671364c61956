//! `pld`: the controller daemon and the catalog CLI. `main` parses, sets up tracing, runs the
//! subcommand and turns its error into one line and an exit code.

mod catalog;
mod cmd;
mod exit;
mod output;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// PrivateLink discovery: a replicated catalog of VPC endpoint services and the agents that
/// reconcile AWS PrivateLink from it.
#[derive(Parser)]
#[command(name = "pld", version, about, propagate_version = true)]
struct Cli {
    /// Controller addresses, comma-separated; any member works.
    #[arg(
        long,
        global = true,
        env = "PLD_CONTROLLER",
        default_value = pld_client::DEFAULT_CONTROLLER
    )]
    controller: String,
    /// How long a command keeps trying controllers before giving up, in seconds.
    #[arg(long, global = true, default_value_t = 15)]
    timeout: u64,
    /// CA certificate (PEM) of a cluster that uses mutual TLS; with --tls-cert and --tls-key.
    #[arg(long, global = true, env = "PLD_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) the cluster's CA signed.
    #[arg(long, global = true, env = "PLD_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, global = true, env = "PLD_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// Output format: a table for people, json for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process on a simulated AWS region: the first thing to try.
    Dev(cmd::dev::Args),
    /// Run a controller node.
    Controller(cmd::controller::Args),
    /// Run the agent of one VPC.
    Agent(cmd::agent::Args),
    /// Register, list, show and deregister services.
    #[command(subcommand)]
    Services(cmd::services::Command),
    /// List, add and remove controller members.
    #[command(subcommand)]
    Members(cmd::members::Command),
    /// The whole picture: cluster members and lag, agents, services by state, bindings by phase
    /// with the failing ones' last error.
    Status,
    /// Stream catalog changes.
    Watch(cmd::watch::Args),
    /// Connect a consumer VPC to a service (creates a binding).
    Connect(cmd::bindings::ConnectArgs),
    /// Remove a consumer VPC's binding to a service.
    Disconnect(cmd::bindings::DisconnectArgs),
    /// Ask a VPC's agent how to reach a service.
    Resolve(cmd::bindings::ResolveArgs),
    /// List bindings; accept or reject connections to manual-acceptance services.
    #[command(subcommand)]
    Bindings(cmd::bindings::Command),
    /// List and show agents.
    #[command(subcommand)]
    Agents(cmd::agents::Command),
    /// Every VPC with its CIDRs, the overlapping pairs, whether peering or a transit gateway
    /// could have carried each binding, and a peering mesh against PrivateLink.
    Network,
    /// What the catalog's PrivateLink costs an hour and a month, per binding, service, VPC and
    /// account, against a NAT gateway, peering and a transit gateway for the same traffic.
    Cost(cmd::cost::Args),
    /// What a change would do and why it would fail or be slow, from the catalog alone: no
    /// AWS call, nothing changed. Exit 0 when clean, 8 when the plan has errors.
    #[command(subcommand)]
    Plan(cmd::plan::Command),
    /// Back up and restore the catalog.
    #[command(subcommand)]
    Snapshot(cmd::snapshot::Command),
    /// Print a shell completion script: `pld completions bash > /etc/bash_completion.d/pld`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Log filter when neither `PLD_LOG` nor a config's `log` key says otherwise: raft-rs logs
/// every role change at info, which is noise next to our own "became leader" lines.
const DEFAULT_LOG: &str = "info,raft=warn";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log = match pld_telemetry::logging::init(DEFAULT_LOG) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID.into();
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILURE.into();
        }
    };
    let result = runtime.block_on(run(cli, log));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", exit::describe(&e));
            exit::code_for(&e).into()
        }
    }
}

async fn run(cli: Cli, log: pld_telemetry::logging::LogControl) -> anyhow::Result<()> {
    let ctx = cmd::Context {
        controller: cli.controller,
        format: cli.output,
        timeout: std::time::Duration::from_secs(cli.timeout),
        tls: pld_client::tls::TlsFiles::from_parts(
            cli.tls_ca,
            cli.tls_cert,
            cli.tls_key,
            "--tls-ca, --tls-cert and --tls-key",
        )?,
    };
    match cli.command {
        Command::Dev(args) => cmd::dev::run(args).await,
        Command::Controller(args) => cmd::controller::run(args, log).await,
        Command::Agent(args) => cmd::agent::run(args, log).await,
        Command::Connect(args) => cmd::bindings::connect(&ctx, args).await,
        Command::Disconnect(args) => cmd::bindings::disconnect(&ctx, args).await,
        Command::Resolve(args) => cmd::bindings::resolve(&ctx, args).await,
        Command::Bindings(c) => cmd::bindings::run(&ctx, c).await,
        Command::Agents(c) => cmd::agents::run(&ctx, c).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "pld", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                // `pld completions bash | head` is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Services(c) => cmd::services::run(&ctx, c).await,
        Command::Members(c) => cmd::members::run(&ctx, c).await,
        Command::Status => cmd::status::run(&ctx).await,
        Command::Plan(c) => cmd::plan::run(&ctx, c).await,
        Command::Network => cmd::network::run(&ctx).await,
        Command::Cost(args) => cmd::cost::run(&ctx, args).await,
        Command::Watch(args) => cmd::watch::run(&ctx, args).await,
        Command::Snapshot(c) => cmd::snapshot::run(&ctx, c).await,
    }
}
