//! The build engine seam, as upstream has it: `templateRef.engine` selects an engine (default
//! `argo`, the one implementation). Engines are pure: they turn a Build into objects and, later,
//! read status back from objects; the I/O lives in the pipeline.

pub mod argo;

use crate::core::builds::StopMode;
use crate::core::catalog::Declared;
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::plan::LiveBuild;
use crate::core::progress::{
    Artifacts, BuildRecord, BuildStatus, StepPhase, StepPod, Unschedulable,
};
use crate::core::spec::{Build, Origin, SPEC_HASH_ANNOTATION, SpecError};
use crate::core::templates::Invariants;
use serde_json::Value;

/// The API of the objects an engine runs builds with, and the label every one of them carries
/// (what watches select on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildKind {
    pub group: &'static str,
    pub version: &'static str,
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// The label selector of build objects (`key=value`).
    pub selector: &'static str,
}

/// What a build engine does with a Build.
pub trait Engine: Sync {
    /// The name `templateRef.engine` uses for it.
    fn name(&self) -> &'static str;
    /// Checks what only this engine knows (its templates and their parameters).
    fn validate(&self, origin: &Origin, build: &Build) -> Result<(), SpecError>;
    /// Objects that must exist in the build plane before the build (namespace, RBAC).
    fn prerequisites(&self, build: &Build) -> Vec<Manifest>;
    /// The object that runs the build.
    fn build_object(&self, build: &Build) -> Manifest {
        self.object_from_context(self.template_context(build))
    }
    /// [`Engine::build_object`] from the Build's [`Engine::template_context`] (its
    /// annotations as given): the canonical object a template's output is checked against.
    fn object_from_context(&self, context: Value) -> Manifest;
    /// What the per-build templates (`templates/`) see of a Build beside the Build itself and
    /// the values: the derived names, the labels buildplane relies on, the build object's
    /// arguments and annotations. [`Engine::prerequisites`] and [`Engine::build_object`] are
    /// made of the same pieces: they are what a template's output is checked against.
    fn template_context(&self, build: &Build) -> Value;
    /// What a templated object of `kind` (a prerequisite or the build object) must keep of
    /// the canonical one.
    fn invariants(&self, kind: &str) -> Invariants;
    /// Checks an object of `kind` a template overlay rendered against the API's own schema
    /// (the built-in templates are checked by the test suite): the first problem, with its
    /// key path.
    fn validate_rendered(&self, kind: &str, object: &Value) -> Result<(), String>;
    /// Where [`Engine::build_object`] puts the build object of Build `build_name` of
    /// `organization`: known without a valid spec (a deleted Build's object is found by it).
    fn build_object_id(&self, organization: &str, build_name: &str) -> ObjectId;
    /// The API of [`Engine::build_object`]'s objects.
    fn build_kind(&self) -> BuildKind;
    /// Whether a live build object has reached a phase after which it no longer changes.
    fn is_finished(&self, live: &Value) -> bool;
    /// Reduces a live build object (or a `DynamicObject`'s data) to what this trait's methods
    /// read of it, for a cache of thousands; they answer the same before and after.
    fn strip_for_cache(&self, live: &mut Value);
    /// The live build object's phase and message.
    fn status(&self, live: &Value) -> BuildStatus;
    /// The step of a live build object that waits because nothing can schedule its pod.
    fn unschedulable(&self, live: &Value) -> Option<Unschedulable>;
    /// Whether a live build object was asked to stop.
    fn stop_requested(&self, live: &Value) -> bool;
    /// The steps every build of this engine runs, in order.
    fn step_names(&self) -> &'static [&'static str];
    /// Each step's phase, in [`Engine::step_names`] order.
    fn steps(&self, live: &Value) -> Result<Vec<StepPhase>, StatusError>;
    /// What a finished build produced: image, Workload output, commit built.
    fn artifacts(&self, live: &Value) -> Result<Artifacts, StatusError>;
    /// The label selector of the pods that ran build object `object_name`'s steps.
    fn pod_selector(&self, object_name: &str) -> String;
    /// The step pods of `object_name` among `listed` (pods as the API returns them), in step
    /// order.
    fn step_pods(&self, object_name: &str, listed: &[Value]) -> Vec<StepPod>;
    /// The container of a step pod that runs the step's script (whose log `logs` shows).
    fn log_container(&self) -> &'static str;
    /// The namespace of organization `org`'s build objects (where a Build file's goes).
    fn namespace(&self, org: &str) -> String;
    /// The name of Build `build`'s build object (what a Build file renders).
    fn object_name(&self, build: &str) -> String;
    /// The label selector of build objects: of organization `org` (every organization for
    /// `None`), and only of the Builds named `builds` when that is not empty.
    fn selector(&self, org: Option<&str>, builds: &[&str]) -> String;
    /// Whether a live build object runs Build `org/build` (by the labels rendering wrote).
    fn runs(&self, live: &Value, org: &str, build: &str) -> bool;
    /// What `list` and `get` show of a live build object, read from it alone.
    fn record(&self, live: &Value) -> BuildRecord;
    /// The Build `org/name` a live build object was rendered from, as far as the object records
    /// it: at least what harvest and every emit read (organization, name, owner, commit).
    fn build_of(&self, live: &Value, org: &str, name: &str) -> Result<Build, DeriveError>;
    /// The merge patch that asks a running build object to stop.
    fn stop_patch(&self, mode: StopMode) -> Value;
    /// For a build object whose Build named a template only the build plane has
    /// (`catalog::TEMPLATE_SOURCE_ANNOTATION`): the template's object id and the parameter
    /// names the Build gives, to be checked against the live template before it is applied.
    fn cluster_template(&self, object: &Value) -> Option<ClusterTemplateUse>;
    /// The workflow arguments a live template declares.
    fn declared(&self, template: &Value) -> Declared;
}

/// A build object that runs a template read from the build plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTemplateUse {
    pub template: ObjectId,
    /// The Build's own parameters (the reserved arguments left out).
    pub parameters: Vec<String>,
}

/// A live build object does not record what a Build needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// The argument that carries a field of the Build is missing or empty.
    #[error(
        "{object}: has no argument {argument}, so the Build's owner (which the Workload is \
         checked against and emitted for) cannot be told from it"
    )]
    Missing {
        object: String,
        argument: &'static str,
    },
}

/// A build object's status could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// An Argo Workflow's nodes are unreadable (broken compressed nodes, offloaded status).
    #[error(transparent)]
    Argo(#[from] argo::status::WorkflowError),
}

static ENGINES: &[&dyn Engine] = &[&argo::ArgoEngine];

/// Every engine: `list` and name lookups ask each for its build objects.
pub fn all() -> &'static [&'static dyn Engine] {
    ENGINES
}

/// The engine of a Build that names none (`templateRef.engine` defaults to `argo`). The
/// controller's build-plane watches follow its kind (one store per plane; a second engine would
/// add one per kind).
pub static DEFAULT: &dyn Engine = &argo::ArgoEngine;

/// The engine a Build asks for; an unknown name is an error on `spec.templateRef.engine`.
pub fn for_build(origin: &Origin, build: &Build) -> Result<&'static dyn Engine, SpecError> {
    let name = build.engine();
    ENGINES
        .iter()
        .copied()
        .find(|e| e.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = ENGINES.iter().map(|e| e.name()).collect();
            crate::core::spec::field_error(
                origin,
                "spec.templateRef.engine",
                format!(
                    "unsupported build engine {name:?} (supported: {})",
                    known.join(", ")
                ),
            )
        })
}

/// The engine whose build objects have `id`'s kind, if any (a Workflow, not a ConfigMap).
pub fn for_object(id: &ObjectId) -> Option<&'static dyn Engine> {
    ENGINES.iter().copied().find(|e| {
        let k = e.build_kind();
        k.api_version == id.api_version && k.kind == id.kind
    })
}

/// Whether `id` names an object that runs a build: the one kind the submit-once rule governs.
pub fn is_build_object(id: &ObjectId) -> bool {
    for_object(id).is_some()
}

/// What the submit-once rule needs to know of a live build object: the spec it was made from
/// and whether it finished.
pub fn live_build<'a>(engine: &dyn Engine, live: &'a Value) -> LiveBuild<'a> {
    LiveBuild {
        spec_hash: spec_hash_of(live),
        finished: engine.is_finished(live),
    }
}

/// The spec hash annotation of a rendered or live object.
pub fn spec_hash_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SPEC_HASH_ANNOTATION))
        .and_then(Value::as_str)
}
