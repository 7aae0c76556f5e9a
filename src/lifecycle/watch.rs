//! The async side of following builds: one kube-runtime watcher per namespace and build kind
//! (it re-lists after `410 Gone`, resumes after a dropped connection with backoff, and gives up
//! on a watch that went silent), never a polling loop. Every event goes into the [`Follower`];
//! this file only moves events and enforces `--timeout`.

use super::Target;
use super::follow::{Event, Follower, WatchEvent};
use crate::engine::BuildKind;
use crate::kube::{Kube, KubeError};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;
use std::time::Duration;

/// Seconds the server keeps one watch request open; the watcher treats a watch silent for
/// longer (plus a margin) as dead and starts a new one.
pub const WATCH_TIMEOUT_SECS: u32 = 30;

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

/// The API resource of a build kind, for watches and stores.
pub fn api_resource(kind: &BuildKind) -> ApiResource {
    ApiResource {
        group: kind.group.into(),
        version: kind.version.into(),
        api_version: kind.api_version.into(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

/// The one watcher configuration for build objects (watch, sync, and the controller's stores).
pub fn watcher_config(kind: &BuildKind) -> watcher::Config {
    watcher::Config::default()
        .labels(kind.selector)
        .timeout(WATCH_TIMEOUT_SECS)
}

/// kube-runtime's event, as the follower takes it (`None`: the object would not serialize).
fn follower_event(event: watcher::Event<DynamicObject>) -> Option<WatchEvent> {
    let json = |o: DynamicObject| serde_json::to_value(o).ok();
    Some(match event {
        watcher::Event::Init => WatchEvent::Listing,
        watcher::Event::InitApply(o) => WatchEvent::Listed(json(o)?),
        watcher::Event::InitDone => WatchEvent::ListDone,
        watcher::Event::Apply(o) => WatchEvent::Applied(json(o)?),
        watcher::Event::Delete(o) => WatchEvent::Deleted(json(o)?),
    })
}

/// Follows `targets` until each finished; `on_event` sees every step change and result.
pub async fn watch(
    kube: &Kube,
    targets: Vec<Target>,
    timeout: Option<Duration>,
    mut on_event: impl FnMut(&Event),
) -> Result<(), WatchError> {
    // One watch per namespace and build kind.
    let kinds: BTreeMap<(String, &'static str), BuildKind> = targets
        .iter()
        .map(|t| {
            let k = t.engine.build_kind();
            ((t.namespace.clone(), k.kind), k)
        })
        .collect();
    let mut streams = Vec::new();
    for ((ns, _), kind) in kinds {
        // Discovery confirms the kind is served (one cached request); a clear error otherwise.
        kube.resource(kind.api_version, kind.kind)
            .await?
            .ok_or_else(|| KubeError::NoApi {
                object: kind.kind.into(),
                api_version: kind.api_version.into(),
                kind: kind.kind.into(),
            })?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(kube.client().clone(), &ns, &api_resource(&kind));
        let stream = watcher(api, watcher_config(&kind))
            .default_backoff()
            .map(move |e| (ns.clone(), e));
        streams.push(stream.boxed());
    }
    let mut events = futures::stream::select_all(streams);
    let mut follower = Follower::new(targets);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    while !follower.is_done() {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.next()).await {
                Ok(n) => n,
                Err(_) => {
                    return Err(WatchError::Timeout {
                        seconds: timeout.unwrap_or_default().as_secs(),
                        pending: follower.pending().map(Target::label).collect(),
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
                    watcher::Error::WatchError(status) => Some(status.code),
                    _ => None,
                };
                tracing::warn!(namespace = %ns, code, error = %e, "watching Workflows failed; resuming");
                continue;
            }
        };
        match &event {
            watcher::Event::Init => tracing::debug!(namespace = %ns, "listing Workflows"),
            watcher::Event::InitDone => tracing::debug!(namespace = %ns, "listed Workflows"),
            _ => {}
        }
        let Some(event) = follower_event(event) else {
            continue;
        };
        for e in follower.on(&ns, event) {
            on_event(&e);
        }
    }
    Ok(())
}
