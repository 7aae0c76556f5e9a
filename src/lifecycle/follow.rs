//! Following builds as a plain state machine: fed the events of a watch on their build objects
//! (per namespace), it reports each step change and each finished build. No I/O and no clock,
//! so every path (a re-list that misses a build, a deletion, a completion) is tested without a
//! cluster; `watch.rs` is the thin async adapter that feeds it.

use super::Target;
use super::harvest::harvest;
use super::outcome::BuildOutcome;
use crate::core::progress::Phase;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What a watch on one namespace delivers (kube-runtime's `watcher::Event`, object as JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// A (re-)list starts.
    Listing,
    /// An object of the listing.
    Listed(Value),
    /// The listing is complete: what it did not return is gone.
    ListDone,
    /// An object was added or changed.
    Applied(Value),
    /// An object was deleted.
    Deleted(Value),
}

/// What the follower reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step changed phase.
    Step {
        build: String,
        step: String,
        phase: Phase,
    },
    /// A build completed (or its build object disappeared); emits are the caller's.
    Finished(BuildOutcome),
}

/// Message of a build whose object a listing did not return.
pub const NOT_FOUND: &str = "the Workflow does not exist (never submitted, or deleted)";
/// Message of a build whose object was deleted while it ran.
pub const DELETED: &str = "the Workflow was deleted before it finished";

type Key = (String, String);

/// The builds still followed, with what was last reported of each.
pub struct Follower {
    pending: BTreeMap<Key, Target>,
    steps_seen: BTreeMap<Key, Vec<Phase>>,
    /// Per namespace, the objects a (re-)list under way returned so far.
    listing: BTreeMap<String, BTreeSet<String>>,
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Follower {
    pub fn new(targets: Vec<Target>) -> Follower {
        Follower {
            pending: targets
                .into_iter()
                .map(|t| ((t.namespace.clone(), t.name.clone()), t))
                .collect(),
            steps_seen: BTreeMap::new(),
            listing: BTreeMap::new(),
        }
    }

    /// The targets still followed.
    pub fn pending(&self) -> impl Iterator<Item = &Target> {
        self.pending.values()
    }

    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Feeds one event of the watch on `namespace`; returns what it tells, in order.
    pub fn on(&mut self, namespace: &str, event: WatchEvent) -> Vec<Event> {
        match event {
            WatchEvent::Listing => {
                self.listing.insert(namespace.to_owned(), BTreeSet::new());
                Vec::new()
            }
            WatchEvent::Listed(o) => {
                if let Some(set) = self.listing.get_mut(namespace) {
                    set.insert(name_of(&o).to_owned());
                }
                self.applied(namespace, &o)
            }
            WatchEvent::ListDone => self.list_done(namespace),
            WatchEvent::Applied(o) => self.applied(namespace, &o),
            WatchEvent::Deleted(o) => {
                let key = (namespace.to_owned(), name_of(&o).to_owned());
                self.finish_gone(&key, DELETED).into_iter().collect()
            }
        }
    }

    fn list_done(&mut self, namespace: &str) -> Vec<Event> {
        let seen = self.listing.remove(namespace).unwrap_or_default();
        let missing: Vec<Key> = self
            .pending
            .keys()
            .filter(|(ns, name)| ns == namespace && !seen.contains(name))
            .cloned()
            .collect();
        missing
            .iter()
            .filter_map(|key| self.finish_gone(key, NOT_FOUND))
            .collect()
    }

    fn finish_gone(&mut self, key: &Key, why: &str) -> Option<Event> {
        let t = self.pending.remove(key)?;
        self.steps_seen.remove(key);
        Some(Event::Finished(BuildOutcome::failed(
            t.label(),
            t.object_ref(),
            why,
        )))
    }

    fn applied(&mut self, namespace: &str, object: &Value) -> Vec<Event> {
        let key = (namespace.to_owned(), name_of(object).to_owned());
        let Some(t) = self.pending.get(&key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Unreadable steps are not shown as Pending (that would lie); harvest reports them.
        if let Ok(steps) = t.engine.steps(object) {
            let previous = self.steps_seen.entry(key.clone()).or_default();
            for (i, s) in steps.iter().enumerate() {
                if previous.get(i) != Some(&s.phase) {
                    out.push(Event::Step {
                        build: t.label(),
                        step: s.step.to_owned(),
                        phase: s.phase,
                    });
                }
            }
            *previous = steps.iter().map(|s| s.phase).collect();
        }
        if t.engine.is_finished(object) {
            let outcome = harvest(t, object);
            self.pending.remove(&key);
            self.steps_seen.remove(&key);
            out.push(Event::Finished(outcome));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{Origin, build_from_value};
    use crate::lifecycle::outcome::{Harvest, Verdict};
    use crate::pipeline::LoadedBuild;
    use serde_json::json;

    fn target(name: &str) -> Target {
        let origin = Origin {
            file: "t.yaml".into(),
            document: 1,
            documents: 1,
        };
        let build = build_from_value(
            &origin,
            json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
                "metadata": {"name": name, "namespace": "acme"},
                "spec": {"owner": {"projectName": "shop", "componentName": name},
                    "repository": {"url": "https://example.com/r.git", "appPath": "/",
                        "revision": {"branch": "main"}},
                    "templateRef": {"name": "docker", "parameters": [
                        {"name": "docker-context", "value": "/"},
                        {"name": "dockerfile-path", "value": "/Dockerfile"}]}}}),
        )
        .unwrap();
        Target::of(&LoadedBuild { origin, build }).unwrap()
    }

    fn wf(t: &Target, phase: &str, nodes: Value) -> Value {
        json!({"metadata": {"name": t.name, "namespace": t.namespace},
            "status": {"phase": phase, "nodes": nodes}})
    }

    fn pod(id: &str, template: &str, phase: &str, outputs: Value) -> (String, Value) {
        (
            id.to_owned(),
            json!({"id": id, "name": id, "type": "Pod", "templateName": template,
                "phase": phase, "startedAt": "2026-01-01T00:00:00Z", "outputs": outputs}),
        )
    }

    fn nodes(list: Vec<(String, Value)>) -> Value {
        Value::Object(list.into_iter().collect())
    }

    fn finished(events: &[Event]) -> Vec<&BuildOutcome> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Finished(o) => Some(o),
                Event::Step { .. } => None,
            })
            .collect()
    }

    fn steps(events: &[Event]) -> Vec<(String, Phase)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Step { step, phase, .. } => Some((step.clone(), *phase)),
                Event::Finished(_) => None,
            })
            .collect()
    }

    #[test]
    fn step_changes_are_reported_once_and_completion_harvests() {
        let t = target("cart");
        let ns = t.namespace.clone();
        let mut f = Follower::new(vec![t.clone()]);
        assert!(f.on(&ns, WatchEvent::Listing).is_empty());
        let running = wf(
            &t,
            "Running",
            nodes(vec![pod("a", "clone-step", "Running", json!({}))]),
        );
        let first = f.on(&ns, WatchEvent::Listed(running.clone()));
        assert_eq!(
            steps(&first),
            [
                ("clone-step".to_owned(), Phase::Running),
                ("build-step".to_owned(), Phase::Pending),
                ("push-step".to_owned(), Phase::Pending),
                ("workload-create-step".to_owned(), Phase::Pending),
            ]
        );
        assert!(f.on(&ns, WatchEvent::ListDone).is_empty(), "it was listed");
        // The same status again tells nothing new.
        assert!(f.on(&ns, WatchEvent::Applied(running)).is_empty());
        let failed = wf(
            &t,
            "Failed",
            nodes(vec![
                pod("a", "clone-step", "Succeeded", json!({})),
                pod("b", "build-step", "Failed", json!({})),
            ]),
        );
        let last = f.on(&ns, WatchEvent::Applied(failed));
        assert_eq!(
            steps(&last),
            [
                ("clone-step".to_owned(), Phase::Succeeded),
                ("build-step".to_owned(), Phase::Failed)
            ]
        );
        let done = finished(&last);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].verdict(), Verdict::BuildFailed);
        assert_eq!(done[0].build, "acme/cart");
        assert!(f.is_done());
        // A finished build is not reported twice.
        let again = wf(&t, "Failed", json!({}));
        assert!(f.on(&ns, WatchEvent::Applied(again)).is_empty());
    }

    #[test]
    fn a_listing_without_the_build_finishes_it_as_not_found() {
        let (a, b) = (target("a"), target("b"));
        let ns = a.namespace.clone();
        let mut f = Follower::new(vec![a.clone(), b.clone()]);
        f.on(&ns, WatchEvent::Listing);
        f.on(&ns, WatchEvent::Listed(wf(&a, "Running", json!({}))));
        let events = f.on(&ns, WatchEvent::ListDone);
        let done = finished(&events);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].build, "acme/b");
        assert_eq!(done[0].message.as_deref(), Some(NOT_FOUND));
        assert_eq!(f.pending().count(), 1);
        // A listing of another namespace says nothing about these.
        f.on("elsewhere", WatchEvent::Listing);
        assert!(f.on("elsewhere", WatchEvent::ListDone).is_empty());
        assert_eq!(f.pending().count(), 1);
    }

    #[test]
    fn a_deleted_build_object_fails_its_build() {
        let t = target("cart");
        let ns = t.namespace.clone();
        let mut f = Follower::new(vec![t.clone()]);
        let events = f.on(&ns, WatchEvent::Deleted(wf(&t, "Running", json!({}))));
        let done = finished(&events);
        assert_eq!(done[0].message.as_deref(), Some(DELETED));
        assert_eq!(done[0].verdict(), Verdict::BuildFailed);
        assert!(f.is_done());
    }

    #[test]
    fn a_success_carries_the_harvested_workload() {
        let t = target("cart");
        let ns = t.namespace.clone();
        let mut f = Follower::new(vec![t.clone()]);
        let cr = "apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: cart\n\
                  spec:\n  owner:\n    projectName: shop\n    componentName: cart\n  containers:\n    main:\n      image: reg/cart:1\n";
        let ok = |template: &str, outputs: Value| pod(template, template, "Succeeded", outputs);
        let done = wf(
            &t,
            "Succeeded",
            nodes(vec![
                ok(
                    "clone-step",
                    json!({"parameters": [{"name": "git-revision", "value": "abc"}]}),
                ),
                ok("build-step", json!({})),
                ok(
                    "push-step",
                    json!({"parameters": [{"name": "image", "value": "reg/cart:1"}]}),
                ),
                ok(
                    "workload-create-step",
                    json!({"parameters": [{"name": "workload-cr", "value": cr}]}),
                ),
            ]),
        );
        let events = f.on(&ns, WatchEvent::Applied(done));
        let o = finished(&events)[0];
        assert_eq!(o.image.as_deref(), Some("reg/cart:1"));
        assert_eq!(o.revision.as_deref(), Some("abc"));
        assert!(matches!(o.harvest, Harvest::Workload(_)), "{:?}", o.harvest);
        assert_eq!(o.verdict(), Verdict::Succeeded, "no emit target configured");
    }

    #[test]
    fn objects_that_are_not_followed_are_ignored() {
        let t = target("cart");
        let other = target("other");
        let mut f = Follower::new(vec![t.clone()]);
        let events = f.on(
            &t.namespace,
            WatchEvent::Applied(wf(&other, "Succeeded", json!({}))),
        );
        assert!(events.is_empty());
        assert!(!f.is_done());
    }
}
