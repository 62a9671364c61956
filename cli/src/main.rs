//! `pld`: the controller daemon and the catalog CLI. `main` parses, sets up tracing, runs the
//! subcommand and turns its error into one line and an exit code.

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
    /// Show every controller member's raft state.
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
    /// List agents.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Back up and restore the catalog.
    #[command(subcommand)]
    Snapshot(cmd::snapshot::Command),
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// List agents with their lease state.
    List,
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PLD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PLD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILURE.into();
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", exit::describe(&e));
            exit::code_for(&e).into()
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = cmd::Context {
        controller: cli.controller,
        format: cli.output,
        timeout: std::time::Duration::from_secs(cli.timeout),
    };
    match cli.command {
        Command::Dev(args) => cmd::dev::run(args).await,
        Command::Controller(args) => cmd::controller::run(args).await,
        Command::Agent(args) => cmd::agent::run(args).await,
        Command::Connect(args) => cmd::bindings::connect(&ctx, args).await,
        Command::Disconnect(args) => cmd::bindings::disconnect(&ctx, args).await,
        Command::Resolve(args) => cmd::bindings::resolve(&ctx, args).await,
        Command::Bindings(c) => cmd::bindings::run(&ctx, c).await,
        Command::Agents(AgentsCommand::List) => cmd::bindings::agents(&ctx).await,
        Command::Services(c) => cmd::services::run(&ctx, c).await,
        Command::Members(c) => cmd::members::run(&ctx, c).await,
        Command::Status => cmd::status::run(&ctx).await,
        Command::Watch(args) => cmd::watch::run(&ctx, args).await,
        Command::Snapshot(c) => cmd::snapshot::run(&ctx, c).await,
    }
}
