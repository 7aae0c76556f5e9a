//! The one flow every command shares: read inputs → merge values → render → sort. Everything
//! is read and validated before anything is produced, so bad input yields an error and no
//! output (and, for the commands that talk to a cluster, no request).

use crate::core::catalog::{self, Catalog, Declared};
use crate::core::manifest::{self, Manifest, ObjectId};
use crate::core::render::{self, Chart, RenderError};
use crate::core::spec::{self, Build, Origin, SpecError};
use crate::core::templates::{BuildTemplates, Overlay};
use crate::core::values::{self, NotApplicable, SetKind, ValuesError};
use crate::engine;
use crate::source::{self, SourceError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a render could not be made. Every variant is bad input (exit code 2) except
/// `Render`, which may also be a chart bug.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A values input is malformed or the merged values break the schema.
    #[error(transparent)]
    Values(#[from] ValuesError),
    /// A values file is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    ValuesYaml { file: String, message: String },
    /// The file of a `--set-file` could not be read.
    #[error("--set-file {key}")]
    SetFile {
        key: String,
        #[source]
        source: SourceError,
    },
    /// Stdin was named more than once (`-f -`, `--set-file key=-`): it can be read once.
    #[error("stdin can be read only once, and is named by {0}")]
    StdinTwice(String),
    /// A Build file is malformed or a Build is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Two Builds share a namespace and name.
    #[error("Build {namespace}/{name} is defined twice: in {first} and in {second}")]
    DuplicateBuild {
        namespace: String,
        name: String,
        first: String,
        second: String,
    },
    /// Two different Builds map to the same Workflow (names that differ only in characters
    /// the naming rule folds).
    #[error("{first} and {second} both render Workflow {workflow}")]
    DuplicateWorkflow {
        workflow: String,
        first: String,
        second: String,
    },
    /// A ClusterWorkflowTemplate failed the injection lint (the first finding; the count of
    /// the others).
    #[error("{first}{}", if *.more > 0 { format!(" (and {} more)", .more) } else { String::new() })]
    Lint {
        first: crate::core::lint::LintError,
        more: usize,
    },
    /// Rendering the chart failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A per-build template is unknown, broken, or renders what buildplane cannot rely on.
    #[error(transparent)]
    Template(#[from] crate::core::templates::TemplateError),
    /// The `--templates` directory could not be read.
    #[error("--templates {dir}")]
    TemplatesDir {
        dir: String,
        #[source]
        source: SourceError,
    },
    /// No Build file was found under the paths given.
    #[error("no Build files (*.yaml, *.yml) found in {0}")]
    NoBuildFiles(String),
}

/// What to render.
#[derive(Debug, Clone, Default)]
pub struct RenderRequest {
    /// `-f` files in order; `-` is stdin.
    pub values_files: Vec<PathBuf>,
    /// The `--set` family (`--set`, `--set-string`, `--set-file`, `--set-json`), each kind in
    /// command-line order; they are applied in Helm's order of kinds whatever the order here.
    pub sets: Vec<(SetKind, String)>,
    /// Build files or directories; empty means the chart bundle alone.
    pub builds: Vec<PathBuf>,
    /// Put the chart bundle in front of the build manifests.
    pub install: bool,
    /// Organization for Builds without `metadata.namespace`.
    pub default_namespace: Option<String>,
    /// Also render the control plane (CRDs and the controller).
    pub control_plane: Option<crate::core::control_plane::ControlPlaneSettings>,
    /// Values buildplane does not apply (`x-not-applicable`) are an error, not a warning.
    pub strict: bool,
    /// `--templates DIR`: per-build templates laid over the built-in ones (before the values'
    /// `buildTemplates`).
    pub templates_dir: Option<PathBuf>,
}

/// A Build with the place it came from.
#[derive(Debug, Clone)]
pub struct LoadedBuild {
    pub origin: Origin,
    pub build: Build,
}

/// The merged values, and the keys they set that buildplane accepts but does not apply.
#[derive(Debug, Clone)]
pub struct Merged {
    pub values: Value,
    /// One per key and input, to be printed as a warning (an error with `strict`).
    pub not_applicable: Vec<NotApplicable>,
}

/// The merged values, as Helm merges them (`core::values`): the user's values are each `-f`
/// file in order, then the `--set` family in Helm's order (`SetKind::helm_rank`: `--set-json`,
/// `--set`, `--set-string`, `--set-file`, each in the order given); they are coalesced over the
/// chart's defaults and validated. Every flag is parsed before any file is read, and nothing
/// is used before the whole result validated. Keys the schema marks `x-not-applicable` are
/// reported with the input that set them; with `req.strict` they are an error.
pub fn merged_values(chart: &Chart, req: &RenderRequest) -> Result<Merged, PipelineError> {
    let mut sets = req
        .sets
        .iter()
        .map(|(kind, expr)| Ok((*kind, expr.as_str(), values::parse_set(expr, *kind)?)))
        .collect::<Result<Vec<_>, ValuesError>>()?;
    sets.sort_by_key(|(kind, _, _)| kind.helm_rank());
    check_stdin_once(req, &sets)?;
    let mut user = Value::Object(serde_json::Map::new());
    // Each input as its own overlay, to name the one that set a not-applicable key.
    let mut inputs: Vec<(String, Value)> = Vec::new();
    for path in &req.values_files {
        let (file, text) = if is_stdin(path) {
            (source::STDIN_NAME.to_owned(), source::read_stdin()?)
        } else {
            (path.display().to_string(), source::read_text(path)?)
        };
        let overlay: Value =
            serde_saphyr::from_str(&text).map_err(|e| PipelineError::ValuesYaml {
                file: file.clone(),
                message: e.to_string().lines().next().unwrap_or_default().to_owned(),
            })?;
        match overlay {
            Value::Null => {}
            Value::Object(_) => {
                inputs.push((file, overlay.clone()));
                values::merge_maps(&mut user, overlay)
            }
            _ => return Err(ValuesError::NotAMap { source_name: file }.into()),
        }
    }
    for (kind, expr, mut assignments) in sets {
        if kind == SetKind::File {
            for a in &mut assignments {
                let path = PathBuf::from(a.value.as_str().unwrap_or_default());
                let text = if is_stdin(&path) {
                    source::read_stdin()
                } else {
                    source::read_text(&path)
                };
                let text = text.map_err(|source| PipelineError::SetFile {
                    key: a.key.clone(),
                    source,
                })?;
                a.value = Value::String(text);
            }
        }
        let mut overlay = Value::Object(serde_json::Map::new());
        values::assign(&mut overlay, assignments.clone());
        inputs.push((format!("{} {expr}", kind.flag()), overlay));
        values::assign(&mut user, assignments);
    }
    let mut merged = render::defaults(chart)?;
    values::coalesce(&mut merged, user);
    let schema = chart.values_schema()?;
    values::validate(&merged, &schema)?;
    let mut not_applicable = values::not_applicable(&inputs, &schema, &merged);
    if req.control_plane.is_none() {
        not_applicable.extend(crate::core::control_plane::unread_values(&inputs));
    }
    if req.strict && !not_applicable.is_empty() {
        return Err(ValuesError::NotApplicable(not_applicable).into());
    }
    Ok(Merged {
        values: merged,
        not_applicable,
    })
}

/// `-` reads stdin, as in Helm and kubectl (a file named `-` is `./-`).
fn is_stdin(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

/// Stdin can be read once: more than one `-f -` or `--set-file key=-` is refused before
/// anything is read.
fn check_stdin_once(
    req: &RenderRequest,
    sets: &[(SetKind, &str, Vec<values::Assignment>)],
) -> Result<(), PipelineError> {
    let files = (req.values_files.iter())
        .filter(|p| is_stdin(p))
        .map(|_| "-f -".to_owned());
    let set_files = (sets.iter())
        .filter(|(kind, _, _)| *kind == SetKind::File)
        .flat_map(|(_, _, a)| a)
        .filter(|a| a.value.as_str() == Some("-"))
        .map(|a| format!("--set-file {}=-", a.key));
    let uses: Vec<String> = files.chain(set_files).collect();
    if uses.len() > 1 {
        return Err(PipelineError::StdinTwice(uses.join(", ")));
    }
    Ok(())
}

/// Reads and validates every Build under `paths`. Files are read and parsed in parallel; the
/// error reported is the first in file order, so it does not depend on scheduling. With a
/// `catalog`, each Build's template and parameters are checked against it (`catalog::check`);
/// without, only what no template may take (for commands that follow builds already applied).
pub fn load_builds(
    paths: &[PathBuf],
    default_namespace: Option<&str>,
    catalog: Option<&Catalog>,
) -> Result<Vec<LoadedBuild>, PipelineError> {
    let files = source::expand_paths(paths)?;
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(PipelineError::NoBuildFiles(shown.join(", ")));
    }
    let per_file =
        crate::core::par::map(&files, |file| load_file(file, default_namespace, catalog));
    let mut builds = Vec::with_capacity(files.len());
    for result in per_file {
        builds.extend(result?);
    }
    Ok(builds)
}

fn load_file(
    file: &source::InputFile,
    default_namespace: Option<&str>,
    catalog: Option<&Catalog>,
) -> Result<Vec<LoadedBuild>, PipelineError> {
    let text = file.read()?;
    builds_in_text(
        &file.name.display().to_string(),
        &text,
        default_namespace,
        false,
        catalog,
    )
}

/// The Builds of one file's text, validated (against `catalog` when given, as in
/// [`load_builds`]). With `only_builds`, documents of other kinds are left out instead of being
/// errors: a sync source may hold Workloads next to Builds.
pub fn builds_in_text(
    name: &str,
    text: &str,
    default_namespace: Option<&str>,
    only_builds: bool,
    catalog: Option<&Catalog>,
) -> Result<Vec<LoadedBuild>, PipelineError> {
    let mut builds = Vec::new();
    for (origin, doc) in spec::parse_documents(name, text)? {
        let kind = doc.get("kind").and_then(Value::as_str);
        if only_builds && kind.is_some_and(|k| k != "Build") {
            continue;
        }
        let mut build = spec::build_from_value(&origin, doc)?;
        if build.metadata.namespace.is_none() {
            build.metadata.namespace = default_namespace.map(str::to_owned);
        }
        engine::for_build(&origin, &build)?.validate(&origin, &build)?;
        if let Some(catalog) = catalog {
            catalog::check(catalog, &origin, &build)?;
        }
        builds.push(LoadedBuild { origin, build });
    }
    Ok(builds)
}

/// Two Builds that cannot both be rendered: `second` (an index into the Builds) names the same
/// Build as `first`, or renders the same build object.
#[derive(Debug)]
pub struct Clash {
    pub first: usize,
    pub second: usize,
    pub error: PipelineError,
}

/// Every later definition that clashes with an earlier one, in input order; `objects[i]` is the
/// build object Build `i` renders. A one-shot render stops at the first; a sync loop sets aside
/// the files of each.
pub fn clashes(builds: &[LoadedBuild], objects: &[&ObjectId]) -> Vec<Clash> {
    let mut by_name: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut by_object: BTreeMap<&ObjectId, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, (lb, id)) in builds.iter().zip(objects).enumerate() {
        let b = &lb.build;
        let origin = |j: usize| builds[j].origin.to_string();
        if let Some(&first) = by_name.get(&(b.organization(), b.metadata.name.as_str())) {
            out.push(Clash {
                first,
                second: i,
                error: PipelineError::DuplicateBuild {
                    namespace: b.organization().to_owned(),
                    name: b.metadata.name.clone(),
                    first: origin(first),
                    second: origin(i),
                },
            });
        } else if let Some(&first) = by_object.get(id) {
            out.push(Clash {
                first,
                second: i,
                error: PipelineError::DuplicateWorkflow {
                    workflow: id.to_string(),
                    first: origin(first),
                    second: origin(i),
                },
            });
        }
        by_name
            .entry((b.organization(), &b.metadata.name))
            .or_insert(i);
        by_object.entry(id).or_insert(i);
    }
    out
}

/// A render split by where objects come from: they are recorded in different inventories.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The build-plane bundle (empty unless it was asked for).
    pub bundle: Vec<Manifest>,
    /// Per-build objects, minus those the bundle already holds.
    pub builds: Vec<Manifest>,
    /// The control plane's CRDs and controller (empty unless asked for).
    pub control_plane: Vec<Manifest>,
    /// Values set that buildplane does not apply: the caller warns about each.
    pub not_applicable: Vec<NotApplicable>,
}

impl Rendered {
    /// Both parts in the canonical order.
    pub fn all(&self) -> Vec<Manifest> {
        let mut out: Vec<Manifest> = (self.control_plane.iter())
            .chain(&self.bundle)
            .chain(&self.builds)
            .cloned()
            .collect();
        manifest::sort(&mut out);
        out
    }
}

/// Every ClusterWorkflowTemplate of the bundle passes the injection lint before anything is
/// printed or applied. Privileged steps are allowed where the values allow them: the built-in
/// templates (podman builds in the step pod) and an `extraTemplates` entry with
/// `allowPrivileged`; never a template added through `extraObjects`. The templates Builds may
/// name (built-in and `extraTemplates`) also pass the step contract (`lint::contract`).
pub fn lint_templates(bundle: &[Manifest], catalog: &Catalog) -> Result<(), PipelineError> {
    let mut found = bundle
        .iter()
        .filter(|m| m.id.kind == "ClusterWorkflowTemplate")
        .flat_map(|m| {
            // Only the templates Builds may name are in the catalog (never an `extraObjects` one).
            let declared = catalog.get(&m.id.name);
            let privileged = declared.is_some_and(Declared::privileged);
            let mut findings = crate::core::lint::lint_template(&m.object, privileged);
            if declared.is_some() {
                findings.extend(crate::core::lint::contract(&m.object));
            }
            findings
        });
    match found.next() {
        Some(first) => Err(PipelineError::Lint {
            first,
            more: found.count(),
        }),
        None => Ok(()),
    }
}

/// The whole render, split: values and Builds are read and validated first, then rendered.
pub fn render_parts(chart: &Chart, req: &RenderRequest) -> Result<Rendered, PipelineError> {
    let plan = plan_render(chart, req)?;
    let mut build_objects: Vec<Manifest> = render_builds(&plan.builds, &plan.build_render)?
        .into_iter()
        .filter(|m| !plan.in_bundle(&m.id))
        .collect();
    manifest::sort(&mut build_objects);
    Ok(Rendered {
        bundle: plan.bundle,
        builds: build_objects,
        control_plane: plan.control_plane,
        not_applicable: plan.not_applicable,
    })
}

/// Everything a render needs before the per-build objects: values merged and validated, every
/// Build loaded and checked, the bundle and the control plane rendered and sorted.
struct RenderPlan {
    bundle: Vec<Manifest>,
    control_plane: Vec<Manifest>,
    builds: Vec<LoadedBuild>,
    build_render: BuildRender,
    not_applicable: Vec<NotApplicable>,
    /// The bundle's objects (`Kind/ns/name`): a build namespace the bundle already prepares
    /// (buildNamespaces) is rendered once.
    bundle_ids: std::collections::HashSet<String>,
}

impl RenderPlan {
    fn in_bundle(&self, id: &ObjectId) -> bool {
        !self.bundle_ids.is_empty() && self.bundle_ids.contains(&id.to_string())
    }
}

fn plan_render(chart: &Chart, req: &RenderRequest) -> Result<RenderPlan, PipelineError> {
    // Values are checked even when only builds are rendered: a bad -f or --set is an error.
    let Merged {
        values,
        not_applicable,
    } = merged_values(chart, req)?;
    let with_chart = req.install || (req.builds.is_empty() && req.control_plane.is_none());
    let catalog = Catalog::with_values(&values);
    let builds = if req.builds.is_empty() {
        Vec::new()
    } else {
        load_builds(
            &req.builds,
            req.default_namespace.as_deref(),
            Some(&catalog),
        )?
    };
    let mut bundle = Vec::new();
    if with_chart || !builds.is_empty() {
        // Also without --install: the build objects carry the digests of their templates.
        bundle = render::render_chart(chart, &values)?;
        lint_templates(&bundle, &catalog)?;
    }
    let build_render = if builds.is_empty() {
        BuildRender::default()
    } else {
        BuildRender::with_values(build_templates(req, &values)?, &values, &bundle)
    };
    if !with_chart {
        bundle.clear();
    }
    let mut control_plane = req
        .control_plane
        .as_ref()
        .map(|settings| crate::core::control_plane::bundle(&settings.clone().with_values(&values)))
        .unwrap_or_default();
    manifest::sort(&mut bundle);
    manifest::sort(&mut control_plane);
    let bundle_ids = bundle.iter().map(|m| m.id.to_string()).collect();
    Ok(RenderPlan {
        bundle,
        control_plane,
        builds,
        build_render,
        not_applicable,
        bundle_ids,
    })
}

/// How many Builds [`render_streamed`] renders at a time.
const STREAM_CHUNK: usize = 2048;

/// The whole render in the canonical order, handed to `write` in pieces, as [`render`] would
/// return it; `warn` gets the values set that buildplane does not apply, before any write. The build objects — nearly all of a large render — are rendered
/// in sorted chunks and dropped once written, so memory holds the Builds, the small objects
/// and one chunk, not every object. Everything is read, rendered once and validated before the
/// first object is handed over.
pub fn render_streamed<E: From<PipelineError>>(
    chart: &Chart,
    req: &RenderRequest,
    warn: impl FnOnce(&[NotApplicable]),
    mut write: impl FnMut(&[Manifest]) -> Result<(), E>,
) -> Result<(), E> {
    let mut plan = plan_render(chart, req)?;
    builds::check_clashes(&plan.builds)?;
    let prerequisites = builds::render_prerequisites(&plan.builds, &plan.build_render)?;
    let prerequisites: Vec<Manifest> = (prerequisites.into_iter())
        .filter(|m| !plan.in_bundle(&m.id))
        .collect();
    let mut small: Vec<Manifest> = (plan.control_plane.drain(..))
        .chain(plan.bundle.drain(..))
        .chain(prerequisites)
        .collect();
    manifest::sort(&mut small);
    let order = builds::build_object_order(&plan.builds)?;
    let chunk_builds = |chunk: &[(usize, ObjectId)]| -> Vec<&LoadedBuild> {
        chunk.iter().map(|(i, _)| &plan.builds[*i]).collect()
    };
    // An overlay may fail on any Build: all of them are rendered once before anything is
    // written (the built-in templates render every valid Build).
    if plan.build_render.templates.any_overlaid() {
        for chunk in order.chunks(STREAM_CHUNK) {
            builds::render_build_objects(&chunk_builds(chunk), &plan.build_render)?;
        }
    }
    warn(&plan.not_applicable);
    let mut small = small.into_iter().peekable();
    for chunk in order.chunks(STREAM_CHUNK) {
        let objects = builds::render_build_objects(&chunk_builds(chunk), &plan.build_render)?;
        let mut out = Vec::with_capacity(objects.len() + 8);
        for object in objects.into_iter().filter(|m| !plan.in_bundle(&m.id)) {
            while small
                .peek()
                .is_some_and(|s| manifest::canonical_cmp(s, &object).is_lt())
            {
                out.extend(small.next());
            }
            out.push(object);
        }
        write(&out)?;
    }
    let rest: Vec<Manifest> = small.collect();
    write(&rest)
}

/// The per-build templates of a request: the built-in ones, then `--templates DIR` (each
/// `*.yaml` file of the directory, by name), then the values' `buildTemplates`.
pub fn build_templates(
    req: &RenderRequest,
    values: &Value,
) -> Result<BuildTemplates, PipelineError> {
    let mut overlays = Vec::new();
    if let Some(dir) = &req.templates_dir {
        let shown = dir.display().to_string();
        let files = source::expand_paths(std::slice::from_ref(dir)).map_err(|source| {
            PipelineError::TemplatesDir {
                dir: shown.clone(),
                source,
            }
        })?;
        for f in files {
            let text = f.read().map_err(|source| PipelineError::TemplatesDir {
                dir: shown.clone(),
                source,
            })?;
            overlays.push(Overlay {
                file: f
                    .name
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                origin: f.name.display().to_string(),
                text,
            });
        }
    }
    let from_values = values.get("buildTemplates").and_then(Value::as_object);
    for (file, text) in from_values.into_iter().flatten() {
        overlays.push(Overlay {
            file: file.clone(),
            origin: format!("values buildTemplates.{file}"),
            text: text.as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(BuildTemplates::with_overlays(overlays)?)
}

/// The whole render in the canonical order.
pub fn render(chart: &Chart, req: &RenderRequest) -> Result<Vec<Manifest>, PipelineError> {
    Ok(render_parts(chart, req)?.all())
}

pub mod builds;
pub mod check;
pub mod deploy;

pub use builds::{BuildRender, render_builds};
pub mod logs;
pub mod tolerant;
