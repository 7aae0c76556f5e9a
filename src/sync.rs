//! The GitOps loop: read Build specs from a Git branch or a directory, apply them with the
//! deploy pipeline, follow what was submitted, emit each Workload. Every decision is the
//! pipeline's: "submit once per spec hash" lives in `deploy::apply` and the inventory, so the
//! loop keeps no state that a restart could lose — it is derived from the cluster and the
//! source at every round.

use crate::core::manifest::{self, ObjectId};
use crate::emit::{EmitError, EmitSettings, Emitter};
use crate::engine;
use crate::kube::{ClientSettings, Kube, KubeError};
use crate::lifecycle::{self, BuildOutcome, Event, Target};
use crate::pipeline::deploy::{self, Action, DeployError, DeployOptions};
use crate::pipeline::tolerant;
use crate::pipeline::{LoadedBuild, PipelineError, Rendered, render_builds};
use crate::report::error_line;
use crate::serve::{self, Metrics, ServeError};
use crate::signal::Shutdown;
pub use crate::source::specs::SourceSettings;
use crate::source::specs::{Snapshot, SpecSource, SpecSourceError};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Everything the loop needs, resolved from the flags.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub source: SourceSettings,
    /// How often a Git source is fetched; how soon a failed round is tried again.
    pub interval: Duration,
    /// How long a directory must be quiet before a round reads it.
    pub debounce: Duration,
    /// Organization of Builds that name none.
    pub default_namespace: String,
    pub deploy: DeployOptions,
    pub emit: EmitSettings,
    pub client: ClientSettings,
    pub metrics_addr: Option<SocketAddr>,
    /// How long in-flight emits may take after SIGTERM/SIGINT.
    pub grace: Duration,
}

/// Why the loop could not start (a failing round is logged and retried, never returned).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source could not be opened or read.
    #[error(transparent)]
    Source(#[from] SpecSourceError),
    /// An emit setting is unusable, or the control plane unreachable.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// The build plane's kubeconfig is unusable.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The metrics endpoint could not listen.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The Builds could not be rendered.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Applying failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The signal handlers could not be installed.
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
}

/// A finished build on its way to the emit worker.
struct Finished {
    outcome: BuildOutcome,
    build: LoadedBuild,
    seen: Instant,
}

/// What every round and follower shares.
struct Shared {
    kube: Kube,
    metrics: Arc<Metrics>,
    deploy: DeployOptions,
    default_namespace: String,
    /// The per-build templates, compiled once for every round.
    builds: crate::pipeline::BuildRender,
    /// Workflows (`ns/name`) a follower is watching now: not followed twice.
    following: Mutex<HashSet<String>>,
    finished: mpsc::UnboundedSender<Finished>,
}

impl Shared {
    /// The Workflows followed now (a poisoned lock still holds a consistent set).
    fn following(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.following.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the loop until SIGTERM or SIGINT. The source is read before the first request, so an
/// unreadable source or bad settings fail at once and contact no cluster.
pub async fn run(settings: SyncSettings) -> Result<(), SyncError> {
    let mut shutdown = Shutdown::install().map_err(SyncError::Signals)?;
    settings.emit.check()?;
    let mut source = SpecSource::open(&settings.source)?;
    let first = tokio::select! {
        _ = shutdown.recv() => return Ok(()),
        read = source.read() => read?,
    };
    let kube = Kube::connect(&settings.client).await?;
    let emitter = Emitter::connect(settings.emit.clone()).await?;
    let metrics = Arc::new(Metrics::default());
    // sync has no cache to fill: it can work as soon as it runs.
    metrics
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let server = match settings.metrics_addr {
        Some(addr) => Some(serve::serve(addr, metrics.clone()).await?),
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        kube,
        metrics: metrics.clone(),
        deploy: DeployOptions {
            // Each round checks the cluster templates itself and sets aside what fails.
            cluster_templates_checked: true,
            ..settings.deploy.clone()
        },
        builds: crate::pipeline::BuildRender::default(),
        default_namespace: settings.default_namespace.clone(),
        following: Mutex::default(),
        finished: tx,
    });
    let emits = tokio::spawn(emit_worker(rx, emitter, metrics.clone()));
    let mut followers = JoinSet::new();
    let mut last_ok = attempt(&shared, first, true, &mut followers).await;
    let mut retry = last_ok.is_none();
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = source.next(settings.interval, settings.debounce, retry) => {}
        }
        while followers.try_join_next().is_some() {}
        let read = tokio::select! {
            _ = shutdown.recv() => break,
            read = source.read() => read,
        };
        let snapshot = match read {
            Ok(s) => s,
            Err(e) => {
                reconcile_error(&metrics, &e.into());
                retry = true;
                continue;
            }
        };
        if snapshot.git && !retry && last_ok.as_deref() == Some(snapshot.revision.as_str()) {
            continue;
        }
        match attempt(&shared, snapshot, false, &mut followers).await {
            Some(rev) => (last_ok, retry) = (Some(rev), false),
            None => retry = true,
        }
    }
    drain(shared, followers, emits, settings.grace).await;
    if let Some(s) = server {
        s.abort();
    }
    Ok(())
}

/// Stops following (a restart follows again), then lets queued and in-flight emits finish
/// within `grace`.
async fn drain(
    shared: Arc<Shared>,
    mut followers: JoinSet<()>,
    emits: tokio::task::JoinHandle<()>,
    grace: Duration,
) {
    tracing::info!(
        event = "shutdown",
        "stopping: no more rounds; finishing emits"
    );
    followers.abort_all();
    while followers.join_next().await.is_some() {}
    // The last sender goes with `shared`: the worker ends when the queue is empty.
    drop(shared);
    if tokio::time::timeout(grace, emits).await.is_err() {
        tracing::warn!(
            event = "shutdown",
            grace_seconds = grace.as_secs(),
            "emits still running after the grace period; leaving them to the next start"
        );
    }
}

fn reconcile_error(metrics: &Metrics, e: &SyncError) {
    metrics.reconcile_error(e.kind());
    tracing::error!(event = "reconcile_error", error = %error_line(e), "round failed; trying again");
}

impl SyncError {
    /// The kind of failure, as the metric `reconcile_errors_by_reason_total` labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Source(_) => "source",
            SyncError::Emit(_) => "emit",
            SyncError::Kube(_) => "kube",
            SyncError::Serve(_) => "serve",
            SyncError::Pipeline(_) => "render",
            SyncError::Deploy(_) => "apply",
            SyncError::Signals(_) => "signals",
        }
    }
}

/// One round; the revision it completed, or None when it failed (logged and counted) or left
/// a changed spec waiting (both are tried again after `--interval`).
async fn attempt(
    shared: &Arc<Shared>,
    snapshot: Snapshot,
    startup: bool,
    followers: &mut JoinSet<()>,
) -> Option<String> {
    let revision = snapshot.revision.clone();
    match round(shared, snapshot, startup, followers).await {
        Ok(Round { waiting: false }) => Some(revision),
        Ok(Round { waiting: true }) => None,
        Err(e) => {
            reconcile_error(&shared.metrics, &e);
            None
        }
    }
}

/// What a round left to do: `waiting` when a changed spec waits for its running Workflow, so
/// the round is repeated after `--interval` even if the source does not change.
struct Round {
    waiting: bool,
}

async fn round(
    shared: &Arc<Shared>,
    snapshot: Snapshot,
    startup: bool,
    followers: &mut JoinSet<()>,
) -> Result<Round, SyncError> {
    let mut loaded = tolerant::load(&snapshot.files, Some(&shared.default_namespace));
    for b in &loaded.broken {
        tracing::error!(event = "file_skipped", file = %b.file, error = %b.error, "skipped a broken file");
    }
    let (builds, broken) = (loaded.builds.len(), loaded.broken.len());
    if snapshot.git {
        let commit = &snapshot.revision;
        tracing::info!(event = "sync_round", %commit, builds, broken, "read the branch");
    } else {
        let dir = &snapshot.revision;
        tracing::info!(event = "sync_round", %dir, builds, broken, "read the directory");
    }
    let mut objects = render_builds(&loaded.builds, &shared.builds)?;
    // A Build whose cluster template cannot run it is set aside like a broken file: one team's
    // template does not stop the others' builds, and prune holds while it is unknown.
    let problems = deploy::cluster_template_problems(&shared.kube, &[], &objects).await?;
    for p in &problems {
        let file = (loaded.builds.iter())
            .find(|lb| {
                Target::of(lb).is_ok_and(|t| {
                    Some(&t.namespace) == p.object.namespace.as_ref() && t.name == p.object.name
                })
            })
            .map_or_else(|| p.object.to_string(), |lb| lb.origin.file.clone());
        tracing::error!(event = "build_skipped", object = %p.object, error = %p.message, "skipped a build its cluster template cannot run");
        loaded.broken.push(tolerant::Broken {
            file,
            error: p.to_string(),
        });
    }
    objects.retain(|m| !problems.iter().any(|p| p.object == m.id));
    manifest::sort(&mut objects);
    let rendered = Rendered {
        builds: objects,
        ..Rendered::default()
    };
    let opts = DeployOptions {
        prune_hold: prune_hold(&loaded.broken),
        ..shared.deploy.clone()
    };
    let prepared = deploy::prepare(&shared.kube, &rendered, &opts).await?;
    let mut submitted: Vec<ObjectId> = Vec::new();
    let mut waiting = false;
    deploy::apply(&shared.kube, &prepared, &opts, |id, action| {
        match action {
            Action::HeldBack(why) => {
                tracing::warn!(event = "prune_held_back", object = %id, reason = %why, "not pruned");
            }
            Action::Created | Action::Configured if engine::is_build_object(id) => {
                submitted.push(id.clone());
            }
            Action::Skipped(why) => {
                waiting = true;
                tracing::info!(event = "build_waiting", workflow = %id, reason = %why, "changed spec waits");
            }
            _ => {}
        }
    })
    .await?;
    let by_workflow: BTreeMap<(String, String), &LoadedBuild> = loaded
        .builds
        .iter()
        .filter_map(|lb| Target::of(lb).ok().map(|t| ((t.namespace, t.name), lb)))
        .collect();
    let key = |id: &ObjectId| (id.namespace.clone().unwrap_or_default(), id.name.clone());
    let mut follow: Vec<Target> = Vec::new();
    for id in &submitted {
        if let Some(lb) = by_workflow.get(&key(id)) {
            shared.metrics.builds_started.inc();
            tracing::info!(event = "build_submitted", build = %label(lb), workflow = %id, "submitted");
            follow.extend(Target::of(lb).ok());
        }
    }
    // Workflows that exist and were not submitted now: at start, all of them (a finished one
    // is harvested at once: a Workload lost by a crash is written now); later, running ones
    // nobody follows (e.g. re-submitted by `buildplane retry`).
    for p in prepared
        .objects
        .iter()
        .filter(|p| engine::is_build_object(&p.manifest.id))
    {
        let (Some(live), Some(lb)) = (&p.live, by_workflow.get(&key(&p.manifest.id))) else {
            continue;
        };
        let finished =
            crate::engine::for_object(&p.manifest.id).is_some_and(|e| e.is_finished(live));
        if !submitted.contains(&p.manifest.id) && (startup || !finished) {
            follow.extend(Target::of(lb).ok());
        }
    }
    spawn_follower(shared, follow, followers);
    Ok(Round { waiting })
}

/// Files shown by name in a held-back prune's reason; the rest are counted.
const HOLD_FILES_SHOWN: usize = 5;

/// Why --prune must not act this round: some files did not load (broken, unreadable, or set
/// aside because two files define the same Build). What they define is unknown, so no object
/// that no loaded file renders can be called undeclared. Prune resumes with the first round in
/// which every file loads.
fn prune_hold(broken: &[tolerant::Broken]) -> Option<String> {
    if broken.is_empty() {
        return None;
    }
    let names: Vec<&str> = broken
        .iter()
        .take(HOLD_FILES_SHOWN)
        .map(|b| b.file.as_str())
        .collect();
    let more = broken.len().saturating_sub(HOLD_FILES_SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let files = if broken.len() == 1 { "file" } else { "files" };
    Some(format!(
        "{} {files} of the source did not load ({}{more}); what they define is unknown",
        broken.len(),
        names.join(", ")
    ))
}

fn label(lb: &LoadedBuild) -> String {
    format!("{}/{}", lb.build.organization(), lb.build.metadata.name)
}

/// Follows `targets` in the background; each result goes to the emit worker.
fn spawn_follower(shared: &Arc<Shared>, targets: Vec<Target>, followers: &mut JoinSet<()>) {
    let targets: Vec<Target> = {
        let mut following = shared.following();
        targets
            .into_iter()
            .filter(|t| following.insert(t.object_ref()))
            .collect()
    };
    if targets.is_empty() {
        return;
    }
    let shared = shared.clone();
    followers.spawn(async move {
        let builds: BTreeMap<String, LoadedBuild> = targets
            .iter()
            .map(|t| (t.label(), t.build.clone()))
            .collect();
        let keys: Vec<String> = targets.iter().map(Target::object_ref).collect();
        let mut done = HashSet::new();
        let watched = lifecycle::watch::watch(&shared.kube, targets, None, |event| {
            let Event::Finished(r) = event else { return };
            let seen = Instant::now();
            shared.following().remove(&r.workflow);
            done.insert(r.workflow.clone());
            if let Some(build) = builds.get(&r.build) {
                let _ = shared.finished.send(Finished {
                    outcome: r.clone(),
                    build: build.clone(),
                    seen,
                });
            }
        })
        .await;
        if let Err(e) = watched {
            let mut following = shared.following();
            for k in keys.iter().filter(|k| !done.contains(*k)) {
                following.remove(k);
            }
            shared.metrics.reconcile_error("follow");
            tracing::error!(event = "reconcile_error", error = %error_line(&e), "following builds failed");
        }
    });
}

/// Emits finished builds one after the other (Git pushes are serialized anyway) until every
/// sender is gone.
async fn emit_worker(
    mut rx: mpsc::UnboundedReceiver<Finished>,
    emitter: Emitter,
    metrics: Arc<Metrics>,
) {
    while let Some(mut f) = rx.recv().await {
        emitter.emit(&mut f.outcome, &f.build.build).await;
        let o = &f.outcome;
        metrics.finished(o, f.seen.elapsed(), "");
        tracing::info!(
            event = "build_finished",
            build = %o.build,
            workflow = %o.workflow,
            phase = %o.phase,
            result = o.verdict().as_str(),
            workload = %o.workload_summary(),
            detail = o.message.as_deref().or(o.workload_error().as_deref()).unwrap_or(""),
            emitted = %o.notes().join("; "),
            "build finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(n: usize) -> Vec<tolerant::Broken> {
        (0..n)
            .map(|i| tolerant::Broken {
                file: format!("f{i}.yaml"),
                error: "invalid YAML".into(),
            })
            .collect()
    }

    #[test]
    fn prune_is_held_only_while_files_do_not_load_and_says_which() {
        assert_eq!(prune_hold(&[]), None);
        let one = prune_hold(&broken(1)).unwrap();
        assert!(
            one.starts_with("1 file of the source did not load (f0.yaml)"),
            "{one}"
        );
        let many = prune_hold(&broken(7)).unwrap();
        assert!(
            many.contains("7 files") && many.contains("f4.yaml and 2 more)"),
            "{many}"
        );
        assert!(!many.contains("f5.yaml"), "{many}");
    }
}
