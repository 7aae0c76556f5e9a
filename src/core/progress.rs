//! A build's progress in engine-neutral terms: its phase, its steps, what it produced. Engines
//! read their own objects into these (`crate::engine`); the lifecycle, the conditions and the
//! terminal board see only these.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A phase in the engine's terms (upstream's `convertArgoPhase`, §5.4), also used for steps.
///
/// For a **Workflow**, the Argo engine never yields `Pending`: upstream maps Argo's `""` and
/// `Pending` to `Unknown` and the controller treats both alike (no condition change); we keep
/// that, and the raw Argo phase stays available in [`WorkflowStatus::argo_phase`].
/// `Pending` exists for **steps** (the Argo engine's node mapping): a step whose node does not exist yet,
/// or whose pod node is `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Unknown => "Unknown",
        }
    }

    /// Succeeded or Failed: nothing will change any more.
    pub fn is_completed(&self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The build's overall state: its phase and the engine's message (upstream carries the message
/// but never writes it into conditions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildStatus {
    pub phase: Phase,
    pub message: String,
}

/// A step that waits because nothing can schedule its pod (no node fits it), as the engine
/// reports it: the scheduler's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unschedulable {
    pub step: String,
    /// The scheduler's reason, e.g. `0/3 nodes are available: 3 node(s) didn't match Pod's node
    /// affinity/selector.` (at most [`MAX_UNSCHEDULABLE`] bytes).
    pub reason: String,
}

/// The longest scheduler reason kept (the API server's own messages are far shorter).
pub const MAX_UNSCHEDULABLE: usize = 512;

/// One step's phase, as shown while a build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepPhase {
    pub step: &'static str,
    pub phase: Phase,
}

/// What a finished build produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Artifacts {
    /// Output `image` of the last `push-step` attempt, only if that attempt Succeeded.
    pub image: Option<String>,
    /// Output `workload-cr` of the last `workload-create-step` attempt, only if it Succeeded.
    pub workload_cr: Option<String>,
    /// Output `git-revision` of the last `clone-step` attempt: the commit that was built.
    pub revision: Option<String>,
}

/// One step pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPod {
    /// Position of the step group (`[i]`), when the node name carries one.
    pub group: Option<usize>,
    /// The step's name (`clone-step`, …), or the pod name when the node name is missing.
    pub step: String,
    pub pod: String,
    pub created: String,
}

/// Whether a step matches a `--step` filter: the full name or without `-step`.
pub fn step_matches(step: &str, filter: &str) -> bool {
    step == filter || step.strip_suffix("-step") == Some(filter)
}

/// One build on the build plane as `list` and `get` show it, read from its build object alone
/// (no Build file). Text fields hold what the cluster returned, unescaped: printers escape them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    /// The organization, from the build object's label.
    pub organization: String,
    /// The Build's name, from the build object's label (the name itself whenever it is a valid
    /// label value, that is at most 63 characters; otherwise a slug with its hash).
    pub build: String,
    /// The build object: its kind, namespace and name.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The phase in engine-neutral terms (as `watch -o json` reports it).
    pub phase: Phase,
    /// The engine's own word for it (Argo: `Pending`, `Running`, `Succeeded`, `Failed`,
    /// `Error`; empty before the engine picked the build up).
    pub engine_phase: String,
    pub message: String,
    /// The build template the object runs.
    pub template: String,
    /// The owner, repository and revision the build was asked for (empty when not recorded).
    pub project: String,
    pub component: String,
    pub repository: String,
    pub commit: String,
    pub branch: String,
    /// The commit the build checked out, once it reported it.
    pub revision: Option<String>,
    /// The image pushed, once the push step succeeded.
    pub image: Option<String>,
    /// RFC 3339 times, as the server wrote them.
    pub created: Option<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Whether someone asked the build to stop, and how.
    pub stop_requested: Option<crate::core::builds::StopMode>,
    /// Every step of the engine, in order.
    pub steps: Vec<StepRecord>,
    /// Why the steps could not be read (a compressed status too large, an offloaded one):
    /// `steps` is then empty, not all Pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_error: Option<String>,
    /// The engine's own conditions (Argo: `PodRunning`, `Completed`).
    pub engine_conditions: Vec<EngineCondition>,
    /// The provenance annotations the build object carries (`core::provenance`), by key.
    pub provenance: std::collections::BTreeMap<String, String>,
}

impl BuildRecord {
    /// `org/build`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.organization, self.build)
    }

    /// Steps that succeeded, and how many there are (`None` when the steps are unreadable).
    pub fn steps_done(&self) -> Option<(usize, usize)> {
        if self.steps_error.is_some() {
            return None;
        }
        let done = self
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Succeeded)
            .count();
        Some((done, self.steps.len()))
    }
}

/// One step of a [`BuildRecord`]: its last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub step: String,
    pub phase: Phase,
    /// The engine's word for it (empty while the step has not started).
    pub engine_phase: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// How many times the step ran (more than 1 with retries).
    pub attempts: usize,
    pub message: String,
}

/// A condition the engine wrote on its build object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub message: String,
}
