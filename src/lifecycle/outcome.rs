//! How a finished build turned out, as a value: what its build object reported, what harvest
//! made of its outputs, and what each emit target did with the Workload. One verdict, one set of
//! conditions: `watch`, `apply --wait`, `sync` and the controller all read them from here, so the
//! same inputs give the same exit code, metric and Build status everywhere.

use crate::core::conditions::{self, Condition, WorkloadOutcome};
use crate::core::progress::Phase;
use serde_json::Value;

/// What harvest made of a finished build's outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Harvest {
    /// The build did not succeed: nothing to harvest.
    NotSucceeded,
    /// A valid Workload, in canonical form.
    Workload(Value),
    /// The build succeeded without a `workload-cr` output.
    NoOutput,
    /// The output is not a usable Workload (the reason).
    Unusable(String),
}

/// Where an emit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitTarget {
    Cluster,
    Dir,
    Git,
}

impl EmitTarget {
    pub fn as_str(&self) -> &'static str {
        match self {
            EmitTarget::Cluster => "cluster",
            EmitTarget::Dir => "dir",
            EmitTarget::Git => "git",
        }
    }
}

/// Why a target did not take a Workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitFault {
    /// The target holds a Workload of that name whose owner is another component: it was left
    /// as it is (the text names the Workload and its owner).
    OwnedElsewhere(String),
    /// The target refused the Workload or could not be reached.
    Failed(String),
}

impl std::fmt::Display for EmitFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitFault::OwnedElsewhere(m) | EmitFault::Failed(m) => f.write_str(m),
        }
    }
}

/// What one target did with a Workload: the line to show (`applied …`, `unchanged …`,
/// `committed …`), or why it did not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitResult {
    pub target: EmitTarget,
    pub result: Result<String, EmitFault>,
}

impl EmitResult {
    /// The line a report shows for this target.
    pub fn note(&self) -> String {
        match &self.result {
            Ok(note) => note.clone(),
            Err(EmitFault::OwnedElsewhere(e)) => {
                format!("not emitted ({}): {e}", self.target.as_str())
            }
            Err(EmitFault::Failed(e)) => format!("emit failed ({}): {e}", self.target.as_str()),
        }
    }
}

/// A finished build, from its build object to its emits.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    /// `org/build-name`.
    pub build: String,
    /// `namespace/name` of the build object.
    pub workflow: String,
    pub phase: Phase,
    pub message: Option<String>,
    pub image: Option<String>,
    /// The commit clone-step checked out.
    pub revision: Option<String>,
    pub harvest: Harvest,
    /// One result per emit target, in emit order; empty when no target is configured or there
    /// was no Workload to emit.
    pub emits: Vec<EmitResult>,
}

/// The verdict on a finished build, for exit codes, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The build succeeded, its Workload is valid, and every configured target accepted it
    /// (with no target configured there is nothing to fail).
    Succeeded,
    /// The build object failed, erred, or was deleted before it finished.
    BuildFailed,
    /// The build succeeded without a Workload output.
    NoWorkload,
    /// The build's Workload output is not a usable Workload.
    InvalidWorkload,
    /// A target refused or could not take the Workload.
    EmitFailed,
    /// A target holds another component's Workload of that name; it was not overwritten.
    WorkloadConflict,
}

impl Verdict {
    /// The `result` a log line or metric label shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Succeeded => "succeeded",
            Verdict::BuildFailed => "build-failed",
            Verdict::NoWorkload => "no-workload",
            Verdict::InvalidWorkload => "invalid-workload",
            Verdict::EmitFailed => "emit-failed",
            Verdict::WorkloadConflict => "workload-conflict",
        }
    }
}

impl BuildOutcome {
    /// A build whose object failed or vanished: no harvest, no emit.
    pub fn failed(build: String, workflow: String, message: &str) -> BuildOutcome {
        BuildOutcome {
            build,
            workflow,
            phase: Phase::Failed,
            message: Some(message.to_owned()),
            image: None,
            revision: None,
            harvest: Harvest::NotSucceeded,
            emits: Vec::new(),
        }
    }

    /// The one verdict every command reports.
    pub fn verdict(&self) -> Verdict {
        match &self.harvest {
            _ if self.phase != Phase::Succeeded => Verdict::BuildFailed,
            Harvest::NotSucceeded => Verdict::BuildFailed,
            Harvest::NoOutput => Verdict::NoWorkload,
            Harvest::Unusable(_) => Verdict::InvalidWorkload,
            Harvest::Workload(_) if self.conflict().is_some() => Verdict::WorkloadConflict,
            Harvest::Workload(_) if self.emits.iter().any(|e| e.result.is_err()) => {
                Verdict::EmitFailed
            }
            Harvest::Workload(_) => Verdict::Succeeded,
        }
    }

    /// The first target that holds another component's Workload of this name.
    pub fn conflict(&self) -> Option<&str> {
        self.emits.iter().find_map(|e| match &e.result {
            Err(EmitFault::OwnedElsewhere(m)) => Some(m.as_str()),
            _ => None,
        })
    }

    /// Why the first target that failed did (not an ownership conflict).
    pub fn emit_failure(&self) -> Option<&str> {
        self.emits.iter().find_map(|e| match &e.result {
            Err(EmitFault::Failed(m)) => Some(m.as_str()),
            _ => None,
        })
    }

    pub fn succeeded(&self) -> bool {
        self.verdict() == Verdict::Succeeded
    }

    /// The Workload, when harvest produced a valid one.
    pub fn workload(&self) -> Option<&Value> {
        match &self.harvest {
            Harvest::Workload(w) => Some(w),
            _ => None,
        }
    }

    /// The name of the Workload the control plane took (its cluster target applied it).
    pub fn applied_to_cluster(&self) -> Option<&str> {
        let taken = self
            .emits
            .iter()
            .any(|e| e.target == EmitTarget::Cluster && e.result.is_ok());
        if !taken {
            return None;
        }
        self.workload()?
            .pointer("/metadata/name")
            .and_then(Value::as_str)
    }

    /// Why there is no Workload, for reports.
    pub fn workload_error(&self) -> Option<String> {
        match &self.harvest {
            Harvest::NoOutput => {
                Some("the build succeeded but produced no Workload (no workload-cr output)".into())
            }
            Harvest::Unusable(e) => Some(e.clone()),
            Harvest::NotSucceeded | Harvest::Workload(_) => None,
        }
    }

    /// What happened to the Workload, in the terms of upstream's WorkloadUpdated condition:
    /// `Updated` only when a target took it; none configured leaves the condition unset.
    pub fn workload_outcome(&self) -> WorkloadOutcome {
        match &self.harvest {
            Harvest::NotSucceeded => WorkloadOutcome::NotYet,
            Harvest::NoOutput => WorkloadOutcome::Missing,
            Harvest::Unusable(e) => WorkloadOutcome::Failed(e.clone()),
            Harvest::Workload(_) => match (self.conflict(), self.emit_failure()) {
                (Some(e), _) => WorkloadOutcome::OwnedElsewhere(e.to_owned()),
                (None, Some(e)) => WorkloadOutcome::Failed(e.to_owned()),
                (None, None) if self.emits.is_empty() => WorkloadOutcome::NotYet,
                (None, None) => WorkloadOutcome::Updated,
            },
        }
    }

    /// The Build's conditions, in upstream's timeline order.
    pub fn conditions(&self, generation: Option<i64>) -> Vec<Condition> {
        conditions::conditions_for(&self.phase, self.workload_outcome(), generation)
    }

    /// What happened to the Workload, in a word or two (`emitted`, `none`, `failed: …`).
    pub fn workload_summary(&self) -> String {
        match self.workload_outcome() {
            WorkloadOutcome::Updated => "emitted".to_owned(),
            WorkloadOutcome::NotYet => "none".to_owned(),
            WorkloadOutcome::Missing => "no workload-cr output".to_owned(),
            WorkloadOutcome::Failed(e) => format!("failed: {e}"),
            WorkloadOutcome::OwnedElsewhere(e) => format!("not emitted: {e}"),
        }
    }

    /// The line each emit target left.
    pub fn notes(&self) -> Vec<String> {
        self.emits.iter().map(EmitResult::note).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(phase: Phase, harvest: Harvest, emits: &[(EmitTarget, bool)]) -> BuildOutcome {
        BuildOutcome {
            build: "acme/b".into(),
            workflow: "ns/w".into(),
            phase,
            message: None,
            image: None,
            revision: None,
            harvest,
            emits: emits
                .iter()
                .map(|&(target, ok)| EmitResult {
                    target,
                    result: if ok {
                        Ok(format!("wrote {}", target.as_str()))
                    } else {
                        Err(EmitFault::Failed(format!("{} refused", target.as_str())))
                    },
                })
                .collect(),
        }
    }

    /// `(type, status, reason)` of a condition.
    type Triple = (String, String, String);

    /// The last condition's triple.
    fn last(o: &BuildOutcome) -> Triple {
        let c = o.conditions(Some(1)).pop().unwrap();
        (c.type_, c.status, c.reason)
    }

    fn t(type_: &str, status: &str, reason: &str) -> Triple {
        (type_.into(), status.into(), reason.into())
    }

    #[test]
    fn every_row_has_one_verdict_and_one_set_of_conditions() {
        use EmitTarget::{Cluster, Dir, Git};
        let w = || Harvest::Workload(json!({"kind": "Workload"}));
        let deleted = BuildOutcome::failed("acme/b".into(), "ns/w".into(), "deleted");
        let rows: Vec<(&str, BuildOutcome, Verdict, Triple)> = vec![
            (
                "success, emitted everywhere",
                outcome(
                    Phase::Succeeded,
                    w(),
                    &[(Cluster, true), (Dir, true), (Git, true)],
                ),
                Verdict::Succeeded,
                t("WorkloadUpdated", "True", "WorkloadUpdated"),
            ),
            (
                "success, no emit target",
                outcome(Phase::Succeeded, w(), &[]),
                Verdict::Succeeded,
                t("BuildCompleted", "True", "BuildCompleted"),
            ),
            (
                "a step failed (Argo Failed or Error)",
                outcome(Phase::Failed, Harvest::NotSucceeded, &[]),
                Verdict::BuildFailed,
                t("BuildCompleted", "False", "BuildFailed"),
            ),
            (
                "deleted before it finished",
                deleted,
                Verdict::BuildFailed,
                t("BuildCompleted", "False", "BuildFailed"),
            ),
            (
                "no workload-cr output",
                outcome(Phase::Succeeded, Harvest::NoOutput, &[(Cluster, true)]),
                Verdict::NoWorkload,
                t("WorkloadUpdated", "False", "WorkloadUpdateFailed"),
            ),
            (
                "invalid workload-cr",
                outcome(Phase::Succeeded, Harvest::Unusable("bad".into()), &[]),
                Verdict::InvalidWorkload,
                t("WorkloadUpdated", "False", "WorkloadUpdateFailed"),
            ),
            (
                "the control plane refused the Workload",
                outcome(Phase::Succeeded, w(), &[(Cluster, false), (Dir, true)]),
                Verdict::EmitFailed,
                t("WorkloadUpdated", "False", "WorkloadUpdateFailed"),
            ),
            (
                "the directory failed",
                outcome(Phase::Succeeded, w(), &[(Dir, false)]),
                Verdict::EmitFailed,
                t("WorkloadUpdated", "False", "WorkloadUpdateFailed"),
            ),
            (
                "the Git push failed",
                outcome(Phase::Succeeded, w(), &[(Cluster, true), (Git, false)]),
                Verdict::EmitFailed,
                t("WorkloadUpdated", "False", "WorkloadUpdateFailed"),
            ),
            (
                "the cluster holds another component's Workload of that name",
                BuildOutcome {
                    emits: vec![
                        EmitResult {
                            target: Cluster,
                            result: Err(EmitFault::OwnedElsewhere("owned by shop/pay".into())),
                        },
                        EmitResult {
                            target: Dir,
                            result: Err(EmitFault::Failed("disk full".into())),
                        },
                    ],
                    ..outcome(Phase::Succeeded, w(), &[])
                },
                Verdict::WorkloadConflict,
                t(
                    "WorkloadUpdated",
                    "False",
                    "WorkloadOwnedByAnotherComponent",
                ),
            ),
        ];
        for (name, o, verdict, condition) in rows {
            assert_eq!(o.verdict(), verdict, "{name}");
            assert_eq!(o.succeeded(), verdict == Verdict::Succeeded, "{name}");
            assert_eq!(last(&o), condition, "{name}");
        }
    }

    #[test]
    fn a_failed_target_is_named_in_the_condition_and_the_notes() {
        let o = outcome(
            Phase::Succeeded,
            Harvest::Workload(json!({})),
            &[(EmitTarget::Dir, true), (EmitTarget::Git, false)],
        );
        let c = o.conditions(None).pop().unwrap();
        assert_eq!(
            c.message,
            format!("{}: git refused", conditions::MSG_WORKLOAD_UPDATE_FAILED)
        );
        assert_eq!(o.notes(), ["wrote dir", "emit failed (git): git refused"]);
    }

    #[test]
    fn a_missing_workload_says_why() {
        let o = outcome(Phase::Succeeded, Harvest::NoOutput, &[]);
        assert!(
            o.workload_error()
                .unwrap()
                .contains("no workload-cr output")
        );
        assert_eq!(o.workload(), None);
        let c = o.conditions(None).pop().unwrap();
        assert_eq!(c.message, conditions::MSG_NO_WORKLOAD);
    }
}
