//! CustomResourceDefinitions generated from our Rust types, so the schema the cluster enforces
//! is the one the code reads and writes. The generated YAML is committed under `charts/` and a
//! test keeps it equal to what the types produce.

use super::buildplane::{BuildPlaneSpec, BuildStatus};
use super::spec::BuildSpec;
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

/// Where the committed Build CRD lives.
pub const BUILD_CRD_PATH: &str = "charts/control-plane/crds/builds.openchoreo.dev.yaml";
/// Where the committed BuildPlane CRD lives.
pub const BUILDPLANE_CRD_PATH: &str = "charts/control-plane/crds/buildplanes.openchoreo.dev.yaml";

/// A namespaced `openchoreo.dev/v1alpha1` CRD with a status subresource, as upstream's (no short
/// names), with printer `columns` when not empty. Loads on Kubernetes 1.20 (no CEL).
fn crd(kind: &str, plural: &str, description: &str, spec: Value, status: Value) -> Value {
    crd_with_columns(kind, plural, description, spec, status, json!([]))
}

fn crd_with_columns(
    kind: &str,
    plural: &str,
    description: &str,
    spec: Value,
    status: Value,
    columns: Value,
) -> Value {
    let mut crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.openchoreo.dev"),
            "labels": {"app.kubernetes.io/managed-by": "buildplane", "app.kubernetes.io/part-of": "openchoreo"},
        },
        "spec": {
            "group": "openchoreo.dev",
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_lowercase()},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": description,
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                }},
            }],
        },
    });
    if columns.as_array().is_some_and(|c| !c.is_empty()) {
        crd["spec"]["versions"][0]["additionalPrinterColumns"] = columns;
    }
    crd
}

/// What `kubectl get builds` shows besides the name: the phase word, the image built, the
/// BuildPlane, the age.
fn build_columns() -> Value {
    json!([
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Image", "type": "string", "jsonPath": ".status.imageStatus.image"},
        {"name": "Plane", "type": "string", "jsonPath": ".status.buildPlaneRef.name"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])
}

/// `workloads.openchoreo.dev` (reference §2.3), with the schema of [`WorkloadSpec`].
pub fn workload_crd() -> Value {
    crd(
        "Workload",
        "workloads",
        "Workload is what a build produced for the control plane: the component's containers, endpoints and connections.",
        structural_schema::<WorkloadSpec>(),
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    )
}

/// `builds.openchoreo.dev` (reference §2.1): the spec buildplane reads from files, the status
/// the controller writes.
pub fn build_crd() -> Value {
    crd_with_columns(
        "Build",
        "builds",
        "Build is one build of a component from a Git revision with a build template; its status carries upstream's conditions and the built image.",
        structural_schema::<BuildSpec>(),
        structural_schema::<BuildStatus>(),
        build_columns(),
    )
}

/// `buildplanes.openchoreo.dev`: which cluster runs the builds of its namespace.
pub fn buildplane_crd() -> Value {
    crd(
        "BuildPlane",
        "buildplanes",
        "BuildPlane names the cluster that runs the builds of its namespace: a Secret holding its kubeconfig.",
        structural_schema::<BuildPlaneSpec>(),
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    )
}

/// The three CRDs of the control plane, with the paths they are committed at.
pub fn control_plane_crds() -> Vec<(&'static str, Value)> {
    vec![
        (BUILD_CRD_PATH, build_crd()),
        (BUILDPLANE_CRD_PATH, buildplane_crd()),
        (WORKLOAD_CRD_PATH, workload_crd()),
    ]
}
