//! Emitting a finished build's Workload to every target chosen: a directory, a Git branch, the
//! control-plane cluster. Every target shares the path template and the idempotence rule (content
//! already there changes nothing), and every setting is checked before the first request.

use super::watch::{BuildResult, Missing};
use crate::core::manifest::{self, Manifest};
use crate::core::spec::Build;
use crate::core::workflow::{Phase, WorkloadOutcome};
use crate::emit::{self, Emitted, PathError, PathVars};
use crate::git::{self, Change, EmitOutcome, GitTarget};
use crate::kube::{ClientSettings, Kube, KubeError};
use std::path::PathBuf;
use std::time::Duration;

/// The field manager upstream's controller applies Workloads with.
pub const WORKLOAD_FIELD_MANAGER: &str = "build-controller";

/// The default commit message of a Git emit.
pub const DEFAULT_MESSAGE: &str = "{build}: Workload {org}/{component} image {image} from {commit}";

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
}

/// A Git target: repository, branch, author, message template, how long to keep retrying.
#[derive(Debug, Clone)]
pub struct GitSettings {
    pub url: String,
    pub branch: String,
    /// `Name <email>`.
    pub author: String,
    /// `{build}`, `{org}`, `{project}`, `{component}`, `{image}`, `{commit}`.
    pub message: String,
    pub deadline: Duration,
}

/// An emit setting is unusable, or the control plane cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The path template does not expand to a relative path.
    #[error("--emit-path: {0}")]
    Path(#[from] PathError),
    /// The author is not `Name <email>`.
    #[error("--emit-author {0:?}: expected \"Name <email>\"")]
    Author(String),
    /// The branch is not a valid Git branch name.
    #[error("--emit-branch {0:?} is not a valid branch name")]
    Branch(String),
    /// The clone cache could not be created.
    #[error("cannot create a Git clone cache: {0}")]
    Cache(String),
    /// Connecting to the control plane failed.
    #[error("control plane: {0}")]
    ControlPlane(#[source] KubeError),
}

impl EmitSettings {
    /// Checks the path template, the author and the branch, with no I/O: commands call it
    /// before their first request.
    pub fn check(&self) -> Result<(), EmitError> {
        let probe = PathVars {
            org: "org",
            project: "project",
            component: "component",
            build: "build",
        };
        emit::expand_path(&self.path_template, &probe)?;
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
    control_plane: Option<Kube>,
    git: Option<(GitTarget, tempfile::TempDir)>,
    /// One Git emit at a time: the clone cache's refs are not shared safely.
    git_lock: tokio::sync::Mutex<()>,
}

/// What emitting one result did: the outcome for the Build's conditions, and a line per target.
#[derive(Debug, Clone)]
pub struct Emission {
    pub outcome: WorkloadOutcome,
    pub notes: Vec<String>,
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
                    .map_err(|e| EmitError::Cache(e.to_string()))?;
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
            settings,
            control_plane,
            git,
            git_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Only the control plane, through a client the caller already has (the controller's).
    pub fn control_plane_only(control_plane: Kube) -> Emitter {
        Emitter {
            settings: EmitSettings {
                path_template: emit::DEFAULT_PATH_TEMPLATE.to_owned(),
                ..EmitSettings::default()
            },
            control_plane: Some(control_plane),
            git: None,
            git_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Emits `result`'s Workload to every target (cluster, directory, Git, in that order).
    pub async fn emit(&self, result: &BuildResult, build: &Build) -> Emission {
        let Some(workload) = &result.workload else {
            let outcome = match (&result.phase, &result.missing) {
                (Phase::Succeeded, Some(Missing::NoOutput)) => WorkloadOutcome::Missing,
                (Phase::Succeeded, Some(Missing::Unusable(e))) => {
                    WorkloadOutcome::Failed(e.clone())
                }
                _ => WorkloadOutcome::NotYet,
            };
            return Emission {
                outcome,
                notes: vec![],
            };
        };
        let mut notes = Vec::new();
        let mut failure = None;
        let mut emitted_any = false;
        let mut record = |r: Result<String, String>, notes: &mut Vec<String>| match r {
            Ok(note) => {
                emitted_any = true;
                notes.push(note);
            }
            Err(e) => {
                notes.push(format!("emit failed: {e}"));
                failure.get_or_insert(e);
            }
        };
        if let Some(cp) = &self.control_plane {
            record(to_cluster(cp, workload).await, &mut notes);
        }
        let owner = &build.spec.owner;
        let vars = PathVars {
            org: build.organization(),
            project: &owner.project_name,
            component: &owner.component_name,
            build: &build.metadata.name,
        };
        let needs_file = self.settings.dir.is_some() || self.git.is_some();
        let file = needs_file.then(|| {
            let path = emit::expand_path(&self.settings.path_template, &vars)
                .map_err(|e| e.to_string())?;
            let m = Manifest::new(workload.clone()).map_err(|e| e.to_string())?;
            let text = manifest::to_yaml(&m).map_err(|e| e.to_string())?;
            Ok::<_, String>((path, text))
        });
        match file {
            None => {}
            Some(Err(e)) => record(Err(e), &mut notes),
            Some(Ok((path, text))) => {
                if let Some(dir) = &self.settings.dir {
                    let shown = dir.join(&path).display().to_string();
                    let r = emit::dir::write(dir, &path, text.as_bytes())
                        .map(|e| match e {
                            Emitted::Written => format!("wrote {shown}"),
                            Emitted::Unchanged => format!("unchanged {shown}"),
                        })
                        .map_err(|e| e.to_string());
                    record(r, &mut notes);
                }
                if let Some((target, cache)) = &self.git {
                    let g = self
                        .settings
                        .git
                        .as_ref()
                        .expect("git settings with a target");
                    let commit = source_commit(result, build);
                    let message = git::render_message(
                        &g.message,
                        &[
                            ("build", vars.build),
                            ("org", vars.org),
                            ("project", vars.project),
                            ("component", vars.component),
                            ("image", result.image.as_deref().unwrap_or("")),
                            ("commit", &commit),
                        ],
                    );
                    let change = Change {
                        path: path.clone(),
                        content: text.into_bytes(),
                        message,
                    };
                    let _one_at_a_time = self.git_lock.lock().await;
                    let r = to_git(target, cache.path().to_path_buf(), change, g.deadline).await;
                    record(r.map(|o| git_note(&o, target, &path)), &mut notes);
                }
            }
        }
        let outcome = match failure {
            Some(e) => WorkloadOutcome::Failed(e),
            None if emitted_any => WorkloadOutcome::Updated,
            None => WorkloadOutcome::NotYet,
        };
        Emission { outcome, notes }
    }
}

/// The commit the build built: the Build's pinned commit, else what clone-step checked out.
fn source_commit(result: &BuildResult, build: &Build) -> String {
    let pinned = &build.spec.repository.revision.commit;
    if pinned.is_empty() {
        result.revision.clone().unwrap_or_default()
    } else {
        pinned.clone()
    }
}

fn git_note(o: &EmitOutcome, target: &GitTarget, path: &str) -> String {
    let place = format!("{} {}:{path}", git::redact_url(&target.url), target.branch);
    match o {
        EmitOutcome::Unchanged => format!("unchanged {place}"),
        EmitOutcome::Committed { commit, attempts } => {
            let short = &commit[..commit.len().min(12)];
            match attempts {
                1 => format!("committed {short} {place}"),
                n => format!("committed {short} {place} (after {n} attempts)"),
            }
        }
    }
}

async fn to_git(
    target: &GitTarget,
    cache: PathBuf,
    change: Change,
    deadline: Duration,
) -> Result<EmitOutcome, String> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || git::emit(&target, &cache, &[change], deadline))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Applies a Workload into the control plane as `build-controller`, forced.
async fn to_cluster(cp: &Kube, workload: &serde_json::Value) -> Result<String, String> {
    let m = Manifest::new(workload.clone()).map_err(|e| e.to_string())?;
    let r = cp
        .resource("openchoreo.dev/v1alpha1", "Workload")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the control plane serves no Workload (openchoreo.dev/v1alpha1): install charts/control-plane/crds")?;
    let before = cp.get(&r, &m.id).await.map_err(|e| e.to_string())?;
    let after = cp
        .apply_as(WORKLOAD_FIELD_MANAGER, &r, &m, false, true)
        .await
        .map_err(|e| e.to_string())?;
    let rv = |v: &serde_json::Value| v.pointer("/metadata/resourceVersion").cloned();
    Ok(match before {
        Some(b) if rv(&b) == rv(&after) => format!("unchanged {}", m.id),
        _ => format!("applied {}", m.id),
    })
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
