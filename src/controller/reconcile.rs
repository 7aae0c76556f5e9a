//! One reconcile of a Build: upstream's sequence (reference §3) on the shared pipeline pieces —
//! the engine renders the prerequisites and the Workflow, `watch::harvest` reads the result,
//! the `Emitter` applies the Workload — with every failure turned into a condition once, through
//! [`ReconcileError::condition`], and retried with backoff.

use super::Ctx;
use super::planes::{BUILD_ANNOTATION, Plane};
use crate::core::buildplane::{BuildPlaneSpec, KUBECONFIG_KEY};
use crate::core::manifest::Manifest;
use crate::core::spec::{self, Build, Origin};
use crate::core::workflow::{
    self, Condition, Phase, REASON_BUILD_FAILED, TYPE_BUILD_COMPLETED, TYPE_BUILD_TRIGGERED,
    TYPE_WORKLOAD_UPDATED, WorkloadOutcome,
};
use crate::engine;
use crate::kube::KubeError;
use crate::pipeline::LoadedBuild;
use crate::pipeline::watch::{self, Target};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
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
    /// The BuildPlane's kubeconfig Secret is missing, lacks the key, or is not a kubeconfig.
    #[error("BuildPlane {plane}: {message}")]
    Credentials { plane: String, message: String },
    /// The build plane refused or did not answer while preparing the build.
    #[error("build plane of {plane}: {source}")]
    Prerequisites {
        plane: String,
        #[source]
        source: KubeError,
    },
    /// Creating the Workflow failed.
    #[error("build plane of {plane}: {source}")]
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
}

impl ReconcileError {
    /// The condition this failure sets; `None` when there is nothing to tell on the Build
    /// (the status write itself failed).
    pub fn condition(&self, generation: Option<i64>) -> Option<Condition> {
        let (type_, reason) = match self {
            ReconcileError::InvalidBuild(_) => (TYPE_BUILD_TRIGGERED, "InvalidBuild"),
            ReconcileError::BuildPlaneNotFound(_) => (TYPE_BUILD_TRIGGERED, "BuildPlaneNotFound"),
            ReconcileError::Credentials { .. } => {
                (TYPE_BUILD_TRIGGERED, "BuildPlaneCredentialsInvalid")
            }
            ReconcileError::Prerequisites { .. } => (TYPE_BUILD_TRIGGERED, "PrerequisitesFailed"),
            ReconcileError::Workflow { .. } => (TYPE_BUILD_TRIGGERED, "WorkflowCreateFailed"),
            ReconcileError::Workload(detail) => {
                let mut c = Condition::workload_update_failed(generation);
                c.message = format!("{}: {detail}", c.message);
                return Some(c);
            }
            ReconcileError::ControlPlane(_) => return None,
        };
        Some(Condition {
            type_: type_.to_owned(),
            status: workflow::STATUS_FALSE.to_owned(),
            reason: reason.to_owned(),
            message: self.to_string(),
            observed_generation: generation,
            last_transition_time: None,
        })
    }

    /// Whether retrying can help without a change to the Build.
    pub fn retryable(&self) -> bool {
        !matches!(self, ReconcileError::InvalidBuild(_))
    }
}

/// What the reconcile found out, to be written into the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    conditions: Vec<Condition>,
    image: String,
}

/// The status to start from: the object's, unless the watch cache has not caught up with the
/// status this controller last wrote (then that one: conditions only move forward, and acting
/// on the stale copy would submit or emit twice).
fn current_status(ctx: &Ctx, ns: &str, name: &str, observed: Status) -> Status {
    let Some(written) = ctx.written(ns, name) else {
        return observed;
    };
    let caught_up = written.image == observed.image
        && written.conditions.iter().all(|w| {
            workflow::find_condition(&observed.conditions, &w.type_)
                .is_some_and(|o| o.status == w.status && o.reason == w.reason)
        });
    if caught_up {
        ctx.drop_written(ns, name);
        observed
    } else {
        written
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn parse_status(obj: &Value) -> Status {
    let conditions = obj
        .pointer("/status/conditions")
        .and_then(|c| serde_json::from_value::<Vec<Condition>>(c.clone()).ok())
        .unwrap_or_default();
    let image = obj
        .pointer("/status/imageStatus/image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Status { conditions, image }
}

fn is(status: &Status, type_: &str, reason: &str, value: bool) -> bool {
    workflow::find_condition(&status.conditions, type_)
        .is_some_and(|c| c.reason == reason && c.is_true() == value)
}

/// Reconciles one Build in a span naming it; the status is written once at the end, only when
/// it changed.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let ns = obj.metadata.namespace.clone().unwrap_or_default();
    let name = obj.metadata.name.clone().unwrap_or_default();
    let span = tracing::info_span!("reconcile", build = %format!("{ns}/{name}"));
    reconcile_build(obj, ctx, ns, name).instrument(span).await
}

async fn reconcile_build(
    obj: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
    ns: String,
    name: String,
) -> Result<Action, ReconcileError> {
    let generation = obj.metadata.generation;
    let value =
        serde_json::to_value(&*obj).map_err(|e| ReconcileError::ControlPlane(e.to_string()))?;
    let before = current_status(&ctx, &ns, &name, parse_status(&value));
    // Upstream ignores a Build whose Workload was updated; a failed build is never resubmitted.
    if is(
        &before,
        TYPE_WORKLOAD_UPDATED,
        workflow::REASON_WORKLOAD_UPDATED,
        true,
    ) || is(&before, TYPE_BUILD_COMPLETED, REASON_BUILD_FAILED, false)
    {
        ctx.forget(&ns, &name);
        return Ok(Action::await_change());
    }
    let mut status = Status {
        conditions: before.conditions.clone(),
        image: before.image.clone(),
    };
    let stamp = now();
    let mut set = |status: &mut Status, c: Condition| {
        workflow::set_condition(&mut status.conditions, c, &stamp);
    };
    if workflow::find_condition(&status.conditions, workflow::TYPE_BUILD_INITIATED).is_none() {
        set(&mut status, Condition::build_initiated(generation));
    }
    let outcome = progress(&ctx, &ns, &name, &value, generation, &mut status, &mut set).await;
    if let Err(e) = &outcome
        && let Some(c) = e.condition(generation)
    {
        set(&mut status, c);
    }
    if status.conditions != before.conditions || status.image != before.image {
        write_status(&ctx, &ns, &name, &status).await?;
    }
    match outcome {
        Ok(action) => {
            ctx.reset_backoff(&ns, &name);
            Ok(action)
        }
        Err(e) => {
            tracing::warn!(error = %e, "build not progressing");
            Err(e)
        }
    }
}

async fn write_status(ctx: &Ctx, ns: &str, name: &str, s: &Status) -> Result<(), ReconcileError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.control_plane.client().clone(), ns, &ctx.builds);
    let mut body = json!({"status": {"conditions": s.conditions}});
    if !s.image.is_empty() {
        body["status"]["imageStatus"] = json!({"image": s.image});
    }
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map_err(|e| ReconcileError::ControlPlane(e.to_string()))?;
    ctx.remember_written(ns, name, s.clone());
    Ok(())
}

/// Everything after BuildInitiated: trigger once, then follow the Workflow from the plane's
/// watch store, then apply the Workload.
async fn progress(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    value: &Value,
    generation: Option<i64>,
    status: &mut Status,
    set: &mut impl FnMut(&mut Status, Condition),
) -> Result<Action, ReconcileError> {
    let origin = Origin {
        file: format!("Build {ns}/{name}"),
        document: 1,
        documents: 1,
    };
    let build = spec::build_from_value(&origin, value.clone())
        .map_err(|e| ReconcileError::InvalidBuild(e.to_string()))?;
    let eng = engine::for_build(&origin, &build)
        .map_err(|e| ReconcileError::InvalidBuild(e.to_string()))?;
    eng.validate(&origin, &build)
        .map_err(|e| ReconcileError::InvalidBuild(e.to_string()))?;
    let triggered = workflow::find_condition(&status.conditions, TYPE_BUILD_TRIGGERED)
        .is_some_and(Condition::is_true);
    let plane = plane_for(ctx, ns, !triggered).await?;
    let mut wf = eng.build_object(&build);
    let (wf_ns, wf_name) = (
        wf.id.namespace.clone().unwrap_or_default(),
        wf.id.name.clone(),
    );
    if !triggered {
        submit(ctx, &plane, eng, &build, &mut wf, ns, name).await?;
        set(status, Condition::build_triggered(generation));
    }
    let live = match plane.workflow(&wf_ns, &wf_name).await {
        Some(live) => {
            serde_json::to_value(&*live).map_err(|e| ReconcileError::ControlPlane(e.to_string()))?
        }
        // Just created: its watch event is on the way and triggers the next reconcile.
        None if ctx.awaiting(ns, name) => return Ok(Action::await_change()),
        // Not in the watch cache: a lagging cache must not end a build, so ask the plane.
        None => match plane
            .kube
            .get(&workflow_api(&plane, &wf).await?, &wf.id)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) => {
                let mut c = Condition::build_failed(generation);
                c.message =
                    format!("Build workflow {wf_ns}/{wf_name} was deleted before it finished");
                set(status, c);
                ctx.metrics_finished(false, None);
                return Ok(Action::await_change());
            }
            Err(source) => {
                return Err(ReconcileError::Workflow {
                    plane: plane.key.clone(),
                    source,
                });
            }
        },
    };
    ctx.seen(ns, name);
    let phase = workflow::status(&live).phase;
    match phase {
        Phase::Unknown | Phase::Pending => return Ok(Action::await_change()),
        Phase::Running => set(status, Condition::build_in_progress(generation)),
        Phase::Failed => {
            set(status, Condition::build_failed(generation));
            ctx.metrics_finished(false, None);
        }
        Phase::Succeeded => {
            set(status, Condition::build_completed(generation));
            let target = Target {
                build: LoadedBuild {
                    origin,
                    build: build.clone(),
                },
                namespace: wf_ns,
                workflow: wf_name,
            };
            let result = watch::harvest(&target, &live);
            status.image = result.image.clone().unwrap_or_default();
            let emitting = std::time::Instant::now();
            let emission = ctx.emitter.emit(&result, &build).await;
            match emission.outcome {
                WorkloadOutcome::Updated => {
                    set(status, Condition::workload_updated(generation));
                    ctx.metrics_finished(true, Some(emitting.elapsed()));
                }
                WorkloadOutcome::Failed(detail) => return Err(ReconcileError::Workload(detail)),
                other => {
                    ctx.metrics_finished(false, None);
                    for c in workflow::conditions_for(&Phase::Succeeded, other, generation) {
                        set(status, c);
                    }
                }
            }
        }
    }
    Ok(Action::await_change())
}

/// The plane serving namespace `ns`. With `fresh`, the BuildPlane and its Secret are read now
/// (a build is about to be submitted: a rotated Secret must take effect); otherwise the cached
/// plane is used when there is one.
async fn plane_for(ctx: &Ctx, ns: &str, fresh: bool) -> Result<Arc<Plane>, ReconcileError> {
    if !fresh && let Some(p) = ctx.plane_of_namespace(ns) {
        return Ok(p);
    }
    let planes: Api<DynamicObject> =
        Api::namespaced_with(ctx.control_plane.client().clone(), ns, &ctx.buildplanes);
    let list = planes
        .list(&ListParams::default())
        .await
        .map_err(|e| ReconcileError::ControlPlane(e.to_string()))?;
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let bp = items
        .into_iter()
        .next()
        .ok_or_else(|| ReconcileError::BuildPlaneNotFound(ns.to_owned()))?;
    let bp_name = bp.metadata.name.clone().unwrap_or_default();
    let key = format!("{ns}/{bp_name}");
    let cred = |message: String| ReconcileError::Credentials {
        plane: key.clone(),
        message,
    };
    let spec: BuildPlaneSpec =
        serde_json::from_value(bp.data.get("spec").cloned().unwrap_or_default())
            .map_err(|e| cred(format!("invalid spec: {e}")))?;
    let r = &spec.kubernetes_cluster.cluster_ref;
    let secret_ns = r.namespace.clone().unwrap_or_else(|| ns.to_owned());
    let secrets: Api<Secret> = Api::namespaced(ctx.control_plane.client().clone(), &secret_ns);
    let shown = format!("Secret {secret_ns}/{}", r.name);
    let secret = secrets
        .get_opt(&r.name)
        .await
        .map_err(|e| ReconcileError::ControlPlane(format!("reading {shown}: {e}")))?
        .ok_or_else(|| cred(format!("{shown} not found")))?;
    let text = secret
        .data
        .as_ref()
        .and_then(|d| d.get(KUBECONFIG_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .ok_or_else(|| cred(format!("{shown} has no key {KUBECONFIG_KEY:?}")))?;
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    let plane = ctx
        .planes
        .get(&key, &version, &text, &shown)
        .await
        .map_err(|e| cred(e.to_string()))?;
    ctx.remember_plane(ns, plane.clone());
    Ok(plane)
}

/// Applies the organization's prerequisites (once per client) and the Workflow, annotated with
/// the Build it runs so the plane's watch can trigger it.
async fn submit(
    ctx: &Ctx,
    plane: &Plane,
    eng: &dyn engine::Engine,
    build: &Build,
    wf: &mut Manifest,
    ns: &str,
    name: &str,
) -> Result<(), ReconcileError> {
    let pre = |source| ReconcileError::Prerequisites {
        plane: plane.key.clone(),
        source,
    };
    let org = build.organization().to_owned();
    // Held while applying, so concurrent first builds of an organization apply them once.
    let mut prepared = plane.prepared.lock().await;
    if !prepared.contains(&org) {
        for m in eng.prerequisites(build) {
            let r = plane
                .kube
                .resource(&m.id.api_version, &m.id.kind)
                .await
                .map_err(pre)?
                .ok_or_else(|| pre(no_api(&m)))?;
            plane.kube.apply(&r, &m, false, true).await.map_err(pre)?;
        }
        prepared.insert(org);
    }
    drop(prepared);
    wf.object["metadata"]["annotations"][BUILD_ANNOTATION] = json!(format!("{ns}/{name}"));
    let failed = |source| ReconcileError::Workflow {
        plane: plane.key.clone(),
        source,
    };
    let r = plane
        .kube
        .resource(&wf.id.api_version, &wf.id.kind)
        .await
        .map_err(failed)?
        .ok_or_else(|| failed(no_api(wf)))?;
    ctx.expect_workflow(ns, name);
    plane
        .kube
        .apply(&r, wf, false, true)
        .await
        .map_err(failed)?;
    ctx.metrics_started();
    Ok(())
}

/// The Workflow API of the plane (discovery, cached by the client).
async fn workflow_api(
    plane: &Plane,
    wf: &Manifest,
) -> Result<crate::kube::Resource, ReconcileError> {
    let failed = |source| ReconcileError::Workflow {
        plane: plane.key.clone(),
        source,
    };
    plane
        .kube
        .resource(&wf.id.api_version, &wf.id.kind)
        .await
        .map_err(failed)?
        .ok_or_else(|| failed(no_api(wf)))
}

fn no_api(m: &Manifest) -> KubeError {
    KubeError::NoApi {
        object: m.id.to_string(),
        api_version: m.id.api_version.clone(),
        kind: m.id.kind.clone(),
    }
}
