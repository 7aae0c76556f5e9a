//! Builds already on the build plane, found without their Build files: an organization's (or
//! every one's) for `list`, `ORG/BUILD` for `get`, `stop`, `watch` and `logs`. They are found by
//! the labels rendering writes on their build objects (`Engine::selector`): one LIST per engine
//! and organization, never a request per build. `stop` is one merge patch per build.

use super::Target;
use crate::core::builds::{BuildRef, StopDecision, StopMode, decide_stop};
use crate::core::manifest::ObjectId;
use crate::core::progress::BuildRecord;
use crate::core::spec::Origin;
use crate::engine::{self, DeriveError, Engine};
use crate::kube::{Kube, KubeError, Resource};
use crate::pipeline::LoadedBuild;
use serde_json::Value;
use std::collections::BTreeMap;

/// Finding or stopping builds failed.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// A cluster call failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// No build object carries the labels of these builds (each named with where it was
    /// looked for).
    #[error("not found on the build plane: {}", .missing.join("; "))]
    NotFound { missing: Vec<String> },
    /// Several build objects carry one build's labels and none has the name its Build file
    /// would give it.
    #[error("{build}: {} objects carry its labels ({}), none named {expected}", .objects.len(), .objects.join(", "))]
    Ambiguous {
        build: String,
        objects: Vec<String>,
        expected: String,
    },
    /// The build object does not record what following or emitting needs.
    #[error(transparent)]
    Derive(#[from] DeriveError),
}

impl FindError {
    /// Whether this is kubectl's NotFound: the command had nothing to act on (exit 1, not an
    /// error of input or cluster).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FindError::NotFound { .. })
    }
}

/// A build object found on the build plane, with what it says.
#[derive(Clone)]
pub struct Found {
    pub engine: &'static dyn Engine,
    pub object: Value,
    pub record: BuildRecord,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Found({} {})", self.record.label(), self.id())
    }
}

impl Found {
    fn new(engine: &'static dyn Engine, object: Value) -> Found {
        let record = engine.record(&object);
        Found {
            engine,
            object,
            record,
        }
    }

    /// The build object, `Kind/namespace/name`.
    pub fn id(&self) -> ObjectId {
        ObjectId {
            api_version: self.engine.build_kind().api_version.to_owned(),
            kind: self.record.kind.clone(),
            namespace: Some(self.record.namespace.clone()),
            name: self.record.name.clone(),
        }
    }

    /// What `watch` follows and `get` harvests for `name`: the Build read back from the object
    /// (`Engine::build_of`), so the outcome, its conditions and every emit are the ones a Build
    /// file would give.
    pub fn target(&self, name: &BuildRef) -> Result<Target, DeriveError> {
        let build = self
            .engine
            .build_of(&self.object, &name.organization, &name.build)?;
        Ok(Target {
            build: LoadedBuild {
                origin: Origin {
                    file: name.to_string(),
                    document: 1,
                    documents: 1,
                },
                build,
            },
            engine: self.engine,
            namespace: self.record.namespace.clone(),
            name: self.record.name.clone(),
        })
    }
}

/// The resource of `engine`'s build objects, or `None` when the cluster does not serve it.
async fn served(kube: &Kube, engine: &dyn Engine) -> Result<Option<Resource>, KubeError> {
    let kind = engine.build_kind();
    kube.resource(kind.api_version, kind.kind).await
}

/// The resource of every engine the cluster serves; none at all is an error naming the kind.
async fn served_engines(kube: &Kube) -> Result<Vec<(&'static dyn Engine, Resource)>, KubeError> {
    let mut out = Vec::new();
    for &e in engine::all() {
        if let Some(r) = served(kube, e).await? {
            out.push((e, r));
        }
    }
    if out.is_empty() {
        let kind = engine::DEFAULT.build_kind();
        return Err(KubeError::NoApi {
            object: "builds".into(),
            api_version: kind.api_version.into(),
            kind: kind.kind.into(),
        });
    }
    Ok(out)
}

/// Every build of organization `org` (of every organization for `None`), sorted by
/// organization, build, namespace and name: one LIST per engine.
pub async fn list(kube: &Kube, org: Option<&str>) -> Result<Vec<Found>, FindError> {
    let mut out = Vec::new();
    for (e, r) in served_engines(kube).await? {
        let namespace = org.map(|o| e.namespace(o));
        let items = kube
            .list_matching(&r, namespace.as_deref(), &e.selector(org, &[]))
            .await?;
        out.extend(items.into_iter().map(|o| Found::new(e, o)));
    }
    out.sort_by(|a, b| {
        let key = |f: &Found| {
            let r = &f.record;
            (
                r.organization.clone(),
                r.build.clone(),
                r.namespace.clone(),
                r.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(out)
}

/// The build object of each name, in the order given: one LIST per engine and organization.
/// Every name must be found (nothing is done with some when others are missing, as nothing
/// is applied before every file is read).
pub async fn resolve(kube: &Kube, names: &[BuildRef]) -> Result<Vec<Found>, FindError> {
    let mut by_org: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in names {
        by_org
            .entry(n.organization.as_str())
            .or_default()
            .push(n.build.as_str());
    }
    let engines = served_engines(kube).await?;
    let mut listed: Vec<Found> = Vec::new();
    for (org, builds) in &by_org {
        for (e, r) in &engines {
            let items = kube
                .list_matching(r, Some(&e.namespace(org)), &e.selector(Some(org), builds))
                .await?;
            listed.extend(items.into_iter().map(|o| Found::new(*e, o)));
        }
    }
    let mut out = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for n in names {
        match pick(&listed, n)? {
            Some(f) => out.push(f.clone()),
            None => missing.push(format!("{n} ({})", where_looked(&engines, n))),
        }
    }
    if !missing.is_empty() {
        return Err(FindError::NotFound { missing });
    }
    Ok(out)
}

/// Where `name`'s build object was looked for: `no Workflow in namespace … labelled …`.
fn where_looked(engines: &[(&'static dyn Engine, Resource)], name: &BuildRef) -> String {
    let places: Vec<String> = engines
        .iter()
        .map(|(e, _)| {
            format!(
                "no {} in namespace {} labelled {}",
                e.build_kind().kind,
                e.namespace(&name.organization),
                e.selector(Some(&name.organization), &[&name.build])
            )
        })
        .collect();
    places.join(", ")
}

/// The build object of `name` among `listed`: the only one carrying its labels, or the one
/// among several named as its Build file names it.
fn pick<'a>(listed: &'a [Found], name: &BuildRef) -> Result<Option<&'a Found>, FindError> {
    let candidates: Vec<&Found> = listed
        .iter()
        .filter(|f| f.engine.runs(&f.object, &name.organization, &name.build))
        .collect();
    match candidates.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => {
            let expected = |f: &Found| f.engine.object_name(&name.build);
            if let Some(f) = many.iter().find(|f| f.record.name == expected(f)) {
                return Ok(Some(f));
            }
            Err(FindError::Ambiguous {
                build: name.to_string(),
                objects: many.iter().map(|f| f.id().to_string()).collect(),
                expected: expected(many[0]),
            })
        }
    }
}

/// What `stop` did with one build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The stop was asked for (one patch sent).
    Requested(StopMode),
    /// It had been asked for already; nothing was sent.
    AlreadyRequested(StopMode),
    /// The build had finished; nothing was sent.
    Finished,
}

/// Asks `found` to stop as `mode` says, unless it finished or was asked already
/// (`core::builds::decide_stop`).
pub async fn stop(kube: &Kube, found: &Found, mode: StopMode) -> Result<Stopped, FindError> {
    let finished = found.engine.is_finished(&found.object);
    match decide_stop(finished, found.record.stop_requested, mode) {
        StopDecision::Finished => Ok(Stopped::Finished),
        StopDecision::AlreadyRequested(m) => Ok(Stopped::AlreadyRequested(m)),
        StopDecision::Request(m) => {
            let id = found.id();
            let r = served(kube, found.engine)
                .await?
                .ok_or_else(|| KubeError::NoApi {
                    object: id.to_string(),
                    api_version: id.api_version.clone(),
                    kind: id.kind.clone(),
                })?;
            kube.merge_patch(&r, &id, &found.engine.stop_patch(m))
                .await?;
            Ok(Stopped::Requested(m))
        }
    }
}
