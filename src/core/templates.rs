//! The per-build templates: `templates/` at the top of the repository (embedded), overlaid by
//! `--templates DIR` and then by `buildTemplates` in values. They turn a validated Build, its
//! derived names and the values into the per-build manifests — the organization's
//! prerequisites and the build object — in the chart's strict minijinja environment (strict
//! undefined, `[[ ]]`/`[% %]`, no cluster, files, clock or environment).
//!
//! What a template renders is checked against what buildplane relies on before anything is
//! printed or applied ([`check`] with the engine's [`Invariants`]): the names, the labels and
//! annotations watch, prune and the submit-once rule read, the template reference and the
//! arguments (the only way Build text reaches a step). An overlay may add; it may not change
//! or drop those.

use super::render;
use minijinja::{Environment, Value as TplValue};
use serde_json::Value;
use std::collections::BTreeMap;

include!(concat!(env!("OUT_DIR"), "/build_template_files.rs"));

/// The organization's prerequisites, rendered once per organization.
pub const PREREQUISITES: &str = "prerequisites.yaml";
/// The build object of one Build.
pub const BUILD_OBJECT: &str = "workflow.yaml";
/// Every per-build template, in rendering order.
pub const FILES: [&str; 2] = [PREREQUISITES, BUILD_OBJECT];
/// Where a built-in template comes from, as errors name it.
pub const BUILTIN_ORIGIN: &str = "templates";

/// A per-build template could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// An overlay names a file buildplane does not render.
    #[error("{origin}: not a per-build template (they are: {})", FILES.join(", "))]
    Unknown { origin: String },
    /// A template does not parse.
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    /// Rendering failed (an undefined value, `fail()`), or the output is not YAML objects.
    #[error("{origin} for Build {build}: {message}")]
    Render {
        origin: String,
        build: String,
        message: String,
    },
    /// The output changes what buildplane relies on.
    #[error("{origin} for Build {build}: {object}: {problem}")]
    Invariant {
        origin: String,
        build: String,
        /// `Kind/ns/name` (or the document's position) of the rendered object.
        object: String,
        problem: String,
    },
}

/// One file laid over the built-in templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// The template it replaces (`workflow.yaml`).
    pub file: String,
    /// Where it came from, for errors (`DIR/workflow.yaml`, `values buildTemplates.workflow.yaml`).
    pub origin: String,
    pub text: String,
}

/// The per-build templates of one run, compiled once.
#[derive(Debug)]
pub struct BuildTemplates {
    env: Environment<'static>,
    /// Each file's origin; built-in ones are [`BUILTIN_ORIGIN`]`/file`.
    origins: BTreeMap<&'static str, String>,
    /// Whether a template names `build`: the Build is put into the context only then (it is
    /// the largest part of it, and the built-in templates do not read it).
    reads_build: bool,
}

impl BuildTemplates {
    /// The embedded `templates/`.
    pub fn builtin() -> BuildTemplates {
        BuildTemplates::with_overlays(Vec::new()).expect("the built-in templates parse")
    }

    /// The embedded templates with `overlays` laid over them in order (a later one wins).
    pub fn with_overlays(overlays: Vec<Overlay>) -> Result<BuildTemplates, TemplateError> {
        let mut files: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
        for (name, text) in BUILD_TEMPLATE_FILES {
            if let Some(known) = FILES.iter().find(|f| *f == name) {
                files.insert(
                    known,
                    (format!("{BUILTIN_ORIGIN}/{name}"), (*text).to_owned()),
                );
            }
        }
        for o in overlays {
            let Some(known) = FILES.iter().find(|f| **f == o.file) else {
                return Err(TemplateError::Unknown { origin: o.origin });
            };
            files.insert(known, (o.origin, o.text));
        }
        let mut env = render::base_environment();
        let mut origins = BTreeMap::new();
        for (file, (origin, text)) in files {
            env.add_template_owned(file, text)
                .map_err(|e| TemplateError::Syntax {
                    origin: origin.clone(),
                    message: render::error_chain(&e),
                })?;
            origins.insert(file, origin);
        }
        let reads_build = FILES.iter().any(|f| {
            env.get_template(f)
                .is_ok_and(|t| t.undeclared_variables(false).contains("build"))
        });
        Ok(BuildTemplates {
            env,
            origins,
            reads_build,
        })
    }

    /// Whether a template reads `build`.
    pub fn reads_build(&self) -> bool {
        self.reads_build
    }

    /// Whether `file` is not the built-in one.
    pub fn overlaid(&self, file: &str) -> bool {
        self.origin(file)
            .is_some_and(|o| *o != format!("{BUILTIN_ORIGIN}/{file}"))
    }

    /// Whether any file is not the built-in one.
    pub fn any_overlaid(&self) -> bool {
        FILES.iter().any(|f| self.overlaid(f))
    }

    /// Where `file` came from.
    pub fn origin(&self, file: &str) -> Option<&String> {
        self.origins.get(file)
    }

    /// Renders `file` with `context` into objects; `build` (`org/name`) names the Build in
    /// errors.
    pub fn render(
        &self,
        file: &str,
        context: &TplValue,
        build: &str,
    ) -> Result<Vec<Value>, TemplateError> {
        let origin = self
            .origin(file)
            .cloned()
            .unwrap_or_else(|| file.to_owned());
        let fail = |message: String| TemplateError::Render {
            origin: origin.clone(),
            build: build.to_owned(),
            message,
        };
        let text = self
            .env
            .get_template(file)
            .and_then(|t| t.render(context))
            .map_err(|e| fail(render::error_chain(&e)))?;
        let docs = documents(&text).map_err(fail)?;
        if let Some(i) = docs.iter().position(|d| !d.is_object()) {
            return Err(fail(format!("document {} is not an object", i + 1)));
        }
        Ok(docs)
    }
}

/// The envelope of an emitted Workload (`templates/workload.yaml`, or `--emit-template FILE`).
pub const WORKLOAD: &str = "workload.yaml";

/// What an envelope must keep of the Workload the build produced.
const WORKLOAD_RULES: Invariants = Invariants {
    equal: &[
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/metadata/namespace",
        "/spec",
    ],
    superset: &["/metadata/labels", "/metadata/annotations"],
    absent: &[],
};

/// The envelope every emitted Workload goes through, compiled once.
#[derive(Debug)]
pub struct WorkloadEnvelope {
    env: Environment<'static>,
    origin: String,
    /// Whether it reads `build` (the built-in one does not: no Build is serialized for it).
    reads_build: bool,
}

impl Default for WorkloadEnvelope {
    fn default() -> WorkloadEnvelope {
        WorkloadEnvelope::builtin()
    }
}

impl WorkloadEnvelope {
    /// The embedded `templates/workload.yaml`.
    pub fn builtin() -> WorkloadEnvelope {
        let text = BUILD_TEMPLATE_FILES
            .iter()
            .find(|(n, _)| *n == WORKLOAD)
            .map_or("", |(_, t)| *t);
        WorkloadEnvelope::new(format!("{BUILTIN_ORIGIN}/{WORKLOAD}"), text.to_owned())
            .expect("the built-in envelope parses")
    }

    /// An envelope of the operator's; `origin` names it in errors.
    pub fn new(origin: String, text: String) -> Result<WorkloadEnvelope, TemplateError> {
        let mut env = render::base_environment();
        env.add_template_owned(WORKLOAD, text)
            .map_err(|e| TemplateError::Syntax {
                origin: origin.clone(),
                message: render::error_chain(&e),
            })?;
        let reads_build = env
            .get_template(WORKLOAD)
            .is_ok_and(|t| t.undeclared_variables(false).contains("build"));
        Ok(WorkloadEnvelope {
            env,
            origin,
            reads_build,
        })
    }

    /// `workload` (validated, provenance stamped) in its envelope, checked: the same name,
    /// namespace and spec, every label and annotation kept, no key of buildplane's own domain
    /// added, and still a valid Workload.
    pub fn wrap(
        &self,
        workload: &Value,
        build: &super::spec::Build,
        label: &str,
    ) -> Result<Value, TemplateError> {
        let fail = |message: String| TemplateError::Render {
            origin: self.origin.clone(),
            build: label.to_owned(),
            message,
        };
        let build = if self.reads_build {
            TplValue::from_serialize(build)
        } else {
            TplValue::UNDEFINED
        };
        let ctx = minijinja::context! { workload => TplValue::from_serialize(workload), build };
        let text = self
            .env
            .get_template(WORKLOAD)
            .and_then(|t| t.render(ctx))
            .map_err(|e| fail(render::error_chain(&e)))?;
        let mut docs = documents(&text).map_err(fail)?;
        if docs.len() != 1 || !docs[0].is_object() {
            return Err(fail(format!(
                "renders {} documents; an envelope renders the one Workload",
                docs.len()
            )));
        }
        let out = docs.remove(0);
        let invariant = |problem: String| TemplateError::Invariant {
            origin: self.origin.clone(),
            build: label.to_owned(),
            object: "the Workload".into(),
            problem,
        };
        check(&out, workload, &WORKLOAD_RULES).map_err(invariant)?;
        for key in ["labels", "annotations"] {
            let added = out["metadata"][key].as_object().into_iter().flatten();
            for (k, _) in added {
                let ours = k.starts_with("buildplane.openchoreo.dev/");
                if ours && workload["metadata"][key].get(k).is_none() {
                    return Err(invariant(format!(
                        "metadata.{key}.{k}: the domain buildplane.openchoreo.dev is buildplane's own"
                    )));
                }
            }
        }
        // Still a Workload the control plane takes (labels and annotations added by the
        // envelope are checked as the output's are), provenance aside.
        let mut plain = out.clone();
        if let Some(a) = plain
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.retain(|k, _| !super::provenance::KEYS.contains(&k.as_str()));
        }
        serde_json::from_value::<super::workload::Workload>(plain)
            .map_err(|e| e.to_string())
            .and_then(|w| super::workload::validate(&w).map_err(|e| e.to_string()))
            .map_err(invariant)?;
        Ok(out)
    }
}

/// The documents of a rendered template. A text that is one JSON object (YAML's JSON form, as
/// the built-in per-build templates are written) is read as JSON, several times faster than
/// the YAML parser; anything else as a YAML stream. Null documents are left out.
fn documents(text: &str) -> Result<Vec<Value>, String> {
    if text.trim_start().starts_with('{')
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return Ok(vec![v]);
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// What a rendered object must keep of the canonical one (JSON pointers).
#[derive(Debug, Clone, Copy)]
pub struct Invariants {
    /// Equal to the canonical object's value (or both absent).
    pub equal: &'static [&'static str],
    /// Maps that hold at least the canonical object's entries, with the same values.
    pub superset: &'static [&'static str],
    /// Absent from the rendered object.
    pub absent: &'static [&'static str],
}

/// The first way `rendered` breaks `rules` against `canonical`, as a message naming the field.
pub fn check(rendered: &Value, canonical: &Value, rules: &Invariants) -> Result<(), String> {
    let path = |p: &str| p.trim_start_matches('/').replace('/', ".");
    for p in rules.equal {
        let (r, c) = (rendered.pointer(p), canonical.pointer(p));
        if r != c {
            return Err(format!(
                "{} must be {} (it is {})",
                path(p),
                shown(c),
                shown(r)
            ));
        }
    }
    for p in rules.superset {
        let got = rendered.pointer(p).and_then(Value::as_object);
        for (k, v) in canonical
            .pointer(p)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let have = got.and_then(|g| g.get(k));
            if have != Some(v) {
                return Err(format!(
                    "{}.{k} must be {} (it is {})",
                    path(p),
                    shown(Some(v)),
                    shown(have)
                ));
            }
        }
    }
    for p in rules.absent {
        if rendered.pointer(p).is_some() {
            return Err(format!("{} is not allowed here", path(p)));
        }
    }
    Ok(())
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None => "absent".to_owned(),
        Some(v) => {
            let t = v.to_string();
            if t.chars().count() > 120 {
                format!("{}…", t.chars().take(120).collect::<String>())
            } else {
                t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: Invariants = Invariants {
        equal: &["/kind", "/metadata/name"],
        superset: &["/metadata/labels"],
        absent: &["/spec/templates"],
    };

    #[test]
    fn an_envelope_is_given_the_build_only_when_it_reads_it() {
        assert!(
            !WorkloadEnvelope::builtin().reads_build,
            "no Build serialized per emit"
        );
        let origin = crate::core::spec::Origin {
            file: "b.yaml".into(),
            document: 1,
            documents: 1,
        };
        let build = crate::core::spec::build_from_value(
            &origin,
            json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
                "metadata": {"name": "cart-1", "namespace": "acme"},
                "spec": {"owner": {"projectName": "shop", "componentName": "cart"},
                    "repository": {"url": "https://git.example.com/shop.git",
                        "revision": {"branch": "main"}, "appPath": "/"},
                    "templateRef": {"name": "docker"}}}),
        )
        .unwrap();
        let workload = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": "cart", "namespace": "acme"},
            "spec": {"owner": {"projectName": "shop", "componentName": "cart"}}});
        let text = "apiVersion: [[ workload.apiVersion | tojson ]]\nkind: Workload\n\
            metadata:\n  name: cart\n  namespace: acme\n\
            \x20 labels: {team.example.com/build: [[ build.metadata.name | tojson ]]}\n\
            spec: [[ workload.spec | tojson ]]\n";
        let envelope = WorkloadEnvelope::new("envelope.yaml".into(), text.into()).unwrap();
        assert!(envelope.reads_build);
        let out = envelope.wrap(&workload, &build, "acme/cart-1").unwrap();
        assert_eq!(
            out["metadata"]["labels"]["team.example.com/build"],
            "cart-1"
        );
        let plain = WorkloadEnvelope::builtin()
            .wrap(&workload, &build, "acme/cart-1")
            .unwrap();
        assert_eq!(plain, workload);
    }

    #[test]
    fn an_overlay_may_add_but_not_change_or_drop() {
        let canonical =
            json!({"kind": "Workflow", "metadata": {"name": "a", "labels": {"x": "1"}}});
        let mut added = canonical.clone();
        added["metadata"]["labels"]["team"] = json!("t");
        added["spec"] = json!({"podGC": {"strategy": "OnPodSuccess"}});
        assert_eq!(check(&added, &canonical, &RULES), Ok(()));
        let mut renamed = canonical.clone();
        renamed["metadata"]["name"] = json!("b");
        assert_eq!(
            check(&renamed, &canonical, &RULES).unwrap_err(),
            "metadata.name must be \"a\" (it is \"b\")"
        );
        let mut dropped = canonical.clone();
        dropped["metadata"]["labels"] = json!({"team": "t"});
        assert_eq!(
            check(&dropped, &canonical, &RULES).unwrap_err(),
            "metadata.labels.x must be \"1\" (it is absent)"
        );
        let mut inline = canonical.clone();
        inline["spec"] = json!({"templates": []});
        assert_eq!(
            check(&inline, &canonical, &RULES).unwrap_err(),
            "spec.templates is not allowed here"
        );
    }

    #[test]
    fn overlays_replace_known_files_only_and_errors_name_them() {
        let t = BuildTemplates::builtin();
        assert!(!t.overlaid(BUILD_OBJECT));
        let e = BuildTemplates::with_overlays(vec![Overlay {
            file: "workflw.yaml".into(),
            origin: "dir/workflw.yaml".into(),
            text: String::new(),
        }])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dir/workflw.yaml: not a per-build template (they are: prerequisites.yaml, workflow.yaml)"
        );
        let e = BuildTemplates::with_overlays(vec![Overlay {
            file: BUILD_OBJECT.into(),
            origin: "dir/workflow.yaml".into(),
            text: "[% if %]".into(),
        }])
        .unwrap_err();
        assert!(e.to_string().starts_with("dir/workflow.yaml: "), "{e}");
        let t = BuildTemplates::with_overlays(vec![Overlay {
            file: BUILD_OBJECT.into(),
            origin: "dir/workflow.yaml".into(),
            text: "kind: [[ names.x ]]".into(),
        }])
        .unwrap();
        assert!(t.overlaid(BUILD_OBJECT));
        let ctx = TplValue::from_serialize(json!({"names": {}}));
        let e = t.render(BUILD_OBJECT, &ctx, "o/b").unwrap_err().to_string();
        assert!(e.starts_with("dir/workflow.yaml for Build o/b: "), "{e}");
    }
}
