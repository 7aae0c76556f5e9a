//! The `Build` spec (`openchoreo.dev/v1alpha1`), read from YAML documents and validated before
//! anything is rendered. Field names follow the upstream CRD.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "openchoreo.dev/v1alpha1";
pub const GROUP: &str = "openchoreo.dev";
/// The build engine used when `templateRef.engine` is empty.
pub const DEFAULT_ENGINE: &str = "argo";
/// The branch used when a Build names neither commit nor branch.
pub const DEFAULT_BRANCH: &str = "main";
/// Annotation with the hash of the Build spec a build object was rendered from.
pub const SPEC_HASH_ANNOTATION: &str = "buildplane.openchoreo.dev/spec-hash";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Owner {
    pub project_name: String,
    pub component_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    pub url: String,
    pub revision: Revision,
    pub app_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildSpec {
    pub owner: Owner,
    pub repository: Repository,
    pub template_ref: TemplateRef,
}

/// A Build as read from a file: its metadata, spec, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub metadata: ObjectMeta,
    pub spec: BuildSpec,
}

impl Build {
    /// The organization: the Build's namespace.
    pub fn organization(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// `commit` and `branch` parameters: a commit wins and clears the branch; with neither,
    /// the branch is `main`.
    pub fn commit_and_branch(&self) -> (&str, &str) {
        let rev = &self.spec.repository.revision;
        if !rev.commit.is_empty() {
            (&rev.commit, "")
        } else if !rev.branch.is_empty() {
            ("", &rev.branch)
        } else {
            ("", DEFAULT_BRANCH)
        }
    }

    pub fn engine(&self) -> &str {
        if self.spec.template_ref.engine.is_empty() {
            DEFAULT_ENGINE
        } else {
            &self.spec.template_ref.engine
        }
    }
}

/// Where a document came from, for error messages: `file` or `file (document 2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based position in a multi-document file.
    pub document: usize,
    pub documents: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.documents > 1 {
            write!(f, "{} (document {})", self.file, self.document)
        } else {
            write!(f, "{}", self.file)
        }
    }
}

/// A Build document is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// The file is not valid YAML (the message carries line and column).
    #[error("{file}: invalid YAML: {message}")]
    Yaml { file: String, message: String },
    /// A field is missing, of the wrong type, or has a value we cannot use.
    #[error("{origin}: {path}: {message}")]
    Field {
        origin: String,
        path: String,
        message: String,
    },
}

fn field(origin: &Origin, path: &str, message: impl Into<String>) -> SpecError {
    SpecError::Field {
        origin: origin.to_string(),
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Parses every document of one file; empty documents are skipped.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<(Origin, Value)>, SpecError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| SpecError::Yaml {
        file: file.to_owned(),
        message: first_line(&e.to_string()),
    })?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let n = docs.len();
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            (
                Origin {
                    file: file.to_owned(),
                    document: i + 1,
                    documents: n,
                },
                d,
            )
        })
        .collect())
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or(s)
        .trim_start_matches("error: ")
        .to_owned()
}

/// Takes one document as a Build: checks `apiVersion`/`kind`, the field types and required
/// fields, and the metadata names Kubernetes would reject.
pub fn build_from_value(origin: &Origin, doc: Value) -> Result<Build, SpecError> {
    let Some(map) = doc.as_object() else {
        return Err(field(
            origin,
            "(document)",
            "expected a mapping with kind: Build",
        ));
    };
    match map.get("kind").and_then(Value::as_str) {
        None => return Err(field(origin, "kind", "is required (expected Build)")),
        Some("Build") => {}
        Some(other) => {
            return Err(field(
                origin,
                "kind",
                format!("unknown kind {other:?} (expected Build)"),
            ));
        }
    }
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(field(
                origin,
                "apiVersion",
                format!("must be {API_VERSION} (got {other:?})"),
            ));
        }
        None => {
            return Err(field(
                origin,
                "apiVersion",
                format!("is required ({API_VERSION})"),
            ));
        }
    }
    if map.get("spec").is_none() {
        return Err(field(origin, "spec", "is required"));
    }
    let mut doc = doc;
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("kind");
        obj.remove("apiVersion");
        obj.remove("status");
    }
    let build: Build = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let (path, message) = split_missing_field(&path, &message);
        field(origin, &path, message)
    })?;
    validate(origin, &build)?;
    Ok(build)
}

/// serde reports a missing field at its parent; report it at the field itself.
fn split_missing_field(path: &str, message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let full = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return (full, "is required".to_owned());
    }
    let path = if path == "." {
        "(document)".to_owned()
    } else {
        path.to_owned()
    };
    (path, message.to_owned())
}

/// Checks a Build name as the API server checks `metadata.name`; the message says why not.
pub fn check_build_name(name: &str) -> Result<(), String> {
    if crate::core::naming::is_dns_subdomain(name, 253) {
        return Ok(());
    }
    Err(format!(
        "{name:?} is not a valid object name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
    ))
}

/// Checks an organization (a Build's `metadata.namespace`, or `-n`) as the API server checks
/// a namespace name; the message says why not.
pub fn check_organization(org: &str) -> Result<(), String> {
    if crate::core::naming::is_dns_label(org) {
        return Ok(());
    }
    Err(format!(
        "{org:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters)"
    ))
}

fn validate(origin: &Origin, b: &Build) -> Result<(), SpecError> {
    check_build_name(&b.metadata.name).map_err(|m| field(origin, "metadata.name", m))?;
    if let Some(ns) = &b.metadata.namespace {
        check_organization(ns).map_err(|m| field(origin, "metadata.namespace", m))?;
    }
    let nonempty = [
        ("spec.owner.projectName", &b.spec.owner.project_name),
        ("spec.owner.componentName", &b.spec.owner.component_name),
        ("spec.repository.url", &b.spec.repository.url),
        ("spec.templateRef.name", &b.spec.template_ref.name),
    ];
    for (path, v) in nonempty {
        if v.trim().is_empty() {
            return Err(field(origin, path, "must not be empty"));
        }
    }
    for (i, p) in b.spec.template_ref.parameters.iter().enumerate() {
        if p.name.is_empty() {
            return Err(field(
                origin,
                &format!("spec.templateRef.parameters[{i}].name"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// A `field` error for checks made outside this module (template catalog, engine).
pub fn field_error(origin: &Origin, path: &str, message: impl Into<String>) -> SpecError {
    field(origin, path, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata: {name: b1, namespace: acme}\nspec:\n  owner: {projectName: p, componentName: c}\n  repository: {url: 'https://x/y', revision: {branch: dev}, appPath: /app}\n  templateRef: {name: docker, parameters: [{name: docker-context, value: /app}]}\n";

    fn one(text: &str) -> Result<Build, SpecError> {
        let docs = parse_documents("f.yaml", text)?;
        let (o, d) = docs.into_iter().next().unwrap();
        build_from_value(&o, d)
    }

    #[test]
    fn parses_a_build() {
        let b = one(GOOD).unwrap();
        assert_eq!(b.organization(), "acme");
        assert_eq!(b.commit_and_branch(), ("", "dev"));
        assert_eq!(b.engine(), "argo");
        assert_eq!(b.spec.template_ref.parameters[0].value, "/app");
    }

    #[test]
    fn commit_wins_and_branch_defaults_to_main() {
        let mut b = one(GOOD).unwrap();
        b.spec.repository.revision.commit = "abc".into();
        assert_eq!(b.commit_and_branch(), ("abc", ""));
        b.spec.repository.revision = Revision::default();
        assert_eq!(b.commit_and_branch(), ("", "main"));
    }

    #[test]
    fn errors_name_file_document_and_field() {
        let missing = GOOD.replace("url: 'https://x/y', ", "");
        assert_eq!(
            one(&missing).unwrap_err().to_string(),
            "f.yaml: spec.repository.url: is required"
        );
        let two = format!(
            "{GOOD}---\n{}",
            GOOD.replace("componentName: c", "componentName: 7")
        );
        let docs = parse_documents("f.yaml", &two).unwrap();
        let (o, d) = docs.into_iter().nth(1).unwrap();
        let err = build_from_value(&o, d).unwrap_err().to_string();
        assert!(
            err.starts_with("f.yaml (document 2): spec.owner.componentName: invalid type"),
            "{err}"
        );
        let err = one(&GOOD.replace("kind: Build", "kind: Deployment"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "f.yaml: kind: unknown kind \"Deployment\" (expected Build)"
        );
        let err = one(&GOOD.replace("name: b1", "name: B_1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.yaml: metadata.name: \"B_1\" is not a valid object name"),
            "{err}"
        );
        let err = one(&GOOD.replace("appPath: /app", "appPath: /app, extra: 1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("spec.repository.extra: unknown field `extra`"),
            "{err}"
        );
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let err = parse_documents("bad.yaml", "a: 1\nb: [x\n  c: :\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bad.yaml: invalid YAML: line 3 column"),
            "{err}"
        );
    }
}
