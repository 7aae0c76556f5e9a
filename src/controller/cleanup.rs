//! A deleted Build, before its finalizer goes: its build object on the build plane is stopped
//! while it runs (Argo's terminate), deleted once it finished, then the Workload it applied
//! is deleted if the rules of `core::cleanup` allow, then the finalizer is removed. Each step
//! is idempotent (a retry starts from the top); each failure is the Build's condition
//! `CleanedUp=False CleanupFailed` and is retried with backoff.
//!
//! A BuildPlane (or its kubeconfig Secret) that no longer exists holds nothing: as Argo CD
//! drops an Application's finalizer when its destination cluster is no longer defined, and
//! Flux's kustomize-controller when it can no longer build a client, the build object is left
//! to the plane (its TTL) and a Warning Event on the Build says so. A plane that exists but
//! cannot be reached or refuses is retried: it still runs the build.

use super::Ctx;
use super::events::EventType;
use super::planes::BUILD_ANNOTATION;
use super::reconcile::{
    Freshness, ReconcileError, Status, on_plane, parse_status, patch_build, plane_for,
};
use crate::core::cleanup::{self as rules, BuildObjectStep, Claim, LiveBuildObject, WorkloadStep};
use crate::core::conditions::{self, Condition, TYPE_BUILD_TRIGGERED};
use crate::core::manifest::ObjectId;
use crate::core::spec::{self, Origin};
use crate::core::workload;
use crate::engine::{self, Engine};
use crate::report::error_line;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::controller::Action;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What the reconcile does after a cleanup step.
pub enum Next {
    /// The finalizer was removed (or was never there): the Build is gone.
    Gone,
    /// The build object was asked to stop; the next step waits for it.
    Wait(Action),
}

/// Cleans up after the deleted Build `obj` (`value` is its JSON, `status` what it records).
pub async fn cleanup(
    ctx: &Ctx,
    obj: &DynamicObject,
    value: &Value,
    status: &mut Status,
    set: &mut impl FnMut(&mut Status, Condition),
) -> Result<Next, ReconcileError> {
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
    let Some(remove) = rules::remove_finalizer_patch(&finalizers) else {
        ctx.memory().gone(ns, name);
        return Ok(Next::Gone);
    };
    let failed = |e| ReconcileError::Cleanup(Box::new(e));
    if let Some((wait, object)) = build_object(ctx, obj, value, status)
        .await
        .map_err(failed)?
    {
        set(
            status,
            Condition {
                type_: conditions::TYPE_CLEANED_UP.to_owned(),
                status: conditions::STATUS_FALSE.to_owned(),
                reason: conditions::REASON_BUILD_STOPPING.to_owned(),
                message: format!(
                    "{object} was asked to stop; it is deleted once it finished (within {} s)",
                    rules::STOP_GRACE.as_secs()
                ),
                observed_generation: obj.metadata.generation,
                last_transition_time: None,
            },
        );
        return Ok(Next::Wait(Action::requeue(wait)));
    }
    workload(ctx, obj, value, status).await.map_err(failed)?;
    patch_build(ctx, obj, remove)
        .await
        .map_err(|e| failed(ReconcileError::ControlPlane(e)))?;
    ctx.memory().gone(ns, name);
    tracing::info!("cleaned up; finalizer removed");
    Ok(Next::Gone)
}

/// The engine a Build's object was made by: its own, or the default when the spec is no
/// longer readable (the object's place is known from the Build's name alone).
fn engine_of(value: &Value, ns: &str, name: &str) -> &'static dyn Engine {
    let origin = Origin {
        file: format!("Build {ns}/{name}"),
        document: 1,
        documents: 1,
    };
    spec::build_from_value(&origin, value.clone())
        .ok()
        .and_then(|b| engine::for_build(&origin, &b).ok())
        .unwrap_or(engine::DEFAULT)
}

/// The build object's step: `Some((wait, object))` while it is asked to stop and still
/// running, `None` once there is nothing (left) to do on the plane.
async fn build_object(
    ctx: &Ctx,
    obj: &DynamicObject,
    value: &Value,
    status: &Status,
) -> Result<Option<(Duration, String)>, ReconcileError> {
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    let eng = engine_of(value, ns, name);
    let id = eng.build_object_id(ns, name);
    let triggered = conditions::find_condition(&status.conditions, TYPE_BUILD_TRIGGERED)
        .is_some_and(Condition::is_true);
    // Nothing was submitted for a Build whose status says none was (a submit whose status
    // write failed leaves the build object to its TTL).
    let submitted =
        status.spec_hash.is_some() || triggered || ctx.memory().awaiting(ns, name).is_some();
    if !submitted {
        return Ok(None);
    }
    let wanted = value
        .pointer("/metadata/labels")
        .and_then(|l| l.get(crate::core::buildplane::BUILD_PLANE_LABEL))
        .and_then(Value::as_str);
    let plane = match plane_for(ctx, ns, wanted, Freshness::Now).await {
        Ok(p) => p,
        Err(
            e @ (ReconcileError::BuildPlaneNotFound(_) | ReconcileError::SecretNotFound { .. }),
        ) => {
            let note = format!(
                "{}: {id} on its build plane, if still there, is left as it is",
                error_line(&e)
            );
            ctx.report(obj, EventType::Warning, "BuildPlaneGone", note)
                .await;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A plane that serves no such API (its engine uninstalled) holds no build object.
    let Some(r) = plane
        .kube
        .resource(&id.api_version, &id.kind)
        .await
        .map_err(on_plane(&plane))?
    else {
        return Ok(None);
    };
    let live = plane.kube.get(&r, &id).await.map_err(on_plane(&plane))?;
    let me = format!("{ns}/{name}");
    let facts = live.as_ref().map(|l| LiveBuildObject {
        ours: l
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(BUILD_ANNOTATION))
            .and_then(Value::as_str)
            == Some(me.as_str()),
        finished: eng.is_finished(l),
        stop_requested: eng.stop_requested(l),
    });
    let waited = facts
        .filter(|f| f.stop_requested)
        .map(|_| ctx.memory().stop_waited(ns, name, Instant::now()));
    let text = |p: &str| {
        live.as_ref()
            .and_then(|l| l.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match rules::build_object_step(facts, waited) {
        BuildObjectStep::Absent => Ok(None),
        BuildObjectStep::NotOurs => {
            tracing::info!(object = %id, "the build object of that name is not this Build's; left as it is");
            Ok(None)
        }
        BuildObjectStep::Stop => {
            plane
                .kube
                .merge_patch(
                    &r,
                    &id,
                    &eng.stop_patch(crate::core::builds::StopMode::Terminate),
                )
                .await
                .map_err(on_plane(&plane))?;
            ctx.memory().stop_waited(ns, name, Instant::now());
            let note = format!("{id} asked to stop (the Build is being deleted)");
            ctx.report(obj, EventType::Normal, "BuildStopping", note)
                .await;
            Ok(Some((rules::STOP_GRACE, id.to_string())))
        }
        BuildObjectStep::Wait(left) => Ok(Some((left, id.to_string()))),
        BuildObjectStep::Delete => {
            let uid = text("/metadata/uid");
            plane
                .kube
                .delete_exact(&r, &id, uid.as_deref(), None)
                .await
                .map_err(on_plane(&plane))?;
            let note = format!("{id} deleted");
            ctx.report(obj, EventType::Normal, "BuildObjectDeleted", note)
                .await;
            Ok(None)
        }
    }
}

/// The Workload the deleted Build applied last: deleted or kept by `core::cleanup`'s rule,
/// against every other Build of the namespace as listed now (not a cache: nothing is deleted
/// on a stale view).
async fn workload(
    ctx: &Ctx,
    obj: &DynamicObject,
    value: &Value,
    status: &Status,
) -> Result<(), ReconcileError> {
    let Some(workload_name) = status.workload.clone() else {
        return Ok(());
    };
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let cp = &ctx.control_plane;
    let failed = |e: crate::kube::KubeError| ReconcileError::ControlPlane(error_line(&e));
    let Some(r) = cp
        .resource(workload::API_VERSION, workload::KIND)
        .await
        .map_err(failed)?
    else {
        return Ok(());
    };
    let id = ObjectId {
        api_version: workload::API_VERSION.to_owned(),
        kind: workload::KIND.to_owned(),
        namespace: Some(ns.to_owned()),
        name: workload_name,
    };
    let Some(live) = cp.get(&r, &id).await.map_err(failed)? else {
        return Ok(());
    };
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().clone(), ns, &ctx.builds);
    let listed = api
        .list(&ListParams::default())
        .await
        .map_err(|e| ReconcileError::ControlPlane(format!("listing Builds in {ns}: {e}")))?;
    let others: Vec<Claim> = listed
        .items
        .iter()
        .filter(|b| b.metadata.uid != obj.metadata.uid)
        .filter_map(|b| serde_json::to_value(b).ok())
        .map(|b| claim(ns, &b))
        .collect();
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let owner = (
        text(value, "/spec/owner/projectName"),
        text(value, "/spec/owner/componentName"),
    );
    match rules::workload_step(&live, ns, (&owner.0, &owner.1), &others) {
        WorkloadStep::Delete => {
            let (uid, rv) = (
                text(&live, "/metadata/uid"),
                text(&live, "/metadata/resourceVersion"),
            );
            cp.delete_exact(&r, &id, Some(&uid), Some(&rv))
                .await
                .map_err(failed)?;
            let note =
                format!("{id} deleted: buildplane created it and no other Build points at it");
            ctx.report(obj, EventType::Normal, "WorkloadDeleted", note)
                .await;
        }
        WorkloadStep::Keep(why) => {
            let note = format!("{id} kept: {why}");
            ctx.report(obj, EventType::Normal, "WorkloadKept", note)
                .await;
        }
    }
    Ok(())
}

/// What another Build of namespace `ns` says of the Workload it points at.
fn claim(ns: &str, build: &Value) -> Claim {
    let text = |p: &str| {
        build
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let status = parse_status(build);
    let updated = conditions::find_condition(&status.conditions, conditions::TYPE_WORKLOAD_UPDATED)
        .is_some_and(|c| c.is_true());
    Claim {
        build: format!("{ns}/{}", text("/metadata/name")),
        workload: status.workload,
        owner: (
            text("/spec/owner/projectName"),
            text("/spec/owner/componentName"),
        ),
        updated,
        deleting: build.pointer("/metadata/deletionTimestamp").is_some(),
    }
}
