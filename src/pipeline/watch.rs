//! Following builds: one Kubernetes watch per namespace (kube-runtime's watcher: it re-lists
//! after `410 Gone`, resumes after a dropped connection with backoff, and gives up on a watch
//! that went silent), never a polling loop. Each Workflow's steps are reported as they change;
//! when it completes, its outputs are harvested into a Workload.

use super::LoadedBuild;
use super::logs::workflow_of;
use crate::core::workflow::{self, Condition, Phase, WorkloadOutcome};
use crate::core::workload;
use crate::kube::{Kube, KubeError};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Seconds the server keeps one watch request open; the watcher treats a watch silent for
/// longer (plus a margin) as dead and starts a new one.
const WATCH_TIMEOUT_SECS: u32 = 30;

/// Following builds failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A cluster call failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// `--timeout` passed before every build finished.
    #[error("timed out after {seconds} s; still running: {}", .pending.join(", "))]
    Timeout { seconds: u64, pending: Vec<String> },
}

/// A build to follow: its Workflow's namespace and name.
#[derive(Debug, Clone)]
pub struct Target {
    pub build: LoadedBuild,
    pub namespace: String,
    pub workflow: String,
}

impl Target {
    pub fn of(build: &LoadedBuild) -> Target {
        let (namespace, workflow) = workflow_of(build);
        Target {
            build: build.clone(),
            namespace,
            workflow,
        }
    }

    /// `org/build-name`.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.build.build.organization(),
            self.build.build.metadata.name
        )
    }
}

/// How one build ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildResult {
    pub build: String,
    pub workflow: String,
    pub phase: Phase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The canonical Workload, when the build produced a valid one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Value>,
    /// Why there is no Workload (none produced, invalid, owner mismatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_error: Option<String>,
    /// The same, as a value: what the Build's WorkloadUpdated condition is decided from.
    #[serde(skip)]
    pub missing: Option<Missing>,
    /// The commit clone-step checked out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Why a succeeded build has no Workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The Workflow produced no `workload-cr` output.
    NoOutput,
    /// It produced one that is not a usable Workload (the reason).
    Unusable(String),
}

impl BuildResult {
    /// The Build's conditions, as upstream's controller would set them, given what happened to
    /// the Workload afterwards.
    pub fn conditions(&self, outcome: WorkloadOutcome) -> Vec<Condition> {
        workflow::conditions_for(&self.phase, outcome, None)
    }
}

/// What the watch reports as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A step changed phase.
    Step {
        build: String,
        step: String,
        phase: Phase,
    },
    /// A build completed (or its Workflow disappeared).
    Finished(BuildResult),
}

/// What a completed Workflow produced for its build: phase, image, and the validated Workload
/// (or why there is none).
pub fn harvest(t: &Target, wf: &Value) -> BuildResult {
    let status = workflow::status(wf);
    let mut result = BuildResult {
        build: t.label(),
        workflow: format!("{}/{}", t.namespace, t.workflow),
        phase: status.phase,
        message: Some(status.message.clone()).filter(|m| !m.is_empty()),
        image: None,
        workload: None,
        workload_error: None,
        missing: None,
        revision: None,
    };
    if status.phase != Phase::Succeeded {
        return result;
    }
    let unusable = |r: &mut BuildResult, e: String| {
        r.workload_error = Some(e.clone());
        r.missing = Some(Missing::Unusable(e));
    };
    let a = match workflow::artifacts(wf) {
        Ok(a) => a,
        Err(e) => {
            unusable(&mut result, e.to_string());
            return result;
        }
    };
    result.image = a.image;
    result.revision = a.revision;
    let owner = &t.build.build.spec.owner;
    let Some(yaml) = a.workload_cr else {
        result.workload_error =
            Some("the build succeeded but produced no Workload (no workload-cr output)".to_owned());
        result.missing = Some(Missing::NoOutput);
        return result;
    };
    let parsed = workload::parse_workload_cr(&yaml).and_then(|w| {
        workload::canonical(
            w,
            t.build.build.organization(),
            Some((&owner.project_name, &owner.component_name)),
        )
    });
    match parsed {
        Ok(w) => result.workload = Some(w),
        Err(e) => unusable(&mut result, e.to_string()),
    }
    result
}

fn gone(t: &Target, why: &str) -> BuildResult {
    BuildResult {
        build: t.label(),
        workflow: format!("{}/{}", t.namespace, t.workflow),
        phase: Phase::Failed,
        message: Some(why.to_owned()),
        image: None,
        workload: None,
        workload_error: None,
        missing: None,
        revision: None,
    }
}

/// Follows `targets` until each completed; `on_event` sees every step change and result.
pub async fn watch(
    kube: &Kube,
    targets: Vec<Target>,
    timeout: Option<Duration>,
    mut on_event: impl FnMut(&Event),
) -> Result<Vec<BuildResult>, WatchError> {
    let resource = kube
        .resource("argoproj.io/v1alpha1", "Workflow")
        .await?
        .ok_or_else(|| KubeError::NoApi {
            object: "Workflow".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Workflow".into(),
        })?;
    let mut pending: BTreeMap<(String, String), Target> = targets
        .into_iter()
        .map(|t| ((t.namespace.clone(), t.workflow.clone()), t))
        .collect();
    let namespaces: BTreeSet<String> = pending.keys().map(|(ns, _)| ns.clone()).collect();
    let streams = namespaces.iter().map(|ns| {
        let api: Api<DynamicObject> =
            Api::namespaced_with(kube.client().clone(), ns, &resource.api);
        let config = watcher::Config::default()
            .labels("target=build")
            .timeout(WATCH_TIMEOUT_SECS);
        let ns = ns.clone();
        watcher(api, config)
            .default_backoff()
            .map(move |e| (ns.clone(), e))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut steps_seen: BTreeMap<(String, String), Vec<Phase>> = BTreeMap::new();
    // Per namespace, the Workflows a (re-)list returned: what it did not return is gone.
    let mut listing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut results = Vec::new();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    while !pending.is_empty() {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.next()).await {
                Ok(n) => n,
                Err(_) => {
                    return Err(WatchError::Timeout {
                        seconds: timeout.unwrap_or_default().as_secs(),
                        pending: pending.values().map(Target::label).collect(),
                    });
                }
            },
            None => events.next().await,
        };
        let Some((ns, event)) = next else { break };
        let event = match event {
            Ok(e) => e,
            // The backoff retries; a failed attempt is not the end of the watch. A 410 Gone
            // (resourceVersion too old) makes the watcher list again.
            Err(e) => {
                let code = match &e {
                    watcher::Error::WatchError(status) => status.code,
                    _ => 0,
                };
                tracing::warn!(namespace = %ns, code, error = %e, "watching Workflows failed; resuming");
                continue;
            }
        };
        let (object, deleted) = match event {
            watcher::Event::Init => {
                tracing::debug!(namespace = %ns, "listing Workflows");
                listing.insert(ns.clone(), BTreeSet::new());
                continue;
            }
            watcher::Event::InitDone => {
                let seen = listing.remove(&ns).unwrap_or_default();
                tracing::debug!(namespace = %ns, workflows = seen.len(), "listed Workflows");
                let missing: Vec<(String, String)> = pending
                    .keys()
                    .filter(|(n, w)| n == &ns && !seen.contains(w))
                    .cloned()
                    .collect();
                for key in missing {
                    let t = pending.remove(&key).expect("key from pending");
                    let r = gone(
                        &t,
                        "the Workflow does not exist (never submitted, or deleted)",
                    );
                    on_event(&Event::Finished(r.clone()));
                    results.push(r);
                }
                continue;
            }
            watcher::Event::InitApply(o) => {
                if let Some(set) = listing.get_mut(&ns) {
                    set.insert(o.metadata.name.clone().unwrap_or_default());
                }
                (o, false)
            }
            watcher::Event::Apply(o) => (o, false),
            watcher::Event::Delete(o) => (o, true),
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        let key = (ns.clone(), name);
        let Some(t) = pending.get(&key) else { continue };
        if deleted {
            let t = pending.remove(&key).expect("present");
            let r = gone(&t, "the Workflow was deleted before it finished");
            on_event(&Event::Finished(r.clone()));
            results.push(r);
            continue;
        }
        let wf = serde_json::to_value(&object).expect("objects serialize");
        if let Ok(steps) = workflow::steps(&wf) {
            let previous = steps_seen.entry(key.clone()).or_default();
            for (i, s) in steps.iter().enumerate() {
                if previous.get(i) != Some(&s.phase) {
                    on_event(&Event::Step {
                        build: t.label(),
                        step: s.step.to_string(),
                        phase: s.phase,
                    });
                }
            }
            *previous = steps.into_iter().map(|s| s.phase).collect();
        }
        let status = workflow::status(&wf);
        if status.phase.is_completed() {
            let t = pending.remove(&key).expect("present");
            let r = harvest(&t, &wf);
            on_event(&Event::Finished(r.clone()));
            results.push(r);
        }
    }
    Ok(results)
}
