//! Argo's JSON schema (v3.6.10, `fixtures/argo/schema.json`, embedded), made strict: every
//! object definition that lists its properties rejects others, so a misspelled field is an
//! error (Argo's Go types would drop it silently). With the Kubernetes types of the
//! prerequisites, what a per-build template overlay renders is checked against it before
//! anything is printed or applied. Compiled once, on first use.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::{Value, json};
use std::sync::OnceLock;

const SCHEMA: &str = include_str!("../../../fixtures/argo/schema.json");

fn workflow_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the embedded schema is JSON");
        let mut definitions = schema["definitions"].clone();
        for def in definitions
            .as_object_mut()
            .expect("definitions is a map")
            .values_mut()
        {
            if def.get("properties").is_some() && def.get("additionalProperties").is_none() {
                def["additionalProperties"] = json!(false);
            }
        }
        let wrapper = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow",
            "definitions": definitions,
        });
        jsonschema::validator_for(&wrapper).expect("Argo's schema compiles")
    })
}

fn typed<T: serde::de::DeserializeOwned>(object: &Value) -> Result<(), String> {
    serde_path_to_error::deserialize::<_, T>(object.clone())
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// The first problem of an object of `kind` against its schema or type.
pub fn validate(kind: &str, object: &Value) -> Result<(), String> {
    match kind {
        "Workflow" => match workflow_validator().iter_errors(object).next() {
            None => Ok(()),
            Some(e) => {
                let at = e.instance_path().to_string();
                let at = at.trim_start_matches('/').replace('/', ".");
                Err(format!("{at}: {e} (Argo's Workflow schema)"))
            }
        },
        "Namespace" => typed::<Namespace>(object),
        "ServiceAccount" => typed::<ServiceAccount>(object),
        "Role" => typed::<Role>(object),
        "RoleBinding" => typed::<RoleBinding>(object),
        other => Err(format!(
            "{other} is not a kind buildplane renders per build"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflows_and_prerequisites_are_checked_with_their_key_paths() {
        let wf = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"workflowTemplateRef": {"name": "docker", "clusterScope": true},
                "podGC": {"strategy": "OnPodSuccess"}}});
        assert_eq!(validate("Workflow", &wf), Ok(()));
        let mut bad = wf.clone();
        bad["spec"]["podGc"] = json!({"strategy": "OnPodSuccess"});
        let e = validate("Workflow", &bad).unwrap_err();
        assert!(e.starts_with("spec: ") && e.contains("podGc"), "{e}");
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "s"}, "automountServiceAccountToken": "no"});
        let e = validate("ServiceAccount", &sa).unwrap_err();
        assert!(e.starts_with("automountServiceAccountToken: "), "{e}");
    }
}
