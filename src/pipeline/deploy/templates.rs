//! Build objects whose Build named a ClusterWorkflowTemplate that only the build plane has
//! (`core::catalog::TEMPLATE_SOURCE_ANNOTATION`): before anything is written, each template is
//! read once (or taken from this very plan's bundle, which installs it), linted like every
//! other template, and each Build's parameters are checked against the arguments it declares.

use crate::core::catalog::parameter_problem;
use crate::core::lint;
use crate::core::manifest::{Manifest, ObjectId};
use crate::engine;
use crate::kube::{Kube, KubeError};
use std::collections::BTreeMap;

/// One build object that cannot run the template it names, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// The build object.
    pub object: ObjectId,
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// The build objects that run one template: each with the Build's parameter names and its
/// engine.
type Users<'a> = Vec<(&'a Manifest, Vec<String>, &'static dyn engine::Engine)>;

/// Every build object of `builds` that cannot run its cluster template. A template on the
/// cluster is the cluster administrator's: its privilege is theirs to grant, so only the
/// injection lint and the step contract apply to it.
pub async fn cluster_template_problems(
    kube: &Kube,
    bundle: &[Manifest],
    builds: &[Manifest],
) -> Result<Vec<TemplateProblem>, KubeError> {
    let mut by_template: BTreeMap<ObjectId, Users> = BTreeMap::new();
    for m in builds {
        let Some(e) = engine::for_object(&m.id) else {
            continue;
        };
        if let Some(u) = e.cluster_template(&m.object) {
            by_template
                .entry(u.template)
                .or_default()
                .push((m, u.parameters, e));
        }
    }
    let mut problems = Vec::new();
    for (template, users) in by_template {
        let planned = bundle
            .iter()
            .find(|b| b.id == template)
            .map(|b| b.object.clone());
        let object = match planned {
            Some(o) => Some(o),
            None => match kube.resource(&template.api_version, &template.kind).await? {
                Some(r) => kube.get(&r, &template).await?,
                None => None,
            },
        };
        let problem = match &object {
            None => Some(format!(
                "{} {} does not exist on the build plane",
                template.kind, template.name
            )),
            Some(o) => {
                let mut found = lint::lint_template(o, true);
                found.extend(lint::contract(o));
                found.first().map(ToString::to_string)
            }
        };
        for (m, given, e) in users {
            let message = match (&problem, &object) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(o)) => {
                    let given: Vec<&str> = given.iter().map(String::as_str).collect();
                    parameter_problem(&e.declared(o), &given)
                        .map(|(path, message)| format!("{path}: {message}"))
                }
                (None, None) => None,
            };
            if let Some(message) = message {
                problems.push(TemplateProblem {
                    object: m.id.clone(),
                    message,
                });
            }
        }
    }
    Ok(problems)
}
