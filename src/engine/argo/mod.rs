//! The Argo Workflows engine: per-build prerequisites and the `Workflow` that instantiates one
//! of the chart's ClusterWorkflowTemplates, named and labelled as upstream does.
//!
//! # Build text on its way to a step
//!
//! A Build's text reaches its steps only as Workflow arguments, and the ClusterWorkflowTemplates
//! pass every argument only as a whole env value (`env[].value: "{{workflow.parameters.x}}"`).
//! Two evaluators sit on that path. Argo substitutes `{{…}}` and evaluates `{{=…}}` in the
//! templates, in more than one pass (workflow parameters first, then inputs, steps and pod
//! fields in the text so produced), and has no escape for `{{`. kubelet expands env values:
//! `$$` becomes `$`, `$(VAR)` becomes VAR's value when VAR is defined, any other `$` stays.
//!
//! | Build field | Workflow argument | `{{` | `$` |
//! |---|---|---|---|
//! | `metadata.name`, `metadata.namespace` | none (names and labels only) | cannot occur: DNS names | cannot occur |
//! | `spec.owner.projectName` | `project-name` (and `image-name`, sanitized) | refused | doubled |
//! | `spec.owner.componentName` | `component-name` (and `image-name`, sanitized) | refused | doubled |
//! | `spec.repository.url` | `git-repo` | refused | doubled |
//! | `spec.repository.revision.branch` | `branch` | refused (also when a commit clears it) | doubled |
//! | `spec.repository.revision.commit` | `commit` | refused | doubled |
//! | `spec.repository.appPath` | `app-path` | refused | doubled |
//! | `spec.templateRef.parameters[i].value` | the parameter's name | refused | doubled |
//! | `spec.templateRef.parameters[i].name`, `spec.templateRef.name`, `.engine` | names only | refused | refused |
//!
//! So [`ArgoEngine::validate`] refuses `{{` anywhere in those fields (also without a closing
//! `}}`, and inside `$(…)`), naming the file and field; and every argument value is written
//! with each `$` doubled ([`kubelet_literal`]), which kubelet's expansion undoes exactly: the
//! step receives the Build's bytes. Nothing else of the Workflow carries Build text except
//! sanitized label values. tests/build_text.rs follows the values through both evaluators.

pub mod inspect;
pub mod pods;
pub mod schema;
pub mod status;

use super::{BuildKind, ClusterTemplateUse, DeriveError, Engine, StatusError};
use crate::core::builds::StopMode;
use crate::core::catalog::{
    Declared, RESERVED_PARAMETERS, Source, TEMPLATE_SOURCE_ANNOTATION, TEMPLATE_SOURCE_CLUSTER,
    wants_cluster_template,
};
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::naming;
use crate::core::progress::{
    Artifacts, BuildRecord, BuildStatus, StepPhase, StepPod, Unschedulable,
};
use crate::core::spec::{Build, Origin, SpecError, field_error};
use crate::core::templates::Invariants;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

pub const SERVICE_ACCOUNT: &str = "workflow-sa";
/// The kind of the templates a Workflow instantiates (`workflowTemplateRef.clusterScope`).
pub const CLUSTER_WORKFLOW_TEMPLATE: &str = "ClusterWorkflowTemplate";
pub const ROLE: &str = "workflow-role";
pub const ROLE_BINDING: &str = "workflow-role-binding";
pub use crate::core::spec::SPEC_HASH_ANNOTATION;
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "buildplane");
/// Argo's shutdown strategy that stops a Workflow at once, killing its running pods and
/// running no exit handler (`Stop` would run them); the Workflow ends `Failed` with the
/// message `Stopped with strategy 'Terminate'`.
pub const SHUTDOWN_TERMINATE: &str = "Terminate";

pub struct ArgoEngine;

/// `argoproj.io/v1alpha1` Workflow, selected by upstream's `target=build` label.
pub const WORKFLOW: BuildKind = BuildKind {
    group: "argoproj.io",
    version: "v1alpha1",
    api_version: "argoproj.io/v1alpha1",
    kind: "Workflow",
    plural: "workflows",
    selector: "target=build",
};

impl Engine for ArgoEngine {
    fn name(&self) -> &'static str {
        "argo"
    }

    fn validate(&self, origin: &Origin, build: &Build) -> Result<(), SpecError> {
        let tref = &build.spec.template_ref;
        // Which parameters the template declares is `catalog::check`'s (the template may come
        // from values or the cluster); what no template may take is checked here. A name may
        // be any template's, so its form is checked: an object name, Argo's parameter names.
        if !naming::is_dns_subdomain(&tref.name, 253) {
            return Err(field_error(
                origin,
                "spec.templateRef.name",
                format!(
                    "{:?} is not a ClusterWorkflowTemplate name (lowercase letters, digits, '-' \
                     and '.', at most 253 characters)",
                    tref.name
                ),
            ));
        }
        for (i, p) in tref.parameters.iter().enumerate() {
            let path = format!("spec.templateRef.parameters[{i}].name");
            if !is_parameter_name(&p.name) {
                return Err(field_error(
                    origin,
                    &path,
                    format!(
                        "{:?} is not a workflow parameter name (letters, digits, '-' and '_', \
                         at most 253 characters)",
                        p.name
                    ),
                ));
            }
            if RESERVED_PARAMETERS.contains(&p.name.as_str()) {
                return Err(field_error(
                    origin,
                    &path,
                    format!(
                        "{:?} is set by buildplane itself and cannot be overridden",
                        p.name
                    ),
                ));
            }
            if tref.parameters[..i].iter().any(|q| q.name == p.name) {
                return Err(field_error(
                    origin,
                    &path,
                    format!("{:?} is given twice", p.name),
                ));
            }
        }
        for (path, text) in argument_text(build) {
            if text.contains("{{") {
                return Err(field_error(
                    origin,
                    &path,
                    "must not contain \"{{\": Argo Workflows would evaluate it as a template \
                     placeholder or expression (it has no escape for it)",
                ));
            }
        }
        Ok(())
    }

    fn prerequisites(&self, build: &Build) -> Vec<Manifest> {
        let c = self.template_context(build);
        let (names, labels) = (&c["names"], &c["labels"]);
        let ns = &names["namespace"];
        let objects = [
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels["namespace"]}}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": names["serviceAccount"], "namespace": ns,
                    "labels": labels["organization"]}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": names["role"], "namespace": ns,
                    "labels": labels["organization"]},
                "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                    "verbs": ["create", "get", "list", "watch", "update", "patch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": names["roleBinding"], "namespace": ns,
                    "labels": labels["organization"]},
                "subjects": [{"kind": "ServiceAccount", "name": names["serviceAccount"],
                    "namespace": ns}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": names["role"]}}),
        ];
        objects
            .into_iter()
            .map(|o| Manifest::new(o).expect("prerequisites carry kind and name"))
            .collect()
    }

    fn object_from_context(&self, mut c: Value) -> Manifest {
        let mut take = |p: &str| c.pointer_mut(p).map(Value::take).unwrap_or_default();
        let labels = take("/labels/workflow");
        let object = json!({
            "apiVersion": WORKFLOW.api_version,
            "kind": WORKFLOW.kind,
            "metadata": {
                "name": take("/names/workflow"),
                "namespace": take("/names/namespace"),
                "labels": labels.clone(),
                "annotations": take("/annotations"),
            },
            "spec": {
                "serviceAccountName": take("/names/serviceAccount"),
                "podMetadata": {"labels": labels},
                "workflowTemplateRef": {"name": take("/names/template"), "clusterScope": true},
                "arguments": {"parameters": take("/arguments")},
            },
        });
        Manifest::new(object).expect("a Workflow carries kind and name")
    }

    /// `names` (namespace, workflow, serviceAccount, role, roleBinding, template), `labels`
    /// (organization, namespace, workflow), `arguments` (upstream order, then the Build's
    /// parameters; `$` doubled) and `annotations` (the spec hash, the template source).
    fn template_context(&self, build: &Build) -> Value {
        let org_labels = json!({
            "organization-name": naming::label_value(build.organization()),
            MANAGED_BY.0: MANAGED_BY.1,
        });
        let mut ns_labels = org_labels.clone();
        // Build pods run privileged podman; say so instead of leaving it to the cluster default.
        ns_labels["pod-security.kubernetes.io/enforce"] = json!("privileged");
        let (commit, branch) = build.commit_and_branch();
        let spec = &build.spec;
        let mut params = vec![
            param("project-name", &spec.owner.project_name),
            param("component-name", &spec.owner.component_name),
            param("git-repo", &spec.repository.url),
            param("app-path", &spec.repository.app_path),
            param(
                "image-name",
                &naming::image_name(&spec.owner.project_name, &spec.owner.component_name),
            ),
            param("image-tag", naming::IMAGE_TAG),
            param("commit", commit),
            param("branch", branch),
        ];
        params.extend(
            spec.template_ref
                .parameters
                .iter()
                .map(|p| param(&p.name, &p.value)),
        );
        let mut annotations = json!({SPEC_HASH_ANNOTATION: spec_hash(build)});
        if wants_cluster_template(build) {
            annotations[TEMPLATE_SOURCE_ANNOTATION] = json!(TEMPLATE_SOURCE_CLUSTER);
        }
        json!({
            "names": {
                "namespace": naming::namespace_name(build.organization()),
                "workflow": naming::workflow_name(&build.metadata.name),
                "serviceAccount": SERVICE_ACCOUNT,
                "role": ROLE,
                "roleBinding": ROLE_BINDING,
                "template": spec.template_ref.name,
            },
            "labels": {
                "organization": org_labels,
                "namespace": ns_labels,
                "workflow": workflow_labels(build),
            },
            "arguments": params,
            "annotations": annotations,
        })
    }

    fn build_object_id(&self, organization: &str, build_name: &str) -> ObjectId {
        ObjectId {
            api_version: WORKFLOW.api_version.to_owned(),
            kind: WORKFLOW.kind.to_owned(),
            namespace: Some(naming::namespace_name(organization)),
            name: naming::workflow_name(build_name),
        }
    }

    fn build_kind(&self) -> BuildKind {
        WORKFLOW
    }

    /// Finished is the phase mapping's completed (Argo `Succeeded`, `Failed`, `Error`): the
    /// submit-once rule and the follower ask the same question the same way.
    fn is_finished(&self, live: &Value) -> bool {
        status::status(live).phase.is_completed()
    }

    fn strip_for_cache(&self, live: &mut Value) {
        status::strip_for_cache(live);
    }

    fn status(&self, live: &Value) -> BuildStatus {
        let s = status::status(live);
        BuildStatus {
            phase: s.phase,
            message: s.message,
        }
    }

    fn unschedulable(&self, live: &Value) -> Option<Unschedulable> {
        status::unschedulable(live)
    }

    fn stop_requested(&self, live: &Value) -> bool {
        live.pointer("/spec/shutdown")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }

    fn step_names(&self) -> &'static [&'static str] {
        &status::STEPS
    }

    fn steps(&self, live: &Value) -> Result<Vec<StepPhase>, StatusError> {
        Ok(status::steps(live)?
            .into_iter()
            .map(|s| StepPhase {
                step: s.step,
                phase: s.phase,
            })
            .collect())
    }

    fn artifacts(&self, live: &Value) -> Result<Artifacts, StatusError> {
        Ok(status::artifacts(live)?)
    }

    fn pod_selector(&self, object_name: &str) -> String {
        pods::selector(object_name)
    }

    fn step_pods(&self, object_name: &str, listed: &[Value]) -> Vec<StepPod> {
        pods::step_pods(object_name, listed)
    }

    fn log_container(&self) -> &'static str {
        pods::MAIN_CONTAINER
    }

    fn namespace(&self, org: &str) -> String {
        naming::namespace_name(org)
    }

    fn object_name(&self, build: &str) -> String {
        naming::workflow_name(build)
    }

    fn selector(&self, org: Option<&str>, builds: &[&str]) -> String {
        inspect::selector(org, builds)
    }

    fn runs(&self, live: &Value, org: &str, build: &str) -> bool {
        inspect::runs(live, org, build)
    }

    fn record(&self, live: &Value) -> BuildRecord {
        inspect::record(live)
    }

    fn build_of(&self, live: &Value, org: &str, name: &str) -> Result<Build, DeriveError> {
        inspect::build_of(live, org, name)
    }

    fn stop_patch(&self, mode: StopMode) -> Value {
        inspect::stop_patch(mode)
    }

    fn invariants(&self, kind: &str) -> Invariants {
        const ID: [&str; 4] = [
            "/apiVersion",
            "/kind",
            "/metadata/name",
            "/metadata/namespace",
        ];
        match kind {
            "Workflow" => Invariants {
                equal: &[
                    "/apiVersion",
                    "/kind",
                    "/metadata/name",
                    "/metadata/namespace",
                    "/spec/serviceAccountName",
                    "/spec/workflowTemplateRef",
                    "/spec/arguments",
                ],
                superset: &[
                    "/metadata/labels",
                    "/metadata/annotations",
                    "/spec/podMetadata/labels",
                ],
                // What would run other code than the template's steps, or rewrite their pods
                // (host access is the lint's: `core::lint::lint_template`).
                absent: &[
                    "/spec/templates",
                    "/spec/entrypoint",
                    "/spec/templateDefaults",
                    "/spec/podSpecPatch",
                ],
            },
            "Role" => Invariants {
                equal: &[
                    "/apiVersion",
                    "/kind",
                    "/metadata/name",
                    "/metadata/namespace",
                    "/rules",
                ],
                superset: &["/metadata/labels"],
                absent: &[],
            },
            "RoleBinding" => Invariants {
                equal: &[
                    "/apiVersion",
                    "/kind",
                    "/metadata/name",
                    "/metadata/namespace",
                    "/subjects",
                    "/roleRef",
                ],
                superset: &["/metadata/labels"],
                absent: &[],
            },
            _ => Invariants {
                equal: &ID,
                superset: &["/metadata/labels"],
                absent: &[],
            },
        }
    }

    fn validate_rendered(&self, kind: &str, object: &Value) -> Result<(), String> {
        schema::validate(kind, object)
    }

    fn cluster_template(&self, object: &Value) -> Option<ClusterTemplateUse> {
        let annotated = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(TEMPLATE_SOURCE_ANNOTATION))
            .and_then(Value::as_str)
            == Some(TEMPLATE_SOURCE_CLUSTER);
        if !annotated {
            return None;
        }
        let name = object
            .pointer("/spec/workflowTemplateRef/name")
            .and_then(Value::as_str)?;
        let parameters = object
            .pointer("/spec/arguments/parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .filter(|n| !RESERVED_PARAMETERS.contains(n))
            .map(str::to_owned)
            .collect();
        Some(ClusterTemplateUse {
            template: ObjectId {
                api_version: WORKFLOW.api_version.to_owned(),
                kind: CLUSTER_WORKFLOW_TEMPLATE.to_owned(),
                namespace: None,
                name: name.to_owned(),
            },
            parameters,
        })
    }

    fn declared(&self, template: &Value) -> Declared {
        let name = template
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Declared::from_arguments(
            name,
            template.pointer("/spec/arguments/parameters"),
            Source::Cluster,
        )
    }
}

/// Argo's rule for parameter names (`[-a-zA-Z0-9_]+`), bounded.
fn is_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One Workflow argument; its value written so that the step receives `value` itself.
fn param(name: &str, value: &str) -> Value {
    json!({"name": name, "value": kubelet_literal(value)})
}

/// `text` as an env value that kubelet's `$(VAR)` expansion turns back into `text`: every `$`
/// doubled. kubelet reads `$$` as one `$` and leaves everything else alone, so this is an exact
/// inverse; text without `$` (every ordinary value) is unchanged.
pub fn kubelet_literal(text: &str) -> Cow<'_, str> {
    if text.contains('$') {
        Cow::Owned(text.replace('$', "$$"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Every Build field whose text becomes a Workflow argument, with its key path: what Argo
/// must never evaluate. The branch is listed even when a commit clears it, so whether a
/// Build is accepted does not hang on another field.
fn argument_text(build: &Build) -> Vec<(String, &str)> {
    let spec = &build.spec;
    let repo = &spec.repository;
    let mut fields = vec![
        (
            "spec.owner.projectName".to_owned(),
            spec.owner.project_name.as_str(),
        ),
        (
            "spec.owner.componentName".to_owned(),
            spec.owner.component_name.as_str(),
        ),
        ("spec.repository.url".to_owned(), repo.url.as_str()),
        (
            "spec.repository.revision.branch".to_owned(),
            repo.revision.branch.as_str(),
        ),
        (
            "spec.repository.revision.commit".to_owned(),
            repo.revision.commit.as_str(),
        ),
        ("spec.repository.appPath".to_owned(), repo.app_path.as_str()),
    ];
    fields.extend(
        spec.template_ref
            .parameters
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    format!("spec.templateRef.parameters[{i}].value"),
                    p.value.as_str(),
                )
            }),
    );
    fields
}

/// `MakeWorkflowLabels`, with each value made a valid label value where the raw name is not.
pub fn workflow_labels(build: &Build) -> Value {
    let o = &build.spec.owner;
    json!({
        "organization-name": naming::label_value(build.organization()),
        "project-name": naming::label_value(&o.project_name),
        "component-name": naming::label_value(&o.component_name),
        "build-name": naming::label_value(&build.metadata.name),
        "uuid": build_uid(build),
        "target": "build",
    })
}

/// The Build's UID when it has one (a Build custom resource); for a Build read from a file, a
/// UUID-shaped id derived from its namespace and name, so renders stay deterministic.
pub fn build_uid(build: &Build) -> String {
    if let Some(uid) = build
        .metadata
        .uid
        .as_deref()
        .filter(|u| naming::is_label_value(u))
    {
        return uid.to_owned();
    }
    let d = Sha256::digest(format!("{}/{}", build.organization(), build.metadata.name));
    let h = naming::hex(&d[..16]);
    format!(
        "{}-{}-5{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

/// SHA-256 of the Build's identity and spec as JSON with sorted keys: what decides whether the
/// Workflow in the cluster was made from this very spec.
pub fn spec_hash(build: &Build) -> String {
    let canonical = serde_json::to_vec(&json!({
        "namespace": build.organization(),
        "name": build.metadata.name,
        "spec": build.spec,
    }))
    .expect("a Build always serializes");
    naming::hex(&Sha256::digest(&canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{build_from_value, parse_documents};

    fn build(url: &str, branch: &str, commit: &str) -> (Origin, Build) {
        let doc = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "b", "namespace": "acme"},
            "spec": {"owner": {"projectName": "p", "componentName": "c"},
                "repository": {"url": url, "appPath": "/a$(HOME)",
                    "revision": {"branch": branch, "commit": commit}},
                "templateRef": {"name": "react",
                    "parameters": [{"name": "node-version", "value": "20$$"}]}}});
        let text = serde_json::to_string(&doc).unwrap();
        let (origin, doc) = parse_documents("b.yaml", &text).unwrap().remove(0);
        let b = build_from_value(&origin, doc).unwrap();
        (origin, b)
    }

    fn argument(wf: &Value, name: &str) -> String {
        let params = wf["spec"]["arguments"]["parameters"].as_array().unwrap();
        let p = params.iter().find(|p| p["name"] == name).unwrap();
        p["value"].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_dollar_of_an_argument_is_doubled() {
        let (origin, b) = build("https://h/$x.git", "rel-${X}", "");
        ArgoEngine.validate(&origin, &b).unwrap();
        let wf = ArgoEngine.build_object(&b).object;
        assert_eq!(argument(&wf, "git-repo"), "https://h/$$x.git");
        assert_eq!(argument(&wf, "branch"), "rel-$${X}");
        assert_eq!(argument(&wf, "app-path"), "/a$$(HOME)");
        assert_eq!(argument(&wf, "node-version"), "20$$$$");
        assert_eq!(argument(&wf, "project-name"), "p");
        assert_eq!(kubelet_literal("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn text_argo_would_evaluate_is_refused_with_its_field() {
        let cases = [
            (
                "https://h/{{workflow.name}}",
                "main",
                "",
                "spec.repository.url",
            ),
            (
                "https://h/r",
                "{{=sprig.x}}",
                "",
                "spec.repository.revision.branch",
            ),
            // A branch a commit clears is refused all the same.
            (
                "https://h/r",
                "a{{",
                "abc",
                "spec.repository.revision.branch",
            ),
            (
                "https://h/r",
                "",
                "$({{x}})",
                "spec.repository.revision.commit",
            ),
        ];
        for (url, branch, commit, path) in cases {
            let (origin, b) = build(url, branch, commit);
            let err = ArgoEngine.validate(&origin, &b).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("b.yaml: {path}: must not contain \"{{{{\"")),
                "{err}"
            );
        }
        let (origin, mut b) = build("https://h/r", "main", "");
        b.spec.template_ref.parameters[0].value = "{{=".into();
        let err = ArgoEngine.validate(&origin, &b).unwrap_err().to_string();
        assert!(
            err.starts_with("b.yaml: spec.templateRef.parameters[0].value: "),
            "{err}"
        );
        let (origin, b) = build("https://h/{ {x} }", "}}{", "");
        ArgoEngine.validate(&origin, &b).unwrap();
    }
}
