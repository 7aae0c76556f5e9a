//! CustomResourceDefinitions generated from our Rust types, so the schema the cluster enforces
//! is the one the code reads and writes. The generated YAML is committed under `charts/` and a
//! test keeps it equal to what the types produce.

use super::workload::WorkloadSpec;
use kube::core::schema::StructuralSchemaRewriter;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// Where the committed Workload CRD lives.
pub const WORKLOAD_CRD_PATH: &str = "charts/control-plane/crds/workloads.openchoreo.dev.yaml";

/// The structural OpenAPI v3 schema of `T` (no `$ref`, no `$schema`, no titles).
pub fn structural_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(StructuralSchemaRewriter)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<T>()).expect("schemas serialize");
    if let Some(map) = schema.as_object_mut() {
        map.remove("title");
        map.remove("$schema");
        map.remove("definitions");
        map.remove("$defs");
    }
    schema
}

/// `workloads.openchoreo.dev`: namespaced, `v1alpha1`, status subresource, as upstream's CRD
/// (reference §2.3), with the schema of [`WorkloadSpec`]. Loads on Kubernetes 1.20 (no CEL).
pub fn workload_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "workloads.openchoreo.dev",
            "labels": {"app.kubernetes.io/managed-by": "buildplane", "app.kubernetes.io/part-of": "openchoreo"},
        },
        "spec": {
            "group": "openchoreo.dev",
            "names": {"kind": "Workload", "listKind": "WorkloadList", "plural": "workloads", "singular": "workload"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "Workload is what a build produced for the control plane: the component's containers, endpoints and connections.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": structural_schema::<WorkloadSpec>(),
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                }},
            }],
        },
    })
}
