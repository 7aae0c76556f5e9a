//! `buildplane watch BUILD...`: follow builds to the end, harvest their Workloads and emit them.

use super::Outcome;
use super::connect::{ClientArgs, parse_duration};
use crate::core::manifest::{self, Manifest};
use crate::core::workflow::{Phase, WorkloadOutcome};
use crate::emit::{self, Emitted, PathVars};
use crate::kube::Kube;
use crate::pipeline::LoadedBuild;
use crate::pipeline::watch::{self, BuildResult, Event, Target};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchOutput {
    Text,
    Json,
}

/// Where Workloads go (shared with apply --wait and, later, sync).
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    /// Write each Workload under DIR (atomically).
    #[arg(long = "emit-dir", value_name = "DIR")]
    pub emit_dir: Option<PathBuf>,
    /// Path of a Workload under the target: {org}, {project}, {component}, {build}.
    #[arg(long = "emit-path", value_name = "TEMPLATE", default_value = emit::DEFAULT_PATH_TEMPLATE)]
    pub emit_path: String,
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

/// The field manager upstream's controller applies Workloads with.
pub const WORKLOAD_FIELD_MANAGER: &str = "build-controller";

/// Applies a Workload into the control plane; `Unchanged` when the server kept it as it was.
pub async fn emit_to_cluster(cp: &Kube, workload: &serde_json::Value) -> Result<Emitted, String> {
    let m = Manifest::new(workload.clone()).map_err(|e| e.to_string())?;
    let r = cp
        .resource("openchoreo.dev/v1alpha1", "Workload")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the control plane serves no Workload (openchoreo.dev/v1alpha1): install charts/control-plane/crds")?;
    let before = cp.get(&r, &m.id).await.map_err(|e| e.to_string())?;
    let after = cp
        .apply_as(WORKLOAD_FIELD_MANAGER, &r, &m, false, true)
        .await
        .map_err(|e| e.to_string())?;
    let rv = |v: &serde_json::Value| v.pointer("/metadata/resourceVersion").cloned();
    Ok(match before {
        Some(b) if rv(&b) == rv(&after) => Emitted::Unchanged,
        _ => Emitted::Written,
    })
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

/// Emits one result's Workload to every target; the outcome feeds the Build's conditions.
pub fn emit_result(
    r: &BuildResult,
    build: &LoadedBuild,
    args: &EmitArgs,
    cp: Option<&Kube>,
) -> (WorkloadOutcome, Vec<String>) {
    let Some(workload) = &r.workload else {
        return match (&r.phase, &r.workload_error) {
            (Phase::Succeeded, Some(e)) if e.contains("no Workload") => {
                (WorkloadOutcome::Missing, vec![])
            }
            (Phase::Succeeded, Some(e)) => (WorkloadOutcome::Failed(e.clone()), vec![]),
            _ => (WorkloadOutcome::NotYet, vec![]),
        };
    };
    let mut notes = Vec::new();
    let mut failure = None;
    if let Some(cp) = cp {
        let handle = tokio::runtime::Handle::current();
        let id = format!(
            "Workload/{}/{}",
            build.build.organization(),
            workload
                .pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .unwrap_or("")
        );
        match tokio::task::block_in_place(|| handle.block_on(emit_to_cluster(cp, workload))) {
            Ok(Emitted::Written) => notes.push(format!("applied {id}")),
            Ok(Emitted::Unchanged) => notes.push(format!("unchanged {id}")),
            Err(e) => {
                notes.push(format!("emit to cluster failed: {e}"));
                failure = Some(e);
            }
        }
    }
    let Some(dir) = &args.emit_dir else {
        return match failure {
            Some(e) => (WorkloadOutcome::Failed(e), notes),
            None if cp.is_some() => (WorkloadOutcome::Updated, notes),
            None => (WorkloadOutcome::NotYet, notes),
        };
    };
    let owner = &build.build.spec.owner;
    let vars = PathVars {
        org: build.build.organization(),
        project: &owner.project_name,
        component: &owner.component_name,
        build: &build.build.metadata.name,
    };
    let written = emit::expand_path(&args.emit_path, &vars)
        .map_err(|e| e.to_string())
        .and_then(|path| {
            let m = Manifest::new(workload.clone()).map_err(|e| e.to_string())?;
            let text = manifest::to_yaml(&m).map_err(|e| e.to_string())?;
            emit::dir::write(dir, &path, text.as_bytes())
                .map(|e| (path, e))
                .map_err(|e| e.to_string())
        });
    match written {
        Ok((path, Emitted::Written)) => (
            WorkloadOutcome::Updated,
            vec![format!("wrote {}", dir.join(path).display())],
        ),
        Ok((path, Emitted::Unchanged)) => (
            WorkloadOutcome::Updated,
            vec![format!("unchanged {}", dir.join(path).display())],
        ),
        Err(e) => (
            WorkloadOutcome::Failed(e.clone()),
            vec![format!("emit failed: {e}")],
        ),
    }
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
    let cp = if emit.emit_cluster {
        let mut settings = client.settings();
        if let Some(k) = &emit.control_plane_kubeconfig {
            settings.kubeconfig = Some(k.clone());
            settings.context = None;
        }
        if let Some(c) = &emit.control_plane_context {
            settings.context = Some(c.clone());
        }
        Some(Kube::connect(&settings).await?)
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    watch::watch(kube, targets, timeout, |event| {
        let line = match event {
            Event::Step { build, step, phase } => {
                if json {
                    serde_json::to_string(event).unwrap_or_default()
                } else {
                    format!("{build} {step} {phase}")
                }
            }
            Event::Finished(r) => {
                let build = &by_label[&r.build];
                let (outcome, notes) = emit_result(r, build, emit, cp.as_ref());
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
        let _ = writeln!(out, "{line}");
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
