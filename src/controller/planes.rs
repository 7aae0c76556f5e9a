//! Clients to build planes, one per BuildPlane, rebuilt when its kubeconfig Secret changes
//! (upstream caches them forever). Each plane keeps a watch on its Workflows: a reflector store
//! the reconciler reads instead of polling, and every change is sent back as a trigger for the
//! Build that owns the Workflow.

use crate::engine;
use crate::kube::policy::KubeconfigPolicy;
use crate::kube::{ClientSettings, Kube, KubeError};
use crate::lifecycle;
use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The annotation on a Workflow naming the Build it runs, `namespace/name`.
pub const BUILD_ANNOTATION: &str = "buildplane.openchoreo.dev/build";

/// The build objects' API (one engine today; a plane watches its kind).
pub fn workflow_resource() -> ApiResource {
    lifecycle::watch::api_resource(&engine::DEFAULT.build_kind())
}

/// A connected build plane.
pub struct Plane {
    /// `namespace/name` of the BuildPlane.
    pub key: String,
    pub kube: Kube,
    /// The Secret's resourceVersion the client was built from.
    pub secret_version: String,
    /// Every build Workflow on the plane, kept current by a watch.
    pub workflows: Store<DynamicObject>,
    /// Organizations whose prerequisites (namespace, RBAC) this client has applied.
    pub prepared: tokio::sync::Mutex<HashSet<String>>,
    /// True once the watch listed the Workflows (`super::mark_listed`).
    listed: tokio::sync::watch::Receiver<bool>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Plane {
    /// The Workflow `namespace/name` if the store holds it now. Never waits for a listing: a
    /// plane whose watch cannot list (credentials without that right, an unreachable server)
    /// must not hold a reconcile slot that another tenant's build is waiting for; the caller
    /// asks the plane directly when the store does not have it.
    pub fn cached_workflow(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let cached = self
            .workflows
            .get(&ObjectRef::new_with(name, workflow_resource()).within(namespace))?;
        // Packed by this watch: the text it wrote parses.
        super::compact::unpack(&cached).ok()
    }

    /// Whether the watch has listed the plane's Workflows once: before that, a Workflow the
    /// store lacks may well exist (just after a start or a change of leader).
    pub fn listed(&self) -> bool {
        *self.listed.borrow()
    }
}

/// The planes in use, by BuildPlane.
pub struct Planes {
    by_key: tokio::sync::Mutex<HashMap<String, Arc<Plane>>>,
    trigger: UnboundedSender<(String, String)>,
    request_timeout: Duration,
    /// What the kubeconfig Secrets may ask of the controller.
    policy: KubeconfigPolicy,
    /// Every plane client's requests, counted together (kept across rebuilt clients).
    counts: crate::kube::count::Counts,
}

impl Planes {
    /// `trigger` receives `(namespace, name)` of a Build whose Workflow changed; every
    /// kubeconfig Secret is held to `policy`.
    pub fn new(
        trigger: UnboundedSender<(String, String)>,
        request_timeout: Duration,
        policy: KubeconfigPolicy,
        counts: crate::kube::count::Counts,
    ) -> Planes {
        Planes {
            by_key: Default::default(),
            trigger,
            request_timeout,
            policy,
            counts,
        }
    }

    /// Requests and writes sent to build planes by every client so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.counts.requests(), self.counts.writes())
    }

    /// The cached plane of BuildPlane `key`, whatever its Secret says now.
    pub async fn cached(&self, key: &str) -> Option<Arc<Plane>> {
        self.by_key.lock().await.get(key).cloned()
    }

    /// The plane of BuildPlane `key` for the Secret at `secret_version`: the cached one while
    /// the Secret is unchanged, otherwise a new client (and watch) from `kubeconfig`, if the
    /// policy accepts it (a refused one is checked again on every call: nothing is cached).
    pub async fn get(
        &self,
        key: &str,
        secret_version: &str,
        kubeconfig: &str,
        shown: &str,
    ) -> Result<Arc<Plane>, KubeError> {
        let mut planes = self.by_key.lock().await;
        if let Some(p) = planes.get(key)
            && p.secret_version == secret_version
        {
            return Ok(p.clone());
        }
        let settings = ClientSettings {
            request_timeout: Some(self.request_timeout),
            counts: Some(self.counts.clone()),
            ..Default::default()
        };
        let kube = Kube::from_kubeconfig_text(kubeconfig, shown, &settings, self.policy).await?;
        let plane = Arc::new(self.start(key, kube, secret_version));
        if planes.insert(key.to_owned(), plane.clone()).is_some() {
            tracing::info!(
                buildplane = key,
                "kubeconfig Secret changed; new build-plane client"
            );
        }
        Ok(plane)
    }

    fn start(&self, key: &str, kube: Kube, secret_version: &str) -> Plane {
        let writer = reflector::store::Writer::new(workflow_resource());
        let store = writer.as_reader();
        // A BuildPlane serves the organization whose namespace holds it: its builds run in that
        // organization's namespace only, so that is all its watch (and its credentials) need.
        let org = key.split_once('/').map_or(key, |(ns, _)| ns);
        let api: Api<DynamicObject> = Api::namespaced_with(
            kube.client().clone(),
            &crate::core::naming::namespace_name(org),
            &workflow_resource(),
        );
        let config = lifecycle::watch::watcher_config(&engine::DEFAULT.build_kind());
        let trigger = self.trigger.clone();
        let plane = key.to_owned();
        let (listed_tx, listed) = tokio::sync::watch::channel(false);
        let watch = tokio::spawn(async move {
            // The store keeps what is read, compact: the status as the engine reads it (Argo's
            // stored templates, each node's inputs and pod details go), as one JSON text.
            let events = reflector::reflector(
                writer,
                watcher(api, config).modify(|w| {
                    engine::DEFAULT.strip_for_cache(&mut w.data);
                    super::compact::pack(w);
                }),
            )
            .inspect(super::mark_listed(listed_tx))
            .default_backoff();
            let mut objects = events.touched_objects().boxed();
            while let Some(next) = objects.next().await {
                match next {
                    Ok(wf) => {
                        let owner = wf
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(BUILD_ANNOTATION))
                            .and_then(|v| v.split_once('/'));
                        if let Some((ns, name)) = owner {
                            let _ = trigger.unbounded_send((ns.to_owned(), name.to_owned()));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(buildplane = %plane, error = %e, "watching Workflows failed; resuming")
                    }
                }
            }
        });
        Plane {
            key: key.to_owned(),
            kube,
            secret_version: secret_version.to_owned(),
            workflows: store,
            prepared: Default::default(),
            listed,
            watch,
        }
    }
}
