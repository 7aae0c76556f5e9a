//! The injection lint every ClusterWorkflowTemplate passes before anything is rendered or
//! applied, built-in or supplied by a platform team.
//!
//! Argo substitutes `{{…}}` placeholders textually. A placeholder whose value a tenant controls
//! (a workflow parameter, a step's input, another step's output — all derived from the Build
//! or from the build's own code) inside a script's source, a container's command or its args
//! becomes shell text: command injection in a privileged pod. Such values may reach a step only
//! as data: an environment variable's value, or a step argument (which the receiving step again
//! reads as an environment variable). The lint names the template, the step and the field.
//!
//! It also refuses what would escalate beyond the values: a privileged container, host
//! namespaces, hostPath volumes or added capabilities, unless the values allow privileged
//! steps for that template (the built-in ones need them: podman builds in the step pod).

use serde_json::Value;

/// One finding: `template/step: field: what`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ClusterWorkflowTemplate {template}: step {step}: {field}: {problem}")]
pub struct LintError {
    pub template: String,
    pub step: String,
    pub field: String,
    pub problem: String,
}

/// Roots of placeholders whose value a tenant controls.
const TENANT_ROOTS: [&str; 6] = [
    "inputs.",
    "workflow.parameters",
    "steps.",
    "tasks.",
    "item",
    "workflow.annotations",
];

/// The first placeholder of `text` (`{{x}}` or the expression form `{{= … }}`) that refers to a
/// tenant-controlled value, if any.
pub fn tenant_placeholder(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            // An unclosed placeholder is as suspect as a closed one.
            return Some(&rest[start..]);
        };
        let inner = &after[..end];
        let body = inner.trim_start_matches('=').trim();
        let refers = TENANT_ROOTS.iter().any(|root| {
            body.starts_with(root)
                // An expression may name them anywhere: `{{= sprig.trim(inputs.parameters.x) }}`.
                || (inner.trim_start().starts_with('=') && body.contains(root))
        });
        if refers {
            return Some(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    None
}

/// Where a template's containers are: `container`, `script`, and the lists of
/// `containerSet.containers`, `initContainers`, `sidecars`.
fn containers(template: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for key in ["container", "script"] {
        if let Some(c) = template.get(key).filter(|c| c.is_object()) {
            out.push((key.to_owned(), c));
        }
    }
    let lists = [
        (
            "containerSet.containers",
            template.pointer("/containerSet/containers"),
        ),
        ("initContainers", template.get("initContainers")),
        ("sidecars", template.get("sidecars")),
    ];
    for (key, list) in lists {
        if let Some(items) = list.and_then(Value::as_array) {
            for (i, c) in items.iter().enumerate() {
                out.push((format!("{key}[{i}]"), c));
            }
        }
    }
    out
}

/// Every string under `v` with its path below `path`.
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// Lints one ClusterWorkflowTemplate (or WorkflowTemplate) object. `allow_privileged`: the
/// values let this template's steps run privileged (and mount host paths).
pub fn lint_template(object: &Value, allow_privileged: bool) -> Vec<LintError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned();
    let mut found = Vec::new();
    let mut push = |step: &str, field: String, problem: String| {
        found.push(LintError {
            template: name.clone(),
            step: step.to_owned(),
            field,
            problem,
        });
    };
    let spec = object.get("spec").unwrap_or(&Value::Null);
    if !allow_privileged {
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec.get(key).and_then(Value::as_bool) == Some(true) {
                push(
                    "(workflow)",
                    format!("spec.{key}"),
                    "host namespaces are not allowed".into(),
                );
            }
        }
        if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
            for (i, v) in volumes.iter().enumerate() {
                if v.get("hostPath").is_some() {
                    push(
                        "(workflow)",
                        format!("spec.volumes[{i}].hostPath"),
                        "hostPath volumes need privileged steps allowed in values".into(),
                    );
                }
            }
        }
    }
    if let Some(patch) = spec.get("podSpecPatch").and_then(Value::as_str)
        && let Some(p) = tenant_placeholder(patch)
    {
        push(
            "(workflow)",
            "spec.podSpecPatch".into(),
            format!("{p} would let a build rewrite its pod"),
        );
    }
    let templates = spec.get("templates").and_then(Value::as_array);
    for t in templates.into_iter().flatten() {
        let step = t.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        if let Some(patch) = t.get("podSpecPatch").and_then(Value::as_str)
            && let Some(p) = tenant_placeholder(patch)
        {
            push(
                step,
                "podSpecPatch".into(),
                format!("{p} would let a build rewrite its pod"),
            );
        }
        for (where_, c) in containers(t) {
            for field in ["command", "args", "source"] {
                let Some(v) = c.get(field) else { continue };
                let mut texts = Vec::new();
                strings(v, format!("{where_}.{field}"), &mut texts);
                for (path, text) in texts {
                    if let Some(p) = tenant_placeholder(text) {
                        push(
                            step,
                            path,
                            format!("{p} is shell text here; pass it as an env value instead"),
                        );
                    }
                }
            }
            if allow_privileged {
                continue;
            }
            let sc = c.get("securityContext").unwrap_or(&Value::Null);
            if sc.get("privileged").and_then(Value::as_bool) == Some(true) {
                push(
                    step,
                    format!("{where_}.securityContext.privileged"),
                    "privileged steps are not allowed for this template by the values".into(),
                );
            }
            if sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(true) {
                push(
                    step,
                    format!("{where_}.securityContext.allowPrivilegeEscalation"),
                    "privilege escalation is not allowed for this template by the values".into(),
                );
            }
            if sc
                .pointer("/capabilities/add")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                push(
                    step,
                    format!("{where_}.securityContext.capabilities.add"),
                    "added capabilities are not allowed for this template by the values".into(),
                );
            }
        }
    }
    found
}

/// The step templates, and their output parameters, that buildplane reads from every build
/// (`engine::argo::status`): the image, the Workload, the commit built.
pub const CONTRACT: [(&str, &str); 3] = [
    ("clone-step", "git-revision"),
    ("push-step", "image"),
    ("workload-create-step", "workload-cr"),
];

/// What a template must provide for its builds to yield a Workload: the entrypoint it names
/// exists, and each step template of [`CONTRACT`] declares its output parameter. A template of
/// the platform team's that misses one would run every build to the end and then fail harvest.
pub fn contract(object: &Value) -> Vec<LintError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let templates: Vec<&Value> = object
        .pointer("/spec/templates")
        .and_then(Value::as_array)
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    let named = |n: &str| {
        templates
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(n))
    };
    let finding = |step: &str, field: &str, problem: String| LintError {
        template: name.to_owned(),
        step: step.to_owned(),
        field: field.to_owned(),
        problem,
    };
    let mut found = Vec::new();
    match object.pointer("/spec/entrypoint").and_then(Value::as_str) {
        Some(e) if named(e).is_some() => {}
        Some(e) => found.push(finding(
            "(workflow)",
            "spec.entrypoint",
            format!("names no template of spec.templates ({e:?})"),
        )),
        None => found.push(finding(
            "(workflow)",
            "spec.entrypoint",
            "is missing".into(),
        )),
    }
    for (step, output) in CONTRACT {
        let declared = named(step).is_some_and(|t| {
            t.pointer("/outputs/parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.get("name").and_then(Value::as_str) == Some(output))
                })
        });
        if !declared {
            found.push(finding(
                step,
                "outputs.parameters",
                format!(
                    "a template named {step} with the output parameter {output:?} is needed: \
                     buildplane reads it from every build"
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cwt(step: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterWorkflowTemplate",
               "metadata": {"name": "maven"},
               "spec": {"entrypoint": "main", "templates": [step]}})
    }

    #[test]
    fn tenant_placeholders_in_shell_text_are_found_in_every_form() {
        for text in [
            "mvn -f {{inputs.parameters.pom}}",
            "echo {{ workflow.parameters.branch }}",
            "{{=sprig.trim(inputs.parameters.x)}}",
            "{{= workflow.parameters['git-repo'] }}",
            "cp {{steps.clone.outputs.parameters.dir}} .",
            "for x in {{item}}; do",
            "unclosed {{inputs.parameters.x",
        ] {
            assert!(tenant_placeholder(text).is_some(), "{text}");
        }
        for text in [
            "echo {{workflow.name}} {{pod.name}}",
            "plain $HOME",
            "{{workflow.namespace}}",
        ] {
            assert_eq!(tenant_placeholder(text), None, "{text}");
        }
    }

    #[test]
    fn placeholders_are_allowed_in_env_values_and_named_in_shell_text() {
        let ok = cwt(
            json!({"name": "build", "container": {"image": "maven", "command": ["sh", "-c"],
            "args": ["mvn -f \"$POM\" package"],
            "env": [{"name": "POM", "value": "{{inputs.parameters.pom}}"}]}}),
        );
        assert_eq!(lint_template(&ok, false), Vec::new());
        let bad = cwt(
            json!({"name": "build", "script": {"image": "maven", "command": ["sh"],
            "source": "mvn -f {{inputs.parameters.pom}} package"}}),
        );
        let found = lint_template(&bad, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].to_string(),
            "ClusterWorkflowTemplate maven: step build: script.source: {{inputs.parameters.pom}} is shell text here; pass it as an env value instead"
        );
        let args = cwt(
            json!({"name": "b", "container": {"image": "x", "args": ["--ref", "{{workflow.parameters.commit}}"]}}),
        );
        assert_eq!(lint_template(&args, true)[0].field, "container.args[1]");
        let sidecar = cwt(
            json!({"name": "b", "sidecars": [{"name": "s", "image": "x", "command": ["{{inputs.parameters.c}}"]}]}),
        );
        assert_eq!(
            lint_template(&sidecar, true)[0].field,
            "sidecars[0].command[0]"
        );
    }

    #[test]
    fn the_contract_names_each_missing_step_output() {
        let step = |name: &str, output: &str| json!({"name": name, "outputs": {"parameters": [{"name": output}]}, "container": {"image": "x"}});
        let mut t = json!({"metadata": {"name": "maven"}, "spec": {"entrypoint": "main",
            "templates": [{"name": "main", "steps": []}, step("clone-step", "git-revision"),
                step("push-step", "image"), step("workload-create-step", "workload-cr")]}});
        assert_eq!(contract(&t), Vec::new());
        t["spec"]["templates"][3] = step("workload-create-step", "workload");
        t["spec"]["entrypoint"] = json!("build");
        let found: Vec<String> = contract(&t).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "ClusterWorkflowTemplate maven: step (workflow): spec.entrypoint: names no template of spec.templates (\"build\")",
                "ClusterWorkflowTemplate maven: step workload-create-step: outputs.parameters: a template named workload-create-step with the output parameter \"workload-cr\" is needed: buildplane reads it from every build"
            ]
        );
    }

    #[test]
    fn escalation_needs_values_that_allow_it() {
        let t = json!({"metadata": {"name": "kaniko"}, "spec": {"hostNetwork": true,
            "volumes": [{"name": "c", "hostPath": {"path": "/var/run"}}],
            "templates": [{"name": "build", "container": {"image": "x",
                "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}}]}});
        let fields: Vec<String> = lint_template(&t, false)
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.hostNetwork",
                "spec.volumes[0].hostPath",
                "container.securityContext.privileged",
                "container.securityContext.capabilities.add"
            ]
        );
        assert_eq!(lint_template(&t, true), Vec::new());
    }
}
