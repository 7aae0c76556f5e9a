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
