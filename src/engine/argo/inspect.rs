//! A live Workflow read without its Build file: which build it is (upstream's labels), what
//! `list` and `get` show of it, the Build it was rendered from (its arguments carry every field
//! harvest and emit need), and the patch `stop` sends (Argo's `spec.shutdown`).
//!
//! Pure: the Workflow is an argument.

use super::WORKFLOW;
use super::status;
use crate::core::builds::StopMode;
use crate::core::catalog::RESERVED_PARAMETERS;
use crate::core::naming;
use crate::core::progress::{BuildRecord, EngineCondition, StepRecord};
use crate::core::spec::{
    Build, BuildSpec, ObjectMeta, Owner, Parameter, Repository, Revision, TemplateRef,
};
use crate::engine::DeriveError;
use serde_json::{Value, json};

/// The labels of [`super::workflow_labels`] that say which build a Workflow runs.
pub const ORGANIZATION_LABEL: &str = "organization-name";
pub const BUILD_LABEL: &str = "build-name";
/// The label every build Workflow carries (upstream's; [`WORKFLOW`]'s selector).
const WORKFLOW_TARGET: (&str, &str) = ("target", "build");

/// Workflows of builds: `target=build` with both identity labels; of one organization when
/// `org` is given, and of only the Builds `builds` when that is not empty (their label values,
/// as rendering writes them).
pub fn selector(org: Option<&str>, builds: &[&str]) -> String {
    let mut parts = vec![WORKFLOW.selector.to_owned()];
    match org {
        Some(org) => parts.push(format!("{ORGANIZATION_LABEL}={}", naming::label_value(org))),
        None => parts.push(ORGANIZATION_LABEL.to_owned()),
    }
    let mut values: Vec<String> = builds.iter().map(|b| naming::label_value(b)).collect();
    values.sort();
    values.dedup();
    match values.as_slice() {
        [] => parts.push(BUILD_LABEL.to_owned()),
        [one] => parts.push(format!("{BUILD_LABEL}={one}")),
        many => parts.push(format!("{BUILD_LABEL} in ({})", many.join(","))),
    }
    parts.join(",")
}

/// Whether `wf` carries the labels rendering writes for Build `org/build`.
pub fn runs(wf: &Value, org: &str, build: &str) -> bool {
    label(wf, WORKFLOW_TARGET.0) == WORKFLOW_TARGET.1
        && label(wf, ORGANIZATION_LABEL) == naming::label_value(org)
        && label(wf, BUILD_LABEL) == naming::label_value(build)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn time_at(v: &Value, pointer: &str) -> Option<String> {
    Some(str_at(v, pointer))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn label<'a>(wf: &'a Value, key: &str) -> &'a str {
    wf.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Workflow argument `name` as the step receives it: rendering doubles every `$`
/// (`super::kubelet_literal`), kubelet turns each `$$` back into `$`.
pub fn argument(wf: &Value, name: &str) -> Option<String> {
    wf.pointer("/spec/arguments/parameters")
        .and_then(Value::as_array)?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .map(|v| v.replace("$$", "$"))
}

/// What `list` and `get` show of a Workflow. Nodes are read once (compressed ones too, within
/// the process's cap); unreadable nodes leave the steps empty with the reason.
pub fn record(wf: &Value) -> BuildRecord {
    let s = status::status(wf);
    let arg = |name: &str| argument(wf, name).unwrap_or_default();
    let (steps, steps_error, artifacts) = match status::nodes(wf) {
        Ok(nodes) => {
            let steps = status::steps_from(&nodes)
                .into_iter()
                .map(|st| {
                    let node = st.node.as_ref();
                    StepRecord {
                        step: st.step.to_owned(),
                        phase: st.phase,
                        engine_phase: node.map(|n| n.phase.clone()).unwrap_or_default(),
                        started: node.and_then(|n| n.started_at.clone()),
                        finished: node.and_then(|n| n.finished_at.clone()),
                        attempts: st.attempts,
                        message: node.map(|n| n.message.clone()).unwrap_or_default(),
                    }
                })
                .collect();
            (steps, None, status::artifacts_from(&nodes))
        }
        Err(e) => (Vec::new(), Some(e.to_string()), Default::default()),
    };
    let engine_conditions = wf
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| EngineCondition {
                    type_: str_at(c, "/type").to_owned(),
                    status: str_at(c, "/status").to_owned(),
                    message: str_at(c, "/message").to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    BuildRecord {
        organization: label(wf, ORGANIZATION_LABEL).to_owned(),
        build: label(wf, BUILD_LABEL).to_owned(),
        kind: WORKFLOW.kind.to_owned(),
        namespace: str_at(wf, "/metadata/namespace").to_owned(),
        name: str_at(wf, "/metadata/name").to_owned(),
        phase: s.phase,
        engine_phase: s.argo_phase,
        message: s.message,
        template: str_at(wf, "/spec/workflowTemplateRef/name").to_owned(),
        project: arg("project-name"),
        component: arg("component-name"),
        repository: arg("git-repo"),
        commit: arg("commit"),
        branch: arg("branch"),
        revision: artifacts.revision,
        image: artifacts.image,
        created: time_at(wf, "/metadata/creationTimestamp"),
        started: time_at(wf, "/status/startedAt"),
        finished: time_at(wf, "/status/finishedAt"),
        stop_requested: StopMode::parse(str_at(wf, "/spec/shutdown")),
        steps,
        steps_error,
        engine_conditions,
        provenance: crate::core::provenance::read(wf)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    }
}

/// The Build `org/name` a Workflow was rendered from, read back from its arguments: the owner
/// (which harvest checks the Workload against and every emit path uses), the repository, the
/// revision asked for (a pinned commit names Git commits), the template and its parameters. A
/// branch a commit overrode is not recorded (it is sent empty), so this Build's spec hash can
/// differ from the annotation; nothing that reads it here depends on that.
pub fn build_of(wf: &Value, org: &str, name: &str) -> Result<Build, DeriveError> {
    let object = format!("{}/{}", WORKFLOW.kind, status::workflow_ref(wf));
    let need = |argument_name: &'static str| {
        argument(wf, argument_name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| DeriveError::Missing {
                object: object.clone(),
                argument: argument_name,
            })
    };
    let owner = Owner {
        project_name: need("project-name")?,
        component_name: need("component-name")?,
    };
    let parameters = wf
        .pointer("/spec/arguments/parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .filter(|n| !RESERVED_PARAMETERS.contains(n))
                .map(|n| Parameter {
                    name: n.to_owned(),
                    value: argument(wf, n).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let arg = |n: &str| argument(wf, n).unwrap_or_default();
    Ok(Build {
        metadata: ObjectMeta {
            name: name.to_owned(),
            namespace: Some(org.to_owned()),
            ..ObjectMeta::default()
        },
        spec: BuildSpec {
            owner,
            repository: Repository {
                url: arg("git-repo"),
                revision: Revision {
                    branch: arg("branch"),
                    commit: arg("commit"),
                },
                app_path: arg("app-path"),
            },
            template_ref: TemplateRef {
                engine: String::new(),
                name: str_at(wf, "/spec/workflowTemplateRef/name").to_owned(),
                parameters,
            },
        },
    })
}

/// Argo's own stop (`argo stop`: `spec.shutdown: Stop`, exit handlers still run) or terminate
/// (`argo terminate`: `Terminate`), as the merge patch Argo's CLI sends.
pub fn stop_patch(mode: StopMode) -> Value {
    json!({"spec": {"shutdown": mode.as_str()}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::progress::Phase;
    use crate::core::spec::{build_from_value, parse_documents};
    use crate::engine::Engine;
    use crate::engine::argo::ArgoEngine;

    fn build(doc: &str) -> Build {
        let (origin, v) = parse_documents("b.yaml", doc).unwrap().remove(0);
        build_from_value(&origin, v).unwrap()
    }

    fn reading_list() -> Build {
        build(include_str!(
            "../../../fixtures/builds/reading-list-commit.yaml"
        ))
    }

    /// The rendered Workflow with the recorded status of `fixture`, as the API returns it.
    fn live(b: &Build, fixture: &str) -> Value {
        let mut wf = ArgoEngine.build_object(b).object;
        let recorded: Value = serde_saphyr::from_str(fixture).unwrap();
        wf["status"] = recorded["status"].clone();
        wf["metadata"]["creationTimestamp"] = json!("2025-07-01T09:59:58Z");
        wf
    }

    #[test]
    fn selectors_name_the_labels_rendering_writes() {
        assert_eq!(
            selector(None, &[]),
            "target=build,organization-name,build-name"
        );
        assert_eq!(
            selector(Some("acme"), &[]),
            "target=build,organization-name=acme,build-name"
        );
        assert_eq!(
            selector(Some("acme"), &["b"]),
            "target=build,organization-name=acme,build-name=b"
        );
        assert_eq!(
            selector(Some("acme"), &["c", "b", "c"]),
            "target=build,organization-name=acme,build-name in (b,c)"
        );
        // A name too long for a label value is selected by the value rendering gives it.
        let long = "b".repeat(70);
        let want = naming::label_value(&long);
        assert_ne!(want, long);
        assert!(selector(Some("acme"), &[&long]).ends_with(&format!("build-name={want}")));
        // The labels rendering writes are the ones selected.
        let b = reading_list();
        let wf = ArgoEngine.build_object(&b).object;
        let labels = &wf["metadata"]["labels"];
        assert_eq!(labels[ORGANIZATION_LABEL], "default");
        assert_eq!(labels[BUILD_LABEL], b.metadata.name.as_str());
        assert_eq!(
            format!("{}={}", WORKFLOW_TARGET.0, WORKFLOW_TARGET.1),
            WORKFLOW.selector
        );
        assert!(runs(&wf, "default", &b.metadata.name));
        assert!(!runs(&wf, "acme", &b.metadata.name));
        assert!(!runs(&wf, "default", "other"));
        let mut other_kind = wf.clone();
        other_kind["metadata"]["labels"]["target"] = json!("test");
        assert!(!runs(&other_kind, "default", &b.metadata.name));
    }

    #[test]
    fn a_record_of_a_succeeded_workflow() {
        let b = reading_list();
        let wf = live(
            &b,
            include_str!("../../../fixtures/argo-status/succeeded.yaml"),
        );
        let r = record(&wf);
        assert_eq!(r.label(), "default/reading-list-service-build-7c9e4a1b");
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str(), r.kind.as_str()),
            (
                "openchoreo-ci-default",
                "reading-list-service-build-7c9e4a1b-8081ce9a",
                "Workflow"
            )
        );
        assert_eq!(
            (r.phase, r.engine_phase.as_str()),
            (Phase::Succeeded, "Succeeded")
        );
        assert_eq!(r.template, "docker");
        assert_eq!(
            (r.project.as_str(), r.component.as_str()),
            ("default", "reading-list-service")
        );
        assert_eq!(r.commit, "4f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39");
        assert_eq!(r.branch, "", "a commit clears the branch");
        assert_eq!(r.revision.as_deref(), Some("4f2a9c1e"));
        assert_eq!(
            r.image.as_deref(),
            Some("localhost:30003/default-reading-list-service:default-4f2a9c1e")
        );
        assert_eq!(r.created.as_deref(), Some("2025-07-01T09:59:58Z"));
        assert_eq!(r.started.as_deref(), Some("2025-07-01T10:00:00Z"));
        assert_eq!(r.finished.as_deref(), Some("2025-07-01T10:05:06Z"));
        assert_eq!(r.steps_done(), Some((4, 4)));
        assert_eq!(r.steps[0].step, "clone-step");
        assert_eq!(r.steps[0].started.as_deref(), Some("2025-07-01T10:00:00Z"));
        assert_eq!(r.steps[0].finished.as_deref(), Some("2025-07-01T10:00:09Z"));
        assert_eq!(r.steps[0].attempts, 1);
        let conditions: Vec<(&str, &str)> = r
            .engine_conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(conditions, [("PodRunning", "False"), ("Completed", "True")]);
        assert_eq!(r.stop_requested, None);
    }

    #[test]
    fn a_record_of_a_failed_and_of_an_unread_workflow() {
        let b = reading_list();
        let wf = live(
            &b,
            include_str!("../../../fixtures/argo-status/build-step-failed.yaml"),
        );
        let r = record(&wf);
        assert_eq!(r.phase, Phase::Failed);
        assert_eq!(r.steps_done(), Some((1, 4)));
        assert_eq!(r.steps[1].message, "Error (exit code 1)");
        assert_eq!(r.steps[2].engine_phase, "", "never started");
        assert_eq!(r.image, None);

        // Not picked up yet: no status at all.
        let mut wf = ArgoEngine.build_object(&b).object;
        wf["spec"]["shutdown"] = json!("Terminate");
        let r = record(&wf);
        assert_eq!((r.phase, r.engine_phase.as_str()), (Phase::Unknown, ""));
        assert_eq!(r.steps_done(), Some((0, 4)));
        assert_eq!(r.stop_requested, Some(StopMode::Terminate));

        // Offloaded nodes: no steps, and why.
        wf["status"] = json!({"phase": "Running", "offloadNodeStatusVersion": "v1"});
        let r = record(&wf);
        assert_eq!(r.steps_done(), None);
        assert!(r.steps.is_empty());
        assert!(r.steps_error.unwrap().contains("offloaded"));
    }

    #[test]
    fn the_build_read_back_from_its_workflow_has_what_harvest_and_emit_use() {
        let text = include_str!("../../../fixtures/builds/reading-list-commit.yaml")
            .replace("appPath: /service-go-reading-list", "appPath: /a$(HOME)$$");
        let b = build(&text);
        let wf = ArgoEngine.build_object(&b).object;
        let back = build_of(&wf, "default", &b.metadata.name).unwrap();
        assert_eq!(back.metadata.name, b.metadata.name);
        assert_eq!(back.organization(), b.organization());
        assert_eq!(back.spec.owner, b.spec.owner);
        assert_eq!(back.spec.repository.url, b.spec.repository.url);
        assert_eq!(
            back.spec.repository.app_path, "/a$(HOME)$$",
            "every $ undoubled once"
        );
        assert_eq!(
            back.spec.repository.revision.commit,
            b.spec.repository.revision.commit
        );
        assert_eq!(back.commit_and_branch(), b.commit_and_branch());
        assert_eq!(back.spec.template_ref.name, "docker");
        assert_eq!(
            back.spec.template_ref.parameters,
            b.spec.template_ref.parameters
        );
        // Rendering it again gives the same Workflow arguments.
        assert_eq!(ArgoEngine.build_object(&back).object["spec"], wf["spec"],);

        let mut bare = wf.clone();
        bare["spec"]["arguments"]["parameters"] = json!([{"name": "git-repo", "value": "x"}]);
        let e = build_of(&bare, "default", "b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Workflow/openchoreo-ci-default/reading-list-service-build-7c9e4a1b-8081ce9a: \
             has no argument project-name, so the Build's owner (which the Workload is checked \
             against and emitted for) cannot be told from it"
        );
    }

    #[test]
    fn stop_is_argos_merge_patch() {
        assert_eq!(
            stop_patch(StopMode::Stop),
            json!({"spec": {"shutdown": "Stop"}})
        );
        assert_eq!(
            stop_patch(StopMode::Terminate),
            json!({"spec": {"shutdown": "Terminate"}})
        );
    }
}
