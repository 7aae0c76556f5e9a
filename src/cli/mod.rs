//! The command line: flags are parsed into plain structs here, then each subcommand module
//! turns them into a pipeline request and prints the result.

pub mod board;
pub mod check;
pub mod connect;
pub mod controller;
pub mod deploy;
pub mod emit;
pub mod flags;
pub mod get;
pub mod install;
pub mod list;
pub mod logs;
pub mod render;
pub mod retry;
pub mod stop;
pub mod sync;
pub mod table;
pub mod watch;

use clap::{Parser, Subcommand};

/// `--version`: the version, then the commit and the build date.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILDPLANE_COMMIT"),
    ", built ",
    env!("BUILDPLANE_BUILD_DATE"),
    ")"
);

/// Render, diff, apply and watch an OpenChoreo build plane.
#[derive(Debug, Parser)]
#[command(name = "buildplane", version = LONG_VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Diagnostics on stderr as plain lines or as one JSON object per line.
    #[arg(long = "log-format", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// The largest Workflow node status read, decompressed, in MiB (a larger one fails its
    /// build with the reason, instead of taking the process's memory).
    #[arg(long = "max-workflow-status-mib", value_name = "MIB", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=1024), global = true)]
    pub max_workflow_status_mib: u16,
}

/// The format of the diagnostics on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The `BUILDPLANE_LOG` filter used when the variable is unset: the loop's events are
    /// its output; one-shot commands show warnings only (their results go to stdout).
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Sync(_) | Command::Controller(_) => "buildplane=info",
            _ => "buildplane=warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the build-plane bundle and/or per-build manifests to stdout, offline.
    Render(render::RenderArgs),
    /// Show what apply would change: a server-side dry run compared with the live objects.
    /// Exit code 0: no differences, 1: differences, 2: error.
    Diff(deploy::DiffArgs),
    /// Server-side apply in stages (CRDs, Namespaces, identity, the rest, Workflows), with an
    /// inventory and optional pruning.
    Apply(deploy::ApplyArgs),
    /// Show the logs of each build's steps (the `main` container of Argo's step pods).
    Logs(logs::LogsArgs),
    /// Follow builds with a watch until they finish; harvest and emit their Workloads.
    /// Exit code 0: all succeeded, 1: any failed, 2: error or timeout.
    Watch(watch::WatchArgs),
    /// List the builds on the build plane (one LIST of their labelled build objects).
    List(list::ListArgs),
    /// Show builds on the build plane by ORG/BUILD: steps, outputs, conditions.
    /// Exit code 1: not found.
    Get(get::GetArgs),
    /// Ask running builds to stop (Argo's stop: exit handlers still run; --terminate: they do
    /// not). Exit code 1: not found, or already finished.
    Stop(stop::StopArgs),
    /// Reconcile Build custom resources of a control plane onto their build planes (BuildPlane
    /// → kubeconfig Secret), write their conditions and apply their Workloads. Runs until
    /// SIGTERM or SIGINT.
    Controller(controller::ControllerArgs),
    /// Keep the build plane in step with Build specs in a Git branch or a directory: apply on
    /// every change, follow the builds, emit each Workload. Runs until SIGTERM/SIGINT.
    Sync(sync::SyncArgs),
    /// Build again although the spec did not change: delete the finished Workflow, forget its
    /// record, apply.
    Retry(retry::RetryArgs),
    /// Preflight of a build plane: Argo's CRDs and controller, build namespaces, nodes the
    /// build pods can run on, the build cache, the registry, the templates against the render.
    /// One line per finding. Exit code 0: nothing failed, 1: a check failed, 2: error.
    Check(check::CheckArgs),
    /// Print the version, the commit and the date this binary was built from.
    Version(install::VersionArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(install::CompletionArgs),
    /// Print the man page (or write one page per subcommand with --dir).
    Man(install::ManArgs),
}

/// How a command ended, for the exit code (decided in `main` alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; nothing to report (exit 0).
    Success,
    /// Done, and there were differences or failures to report (exit 1).
    Differences,
    /// What the command was to act on is not there, or cannot take the action: kubectl's
    /// NotFound, Argo's stop of a finished workflow (exit 1, this line on stderr; escaped).
    Refused(String),
}

/// One `warning:` line on stderr per value set that buildplane does not apply (`--strict`
/// made them an error before anything was rendered).
pub fn warn_not_applicable(notices: &[crate::core::values::NotApplicable]) {
    for n in notices {
        eprintln!(
            "warning: {}",
            crate::core::text::escape_controls(&n.to_string())
        );
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    crate::engine::argo::status::set_max_decompressed_nodes(
        usize::from(cli.max_workflow_status_mib) * 1024 * 1024,
    );
    let ran = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Diff(args) => deploy::run_diff(args),
        Command::Apply(args) => deploy::run_apply(args),
        Command::Logs(args) => logs::run(args),
        Command::Watch(args) => watch::run(args),
        Command::List(args) => list::run(args),
        Command::Get(args) => get::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Retry(args) => retry::run(args),
        Command::Check(args) => check::run(args),
        Command::Version(args) => install::run_version(args),
        Command::Completion(args) => install::run_completion(args),
        Command::Man(args) => install::run_man(args),
    };
    ran.or_else(not_found_is_refused)
}

/// A build named `ORG/BUILD` that is not on the build plane is kubectl's NotFound (exit 1), not
/// an error of the input or the cluster (exit 2).
fn not_found_is_refused(e: anyhow::Error) -> anyhow::Result<Outcome> {
    let not_found = e
        .chain()
        .filter_map(|c| c.downcast_ref::<crate::lifecycle::find::FindError>())
        .any(|f| f.is_not_found());
    if not_found {
        let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
        return Ok(Outcome::Refused(
            crate::core::text::escape_controls(&chain.join(": ")).into_owned(),
        ));
    }
    Err(e)
}
