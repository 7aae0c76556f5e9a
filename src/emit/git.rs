//! `--emit-git`: the Workload committed into a branch and pushed (the git2 work is
//! `crate::git::emit`: fetch, commit on the tip, non-forced push, retry on a moved tip).

use super::{EmitFailure, GitSettings, PathVars};
use crate::core::spec::Build;
use crate::git::{self, Change, EmitOutcome, GitTarget};
use crate::lifecycle::BuildOutcome;
use std::path::PathBuf;

/// The default commit message of a Git emit.
pub const DEFAULT_MESSAGE: &str = "{build}: Workload {org}/{component} image {image} from {commit}";

/// The commit the build built: the Build's pinned commit, else what clone-step checked out.
fn source_commit(outcome: &BuildOutcome, build: &Build) -> String {
    let pinned = &build.spec.repository.revision.commit;
    if pinned.is_empty() {
        outcome.revision.clone().unwrap_or_default()
    } else {
        pinned.clone()
    }
}

/// The change to commit: the file at `path` and the message from the settings' template.
pub fn change(
    settings: &GitSettings,
    outcome: &BuildOutcome,
    build: &Build,
    vars: &PathVars<'_>,
    path: &str,
    text: String,
) -> Change {
    let commit = source_commit(outcome, build);
    let message = git::render_message(
        &settings.message,
        &[
            ("build", vars.build),
            ("org", vars.org),
            ("project", vars.project),
            ("component", vars.component),
            ("image", outcome.image.as_deref().unwrap_or("")),
            ("commit", &commit),
        ],
    );
    Change {
        path: path.to_owned(),
        content: text.into_bytes(),
        message,
    }
}

/// Commits and pushes `change` off the async runtime (git2 blocks), unless `keep` says why the
/// file on the branch must stay; the line names the commit.
pub async fn commit(
    target: &GitTarget,
    cache: PathBuf,
    change: Change,
    settings: &GitSettings,
    keep: impl Fn(&[u8]) -> Option<String> + Send + 'static,
) -> Result<String, EmitFailure> {
    let path = change.path.clone();
    let (t, deadline) = (target.clone(), settings.deadline);
    let emit = move || git::emit_keeping(&t, &cache, &[change], deadline, &keep);
    let outcome = tokio::task::spawn_blocking(emit)
        .await
        .map_err(|e| EmitFailure::Task(e.to_string()))??;
    let place = format!("{} {}:{path}", git::redact_url(&target.url), target.branch);
    Ok(match outcome {
        EmitOutcome::Unchanged => format!("unchanged {place}"),
        EmitOutcome::Committed { commit, attempts } => {
            let short = &commit[..commit.len().min(12)];
            match attempts {
                1 => format!("committed {short} {place}"),
                n => format!("committed {short} {place} (after {n} attempts)"),
            }
        }
    })
}
