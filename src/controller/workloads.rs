//! The controller's watch of the control plane's Workloads, so that applying a build's
//! Workload is one request (no read first; `emit::cluster::apply`). The store keeps of each
//! Workload only what that apply decides on: name, namespace, resourceVersion, the
//! created-by annotation and `spec.owner` (10,000 Workloads are a few MB).
//!
//! An apply's response is newer than the watch until the watch shows the same
//! resourceVersion; until then the apply's own result is what is known, and a watch showing
//! another version of it (someone else wrote it in between) makes it unknown: read first.

use crate::core::cleanup::CREATED_BY_ANNOTATION;
use crate::emit::cluster::{Known, WorkloadView};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an apply's result stands in for a watch that has not shown it.
const APPLIED_KEPT: Duration = Duration::from_secs(60);

/// Workloads as the watch shows them, and the ones this process applied since.
pub struct Workloads {
    store: Store<DynamicObject>,
    listed: tokio::sync::watch::Receiver<bool>,
    /// `(namespace, name)` → the stripped apply response and when it came.
    applied: Mutex<HashMap<(String, String), (Value, Instant)>>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for Workloads {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// An apply's response reduced as the watch's objects are ([`strip_object`]), as JSON; `None`
/// when it is not an object with metadata.
fn strip(v: &Value) -> Option<Value> {
    let mut o: DynamicObject = serde_json::from_value(v.clone()).ok()?;
    strip_object(&mut o);
    Some(as_json(&o))
}

/// A stored Workload as the apply reads it (without kind and apiVersion, which it never reads).
fn as_json(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

/// A Workload reduced to what an apply decides on, before the store keeps it.
fn strip_object(o: &mut DynamicObject) {
    let annotations = o
        .metadata
        .annotations
        .take()
        .and_then(|mut a| a.remove_entry(CREATED_BY_ANNOTATION))
        .map(|(k, v)| std::iter::once((k, v)).collect());
    o.metadata = kube::api::ObjectMeta {
        name: o.metadata.name.take(),
        namespace: o.metadata.namespace.take(),
        resource_version: o.metadata.resource_version.take(),
        annotations,
        ..Default::default()
    };
    let owner = o.data.pointer("/spec/owner").cloned();
    o.data = match owner {
        Some(owner) => json!({ "spec": { "owner": owner } }),
        None => json!({}),
    };
}

impl Workloads {
    /// Starts the watch of every namespace's Workloads.
    pub fn start(client: kube::Client) -> Workloads {
        let resource = super::openchoreo("Workload", "workloads");
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let (listed_tx, listed) = tokio::sync::watch::channel(false);
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        let watch = tokio::spawn(async move {
            let events = reflector::reflector(
                writer,
                watcher(api, watcher::Config::default()).modify(strip_object),
            )
            .inspect(super::mark_listed(listed_tx))
            .default_backoff();
            let mut events = std::pin::pin!(events);
            while let Some(e) = events.next().await {
                if let Err(e) = e {
                    tracing::warn!(error = %e, "watching Workloads failed; resuming");
                }
            }
        });
        Workloads {
            store,
            listed,
            applied: Mutex::new(HashMap::new()),
            watch,
        }
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Value> {
        let r =
            ObjectRef::new_with(name, super::openchoreo("Workload", "workloads")).within(namespace);
        self.store.get(&r).map(|o| as_json(&o))
    }
}

/// What is known of a Workload the watch shows as `cached`, given this process's last apply
/// of it (`ours`, and whether that has expired), and whether that apply is no longer needed.
fn known_from(cached: Option<Value>, ours: Option<(&Value, bool)>) -> (Known, bool) {
    let rv = |v: &Value| v.pointer("/metadata/resourceVersion").cloned();
    if let Some((ours, expired)) = ours {
        match &cached {
            // The watch shows our apply: it knows again.
            Some(c) if rv(c) == rv(ours) => {}
            _ if expired => return (Known::Unknown, true),
            // The watch has not caught up: our apply is the newest known.
            None => return (Known::Present(ours.clone()), false),
            // Another version than ours: which one is newer is not known.
            Some(_) => return (Known::Unknown, false),
        }
    }
    let known = match cached {
        Some(c) => Known::Present(c),
        None => Known::Absent,
    };
    (known, ours.is_some())
}

impl WorkloadView for Workloads {
    fn known(&self, namespace: &str, name: &str) -> Known {
        if !*self.listed.borrow() {
            return Known::Unknown;
        }
        let cached = self.cached(namespace, name);
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let k = (namespace.to_owned(), name.to_owned());
        let ours = applied
            .get(&k)
            .map(|(v, at)| (v, at.elapsed() > APPLIED_KEPT));
        let (known, done) = known_from(cached, ours);
        if done {
            applied.remove(&k);
        }
        known
    }

    fn applied(&self, workload: &Value) {
        let text = |p: &str| {
            workload
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let k = (text("/metadata/namespace"), text("/metadata/name"));
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied.retain(|_, (_, at)| at.elapsed() <= APPLIED_KEPT);
        match strip(workload) {
            Some(stripped) => {
                applied.insert(k, (stripped, Instant::now()));
            }
            // Nothing to stand in with: the watch decides.
            None => {
                applied.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(rv: &str) -> Value {
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": "cart", "namespace": "acme", "resourceVersion": rv,
                "labels": {"a": "b"}, "managedFields": [{"manager": "m"}],
                "annotations": {CREATED_BY_ANNOTATION: "acme/cart-1", "other": "x"}},
            "spec": {"owner": {"projectName": "shop", "componentName": "cart"},
                "containers": {"main": {"image": "registry/cart:1"}}}})
    }

    #[test]
    fn a_stripped_workload_keeps_what_the_apply_decides_on() {
        let w = workload("7");
        let s = strip(&w).unwrap();
        assert_eq!(
            s,
            json!({"metadata": {"name": "cart", "namespace": "acme", "resourceVersion": "7",
                "annotations": {CREATED_BY_ANNOTATION: "acme/cart-1"}},
                "spec": {"owner": {"projectName": "shop", "componentName": "cart"}}})
        );
        assert_eq!(strip(&json!("not an object")), None);
        // What the apply decides with the stripped copy, it decides as with the whole one.
        let ours = json!({"metadata": {"name": "cart", "namespace": "acme"},
            "spec": {"owner": {"projectName": "shop", "componentName": "search"}}});
        assert_eq!(
            crate::core::workload::foreign_owner(&s, &ours),
            crate::core::workload::foreign_owner(&workload("7"), &ours)
        );
        assert!(crate::core::workload::foreign_owner(&s, &ours).is_some());
        assert_eq!(crate::core::cleanup::created_by(&s), Some("acme/cart-1"));
    }

    #[test]
    fn an_apply_of_ours_stands_in_until_the_watch_shows_it() {
        let (v7, v8) = (
            strip(&workload("7")).unwrap(),
            strip(&workload("8")).unwrap(),
        );
        // Nothing of ours: the watch decides.
        assert_eq!(known_from(None, None), (Known::Absent, false));
        assert_eq!(
            known_from(Some(v7.clone()), None),
            (Known::Present(v7.clone()), false)
        );
        // Ours is newer than a watch without it, or with the version before it? The watch
        // without it: ours. The watch with another version: unknown, read.
        assert_eq!(
            known_from(None, Some((&v8, false))),
            (Known::Present(v8.clone()), false)
        );
        assert_eq!(
            known_from(Some(v7.clone()), Some((&v8, false))),
            (Known::Unknown, false)
        );
        // The watch shows ours: it decides again, and ours is dropped.
        assert_eq!(
            known_from(Some(v8.clone()), Some((&v8, false))),
            (Known::Present(v8.clone()), true)
        );
        // Kept too long without the watch showing it: read.
        assert_eq!(known_from(None, Some((&v8, true))), (Known::Unknown, true));
        assert_eq!(
            known_from(Some(v7), Some((&v8, true))),
            (Known::Unknown, true)
        );
    }
}
