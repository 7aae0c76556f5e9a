//! `buildplane logs`: the step pods of each build's Workflow, in step order, and the logs of
//! their `main` container.

use super::LoadedBuild;
use crate::core::pods::{self, StepPod};
use crate::engine::Engine;
use crate::kube::{Kube, KubeError};

/// Where a build's Workflow is.
pub fn workflow_of(b: &LoadedBuild) -> (String, String) {
    let id = crate::engine::argo::ArgoEngine.build_object(&b.build).id;
    (id.namespace.unwrap_or_default(), id.name)
}

/// The step pods of a Workflow, in step order.
pub async fn step_pods(
    kube: &Kube,
    namespace: &str,
    workflow: &str,
) -> Result<Vec<StepPod>, KubeError> {
    let pods = kube
        .resource("v1", "Pod")
        .await?
        .expect("every cluster serves Pods");
    let listed = kube
        .list_selected(&pods, namespace, &pods::selector(workflow))
        .await?;
    Ok(pods::step_pods(workflow, &listed))
}

/// Prints each step's header and `main` log, for the steps `step` selects (all when `None`).
pub async fn print_logs(
    kube: &Kube,
    builds: &[LoadedBuild],
    step: Option<&str>,
    follow: bool,
    out: &mut (dyn std::io::Write + Send),
) -> Result<usize, KubeError> {
    let mut shown = 0;
    for b in builds {
        let (namespace, workflow) = workflow_of(b);
        for p in step_pods(kube, &namespace, &workflow).await? {
            if step.is_some_and(|s| !pods::step_matches(&p.step, s)) {
                continue;
            }
            writeln!(
                out,
                "=== {} {} ({}) ===",
                b.build.metadata.name, p.step, p.pod
            )
            .map_err(|e| KubeError::Api {
                object: format!("Pod/{namespace}/{}", p.pod),
                code: 0,
                message: format!("cannot write: {e}"),
            })?;
            kube.copy_logs(&namespace, &p.pod, pods::MAIN_CONTAINER, follow, out)
                .await?;
            shown += 1;
        }
    }
    Ok(shown)
}
