//! One reconcile of a Build: upstream's sequence (reference §3) on the shared lifecycle — the
//! engine renders the prerequisites and the build object, the submit-once rule
//! (`plan::decide_build`, as apply and sync use it) decides whether to submit, harvest and the
//! `Emitter` turn a finished build into a [`BuildOutcome`] whose conditions go into the status —
//! with every failure turned into a condition once, through [`ReconcileError::condition`], and
//! retried with backoff. Whether a Build is done is one question, [`recorded`], asked of the
//! status for the spec the Build has now: an edited spec is built again (once), an unchanged
//! one never. A deleted Build is cleaned up by `cleanup.rs` before its finalizer goes.

use super::Ctx;
use super::cleanup;
use super::events::EventType;
use super::leader::Leadership;
use super::planes::{BUILD_ANNOTATION, Plane};
use crate::core::buildplane::{
    BuildPlaneSpec, ClusterForm, ClusterRef, DEFAULT_PLANE_ANNOTATION, InlineAuth, KUBECONFIG_KEY,
    PlaneChoiceError, ValueFrom, choose_plane, inline_kubeconfig, resolve_value,
};
use crate::core::catalog::{self, Catalog};
use crate::core::cleanup::{self as rules, FINALIZER};
use crate::core::conditions::{
    self, Condition, REASON_BUILD_FAILED, TYPE_BUILD_COMPLETED, TYPE_BUILD_TRIGGERED,
    TYPE_CLEANED_UP, TYPE_WORKLOAD_UPDATED,
};
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::plan::{self, BuildDecision};
use crate::core::progress::Phase;
use crate::core::spec::{self, Origin};
use crate::engine::{self, Engine};
use crate::kube::{KubeError, policy};
use crate::lifecycle::{BuildOutcome, Target, Verdict, follow, harvest::harvest};
use crate::pipeline::LoadedBuild;
use crate::report::error_line;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// Why a reconcile could not go on. Each variant maps to one condition (type, reason, message).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Build is not valid (unknown template, missing parameter, …).
    #[error("{0}")]
    InvalidBuild(String),
    /// No BuildPlane in the Build's namespace.
    #[error("no BuildPlane in namespace {0}")]
    BuildPlaneNotFound(String),
    /// Several BuildPlanes and no rule picks one, or the one the Build names is not there.
    #[error("{0}")]
    BuildPlaneChoice(String),
    /// The BuildPlane's kubeconfig Secret lacks the key, or is not a kubeconfig.
    #[error("BuildPlane {plane}: {message}")]
    Credentials { plane: String, message: String },
    /// The BuildPlane's kubeconfig Secret does not exist.
    #[error("BuildPlane {plane}: {secret} not found")]
    SecretNotFound {
        plane: String,
        /// `Secret namespace/name`.
        secret: String,
    },
    /// The BuildPlane's kubeconfig asks for what the controller refuses: a command, a file.
    #[error("BuildPlane {plane}: kubeconfig {secret}")]
    KubeconfigRefused {
        plane: String,
        /// `Secret namespace/name`.
        secret: String,
        #[source]
        source: policy::Refused,
    },
    /// The BuildPlane names a Secret in another namespace, and cross-namespace references are off.
    #[error(
        "BuildPlane {plane}: Secret {secret} is not in the BuildPlane's namespace; cross-namespace references are refused (run the controller with --allow-cross-namespace-refs to allow them)"
    )]
    CrossNamespaceSecret {
        plane: String,
        /// `namespace/name`.
        secret: String,
    },
    /// The build plane refused or did not answer while preparing the build.
    #[error("build plane of {plane}")]
    Prerequisites {
        plane: String,
        #[source]
        source: KubeError,
    },
    /// Creating, reading or replacing the build object failed.
    #[error("build plane of {plane}")]
    Workflow {
        plane: String,
        #[source]
        source: KubeError,
    },
    /// Applying the Workload into the control plane failed.
    #[error("{0}")]
    Workload(String),
    /// The control plane refused a read or the status write.
    #[error("control plane: {0}")]
    ControlPlane(String),
    /// The finalizer could not be added, so nothing is built (a Build deleted later could
    /// leave its build running).
    #[error("adding the finalizer {FINALIZER}: {0}")]
    Finalizer(String),
    /// A step of cleaning up after the deleted Build failed; the finalizer stays.
    #[error("cleaning up after the deleted Build")]
    Cleanup(#[source] Box<ReconcileError>),
}

impl ReconcileError {
    /// The condition this failure sets; `None` when there is nothing to tell on the Build
    /// (the status write itself failed).
    pub fn condition(&self, generation: Option<i64>) -> Option<Condition> {
        let (type_, reason) = match self {
            ReconcileError::InvalidBuild(_) => (TYPE_BUILD_TRIGGERED, "InvalidBuild"),
            ReconcileError::BuildPlaneNotFound(_) => (TYPE_BUILD_TRIGGERED, "BuildPlaneNotFound"),
            ReconcileError::BuildPlaneChoice(_) => (TYPE_BUILD_TRIGGERED, "BuildPlaneAmbiguous"),
            ReconcileError::Credentials { .. } | ReconcileError::SecretNotFound { .. } => {
                (TYPE_BUILD_TRIGGERED, "BuildPlaneCredentialsInvalid")
            }
            ReconcileError::KubeconfigRefused { .. } => {
                (TYPE_BUILD_TRIGGERED, "BuildPlaneKubeconfigRefused")
            }
            ReconcileError::CrossNamespaceSecret { .. } => {
                (TYPE_BUILD_TRIGGERED, "CrossNamespaceSecretRefused")
            }
            ReconcileError::Prerequisites { .. } => (TYPE_BUILD_TRIGGERED, "PrerequisitesFailed"),
            ReconcileError::Workflow { .. } => (TYPE_BUILD_TRIGGERED, "WorkflowCreateFailed"),
            ReconcileError::Workload(detail) => {
                let mut c = Condition::workload_update_failed(generation);
                c.message = format!("{}: {detail}", c.message);
                return Some(c);
            }
            ReconcileError::ControlPlane(_) => return None,
            ReconcileError::Finalizer(_) => (TYPE_BUILD_TRIGGERED, "FinalizerNotAdded"),
            ReconcileError::Cleanup(_) => (TYPE_CLEANED_UP, conditions::REASON_CLEANUP_FAILED),
        };
        Some(Condition {
            type_: type_.to_owned(),
            status: conditions::STATUS_FALSE.to_owned(),
            reason: reason.to_owned(),
            message: error_line(self),
            observed_generation: generation,
            last_transition_time: None,
        })
    }

    /// Whether retrying can help without a change to the Build. A refused kubeconfig can: a
    /// fixed Secret triggers nothing, the retry reads it. A cross-namespace reference cannot:
    /// only a BuildPlane change (which triggers its Builds) or a restart with the flag fixes it.
    pub fn retryable(&self) -> bool {
        match self {
            ReconcileError::InvalidBuild(_) | ReconcileError::CrossNamespaceSecret { .. } => false,
            ReconcileError::Cleanup(inner) => inner.retryable(),
            _ => true,
        }
    }
}

/// What the reconcile found out, to be written into the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub conditions: Vec<Condition>,
    pub image: String,
    /// The spec hash of the build submitted last (`status.specHash`), as inventories record it.
    pub spec_hash: Option<String>,
    /// The Workload this Build applied last (`status.workloadRef.name`).
    pub workload: Option<String>,
    /// The BuildPlane the build runs on (`status.buildPlaneRef.name`).
    pub plane: Option<String>,
    /// `status.phase`: always `conditions::phase_word` of the conditions once written.
    pub phase: String,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub(super) fn parse_status(obj: &Value) -> Status {
    let conditions = obj
        .pointer("/status/conditions")
        .and_then(|c| serde_json::from_value::<Vec<Condition>>(c.clone()).ok())
        .unwrap_or_default();
    let text = |pointer: &str| obj.pointer(pointer).and_then(Value::as_str);
    Status {
        conditions,
        image: text("/status/imageStatus/image").unwrap_or("").to_owned(),
        spec_hash: text("/status/specHash").map(str::to_owned),
        workload: text("/status/workloadRef/name").map(str::to_owned),
        plane: text("/status/buildPlaneRef/name").map(str::to_owned),
        phase: text("/status/phase").unwrap_or("").to_owned(),
    }
}

/// Reconciles one Build in a span naming it; the status is written once at the end, only when
/// it changed.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    ctx.queue.started(
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default(),
    );
    // A standby does nothing; on taking the lead it reconciles every Build.
    let Leadership::Leading(term) = *ctx.leading.borrow() else {
        return Ok(Action::await_change());
    };
    let ns = obj.metadata.namespace.clone().unwrap_or_default();
    let name = obj.metadata.name.clone().unwrap_or_default();
    let span = tracing::info_span!("reconcile", build = %format!("{ns}/{name}"));
    let _timed = Timed::start(&ctx.metrics);
    let work = reconcile_build(obj, ctx.clone(), ns, name).instrument(span.clone());
    // Losing the lead stops the reconcile at its next await, as a crash would: the next leader
    // starts over from the cluster's state.
    let mut leading = ctx.leading.clone();
    tokio::select! {
        biased;
        Ok(_) = leading.wait_for(|l| *l != Leadership::Leading(term)) => {
            span.in_scope(|| tracing::info!("no longer leading: reconcile stopped"));
            Ok(Action::await_change())
        }
        r = work => r,
    }
}

/// One reconcile in `reconciles_in_flight` and, when it ends (finished or dropped at
/// shutdown), in `reconcile_duration_seconds`.
struct Timed<'a> {
    metrics: &'a crate::serve::Metrics,
    started: std::time::Instant,
}

impl<'a> Timed<'a> {
    fn start(metrics: &'a crate::serve::Metrics) -> Timed<'a> {
        metrics.reconciles_in_flight.inc();
        Timed {
            metrics,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.metrics.reconciles_in_flight.dec();
        let took = self.started.elapsed().as_secs_f64();
        self.metrics.reconcile_duration.observe(took);
    }
}

async fn reconcile_build(
    obj: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
    ns: String,
    name: String,
) -> Result<Action, ReconcileError> {
    let generation = obj.metadata.generation;
    let value =
        super::compact::unpack(&obj).map_err(|e| ReconcileError::ControlPlane(e.to_string()))?;
    // `before`: the status as written; `status` starts from one not yet written, if any.
    let (before, deferred) = {
        let mut memory = ctx.memory();
        let before = memory.current_status(&ns, &name, parse_status(&value));
        (before, memory.take_deferred(&ns, &name))
    };
    let (mut status, mut write_by) = match deferred {
        Some((s, by)) => (s, Some(by)),
        None => (before.clone(), None),
    };
    let stamp = now();
    let mut set = |status: &mut Status, c: Condition| {
        conditions::set_condition(&mut status.conditions, c, &stamp);
    };
    let outcome = if obj.metadata.deletion_timestamp.is_some() {
        write_by = None;
        match cleanup::cleanup(&ctx, &obj, &value, &mut status, &mut set).await {
            // The finalizer is removed: the Build is gone, there is no status to write.
            Ok(cleanup::Next::Gone) => return Ok(Action::await_change()),
            Ok(cleanup::Next::Wait(action)) => Ok(action),
            Err(e) => Err(e),
        }
    } else {
        if conditions::find_condition(&status.conditions, conditions::TYPE_BUILD_INITIATED)
            .is_none()
        {
            set(&mut status, Condition::build_initiated(generation));
        }
        match add_finalizer(&ctx, &obj).await {
            Ok(()) => {
                let mut submitted = false;
                let r = progress(
                    &ctx,
                    &ns,
                    &name,
                    &value,
                    generation,
                    &mut status,
                    &mut set,
                    &mut submitted,
                )
                .await;
                if submitted {
                    write_by = Some(std::time::Instant::now() + WRITE_WITHIN);
                }
                r
            }
            Err(e) => Err(e),
        }
    };
    if let Err(e) = &outcome
        && let Some(c) = e.condition(generation)
    {
        set(&mut status, c);
    }
    status.phase = conditions::phase_word(&status.conditions).to_owned();
    if status != before {
        // Just submitted and no outcome recorded yet (`recorded_outcome`, the same answer as
        // "is this Build done"): written when the build finishes or the window closes,
        // whichever comes first (a build that finishes quickly is one write).
        let wait = write_by
            .filter(|_| outcome.is_ok() && recorded_outcome(&status) == Recorded::Open)
            .and_then(|by| by.checked_duration_since(std::time::Instant::now()))
            .filter(|w| !w.is_zero());
        if let (Some(wait), Some(by)) = (wait, write_by) {
            let mut memory = ctx.memory();
            memory.defer_status(&ns, &name, status, by);
            memory.reset_backoff(&ns, &name);
            return Ok(Action::requeue(wait));
        }
        write_status(&ctx, &ns, &name, &status).await?;
        publish_transition(&ctx, &obj, &before, &status);
    }
    match outcome {
        Ok(action) => {
            ctx.memory().reset_backoff(&ns, &name);
            Ok(action)
        }
        Err(e) => {
            tracing::warn!(error = %error_line(&e), "build not progressing");
            Err(e)
        }
    }
}

/// When a Build whose build object turned out to exist already is decided again (its watch
/// event triggers it sooner).
const EXISTS_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How long after a submit its status write may wait for the build's end (see
/// [`reconcile_build`]): the conditions keep their times, `kubectl get builds` shows
/// `Running` at most this much later.
const WRITE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// One Event for the status write just made, when it moved a condition
/// (`conditions::transition_event`): reason and message the condition's, the action its type.
/// Published off the reconcile's path: an Event reports, it decides nothing.
fn publish_transition(ctx: &Arc<Ctx>, obj: &DynamicObject, before: &Status, after: &Status) {
    let Some(c) = conditions::transition_event(&before.conditions, &after.conditions) else {
        return;
    };
    let kind = if conditions::is_warning(c) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    let (reason, action, note) = (c.reason.clone(), c.type_.clone(), c.message.clone());
    let reference = kube::Resource::object_ref(obj, &ctx.builds);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        ctx.publish(&reference, kind, &reason, &action, &note).await;
    });
}

/// Adds the finalizer to a Build that lacks it, before anything is built for it.
/// A finalizer this process added is not added again while the watch cache lags behind (the
/// patch's `test` of the cached finalizers would fail): the next reconcile comes at once when
/// the build object's own watch event arrives.
async fn add_finalizer(ctx: &Ctx, obj: &DynamicObject) -> Result<(), ReconcileError> {
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let current = obj.metadata.finalizers.clone().unwrap_or_default();
    let Some(patch) = rules::add_finalizer_patch(&current) else {
        ctx.memory().finalizer_seen(ns, name);
        return Ok(());
    };
    if ctx.memory().finalizer_added(ns, name) {
        return Ok(());
    }
    patch_build(ctx, obj, patch)
        .await
        .map_err(ReconcileError::Finalizer)?;
    ctx.memory().remember_finalizer(ns, name);
    Ok(())
}

/// A JSON patch of the Build object itself (its finalizers), named by the caller's error.
pub(super) async fn patch_build(
    ctx: &Ctx,
    obj: &DynamicObject,
    patch: Value,
) -> Result<(), String> {
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| e.to_string())?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.control_plane.client().clone(), ns, &ctx.builds);
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .map(drop)
        .map_err(|e| format!("Build {ns}/{name}: {e}"))
}

/// Writes the status (a merge patch) and remembers it until the watch cache shows it.
async fn write_status(ctx: &Ctx, ns: &str, name: &str, s: &Status) -> Result<(), ReconcileError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.control_plane.client().clone(), ns, &ctx.builds);
    // imageStatus always, as upstream serializes it (`image: ""` before a success, and again
    // when a new run of an edited spec starts).
    let mut body =
        json!({"status": {"conditions": s.conditions, "imageStatus": {"image": s.image}}});
    if let Some(h) = &s.spec_hash {
        body["status"]["specHash"] = json!(h);
    }
    if let Some(w) = &s.workload {
        body["status"]["workloadRef"] = json!({"name": w});
    }
    if let Some(p) = &s.plane {
        body["status"]["buildPlaneRef"] = json!({"name": p});
    }
    body["status"]["phase"] = json!(s.phase);
    let written = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await;
    if let Err(e) = written {
        // Nothing was written: the next reconcile starts from what the Build shows, and the
        // plane's build object says whether it was submitted.
        return Err(ReconcileError::ControlPlane(e.to_string()));
    }
    ctx.memory().remember_written(ns, name, s.clone());
    Ok(())
}

/// The spec hash a Build's status says was submitted. A Build triggered before the status
/// carried it was submitted for the spec it has (a Build's spec was never rebuilt then).
pub(super) fn recorded_spec_hash(status: &Status, rendered: &str) -> Option<String> {
    let triggered = conditions::find_condition(&status.conditions, TYPE_BUILD_TRIGGERED)
        .is_some_and(Condition::is_true);
    match &status.spec_hash {
        Some(h) => Some(h.clone()),
        None if triggered => Some(plan::recorded_spec_hash(rendered)),
        None => None,
    }
}

/// What a Build's status records of the build of its current spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded<'a> {
    /// No finished build of this spec: never submitted, still running, or the spec was edited
    /// since the build the status shows.
    Open,
    /// Finished for good: the build failed, its Workload was applied, or the Workload's name is
    /// another component's. Nothing more is done for this spec (a touched Build, a resync, a
    /// restart, the build object's TTL change nothing).
    Done,
    /// Finished without the Workload in the control plane (refused and retried, or no usable
    /// output): followed again while the build object exists, and left as recorded once it is
    /// gone. The condition is the outcome recorded, so the same outcome is counted once.
    Unsettled(&'a Condition),
}

/// Whether the Build is done, for the spec it has now (`rendered`, its spec hash): the one
/// answer the early return and the once-only count of a finished build both use. Done is per
/// spec: an edited Build is [`Recorded::Open`] again and gets one new build.
pub fn recorded<'a>(status: &'a Status, rendered: &str) -> Recorded<'a> {
    let this_spec = plan::recorded_spec_hash(rendered);
    if recorded_spec_hash(status, rendered).as_deref() != Some(this_spec.as_str()) {
        return Recorded::Open;
    }
    recorded_outcome(status)
}

/// What the status's conditions record of the build they describe, whichever spec that was
/// ([`recorded`] checks the spec first).
fn recorded_outcome(status: &Status) -> Recorded<'_> {
    let find = |t: &str| conditions::find_condition(&status.conditions, t);
    if find(TYPE_BUILD_COMPLETED).is_some_and(|c| c.reason == REASON_BUILD_FAILED && !c.is_true()) {
        return Recorded::Done;
    }
    match find(TYPE_WORKLOAD_UPDATED) {
        Some(c) if c.is_true() && c.reason == conditions::REASON_WORKLOAD_UPDATED => Recorded::Done,
        Some(c) if c.reason == conditions::REASON_WORKLOAD_OWNED_ELSEWHERE => Recorded::Done,
        Some(c) => Recorded::Unsettled(c),
        None => Recorded::Open,
    }
}

/// A new build of the Build's spec starts: the previous run's outcome goes (its Workload
/// stays recorded until this run applies one).
fn start_over(status: &mut Status) {
    status
        .conditions
        .retain(|c| c.type_ != TYPE_BUILD_COMPLETED && c.type_ != TYPE_WORKLOAD_UPDATED);
    status.image.clear();
}

/// Everything after BuildInitiated: whether the Build is done, the submit-once rule, then the
/// build object followed from the plane's watch store, then the outcome. `submitted` turns
/// true when a build object was created.
#[allow(clippy::too_many_arguments)]
async fn progress(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    value: &Value,
    generation: Option<i64>,
    status: &mut Status,
    set: &mut impl FnMut(&mut Status, Condition),
    submitted_now: &mut bool,
) -> Result<Action, ReconcileError> {
    let origin = Origin {
        file: format!("Build {ns}/{name}"),
        document: 1,
        documents: 1,
    };
    let invalid = |e: spec::SpecError| ReconcileError::InvalidBuild(e.to_string());
    let build = spec::build_from_value(&origin, value.clone()).map_err(invalid)?;
    let loaded = LoadedBuild { origin, build };
    let (target, mut object) = Target::with_object(&loaded).map_err(invalid)?;
    let rendered = engine::spec_hash_of(&object.object)
        .unwrap_or_default()
        .to_owned();
    if recorded(status, &rendered) == Recorded::Done {
        // Done before the status carried the spec hash: the spec it has now is the one built,
        // and recording it lets a later edit be seen.
        status
            .spec_hash
            .get_or_insert_with(|| plan::recorded_spec_hash(&rendered));
        ctx.memory().forget(ns, name);
        return Ok(Action::await_change());
    }
    let eng = target.engine;
    eng.validate(&loaded.origin, &loaded.build)
        .map_err(invalid)?;
    // The controller has no values: a built-in template, or one the Build says is on the plane
    // (read from it before the build is submitted).
    catalog::check(&Catalog::builtin(), &loaded.origin, &loaded.build).map_err(invalid)?;
    let recorded_hash = recorded_spec_hash(status, &rendered);
    let wanted = value
        .pointer("/metadata/labels")
        .and_then(|l| l.get(crate::core::buildplane::BUILD_PLANE_LABEL))
        .and_then(Value::as_str);
    let fresh = match recorded_hash {
        Some(_) => Freshness::Cached,
        None if ctx.memory().failing(ns, name) => Freshness::Now,
        None => Freshness::Recent,
    };
    let plane = plane_for(ctx, ns, wanted, fresh).await?;
    let plane_name = plane.key.rsplit_once('/').map_or(&*plane.key, |(_, n)| n);
    status.plane = Some(plane_name.to_owned());
    let awaiting = ctx.memory().awaiting(ns, name);
    // What the plane's watch holds now; nothing waits for its first listing (a submitted build
    // the store does not hold is read from the plane below, and a create of one that exists
    // changes nothing). Just after a replacement the store may still hold the object of the
    // earlier spec: that one is on its way out, not the one created.
    let cached = plane
        .cached_workflow(&target.namespace, &target.name)
        .filter(|live| awaiting.is_none() || engine::spec_hash_of(live) == awaiting.as_deref());
    let live = match cached {
        Some(live) => Some(live),
        // Just created: its watch event is on the way and triggers the next reconcile.
        None if awaiting.is_some() => return Ok(Action::await_change()),
        // Not in the watch cache although submitted: a lagging cache must not end a build.
        None if recorded_hash.is_some() => get_build_object(&plane, &object).await?,
        // Nor may a cache that has not listed yet make a new leader (or a restarted controller)
        // submit again what its predecessor submitted just before it stopped. A read that
        // fails tells nothing: the submit's own requests then say what is wrong.
        None if !plane.listed() => get_build_object(&plane, &object).await.unwrap_or(None),
        None => None,
    };
    let decision = plan::decide_build(
        &rendered,
        recorded_hash.as_deref(),
        live.as_ref().map(|l| engine::live_build(eng, l)),
    );
    let submitted = |status: &mut Status, set: &mut dyn FnMut(&mut Status, Condition)| {
        set(status, Condition::build_triggered(generation));
        status.spec_hash = Some(plan::recorded_spec_hash(&rendered));
    };
    match (decision, live) {
        (BuildDecision::Submit, _) => {
            if !submit(ctx, &plane, eng, &loaded, &mut object, ns, name).await? {
                return Ok(Action::requeue(EXISTS_RETRY));
            }
            *submitted_now = true;
            // A new spec whose earlier build object is gone (its TTL) starts over too.
            start_over(status);
            submitted(status, set);
            Ok(Action::await_change())
        }
        // An edited Build whose earlier build still runs: the watch triggers when it ends.
        (BuildDecision::Busy, _) => {
            tracing::info!("spec edited while its build runs; built once that build finished");
            Ok(Action::await_change())
        }
        (BuildDecision::Replace, _) => {
            replace(&plane, &object).await?;
            if !submit(ctx, &plane, eng, &loaded, &mut object, ns, name).await? {
                return Ok(Action::requeue(EXISTS_RETRY));
            }
            *submitted_now = true;
            start_over(status);
            submitted(status, set);
            Ok(Action::await_change())
        }
        // Finished, and its build object since deleted (its TTL): the outcome stays as recorded.
        (BuildDecision::AlreadySubmitted, None)
            if matches!(recorded(status, &rendered), Recorded::Unsettled(_)) =>
        {
            ctx.memory().forget(ns, name);
            Ok(Action::await_change())
        }
        (BuildDecision::AlreadySubmitted, None) => {
            let o = BuildOutcome::failed(target.label(), target.object_ref(), follow::DELETED);
            finish(
                ctx, &o, &rendered, generation, status, set, None, &plane.key,
            );
            Ok(Action::await_change())
        }
        (BuildDecision::AlreadySubmitted, Some(live)) => {
            ctx.memory().seen(ns, name);
            // Submitted by a reconcile whose status write failed: the status says so now.
            submitted(status, set);
            let plane = &plane.key;
            follow_live(
                ctx, &target, &live, &rendered, generation, status, set, plane,
            )
            .await
        }
    }
}

/// A submitted build object as the plane's watch shows it: running sets BuildInProgress, a
/// finished one is harvested, emitted, and its outcome's conditions written.
#[allow(clippy::too_many_arguments)]
async fn follow_live(
    ctx: &Ctx,
    target: &Target,
    live: &Value,
    rendered: &str,
    generation: Option<i64>,
    status: &mut Status,
    set: &mut impl FnMut(&mut Status, Condition),
    plane: &str,
) -> Result<Action, ReconcileError> {
    let phase = target.engine.status(live).phase;
    match phase {
        Phase::Unknown | Phase::Pending | Phase::Running => {
            // A pod no node can take says so, whatever the Workflow's phase; scheduled again,
            // the build is in progress.
            if let Some(u) = target.engine.unschedulable(live) {
                set(status, Condition::build_unschedulable(generation, &u));
            } else if phase == Phase::Running {
                set(status, Condition::build_in_progress(generation));
            }
        }
        Phase::Failed | Phase::Succeeded => {
            let mut o = harvest(target, live);
            let emitting = std::time::Instant::now();
            ctx.emitter.emit(&mut o, &target.build.build).await;
            status.image = o.image.clone().unwrap_or_default();
            if let Some(w) = o.applied_to_cluster() {
                status.workload = Some(w.to_owned());
            }
            finish(
                ctx,
                &o,
                rendered,
                generation,
                status,
                set,
                Some(emitting.elapsed()),
                plane,
            );
            // A refused Workload is retried with backoff (its condition is the outcome's).
            if o.verdict() == Verdict::EmitFailed {
                let detail = o.emit_failure().unwrap_or_default().to_owned();
                return Err(ReconcileError::Workload(detail));
            }
        }
    }
    Ok(Action::await_change())
}

/// Writes a finished build's conditions (the outcome's, as every command reports them) and
/// counts it once: not when it will be retried (a refused Workload), and not when the status
/// already records this outcome for this spec ([`recorded`]: a later reconcile of the same
/// finished build).
#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &Ctx,
    o: &BuildOutcome,
    rendered: &str,
    generation: Option<i64>,
    status: &mut Status,
    set: &mut impl FnMut(&mut Status, Condition),
    emit_latency: Option<std::time::Duration>,
    plane: &str,
) {
    let conditions = o.conditions(generation);
    let already = match (recorded(status, rendered), conditions.last()) {
        (Recorded::Done, _) => true,
        (Recorded::Unsettled(c), Some(last)) => {
            (&c.type_, &c.status, &c.reason, &c.message)
                == (&last.type_, &last.status, &last.reason, &last.message)
        }
        _ => false,
    };
    for c in conditions {
        set(status, c);
    }
    if o.verdict() != Verdict::EmitFailed && !already {
        ctx.metrics
            .finished(o, emit_latency.unwrap_or_default(), plane);
    }
}

/// How long a reconcile waits for the first listing of BuildPlanes.
const LISTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// How recently a plane's Secrets must have been read for a build to be submitted with its
/// client: a Secret rotated without a change to its BuildPlane takes effect within this time,
/// at once for a Build whose last attempt failed.
pub const SECRETS_READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// How fresh the kubeconfig a plane's client was built from must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Whatever client is cached (following a build already submitted).
    Cached,
    /// Its Secrets read at most [`SECRETS_READ_WITHIN`] ago (submitting a build).
    Recent,
    /// Its Secrets read now (a retry after a failure, a cleanup).
    Now,
}

/// The plane serving a Build of namespace `ns` that names BuildPlane `wanted` (label
/// `openchoreo.dev/build-plane`) or none (`core::buildplane::choose_plane`), among the
/// BuildPlanes the controller's watch holds, from a client built from Secrets read as `fresh`
/// asks. The Secrets are read with a GET each, not watched: a watch of one Secret needs
/// `list` and `watch` on every Secret of the cluster (RBAC cannot name objects of tenants the
/// install does not know), which is more than the controller's `get` (see
/// `core::control_plane::cluster_role_rules`).
pub(super) async fn plane_for(
    ctx: &Ctx,
    ns: &str,
    wanted: Option<&str>,
    fresh: Freshness,
) -> Result<Arc<Plane>, ReconcileError> {
    let cached = ctx.memory().plane_of_namespace(ns, wanted);
    if let Some((p, read)) = cached {
        let usable = match fresh {
            Freshness::Cached => true,
            Freshness::Recent => read.elapsed() < SECRETS_READ_WITHIN,
            Freshness::Now => false,
        };
        if usable {
            return Ok(p);
        }
    }
    let read = std::time::Instant::now();
    // From the controller's watch of BuildPlanes: a BuildPlane it does not hold yet triggers
    // this namespace's Builds when it arrives. Until its first listing nothing is decided.
    let mut listed = ctx.buildplanes_listed.clone();
    let listed = tokio::time::timeout(LISTED_WITHIN, listed.wait_for(|l| *l));
    if !matches!(listed.await, Ok(Ok(_))) {
        return Err(ReconcileError::ControlPlane(format!(
            "BuildPlanes not listed within {}s",
            LISTED_WITHIN.as_secs()
        )));
    }
    let items: Vec<Arc<DynamicObject>> = ctx
        .buildplane_store
        .state()
        .into_iter()
        .filter(|bp| bp.metadata.namespace.as_deref() == Some(ns))
        .collect();
    let mut marked: Vec<(String, bool)> = items
        .iter()
        .map(|bp| {
            let default = bp
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_PLANE_ANNOTATION))
                .is_some_and(|v| v == "true");
            (bp.metadata.name.clone().unwrap_or_default(), default)
        })
        .collect();
    // By name: the store iterates in a hash map's order, and a condition message naming the
    // BuildPlanes must not change (a status write and an Event) from one reconcile to the next.
    marked.sort();
    let chosen = choose_plane(wanted, &marked).map_err(|e| match e {
        PlaneChoiceError::None => ReconcileError::BuildPlaneNotFound(ns.to_owned()),
        other => ReconcileError::BuildPlaneChoice(format!("namespace {ns}: {other}")),
    })?;
    let bp = items
        .iter()
        .find(|bp| bp.metadata.name.as_deref() == Some(chosen))
        .expect("the chosen BuildPlane is one of the list");
    let key = format!("{ns}/{chosen}");
    let cred = |message: String| ReconcileError::Credentials {
        plane: key.clone(),
        message,
    };
    let spec: BuildPlaneSpec =
        serde_json::from_value(bp.data.get("spec").cloned().unwrap_or_default())
            .map_err(|e| cred(format!("invalid spec: {e}")))?;
    let form = spec
        .kubernetes_cluster
        .form()
        .map_err(|e| cred(e.to_string()))?;
    let (text, version, shown) = match form {
        ClusterForm::Kubeconfig(r) => kubeconfig_secret(ctx, ns, &key, r).await?,
        ClusterForm::Inline { server, ca, auth } => {
            inline_cluster(ctx, ns, &key, bp, server, ca, auth).await?
        }
    };
    let plane = ctx
        .planes
        .get(&key, &version, &text, &shown)
        .await
        .map_err(|e| match e {
            KubeError::Refused { source, .. } => ReconcileError::KubeconfigRefused {
                plane: key.clone(),
                secret: shown.clone(),
                source,
            },
            other => cred(error_line(&other)),
        })?;
    ctx.memory().remember_plane(ns, wanted, plane.clone(), read);
    Ok(plane)
}

/// The kubeconfig of a BuildPlane's `clusterRef` Secret, its resourceVersion, and how it is
/// named in messages.
async fn kubeconfig_secret(
    ctx: &Ctx,
    ns: &str,
    key: &str,
    r: &ClusterRef,
) -> Result<(String, String, String), ReconcileError> {
    let cred = |message: String| ReconcileError::Credentials {
        plane: key.to_owned(),
        message,
    };
    let secret_ns = secret_namespace(ns, r, ctx.allow_cross_namespace_refs).map_err(|other| {
        ReconcileError::CrossNamespaceSecret {
            plane: key.to_owned(),
            secret: format!("{other}/{}", r.name),
        }
    })?;
    let secrets: Api<Secret> = Api::namespaced(ctx.control_plane.client().clone(), secret_ns);
    let shown = format!("Secret {secret_ns}/{}", r.name);
    let secret = secrets
        .get_opt(&r.name)
        .await
        .map_err(|e| ReconcileError::ControlPlane(format!("reading {shown}: {e}")))?
        .ok_or_else(|| ReconcileError::SecretNotFound {
            plane: key.to_owned(),
            secret: shown.clone(),
        })?;
    let text = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .ok_or_else(|| cred(format!("{shown} has no key {KUBECONFIG_KEY:?}")))?;
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    Ok((text, version, shown))
}

/// Reads a key of a Secret named by `secretRef`: (Secret name, key) → its bytes.
type SecretLookup<'a> = dyn FnMut(&str, &str) -> Result<Vec<u8>, String> + 'a;

/// Upstream's inline form as a kubeconfig (`core::buildplane::inline_kubeconfig`): values from
/// the BuildPlane itself or from Secrets of its own namespace (`secretRef` names a Secret, never
/// a namespace: no cross-namespace read is possible). The version is the BuildPlane's and each
/// Secret's resourceVersion: a change to any of them builds a new client.
async fn inline_cluster(
    ctx: &Ctx,
    ns: &str,
    key: &str,
    bp: &DynamicObject,
    server: &str,
    ca: Option<&ValueFrom>,
    auth: &InlineAuth,
) -> Result<(String, String, String), ReconcileError> {
    let cred = |message: String| ReconcileError::Credentials {
        plane: key.to_owned(),
        message,
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.control_plane.client().clone(), ns);
    // Secrets named by secretRef, read once each.
    let mut read: std::collections::BTreeMap<String, Secret> = Default::default();
    let mut wanted: Vec<&str> = Vec::new();
    let refs = [
        ca,
        auth.mtls.as_ref().map(|m| &m.client_cert),
        auth.mtls.as_ref().map(|m| &m.client_key),
        auth.bearer_token.as_ref(),
    ];
    for v in refs.into_iter().flatten() {
        if let Some(name) = v.secret_ref.as_deref().filter(|n| !n.is_empty())
            && v.value.as_deref().is_none_or(str::is_empty)
        {
            wanted.push(name);
        }
    }
    for name in wanted {
        if read.contains_key(name) {
            continue;
        }
        let shown = format!("Secret {ns}/{name}");
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(|e| ReconcileError::ControlPlane(format!("reading {shown}: {e}")))?
            .ok_or_else(|| ReconcileError::SecretNotFound {
                plane: key.to_owned(),
                secret: shown.clone(),
            })?;
        read.insert(name.to_owned(), secret);
    }
    let mut lookup = |name: &str, data_key: &str| -> Result<Vec<u8>, String> {
        read.get(name)
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(data_key))
            .map(|b| b.0.clone())
            .ok_or_else(|| format!("Secret {ns}/{name} has no key {data_key:?}"))
    };
    let resolve = |v: &ValueFrom, field: &'static str, b64: bool, lookup: &mut SecretLookup<'_>| {
        resolve_value(v, field, b64, &mut |n: &str, k: &str| lookup(n, k)).map_err(|e| match e {
            Ok(spec) => cred(spec.to_string()),
            Err(message) => cred(message),
        })
    };
    let ca = match ca {
        Some(v) => resolve(v, "tls.ca", true, &mut lookup)?,
        None => None,
    };
    let (cert_key, token) = match (&auth.mtls, &auth.bearer_token) {
        (Some(m), _) => {
            let cert = resolve(&m.client_cert, "auth.mtls.clientCert", true, &mut lookup)?
                .ok_or_else(|| {
                    cred(
                        "spec.kubernetesCluster.auth.mtls.clientCert: set value or secretRef"
                            .into(),
                    )
                })?;
            let k = resolve(&m.client_key, "auth.mtls.clientKey", true, &mut lookup)?.ok_or_else(
                || {
                    cred(
                        "spec.kubernetesCluster.auth.mtls.clientKey: set value or secretRef".into(),
                    )
                },
            )?;
            (Some((cert, k)), None)
        }
        (None, Some(t)) => {
            let t = resolve(t, "auth.bearerToken", false, &mut lookup)?.ok_or_else(|| {
                cred("spec.kubernetesCluster.auth.bearerToken: set value or secretRef".into())
            })?;
            let t = String::from_utf8(t)
                .map_err(|_| cred("spec.kubernetesCluster.auth.bearerToken: not UTF-8".into()))?;
            (None, Some(t.trim().to_owned()))
        }
        (None, None) => {
            return Err(cred(
                "spec.kubernetesCluster.auth: set mtls or bearerToken".into(),
            ));
        }
    };
    let text = inline_kubeconfig(
        server,
        ca.as_deref(),
        cert_key.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        token.as_deref(),
    );
    let mut version = bp.metadata.resource_version.clone().unwrap_or_default();
    for (name, s) in &read {
        version.push_str(&format!(
            ";{name}={}",
            s.metadata.resource_version.clone().unwrap_or_default()
        ));
    }
    Ok((text, version, format!("BuildPlane {key} (inline cluster)")))
}

/// The namespace of a BuildPlane's kubeconfig Secret: the BuildPlane's own (`plane_ns`), or
/// another one `clusterRef.namespace` names only when cross-namespace references are allowed
/// (`Err` holds it). The controller may read Secrets in every namespace — BuildPlanes live in
/// each tenant's — so without this a tenant's BuildPlane could borrow any namespace's
/// credentials.
fn secret_namespace<'a>(
    plane_ns: &'a str,
    r: &'a ClusterRef,
    allow_cross: bool,
) -> Result<&'a str, &'a str> {
    match r.namespace.as_deref() {
        None | Some("") => Ok(plane_ns),
        Some(named) if named == plane_ns || allow_cross => Ok(named),
        Some(other) => Err(other),
    }
}

/// Applies the organization's prerequisites (once per client) and creates the Workflow,
/// annotated with the Build it runs so the plane's watch can trigger it. False when a Workflow
/// of that name exists already.
async fn submit(
    ctx: &Ctx,
    plane: &Plane,
    eng: &dyn Engine,
    loaded: &LoadedBuild,
    wf: &mut Manifest,
    ns: &str,
    name: &str,
) -> Result<bool, ReconcileError> {
    let pre = |source| ReconcileError::Prerequisites {
        plane: plane.key.clone(),
        source,
    };
    let build = &loaded.build;
    let org = build.organization().to_owned();
    // A template only the plane has is read from it and checked before anything is written.
    let problems = crate::pipeline::deploy::cluster_template_problems(
        &plane.kube,
        &[],
        std::slice::from_ref(wf),
    )
    .await
    .map_err(pre)?;
    if let Some(p) = problems.first() {
        return Err(ReconcileError::InvalidBuild(p.message.clone()));
    }
    // Held while applying, so concurrent first builds of an organization apply them once.
    let mut prepared = plane.prepared.lock().await;
    if !prepared.contains(&org) {
        for m in eng.prerequisites(build) {
            let r = plane
                .kube
                .resource(&m.id.api_version, &m.id.kind)
                .await
                .map_err(pre)?
                .ok_or_else(|| pre(no_api(&m.id)))?;
            plane.kube.apply(&r, &m, false, true).await.map_err(pre)?;
        }
        prepared.insert(org);
    }
    drop(prepared);
    wf.object["metadata"]["annotations"][BUILD_ANNOTATION] = json!(format!("{ns}/{name}"));
    let r = workflow_api(plane, &wf.id).await?;
    // A create, not an apply: a build object is submitted once and never updated, and a
    // create costs the API server less. One that exists already (the watch had not shown it)
    // is not touched: the retry decides on it as the plane has it.
    if plane
        .kube
        .create(&r, wf)
        .await
        .map_err(on_plane(plane))?
        .is_none()
    {
        tracing::info!(object = %wf.id, "build object exists already; decided again once the watch shows it");
        return Ok(false);
    }
    // Only a created build object is awaited: after a failed apply the retry must submit.
    let spec_hash = engine::spec_hash_of(&wf.object).unwrap_or_default();
    ctx.memory().expect_build_object(ns, name, spec_hash);
    ctx.metrics.builds_started.inc();
    tracing::info!(event = "build_submitted", object = %wf.id, "build submitted");
    Ok(true)
}

/// The build object as the plane has it now (a GET: the watch cache may lag).
async fn get_build_object(plane: &Plane, wf: &Manifest) -> Result<Option<Value>, ReconcileError> {
    let api = workflow_api(plane, &wf.id).await?;
    plane.kube.get(&api, &wf.id).await.map_err(on_plane(plane))
}

/// Deletes a finished build object of an earlier spec, so the new one can take its name.
async fn replace(plane: &Plane, wf: &Manifest) -> Result<(), ReconcileError> {
    let api = workflow_api(plane, &wf.id).await?;
    plane
        .kube
        .delete(&api, &wf.id)
        .await
        .map_err(on_plane(plane))
}

/// A build-plane call about the build object failed.
pub(super) fn on_plane(plane: &Plane) -> impl Fn(KubeError) -> ReconcileError + '_ {
    |source| ReconcileError::Workflow {
        plane: plane.key.clone(),
        source,
    }
}

/// The build object's API on the plane (discovery, cached by the client).
async fn workflow_api(
    plane: &Plane,
    id: &ObjectId,
) -> Result<crate::kube::Resource, ReconcileError> {
    let failed = on_plane(plane);
    plane
        .kube
        .resource(&id.api_version, &id.kind)
        .await
        .map_err(&failed)?
        .ok_or_else(|| failed(no_api(id)))
}

fn no_api(id: &ObjectId) -> KubeError {
    KubeError::NoApi {
        object: id.to_string(),
        api_version: id.api_version.clone(),
        kind: id.kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(namespace: Option<&str>) -> ClusterRef {
        ClusterRef {
            name: "plane".into(),
            namespace: namespace.map(str::to_owned),
        }
    }

    #[test]
    fn a_secret_must_be_in_the_buildplanes_namespace_unless_allowed() {
        for allow in [false, true] {
            assert_eq!(secret_namespace("tenant", &r(None), allow), Ok("tenant"));
            assert_eq!(
                secret_namespace("tenant", &r(Some("")), allow),
                Ok("tenant")
            );
            assert_eq!(
                secret_namespace("tenant", &r(Some("tenant")), allow),
                Ok("tenant")
            );
        }
        let other = r(Some("platform"));
        assert_eq!(secret_namespace("tenant", &other, false), Err("platform"));
        assert_eq!(secret_namespace("tenant", &other, true), Ok("platform"));
    }

    #[test]
    fn refusals_are_build_triggered_conditions_naming_plane_secret_and_field() {
        let refused = ReconcileError::KubeconfigRefused {
            plane: "tenant/default".into(),
            secret: "Secret tenant/plane".into(),
            source: policy::Refused::Exec {
                field: "users[0].user.exec".into(),
            },
        };
        let c = refused.condition(Some(2)).unwrap();
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (TYPE_BUILD_TRIGGERED, "False", "BuildPlaneKubeconfigRefused")
        );
        assert!(
            c.message.starts_with(
                "BuildPlane tenant/default: kubeconfig Secret tenant/plane: users[0].user.exec is not allowed"
            ),
            "{}",
            c.message
        );
        assert!(refused.retryable(), "a fixed Secret is read on the retry");
        let cross = ReconcileError::CrossNamespaceSecret {
            plane: "tenant/default".into(),
            secret: "platform/plane".into(),
        };
        let c = cross.condition(None).unwrap();
        assert_eq!(c.reason, "CrossNamespaceSecretRefused");
        assert!(
            c.message.starts_with(
                "BuildPlane tenant/default: Secret platform/plane is not in the BuildPlane's namespace"
            ),
            "{}",
            c.message
        );
        assert!(c.message.contains("--allow-cross-namespace-refs"));
        assert!(!cross.retryable());
    }

    fn status(spec_hash: Option<&str>, conditions: Vec<Condition>) -> Status {
        Status {
            conditions,
            spec_hash: spec_hash.map(str::to_owned),
            ..Status::default()
        }
    }

    #[test]
    fn a_build_is_done_per_spec_and_only_with_a_final_outcome() {
        let s1 = "1".repeat(64);
        let s2 = "2".repeat(64);
        let h1 = plan::recorded_spec_hash(&s1);
        let base = || {
            vec![
                Condition::build_initiated(None),
                Condition::build_triggered(None),
            ]
        };
        let with = |extra: Vec<Condition>| {
            let mut c = base();
            c.extend(extra);
            status(Some(&h1), c)
        };
        let updated = with(vec![
            Condition::build_completed(None),
            Condition::workload_updated(None),
        ]);
        let failed = with(vec![Condition::build_failed(None)]);
        let conflict = with(vec![
            Condition::build_completed(None),
            Condition::workload_owned_elsewhere(None, "Workload acme/cart belongs to shop/pay"),
        ]);
        for done in [&updated, &failed, &conflict] {
            assert_eq!(recorded(done, &s1), Recorded::Done, "{done:?}");
            // The spec was edited since: the same status is open for the new spec.
            assert_eq!(recorded(done, &s2), Recorded::Open, "{done:?}");
        }
        let refused = with(vec![
            Condition::build_completed(None),
            Condition::workload_update_failed(None),
        ]);
        assert_eq!(
            recorded(&refused, &s1),
            Recorded::Unsettled(&refused.conditions[3])
        );
        let running = with(vec![Condition::build_in_progress(None)]);
        assert_eq!(recorded(&running, &s1), Recorded::Open);
        assert_eq!(recorded(&status(None, vec![]), &s1), Recorded::Open);
        // Triggered before the status carried a spec hash: done for the spec it has.
        let mut legacy = updated.clone();
        legacy.spec_hash = None;
        assert_eq!(recorded(&legacy, &s1), Recorded::Done);
        assert_eq!(recorded(&legacy, &s2), Recorded::Done);
    }

    #[test]
    fn cleanup_failures_are_one_condition_and_retried_as_their_cause() {
        let e = ReconcileError::Cleanup(Box::new(ReconcileError::ControlPlane(
            "listing Builds in acme: forbidden".into(),
        )));
        let c = e.condition(Some(3)).unwrap();
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("CleanedUp", "False", "CleanupFailed")
        );
        assert_eq!(
            c.message,
            "cleaning up after the deleted Build: control plane: listing Builds in acme: forbidden"
        );
        assert!(e.retryable());
        let cross = ReconcileError::Cleanup(Box::new(ReconcileError::CrossNamespaceSecret {
            plane: "acme/default".into(),
            secret: "platform/plane".into(),
        }));
        assert!(!cross.retryable(), "only a BuildPlane change helps");
        let gone = ReconcileError::SecretNotFound {
            plane: "acme/default".into(),
            secret: "Secret acme/plane".into(),
        };
        let c = gone.condition(None).unwrap();
        assert_eq!(c.reason, "BuildPlaneCredentialsInvalid");
        assert_eq!(
            c.message,
            "BuildPlane acme/default: Secret acme/plane not found"
        );
    }
}
