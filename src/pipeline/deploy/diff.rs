//! `buildplane diff`: each object's [`Comparison`] — normalized and masked before anything is
//! shown, so no Secret value reaches a diff or a plan — from the live object and a server-side
//! dry run.

use super::decide::{Decision, decide};
use super::{DeployError, DeployOptions, Planned, Prepared};
use crate::core::diff::{Change, Comparison, PlanEntry, Summary};
use crate::core::manifest::ObjectId;
use crate::kube::{Kube, KubeError};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

/// One object compared, and the conflict a plain apply would hit (shown as a note).
struct Compared {
    comparison: Comparison,
    conflict: Option<String>,
}

impl Compared {
    fn without_conflict(comparison: Comparison) -> Self {
        Compared {
            comparison,
            conflict: None,
        }
    }
}

/// Compares one planned object, asking the server (dry run) where the decision is to apply.
/// Beside the comparison: the object as the server would leave it, unmasked, for
/// [`preview`] only (the live one where nothing would be sent, the rendered one where it is
/// replaced).
async fn compare(
    kube: &Kube,
    p: &Planned,
    opts: &DeployOptions,
) -> Result<(Compared, Option<Value>), DeployError> {
    let id = &p.manifest.id;
    match decide(p) {
        Decision::Unchanged | Decision::Busy => Ok((
            Compared::without_conflict(Comparison::new(id, None, None)),
            p.live.clone(),
        )),
        // Shown as a change even where only the spec-hash annotation differs: it is replaced.
        Decision::Replace => Ok((
            Compared::without_conflict(Comparison {
                change: Change::Update,
                ..Comparison::new(id, p.live.as_ref(), Some(&p.manifest.object))
            }),
            Some(p.manifest.object.clone()),
        )),
        Decision::Apply | Decision::Submit => {
            let (after, conflict) = dry_run(kube, p, opts).await?;
            let compared = Compared {
                comparison: Comparison::new(id, p.live.as_ref(), Some(&after)),
                conflict,
            };
            Ok((compared, Some(after)))
        }
    }
}

/// What the server would make of the object, and the conflict a plain apply would hit.
async fn dry_run(
    kube: &Kube,
    p: &Planned,
    opts: &DeployOptions,
) -> Result<(Value, Option<String>), DeployError> {
    let m = &p.manifest;
    if !p.served {
        return Ok((m.object.clone(), None));
    }
    match kube.apply(&p.resource, m, true, opts.force_conflicts).await {
        Ok(v) => Ok((v, None)),
        // The namespace does not exist yet: show the object as rendered.
        Err(KubeError::Api { code: 404, .. }) if p.live.is_none() => Ok((m.object.clone(), None)),
        // Fields another manager changed: show what apply --force-conflicts would do.
        Err(KubeError::Api {
            code: 409, message, ..
        }) => Ok((kube.apply(&p.resource, m, true, true).await?, Some(message))),
        Err(e) => Err(e.into()),
    }
}

/// The plain and the shown (maybe coloured) diff of a comparison, with its conflict note.
fn texts(compared: &Compared, color: bool) -> Result<(String, String), DeployError> {
    let c = &compared.comparison;
    let (mut plain, mut shown) = if c.change == Change::Unchanged {
        (String::new(), String::new())
    } else {
        (c.diff(false)?, c.diff(color)?)
    };
    if let Some(message) = &compared.conflict {
        let note = format!("# {}: {message}\n", c.id);
        plain.insert_str(0, &note);
        shown.insert_str(0, &note);
    }
    Ok((plain, shown))
}

/// Every object compared, in plan order, then the objects to prune.
async fn compare_all(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
) -> Result<Vec<(Compared, Option<Value>)>, DeployError> {
    let mut results: Vec<(Compared, Option<Value>)> =
        futures::stream::iter(prepared.objects.iter().map(|p| compare(kube, p, opts)))
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
    results.extend(prepared.prune.iter().map(|x| {
        let c = Comparison::new(&x.entry.id(), Some(&x.live), None);
        (Compared::without_conflict(c), None)
    }));
    Ok(results)
}

/// `buildplane diff`: every object's change, with unified diffs, and the summary.
pub async fn diff(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    color: bool,
) -> Result<(Vec<(PlanEntry, String)>, Summary), DeployError> {
    let mut summary = Summary::default();
    let mut out = Vec::new();
    for (compared, _) in compare_all(kube, prepared, opts).await? {
        let c = &compared.comparison;
        summary.add(c.change);
        let (plain, shown) = texts(&compared, color)?;
        out.push((PlanEntry::new(&c.id, c.change, plain), shown));
    }
    Ok((out, summary))
}

/// One object of `apply --dry-run=server`: its change, and the object as the server would leave
/// it (none for a deletion). Not masked — it is what apply would write — so it is printed only
/// when asked for (`-o yaml`, `-o json`), never in a diff.
#[derive(Debug, Clone)]
pub struct Preview {
    pub id: ObjectId,
    pub change: Change,
    pub object: Option<Value>,
}

/// `apply --dry-run=server`: the same comparisons as [`diff`], with the objects instead of diffs.
pub async fn preview(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
) -> Result<Vec<Preview>, DeployError> {
    Ok(compare_all(kube, prepared, opts)
        .await?
        .into_iter()
        .map(|(compared, object)| Preview {
            id: compared.comparison.id,
            change: compared.comparison.change,
            object,
        })
        .collect())
}
