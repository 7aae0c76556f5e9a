//! What deleting a Build cleans up, decided without I/O: its build object on the build plane
//! (stopped first while it runs, then deleted) and the Workload it applied into the control
//! plane (deleted only when buildplane created it and no other Build points at it).
//!
//! The controller's finalizer runs these decisions; nothing else deletes a Workload. There is
//! deliberately no ownerReference from a Workload to a Build: the garbage collector deletes a
//! dependent once every owner it lists is gone, without asking who created the object or which
//! other Build still points at it, and the owner list of an object several Builds apply (as one
//! field manager) is replaced by each apply. One rule, here, answers when a Workload goes.

use super::workload::foreign_owner;
use serde_json::Value;
use std::time::Duration;

/// The annotation buildplane puts on a Workload it created: `<organization>/<build>` of the
/// build whose apply created it. Kept by every later apply, never taken from a build's output
/// (a repository cannot claim that buildplane created a Workload it did not).
pub const CREATED_BY_ANNOTATION: &str = "buildplane.openchoreo.dev/created-by";

/// How long a build object asked to stop may take to finish before it is deleted anyway (an
/// engine controller that is down must not hold a Build's deletion for ever).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// What a deleted Build's build object needs, as the plane has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveBuildObject {
    /// It names this Build (its Build annotation); an object of that name made by anything else
    /// (a Build file applied by the CLI, another control plane) is left alone.
    pub ours: bool,
    /// Its engine says it reached a phase after which it no longer changes.
    pub finished: bool,
    /// It was asked to stop (Argo: `spec.shutdown` is set).
    pub stop_requested: bool,
}

/// The next step for a deleted Build's build object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildObjectStep {
    /// The plane holds none (never created, deleted by its TTL, or deleted already).
    Absent,
    /// The object of that name is not this Build's: left as it is.
    NotOurs,
    /// Still running: ask its engine to stop it (Argo's terminate), then wait.
    Stop,
    /// Asked to stop and still running: wait this long at most for its watch event.
    Wait(Duration),
    /// Finished, or stopped longer than [`STOP_GRACE`] ago: delete it.
    Delete,
}

/// Decides the step for `live`; `waited` is how long ago this controller asked it to stop
/// (`None`: not known, e.g. after a restart — the wait starts now).
pub fn build_object_step(
    live: Option<LiveBuildObject>,
    waited: Option<Duration>,
) -> BuildObjectStep {
    match live {
        None => BuildObjectStep::Absent,
        Some(l) if !l.ours => BuildObjectStep::NotOurs,
        Some(l) if l.finished => BuildObjectStep::Delete,
        Some(l) if !l.stop_requested => BuildObjectStep::Stop,
        Some(_) => {
            let waited = waited.unwrap_or_default();
            if waited >= STOP_GRACE {
                BuildObjectStep::Delete
            } else {
                BuildObjectStep::Wait(STOP_GRACE - waited)
            }
        }
    }
}

/// Another Build of the namespace, as far as the Workload rule asks about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `namespace/name`.
    pub build: String,
    /// The Workload its status says it applied last (`status.workloadRef.name`).
    pub workload: Option<String>,
    /// Its owner `(project, component)`.
    pub owner: (String, String),
    /// Its status says `WorkloadUpdated=True`.
    pub updated: bool,
    /// It is being deleted itself (it points at nothing any more).
    pub deleting: bool,
}

impl Claim {
    /// Whether this Build still points at Workload `name` of component `owner`. A Build whose
    /// status names no Workload but says it applied one (finished before the name was recorded)
    /// is taken to point at every Workload of its component.
    fn points_at(&self, name: &str, owner: (&str, &str)) -> bool {
        if self.deleting {
            return false;
        }
        match &self.workload {
            Some(w) => w == name,
            None => self.updated && (self.owner.0.as_str(), self.owner.1.as_str()) == owner,
        }
    }
}

/// Why a deleted Build's Workload stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// buildplane did not create it (no [`CREATED_BY_ANNOTATION`]): someone else's object,
    /// which buildplane only updated.
    NotCreatedByBuildplane,
    /// It belongs to another component now (the text names it and its owner).
    OwnedElsewhere(String),
    /// Another Build (`namespace/name`) still points at it.
    Claimed(String),
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::NotCreatedByBuildplane => f.write_str("buildplane did not create it"),
            Kept::OwnedElsewhere(why) => f.write_str(why),
            Kept::Claimed(build) => write!(f, "Build {build} still points at it"),
        }
    }
}

/// What happens to a deleted Build's Workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadStep {
    Delete,
    Keep(Kept),
}

/// The rule for Workload `live`, which the deleted Build of component `(project, component)`
/// in `namespace` applied last: deleted only when (1) it is still that component's, (2)
/// buildplane created it, and (3) no other Build of the namespace that is not being deleted
/// points at it. `others` are the namespace's other Builds.
pub fn workload_step(
    live: &Value,
    namespace: &str,
    owner: (&str, &str),
    others: &[Claim],
) -> WorkloadStep {
    let ours = serde_json::json!({
        "metadata": {"namespace": namespace},
        "spec": {"owner": {"projectName": owner.0, "componentName": owner.1}},
    });
    if let Some(why) = foreign_owner(live, &ours) {
        return WorkloadStep::Keep(Kept::OwnedElsewhere(why));
    }
    if created_by(live).is_none() {
        return WorkloadStep::Keep(Kept::NotCreatedByBuildplane);
    }
    let name = live
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match others.iter().find(|c| c.points_at(name, owner)) {
        Some(c) => WorkloadStep::Keep(Kept::Claimed(c.build.clone())),
        None => WorkloadStep::Delete,
    }
}

/// The build whose apply created Workload `live`, when buildplane created it.
pub fn created_by(live: &Value) -> Option<&str> {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(CREATED_BY_ANNOTATION))
        .and_then(Value::as_str)
}

/// Sets [`CREATED_BY_ANNOTATION`] on the Workload about to be applied: `creator` when there is
/// none yet (`before` is `None`: this apply creates it), the value `before` has when it has one
/// (a later apply keeps it; leaving it out would make the server drop it), and none otherwise —
/// whatever a build's output wrote there.
pub fn mark_creator(ours: &mut Value, before: Option<&Value>, creator: &str) {
    let value = match before {
        None => Some(creator.to_owned()),
        Some(b) => created_by(b).map(str::to_owned),
    };
    let Some(meta) = ours.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    match value {
        Some(v) => {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(map) = annotations.as_object_mut() {
                map.insert(CREATED_BY_ANNOTATION.to_owned(), Value::String(v));
            }
        }
        None => {
            let emptied = meta
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
                .map(|map| {
                    map.remove(CREATED_BY_ANNOTATION);
                    map.is_empty()
                });
            if emptied == Some(true) {
                meta.remove("annotations");
            }
        }
    }
}

/// The finalizer the controller puts on every Build it takes on: the Build is not removed
/// before its build object was stopped and deleted and its Workload dealt with.
pub const FINALIZER: &str = "buildplane.openchoreo.dev/cleanup";

/// The JSON patch (RFC 6902) adding [`FINALIZER`] to an object whose finalizers are `current`,
/// or `None` when it has it. The `test` makes the server refuse the patch when the list changed
/// since it was read (finalizers are not deduplicated, and a merge patch would replace the whole
/// list, dropping one another controller added meanwhile).
pub fn add_finalizer_patch(current: &[String]) -> Option<Value> {
    if current.iter().any(|f| f == FINALIZER) {
        return None;
    }
    Some(if current.is_empty() {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ])
    } else {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ])
    })
}

/// The JSON patch removing [`FINALIZER`] from `current`, or `None` when it is not there; the
/// `test` makes sure the entry removed is still ours.
pub fn remove_finalizer_patch(current: &[String]) -> Option<Value> {
    let i = current.iter().position(|f| f == FINALIZER)?;
    let path = format!("/metadata/finalizers/{i}");
    Some(serde_json::json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(ours: bool, finished: bool, stop_requested: bool) -> Option<LiveBuildObject> {
        Some(LiveBuildObject {
            ours,
            finished,
            stop_requested,
        })
    }

    #[test]
    fn a_running_build_object_is_stopped_then_deleted_once_finished_or_after_the_grace() {
        use BuildObjectStep::*;
        assert_eq!(build_object_step(None, None), Absent);
        assert_eq!(build_object_step(live(false, false, false), None), NotOurs);
        assert_eq!(build_object_step(live(false, true, true), None), NotOurs);
        assert_eq!(build_object_step(live(true, true, false), None), Delete);
        assert_eq!(build_object_step(live(true, false, false), None), Stop);
        assert_eq!(
            build_object_step(live(true, false, true), None),
            Wait(STOP_GRACE)
        );
        assert_eq!(
            build_object_step(live(true, false, true), Some(Duration::from_secs(10))),
            Wait(STOP_GRACE - Duration::from_secs(10))
        );
        assert_eq!(
            build_object_step(live(true, false, true), Some(STOP_GRACE)),
            Delete
        );
        assert_eq!(
            build_object_step(live(true, true, true), Some(Duration::ZERO)),
            Delete
        );
    }

    fn workload(component: &str, created: bool) -> Value {
        let mut w = json!({"metadata": {"name": "cart", "namespace": "acme"},
            "spec": {"owner": {"projectName": "shop", "componentName": component}}});
        if created {
            w["metadata"]["annotations"] = json!({CREATED_BY_ANNOTATION: "acme/cart-1"});
        }
        w
    }

    fn claim(build: &str, workload: Option<&str>, component: &str, updated: bool) -> Claim {
        Claim {
            build: format!("acme/{build}"),
            workload: workload.map(str::to_owned),
            owner: ("shop".into(), component.into()),
            updated,
            deleting: false,
        }
    }

    #[test]
    fn a_workload_goes_only_when_buildplane_created_it_and_nothing_else_points_at_it() {
        let owner = ("shop", "cart");
        let step = |w: &Value, others: &[Claim]| workload_step(w, "acme", owner, others);
        assert_eq!(step(&workload("cart", true), &[]), WorkloadStep::Delete);
        assert_eq!(
            step(&workload("cart", false), &[]),
            WorkloadStep::Keep(Kept::NotCreatedByBuildplane)
        );
        match step(&workload("pay", true), &[]) {
            WorkloadStep::Keep(Kept::OwnedElsewhere(why)) => {
                assert!(why.contains("belongs to component shop/pay"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // Another Build pointing at it keeps it; one pointing elsewhere, or being deleted, not.
        let other = claim("cart-2", Some("cart"), "cart", true);
        assert_eq!(
            step(&workload("cart", true), std::slice::from_ref(&other)),
            WorkloadStep::Keep(Kept::Claimed("acme/cart-2".into()))
        );
        let elsewhere = claim("cart-3", Some("cart-v2"), "cart", true);
        assert_eq!(
            step(&workload("cart", true), &[elsewhere]),
            WorkloadStep::Delete
        );
        let deleting = Claim {
            deleting: true,
            ..other.clone()
        };
        assert_eq!(
            step(&workload("cart", true), &[deleting]),
            WorkloadStep::Delete
        );
        // A Build that finished before names were recorded points at its component's Workloads.
        let legacy = claim("cart-0", None, "cart", true);
        assert_eq!(
            step(&workload("cart", true), &[legacy]),
            WorkloadStep::Keep(Kept::Claimed("acme/cart-0".into()))
        );
        let running = claim("cart-4", None, "cart", false);
        let other_component = claim("pay-1", None, "pay", true);
        assert_eq!(
            step(&workload("cart", true), &[running, other_component]),
            WorkloadStep::Delete
        );
    }

    #[test]
    fn the_creator_is_set_on_creation_kept_after_and_never_taken_from_the_output() {
        let output = || json!({"metadata": {"name": "cart", "annotations": {CREATED_BY_ANNOTATION: "forged"}}});
        let mut created = output();
        mark_creator(&mut created, None, "acme/cart-1");
        assert_eq!(created_by(&created), Some("acme/cart-1"));
        let mut later = output();
        mark_creator(&mut later, Some(&created), "acme/cart-2");
        assert_eq!(created_by(&later), Some("acme/cart-1"));
        let theirs = json!({"metadata": {"name": "cart"}});
        let mut over_theirs = output();
        mark_creator(&mut over_theirs, Some(&theirs), "acme/cart-2");
        assert_eq!(over_theirs, json!({"metadata": {"name": "cart"}}));
        let mut plain = json!({"metadata": {"name": "cart", "annotations": {"a": "b"}}});
        mark_creator(&mut plain, Some(&theirs), "acme/cart-2");
        assert_eq!(plain["metadata"]["annotations"], json!({"a": "b"}));
    }

    #[test]
    fn finalizer_patches_test_what_they_change() {
        let none: Vec<String> = vec![];
        assert_eq!(
            add_finalizer_patch(&none).unwrap(),
            json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                   {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
        );
        let theirs = vec!["example.com/keep".to_owned()];
        assert_eq!(
            add_finalizer_patch(&theirs).unwrap(),
            json!([{"op": "test", "path": "/metadata/finalizers", "value": ["example.com/keep"]},
                   {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}])
        );
        let both = vec!["example.com/keep".to_owned(), FINALIZER.to_owned()];
        assert_eq!(add_finalizer_patch(&both), None);
        assert_eq!(
            remove_finalizer_patch(&both).unwrap(),
            json!([{"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
                   {"op": "remove", "path": "/metadata/finalizers/1"}])
        );
        assert_eq!(remove_finalizer_patch(&theirs), None);
    }
}
