//! The Workload (`workloads.openchoreo.dev`, `openchoreo.dev/v1alpha1`) a build produces: the
//! `workload-cr` output of the `workload-create-step`, read, validated, and turned into the
//! canonical object we apply.
//!
//! The upstream CLI writes that YAML with gopkg.in/yaml.v3 from structs carrying only JSON tags,
//! so nested keys are lower-cased Go field names (`projectname`, `valuefrom`, …), empty lists are
//! written out and absent pointers are `null`. Upstream decodes it with encoding/json, whose
//! field matching is case-insensitive; [`parse_workload_cr`] does the same, schema-driven (user
//! chosen map keys such as container or endpoint names are never touched). Unlike encoding/json
//! it refuses unknown fields and keys that differ only in case instead of silently dropping or
//! overwriting, since this text comes from the built repository.
//!
//! Pure: no I/O.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub const API_VERSION: &str = "openchoreo.dev/v1alpha1";
pub const KIND: &str = "Workload";
/// Label and annotation keys in this domain are ours (inventory, spec hash); a repository's
/// Workload may not carry them.
pub const RESERVED_KEY_PREFIX: &str = "buildplane.openchoreo.dev/";

/// Why a `workload-cr` was refused. Paths use the canonical (camelCase) field names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The text is not a single YAML document.
    #[error("workload-cr: invalid YAML: {message}")]
    Yaml { message: String },
    /// A field is unknown, given twice (keys differing only in case), missing, of the wrong
    /// type, or has a value we refuse.
    #[error("workload-cr: {path}: {message}")]
    Field { path: String, message: String },
    /// `spec.owner` names another project/component than the Build's (upstream weakness 10).
    #[error(
        "workload-cr: spec.owner is {found_project}/{found_component} but the Build belongs to \
         {expected_project}/{expected_component}; refusing to write another component's Workload"
    )]
    OwnerMismatch {
        expected_project: String,
        expected_component: String,
        found_project: String,
        found_component: String,
    },
}

/// A refusal at `path`. Paths hold the output's own keys, so control characters are escaped
/// here, once for every report and condition that shows them.
fn field(path: impl Into<String>, message: impl Into<String>) -> WorkloadError {
    let escape = |s: String| crate::core::text::escape_controls(&s).into_owned();
    WorkloadError::Field {
        path: escape(path.into()),
        message: escape(message.into()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub api_version: String,
    pub kind: String,
    pub metadata: WorkloadMeta,
    pub spec: WorkloadSpec,
}

/// The metadata a Workload may carry in. Server-set fields (`creationTimestamp`, `uid`, …) are
/// dropped by [`parse_workload_cr`]; `namespace` is set by [`canonical`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub owner: WorkloadOwner,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, Container>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, WorkloadEndpoint>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connections: BTreeMap<String, WorkloadConnection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadOwner {
    #[schemars(length(min = 1))]
    pub project_name: String,
    #[schemars(length(min = 1))]
    pub component_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[schemars(length(min = 1))]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub key: String,
    /// `""` (what the CLI writes for "no value") is read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_group_ref: Option<KeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyRef>,
}

/// `{name, key}`: a key of a configuration group or of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum EndpointType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "REST")]
    Rest,
    #[serde(rename = "gRPC")]
    Grpc,
    #[serde(rename = "GraphQL")]
    GraphQl,
    #[serde(rename = "Websocket")]
    Websocket,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpoint {
    #[serde(rename = "type")]
    pub type_: EndpointType,
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConnectionType {
    #[serde(rename = "api")]
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadConnection {
    #[serde(rename = "type")]
    pub type_: ConnectionType,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    pub inject: ConnectionInject,
}

/// Required with a required `env` list (possibly empty), as in the CRD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInject {
    pub env: Vec<ConnectionEnvVar>,
}

/// Both fields required by the CRD; `value` may be `""` and is always written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEnvVar {
    pub name: String,
    pub value: String,
}

// ---------------------------------------------------------------------------------------------
// Key normalization: Go's case-insensitive field matching, driven by the serde field names of
// the structs above (read from their JSON schema, so a new field needs no second list).

/// How the keys of a value are matched, as the Workload's structs define it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A scalar, or a map/list whose keys are data (labels, params, command): left as is.
    Leaf,
    /// Accepted and dropped (server-set metadata, `status`).
    Drop,
    /// A struct's fields, by their serde names.
    Struct(Vec<(String, Shape)>),
    /// A map with user-chosen keys whose values have this shape.
    MapOf(Box<Shape>),
    ListOf(Box<Shape>),
}

/// Keys a Workload may carry that are never ours to set: written by a marshalled ObjectMeta
/// (`creationTimestamp: null`) or copied from a live object.
const SERVER_SET_METADATA: [&str; 6] = [
    "creationTimestamp",
    "resourceVersion",
    "uid",
    "generation",
    "selfLink",
    "managedFields",
];

/// Built once, from the schema schemars derives from the same attributes serde reads.
static WORKLOAD_SHAPE: LazyLock<Shape> = LazyLock::new(workload_shape);

fn workload_shape() -> Shape {
    let schema = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Workload>();
    let mut shape = Shape::of(schema.as_value());
    if let Shape::Struct(fields) = &mut shape {
        for (name, field) in fields.iter_mut() {
            if let (Shape::Struct(meta), "metadata") = (field, name.as_str()) {
                meta.extend(SERVER_SET_METADATA.map(|n| (n.to_owned(), Shape::Drop)));
            }
        }
        fields.push(("status".to_owned(), Shape::Drop));
    }
    shape
}

impl Shape {
    /// The shape a JSON schema of our types describes. An `Option` is its inner schema with
    /// `null` added to the type list, or an `anyOf` with a null alternative.
    fn of(schema: &Value) -> Shape {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            let fields = properties.iter().map(|(k, v)| (k.clone(), Shape::of(v)));
            return Shape::Struct(fields.collect());
        }
        let nested = |key: &str| schema.get(key).filter(|v| v.is_object()).map(Shape::of);
        if let Some(values) = nested("additionalProperties") {
            return Shape::wrap(values, Shape::MapOf);
        }
        if let Some(items) = nested("items") {
            return Shape::wrap(items, Shape::ListOf);
        }
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .flatten()
            .map(Shape::of)
            .find(|s| *s != Shape::Leaf)
            .unwrap_or(Shape::Leaf)
    }

    /// A map or list of leaves is itself a leaf: its keys and items are data.
    fn wrap(inner: Shape, container: fn(Box<Shape>) -> Shape) -> Shape {
        match inner {
            Shape::Leaf => Shape::Leaf,
            inner => container(Box::new(inner)),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Renames struct keys to their canonical spelling (exact match first, then ASCII
/// case-insensitive), drops `null` struct fields (Go leaves the zero value) and dropped fields,
/// and refuses unknown keys and two keys naming the same field. Values of the wrong type are
/// left for serde to report.
fn normalize(value: Value, shape: &Shape, path: &str) -> Result<Value, WorkloadError> {
    match (shape, value) {
        (Shape::Struct(fields), Value::Object(map)) => normalize_struct(fields, map, path),
        (Shape::MapOf(inner), Value::Object(map)) => {
            let mut out = Map::new();
            for (key, v) in map {
                let here = join(path, &key);
                out.insert(key, normalize(v, inner, &here)?);
            }
            Ok(Value::Object(out))
        }
        (Shape::ListOf(inner), Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| normalize(v, inner, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (_, other) => Ok(other),
    }
}

fn normalize_struct(
    fields: &[(String, Shape)],
    map: Map<String, Value>,
    path: &str,
) -> Result<Value, WorkloadError> {
    let mut out = Map::new();
    for (key, v) in map {
        let found = fields.iter().find(|(name, _)| *name == key).or_else(|| {
            fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&key))
        });
        let Some((name, inner)) = found else {
            let known: Vec<&str> = fields
                .iter()
                .filter(|(_, s)| *s != Shape::Drop)
                .map(|(n, _)| n.as_str())
                .collect();
            return Err(field(
                join(path, &key),
                format!("unknown field (expected one of: {})", known.join(", ")),
            ));
        };
        let here = join(path, name);
        if out.contains_key(name) {
            return Err(field(
                here,
                format!("given twice (as `{key}` and another spelling)"),
            ));
        }
        if v.is_null() || *inner == Shape::Drop {
            // Remember the spelling so a second one is still caught.
            out.insert(name.clone(), Value::Null);
            continue;
        }
        out.insert(name.clone(), normalize(v, inner, &here)?);
    }
    out.retain(|_, v| !v.is_null());
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------

/// Reads a `workload-cr` (one YAML document) into a validated [`Workload`].
///
/// Accepts the key spellings the upstream CLI writes (any ASCII case, as encoding/json does),
/// `null` for absent fields, empty lists and an empty `value`. Server-set metadata and `status`
/// are dropped. Errors name the field path in canonical spelling.
pub fn parse_workload_cr(yaml: &str) -> Result<Workload, WorkloadError> {
    let raw: Value = serde_saphyr::from_str(yaml).map_err(|e| WorkloadError::Yaml {
        message: e.to_string(),
    })?;
    if !raw.is_object() {
        return Err(field("(document)", "a Workload must be a mapping"));
    }
    let normalized = normalize(raw, &WORKLOAD_SHAPE, "")?;
    let mut workload: Workload = serde_path_to_error::deserialize(normalized).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        match message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            Some(name) => field(join(&path, name), "is required"),
            None => field(
                if path.is_empty() {
                    "(document)".into()
                } else {
                    path
                },
                message,
            ),
        }
    })?;
    tidy(&mut workload);
    validate(&workload)?;
    Ok(workload)
}

/// Reads the CLI's "absent" spellings as absent: an empty env `value`, an empty `valueFrom`,
/// an empty endpoint `schema`.
fn tidy(workload: &mut Workload) {
    for container in workload.spec.containers.values_mut() {
        for env in &mut container.env {
            if env.value.as_deref() == Some("") {
                env.value = None;
            }
            if env.value_from.as_ref() == Some(&EnvVarSource::default()) {
                env.value_from = None;
            }
        }
    }
    for endpoint in workload.spec.endpoints.values_mut() {
        if endpoint.schema.as_ref() == Some(&Schema::default()) {
            endpoint.schema = None;
        }
    }
}

/// Checks what the CRD checks (and a little more): apiVersion and kind, `metadata.name` a DNS-1123
/// subdomain, no label/annotation in our own domain, owner names and images non-empty, env keys
/// and reference names non-empty, ports 1–65535 (endpoint and connection types are enums, so
/// serde already refused others).
pub fn validate(workload: &Workload) -> Result<(), WorkloadError> {
    if workload.api_version != API_VERSION {
        return Err(field(
            "apiVersion",
            format!("must be {API_VERSION}, got {:?}", workload.api_version),
        ));
    }
    if workload.kind != KIND {
        return Err(field(
            "kind",
            format!("must be {KIND}, got {:?}", workload.kind),
        ));
    }
    let name = &workload.metadata.name;
    if !crate::core::naming::is_dns_subdomain(name, 253) {
        return Err(field(
            "metadata.name",
            format!("{name:?} is not a DNS-1123 subdomain (lower-case alphanumerics, '-', '.')"),
        ));
    }
    for (what, map) in [
        ("labels", &workload.metadata.labels),
        ("annotations", &workload.metadata.annotations),
    ] {
        if let Some(key) = map.keys().find(|k| k.starts_with(RESERVED_KEY_PREFIX)) {
            return Err(field(
                format!("metadata.{what}.{key}"),
                format!("keys under {RESERVED_KEY_PREFIX} are reserved for buildplane"),
            ));
        }
    }
    validate_metadata_maps(&workload.metadata)?;
    let size = serde_json::to_vec(workload).map_or(usize::MAX, |v| v.len());
    if size > MAX_WORKLOAD_BYTES {
        return Err(field(
            "(document)",
            format!("is {size} bytes; a Workload may be at most {MAX_WORKLOAD_BYTES}"),
        ));
    }
    let owner = &workload.spec.owner;
    non_empty("spec.owner.projectName", &owner.project_name)?;
    non_empty("spec.owner.componentName", &owner.component_name)?;
    for (cname, container) in &workload.spec.containers {
        let base = format!("spec.containers.{cname}");
        non_empty(&format!("{base}.image"), &container.image)?;
        for (i, env) in container.env.iter().enumerate() {
            let here = format!("{base}.env[{i}]");
            non_empty(&format!("{here}.key"), &env.key)?;
            if let Some(from) = &env.value_from {
                for (what, r) in [
                    ("configurationGroupRef", &from.configuration_group_ref),
                    ("secretRef", &from.secret_ref),
                ] {
                    if let Some(r) = r {
                        non_empty(&format!("{here}.valueFrom.{what}.name"), &r.name)?;
                        non_empty(&format!("{here}.valueFrom.{what}.key"), &r.key)?;
                    }
                }
            }
        }
    }
    for (ename, endpoint) in &workload.spec.endpoints {
        if !(1..=65535).contains(&endpoint.port) {
            return Err(field(
                format!("spec.endpoints.{ename}.port"),
                format!("must be between 1 and 65535, got {}", endpoint.port),
            ));
        }
    }
    for (cname, connection) in &workload.spec.connections {
        for (i, env) in connection.inject.env.iter().enumerate() {
            non_empty(
                &format!("spec.connections.{cname}.inject.env[{i}].name"),
                &env.name,
            )?;
        }
    }
    Ok(())
}

/// The largest Workload accepted, as JSON: well under etcd's 1.5 MiB object limit, so every
/// target (cluster, directory, Git) takes the same Workloads.
pub const MAX_WORKLOAD_BYTES: usize = 1024 * 1024;

/// The API server's limit on the sum of a object's annotation keys and values.
pub const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

/// Labels and annotations as the API server checks them (`ValidateLabels`,
/// `ValidateAnnotations`), so a Workload the cluster would refuse is refused for every target.
fn validate_metadata_maps(meta: &WorkloadMeta) -> Result<(), WorkloadError> {
    use crate::core::naming::{is_label_value, is_qualified_name};
    for (key, value) in &meta.labels {
        if !is_qualified_name(key) {
            return Err(field(
                format!("metadata.labels.{key}"),
                "is not a valid label key (an optional DNS-subdomain prefix and '/', then at \
                 most 63 of [A-Za-z0-9_.-] starting and ending alphanumeric)",
            ));
        }
        if !is_label_value(value) {
            return Err(field(
                format!("metadata.labels.{key}"),
                "is not a valid label value (at most 63 of [A-Za-z0-9_.-] starting and ending \
                 alphanumeric)",
            ));
        }
    }
    let mut total = 0usize;
    for (key, value) in &meta.annotations {
        if !is_qualified_name(&key.to_ascii_lowercase()) {
            return Err(field(
                format!("metadata.annotations.{key}"),
                "is not a valid annotation key (an optional DNS-subdomain prefix and '/', then \
                 a name of at most 63 of [A-Za-z0-9_.-])",
            ));
        }
        total += key.len() + value.len();
    }
    if total > MAX_ANNOTATION_BYTES {
        return Err(field(
            "metadata.annotations",
            format!("total {total} bytes; the API server allows at most {MAX_ANNOTATION_BYTES}"),
        ));
    }
    Ok(())
}

fn non_empty(path: &str, value: &str) -> Result<(), WorkloadError> {
    if value.trim().is_empty() {
        Err(field(path, "must not be empty"))
    } else {
        Ok(())
    }
}

/// The object to apply: `metadata.namespace` = `namespace` (the Build's organization, as
/// upstream forces it), owner checked against the Build's `(project, component)` when given
/// (upstream applies whatever owner the repository wrote, weakness 10), camelCase keys, sorted
/// maps, no empty collections and no nulls (required fields such as a connection's `inject.env`
/// are kept even when empty). Serialize it with `crate::core::manifest`.
pub fn canonical(
    mut workload: Workload,
    namespace: &str,
    expected_owner: Option<(&str, &str)>,
) -> Result<Value, WorkloadError> {
    if !crate::core::naming::is_dns_label(namespace) {
        return Err(field(
            "metadata.namespace",
            format!("{namespace:?} is not a valid namespace"),
        ));
    }
    tidy(&mut workload);
    validate(&workload)?;
    if let Some((project, component)) = expected_owner {
        let owner = &workload.spec.owner;
        if owner.project_name != project || owner.component_name != component {
            return Err(WorkloadError::OwnerMismatch {
                expected_project: project.to_owned(),
                expected_component: component.to_owned(),
                found_project: owner.project_name.clone(),
                found_component: owner.component_name.clone(),
            });
        }
    }
    workload.metadata.namespace = Some(namespace.to_owned());
    serde_json::to_value(&workload).map_err(|e| field("(document)", e.to_string()))
}

/// Whose `w` is, as written in it: `(namespace, project, component)`; the namespace is None
/// when the object does not say (a file written without one).
fn owner_key(w: &Value) -> Option<(Option<&str>, &str, &str)> {
    let text = |p: &str| w.pointer(p).and_then(Value::as_str);
    Some((
        text("/metadata/namespace"),
        text("/spec/owner/projectName")?,
        text("/spec/owner/componentName")?,
    ))
}

/// Why `existing`, what a target already holds where `ours` goes, must not be overwritten by
/// `ours`: it is another component's Workload (another owner, or another organization's).
/// None when it is this component's, or names no owner at all.
pub fn foreign_owner(existing: &Value, ours: &Value) -> Option<String> {
    let (ns, project, component) = owner_key(existing)?;
    let (our_ns, our_project, our_component) = owner_key(ours)?;
    let same_ns = ns.is_none() || our_ns.is_none() || ns == our_ns;
    if same_ns && project == our_project && component == our_component {
        return None;
    }
    let name = existing
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let esc = |s: &str| crate::core::text::escape_controls(s).into_owned();
    let place = match ns {
        Some(ns) => format!("{}/{}", esc(ns), esc(name)),
        None => esc(name),
    };
    Some(format!(
        "Workload {place} belongs to component {}/{}; the build of {}/{} does not overwrite it",
        esc(project),
        esc(component),
        our_project,
        our_component
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `workload-cr` value of argo-workflow-status.md §3, as the upstream CLI writes it.
    const CLI_OUTPUT: &str = "\
apiVersion: openchoreo.dev/v1alpha1
kind: Workload
metadata:
    name: reading-list-service
spec:
    owner:
        projectname: default
        componentname: reading-list-service
    containers:
        main:
            image: localhost:30003/default-reading-list-service:default-4f2a9c1e
            command: []
            args: []
            env: []
    endpoints:
        rest-api:
            type: REST
            port: 8080
            schema: null
";
    const IMAGE: &str = "localhost:30003/default-reading-list-service:default-4f2a9c1e";

    fn err_path(yaml: &str) -> (String, String) {
        match parse_workload_cr(yaml).unwrap_err() {
            WorkloadError::Field { path, message } => (path, message),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn the_cli_output_of_the_reference_canonicalizes_to_camel_case() {
        let w = parse_workload_cr(CLI_OUTPUT).unwrap();
        assert_eq!(w.spec.owner.project_name, "default");
        assert_eq!(w.spec.containers["main"].image, IMAGE);
        assert_eq!(w.spec.endpoints["rest-api"].type_, EndpointType::Rest);
        let v = canonical(w, "default", Some(("default", "reading-list-service"))).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "openchoreo.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "reading-list-service", "namespace": "default"},
                "spec": {
                    "owner": {"projectName": "default", "componentName": "reading-list-service"},
                    "containers": {"main": {"image": IMAGE}},
                    "endpoints": {"rest-api": {"type": "REST", "port": 8080}}
                }
            })
        );
        // And it is a Kubernetes object the manifest layer takes as is.
        let m = crate::core::manifest::Manifest::new(v).unwrap();
        assert_eq!(m.id.to_string(), "Workload/default/reading-list-service");
    }

    #[test]
    fn the_reference_workflow_output_parses() {
        let wf: Value =
            serde_saphyr::from_str(include_str!("../../fixtures/argo-status/succeeded.yaml"))
                .unwrap();
        let cr = crate::engine::argo::status::artifacts(&wf)
            .unwrap()
            .workload_cr
            .unwrap();
        assert_eq!(
            parse_workload_cr(&cr).unwrap(),
            parse_workload_cr(CLI_OUTPUT).unwrap()
        );
    }

    #[test]
    fn mixed_case_and_every_field() {
        let yaml = r#"
APIVERSION: openchoreo.dev/v1alpha1
Kind: Workload
metadata:
  name: greeter
  creationTimestamp: null
  Labels: {Team: a}
spec:
  Owner: {ProjectName: p, COMPONENTNAME: c}
  containers:
    Main:
      image: img:1
      command: [/bin/app]
      args: [--port, "8080"]
      env:
        - {key: A, value: "1"}
        - {key: B, value: "", valuefrom: {configurationgroupref: {name: cg, key: k}, secretref: null}}
        - {KEY: C, valueFrom: {SecretRef: {Name: s, KEY: pw}}}
        - {key: D, value: "", valuefrom: null}
  endpoints:
    grpc-api: {Type: gRPC, PORT: 9090, schema: {type: gRPC, content: "syntax = \"proto3\";"}}
    ws: {type: Websocket, port: 1, schema: {type: "", content: ""}}
  connections:
    db:
      type: api
      params: {ProjectName: x, Key: v}
      inject: {env: [{name: DB_URL, value: "{{ .url }}"}, {Name: EMPTY, VALUE: ""}]}
    none: {type: api, inject: {env: []}}
status: {}
"#;
        let w = parse_workload_cr(yaml).unwrap();
        let v = canonical(w, "org", Some(("p", "c"))).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "openchoreo.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "greeter", "namespace": "org", "labels": {"Team": "a"}},
                "spec": {
                    "owner": {"projectName": "p", "componentName": "c"},
                    "containers": {"Main": {
                        "image": "img:1",
                        "command": ["/bin/app"],
                        "args": ["--port", "8080"],
                        "env": [
                            {"key": "A", "value": "1"},
                            {"key": "B", "valueFrom": {"configurationGroupRef": {"name": "cg", "key": "k"}}},
                            {"key": "C", "valueFrom": {"secretRef": {"name": "s", "key": "pw"}}},
                            {"key": "D"}
                        ]
                    }},
                    "endpoints": {
                        "grpc-api": {"type": "gRPC", "port": 9090,
                                     "schema": {"type": "gRPC", "content": "syntax = \"proto3\";"}},
                        "ws": {"type": "Websocket", "port": 1}
                    },
                    "connections": {
                        "db": {"type": "api", "params": {"Key": "v", "ProjectName": "x"},
                               "inject": {"env": [{"name": "DB_URL", "value": "{{ .url }}"},
                                                  {"name": "EMPTY", "value": ""}]}},
                        "none": {"type": "api", "inject": {"env": []}}
                    }
                }
            })
        );
    }

    #[test]
    fn another_components_workload_is_foreign() {
        let w = |ns: Option<&str>, p: &str, c: &str| {
            let mut v = json!({
                "metadata": {"name": "pay"},
                "spec": {"owner": {"projectName": p, "componentName": c}}
            });
            if let Some(ns) = ns {
                v["metadata"]["namespace"] = json!(ns);
            }
            v
        };
        let ours = w(Some("acme"), "shop", "cart");
        assert_eq!(foreign_owner(&w(Some("acme"), "shop", "cart"), &ours), None);
        assert_eq!(foreign_owner(&w(None, "shop", "cart"), &ours), None);
        assert_eq!(foreign_owner(&json!({"kind": "ConfigMap"}), &ours), None);
        assert_eq!(
            foreign_owner(&w(Some("acme"), "shop", "pay"), &ours).unwrap(),
            "Workload acme/pay belongs to component shop/pay; the build of shop/cart does not \
             overwrite it"
        );
        assert!(foreign_owner(&w(Some("acme"), "other", "cart"), &ours).is_some());
        assert!(foreign_owner(&w(Some("globex"), "shop", "cart"), &ours).is_some());
    }

    #[test]
    fn labels_and_annotations_are_checked_as_the_api_server_does() {
        let with_meta = |meta: Value| {
            let mut v: Value = serde_saphyr::from_str(CLI_OUTPUT).unwrap();
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .extend(meta.as_object().unwrap().clone());
            serde_json::to_string(&v).unwrap()
        };
        let ok = with_meta(json!({
            "labels": {"app.kubernetes.io/name": "pay", "tier": ""},
            "annotations": {"example.com/Note": "any text at all: ✓"}
        }));
        parse_workload_cr(&ok).unwrap();
        let big = "x".repeat(MAX_ANNOTATION_BYTES);
        for (meta, path) in [
            (
                json!({"labels": {"bad key": "v"}}),
                "metadata.labels.bad key",
            ),
            (json!({"labels": {"a/b/c": "v"}}), "metadata.labels.a/b/c"),
            (json!({"labels": {"k": "bad value"}}), "metadata.labels.k"),
            (
                json!({"labels": {"k": "x".repeat(64)}}),
                "metadata.labels.k",
            ),
            (
                json!({"labels": {"\u{1b}[2J": "v"}}),
                "metadata.labels.\\e[2J",
            ),
            (
                json!({"annotations": {"-x": "v"}}),
                "metadata.annotations.-x",
            ),
            (json!({"annotations": {"n": big}}), "metadata.annotations"),
        ] {
            let (p, _) = err_path(&with_meta(meta.clone()));
            assert_eq!(p, path, "{meta}");
        }
        let huge = with_meta(json!({"annotations": {
            "a": "x".repeat(200_000), "b": "x".repeat(50_000)
        }}));
        parse_workload_cr(&huge).unwrap();
        let mut too_big: Value = serde_saphyr::from_str(CLI_OUTPUT).unwrap();
        too_big["spec"]["containers"]["main"]["args"] = json!(vec!["x".repeat(100_000); 11]);
        let (p, m) = err_path(&serde_json::to_string(&too_big).unwrap());
        assert_eq!(p, "(document)");
        assert!(m.contains("at most 1048576"), "{m}");
    }

    #[test]
    fn owner_mismatch_is_refused() {
        let w = parse_workload_cr(CLI_OUTPUT).unwrap();
        let e = canonical(w.clone(), "default", Some(("default", "other-component"))).unwrap_err();
        assert_eq!(
            e,
            WorkloadError::OwnerMismatch {
                expected_project: "default".into(),
                expected_component: "other-component".into(),
                found_project: "default".into(),
                found_component: "reading-list-service".into(),
            }
        );
        assert!(
            e.to_string().contains("another component's Workload"),
            "{e}"
        );
        assert!(
            canonical(
                w.clone(),
                "default",
                Some(("Default", "reading-list-service"))
            )
            .is_err()
        );
        assert!(canonical(w.clone(), "default", None).is_ok());
        assert!(canonical(w, "Not A Namespace", None).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_their_path() {
        let cases: [(&str, &str, &str, &str); 10] = [
            (
                "port: 8080",
                "port: 0",
                "spec.endpoints.rest-api.port",
                "between 1 and 65535",
            ),
            (
                "port: 8080",
                "port: 65536",
                "spec.endpoints.rest-api.port",
                "between 1 and 65535",
            ),
            (
                "port: 8080",
                "port: \"8080\"",
                "spec.endpoints.rest-api.port",
                "invalid type",
            ),
            (
                "type: REST",
                "type: rest",
                "spec.endpoints.rest-api.type",
                "unknown variant `rest`",
            ),
            (
                "type: REST",
                "type: SOAP",
                "spec.endpoints.rest-api.type",
                "unknown variant",
            ),
            (
                "image: localhost:30003/default-reading-list-service:default-4f2a9c1e",
                "image: \"\"",
                "spec.containers.main.image",
                "must not be empty",
            ),
            (
                "            image: localhost:30003/default-reading-list-service:default-4f2a9c1e\n",
                "",
                "spec.containers.main.image",
                "is required",
            ),
            (
                "projectname: default",
                "projectname: \"\"",
                "spec.owner.projectName",
                "must not be empty",
            ),
            (
                "name: reading-list-service",
                "name: Reading_List",
                "metadata.name",
                "DNS-1123",
            ),
            (
                "schema: null",
                "schemas: null",
                "spec.endpoints.rest-api.schemas",
                "unknown field",
            ),
        ];
        for (from, to, path, message) in cases {
            assert!(CLI_OUTPUT.contains(from), "{from}");
            let yaml = CLI_OUTPUT.replacen(from, to, 1);
            let (p, m) = err_path(&yaml);
            assert_eq!(p, path, "{to}: {m}");
            assert!(m.contains(message), "{to}: {m}");
            let shown = parse_workload_cr(&yaml).unwrap_err().to_string();
            assert!(
                shown.starts_with(&format!("workload-cr: {path}: ")),
                "{shown}"
            );
        }
    }

    #[test]
    fn documents_that_are_not_workloads_are_refused() {
        let (p, _) = err_path(&CLI_OUTPUT.replace("kind: Workload", "kind: Deployment"));
        assert_eq!(p, "kind");
        let (p, _) = err_path(&CLI_OUTPUT.replace("openchoreo.dev/v1alpha1", "apps/v1"));
        assert_eq!(p, "apiVersion");
        let (p, _) = err_path(&CLI_OUTPUT.replace("spec:\n", "spec: {}\nx:\n"));
        assert_eq!(p, "x");
        assert!(matches!(
            parse_workload_cr("- a\n- b\n").unwrap_err(),
            WorkloadError::Field { .. }
        ));
        assert!(matches!(
            parse_workload_cr("a: [").unwrap_err(),
            WorkloadError::Yaml { .. }
        ));
        let (p, m) =
            err_path("apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n");
        assert_eq!((p.as_str(), m.as_str()), ("spec", "is required"));
    }

    #[test]
    fn two_spellings_of_one_field_are_refused() {
        let yaml = CLI_OUTPUT.replace(
            "projectname: default",
            "projectname: default\n        projectName: other",
        );
        let (p, m) = err_path(&yaml);
        assert_eq!(p, "spec.owner.projectName");
        assert!(m.contains("twice"), "{m}");
        // Even when the first spelling is null.
        let yaml = CLI_OUTPUT.replace(
            "schema: null",
            "schema: null\n            Schema: {type: REST}",
        );
        assert_eq!(err_path(&yaml).0, "spec.endpoints.rest-api.schema");
    }

    #[test]
    fn user_chosen_keys_are_kept_and_reserved_labels_refused() {
        // A container named like a field is still a container name.
        let yaml = CLI_OUTPUT.replace("main:", "Image:");
        let w = parse_workload_cr(&yaml).unwrap();
        assert!(w.spec.containers.contains_key("Image"));

        let yaml = CLI_OUTPUT.replacen(
            "name: reading-list-service\n",
            "name: reading-list-service\n    labels: {buildplane.openchoreo.dev/inventory: builds}\n",
            1,
        );
        assert_eq!(
            err_path(&yaml).0,
            "metadata.labels.buildplane.openchoreo.dev/inventory"
        );
    }

    #[test]
    fn connection_requirements() {
        let base = CLI_OUTPUT.to_owned() + "    connections:\n        db:\n            type: api\n";
        let (p, m) = err_path(&base);
        assert_eq!(
            (p.as_str(), m.as_str()),
            ("spec.connections.db.inject", "is required")
        );
        let (p, _) = err_path(&(base.clone() + "            inject: {}\n"));
        assert_eq!(p, "spec.connections.db.inject.env");
        let (p, _) = err_path(&base.replace("type: api", "type: API"));
        assert_eq!(p, "spec.connections.db.type");
        let (p, m) = err_path(&(base + "            inject: {env: [{name: \"\", value: x}]}\n"));
        assert_eq!(
            (p.as_str(), m.as_str()),
            (
                "spec.connections.db.inject.env[0].name",
                "must not be empty"
            )
        );
    }

    /// The field names serde's derive reads for `T`, straight from its `deserialize_struct` call.
    fn serde_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
        struct Probe(Option<&'static [&'static str]>);
        impl<'de> serde::Deserializer<'de> for &mut Probe {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(
                self,
                _: V,
            ) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = Some(fields);
                Err(serde::de::Error::custom("fields read"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut probe = Probe(None);
        let _ = T::deserialize(&mut probe);
        probe
            .0
            .expect("derived Deserialize of a struct calls deserialize_struct")
    }

    /// Every struct position of the shape, as `a.b`, `m.*` (map values) and `l[]` (list items).
    fn struct_paths(shape: &Shape, path: &str, out: &mut BTreeMap<String, Vec<String>>) {
        match shape {
            Shape::Struct(fields) => {
                let names = fields.iter().filter(|(_, s)| *s != Shape::Drop);
                out.insert(path.to_owned(), names.map(|(n, _)| n.clone()).collect());
                for (name, inner) in fields {
                    struct_paths(inner, &join(path, name), out);
                }
            }
            Shape::MapOf(inner) => struct_paths(inner, &join(path, "*"), out),
            Shape::ListOf(inner) => struct_paths(inner, &format!("{path}[]"), out),
            Shape::Leaf | Shape::Drop => {}
        }
    }

    fn shape_at<'a>(shape: &'a Shape, path: &str) -> &'a Shape {
        let mut here = shape;
        for segment in path.split('.').filter(|s| !s.is_empty()) {
            let (name, list) = match segment.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            here = match (here, name) {
                (Shape::MapOf(inner), "*") => inner,
                (Shape::Struct(fields), _) => &fields.iter().find(|(n, _)| n == name).unwrap().1,
                (other, _) => panic!("{path}: {other:?} has no {name}"),
            };
            if list {
                let Shape::ListOf(inner) = here else {
                    panic!("{path}: not a list")
                };
                here = inner;
            }
        }
        here
    }

    #[test]
    fn every_serde_field_of_every_struct_is_accepted_in_any_case() {
        let structs: [(&str, &[&str]); 14] = [
            ("", serde_fields::<Workload>()),
            ("metadata", serde_fields::<WorkloadMeta>()),
            ("spec", serde_fields::<WorkloadSpec>()),
            ("spec.owner", serde_fields::<WorkloadOwner>()),
            ("spec.containers.*", serde_fields::<Container>()),
            ("spec.containers.*.env[]", serde_fields::<EnvVar>()),
            (
                "spec.containers.*.env[].valueFrom",
                serde_fields::<EnvVarSource>(),
            ),
            (
                "spec.containers.*.env[].valueFrom.configurationGroupRef",
                serde_fields::<KeyRef>(),
            ),
            (
                "spec.containers.*.env[].valueFrom.secretRef",
                serde_fields::<KeyRef>(),
            ),
            ("spec.endpoints.*", serde_fields::<WorkloadEndpoint>()),
            ("spec.endpoints.*.schema", serde_fields::<Schema>()),
            ("spec.connections.*", serde_fields::<WorkloadConnection>()),
            (
                "spec.connections.*.inject",
                serde_fields::<ConnectionInject>(),
            ),
            (
                "spec.connections.*.inject.env[]",
                serde_fields::<ConnectionEnvVar>(),
            ),
        ];
        // The shape knows exactly these structs, each with exactly serde's fields.
        let mut known = BTreeMap::new();
        struct_paths(&WORKLOAD_SHAPE, "", &mut known);
        let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, fields) in structs {
            let mut names: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            names.sort();
            expected.insert(path.to_owned(), names);
        }
        for names in known.values_mut() {
            names.sort();
        }
        assert_eq!(known, expected);
        // And each field, spelled in upper case where its struct stands, comes back canonical.
        for (path, fields) in structs {
            let shape = shape_at(&WORKLOAD_SHAPE, path);
            for name in fields {
                let mut doc = Map::new();
                doc.insert(name.to_uppercase(), json!("x"));
                let out = normalize(Value::Object(doc), shape, path).unwrap();
                assert_eq!(out, json!({ *name: "x" }), "{path} {name}");
            }
        }
    }

    #[test]
    fn server_set_metadata_and_status_are_dropped() {
        let yaml = CLI_OUTPUT.replace(
            "    name: reading-list-service\n",
            "    name: reading-list-service\n    UID: abc\n    managedFields: [{manager: x}]\n",
        ) + "status: {phase: x}\n";
        assert_eq!(
            parse_workload_cr(&yaml).unwrap(),
            parse_workload_cr(CLI_OUTPUT).unwrap()
        );
        let (p, m) = err_path(&CLI_OUTPUT.replace("spec:\n", "statuses: {}\nspec:\n"));
        assert_eq!(p, "statuses");
        assert!(!m.contains("status,") && !m.contains("uid"), "{m}");
    }

    #[test]
    fn json_schema_is_derivable() {
        let schema = serde_json::to_value(schemars::schema_for!(Workload)).unwrap();
        let text = schema.to_string();
        for word in [
            "projectName",
            "configurationGroupRef",
            "gRPC",
            "Websocket",
            "65535",
        ] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
    }
}
