//! `aienv`: the command line of AI Environment Manager.
//!
//! `aienv serve` runs a headless node (the engine plus its API and web UI). Every other command
//! is a client of a running node over its HTTP API (`--node URL`, `AIENV_NODE`, or the node
//! recorded in the data dir), so the CLI never does an operation differently from the UI.
//! Exit status: 0 on success, 1 on a failure the message explains, 2 on wrong usage.

mod client;
mod commands;
mod output;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aienv",
    version,
    about = "AI Environment Manager: keep, share and run AI environments across the machines of a LAN"
)]
struct Cli {
    /// The node's data dir (registry, config, node.json).
    #[arg(long, global = true, env = "AIENV_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// URL of the node client commands talk to (default: the one recorded in the data dir).
    #[arg(long, global = true, env = "AIENV_NODE", value_name = "URL")]
    node: Option<String>,
    /// API key: `serve` requires it from clients (`serve --api-key generate` makes one, saves it
    /// in config.toml and shows it once); client commands send it.
    #[arg(
        long,
        global = true,
        env = "AIENV_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a headless node: the API, the event stream and the web UI.
    Serve(serve::ServeArgs),
    /// Create, register, list, show, edit and forget workspaces.
    #[command(subcommand, alias = "ws")]
    Workspace(commands::workspace::WorkspaceCmd),
    /// List, add, edit and remove the projects of a workspace.
    #[command(subcommand)]
    Project(commands::project::ProjectCmd),
    /// List, show, add and remove the environments of a workspace.
    #[command(subcommand)]
    Env(commands::env::EnvCmd),
    /// Peers on the LAN; add or remove peers by address.
    Peers(commands::peers::PeersArgs),
    /// Local and remote shared environments in one list.
    Catalog,
    /// Discovery diagnostics: interfaces, packets, drops by reason, static peers.
    #[command(subcommand)]
    Discovery(commands::peers::DiscoveryCmd),
    /// Share a workspace with the peers of the LAN (secrets and caches stay home); with --env,
    /// only those environments, with the projects and files they use.
    #[command(args_conflicts_with_subcommands = true)]
    Share {
        #[arg(required = true)]
        workspace: Option<String>,
        /// Who may clone it: any peer (open), peers with a token you make (token, the
        /// default), or peers you approve one by one (approve).
        #[arg(long, value_parser = ["open", "token", "approve"])]
        access: Option<String>,
        /// Share this environment (repeatable); without it, the whole workspace.
        #[arg(long = "env", value_name = "ENV")]
        envs: Vec<String>,
        /// Share even if files look like secrets (the warning is printed all the same).
        #[arg(long)]
        yes: bool,
        #[command(subcommand)]
        command: Option<ShareCmd>,
    },
    /// Access requests to your shares with `access = "approve"`: list, approve, deny.
    #[command(subcommand)]
    Access(commands::access::AccessCmd),
    /// What peers asked of this node's shares, and whether they got it (newest first).
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Stop sharing a workspace, or (with --env) some of its environments.
    Unshare {
        workspace: String,
        #[arg(long = "env", value_name = "ENV")]
        envs: Vec<String>,
    },
    /// Copy a peer's shared workspace here, verified, and register it.
    Clone(commands::clone::CloneArgs),
    /// Bring a cloned workspace up to date with its source (only changes move).
    Pull(commands::clone::PullArgs),
    /// Clone jobs: list, cancel.
    Clones(commands::clone::ClonesArgs),
    /// Follow the node's events (one JSON object a line) until interrupted.
    Events,
    /// Start an environment here or on a peer (--on): check it fits, set it up, wait for its
    /// tools, print links.
    Run(commands::run::RunArgs),
    /// Queue a batch job on the best node (a peer with the GPUs it needs); its outputs come back.
    Submit(commands::run::SubmitArgs),
    /// Where an environment would run best: this node and each peer, with why.
    Place(commands::run::PlaceArgs),
    /// List runs, newest first.
    Runs,
    /// Print a run's log (`-f` follows it until the run ends).
    Logs(commands::run::LogsArgs),
    /// Stop a run and everything it started.
    Stop { run: String },
    /// What this machine has: CPUs, memory, disk, GPUs, container engine, hypervisor.
    Resources,
    /// Hugging Face models in the LAN cache: list them here and on peers, pull one from a peer.
    #[command(subcommand)]
    Model(commands::model::ModelCmd),
}

#[derive(Debug, Subcommand)]
enum ShareCmd {
    /// Share tokens: create, list, revoke (for shares with `access = "token"`).
    #[command(subcommand)]
    Token(commands::access::TokenCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args, cli.data_dir, cli.api_key).await,
            command => {
                let client = client::Client::new(cli.node, cli.data_dir, cli.api_key, cli.json)?;
                match command {
                    Command::Workspace(cmd) => cmd.run(&client).await,
                    Command::Project(cmd) => cmd.run(&client).await,
                    Command::Env(cmd) => cmd.run(&client).await,
                    Command::Peers(args) => {
                        args.command
                            .unwrap_or(commands::peers::PeersCmd::List)
                            .run(&client)
                            .await
                    }
                    Command::Catalog => commands::peers::catalog(&client).await,
                    Command::Discovery(cmd) => cmd.run(&client).await,
                    Command::Share {
                        command: Some(ShareCmd::Token(cmd)),
                        ..
                    } => cmd.run(&client).await,
                    Command::Share {
                        workspace,
                        access,
                        envs,
                        yes,
                        command: None,
                    } => {
                        let ws = workspace.unwrap_or_default();
                        commands::workspace::share(&client, &ws, true, access, envs, yes).await
                    }
                    Command::Access(cmd) => cmd.run(&client).await,
                    Command::Audit { limit } => commands::access::audit(&client, limit).await,
                    Command::Unshare { workspace, envs } => {
                        commands::workspace::share(&client, &workspace, false, None, envs, false)
                            .await
                    }
                    Command::Clone(args) => commands::clone::clone(&client, args).await,
                    Command::Pull(args) => commands::clone::pull(&client, args).await,
                    Command::Clones(args) => commands::clone::clones(&client, args).await,
                    Command::Events => commands::events::follow(&client).await,
                    Command::Run(args) => commands::run::run(&client, args).await,
                    Command::Submit(args) => commands::run::submit(&client, args).await,
                    Command::Place(args) => commands::run::place(&client, args).await,
                    Command::Runs => commands::run::runs(&client).await,
                    Command::Logs(args) => commands::run::logs(&client, args).await,
                    Command::Stop { run } => commands::run::stop(&client, &run).await,
                    Command::Resources => commands::run::resources(&client).await,
                    Command::Model(cmd) => cmd.run(&client).await,
                    Command::Serve(_) => unreachable!("handled above"),
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
