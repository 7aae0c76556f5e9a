//! The four build templates the chart installs and the workflow arguments each one declares.
//! One table feeds both the ClusterWorkflowTemplates (their `spec.arguments`) and the validation
//! of Builds, so a Build is checked against exactly what will run it.

/// One ClusterWorkflowTemplate of the chart.
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
/// reuse these names.
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

pub fn template(name: &str) -> Option<&'static TemplateSpec> {
    TEMPLATES.iter().find(|t| t.name == name)
}

pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}
