//! `buildplane apply`: stage by stage (CRDs waited for), then prune, then the inventories;
//! and `retry`'s forgetting of finished builds.

use super::decide::{Decision, decide};
use super::{Action, DeployError, DeployOptions, Planned, Prepared, Retry, inventory};
use crate::core::manifest::ObjectId;
use crate::core::plan::{STAGES, Stage};
use crate::engine;
use crate::kube::Kube;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use std::time::Duration;

/// How often, and how many times, a deleted build object is looked for before giving up.
const GONE_POLL: Duration = Duration::from_millis(100);
const GONE_POLLS: u32 = 300;

/// `buildplane apply`: stage by stage (CRDs waited for), then prune, then the inventories.
/// `report` is called once per object, in order, as each stage completes.
pub async fn apply(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    mut report: impl FnMut(&ObjectId, &Action),
) -> Result<Vec<(ObjectId, Action)>, DeployError> {
    apply_observed(kube, prepared, opts, |id, action, _| report(id, action)).await
}

/// [`apply`], reporting with each action the object as it is in the cluster afterwards: the
/// server's answer where a request was sent, the live object where none was (unchanged, or
/// left alone), none for what was pruned or kept (`apply -o json|yaml`).
pub async fn apply_observed(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    mut report: impl FnMut(&ObjectId, &Action, Option<&Value>),
) -> Result<Vec<(ObjectId, Action)>, DeployError> {
    let mut done: Vec<(ObjectId, Action)> = Vec::new();
    for stage in STAGES {
        let objects: Vec<&Planned> = prepared
            .objects
            .iter()
            .filter(|p| p.stage == stage)
            .collect();
        if objects.is_empty() {
            continue;
        }
        let results: Vec<(Action, Option<Value>)> =
            futures::stream::iter(objects.iter().map(|p| apply_one(kube, p, opts)))
                .buffered(opts.concurrency.max(1))
                .try_collect()
                .await?;
        for (p, (a, after)) in objects.iter().zip(results) {
            report(&p.manifest.id, &a, after.as_ref().or(p.live.as_ref()));
            done.push((p.manifest.id.clone(), a));
        }
        if stage == Stage::Crds {
            for p in &objects {
                kube.wait_crd_established(&p.manifest.id.name, opts.crd_timeout)
                    .await?;
            }
            kube.forget_discovery().await;
        }
    }
    for x in &prepared.prune {
        let id = x.entry.id();
        kube.delete(&x.resource, &id).await?;
        report(&id, &Action::Pruned, None);
        done.push((id, Action::Pruned));
    }
    for x in &prepared.released {
        let id = x.entry.id();
        let kept = Action::Kept(x.why.clone());
        report(&id, &kept, None);
        done.push((id, kept));
    }
    for x in &prepared.held_back {
        let id = x.entry.id();
        let held = Action::HeldBack(x.reason.clone());
        report(&id, &held, None);
        done.push((id, held));
    }
    inventory::write(kube, prepared, opts, &done).await?;
    Ok(done)
}

fn resource_version(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// What happened to one object, and the server's answer when a request was sent.
async fn apply_one(
    kube: &Kube,
    p: &Planned,
    opts: &DeployOptions,
) -> Result<(Action, Option<Value>), DeployError> {
    let m = &p.manifest;
    match decide(p) {
        Decision::Unchanged => Ok((Action::Unchanged, None)),
        Decision::Busy => Ok((
            Action::Skipped(format!(
                "a {} of an earlier spec is still running",
                m.id.kind
            )),
            None,
        )),
        Decision::Replace => {
            kube.delete(&p.resource, &m.id).await?;
            wait_gone(kube, p).await?;
            let out = kube
                .apply(&p.resource, m, false, opts.force_conflicts)
                .await?;
            Ok((Action::Configured, Some(out)))
        }
        Decision::Apply | Decision::Submit => {
            let out = kube
                .apply(&p.resource, m, false, opts.force_conflicts)
                .await?;
            let action = match &p.live {
                None => Action::Created,
                Some(live) if resource_version(live) == resource_version(&out) => Action::Unchanged,
                Some(_) => Action::Configured,
            };
            Ok((action, Some(out)))
        }
    }
}

/// A deleted build object is gone (its finalizers ran) before its successor is created.
async fn wait_gone(kube: &Kube, p: &Planned) -> Result<(), DeployError> {
    for _ in 0..GONE_POLLS {
        if kube.get(&p.resource, &p.manifest.id).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(GONE_POLL).await;
    }
    Err(DeployError::NotDeleted {
        object: p.manifest.id.to_string(),
        seconds: (GONE_POLL * GONE_POLLS).as_secs(),
    })
}

/// Makes the next `apply` of `prepared` submit its build objects again although their specs
/// are unchanged: each finished one is deleted (and waited for) and its record forgotten, so
/// the submit-once rule sees a spec never submitted. A running one is left as it is.
pub async fn forget_builds(
    kube: &Kube,
    prepared: &mut Prepared,
) -> Result<Vec<(ObjectId, Retry)>, DeployError> {
    let mut out = Vec::new();
    for p in prepared.objects.iter_mut() {
        let Some(engine) = engine::for_object(&p.manifest.id) else {
            continue;
        };
        if p.live
            .as_ref()
            .is_some_and(|live| !engine.is_finished(live))
        {
            out.push((p.manifest.id.clone(), Retry::Running));
            continue;
        }
        if p.live.is_some() {
            kube.delete(&p.resource, &p.manifest.id).await?;
            wait_gone(kube, p).await?;
        }
        p.live = None;
        p.recorded = None;
        out.push((p.manifest.id.clone(), Retry::Resubmit));
    }
    Ok(out)
}
