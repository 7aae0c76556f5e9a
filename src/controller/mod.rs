//! `buildplane controller`: Build custom resources in a control plane, built on one or more
//! build planes. A kube-runtime controller watches Builds (and BuildPlanes, which re-trigger the
//! Builds of their namespace); every build plane in use is watched for Workflow changes, which
//! trigger the owning Build (no polling). Reconciles are thin: `reconcile.rs` drives the same
//! engine, harvest and emit code as the CLI.

pub mod planes;
pub mod reconcile;

use crate::kube::{ClientSettings, Kube, KubeError};
use crate::pipeline::emit::Emitter;
use crate::serve::Metrics;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use planes::{Plane, Planes};
use reconcile::ReconcileError;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub control_plane: ClientSettings,
    /// Reconciles in flight at once.
    pub concurrency: u16,
    /// Per-request timeout towards build planes.
    pub plane_request_timeout: Duration,
}

/// The controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The control plane's kubeconfig is unusable.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The control plane does not serve the CRDs (install them with `apply --control-plane`).
    #[error(
        "the control plane serves no {0} (openchoreo.dev/v1alpha1): install it with `buildplane apply --control-plane`"
    )]
    NoCrd(&'static str),
}

/// Shared by every reconcile.
pub struct Ctx {
    pub control_plane: Kube,
    pub builds: ApiResource,
    pub buildplanes: ApiResource,
    pub planes: Planes,
    pub emitter: Emitter,
    pub metrics: Arc<Metrics>,
    /// Build namespace → the plane serving it (dropped when a BuildPlane changes).
    by_namespace: Mutex<HashMap<String, Arc<Plane>>>,
    /// Builds whose Workflow was just created and not yet seen by the plane's watch.
    awaiting: Mutex<HashSet<(String, String)>>,
    /// The status last written per Build, until the watch cache shows it.
    written: Mutex<HashMap<(String, String), reconcile::Status>>,
    /// Consecutive failures per Build with the same reason, for the backoff.
    failures: Mutex<HashMap<(String, String), (String, u32)>>,
}

impl Ctx {
    fn expect_workflow(&self, ns: &str, name: &str) {
        if let Ok(mut a) = self.awaiting.lock() {
            a.insert((ns.to_owned(), name.to_owned()));
        }
    }

    fn awaiting(&self, ns: &str, name: &str) -> bool {
        self.awaiting
            .lock()
            .is_ok_and(|a| a.contains(&(ns.to_owned(), name.to_owned())))
    }

    fn written(&self, ns: &str, name: &str) -> Option<reconcile::Status> {
        let key = (ns.to_owned(), name.to_owned());
        self.written.lock().ok()?.get(&key).cloned()
    }

    fn drop_written(&self, ns: &str, name: &str) {
        if let Ok(mut w) = self.written.lock() {
            w.remove(&(ns.to_owned(), name.to_owned()));
        }
    }

    fn remember_written(&self, ns: &str, name: &str, status: reconcile::Status) {
        if let Ok(mut w) = self.written.lock() {
            w.insert((ns.to_owned(), name.to_owned()), status);
        }
    }

    /// The plane's watch has the Build's Workflow.
    fn seen(&self, ns: &str, name: &str) {
        if let Ok(mut a) = self.awaiting.lock() {
            a.remove(&(ns.to_owned(), name.to_owned()));
        }
    }

    /// The Build made progress: its backoff starts over.
    fn reset_backoff(&self, ns: &str, name: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&(ns.to_owned(), name.to_owned()));
        }
    }

    /// The Build is done: nothing about it is kept.
    fn forget(&self, ns: &str, name: &str) {
        self.seen(ns, name);
        self.reset_backoff(ns, name);
    }

    fn plane_of_namespace(&self, ns: &str) -> Option<Arc<Plane>> {
        self.by_namespace.lock().ok()?.get(ns).cloned()
    }

    fn remember_plane(&self, ns: &str, plane: Arc<Plane>) {
        if let Ok(mut m) = self.by_namespace.lock() {
            m.insert(ns.to_owned(), plane);
        }
    }

    fn metrics_started(&self) {
        self.metrics.builds_started.inc();
    }

    fn metrics_finished(&self, succeeded: bool, emit: Option<Duration>) {
        if succeeded {
            self.metrics.builds_succeeded.inc();
        } else {
            self.metrics.builds_failed.inc();
        }
        if let Some(d) = emit {
            self.metrics.observe_emit(d);
        }
    }
}

/// An `openchoreo.dev/v1alpha1` resource (Build, BuildPlane, Workload).
pub fn openchoreo(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "openchoreo.dev".into(),
        version: "v1alpha1".into(),
        api_version: "openchoreo.dev/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Backoff after `n` consecutive failures: 1 s doubling to 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

fn error_policy(obj: Arc<DynamicObject>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    ctx.metrics.reconcile_errors.inc();
    if !e.retryable() {
        return Action::await_change();
    }
    let key = (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    );
    // The backoff grows while the same failure repeats; a different one starts it over.
    let reason = e.condition(None).map(|c| c.reason).unwrap_or_default();
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let entry = f.entry(key).or_insert_with(|| (reason.clone(), 0));
            if entry.0 != reason {
                *entry = (reason, 0);
            }
            entry.1 += 1;
            entry.1
        })
        .unwrap_or(1);
    Action::requeue(backoff(n - 1))
}

/// Runs until `shutdown` completes; in-flight reconciles finish first.
pub async fn run(
    settings: ControllerSettings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), ControllerError> {
    let cp = Kube::connect(&settings.control_plane).await?;
    for kind in ["Build", "BuildPlane", "Workload"] {
        if cp
            .resource("openchoreo.dev/v1alpha1", kind)
            .await?
            .is_none()
        {
            return Err(ControllerError::NoCrd(kind));
        }
    }
    let builds = openchoreo("Build", "builds");
    let buildplanes = openchoreo("BuildPlane", "buildplanes");
    let (trigger_tx, trigger_rx) = futures::channel::mpsc::unbounded::<(String, String)>();
    let ctx = Arc::new(Ctx {
        control_plane: cp.clone(),
        builds: builds.clone(),
        buildplanes: buildplanes.clone(),
        planes: Planes::new(trigger_tx, settings.plane_request_timeout),
        emitter: Emitter::control_plane_only(cp.clone()),
        metrics,
        by_namespace: Default::default(),
        awaiting: Default::default(),
        failures: Default::default(),
        written: Default::default(),
    });
    let controller = Controller::new_with(
        Api::<DynamicObject>::all_with(cp.client().clone(), &builds),
        watcher::Config::default(),
        builds.clone(),
    );
    let store = controller.store();
    let (b1, b2) = (builds.clone(), builds.clone());
    let plane_ctx = ctx.clone();
    let triggers =
        trigger_rx.map(move |(ns, name)| ObjectRef::new_with(&name, b1.clone()).within(&ns));
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .watches_with(
            Api::<DynamicObject>::all_with(cp.client().clone(), &buildplanes),
            buildplanes.clone(),
            watcher::Config::default(),
            move |bp| {
                let ns = bp.metadata.namespace.clone().unwrap_or_default();
                // A changed BuildPlane: its namespace's Builds look it up again.
                if let Ok(mut m) = plane_ctx.by_namespace.lock() {
                    m.remove(&ns);
                }
                store
                    .state()
                    .into_iter()
                    .filter(|b| b.metadata.namespace.as_deref() == Some(ns.as_str()))
                    .map(|b| ObjectRef::from_obj_with(&*b, b2.clone()))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_on(triggers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile failed");
            }
        })
        .await;
    let (plane_requests, plane_writes) = ctx.planes.counts().await;
    tracing::info!(
        event = "shutdown",
        control_plane_requests = cp.requests(),
        control_plane_writes = cp.writes(),
        build_plane_requests = plane_requests,
        build_plane_writes = plane_writes,
        "stopped; HTTP requests sent"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
