//! The templates a Build may name and the workflow arguments each declares: the four built-in
//! ones of the chart, the platform team's own from `extraTemplates` in values, and — when a
//! Build says so — a ClusterWorkflowTemplate that exists only on the build plane, whose
//! arguments are read from the live object before anything is applied. One table feeds both
//! the built-in ClusterWorkflowTemplates (their `spec.arguments`) and the validation of
//! Builds, so a Build is checked against exactly what will run it.

use super::spec::{Build, Origin, SpecError, field_error};
use serde_json::Value;

/// One built-in ClusterWorkflowTemplate of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TemplateSpec {
    pub name: &'static str,
    /// Workflow arguments the template declares without a value: every Build must supply them
    /// in `spec.templateRef.parameters`.
    pub parameters: &'static [&'static str],
}

pub const TEMPLATES: &[TemplateSpec] = &[
    TemplateSpec {
        name: "docker",
        parameters: &["docker-context", "dockerfile-path"],
    },
    TemplateSpec {
        name: "react",
        parameters: &["node-version"],
    },
    TemplateSpec {
        name: "ballerina-buildpack",
        parameters: &[],
    },
    TemplateSpec {
        name: "google-cloud-buildpacks",
        parameters: &[],
    },
];

/// The eight arguments every Workflow carries, in upstream order; Build parameters may not
/// reuse these names, and no template may declare them.
pub const RESERVED_PARAMETERS: &[&str] = &[
    "project-name",
    "component-name",
    "git-repo",
    "app-path",
    "image-name",
    "image-tag",
    "commit",
    "branch",
];

/// On a Build: `cluster` names a ClusterWorkflowTemplate that exists only on the build plane.
/// Its declared arguments are read from the live object (and the object linted) before the
/// build is applied; the Workflow carries the annotation so that step knows.
pub const TEMPLATE_SOURCE_ANNOTATION: &str = "buildplane.openchoreo.dev/template-source";
/// The value of [`TEMPLATE_SOURCE_ANNOTATION`] that asks for the live template.
pub const TEMPLATE_SOURCE_CLUSTER: &str = "cluster";

pub fn template(name: &str) -> Option<&'static TemplateSpec> {
    TEMPLATES.iter().find(|t| t.name == name)
}

pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

/// Where a template a Build may name is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One of the chart's four.
    Builtin,
    /// `extraTemplates` in values; `allow_privileged` is its `allowPrivileged`.
    Values { allow_privileged: bool },
    /// The live ClusterWorkflowTemplate on the build plane.
    Cluster,
}

/// A template with the workflow arguments it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    /// Declared without a value: every Build must supply them.
    pub required: Vec<String>,
    /// Declared with a value: a Build may override them.
    pub optional: Vec<String>,
    pub source: Source,
}

impl Declared {
    /// A template from Argo's form of declared arguments, `[{name, value?}, …]` (the
    /// `spec.arguments.parameters` of a ClusterWorkflowTemplate, and `extraTemplates[].parameters`).
    pub fn from_arguments(name: &str, parameters: Option<&Value>, source: Source) -> Declared {
        let mut d = Declared {
            name: name.to_owned(),
            required: Vec::new(),
            optional: Vec::new(),
            source,
        };
        for p in parameters.and_then(Value::as_array).into_iter().flatten() {
            let Some(n) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            // A value, or Argo's `valueFrom`/`default`, makes the Build's parameter optional.
            let has_value = ["value", "valueFrom", "default"]
                .iter()
                .any(|k| p.get(k).is_some_and(|v| !v.is_null()));
            if has_value {
                d.optional.push(n.to_owned());
            } else {
                d.required.push(n.to_owned());
            }
        }
        d
    }

    /// Whether its steps may run privileged (the lint's allowance): the built-in templates
    /// (podman builds in the step pod) and an `extraTemplates` entry with `allowPrivileged`.
    /// A live template's privilege is the cluster admin's: it is never linted for it.
    pub fn privileged(&self) -> bool {
        matches!(
            self.source,
            Source::Builtin
                | Source::Values {
                    allow_privileged: true
                }
        )
    }

    fn declares(&self, parameter: &str) -> bool {
        self.required
            .iter()
            .chain(&self.optional)
            .any(|p| p == parameter)
    }
}

/// The templates this run knows: the built-in ones and `extraTemplates` from the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    templates: Vec<Declared>,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog::builtin()
    }
}

impl Catalog {
    /// The four built-in templates: what a command without values (sync, the controller)
    /// knows.
    pub fn builtin() -> Catalog {
        Catalog {
            templates: TEMPLATES
                .iter()
                .map(|t| Declared {
                    name: t.name.to_owned(),
                    required: t.parameters.iter().map(|p| (*p).to_owned()).collect(),
                    optional: Vec::new(),
                    source: Source::Builtin,
                })
                .collect(),
        }
    }

    /// The built-in templates and the merged values' `extraTemplates` (validated against the
    /// schema already; the chart refuses a name that is also built in).
    pub fn with_values(values: &Value) -> Catalog {
        let mut c = Catalog::builtin();
        let extra = values.get("extraTemplates").and_then(Value::as_array);
        for t in extra.into_iter().flatten() {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue;
            };
            if c.get(name).is_none() {
                let allow_privileged = t
                    .get("allowPrivileged")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                c.templates.push(Declared::from_arguments(
                    name,
                    t.get("parameters"),
                    Source::Values { allow_privileged },
                ));
            }
        }
        c
    }

    pub fn get(&self, name: &str) -> Option<&Declared> {
        self.templates.iter().find(|t| t.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.templates.iter().map(|t| t.name.as_str()).collect()
    }
}

/// Whether a Build names a template that only the build plane has (its annotation).
pub fn wants_cluster_template(build: &Build) -> bool {
    build
        .metadata
        .annotations
        .get(TEMPLATE_SOURCE_ANNOTATION)
        .is_some_and(|v| v == TEMPLATE_SOURCE_CLUSTER)
}

/// Checks a Build's `templateRef` against what this run knows. A template the catalog has is
/// checked here; a Build annotated for a cluster template is checked later against the live
/// one ([`check_parameters`] with [`Declared::from_arguments`]); any other name is refused.
pub fn check(catalog: &Catalog, origin: &Origin, build: &Build) -> Result<(), SpecError> {
    let tref = &build.spec.template_ref;
    if let Some(v) = build.metadata.annotations.get(TEMPLATE_SOURCE_ANNOTATION)
        && v != TEMPLATE_SOURCE_CLUSTER
    {
        return Err(field_error(
            origin,
            &format!("metadata.annotations.{TEMPLATE_SOURCE_ANNOTATION}"),
            format!("must be {TEMPLATE_SOURCE_CLUSTER:?}, not {v:?}"),
        ));
    }
    if wants_cluster_template(build) {
        return Ok(());
    }
    match catalog.get(&tref.name) {
        Some(t) => check_parameters(origin, build, t),
        None => Err(field_error(
            origin,
            "spec.templateRef.name",
            format!(
                "unknown template {:?} (known: {}; a ClusterWorkflowTemplate that exists only \
                 on the build plane is named with the annotation {TEMPLATE_SOURCE_ANNOTATION}: \
                 {TEMPLATE_SOURCE_CLUSTER})",
                tref.name,
                catalog.names().join(", ")
            ),
        )),
    }
}

/// The Build's parameters against the arguments `template` declares: each one declared, every
/// required one given.
pub fn check_parameters(
    origin: &Origin,
    build: &Build,
    template: &Declared,
) -> Result<(), SpecError> {
    let given: Vec<&str> = (build.spec.template_ref.parameters.iter())
        .map(|p| p.name.as_str())
        .collect();
    parameter_problem(template, &given).map_or(Ok(()), |(path, message)| {
        Err(field_error(origin, &path, message))
    })
}

/// What is wrong with giving `template` the parameters named `given` (in the Build's order):
/// the Build's key path and the message, or `None`.
pub fn parameter_problem(template: &Declared, given: &[&str]) -> Option<(String, String)> {
    for (i, name) in given.iter().enumerate() {
        if !template.declares(name) {
            let known: Vec<&str> = (template.required.iter())
                .chain(&template.optional)
                .map(String::as_str)
                .collect();
            let expected = if known.is_empty() {
                "it takes none".to_owned()
            } else {
                format!("expected one of {}", known.join(", "))
            };
            return Some((
                format!("spec.templateRef.parameters[{i}].name"),
                format!(
                    "unknown parameter {name:?} for template {} ({expected})",
                    template.name
                ),
            ));
        }
    }
    let missing = (template.required.iter()).find(|r| !given.contains(&r.as_str()))?;
    Some((
        "spec.templateRef.parameters".to_owned(),
        format!("template {} needs parameter {missing:?}", template.name),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(template: &str, params: &[&str], annotation: Option<&str>) -> (Origin, Build) {
        let params: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p, "value": "v"}))
            .collect();
        let mut meta = json!({"name": "b", "namespace": "o"});
        if let Some(a) = annotation {
            meta["annotations"] = json!({TEMPLATE_SOURCE_ANNOTATION: a});
        }
        let doc = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": meta,
            "spec": {"owner": {"projectName": "p", "componentName": "c"},
                "repository": {"url": "https://h/r", "revision": {"branch": "main"}, "appPath": "/"},
                "templateRef": {"name": template, "parameters": params}}});
        let text = serde_json::to_string(&doc).unwrap();
        let (origin, doc) = crate::core::spec::parse_documents("b.yaml", &text)
            .unwrap()
            .remove(0);
        let b = crate::core::spec::build_from_value(&origin, doc).unwrap();
        (origin, b)
    }

    fn values() -> Value {
        json!({"extraTemplates": [{"name": "maven",
            "parameters": [{"name": "goals"}, {"name": "jdk", "value": "21"}]}]})
    }

    #[test]
    fn templates_from_values_are_known_with_required_and_optional_parameters() {
        let c = Catalog::with_values(&values());
        let maven = c.get("maven").unwrap();
        assert_eq!(maven.required, ["goals"]);
        assert_eq!(maven.optional, ["jdk"]);
        assert!(matches!(maven.source, Source::Values { .. }));
        let (o, b) = build("maven", &["goals"], None);
        check(&c, &o, &b).unwrap();
        let (o, b) = build("maven", &["goals", "jdk"], None);
        check(&c, &o, &b).unwrap();
        let (o, b) = build("maven", &["jdk"], None);
        let e = check(&c, &o, &b).unwrap_err().to_string();
        assert_eq!(
            e,
            "b.yaml: spec.templateRef.parameters: template maven needs parameter \"goals\""
        );
        let (o, b) = build("maven", &["goals", "mvn-flags"], None);
        let e = check(&c, &o, &b).unwrap_err().to_string();
        assert!(
            e.starts_with("b.yaml: spec.templateRef.parameters[1].name: unknown parameter \"mvn-flags\" for template maven (expected one of goals, jdk)"),
            "{e}"
        );
        // Without the values, maven is unknown, and the error says how to name a live one.
        let (o, b) = build("maven", &["goals"], None);
        let e = check(&Catalog::builtin(), &o, &b).unwrap_err().to_string();
        assert!(e.contains("unknown template \"maven\" (known: docker, react, ballerina-buildpack, google-cloud-buildpacks; a ClusterWorkflowTemplate"), "{e}");
    }

    #[test]
    fn a_cluster_template_is_left_to_the_live_check_and_the_annotation_is_checked() {
        let (o, b) = build("kaniko", &["anything"], Some("cluster"));
        check(&Catalog::builtin(), &o, &b).unwrap();
        let (o, b) = build("kaniko", &[], Some("Cluster"));
        let e = check(&Catalog::builtin(), &o, &b).unwrap_err().to_string();
        assert!(e.contains("template-source: must be \"cluster\""), "{e}");
        // The live object's arguments: the same rules.
        let live = json!([{"name": "context"}, {"name": "cache", "value": "true"},
            {"name": "from", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]);
        let d = Declared::from_arguments("kaniko", Some(&live), Source::Cluster);
        assert_eq!(
            (d.required, d.optional),
            (
                vec!["context".to_owned()],
                vec!["cache".to_owned(), "from".to_owned()]
            )
        );
        let d = Declared::from_arguments("kaniko", Some(&live), Source::Cluster);
        let (o, b) = build("kaniko", &["anything"], Some("cluster"));
        let e = check_parameters(&o, &b, &d).unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter \"anything\" for template kaniko"),
            "{e}"
        );
    }

    #[test]
    fn a_values_template_cannot_shadow_a_builtin_one() {
        let c = Catalog::with_values(&json!({"extraTemplates": [{"name": "docker"}]}));
        assert_eq!(c.get("docker").unwrap().source, Source::Builtin);
        assert_eq!(c.names().len(), 4);
    }
}
