//! Schemas on both sides of the render: `values.schema.json` for what goes in (with the exact
//! messages users see), and Argo's own JSON schema for the ClusterWorkflowTemplates and
//! Workflows that come out.

use buildplane::core::render::{Chart, defaults, render_chart};
use buildplane::core::spec::{build_from_value, parse_documents};
use buildplane::core::values::{ValuesError, coalesce, validate};
use buildplane::engine::Engine;
use buildplane::engine::argo::ArgoEngine;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Validates defaults changed by `overlay`; the list of messages, empty when valid.
fn problems(overlay: Value) -> Vec<String> {
    let chart = Chart::builtin();
    let mut v = defaults(&chart).unwrap();
    coalesce(&mut v, overlay);
    match validate(&v, &chart.values_schema().unwrap()) {
        Ok(()) => Vec::new(),
        Err(ValuesError::Schema(lines)) => lines,
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn default_values_are_valid() {
    assert_eq!(problems(json!({})), Vec::<String>::new());
}

#[test]
fn documented_changes_are_valid() {
    for overlay in [
        json!({"global": {"defaultResources": {"registry": {"type": "external",
            "external": {"endpoint": "registry.example.com:5000/openchoreo"}}}}}),
        json!({"global": {"commonLabels": {"team": "ci", "example.com/owner": "platform"}}}),
        json!({"global": {"defaultResources": {"nodeAffinity": {"enabled": false, "values": []},
            "buildCache": {"type": "Directory"}, "workspace": {"size": "10Gi",
            "storageClassName": "fast-ssd"}, "images": {"cli": "ghcr.io/openchoreo/openchoreo-cli:v0.3.0"}}}}),
        json!({"buildNamespaces": [], "argo-workflows": {"controller": {"resources": {}}}}),
        json!({"argo-workflows": {"crds": {"keep": true}, "server": {"enabled": true,
            "image": {"registry": "", "repository": "argoproj/argocli", "tag": "v3.6.5"},
            "serviceType": "NodePort", "servicePort": 80, "authModes": ["server", "client"],
            "extraArgs": ["--x-frame-options=DENY"],
            "resources": {"limits": {"memory": "256Mi"}}}}}),
        // Upstream keys buildplane does not apply are accepted (and reported elsewhere).
        json!({"fluentBit": {"enabled": true, "anything": [1]},
            "argo-workflows": {"workflowNamespaces": ["Not_A_Namespace"],
            "workflow": {"serviceAccount": {"create": true}},
            "server": {"ingress": {"enabled": true}, "sso": {"enabled": true}}}}),
        json!({"argo-workflows": {"controller": {"resources": {"limits": {"cpu": 2}}}}}),
    ] {
        assert_eq!(problems(overlay.clone()), Vec::<String>::new(), "{overlay}");
    }
}

#[test]
fn wrong_values_name_the_key_and_what_was_expected() {
    let cases = [
        (
            json!({"global": {"defaultResources": {"registry": {"type": "s3"}}}}),
            "global.defaultResources.registry.type: must be one of local, external (got \"s3\")",
        ),
        (
            json!({"global": {"defaultResources": {"buildCache": {"type": "Dir"}}}}),
            "global.defaultResources.buildCache.type: must be one of DirectoryOrCreate, Directory, \
             FileOrCreate, File, Socket, CharDevice, BlockDevice (got \"Dir\")",
        ),
        (
            json!({"argo-workflows": {"controller": {"replicas": "two"}}}),
            "argo-workflows.controller.replicas: must be of type integer (got \"two\")",
        ),
        (
            json!({"argo-workflows": {"enabled": "yes"}}),
            "argo-workflows.enabled: must be of type boolean (got \"yes\")",
        ),
        (
            json!({"global": {"defaultResources": {"registy": {"type": "local"}}}}),
            "global.defaultResources.registy: unknown key",
        ),
        (json!({"namespaces": ["a"]}), "namespaces: unknown key"),
        (
            json!({"argo-workflows": {"crds": {"kep": true}}}),
            "argo-workflows.crds.kep: unknown key",
        ),
        (
            json!({"argo-workflows": {"server": {"replica": 2}}}),
            "argo-workflows.server.replica: unknown key",
        ),
        (
            json!({"argo-workflows": {"server": {"authModes": ["sso"]}}}),
            "argo-workflows.server.authModes[0]: must be one of server, client (got \"sso\")",
        ),
        (
            json!({"argo-workflows": {"server": {"serviceType": "ExternalName"}}}),
            "argo-workflows.server.serviceType: must be one of ClusterIP, NodePort, LoadBalancer (got \"ExternalName\")",
        ),
        (
            json!({"buildNamespaces": ["openchoreo-ci-default", "Bad_NS"]}),
            "buildNamespaces[1]: must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (got \"Bad_NS\")",
        ),
        (
            json!({"namespace": "-ci"}),
            "namespace: must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (got \"-ci\")",
        ),
        (
            json!({"global": {"defaultResources": {"workspace": {"size": "2 GB"}}}}),
            "global.defaultResources.workspace.size: must match \
             ^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[mkMGTPE]|[eE][+-]?[0-9]+)?$ (got \"2 GB\")",
        ),
        (
            json!({"global": {"defaultResources": {"ttlStrategy": {"secondsAfterFailure": -1}}}}),
            "global.defaultResources.ttlStrategy.secondsAfterFailure: must be at least 0 (got -1)",
        ),
        (
            json!({"global": {"commonLabels": {"team": 7}}}),
            "global.commonLabels.team: must be of type string (got 7)",
        ),
        (
            json!({"argo-workflows": {"controller": {"resources": "1Gi"}}}),
            "argo-workflows.controller.resources: must be of type object (got \"1Gi\")",
        ),
        (
            json!({"global": {"defaultResources": {"registry": {"type": null}}}}),
            "global.defaultResources.registry.type: is required",
        ),
    ];
    for (overlay, expected) in cases {
        assert_eq!(
            problems(overlay.clone()),
            vec![expected.to_owned()],
            "{overlay}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(json!({
        "global": {"defaultResources": {"registry": {"type": "s3"}, "typo": 1}},
        "argo-workflows": {"controller": {"logLevel": "loud"}},
    }));
    assert_eq!(
        found,
        vec![
            "argo-workflows.controller.logLevel: must be one of debug, info, warn, error (got \"loud\")",
            "global.defaultResources.registry.type: must be one of local, external (got \"s3\")",
            "global.defaultResources.typo: unknown key",
        ]
    );
}

#[test]
fn an_external_registry_needs_an_endpoint() {
    let found =
        problems(json!({"global": {"defaultResources": {"registry": {"type": "external"}}}}));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("global.defaultResources.registry.external.endpoint: "),
        "{found:?}"
    );
}

/// Argo's JSON schema (v3.6), made strict: every object definition that lists its properties
/// rejects others, so a misspelled field is an error (Argo's Go types would drop it silently).
fn argo_validator(definition: &str) -> jsonschema::Validator {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(fixture("argo/schema.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    });
    let mut definitions = schema["definitions"].clone();
    for def in definitions.as_object_mut().unwrap().values_mut() {
        if def.get("properties").is_some() && def.get("additionalProperties").is_none() {
            def["additionalProperties"] = json!(false);
        }
    }
    let wrapper = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/definitions/io.argoproj.workflow.v1alpha1.{definition}"),
        "definitions": definitions,
    });
    jsonschema::validator_for(&wrapper).unwrap()
}

fn argo_errors(validator: &jsonschema::Validator, object: &Value) -> Vec<String> {
    validator
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn rendered_cluster_workflow_templates_are_valid_argo_objects() {
    let chart = Chart::builtin();
    let ms = render_chart(&chart, &defaults(&chart).unwrap()).unwrap();
    let validator = argo_validator("ClusterWorkflowTemplate");
    let cwts: Vec<_> = ms
        .iter()
        .filter(|m| m.id.kind == "ClusterWorkflowTemplate")
        .collect();
    let names: Vec<&str> = cwts.iter().map(|m| m.id.name.as_str()).collect();
    assert_eq!(
        cwts.len(),
        4,
        "expected the four build templates, got {names:?}"
    );
    for m in cwts {
        assert_eq!(
            argo_errors(&validator, &m.object),
            Vec::<String>::new(),
            "{}",
            m.id
        );
    }
}

#[test]
fn templates_with_every_build_limit_set_are_valid_argo_objects() {
    let chart = Chart::builtin();
    let mut values = defaults(&chart).unwrap();
    buildplane::core::values::coalesce(
        &mut values,
        json!({"global": {"defaultResources": {
            "retryStrategy": {"limit": 3, "retryPolicy": "OnError",
                              "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}},
            "stepResources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            "registry": {"credentialsSecret": "push-creds"}}}}),
    );
    let validator = argo_validator("ClusterWorkflowTemplate");
    let ms = render_chart(&chart, &values).unwrap();
    let mut count = 0;
    for m in ms.iter().filter(|m| m.id.kind == "ClusterWorkflowTemplate") {
        assert_eq!(
            argo_errors(&validator, &m.object),
            Vec::<String>::new(),
            "{}",
            m.id
        );
        count += 1;
    }
    assert_eq!(count, 4);
    for (overlay, key) in [
        (
            json!({"retryStrategy": {"retryPolicy": "Sometimes"}}),
            "global.defaultResources.retryStrategy.retryPolicy",
        ),
        (
            json!({"activeDeadlineSeconds": -1}),
            "global.defaultResources.activeDeadlineSeconds",
        ),
        (
            json!({"stepResources": {"limits": {"memory": "lots"}}}),
            "global.defaultResources.stepResources.limits.memory",
        ),
        (
            json!({"registry": {"credentialsSecret": "Bad Name"}}),
            "global.defaultResources.registry.credentialsSecret",
        ),
    ] {
        let found = problems(json!({"global": {"defaultResources": overlay}}));
        assert!(found.iter().any(|p| p.starts_with(key)), "{key}: {found:?}");
    }
}

#[test]
fn workflows_of_the_fixture_builds_are_valid_argo_objects() {
    let validator = argo_validator("Workflow");
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("builds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (origin, doc) in parse_documents(&file.display().to_string(), &text).unwrap() {
            let build = build_from_value(&origin, doc).unwrap();
            let wf = ArgoEngine.build_object(&build);
            assert_eq!(
                argo_errors(&validator, &wf.object),
                Vec::<String>::new(),
                "{origin}"
            );
            count += 1;
        }
    }
    assert!(count >= 1, "no Builds in fixtures/builds");
}

/// The strict schema is not a rubber stamp: a misspelled field, a wrong type and a wrong kind
/// are each caught.
#[test]
fn the_argo_schema_rejects_broken_workflows() {
    let validator = argo_validator("Workflow");
    let good = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "w", "namespace": "n"},
        "spec": {"workflowTemplateRef": {"name": "docker", "clusterScope": true},
                 "arguments": {"parameters": [{"name": "a", "value": "b"}]}},
    });
    assert_eq!(argo_errors(&validator, &good), Vec::<String>::new());
    let mut typo = good.clone();
    typo["spec"]["workflowTemplateRef"] = json!({"name": "docker", "clusterscope": true});
    let mut wrong_type = good.clone();
    wrong_type["spec"]["arguments"]["parameters"][0]["value"] = json!(["b"]);
    let mut wrong_kind = good.clone();
    wrong_kind["kind"] = json!("WorkflowTemplate");
    for (what, bad, path) in [
        ("typo", typo, "/spec/workflowTemplateRef"),
        ("type", wrong_type, "/spec/arguments/parameters/0/value"),
        ("kind", wrong_kind, "/kind"),
    ] {
        let errors = argo_errors(&validator, &bad);
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{path}: "))),
            "{what}: {errors:?}"
        );
    }
}
