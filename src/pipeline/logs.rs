//! `buildplane logs`: the step pods of each build's Workflow, in step order, and the logs of
//! their `main` container.

use super::LoadedBuild;
use crate::core::progress::{StepPod, step_matches};
use crate::core::spec::SpecError;
use crate::core::text::{escape_controls, escape_controls_keep_lines};
use crate::engine::Engine;
use crate::kube::{Kube, KubeError};
use crate::lifecycle::Target;
use futures::StreamExt;

/// Why the logs could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// Reading pods or logs from the cluster failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The Build asks for an engine we do not have.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The cluster has no Pod API, so there are no step pods to read.
    #[error("step pods of {workflow}: the cluster serves no Pod in v1")]
    NoPodApi { workflow: String },
    /// Writing a log to our own output failed (a closed pipe, a full disk).
    #[error("Pod/{namespace}/{pod}: cannot write the log")]
    Write {
        namespace: String,
        pod: String,
        #[source]
        source: std::io::Error,
    },
}

/// The step pods of build object `namespace/workflow`, in step order.
pub async fn step_pods(
    kube: &Kube,
    engine: &dyn Engine,
    namespace: &str,
    workflow: &str,
) -> Result<Vec<StepPod>, LogsError> {
    let pods = kube
        .resource("v1", "Pod")
        .await?
        .ok_or_else(|| LogsError::NoPodApi {
            workflow: format!("{namespace}/{workflow}"),
        })?;
    let listed = kube
        .list_selected(&pods, namespace, &engine.pod_selector(workflow))
        .await?;
    Ok(engine.step_pods(workflow, &listed))
}

/// One build whose step logs to show: its Build's name (the headers' first word), its engine
/// and its build object. From a Build file ([`Target`]) or found by name on the build plane.
#[derive(Clone)]
pub struct LogSource {
    pub build: String,
    pub engine: &'static dyn Engine,
    pub namespace: String,
    pub object: String,
}

impl From<&Target> for LogSource {
    fn from(t: &Target) -> LogSource {
        LogSource {
            build: t.build.build.metadata.name.clone(),
            engine: t.engine,
            namespace: t.namespace.clone(),
            object: t.name.clone(),
        }
    }
}

/// The log sources of Build files (an unknown engine is the Build's error).
pub fn sources_of(builds: &[LoadedBuild]) -> Result<Vec<LogSource>, LogsError> {
    builds
        .iter()
        .map(|b| Ok(LogSource::from(&Target::of(b)?)))
        .collect()
}

/// Prints each step's header and `main` log, for the steps `step` selects (all when `None`).
pub async fn print_logs(
    kube: &Kube,
    sources: &[LogSource],
    step: Option<&str>,
    follow: bool,
    out: &mut (dyn std::io::Write + Send),
) -> Result<usize, LogsError> {
    let mut shown = 0;
    for b in sources {
        let namespace = &b.namespace;
        for p in step_pods(kube, b.engine, namespace, &b.object).await? {
            if step.is_some_and(|s| !step_matches(&p.step, s)) {
                continue;
            }
            let write_failed = |source| LogsError::Write {
                namespace: namespace.to_owned(),
                pod: p.pod.clone(),
                source,
            };
            writeln!(
                out,
                "=== {} {} ({}) ===",
                escape_controls(&b.build),
                escape_controls(&p.step),
                escape_controls(&p.pod)
            )
            .map_err(write_failed)?;
            let mut lines = kube
                .log_lines(namespace, &p.pod, b.engine.log_container(), follow)
                .await?;
            while let Some(line) = lines.next().await {
                // A build's own output: its lines stay, control sequences are shown escaped.
                let line = line?;
                writeln!(out, "{}", escape_controls_keep_lines(&line)).map_err(write_failed)?;
            }
            shown += 1;
        }
    }
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_names_the_pod_and_keeps_its_cause_as_source() {
        let e = LogsError::Write {
            namespace: "ns".into(),
            pod: "wf-build-step-1".into(),
            source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        };
        assert_eq!(
            e.to_string(),
            "Pod/ns/wf-build-step-1: cannot write the log"
        );
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("broken pipe"));
    }
}
