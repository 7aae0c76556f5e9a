//! What happens to a build after it is submitted, in one place:
//!
//! ```text
//! build object ─watch─► follow (state machine) ─► harvest ─► BuildOutcome ─► emit (crate::emit)
//!                                                              └─► verdict, conditions, metrics
//! ```
//!
//! - [`follow`]: a synchronous state machine fed watch events; reports step changes and
//!   finished builds. [`watch`] is its thin async adapter over kube-runtime watchers.
//! - [`harvest`]: a completed build object's outputs → the validated Workload.
//! - [`outcome`]: the [`BuildOutcome`] value — one verdict ([`BuildOutcome::succeeded`]) and
//!   one set of conditions ([`BuildOutcome::conditions`]) for `watch`, `apply --wait`, `sync`
//!   and the controller.
//!
//! Submitting is not here: the submit-once rule is `core::plan::decide_build`, applied by
//! `pipeline::deploy` and the controller alike.

pub mod find;
pub mod follow;
pub mod harvest;
pub mod outcome;
pub mod watch;

pub use follow::{Event, Follower, WatchEvent};
pub use outcome::{BuildOutcome, EmitFault, EmitResult, EmitTarget, Harvest, Verdict};

use crate::core::manifest::Manifest;
use crate::core::spec::SpecError;
use crate::engine::{self, Engine};
use crate::pipeline::LoadedBuild;

/// A build to follow: the Build, its engine, and where its build object is.
#[derive(Clone)]
pub struct Target {
    pub build: LoadedBuild,
    pub engine: &'static dyn Engine,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({} {})", self.label(), self.object_ref())
    }
}

impl Target {
    /// The target of a validated Build; an unknown engine is the Build's error.
    pub fn of(build: &LoadedBuild) -> Result<Target, SpecError> {
        Ok(Target::with_object(build)?.0)
    }

    /// The target and the build object it names (rendered once, for a caller that submits it).
    pub fn with_object(build: &LoadedBuild) -> Result<(Target, Manifest), SpecError> {
        let engine = engine::for_build(&build.origin, &build.build)?;
        let object = engine.build_object(&build.build);
        let target = Target {
            build: build.clone(),
            engine,
            namespace: object.id.namespace.clone().unwrap_or_default(),
            name: object.id.name.clone(),
        };
        Ok((target, object))
    }

    /// `org/build-name`.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.build.build.organization(),
            self.build.build.metadata.name
        )
    }

    /// `namespace/name` of the build object.
    pub fn object_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
