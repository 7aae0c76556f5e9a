//! `buildplane watch BUILD...`: follow builds to the end, harvest their Workloads and emit them.

use super::Outcome;
use super::board::Board;
use super::connect::{ClientArgs, parse_duration};
use crate::core::workflow::{Phase, WorkloadOutcome};
use crate::emit;
use crate::kube::Kube;
use crate::pipeline::LoadedBuild;
use crate::pipeline::emit::{DEFAULT_MESSAGE, EmitSettings, Emitter, GitSettings};
use crate::pipeline::watch::{self, BuildResult, Event, Target};
use clap::{Args, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    Text,
    Json,
}

/// Where Workloads go (shared by watch, apply --wait and sync).
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    /// Write each Workload under DIR (atomically).
    #[arg(long = "emit-dir", value_name = "DIR")]
    pub emit_dir: Option<PathBuf>,
    /// Path of a Workload under the directory or repository: {org}, {project}, {component},
    /// {build}.
    #[arg(long = "emit-path", value_name = "TEMPLATE", default_value = emit::DEFAULT_PATH_TEMPLATE)]
    pub emit_path: String,
    /// Commit each Workload into a Git repository (URL or path) and push.
    #[arg(long = "emit-git", value_name = "REPO")]
    pub emit_git: Option<String>,
    /// Branch of --emit-git (created when missing).
    #[arg(long = "emit-branch", value_name = "BRANCH", default_value = "main")]
    pub emit_branch: String,
    /// Author and committer of --emit-git commits.
    #[arg(
        long = "emit-author",
        value_name = "NAME <EMAIL>",
        default_value = "buildplane <buildplane@openchoreo.dev>"
    )]
    pub emit_author: String,
    /// Commit message: {build}, {org}, {project}, {component}, {image}, {commit}.
    #[arg(long = "emit-message", value_name = "TEMPLATE", default_value = DEFAULT_MESSAGE)]
    pub emit_message: String,
    /// How long --emit-git keeps retrying a push that others' pushes reject.
    #[arg(long = "emit-git-timeout", value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    pub emit_git_timeout: Duration,
    /// Server-side apply each Workload into the control-plane cluster (field manager
    /// build-controller, forced, in the Build's namespace).
    #[arg(long = "emit-cluster")]
    pub emit_cluster: bool,
    /// Kubeconfig of the control plane (default: the build plane's).
    #[arg(long = "control-plane-kubeconfig", value_name = "FILE")]
    pub control_plane_kubeconfig: Option<PathBuf>,
    /// Context of the control plane.
    #[arg(long = "control-plane-context", value_name = "NAME")]
    pub control_plane_context: Option<String>,
}

impl EmitArgs {
    /// The emit targets; the control plane defaults to the build plane's connection.
    pub fn settings(&self, client: &ClientArgs) -> EmitSettings {
        let cluster = self.emit_cluster.then(|| {
            let mut settings = client.settings();
            if let Some(k) = &self.control_plane_kubeconfig {
                settings.kubeconfig = Some(k.clone());
                settings.context = None;
            }
            if let Some(c) = &self.control_plane_context {
                settings.context = Some(c.clone());
            }
            settings
        });
        EmitSettings {
            dir: self.emit_dir.clone(),
            path_template: self.emit_path.clone(),
            git: self.emit_git.as_ref().map(|url| GitSettings {
                url: url.clone(),
                branch: self.emit_branch.clone(),
                author: self.emit_author.clone(),
                message: self.emit_message.clone(),
                deadline: self.emit_git_timeout,
            }),
            cluster,
        }
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub targets: super::connect::BuildArgs,
    /// Give up after this long (exit code 2), e.g. 90s, 10m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Plain lines, or one JSON event per line.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: WatchOutput,
    #[command(flatten)]
    pub emit: EmitArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Follows `targets`, printing each step change and each result (with its conditions) and
/// emitting Workloads; returns how many builds did not end with an emitted Workload.
pub async fn follow(
    kube: &Kube,
    client: &ClientArgs,
    emit: &EmitArgs,
    targets: Vec<Target>,
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<usize> {
    let by_label: std::collections::BTreeMap<String, LoadedBuild> = targets
        .iter()
        .map(|t| (t.label(), t.build.clone()))
        .collect();
    let emitter = Emitter::connect(emit.settings(client)).await?;
    let handle = tokio::runtime::Handle::current();
    let mut out = std::io::stdout().lock();
    // A live board on a terminal; plain lines (or JSON) otherwise.
    let mut board = (!json && out.is_terminal()).then(|| Board::new(by_label.keys().cloned()));
    if let Some(b) = &mut board {
        let _ = write!(out, "{}", b.redraw(None));
    }
    let mut failed = 0usize;
    watch::watch(kube, targets, timeout, |event| {
        let line = match event {
            Event::Step { build, step, phase } => {
                if let Some(b) = &mut board {
                    b.step(build, step, *phase);
                    let _ = write!(out, "{}", b.redraw(None));
                    let _ = out.flush();
                    return;
                }
                if json {
                    serde_json::to_string(event).unwrap_or_default()
                } else {
                    format!("{build} {step} {phase}")
                }
            }
            Event::Finished(r) => {
                let build = &by_label[&r.build];
                let emission =
                    tokio::task::block_in_place(|| handle.block_on(emitter.emit(r, &build.build)));
                let (outcome, notes) = (emission.outcome, emission.notes);
                if r.phase != Phase::Succeeded
                    || r.workload.is_none()
                    || matches!(outcome, WorkloadOutcome::Failed(_))
                {
                    failed += 1;
                }
                let conditions = r.conditions(outcome);
                if json {
                    let mut v = serde_json::to_value(event).unwrap_or_default();
                    v["conditions"] = serde_json::to_value(&conditions).unwrap_or_default();
                    v["emitted"] = serde_json::to_value(&notes).unwrap_or_default();
                    v.to_string()
                } else {
                    report_text(r, &notes, &conditions)
                }
            }
        };
        match &mut board {
            Some(b) => {
                if let Event::Finished(r) = event {
                    b.finish(&r.build);
                }
                let _ = write!(out, "{}", b.redraw(Some(&line)));
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
    })
    .await?;
    Ok(failed)
}

fn report_text(
    r: &BuildResult,
    notes: &[String],
    conditions: &[crate::core::workflow::Condition],
) -> String {
    let mut s = format!("{} {}", r.build, r.phase);
    if let Some(m) = &r.message {
        s.push_str(&format!(": {m}"));
    }
    if let Some(i) = &r.image {
        s.push_str(&format!("\n  image {i}"));
    }
    if let Some(e) = &r.workload_error {
        s.push_str(&format!("\n  no Workload: {e}"));
    }
    for n in notes {
        s.push_str(&format!("\n  {n}"));
    }
    for c in conditions {
        s.push_str(&format!(
            "\n  {} {} {} {}",
            c.type_, c.status, c.reason, c.message
        ));
    }
    s
}

pub fn run(args: WatchArgs) -> anyhow::Result<Outcome> {
    let builds = args.targets.load()?;
    args.emit.settings(&args.client).check()?;
    let targets: Vec<Target> = builds.iter().map(Target::of).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let failed = runtime.block_on(async {
        let kube = Kube::connect(&args.client.settings()).await?;
        let json = args.output == WatchOutput::Json;
        follow(&kube, &args.client, &args.emit, targets, args.timeout, json).await
    })?;
    Ok(if failed > 0 {
        Outcome::Differences
    } else {
        Outcome::Success
    })
}
