//! Which pods ran a build's steps, in step order. Argo labels every step pod with
//! `workflows.argoproj.io/workflow: <workflow name>` and annotates it with its node name
//! `<workflow>[i].<step>`; those, not labels nobody sets (upstream's `workflow`/`step`), decide.

pub use crate::core::progress::StepPod;
use serde_json::Value;

/// Label Argo puts on every pod of a Workflow.
pub const WORKFLOW_LABEL: &str = "workflows.argoproj.io/workflow";
/// Annotation with the pod's node name, `<workflow>[<group>].<step>`.
pub const NODE_NAME_ANNOTATION: &str = "workflows.argoproj.io/node-name";
/// The container that runs the step's script (Argo renames the user container to `main`).
pub const MAIN_CONTAINER: &str = "main";

/// The label selector for a Workflow's pods.
pub fn selector(workflow: &str) -> String {
    format!("{WORKFLOW_LABEL}={workflow}")
}

/// `<wf>[2].push-step` → (Some(2), "push-step"); retries (`(0)`) and nesting keep the last part.
fn parse_node_name(workflow: &str, node: &str) -> (Option<usize>, String) {
    let rest = node.strip_prefix(workflow).unwrap_or(node);
    let group = rest
        .strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse().ok());
    let step = rest.rsplit('.').next().unwrap_or(rest);
    let step = step.split('(').next().unwrap_or(step).to_owned();
    (group, step)
}

/// The step pods of `workflow` among `pods` (objects as the API returns them), in step order:
/// by step group, then creation time, then name. Pods of other Workflows are ignored.
pub fn step_pods(workflow: &str, pods: &[Value]) -> Vec<StepPod> {
    let mut out: Vec<StepPod> = pods
        .iter()
        .filter(|p| {
            p.pointer("/metadata/labels")
                .and_then(|l| l.get(WORKFLOW_LABEL))
                .and_then(Value::as_str)
                == Some(workflow)
        })
        .map(|p| {
            let name = p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let node = p
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(NODE_NAME_ANNOTATION))
                .and_then(Value::as_str);
            let (group, step) = match node {
                Some(n) => parse_node_name(workflow, n),
                None => (None, name.to_owned()),
            };
            let created = p
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            StepPod {
                group,
                step,
                pod: name.to_owned(),
                created,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.group.unwrap_or(usize::MAX), &a.created, &a.pod).cmp(&(
            b.group.unwrap_or(usize::MAX),
            &b.created,
            &b.pod,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::progress::step_matches;
    use serde_json::json;

    fn pod(name: &str, wf: &str, node: Option<&str>, created: &str) -> Value {
        let mut p = json!({"metadata": {"name": name, "labels": {WORKFLOW_LABEL: wf},
            "creationTimestamp": created}});
        if let Some(n) = node {
            p["metadata"]["annotations"] = json!({NODE_NAME_ANNOTATION: n});
        }
        p
    }

    #[test]
    fn orders_by_step_group_not_by_creation_or_map_order() {
        let wf = "greeter-build-ccd3e8e5";
        let pods = vec![
            pod(
                "p-push",
                wf,
                Some(&format!("{wf}[2].push-step")),
                "2025-07-01T10:00:00Z",
            ),
            pod(
                "p-clone",
                wf,
                Some(&format!("{wf}[0].clone-step")),
                "2025-07-01T10:00:09Z",
            ),
            pod(
                "other",
                "another-wf",
                Some("another-wf[0].clone-step"),
                "2025-07-01T09:00:00Z",
            ),
            pod(
                "p-wl",
                wf,
                Some(&format!("{wf}[3].workload-create-step")),
                "2025-07-01T10:00:01Z",
            ),
            pod(
                "p-build",
                wf,
                Some(&format!("{wf}[1].build-step")),
                "2025-07-01T10:00:05Z",
            ),
        ];
        let got: Vec<(Option<usize>, String)> = step_pods(wf, &pods)
            .into_iter()
            .map(|s| (s.group, s.step))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(0), "clone-step".to_string()),
                (Some(1), "build-step".to_string()),
                (Some(2), "push-step".to_string()),
                (Some(3), "workload-create-step".to_string())
            ]
        );
    }

    #[test]
    fn retries_keep_their_step_name_and_order_by_time() {
        let wf = "w";
        let pods = vec![
            pod("b", wf, Some("w[1].build-step(1)"), "2025-07-01T10:00:09Z"),
            pod("a", wf, Some("w[1].build-step(0)"), "2025-07-01T10:00:01Z"),
        ];
        let got: Vec<String> = step_pods(wf, &pods)
            .into_iter()
            .map(|s| format!("{}:{}", s.step, s.pod))
            .collect();
        assert_eq!(got, ["build-step:a", "build-step:b"]);
    }

    #[test]
    fn step_filters() {
        assert!(step_matches("build-step", "build"));
        assert!(step_matches("build-step", "build-step"));
        assert!(!step_matches("build-step", "push"));
        assert_eq!(selector("w"), "workflows.argoproj.io/workflow=w");
    }
}
