//! The build engine seam, as upstream has it: `templateRef.engine` selects an engine (default
//! `argo`, the one implementation). Engines are pure: they turn a Build into objects and, later,
//! read status back from objects; the I/O lives in the pipeline.

pub mod argo;

use crate::core::manifest::Manifest;
use crate::core::spec::{Build, Origin, SpecError};

/// What a build engine does with a Build.
pub trait Engine: Sync {
    /// The name `templateRef.engine` uses for it.
    fn name(&self) -> &'static str;
    /// Checks what only this engine knows (its templates and their parameters).
    fn validate(&self, origin: &Origin, build: &Build) -> Result<(), SpecError>;
    /// Objects that must exist in the build plane before the build (namespace, RBAC).
    fn prerequisites(&self, build: &Build) -> Vec<Manifest>;
    /// The object that runs the build.
    fn build_object(&self, build: &Build) -> Manifest;
}

static ENGINES: &[&dyn Engine] = &[&argo::ArgoEngine];

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
