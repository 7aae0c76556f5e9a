//! Rendered objects, their identity (`Kind/ns/name`) and the one canonical output order.
//!
//! Objects are kept as `serde_json::Value` with sorted keys (serde_json's default map), which is
//! what makes every output byte-stable: the same objects always serialize to the same bytes.

use serde_json::{Map, Value};
use std::fmt;

/// Identity of one Kubernetes object, printed as `Kind/namespace/name` (or `Kind/name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl ObjectId {
    /// kubectl's `-o name` form: the lower-case kind, `.group` unless the core API, `/name`
    /// (`workflow.argoproj.io/build-1`, `namespace/openchoreo-ci-acme`); no namespace, as
    /// kubectl prints it.
    pub fn kubectl_name(&self) -> String {
        let kind = self.kind.to_lowercase();
        match self.api_version.split_once('/') {
            Some((group, _)) => format!("{kind}.{group}/{}", self.name),
            None => format!("{kind}/{}", self.name),
        }
    }
}

/// An object as the server returned it, for printing: without `metadata.managedFields`, as
/// kubectl prints objects unless asked for them.
pub fn without_managed_fields(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    object
}

/// Why a value could not be taken as a Kubernetes object.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    /// The document is not a mapping.
    #[error("a Kubernetes object must be a mapping")]
    NotAnObject,
    /// `apiVersion`, `kind` or `metadata.name` is missing or not a string.
    #[error("missing or empty {0}")]
    MissingField(&'static str),
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: ObjectId,
    pub object: Value,
}

impl Manifest {
    /// Takes a rendered value as an object, reading its identity from it.
    pub fn new(object: Value) -> Result<Self, ManifestError> {
        let map = object.as_object().ok_or(ManifestError::NotAnObject)?;
        let text = |map: &Map<String, Value>, key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let api_version =
            text(map, "apiVersion").ok_or(ManifestError::MissingField("apiVersion"))?;
        let kind = text(map, "kind").ok_or(ManifestError::MissingField("kind"))?;
        let meta = map
            .get("metadata")
            .and_then(Value::as_object)
            .ok_or(ManifestError::MissingField("metadata.name"))?;
        let name = text(meta, "name").ok_or(ManifestError::MissingField("metadata.name"))?;
        let namespace = text(meta, "namespace");
        Ok(Manifest {
            id: ObjectId {
                api_version,
                kind,
                namespace,
                name,
            },
            object,
        })
    }

    /// Where this object stands in the apply order (lower first); see [`KIND_ORDER`].
    pub fn stage_rank(&self) -> usize {
        kind_rank(&self.id.kind)
    }
}

/// Apply stages, in order: each stage is applied (and CRDs waited for) before the next.
/// [`KIND_ORDER`] assigns every kind its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Stage {
    /// CustomResourceDefinitions; wait until Established.
    Crds,
    Namespaces,
    /// ServiceAccounts, RBAC, ConfigMaps, Secrets.
    Identity,
    /// Deployments, ClusterWorkflowTemplates and every other kind.
    Workloads,
    /// Argo Workflows: the builds themselves.
    Builds,
}

/// The order of kinds, as data, and the apply stage of each: CRDs, Namespaces, ServiceAccounts,
/// RBAC, ConfigMaps and Secrets, Deployments, ClusterWorkflowTemplates, then Workflows. Unknown
/// kinds take the empty entry, between the Deployments and the templates that may depend on
/// them. Output order and apply stages both read this one table, so they cannot disagree.
pub const KIND_ORDER: &[(&str, Stage)] = &[
    ("CustomResourceDefinition", Stage::Crds),
    ("Namespace", Stage::Namespaces),
    ("ServiceAccount", Stage::Identity),
    ("ClusterRole", Stage::Identity),
    ("ClusterRoleBinding", Stage::Identity),
    ("Role", Stage::Identity),
    ("RoleBinding", Stage::Identity),
    ("ConfigMap", Stage::Identity),
    ("Secret", Stage::Identity),
    ("Service", Stage::Workloads),
    ("Deployment", Stage::Workloads),
    ("", Stage::Workloads),
    ("ClusterWorkflowTemplate", Stage::Workloads),
    ("WorkflowTemplate", Stage::Workloads),
    ("Workflow", Stage::Builds),
];

/// Rank of a kind in [`KIND_ORDER`]; unknown kinds take the rank of the empty entry.
pub fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|(k, _)| *k == kind)
        .or_else(|| KIND_ORDER.iter().position(|(k, _)| k.is_empty()))
        .unwrap_or(KIND_ORDER.len())
}

/// The apply stage of a kind: its [`KIND_ORDER`] entry's.
pub fn stage_of(kind: &str) -> Stage {
    KIND_ORDER
        .get(kind_rank(kind))
        .map_or(Stage::Workloads, |(_, stage)| *stage)
}

/// The canonical order of two objects: kind rank, then kind, namespace, name.
pub fn canonical_cmp(a: &Manifest, b: &Manifest) -> std::cmp::Ordering {
    (a.stage_rank(), &a.id.kind, &a.id.namespace, &a.id.name).cmp(&(
        b.stage_rank(),
        &b.id.kind,
        &b.id.namespace,
        &b.id.name,
    ))
}

/// Sorts objects into the canonical order: kind rank, then kind, namespace, name.
pub fn sort(manifests: &mut [Manifest]) {
    manifests.sort_by(|a, b| {
        (a.stage_rank(), &a.id.kind, &a.id.namespace, &a.id.name).cmp(&(
            b.stage_rank(),
            &b.id.kind,
            &b.id.namespace,
            &b.id.name,
        ))
    });
}

/// Serialization failed (only for values YAML cannot represent, which rendering never makes).
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize {id}: {message}")]
pub struct SerializeError {
    pub id: String,
    pub message: String,
}

fn yaml_options() -> serde_saphyr::SerializerOptions {
    // Multi-line strings (scripts) as `|` blocks; long single lines stay plain.
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = true;
    options.folded_wrap_chars = usize::MAX;
    options
}

/// One object as a YAML document (no `---`).
pub fn to_yaml(manifest: &Manifest) -> Result<String, SerializeError> {
    serde_saphyr::to_string_with_options(&manifest.object, yaml_options()).map_err(|e| {
        SerializeError {
            id: manifest.id.to_string(),
            message: e.to_string(),
        }
    })
}

/// A multi-document YAML stream, each document introduced by `---`.
pub fn to_yaml_stream(manifests: &[Manifest]) -> Result<String, SerializeError> {
    let docs = super::par::map(manifests, to_yaml);
    let mut out = String::with_capacity(manifests.len() * 1400);
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&doc?);
    }
    Ok(out)
}

/// A `v1/List` holding every object, as pretty JSON with a final newline.
pub fn to_json_list(manifests: &[Manifest]) -> String {
    let items: Vec<&Value> = manifests.iter().map(|m| &m.object).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let mut s = serde_json::to_string_pretty(&list).expect("JSON values always serialize");
    s.push('\n');
    s
}

/// File name for `--out-dir`: the position keeps the apply order for `kubectl apply -f DIR`.
pub fn file_name(index: usize, id: &ObjectId) -> String {
    let mut name = format!("{index:04}-{}", id.kind.to_ascii_lowercase());
    if let Some(ns) = &id.namespace {
        name.push('-');
        name.push_str(ns);
    }
    name.push('-');
    name.push_str(&id.name);
    name.push_str(".yaml");
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, ns: Option<&str>, name: &str) -> Manifest {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        Manifest::new(json!({"apiVersion": "v1", "kind": kind, "metadata": meta})).unwrap()
    }

    #[test]
    fn sorts_by_kind_order_then_namespace_and_name() {
        let mut v = vec![
            obj("Workflow", Some("b"), "w1"),
            obj("Workflow", Some("a"), "w2"),
            obj("Frobnicator", None, "f"),
            obj("Namespace", None, "z"),
            obj("CustomResourceDefinition", None, "c"),
            obj("ClusterWorkflowTemplate", None, "docker"),
            obj("Deployment", Some("x"), "d"),
        ];
        sort(&mut v);
        let ids: Vec<String> = v.iter().map(|m| m.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "CustomResourceDefinition/c",
                "Namespace/z",
                "Deployment/x/d",
                "Frobnicator/f",
                "ClusterWorkflowTemplate/docker",
                "Workflow/a/w2",
                "Workflow/b/w1"
            ]
        );
    }

    #[test]
    fn sorting_by_kind_order_never_puts_a_later_stage_first() {
        let stages: Vec<Stage> = KIND_ORDER.iter().map(|(_, s)| *s).collect();
        assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
        assert_eq!(stage_of("Frobnicator"), stage_of(""));
        assert_eq!(kind_rank("Frobnicator"), kind_rank(""));
    }

    #[test]
    fn kubectl_names_are_kind_dot_group_slash_name() {
        let id = |api: &str, kind: &str, ns: Option<&str>| ObjectId {
            api_version: api.into(),
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: "x".into(),
        };
        let names = [
            id(
                "argoproj.io/v1alpha1",
                "Workflow",
                Some("openchoreo-ci-acme"),
            ),
            id("v1", "Namespace", None),
            id("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None),
            id("apps/v1", "Deployment", Some("argo")),
        ]
        .map(|i| i.kubectl_name());
        assert_eq!(
            names,
            [
                "workflow.argoproj.io/x",
                "namespace/x",
                "clusterrolebinding.rbac.authorization.k8s.io/x",
                "deployment.apps/x"
            ]
        );
        let shown = without_managed_fields(
            json!({"kind": "A", "metadata": {"name": "a", "managedFields": [{"manager": "m"}]}}),
        );
        assert_eq!(shown, json!({"kind": "A", "metadata": {"name": "a"}}));
    }

    #[test]
    fn identity_requires_kind_and_name() {
        assert_eq!(
            Manifest::new(json!({"apiVersion": "v1", "metadata": {"name": "x"}})).unwrap_err(),
            ManifestError::MissingField("kind")
        );
        assert_eq!(
            Manifest::new(json!({"apiVersion": "v1", "kind": "A", "metadata": {}})).unwrap_err(),
            ManifestError::MissingField("metadata.name")
        );
        assert_eq!(
            Manifest::new(json!([1])).unwrap_err(),
            ManifestError::NotAnObject
        );
    }

    #[test]
    fn yaml_keeps_scripts_as_blocks_and_quotes_ambiguous_scalars() {
        let m = Manifest::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"script": "set -e\necho hi\n", "flag": "yes", "n": "0755"}}))
        .unwrap();
        let y = to_yaml_stream(std::slice::from_ref(&m)).unwrap();
        assert!(y.starts_with("---\napiVersion: v1\n"), "{y}");
        assert!(y.contains("  script: |\n    set -e\n    echo hi\n"), "{y}");
        assert!(y.contains("flag: \"yes\""), "{y}");
        let back: Value = serde_saphyr::from_str(y.trim_start_matches("---\n")).unwrap();
        assert_eq!(back, m.object);
    }

    #[test]
    fn file_names_keep_order_and_identity() {
        let m = obj("Workflow", Some("ns"), "w");
        assert_eq!(file_name(7, &m.id), "0007-workflow-ns-w.yaml");
    }
}
