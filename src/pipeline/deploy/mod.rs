//! The diff/apply half of the pipeline: resolve every object's API, check permissions, read
//! the inventories and the live objects ([`prepare()`]), then either compare ([`diff()`]) or
//! apply in stages and prune ([`apply()`]). Nothing is written before every object has
//! resolved and every permission is known. What happens to each object is decided once, in
//! `decide`, for both diff and apply.

mod apply;
mod decide;
mod diff;
mod inventory;
mod prepare;
mod templates;

pub use apply::{apply, apply_observed, forget_builds};
pub use diff::{Preview, diff, preview};
pub use prepare::{prepare, to_send};
pub use templates::{TemplateProblem, cluster_template_problems};

use crate::core::manifest::Manifest;
use crate::core::plan::{self, Entry, Inventory, Stage};
use crate::kube::{KubeError, Resource};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why diff or apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A cluster call failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The credentials lack permissions the plan needs; one line per permission.
    #[error("missing permissions, nothing was changed:\n{}", .0.join("\n"))]
    Forbidden(Vec<String>),
    /// An inventory ConfigMap is unreadable.
    #[error(transparent)]
    Inventory(#[from] plan::InventoryError),
    /// An object could not be shown as YAML.
    #[error(transparent)]
    Serialize(#[from] crate::core::manifest::SerializeError),
    /// A Build names a ClusterWorkflowTemplate of the build plane that is missing, fails the
    /// lint, or does not declare its parameters (the first; the count of the others).
    #[error("{first}{}", if *.more > 0 { format!(" (and {} more)", .more) } else { String::new() })]
    Template {
        first: Box<TemplateProblem>,
        more: usize,
    },
    /// A build object being replaced or retried was still there after its deletion: its
    /// successor would have been refused, so nothing was submitted.
    #[error("{object}: still present {seconds} s after it was deleted")]
    NotDeleted { object: String, seconds: u64 },
}

/// How diff and apply run.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Inventory of the build objects (the bundle always uses `build-plane`).
    pub inventory: String,
    /// Namespace of the inventory ConfigMaps.
    pub inventory_namespace: String,
    /// Delete objects recorded earlier and no longer rendered.
    pub prune: bool,
    /// Why this run knows only part of its sources (a sync round with files that did not
    /// load): --prune then deletes nothing and drops no record, and reports each object it
    /// would have acted on as held back, with this reason.
    pub prune_hold: Option<String>,
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// How many requests run at once within a stage.
    pub concurrency: usize,
    /// How long to wait for CRDs to be Established.
    pub crd_timeout: Duration,
    /// The caller already read and checked the cluster templates its builds name (sync does,
    /// to set aside what fails): prepare does not read them again.
    pub cluster_templates_checked: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            inventory: plan::BUILDS_INVENTORY.to_owned(),
            inventory_namespace: "default".to_owned(),
            prune: false,
            prune_hold: None,
            force_conflicts: false,
            concurrency: 16,
            crd_timeout: Duration::from_secs(60),
            cluster_templates_checked: false,
        }
    }
}

/// One rendered object with everything known about it before any write.
#[derive(Debug, Clone)]
pub struct Planned {
    pub manifest: Manifest,
    pub inventory: String,
    pub resource: Resource,
    /// Whether the cluster serves its kind yet (false for kinds of CRDs in this plan).
    pub served: bool,
    pub live: Option<Value>,
    pub recorded: Option<Entry>,
    pub stage: Stage,
}

/// An object to prune: recorded earlier, no longer rendered, declared by no other inventory and
/// labelled as buildplane's (`core::plan::decide_prune`).
#[derive(Debug, Clone)]
pub struct Prunable {
    pub entry: Entry,
    pub inventory: String,
    pub resource: Resource,
    pub live: Value,
}

/// An object an inventory no longer renders and prune does not delete: it stays, and that
/// inventory's record of it goes (`core::plan::decide_prune`).
#[derive(Debug, Clone)]
pub struct Released {
    pub entry: Entry,
    pub inventory: String,
    pub why: Kept,
}

/// Why prune keeps an object it would otherwise delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Other inventories (named) still declare it.
    Declared(Vec<String>),
    /// It carries `helm.sh/resource-policy: keep`: it leaves the inventory and stays.
    Policy,
}

/// An object --prune would have acted on (deleted, or released to the inventories that still
/// declare it) in a run that knows only part of its sources: left alone, its record kept.
#[derive(Debug, Clone)]
pub struct HeldBack {
    pub entry: Entry,
    pub inventory: String,
    /// Why (`DeployOptions::prune_hold`).
    pub reason: String,
}

/// Everything read from the cluster before a diff or an apply.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub objects: Vec<Planned>,
    pub prune: Vec<Prunable>,
    /// What --prune holds back because another inventory still declares it or its resource
    /// policy says keep.
    pub released: Vec<Released>,
    /// What --prune holds back because the run knows only part of its sources.
    pub held_back: Vec<HeldBack>,
    /// Every inventory of the inventory namespace, including those this run does not write.
    pub inventories: BTreeMap<String, Inventory>,
}

/// What apply did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// Not pruned: other inventories still declare it, or its resource policy says keep (only
    /// this inventory's record went).
    Kept(Kept),
    /// Left alone, with the reason.
    Skipped(String),
    /// Not pruned and still recorded: the run knows only part of its sources (the reason).
    HeldBack(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Created => f.write_str("created"),
            Action::Configured => f.write_str("configured"),
            Action::Unchanged => f.write_str("unchanged"),
            Action::Pruned => f.write_str("pruned"),
            Action::Kept(Kept::Policy) => write!(
                f,
                "kept ({}: keep; no longer in the inventory)",
                crate::core::plan::RESOURCE_POLICY_ANNOTATION
            ),
            Action::Kept(Kept::Declared(owners)) => {
                let s = if owners.len() == 1 { "y" } else { "ies" };
                write!(
                    f,
                    "kept (still declared by inventor{s} {})",
                    owners.join(", ")
                )
            }
            Action::Skipped(why) => write!(f, "skipped ({why})"),
            Action::HeldBack(why) => write!(f, "held back from prune ({why})"),
        }
    }
}

/// What `retry` did to one build object before applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Finished (or gone): it will be submitted again.
    Resubmit,
    /// Still running: left alone, not submitted twice.
    Running,
}
