//! `buildplane controller`: Build custom resources in a control plane, built on one or more
//! build planes. A kube-runtime controller watches Builds (and BuildPlanes, which re-trigger the
//! Builds of their namespace); every build plane in use is watched for Workflow changes, which
//! trigger the owning Build (no polling). Reconciles are thin: `reconcile.rs` drives the same
//! engine, harvest and emit code as the CLI; `cleanup.rs` runs a deleted Build's finalizer.

pub mod cleanup;
pub mod compact;
pub mod events;
pub mod leader;
pub mod memory;
pub mod planes;
pub mod reconcile;
pub mod workloads;

use crate::emit::Emitter;
use crate::kube::policy::KubeconfigPolicy;
use crate::kube::{ClientSettings, Kube, KubeError};
use crate::serve::Metrics;
use events::{EventType, Publisher};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::watcher;
use leader::{Leadership, Stopping};
use memory::Memory;
use planes::{Plane, Planes};
use reconcile::ReconcileError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    pub control_plane: ClientSettings,
    /// Reconciles in flight at once.
    pub concurrency: u16,
    /// Per-request timeout towards build planes.
    pub plane_request_timeout: Duration,
    /// What a BuildPlane's kubeconfig Secret may ask of the controller (`--insecure-kubeconfig-exec`).
    pub kubeconfig_policy: KubeconfigPolicy,
    /// A BuildPlane may name a Secret in another namespace (`--allow-cross-namespace-refs`).
    pub allow_cross_namespace_refs: bool,
    /// Leader election (`--enable-leader-election`); without it this process always leads.
    pub election: Option<leader::ElectionSettings>,
    /// Only Builds and BuildPlanes with matching labels (`--watch-label-selector`): a shard.
    pub watch_label_selector: Option<String>,
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
    /// The API server refused `--watch-label-selector`.
    #[error("--watch-label-selector {selector:?}: {message}")]
    LabelSelector { selector: String, message: String },
}

/// Shared by every reconcile.
pub struct Ctx {
    pub control_plane: Kube,
    pub builds: ApiResource,
    pub buildplanes: ApiResource,
    pub planes: Planes,
    pub emitter: Emitter,
    pub metrics: Arc<Metrics>,
    /// A BuildPlane may name a Secret outside its namespace (off: the Secret must be its own).
    pub allow_cross_namespace_refs: bool,
    /// Publishes Events on Builds: transitions, and what a cleanup did (which outlives the
    /// deleted Build).
    pub events: Publisher,
    /// Every BuildPlane, kept current by the controller's watch of them (no LIST per build).
    pub buildplane_store: Store<DynamicObject>,
    /// True once that watch listed the BuildPlanes (see [`mark_listed`]).
    pub buildplanes_listed: tokio::sync::watch::Receiver<bool>,
    /// Whether this process leads: only the leader reconciles (standbys keep their caches).
    pub leading: tokio::sync::watch::Receiver<Leadership>,
    /// What is remembered of each Build between reconciles, in this leadership term.
    memory: Mutex<Memory<Arc<Plane>>>,
    /// Builds triggered and not yet reconciled (`buildplane_reconcile_queue_depth`).
    pub queue: Queue,
}

/// The Builds a change triggered that no reconcile has started on: kube-runtime's scheduler
/// does not tell its length, so every trigger on its way in is counted here, once per Build as
/// the scheduler holds it once, and taken out when a reconcile of it starts.
pub struct Queue {
    waiting: Mutex<std::collections::HashSet<(String, String)>>,
    depth: prometheus_client::metrics::gauge::Gauge,
}

impl Queue {
    pub fn new(depth: prometheus_client::metrics::gauge::Gauge) -> Queue {
        Queue {
            waiting: Default::default(),
            depth,
        }
    }

    fn set(&self) -> MutexGuard<'_, std::collections::HashSet<(String, String)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Build `ns/name` was triggered.
    pub fn triggered(&self, ns: &str, name: &str) {
        let mut set = self.set();
        set.insert((ns.to_owned(), name.to_owned()));
        self.depth.set(set.len() as i64);
    }

    /// A reconcile of `ns/name` starts.
    pub fn started(&self, ns: &str, name: &str) {
        let mut set = self.set();
        set.remove(&(ns.to_owned(), name.to_owned()));
        self.depth.set(set.len() as i64);
    }
}

impl Ctx {
    /// The per-Build memory (a poisoned lock still holds consistent plain data). What an
    /// earlier leadership term remembered is dropped first: another leader may have moved the
    /// Builds on since.
    pub fn memory(&self) -> MutexGuard<'_, Memory<Arc<Plane>>> {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if let Leadership::Leading(term) = *self.leading.borrow() {
            memory.begin_term(term);
        }
        memory
    }

    /// Logs `note` and publishes it as an Event on Build `obj`, action `Cleanup`. An Event
    /// that cannot be published is logged and otherwise ignored: it reports, it decides nothing.
    pub async fn report(&self, obj: &DynamicObject, kind: EventType, reason: &str, note: String) {
        match kind {
            EventType::Warning => tracing::warn!(reason, "{note}"),
            EventType::Normal => tracing::info!(reason, "{note}"),
        }
        let reference = kube::Resource::object_ref(obj, &self.builds);
        self.publish(&reference, kind, reason, "Cleanup", &note)
            .await;
    }

    /// Publishes Event `reason`/`note` for `action` on the Build `reference` names (not logged:
    /// the caller logged it). Failures are logged and otherwise ignored.
    pub async fn publish(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        kind: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        if let Err(e) = self
            .events
            .publish(reference, kind, reason, action, note)
            .await
        {
            tracing::warn!(reason, error = %e, "publishing an Event failed");
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

fn error_policy(obj: Arc<DynamicObject>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    let reason = e.condition(None).map(|c| c.reason).unwrap_or_default();
    ctx.metrics.reconcile_error(&reason);
    if !e.retryable() {
        return Action::await_change();
    }
    let ns = obj.metadata.namespace.as_deref().unwrap_or_default();
    let name = obj.metadata.name.as_deref().unwrap_or_default();
    Action::requeue(ctx.memory().failed(ns, name, &reason))
}

/// Turns `listed` true at a watch's first `InitDone` (its first complete listing). Every wait
/// for a first listing goes through such a flag: kube-runtime's `Store::wait_until_ready`
/// wakes only the last of several waiters (its `DelayedInit` polls a oneshot receiver, which
/// keeps one waker), so a second waiter on a store could hang, or steal the Controller's own.
pub(crate) fn mark_listed<K>(
    listed: tokio::sync::watch::Sender<bool>,
) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |event| {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            listed.send_replace(true);
        }
    }
}

/// One LIST of at most one Build with `selector`: a selector the API server cannot parse is
/// an error at start, not a watch that fails forever.
async fn check_selector(
    cp: &Kube,
    builds: &ApiResource,
    selector: &str,
) -> Result<(), ControllerError> {
    let api = Api::<DynamicObject>::all_with(cp.client().clone(), builds);
    let params = kube::api::ListParams::default().labels(selector).limit(1);
    match api.list_metadata(&params).await {
        Err(kube::Error::Api(s)) if s.code == 400 => Err(ControllerError::LabelSelector {
            selector: selector.to_owned(),
            message: s.message,
        }),
        // Anything else is the watch's to retry.
        _ => Ok(()),
    }
}

/// Runs until `shutdown` completes; in-flight reconciles finish first (a leader elected on a
/// Lease stops them at their next request, then releases the Lease).
pub async fn run(
    settings: ControllerSettings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), ControllerError> {
    let cp = Kube::connect(&ClientSettings {
        counts: Some(metrics.api_counts("control-plane")),
        ..settings.control_plane.clone()
    })
    .await?;
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
    // Both watches see the shard's objects only.
    let watched = match &settings.watch_label_selector {
        Some(selector) => {
            check_selector(&cp, &builds, selector).await?;
            watcher::Config::default().labels(selector)
        }
        None => watcher::Config::default(),
    };
    // Without an election this process leads from the start, in one term.
    let (leading_tx, leading_rx) = tokio::sync::watch::channel(match settings.election {
        None => Leadership::Leading(1),
        Some(_) => Leadership::Standby,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(Stopping::No);
    let elector = match settings.election.clone() {
        Some(e) => {
            tokio::spawn(leader::Elector::new(cp.client().clone(), e).run(leading_tx, stop_rx))
        }
        // Kept until the end (a closed channel would read as a lost lead): without an election
        // the reconciles in flight finish.
        None => tokio::spawn(async move {
            let mut stop = stop_rx;
            let _ = stop.wait_for(|s| *s == Stopping::Release).await;
            drop(leading_tx);
        }),
    };
    // SIGTERM: a leader steps down at once (its reconciles in flight stop, as at a lost lead),
    // and the Controller's graceful shutdown waits for them.
    let stop_tx = Arc::new(stop_tx);
    let step_down = stop_tx.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = step_down.send(Stopping::StepDown);
    };
    let (trigger_tx, trigger_rx) = futures::channel::mpsc::unbounded::<(String, String)>();
    let metrics_queue = metrics.queue_depth.clone();
    let bp_writer = reflector::store::Writer::<DynamicObject>::new(buildplanes.clone());
    let bp_reader = bp_writer.as_reader();
    let (builds_listed_tx, builds_listed) = tokio::sync::watch::channel(false);
    let (planes_listed_tx, planes_listed) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(Ctx {
        control_plane: cp.clone(),
        builds: builds.clone(),
        buildplanes: buildplanes.clone(),
        planes: Planes::new(
            trigger_tx,
            settings.plane_request_timeout,
            settings.kubeconfig_policy,
            metrics.api_counts("build-plane"),
        ),
        emitter: Emitter::control_plane_only(
            cp.clone(),
            Some(Arc::new(workloads::Workloads::start(cp.client().clone()))),
        ),
        metrics,
        allow_cross_namespace_refs: settings.allow_cross_namespace_refs,
        events: Publisher::new(
            cp.client().clone(),
            events::REPORTING_CONTROLLER,
            std::env::var("POD_NAME").ok(),
        ),
        buildplane_store: bp_reader,
        buildplanes_listed: planes_listed.clone(),
        leading: leading_rx.clone(),
        memory: Default::default(),
        queue: Queue::new(metrics_queue),
    });
    ctx.metrics.leader.set(i64::from(matches!(
        *ctx.leading.borrow(),
        Leadership::Leading(_)
    )));
    // The Builds' reflector is ours (not `Controller::new_with`'s), to see its first listing.
    let build_writer = reflector::store::Writer::<DynamicObject>::new(builds.clone());
    let store = build_writer.as_reader();
    let build_events = reflector(
        build_writer,
        // Kept compact (`compact::pack`): a reconcile parses the one it reads.
        watcher(
            Api::<DynamicObject>::all_with(cp.client().clone(), &builds),
            watched.clone(),
        )
        .modify(compact::pack),
    )
    .inspect(mark_listed(builds_listed_tx))
    .applied_objects()
    .inspect({
        let ctx = ctx.clone();
        move |b| {
            if let Ok(b) = b {
                ctx.queue.triggered(
                    b.metadata.namespace.as_deref().unwrap_or_default(),
                    b.metadata.name.as_deref().unwrap_or_default(),
                );
            }
        }
    });
    // Taking the lead: every Build is reconciled once (a standby's reconciles did nothing).
    let lead_metrics = ctx.metrics.clone();
    let (lead_ctx, lead_store) = (ctx.clone(), store.clone());
    let took_lead = futures::stream::unfold(leading_rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let now = *rx.borrow_and_update();
        Some((now, rx))
    })
    .filter_map(move |now| {
        let leading = matches!(now, Leadership::Leading(_));
        lead_metrics.leader.set(i64::from(leading));
        if leading {
            for b in lead_store.state() {
                lead_ctx.queue.triggered(
                    b.metadata.namespace.as_deref().unwrap_or_default(),
                    b.metadata.name.as_deref().unwrap_or_default(),
                );
            }
        }
        std::future::ready(leading.then_some(()))
    });
    let controller = Controller::for_stream_with(build_events, store.clone(), builds.clone());
    // Ready (`/readyz`) once Builds and BuildPlanes are listed, leading or standing by.
    let ready_metrics = ctx.metrics.clone();
    let (mut builds_listed, mut planes_listed) = (builds_listed, planes_listed);
    tokio::spawn(async move {
        if builds_listed.wait_for(|l| *l).await.is_ok()
            && planes_listed.wait_for(|l| *l).await.is_ok()
        {
            ready_metrics
                .ready
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let (b1, b2) = (builds.clone(), builds.clone());
    let plane_ctx = ctx.clone();
    let queue_ctx = ctx.clone();
    let triggers = trigger_rx.map(move |(ns, name)| {
        queue_ctx.queue.triggered(&ns, &name);
        ObjectRef::new_with(&name, b1.clone()).within(&ns)
    });
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .watches_stream_with(
            reflector(
                bp_writer,
                watcher(
                    Api::<DynamicObject>::all_with(cp.client().clone(), &buildplanes),
                    watched,
                ),
            )
            .inspect(mark_listed(planes_listed_tx))
            .applied_objects(),
            move |bp| {
                let ns = bp.metadata.namespace.clone().unwrap_or_default();
                // A changed BuildPlane: its namespace's Builds look it up again.
                plane_ctx.memory().forget_plane(&ns);
                store
                    .state()
                    .into_iter()
                    .filter(|b| b.metadata.namespace.as_deref() == Some(ns.as_str()))
                    .map(|b| {
                        let name = b.metadata.name.as_deref().unwrap_or_default();
                        plane_ctx.queue.triggered(&ns, name);
                        ObjectRef::from_obj_with(&*b, b2.clone())
                    })
                    .collect::<Vec<_>>()
            },
            buildplanes.clone(),
        )
        .reconcile_on(triggers)
        .reconcile_all_on(took_lead)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|r| {
            // A Build triggered after it was gone (its Workflow's deletion, say) is never
            // reconciled: it leaves the queue here.
            if let Err(kube::runtime::controller::Error::ObjectNotFound(gone)) = &r {
                ctx.queue
                    .started(gone.namespace.as_deref().unwrap_or_default(), &gone.name);
            }
            async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "reconcile failed");
                }
            }
        })
        .await;
    // No reconcile runs any more: the Lease goes, for a standby to take at its next try.
    let _ = stop_tx.send(Stopping::Release);
    let _ = elector.await;
    let (plane_requests, plane_writes) = ctx.planes.counts();
    tracing::info!(
        event = "shutdown",
        control_plane_requests = cp.requests(),
        control_plane_writes = cp.writes(),
        control_plane_events = cp.events(),
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
    fn the_queue_counts_each_triggered_build_once_until_its_reconcile_starts() {
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        let q = Queue::new(gauge.clone());
        q.triggered("acme", "cart-1");
        q.triggered("acme", "cart-1");
        q.triggered("acme", "cart-2");
        q.triggered("shop", "cart-1");
        assert_eq!(gauge.get(), 3, "one entry per Build");
        q.started("acme", "cart-1");
        assert_eq!(gauge.get(), 2);
        // A reconcile of a Build nobody triggered (a delayed retry) takes nothing away.
        q.started("acme", "cart-9");
        assert_eq!(gauge.get(), 2);
        q.started("acme", "cart-2");
        q.started("shop", "cart-1");
        assert_eq!(gauge.get(), 0);
    }
}
