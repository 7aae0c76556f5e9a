//! Emitting a finished build's Workload to every target chosen: the control-plane cluster
//! (`cluster`), a directory (`dir`), a Git branch (`git`). Every target shares the path template
//! (`path`) and the idempotence rule (content already there changes nothing), every setting is
//! checked before the first request, and each target's result goes into the build's
//! [`BuildOutcome`] (the verdict and conditions are the outcome's, not the emitter's).

pub mod cluster;
pub mod dir;
pub mod git;
pub mod path;

pub use cluster::WORKLOAD_FIELD_MANAGER;
pub use git::DEFAULT_MESSAGE;
pub use path::{DEFAULT_PATH_TEMPLATE, Emitted, PathError, PathVars};

use crate::core::manifest::{self, Manifest, ManifestError, SerializeError};
use crate::core::spec::Build;
use crate::core::templates::{TemplateError, WorkloadEnvelope};
use crate::core::text::escape_controls;
use crate::core::workload;
use crate::git::{GitError, GitTarget};
use crate::kube::{ClientSettings, Kube, KubeError};
use crate::lifecycle::{BuildOutcome, EmitFault, EmitResult, EmitTarget, Harvest};
use crate::report::error_line;
use std::path::PathBuf;
use std::time::Duration;

/// Where Workloads go.
#[derive(Debug, Clone, Default)]
pub struct EmitSettings {
    /// Write each Workload under this directory.
    pub dir: Option<PathBuf>,
    /// Path of a Workload under the directory or repository (`{org}` … `{build}`).
    pub path_template: String,
    /// Commit each Workload into a branch.
    pub git: Option<GitSettings>,
    /// Apply each Workload into this control-plane cluster.
    pub cluster: Option<ClientSettings>,
    /// `--emit-template FILE`: the envelope of every emitted Workload, instead of
    /// `templates/workload.yaml`.
    pub template: Option<PathBuf>,
}

/// A Git target: repository, branch, author, message template, how long to keep retrying.
#[derive(Clone)]
pub struct GitSettings {
    pub url: String,
    pub branch: String,
    /// `Name <email>`.
    pub author: String,
    /// `{build}`, `{org}`, `{project}`, `{component}`, `{image}`, `{commit}`.
    pub message: String,
    pub deadline: Duration,
}

/// Debug output shows the URL as messages do, without credentials.
impl std::fmt::Debug for GitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSettings")
            .field("url", &crate::git::redact_url(&self.url))
            .field("branch", &self.branch)
            .field("author", &self.author)
            .field("message", &self.message)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// An emit setting is unusable, or the control plane cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The path template does not expand to a relative path.
    #[error("--emit-path")]
    Path(#[from] PathError),
    /// The author is not `Name <email>`.
    #[error("--emit-author {0:?}: expected \"Name <email>\"")]
    Author(String),
    /// The branch is not a valid Git branch name.
    #[error("--emit-branch {0:?} is not a valid branch name")]
    Branch(String),
    /// The clone cache could not be created.
    #[error("cannot create a Git clone cache")]
    Cache(#[source] std::io::Error),
    /// Connecting to the control plane failed.
    #[error("control plane")]
    ControlPlane(#[source] KubeError),
    /// The `--emit-template` file could not be read.
    #[error("--emit-template")]
    TemplateFile(#[source] crate::source::SourceError),
    /// The `--emit-template` file does not parse.
    #[error("--emit-template")]
    Template(#[source] TemplateError),
}

/// One target could not take a Workload.
#[derive(Debug, thiserror::Error)]
pub enum EmitFailure {
    /// The path template gave no usable path for this build.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The Workload is not an object with kind and name.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The Workload could not be written as YAML.
    #[error(transparent)]
    Serialize(#[from] SerializeError),
    /// The file could not be written.
    #[error(transparent)]
    Dir(#[from] dir::DirError),
    /// Committing or pushing failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The Git task ended without an answer (it panicked or was cancelled).
    #[error("the Git emit task stopped: {0}")]
    Task(String),
    /// The control plane does not serve Workloads.
    #[error(
        "the control plane serves no Workload (openchoreo.dev/v1alpha1): install charts/control-plane/crds"
    )]
    NoWorkloadApi,
    /// The control plane refused or did not answer.
    #[error(transparent)]
    Cluster(#[from] KubeError),
    /// The target holds another component's Workload where this one would go.
    #[error("{0}")]
    OwnedElsewhere(String),
}

fn result(target: EmitTarget, r: Result<String, EmitFailure>) -> EmitResult {
    let fault = |e: EmitFailure| {
        let line = escape_controls(&error_line(&e)).into_owned();
        match e {
            EmitFailure::OwnedElsewhere(_)
            | EmitFailure::Dir(dir::DirError::Kept { .. })
            | EmitFailure::Git(GitError::Refused { .. }) => EmitFault::OwnedElsewhere(line),
            _ => EmitFault::Failed(line),
        }
    };
    EmitResult {
        target,
        result: r.map_err(fault),
    }
}

impl EmitSettings {
    /// The Workload envelope: `--emit-template`'s file (read and compiled), or the built-in.
    pub fn envelope(&self) -> Result<WorkloadEnvelope, EmitError> {
        let Some(path) = &self.template else {
            return Ok(WorkloadEnvelope::builtin());
        };
        let text = crate::source::read_text(path).map_err(EmitError::TemplateFile)?;
        WorkloadEnvelope::new(path.display().to_string(), text).map_err(EmitError::Template)
    }

    /// Checks the path template, the author, the branch and the envelope (its file is the only
    /// thing read): commands call it before their first request.
    pub fn check(&self) -> Result<(), EmitError> {
        self.envelope()?;
        let probe = PathVars {
            org: "org",
            project: "project",
            component: "component",
            build: "build",
        };
        path::expand_path(&self.path_template, &probe)?;
        if let Some(g) = &self.git {
            parse_author(&g.author).ok_or_else(|| EmitError::Author(g.author.clone()))?;
            if !git2::Reference::is_valid_name(&format!("refs/heads/{}", g.branch)) {
                return Err(EmitError::Branch(g.branch.clone()));
            }
        }
        Ok(())
    }
}

/// The emit targets, connected.
pub struct Emitter {
    settings: EmitSettings,
    envelope: WorkloadEnvelope,
    control_plane: Option<Kube>,
    git: Option<(GitTarget, tempfile::TempDir)>,
    /// One Git emit at a time: the clone cache's refs are not shared safely.
    git_lock: tokio::sync::Mutex<()>,
    /// The controller's watch of Workloads: no read before an apply.
    workloads: Option<std::sync::Arc<dyn cluster::WorkloadView>>,
}

/// Why the file a target holds where `ours` goes must stay: another component's Workload.
/// A file that is not a Workload (or too large to be one) names no owner and is replaced.
fn foreign_file(existing: &[u8], ours: &serde_json::Value) -> Option<String> {
    if existing.len() > 2 * workload::MAX_WORKLOAD_BYTES {
        return None;
    }
    let text = std::str::from_utf8(existing).ok()?;
    let theirs: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    workload::foreign_owner(&theirs, ours)
}

fn parse_author(author: &str) -> Option<(String, String)> {
    let (name, rest) = author.split_once('<')?;
    let email = rest.strip_suffix('>')?;
    let name = name.trim();
    (!name.is_empty() && !email.is_empty() && !email.contains(['<', '>']))
        .then(|| (name.to_owned(), email.trim().to_owned()))
}

impl Emitter {
    /// Checks every setting, then connects to the control plane (the only request made here).
    pub async fn connect(settings: EmitSettings) -> Result<Emitter, EmitError> {
        settings.check()?;
        let git = match &settings.git {
            None => None,
            Some(g) => {
                let (author_name, author_email) =
                    parse_author(&g.author).ok_or_else(|| EmitError::Author(g.author.clone()))?;
                let cache = tempfile::Builder::new()
                    .prefix("buildplane-git-")
                    .tempdir()
                    .map_err(EmitError::Cache)?;
                let target = GitTarget {
                    url: g.url.clone(),
                    branch: g.branch.clone(),
                    author_name,
                    author_email,
                };
                Some((target, cache))
            }
        };
        let control_plane = match &settings.cluster {
            None => None,
            Some(s) => Some(Kube::connect(s).await.map_err(EmitError::ControlPlane)?),
        };
        Ok(Emitter {
            envelope: settings.envelope()?,
            settings,
            control_plane,
            git,
            git_lock: tokio::sync::Mutex::new(()),
            workloads: None,
        })
    }

    /// Only the control plane, through a client the caller already has (the controller's),
    /// with what its watch of Workloads knows.
    pub fn control_plane_only(
        control_plane: Kube,
        workloads: Option<std::sync::Arc<dyn cluster::WorkloadView>>,
    ) -> Emitter {
        Emitter {
            settings: EmitSettings {
                path_template: DEFAULT_PATH_TEMPLATE.to_owned(),
                ..EmitSettings::default()
            },
            envelope: WorkloadEnvelope::builtin(),
            control_plane: Some(control_plane),
            git: None,
            git_lock: tokio::sync::Mutex::new(()),
            workloads,
        }
    }

    /// Emits the outcome's Workload to every target (cluster, directory, Git, in that order)
    /// and records each target's result in it. Without a valid Workload nothing is emitted.
    pub async fn emit(&self, outcome: &mut BuildOutcome, build: &Build) {
        // The envelope first: what every target receives, or why none does.
        if let Some(w) = outcome.workload() {
            let label = format!("{}/{}", build.organization(), build.metadata.name);
            outcome.harvest = match self.envelope.wrap(w, build, &label) {
                Ok(wrapped) => Harvest::Workload(wrapped),
                Err(e) => Harvest::Unusable(escape_controls(&e.to_string()).into_owned()),
            };
        }
        let Some(workload) = outcome.workload() else {
            return;
        };
        let mut results = Vec::new();
        if let Some(cp) = &self.control_plane {
            let creator = format!("{}/{}", build.organization(), build.metadata.name);
            results.push(result(
                EmitTarget::Cluster,
                cluster::apply(cp, workload, &creator, self.workloads.as_deref()).await,
            ));
        }
        let owner = &build.spec.owner;
        let vars = PathVars {
            org: build.organization(),
            project: &owner.project_name,
            component: &owner.component_name,
            build: &build.metadata.name,
        };
        let targets = [
            self.settings.dir.as_ref().map(|_| EmitTarget::Dir),
            self.git.as_ref().map(|_| EmitTarget::Git),
        ];
        if targets.iter().all(Option::is_none) {
            outcome.emits = results;
            return;
        }
        let file = match self.file(workload, &vars) {
            Ok(f) => f,
            Err(e) => {
                // Both file targets fail alike: the path or the YAML is the problem.
                let line = escape_controls(&error_line(&e)).into_owned();
                results.extend(targets.into_iter().flatten().map(|target| EmitResult {
                    target,
                    result: Err(EmitFault::Failed(line.clone())),
                }));
                outcome.emits = results;
                return;
            }
        };
        if let Some(dir) = &self.settings.dir {
            let shown = dir.join(&file.0).display().to_string();
            let theirs = |existing: &[u8]| foreign_file(existing, workload);
            let r = dir::write(dir, &file.0, file.1.as_bytes(), &theirs).map(|e| match e {
                Emitted::Written => format!("wrote {shown}"),
                Emitted::Unchanged => format!("unchanged {shown}"),
            });
            results.push(result(EmitTarget::Dir, r.map_err(EmitFailure::from)));
        }
        if let (Some((target, cache)), Some(g)) = (&self.git, &self.settings.git) {
            let (path, text) = file;
            let change = git::change(g, outcome, build, &vars, &path, text);
            let _one_at_a_time = self.git_lock.lock().await;
            let ours = workload.clone();
            let theirs = move |existing: &[u8]| foreign_file(existing, &ours);
            let r = git::commit(target, cache.path().to_path_buf(), change, g, theirs).await;
            results.push(result(EmitTarget::Git, r));
        }
        outcome.emits = results;
    }

    /// The Workload's path and YAML text, for the directory and Git targets.
    fn file(
        &self,
        workload: &serde_json::Value,
        vars: &PathVars<'_>,
    ) -> Result<(String, String), EmitFailure> {
        let path = path::expand_path(&self.settings.path_template, vars)?;
        let m = Manifest::new(workload.clone())?;
        Ok((path, manifest::to_yaml(&m)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors() {
        assert_eq!(
            parse_author("Build Bot <bot@example.com>"),
            Some(("Build Bot".into(), "bot@example.com".into()))
        );
        for bad in [
            "bot",
            "<bot@example.com>",
            "Bot <>",
            "Bot <a<b>",
            "Bot bot@x>",
        ] {
            assert_eq!(parse_author(bad), None, "{bad}");
        }
    }
}
