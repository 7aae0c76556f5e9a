//! Per-build objects through the templates of `templates/` (`core::templates`): for each Build
//! its build object, and each organization's prerequisites once, checked against what
//! buildplane relies on (the engine's canonical objects and invariants) and stamped with the
//! provenance of this render.

use super::{LoadedBuild, PipelineError, clashes};
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::provenance;
use crate::core::render::{self, Chart};
use crate::core::templates::{self, BuildTemplates, TemplateError};
use crate::engine::{self, Engine};
use minijinja::{Value as TplValue, context};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How this run renders per-build objects.
#[derive(Debug, Clone)]
pub struct BuildRender {
    pub templates: Arc<BuildTemplates>,
    /// The merged values the templates see as `values`.
    pub values: Arc<TplValue>,
    /// `sha256:…` of each ClusterWorkflowTemplate as this run renders it, by name: where the
    /// run knows the bundle's values (render, diff, apply), stamped on the build objects that
    /// use it.
    pub template_digests: BTreeMap<String, String>,
    /// `sha256:…` of the merged values (Secrets' data masked), where the run has values.
    pub values_digest: Option<String>,
}

impl Default for BuildRender {
    /// The built-in templates with the chart's default values and no digests: what `sync`,
    /// `retry` and the controller render with (they have no values, so they cannot tell which
    /// templates and values the build plane was installed with).
    fn default() -> BuildRender {
        let chart = Chart::builtin();
        let values = render::defaults(&chart).unwrap_or_default();
        BuildRender {
            templates: Arc::new(BuildTemplates::builtin()),
            values: Arc::new(TplValue::from_serialize(&values)),
            template_digests: BTreeMap::new(),
            values_digest: None,
        }
    }
}

impl BuildRender {
    /// With the merged `values` and the `bundle` they render (its ClusterWorkflowTemplates are
    /// digested).
    pub fn with_values(templates: BuildTemplates, values: &Value, bundle: &[Manifest]) -> Self {
        let template_digests = bundle
            .iter()
            .filter(|m| m.id.kind == "ClusterWorkflowTemplate")
            .map(|m| (m.id.name.clone(), digest(&m.object)))
            .collect();
        BuildRender {
            templates: Arc::new(templates),
            values: Arc::new(TplValue::from_serialize(values)),
            template_digests,
            values_digest: Some(digest(&masked(values))),
        }
    }

    /// The provenance annotations of a build object of `template`.
    fn provenance(&self, template: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(3);
        if let Some(d) = self.template_digests.get(template) {
            out.push((provenance::TEMPLATE_DIGEST, d.clone()));
        }
        if let Some(d) = &self.values_digest {
            out.push((provenance::VALUES_DIGEST, d.clone()));
        }
        out.push((provenance::VERSION, provenance::version().to_owned()));
        out
    }
}

/// `sha256:<hex>` of a value's JSON (keys sorted).
pub fn digest(v: &Value) -> String {
    let bytes = serde_json::to_vec(v).expect("a JSON value serializes");
    format!(
        "sha256:{}",
        crate::core::naming::hex(&Sha256::digest(&bytes))
    )
}

/// The values with the data of every Secret among `extraObjects` replaced: a digest must not
/// let anyone test a guess of a Secret's value.
fn masked(values: &Value) -> Value {
    let mut v = values.clone();
    if let Some(objects) = v.get_mut("extraObjects").and_then(Value::as_array_mut) {
        for o in objects.iter_mut().filter(|o| o["kind"] == "Secret") {
            for key in ["data", "stringData"] {
                if let Some(d) = o.get_mut(key) {
                    *d = json!("(masked)");
                }
            }
        }
    }
    v
}

/// Each Build with its engine; an unknown engine is an error on its file.
fn with_engines(builds: &[LoadedBuild]) -> Result<Vec<&'static dyn Engine>, PipelineError> {
    Ok(builds
        .iter()
        .map(|lb| engine::for_build(&lb.origin, &lb.build))
        .collect::<Result<_, _>>()?)
}

/// The build object each Build renders, in input order.
fn object_ids(builds: &[LoadedBuild]) -> Result<Vec<ObjectId>, PipelineError> {
    Ok(with_engines(builds)?
        .iter()
        .zip(builds)
        .map(|(e, lb)| e.build_object_id(lb.build.organization(), &lb.build.metadata.name))
        .collect())
}

/// Two Builds that name the same Build or render the same build object: the first clash.
pub fn check_clashes(builds: &[LoadedBuild]) -> Result<(), PipelineError> {
    let ids = object_ids(builds)?;
    let refs: Vec<&ObjectId> = ids.iter().collect();
    match clashes(builds, &refs).into_iter().next() {
        Some(clash) => Err(clash.error),
        None => Ok(()),
    }
}

/// The Builds' indices in the canonical order of their build objects.
pub fn build_object_order(builds: &[LoadedBuild]) -> Result<Vec<(usize, ObjectId)>, PipelineError> {
    let mut order: Vec<(usize, ObjectId)> = object_ids(builds)?.into_iter().enumerate().collect();
    order.sort_by(|(_, a), (_, b)| {
        let rank = |id: &ObjectId| crate::core::manifest::kind_rank(&id.kind);
        (rank(a), &a.kind, &a.namespace, &a.name).cmp(&(rank(b), &b.kind, &b.namespace, &b.name))
    });
    Ok(order)
}

/// Which Builds render their organization's prerequisites: the first of each (per engine).
fn firsts(builds: &[LoadedBuild]) -> Result<Vec<bool>, PipelineError> {
    let mut seen = BTreeSet::new();
    Ok(with_engines(builds)?
        .iter()
        .zip(object_ids(builds)?)
        .map(|(e, id)| seen.insert((e.name(), id.namespace)))
        .collect())
}

/// The objects for a set of Builds: each organization's prerequisites once (before its first
/// Build's object), and one build object per Build, through the templates. Duplicates are
/// errors, not silent overwrites.
pub fn render_builds(
    builds: &[LoadedBuild],
    r: &BuildRender,
) -> Result<Vec<Manifest>, PipelineError> {
    check_clashes(builds)?;
    let jobs: Vec<(&LoadedBuild, &'static dyn Engine, bool)> = builds
        .iter()
        .zip(with_engines(builds)?)
        .zip(firsts(builds)?)
        .map(|((lb, e), first)| (lb, e, first))
        .collect();
    let rendered =
        crate::core::par::map(&jobs, |(lb, e, first)| render_one(lb, *e, r, *first, true));
    collect(rendered, builds.len() + 8)
}

/// Each organization's prerequisites, once.
pub fn render_prerequisites(
    builds: &[LoadedBuild],
    r: &BuildRender,
) -> Result<Vec<Manifest>, PipelineError> {
    let jobs: Vec<(&LoadedBuild, &'static dyn Engine)> = builds
        .iter()
        .zip(with_engines(builds)?)
        .zip(firsts(builds)?)
        .filter(|(_, first)| *first)
        .map(|(pair, _)| pair)
        .collect();
    let rendered = crate::core::par::map(&jobs, |(lb, e)| render_one(lb, *e, r, true, false));
    collect(rendered, jobs.len() * 4)
}

/// The build objects of `builds`, in their order.
pub fn render_build_objects(
    builds: &[&LoadedBuild],
    r: &BuildRender,
) -> Result<Vec<Manifest>, PipelineError> {
    let jobs: Vec<(&LoadedBuild, &'static dyn Engine)> = builds
        .iter()
        .map(|lb| Ok((*lb, engine::for_build(&lb.origin, &lb.build)?)))
        .collect::<Result<_, PipelineError>>()?;
    let rendered = crate::core::par::map(&jobs, |(lb, e)| render_one(lb, *e, r, false, true));
    collect(rendered, builds.len())
}

/// The objects of each job in order; the first error in input order.
fn collect(
    rendered: Vec<Result<Vec<Manifest>, TemplateError>>,
    capacity: usize,
) -> Result<Vec<Manifest>, PipelineError> {
    let mut objects = Vec::with_capacity(capacity);
    for one in rendered {
        objects.extend(one?);
    }
    Ok(objects)
}

/// One Build's objects: its organization's prerequisites first when asked, then its build
/// object when asked.
fn render_one(
    lb: &LoadedBuild,
    e: &dyn Engine,
    r: &BuildRender,
    with_prerequisites: bool,
    with_object: bool,
) -> Result<Vec<Manifest>, TemplateError> {
    let b = &lb.build;
    let label = format!("{}/{}", b.organization(), b.metadata.name);
    let provenance = r.provenance(&b.spec.template_ref.name);
    let mut ctx = e.template_context(b);
    for (k, v) in &provenance {
        ctx["annotations"][*k] = json!(v);
    }
    let mut seen = TplValue::from_serialize(&ctx);
    // The Build as the templates see it, when one of them reads it.
    if r.templates.reads_build() {
        let mut build = serde_json::to_value(b).expect("a Build serializes");
        build["metadata"]["namespace"] = json!(b.organization());
        seen = context! { build => TplValue::from_serialize(&build), ..seen };
    }
    let canonical_object = with_object.then(|| e.object_from_context(ctx));
    let ctx = context! { values => r.values.as_ref().clone(), ..seen };
    let mut out = Vec::with_capacity(5);
    if with_prerequisites {
        let canonical = e.prerequisites(b);
        let docs = r.templates.render(templates::PREREQUISITES, &ctx, &label)?;
        out.extend(checked(
            e,
            r,
            templates::PREREQUISITES,
            docs,
            &canonical,
            &label,
        )?);
    }
    let Some(canonical) = canonical_object else {
        return Ok(out);
    };
    let docs = r.templates.render(templates::BUILD_OBJECT, &ctx, &label)?;
    out.extend(checked(
        e,
        r,
        templates::BUILD_OBJECT,
        docs,
        std::slice::from_ref(&canonical),
        &label,
    )?);
    Ok(out)
}

/// The rendered documents of `file`, each matched to the canonical object of its kind and
/// checked against the engine's invariants (and, for an overlay, the API's schema and the
/// lint); in the canonical order.
fn checked(
    e: &dyn Engine,
    r: &BuildRender,
    file: &str,
    docs: Vec<Value>,
    canonical: &[Manifest],
    build: &str,
) -> Result<Vec<Manifest>, TemplateError> {
    let origin = r.templates.origin(file).cloned().unwrap_or_default();
    let fail = |object: String, problem: String| TemplateError::Invariant {
        origin: origin.clone(),
        build: build.to_owned(),
        object,
        problem,
    };
    let overlaid = r.templates.overlaid(file);
    let mut by_kind: BTreeMap<String, Value> = BTreeMap::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let known = canonical.iter().any(|c| c.id.kind == kind);
        if !known || by_kind.contains_key(kind) {
            return Err(fail(
                format!("document {}", i + 1),
                format!(
                    "renders {} {kind:?}: this template renders exactly {}",
                    if known {
                        "a second"
                    } else {
                        "an object of kind"
                    },
                    canonical
                        .iter()
                        .map(|c| c.id.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        by_kind.insert(kind.to_owned(), doc);
    }
    let mut out = Vec::with_capacity(canonical.len());
    for c in canonical {
        let Some(doc) = by_kind.remove(&c.id.kind) else {
            return Err(fail(c.id.to_string(), "is not rendered".into()));
        };
        templates::check(&doc, &c.object, &e.invariants(&c.id.kind))
            .map_err(|p| fail(c.id.to_string(), p))?;
        if overlaid {
            e.validate_rendered(&c.id.kind, &doc)
                .map_err(|p| fail(c.id.to_string(), p))?;
            if let Some(f) = crate::core::lint::lint_template(&doc, false).first() {
                return Err(fail(
                    c.id.to_string(),
                    format!("{}: {}", f.field, f.problem),
                ));
            }
        }
        out.push(Manifest::new(doc).map_err(|m| fail(c.id.to_string(), m.to_string()))?);
    }
    Ok(out)
}
