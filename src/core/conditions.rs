//! The Build conditions upstream's controller writes (`controller_conditions.go`), and the
//! timeline they follow for each phase. Pure: the current time is an argument.

use super::progress::{Phase, Unschedulable};
use super::text;
use serde::{Deserialize, Serialize};

pub const TYPE_BUILD_INITIATED: &str = "BuildInitiated";
pub const TYPE_BUILD_TRIGGERED: &str = "BuildTriggered";
pub const TYPE_BUILD_COMPLETED: &str = "BuildCompleted";
pub const TYPE_WORKLOAD_UPDATED: &str = "WorkloadUpdated";

pub const REASON_BUILD_INITIATED: &str = "BuildInitiated";
pub const REASON_BUILD_TRIGGERED: &str = "BuildTriggered";
pub const REASON_BUILD_COMPLETED: &str = "BuildCompleted";
pub const REASON_BUILD_FAILED: &str = "BuildFailed";
pub const REASON_BUILD_IN_PROGRESS: &str = "BuildInProgress";
/// Not upstream's: a step's pod is Pending because no node can take it (upstream shows
/// `BuildInProgress`, or nothing, forever). Back to `BuildInProgress` once it is scheduled.
pub const REASON_BUILD_UNSCHEDULABLE: &str = "BuildUnschedulable";
pub const REASON_WORKLOAD_UPDATED: &str = "WorkloadUpdated";
pub const REASON_WORKLOAD_UPDATE_FAILED: &str = "WorkloadUpdateFailed";
/// A target holds a Workload of that name owned by another component; it was left as it is.
pub const REASON_WORKLOAD_OWNED_ELSEWHERE: &str = "WorkloadOwnedByAnotherComponent";

/// Not upstream's: set only on a deleted Build while its finalizer cannot finish (always
/// `False`: a Build cleaned up is gone).
pub const TYPE_CLEANED_UP: &str = "CleanedUp";
/// Its build object was asked to stop; the Build waits for it to finish, then deletes it.
pub const REASON_BUILD_STOPPING: &str = "BuildStopping";
/// A step of the cleanup failed; it is retried with backoff.
pub const REASON_CLEANUP_FAILED: &str = "CleanupFailed";

pub const STATUS_TRUE: &str = "True";
pub const STATUS_FALSE: &str = "False";

/// Upstream's WorkloadUpdateFailed message.
pub const MSG_WORKLOAD_UPDATE_FAILED: &str = "Failed to update workload with the new built image";
/// Our message when a Workflow succeeded without a `workload-cr` output.
pub const MSG_NO_WORKLOAD: &str = "Build workflow succeeded but produced no Workload \
     (no workload-cr output from a succeeded workload-create-step)";

/// The conditions of `after` that are new or whose status or reason differ from `before`'s
/// (a changed message alone is no transition), in `after`'s order. `CleanedUp` is left out:
/// the cleanup reports each of its steps itself.
pub fn transitions<'a>(before: &[Condition], after: &'a [Condition]) -> Vec<&'a Condition> {
    after
        .iter()
        .filter(|c| c.type_ != TYPE_CLEANED_UP)
        .filter(|c| {
            find_condition(before, &c.type_)
                .is_none_or(|old| (&old.status, &old.reason) != (&c.status, &c.reason))
        })
        .collect()
}

/// The transition a status write's one Event reports ([`transitions`] from `before` to
/// `after`): the first warning among them, else the last (the furthest the build got). A write
/// that moves several conditions at once — a build that finished before its first status
/// write — is one transition of the Build; its conditions keep every step.
pub fn transition_event<'a>(before: &[Condition], after: &'a [Condition]) -> Option<&'a Condition> {
    let moved = transitions(before, after);
    moved
        .iter()
        .find(|c| is_warning(c))
        .or(moved.last())
        .copied()
}

/// Whether a condition is a warning (Event type `Warning`): `False` for a failure, not for a
/// build on its way (`BuildInProgress`).
pub fn is_warning(c: &Condition) -> bool {
    !c.is_true() && c.reason != REASON_BUILD_IN_PROGRESS
}

/// A Build status condition (`metav1.Condition` shape; serialized with the field name `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"` or `"False"`.
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Set by [`set_condition`]; constructors leave it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    fn new(
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        observed_generation: Option<i64>,
    ) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: if status { STATUS_TRUE } else { STATUS_FALSE }.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation,
            last_transition_time: None,
        }
    }

    /// `BuildInitiated=True`, reason `BuildInitiated`.
    pub fn build_initiated(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_BUILD_INITIATED,
            true,
            REASON_BUILD_INITIATED,
            "Build initialization started",
            generation,
        )
    }

    /// `BuildTriggered=True`, reason `BuildTriggered` (the Workflow was created).
    pub fn build_triggered(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_BUILD_TRIGGERED,
            true,
            REASON_BUILD_TRIGGERED,
            "Build has been triggered",
            generation,
        )
    }

    /// `BuildCompleted=True`, reason `BuildCompleted`.
    pub fn build_completed(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_BUILD_COMPLETED,
            true,
            REASON_BUILD_COMPLETED,
            "Build completed successfully",
            generation,
        )
    }

    /// `BuildCompleted=False`, reason `BuildFailed`, with the message the controller writes
    /// ("Build workflow failed", overriding the constructor's "Build failed").
    pub fn build_failed(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_BUILD_COMPLETED,
            false,
            REASON_BUILD_FAILED,
            "Build workflow failed",
            generation,
        )
    }

    /// `BuildCompleted=False`, reason `BuildInProgress`.
    pub fn build_in_progress(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_BUILD_COMPLETED,
            false,
            REASON_BUILD_IN_PROGRESS,
            "Build is in progress",
            generation,
        )
    }

    /// `BuildCompleted=False`, reason `BuildUnschedulable`: `u.step` waits for a node that can
    /// take its pod; the message is the scheduler's reason and where to look.
    pub fn build_unschedulable(generation: Option<i64>, u: &Unschedulable) -> Condition {
        let reason = if u.reason.is_empty() {
            "no node can take it".to_owned()
        } else {
            text::escape_controls(&u.reason).into_owned()
        };
        let message = format!(
            "{} is Pending: nothing can schedule its pod: {reason} (`buildplane check` names \
             the node label build pods require)",
            text::escape_controls(&u.step)
        );
        Self::new(
            TYPE_BUILD_COMPLETED,
            false,
            REASON_BUILD_UNSCHEDULABLE,
            &message,
            generation,
        )
    }

    /// `WorkloadUpdated=True`, reason `WorkloadUpdated`.
    pub fn workload_updated(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_WORKLOAD_UPDATED,
            true,
            REASON_WORKLOAD_UPDATED,
            "Workload updated successfully",
            generation,
        )
    }

    /// `WorkloadUpdated=False`, reason `WorkloadUpdateFailed`, upstream's message.
    pub fn workload_update_failed(generation: Option<i64>) -> Condition {
        Self::new(
            TYPE_WORKLOAD_UPDATED,
            false,
            REASON_WORKLOAD_UPDATE_FAILED,
            MSG_WORKLOAD_UPDATE_FAILED,
            generation,
        )
    }

    /// `WorkloadUpdated=False`, reason `WorkloadOwnedByAnotherComponent`: the name is taken by
    /// another component's Workload, which is never overwritten (`detail` says where and whose).
    pub fn workload_owned_elsewhere(generation: Option<i64>, detail: &str) -> Condition {
        Self::new(
            TYPE_WORKLOAD_UPDATED,
            false,
            REASON_WORKLOAD_OWNED_ELSEWHERE,
            detail,
            generation,
        )
    }

    /// True when `status` is `"True"`.
    pub fn is_true(&self) -> bool {
        self.status == STATUS_TRUE
    }
}

/// How applying the Workload turned out, for a Workflow that Succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadOutcome {
    /// Not attempted yet.
    NotYet,
    /// Applied.
    Updated,
    /// Applying failed; the text is appended to upstream's message.
    Failed(String),
    /// A target holds another component's Workload of that name (the text says which).
    OwnedElsewhere(String),
    /// The Workflow produced no `workload-cr`.
    Missing,
}

/// The full condition list a Build carries at this point, in upstream's timeline order:
/// BuildInitiated, BuildTriggered, then BuildCompleted (InProgress / Completed / Failed), then
/// WorkloadUpdated when the Workflow Succeeded and the Workload step was reached.
///
/// `Unknown` and `Pending` (Argo `""`/`Pending`: the Workflow exists, nothing reported yet) give
/// the first two only. `workload` is ignored unless `phase` is `Succeeded`.
///
/// Deviations from upstream, on purpose:
/// - [`WorkloadOutcome::Missing`] gives `WorkloadUpdated=False` reason `WorkloadUpdateFailed`
///   with [`MSG_NO_WORKLOAD`]. Upstream reports `WorkloadUpdated=True` when the Workflow had no
///   `workload-cr` output (weakness 4), which marks the Build done although nothing was applied.
/// - [`WorkloadOutcome::Failed`] appends `": <detail>"` to upstream's message (type, status and
///   reason are upstream's).
pub fn conditions_for(
    phase: &Phase,
    workload: WorkloadOutcome,
    observed_generation: Option<i64>,
) -> Vec<Condition> {
    let g = observed_generation;
    let mut out = vec![Condition::build_initiated(g), Condition::build_triggered(g)];
    match phase {
        Phase::Pending | Phase::Unknown => {}
        Phase::Running => out.push(Condition::build_in_progress(g)),
        Phase::Failed => out.push(Condition::build_failed(g)),
        Phase::Succeeded => {
            out.push(Condition::build_completed(g));
            match workload {
                WorkloadOutcome::NotYet => {}
                WorkloadOutcome::Updated => out.push(Condition::workload_updated(g)),
                WorkloadOutcome::Failed(detail) => {
                    let mut c = Condition::workload_update_failed(g);
                    if !detail.is_empty() {
                        c.message = format!("{MSG_WORKLOAD_UPDATE_FAILED}: {detail}");
                    }
                    out.push(c);
                }
                WorkloadOutcome::OwnedElsewhere(detail) => {
                    out.push(Condition::workload_owned_elsewhere(g, &detail))
                }
                WorkloadOutcome::Missing => {
                    let mut c = Condition::workload_update_failed(g);
                    c.message = MSG_NO_WORKLOAD.to_owned();
                    out.push(c);
                }
            }
        }
    }
    out
}

/// `status.phase`, the one word `kubectl get builds` shows, read from the conditions:
/// `Succeeded` once the Workload was applied, `Failed` when the build or its Workload failed,
/// `Running` from the submit until then, `Pending` before it (also while a submit is refused
/// and retried, and while no node can take a step: the conditions say why).
pub fn phase_word(list: &[Condition]) -> &'static str {
    let get = |type_| find_condition(list, type_);
    match (
        get(TYPE_WORKLOAD_UPDATED),
        get(TYPE_BUILD_COMPLETED),
        get(TYPE_BUILD_TRIGGERED),
    ) {
        (Some(w), _, _) if w.is_true() => "Succeeded",
        (Some(_), _, _) => "Failed",
        (None, Some(c), _) if c.reason == REASON_BUILD_FAILED => "Failed",
        (None, Some(c), _) if c.reason == REASON_BUILD_UNSCHEDULABLE => "Pending",
        (None, Some(_), _) => "Running",
        (None, None, Some(t)) if t.is_true() => "Running",
        _ => "Pending",
    }
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(list: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    list.iter().find(|c| c.type_ == type_)
}

/// `meta.SetStatusCondition`: adds `new` (its `lastTransitionTime`, or `now` when unset) or
/// updates the condition of the same type. `lastTransitionTime` changes only when the
/// condition is new or its status flips; reason, message and observedGeneration are always
/// taken from `new`. Returns whether anything changed.
pub fn set_condition(list: &mut Vec<Condition>, new: Condition, now: &str) -> bool {
    let Some(existing) = list.iter_mut().find(|c| c.type_ == new.type_) else {
        let mut new = new;
        if new.last_transition_time.as_deref().unwrap_or("").is_empty() {
            new.last_transition_time = Some(now.to_owned());
        }
        list.push(new);
        return true;
    };
    let mut changed = false;
    if existing.status != new.status {
        existing.status = new.status;
        existing.last_transition_time = match new.last_transition_time {
            Some(t) if !t.is_empty() => Some(t),
            _ => Some(now.to_owned()),
        };
        changed = true;
    }
    if existing.reason != new.reason {
        existing.reason = new.reason;
        changed = true;
    }
    if existing.message != new.message {
        existing.message = new.message;
        changed = true;
    }
    if existing.observed_generation != new.observed_generation {
        existing.observed_generation = new.observed_generation;
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_phase_word_follows_the_timeline() {
        let g = None;
        let u = crate::core::progress::Unschedulable {
            step: "build-step".into(),
            reason: String::new(),
        };
        let refused = Condition::new(TYPE_BUILD_TRIGGERED, false, "NoBuildPlane", "none", g);
        let owned = Condition::workload_owned_elsewhere(g, "x");
        let timeline: [(Vec<Condition>, &str); 8] = [
            (vec![], "Pending"),
            (vec![Condition::build_initiated(g), refused], "Pending"),
            (
                vec![Condition::build_initiated(g), Condition::build_triggered(g)],
                "Running",
            ),
            (vec![Condition::build_unschedulable(g, &u)], "Pending"),
            (vec![Condition::build_in_progress(g)], "Running"),
            (vec![Condition::build_completed(g)], "Running"),
            (
                vec![
                    Condition::build_completed(g),
                    Condition::workload_updated(g),
                ],
                "Succeeded",
            ),
            (vec![Condition::build_completed(g), owned], "Failed"),
        ];
        for (list, word) in timeline {
            assert_eq!(phase_word(&list), word, "{list:?}");
        }
        assert_eq!(phase_word(&[Condition::build_failed(g)]), "Failed");
    }

    fn triples(list: &[Condition]) -> Vec<(&str, &str, &str, &str)> {
        list.iter()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_str(),
                    c.message.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn transitions_are_new_conditions_and_changed_status_or_reason_only() {
        let g = Some(1);
        let before = vec![
            Condition::build_initiated(g),
            Condition::build_triggered(g),
            Condition::build_in_progress(g),
        ];
        let mut after = before.clone();
        // Same status and reason, another message: no transition.
        after[2].message = "still going".into();
        assert!(transitions(&before, &after).is_empty());
        let u = Unschedulable {
            step: "clone-step".into(),
            reason: "0/1 nodes are available".into(),
        };
        after[2] = Condition::build_unschedulable(g, &u);
        after.push(Condition::workload_update_failed(g));
        let cleanup = Condition::new(TYPE_CLEANED_UP, false, REASON_BUILD_STOPPING, "x", g);
        after.push(cleanup);
        let t: Vec<(&str, bool)> = transitions(&before, &after)
            .into_iter()
            .map(|c| (c.reason.as_str(), is_warning(c)))
            .collect();
        assert_eq!(
            t,
            [("BuildUnschedulable", true), ("WorkloadUpdateFailed", true)]
        );
        assert!(!is_warning(&Condition::build_in_progress(g)));
        assert!(!is_warning(&Condition::build_completed(g)));
        assert!(is_warning(&Condition::build_failed(g)));
    }

    #[test]
    fn a_status_write_is_one_event_its_first_warning_else_its_furthest_step() {
        let g = Some(1);
        let reason = |before: &[Condition], after: &[Condition]| {
            transition_event(before, after).map(|c| c.reason.clone())
        };
        // A build that finished before its first status write: one Event, the Workload's.
        let done = vec![
            Condition::build_initiated(g),
            Condition::build_triggered(g),
            Condition::build_completed(g),
            Condition::workload_updated(g),
        ];
        assert_eq!(reason(&[], &done).as_deref(), Some("WorkloadUpdated"));
        assert_eq!(reason(&done, &done), None, "nothing moved, no Event");
        // A failure in the same write is what the Event says, whatever came after it.
        let failed = vec![
            Condition::build_initiated(g),
            Condition::build_triggered(g),
            Condition::build_failed(g),
            Condition::workload_update_failed(g),
        ];
        assert_eq!(reason(&[], &failed).as_deref(), Some("BuildFailed"));
        // Step by step: each write is its own Event.
        let triggered = &done[..2];
        assert_eq!(reason(&[], triggered).as_deref(), Some("BuildTriggered"));
        assert_eq!(reason(triggered, &done).as_deref(), Some("WorkloadUpdated"));
    }

    const INITIATED: (&str, &str, &str, &str) = (
        "BuildInitiated",
        "True",
        "BuildInitiated",
        "Build initialization started",
    );
    const TRIGGERED: (&str, &str, &str, &str) = (
        "BuildTriggered",
        "True",
        "BuildTriggered",
        "Build has been triggered",
    );
    const COMPLETED: (&str, &str, &str, &str) = (
        "BuildCompleted",
        "True",
        "BuildCompleted",
        "Build completed successfully",
    );

    #[test]
    fn conditions_match_upstreams_table() {
        let g = Some(3);
        assert_eq!(
            triples(&conditions_for(&Phase::Unknown, WorkloadOutcome::NotYet, g)),
            vec![INITIATED, TRIGGERED]
        );
        assert_eq!(
            triples(&conditions_for(&Phase::Running, WorkloadOutcome::NotYet, g)),
            vec![
                INITIATED,
                TRIGGERED,
                (
                    "BuildCompleted",
                    "False",
                    "BuildInProgress",
                    "Build is in progress"
                )
            ]
        );
        assert_eq!(
            triples(&conditions_for(
                &Phase::Succeeded,
                WorkloadOutcome::NotYet,
                g
            )),
            vec![INITIATED, TRIGGERED, COMPLETED]
        );
        assert_eq!(
            triples(&conditions_for(
                &Phase::Succeeded,
                WorkloadOutcome::Updated,
                g
            )),
            vec![
                INITIATED,
                TRIGGERED,
                COMPLETED,
                (
                    "WorkloadUpdated",
                    "True",
                    "WorkloadUpdated",
                    "Workload updated successfully"
                )
            ]
        );
        assert_eq!(
            triples(&conditions_for(&Phase::Failed, WorkloadOutcome::Updated, g)),
            vec![
                INITIATED,
                TRIGGERED,
                (
                    "BuildCompleted",
                    "False",
                    "BuildFailed",
                    "Build workflow failed"
                )
            ]
        );
        assert_eq!(
            triples(&conditions_for(
                &Phase::Succeeded,
                WorkloadOutcome::Missing,
                g
            )),
            vec![
                INITIATED,
                TRIGGERED,
                COMPLETED,
                (
                    "WorkloadUpdated",
                    "False",
                    "WorkloadUpdateFailed",
                    MSG_NO_WORKLOAD
                )
            ]
        );
        let failed = conditions_for(
            &Phase::Succeeded,
            WorkloadOutcome::Failed("forbidden".into()),
            g,
        );
        assert_eq!(
            triples(&failed[3..]),
            vec![(
                "WorkloadUpdated",
                "False",
                "WorkloadUpdateFailed",
                "Failed to update workload with the new built image: forbidden"
            )]
        );
        assert_eq!(
            Condition::workload_update_failed(g).message,
            "Failed to update workload with the new built image"
        );
        assert!(
            conditions_for(&Phase::Running, WorkloadOutcome::NotYet, g)
                .iter()
                .all(|c| c.observed_generation == g && c.last_transition_time.is_none())
        );
    }

    #[test]
    fn conditions_serialize_with_upstream_field_names() {
        let mut list = Vec::new();
        set_condition(
            &mut list,
            Condition::build_initiated(Some(2)),
            "2025-07-01T10:00:00Z",
        );
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!([{
                "type": "BuildInitiated", "status": "True", "reason": "BuildInitiated",
                "message": "Build initialization started", "observedGeneration": 2,
                "lastTransitionTime": "2025-07-01T10:00:00Z"
            }])
        );
        let back: Vec<Condition> =
            serde_json::from_value(serde_json::to_value(&list).unwrap()).unwrap();
        assert_eq!(back, list);
        assert_eq!(
            serde_json::to_value(Condition::build_initiated(None)).unwrap(),
            json!({"type": "BuildInitiated", "status": "True", "reason": "BuildInitiated",
                   "message": "Build initialization started"})
        );
    }

    #[test]
    fn set_condition_follows_meta_set_status_condition() {
        let (t0, t1, t2) = (
            "2025-07-01T10:00:00Z",
            "2025-07-01T10:00:20Z",
            "2025-07-01T10:00:40Z",
        );
        let mut list = vec![Condition::build_initiated(Some(1))];
        list[0].last_transition_time = Some(t0.into());

        // New type: appended, stamped with now.
        assert!(set_condition(
            &mut list,
            Condition::build_in_progress(Some(1)),
            t1
        ));
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].last_transition_time.as_deref(), Some(t1));

        // Same everything: no change at all.
        assert!(!set_condition(
            &mut list,
            Condition::build_in_progress(Some(1)),
            t2
        ));
        assert_eq!(list[1].last_transition_time.as_deref(), Some(t1));

        // Same status (False), other reason: reason/message change, time kept.
        assert!(set_condition(
            &mut list,
            Condition::build_failed(Some(1)),
            t2
        ));
        assert_eq!(list[1].reason, "BuildFailed");
        assert_eq!(list[1].message, "Build workflow failed");
        assert_eq!(list[1].last_transition_time.as_deref(), Some(t1));

        // Only the generation differs: updated, time kept.
        assert!(set_condition(
            &mut list,
            Condition::build_failed(Some(2)),
            t2
        ));
        assert_eq!(list[1].observed_generation, Some(2));
        assert_eq!(list[1].last_transition_time.as_deref(), Some(t1));

        // Status flips: time moves.
        assert!(set_condition(
            &mut list,
            Condition::build_completed(Some(2)),
            t2
        ));
        assert_eq!(list[1].status, "True");
        assert_eq!(list[1].last_transition_time.as_deref(), Some(t2));
        assert_eq!(list[0].last_transition_time.as_deref(), Some(t0));
        assert_eq!(list.len(), 2);

        // A time carried by `new` wins over now.
        let mut c = Condition::workload_updated(Some(2));
        c.last_transition_time = Some(t0.into());
        set_condition(&mut list, c, t2);
        assert_eq!(
            find_condition(&list, "WorkloadUpdated")
                .unwrap()
                .last_transition_time
                .as_deref(),
            Some(t0)
        );
    }
}
