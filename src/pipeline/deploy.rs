//! The diff/apply half of the pipeline: resolve every object's API, check permissions, read
//! the inventories and the live objects, then either compare (diff) or apply in stages and
//! prune. Nothing is written before every object has resolved and every permission is known.

use super::Rendered;
use crate::core::diff::{self, Change, PlanEntry, Summary};
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::plan::{self, BuildDecision, Entry, Inventory, STAGES, Stage};
use crate::engine;
use crate::kube::{Kube, KubeError, Resource, resource_from_crd};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Why diff or apply stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A cluster call failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The credentials lack permissions the plan needs; one line per permission.
    #[error("missing permissions, nothing was changed:\n{}", .0.join("\n"))]
    Forbidden(Vec<String>),
    /// An inventory ConfigMap is unreadable.
    #[error(transparent)]
    Inventory(#[from] plan::InventoryError),
    /// An object could not be shown as YAML.
    #[error(transparent)]
    Serialize(#[from] crate::core::manifest::SerializeError),
}

/// How diff and apply run.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Inventory of the build objects (the bundle always uses `build-plane`).
    pub inventory: String,
    /// Namespace of the inventory ConfigMaps.
    pub inventory_namespace: String,
    /// Delete objects recorded earlier and no longer rendered.
    pub prune: bool,
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// How many requests run at once within a stage.
    pub concurrency: usize,
    /// How long to wait for CRDs to be Established.
    pub crd_timeout: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            inventory: plan::BUILDS_INVENTORY.to_owned(),
            inventory_namespace: "default".to_owned(),
            prune: false,
            force_conflicts: false,
            concurrency: 16,
            crd_timeout: Duration::from_secs(60),
        }
    }
}

/// One rendered object with everything known about it before any write.
#[derive(Debug, Clone)]
pub struct Planned {
    pub manifest: Manifest,
    pub inventory: String,
    pub resource: Resource,
    /// Whether the cluster serves its kind yet (false for kinds of CRDs in this plan).
    pub served: bool,
    pub live: Option<Value>,
    pub recorded: Option<Entry>,
    pub stage: Stage,
}

/// An object to prune: recorded earlier, no longer rendered, still labelled as ours.
#[derive(Debug, Clone)]
pub struct Prunable {
    pub entry: Entry,
    pub inventory: String,
    pub resource: Resource,
    pub live: Value,
}

/// Everything read from the cluster before a diff or an apply.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub objects: Vec<Planned>,
    pub prune: Vec<Prunable>,
    pub inventories: BTreeMap<String, Inventory>,
}

/// What apply did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// Left alone, with the reason.
    Skipped(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Created => f.write_str("created"),
            Action::Configured => f.write_str("configured"),
            Action::Unchanged => f.write_str("unchanged"),
            Action::Pruned => f.write_str("pruned"),
            Action::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// A list request: apiVersion, kind, and namespace (none for all / cluster-scoped).
type ListKey = (String, String, Option<String>);
/// A permission to check: verb, API group, resource, namespace (none: cluster-wide).
type Permission = (String, String, String, Option<String>);

fn spec_hash_of(v: &Value) -> Option<String> {
    engine::spec_hash_of(v).map(str::to_owned)
}

/// The submit-once rule for a planned build object: its rendered spec hash against its
/// inventory record and the live object.
fn decide(p: &Planned) -> BuildDecision {
    let spec = spec_hash_of(&p.manifest.object).unwrap_or_default();
    let recorded = p.recorded.as_ref().and_then(|e| e.spec_hash.as_deref());
    let live = match (engine::for_object(&p.manifest.id), &p.live) {
        (Some(e), Some(l)) => Some(engine::live_build(e, l)),
        _ => None,
    };
    plan::decide_build(&spec, recorded, live)
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Resolves, checks and reads: the only phase that talks to the cluster before writes.
pub async fn prepare(
    kube: &Kube,
    rendered: &Rendered,
    opts: &DeployOptions,
) -> Result<Prepared, DeployError> {
    // 1. Label every object with its inventory.
    let mut labelled: Vec<(Manifest, String)> = Vec::new();
    for (set, inventory) in [
        (
            &rendered.control_plane,
            crate::core::control_plane::CONTROL_PLANE_INVENTORY.to_owned(),
        ),
        (&rendered.bundle, plan::BUNDLE_INVENTORY.to_owned()),
        (&rendered.builds, opts.inventory.clone()),
    ] {
        for m in set {
            let mut m = m.clone();
            plan::label_for_inventory(&mut m, &inventory);
            labelled.push((m, inventory.clone()));
        }
    }
    let used_inventories: BTreeSet<String> = labelled.iter().map(|(_, i)| i.clone()).collect();

    // 2. Resolve every kind: discovery, or a CRD of this very plan.
    let planned_crds: HashMap<(String, String), Resource> = labelled
        .iter()
        .filter(|(m, _)| m.id.kind == "CustomResourceDefinition")
        .filter_map(|(m, _)| resource_from_crd(&m.object))
        .map(|(av, k, r)| ((av, k), r))
        .collect();
    let mut objects = Vec::with_capacity(labelled.len());
    for (m, inventory) in labelled {
        let (resource, served) = match kube.resource(&m.id.api_version, &m.id.kind).await? {
            Some(r) => (r, true),
            None => match planned_crds.get(&(m.id.api_version.clone(), m.id.kind.clone())) {
                Some(r) => (r.clone(), false),
                None => {
                    return Err(KubeError::NoApi {
                        object: m.id.to_string(),
                        api_version: m.id.api_version.clone(),
                        kind: m.id.kind.clone(),
                    }
                    .into());
                }
            },
        };
        let stage = plan::stage_of(&m.id.kind);
        objects.push(Planned {
            manifest: m,
            inventory,
            resource,
            served,
            live: None,
            recorded: None,
            stage,
        });
    }

    objects.sort_by(|a, b| {
        let key = |p: &Planned| {
            let id = &p.manifest.id;
            (
                p.manifest.stage_rank(),
                id.kind.clone(),
                id.namespace.clone(),
                id.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });

    // 3. Permissions, before reading or writing anything else.
    check_permissions(kube, &objects, opts, &used_inventories).await?;

    // 4. Inventories.
    let cm = kube
        .resource("v1", "ConfigMap")
        .await?
        .expect("every cluster serves ConfigMaps");
    let mut inventories = BTreeMap::new();
    let inventory_names: BTreeSet<String> = used_inventories
        .iter()
        .cloned()
        .chain(std::iter::once(opts.inventory.clone()))
        .collect();
    for name in &inventory_names {
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(opts.inventory_namespace.clone()),
            name: format!("{}{name}", plan::INVENTORY_PREFIX),
        };
        let inv = match kube.get(&cm, &id).await? {
            Some(v) => Inventory::from_configmap(name, &v)?,
            None => Inventory::default(),
        };
        inventories.insert(name.clone(), inv);
    }
    for p in &mut objects {
        p.recorded = inventories
            .get(&p.inventory)
            .and_then(|inv| inv.get(&p.manifest.id))
            .cloned();
    }

    // 5. Live objects: one list per resource and namespace.
    let mut groups: BTreeMap<ListKey, Resource> = BTreeMap::new();
    for p in objects.iter().filter(|p| p.served) {
        let ns = if p.resource.namespaced {
            p.manifest.id.namespace.clone()
        } else {
            None
        };
        groups
            .entry((
                p.manifest.id.api_version.clone(),
                p.manifest.id.kind.clone(),
                ns,
            ))
            .or_insert_with(|| p.resource.clone());
    }
    let lists: Vec<(ListKey, Vec<Value>)> =
        futures::stream::iter(groups.into_iter().map(|(key, r)| async move {
            let items = kube.list(&r, key.2.as_deref()).await?;
            Ok::<_, KubeError>((key, items))
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    let mut live: HashMap<String, Value> = HashMap::new();
    for ((api_version, kind, _), items) in lists {
        for item in items {
            if let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) {
                let id = ObjectId {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    namespace: item
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    name: name.to_owned(),
                };
                live.insert(id.to_string(), item);
            }
        }
    }
    for p in &mut objects {
        p.live = live.remove(&p.manifest.id.to_string());
    }

    // 6. What --prune would delete: recorded, not rendered, still ours.
    let mut prune = Vec::new();
    if opts.prune {
        for name in &inventory_names {
            let rendered_here: Vec<Manifest> = objects
                .iter()
                .filter(|p| &p.inventory == name)
                .map(|p| p.manifest.clone())
                .collect();
            for entry in plan::prune_set(&inventories[name], &rendered_here) {
                let Some(resource) = kube.resource(&entry.api_version, &entry.kind).await? else {
                    continue;
                };
                if let Some(v) = kube.get(&resource, &entry.id()).await?
                    && plan::owned_by(&v, name)
                {
                    prune.push(Prunable {
                        entry,
                        inventory: name.clone(),
                        resource,
                        live: v,
                    });
                }
            }
        }
    }
    Ok(Prepared {
        objects,
        prune,
        inventories,
    })
}

async fn check_permissions(
    kube: &Kube,
    objects: &[Planned],
    opts: &DeployOptions,
    inventories: &BTreeSet<String>,
) -> Result<(), DeployError> {
    let mut needed: BTreeSet<Permission> = BTreeSet::new();
    for p in objects {
        let group = group_of(&p.manifest.id.api_version).to_owned();
        let ns = if p.resource.namespaced {
            p.manifest.id.namespace.clone()
        } else {
            None
        };
        for verb in ["list", "create", "patch"] {
            needed.insert((
                verb.into(),
                group.clone(),
                p.resource.api.plural.clone(),
                ns.clone(),
            ));
        }
        if opts.prune || engine::is_build_object(&p.manifest.id) {
            needed.insert((
                "delete".into(),
                group.clone(),
                p.resource.api.plural.clone(),
                ns.clone(),
            ));
        }
    }
    if !inventories.is_empty() {
        for verb in ["get", "create", "patch"] {
            needed.insert((
                verb.into(),
                String::new(),
                "configmaps".into(),
                Some(opts.inventory_namespace.clone()),
            ));
        }
    }
    let checks: Vec<(Permission, bool)> =
        futures::stream::iter(needed.into_iter().map(|key| async move {
            let allowed = kube.can_i(&key.0, &key.1, &key.2, key.3.as_deref()).await?;
            Ok::<_, KubeError>((key, allowed))
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .try_collect()
        .await?;
    let mut missing: Vec<String> = checks
        .into_iter()
        .filter(|(_, allowed)| !allowed)
        .map(|((verb, group, resource, ns), _)| {
            let res = if group.is_empty() {
                resource
            } else {
                format!("{resource}.{group}")
            };
            match ns {
                Some(ns) => format!("cannot {verb} {res} in namespace {ns}"),
                None => format!("cannot {verb} {res} (cluster-wide)"),
            }
        })
        .collect();
    missing.sort();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DeployError::Forbidden(missing))
    }
}

/// The diff of one planned object, asking the server (dry run) where the object exists or
/// could be created; `None` for `after` when it would be deleted.
/// A comparison: the change, both sides, and the conflict a plain apply would hit.
type Compared = (Change, Option<Value>, Option<Value>, Option<String>);

async fn compare(kube: &Kube, p: &Planned, opts: &DeployOptions) -> Result<Compared, DeployError> {
    let m = &p.manifest;
    if engine::is_build_object(&m.id) {
        match decide(p) {
            BuildDecision::AlreadySubmitted | BuildDecision::Busy => {
                return Ok((Change::Unchanged, None, None, None));
            }
            BuildDecision::Replace => {
                let before = p.live.as_ref().map(diff::normalize);
                return Ok((
                    Change::Update,
                    before,
                    Some(diff::normalize(&m.object)),
                    None,
                ));
            }
            BuildDecision::Submit => {}
        }
    }
    if let Some(live) = &p.live
        && plan::unchanged_without_request(m, p.recorded.as_ref(), live)
    {
        return Ok((Change::Unchanged, None, None, None));
    }
    let mut conflict = None;
    let after = if p.served {
        match kube.apply(&p.resource, m, true, opts.force_conflicts).await {
            Ok(v) => v,
            // The namespace does not exist yet: show the object as rendered.
            Err(KubeError::Api { code: 404, .. }) if p.live.is_none() => m.object.clone(),
            // Fields another manager changed: show what apply --force-conflicts would do.
            Err(KubeError::Api {
                code: 409, message, ..
            }) => {
                conflict = Some(message);
                kube.apply(&p.resource, m, true, true).await?
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        m.object.clone()
    };
    let mut before = p.live.as_ref().map(diff::normalize);
    let mut after = Some(diff::normalize(&after));
    diff::mask_secrets(before.as_mut(), after.as_mut());
    let change = diff::classify(before.as_ref(), after.as_ref());
    Ok((change, before, after, conflict))
}

/// `buildplane diff`: every object's change, with unified diffs, and the summary.
pub async fn diff(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    color: bool,
) -> Result<(Vec<(PlanEntry, String)>, Summary), DeployError> {
    let results: Vec<Compared> =
        futures::stream::iter(prepared.objects.iter().map(|p| compare(kube, p, opts)))
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
    let mut summary = Summary::default();
    let mut out = Vec::new();
    for (p, (change, before, after, conflict)) in prepared.objects.iter().zip(results) {
        summary.add(change);
        let (mut plain, mut shown) = if change == Change::Unchanged {
            (String::new(), String::new())
        } else {
            (
                diff::unified(&p.manifest.id, before.as_ref(), after.as_ref(), false)?,
                diff::unified(&p.manifest.id, before.as_ref(), after.as_ref(), color)?,
            )
        };
        if let Some(message) = conflict {
            let note = format!("# {}: {message}\n", p.manifest.id);
            plain.insert_str(0, &note);
            shown.insert_str(0, &note);
        }
        out.push((PlanEntry::new(&p.manifest.id, change, plain), shown));
    }
    for x in &prepared.prune {
        summary.add(Change::Delete);
        let id = x.entry.id();
        let mut before = Some(diff::normalize(&x.live));
        diff::mask_secrets(before.as_mut(), None);
        let plain = diff::unified(&id, before.as_ref(), None, false)?;
        let shown = diff::unified(&id, before.as_ref(), None, color)?;
        out.push((PlanEntry::new(&id, Change::Delete, plain), shown));
    }
    Ok((out, summary))
}

fn resource_version(v: &Value) -> Option<&str> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

async fn apply_one(kube: &Kube, p: &Planned, opts: &DeployOptions) -> Result<Action, DeployError> {
    let m = &p.manifest;
    if engine::is_build_object(&m.id) {
        match decide(p) {
            BuildDecision::AlreadySubmitted => return Ok(Action::Unchanged),
            BuildDecision::Busy => {
                return Ok(Action::Skipped(
                    "a Workflow of an earlier spec is still running".into(),
                ));
            }
            BuildDecision::Replace => {
                kube.delete(&p.resource, &m.id).await?;
                wait_gone(kube, p).await?;
                kube.apply(&p.resource, m, false, opts.force_conflicts)
                    .await?;
                return Ok(Action::Configured);
            }
            BuildDecision::Submit => {}
        }
    }
    if let Some(live) = &p.live
        && plan::unchanged_without_request(m, p.recorded.as_ref(), live)
    {
        return Ok(Action::Unchanged);
    }
    let out = kube
        .apply(&p.resource, m, false, opts.force_conflicts)
        .await?;
    Ok(match &p.live {
        None => Action::Created,
        Some(live) if resource_version(live) == resource_version(&out) => Action::Unchanged,
        Some(_) => Action::Configured,
    })
}

/// A replaced Workflow is gone (its finalizers ran) before the new one is created.
async fn wait_gone(kube: &Kube, p: &Planned) -> Result<(), DeployError> {
    for _ in 0..300 {
        if kube.get(&p.resource, &p.manifest.id).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(KubeError::Api {
        object: p.manifest.id.to_string(),
        code: 0,
        message: "the finished Workflow was not deleted within 30 s".into(),
    }
    .into())
}

/// `buildplane apply`: stage by stage (CRDs waited for), then prune, then the inventories.
/// `report` is called once per object, in order, as each stage completes.
pub async fn apply(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    mut report: impl FnMut(&ObjectId, &Action),
) -> Result<Vec<(ObjectId, Action)>, DeployError> {
    let mut done: Vec<(ObjectId, Action)> = Vec::new();
    for stage in STAGES {
        let objects: Vec<&Planned> = prepared
            .objects
            .iter()
            .filter(|p| p.stage == stage)
            .collect();
        if objects.is_empty() {
            continue;
        }
        let actions: Vec<Action> =
            futures::stream::iter(objects.iter().map(|p| apply_one(kube, p, opts)))
                .buffered(opts.concurrency.max(1))
                .try_collect()
                .await?;
        for (p, a) in objects.iter().zip(actions) {
            report(&p.manifest.id, &a);
            done.push((p.manifest.id.clone(), a));
        }
        if stage == Stage::Crds {
            for p in &objects {
                kube.wait_crd_established(&p.manifest.id.name, opts.crd_timeout)
                    .await?;
            }
            kube.forget_discovery().await;
        }
    }
    for x in &prepared.prune {
        kube.delete(&x.resource, &x.entry.id()).await?;
        let id = x.entry.id();
        report(&id, &Action::Pruned);
        done.push((id, Action::Pruned));
    }
    write_inventories(kube, prepared, opts, &done).await?;
    Ok(done)
}

async fn write_inventories(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    done: &[(ObjectId, Action)],
) -> Result<(), DeployError> {
    let pruned: BTreeSet<String> = done
        .iter()
        .filter(|(_, a)| *a == Action::Pruned)
        .map(|(id, _)| id.to_string())
        .collect();
    let skipped: BTreeSet<String> = done
        .iter()
        .filter(|(_, a)| matches!(a, Action::Skipped(_)))
        .map(|(id, _)| id.to_string())
        .collect();
    let cm = kube
        .resource("v1", "ConfigMap")
        .await?
        .expect("ConfigMaps are served");
    for (name, previous) in &prepared.inventories {
        let mut next = previous.clone();
        // Without --prune, objects no longer rendered stay recorded: a later --prune finds them.
        next.entries.retain(|id, _| !pruned.contains(id));
        for p in prepared.objects.iter().filter(|p| &p.inventory == name) {
            let key = p.manifest.id.to_string();
            if skipped.contains(&key) {
                continue;
            }
            let spec_hash = spec_hash_of(&p.manifest.object);
            next.entries
                .insert(key, plan::entry_for(&p.manifest, spec_hash));
        }
        if &next == previous {
            continue;
        }
        let object = next.to_configmap(name, &opts.inventory_namespace);
        kube.apply(&cm, &object, false, true).await?;
    }
    Ok(())
}

/// What `retry` did to one Workflow before applying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Finished (or gone): it will be submitted again.
    Resubmit,
    /// Still running: left alone, not submitted twice.
    Running,
}

/// Makes the next `apply` of `prepared` submit its Workflows again although their specs are
/// unchanged: each finished one is deleted (and waited for) and its record forgotten, so the
/// submit-once rule sees a spec never submitted. A running Workflow is left as it is.
pub async fn forget_builds(
    kube: &Kube,
    prepared: &mut Prepared,
) -> Result<Vec<(ObjectId, Retry)>, DeployError> {
    let mut out = Vec::new();
    for p in prepared
        .objects
        .iter_mut()
        .filter(|p| engine::is_build_object(&p.manifest.id))
    {
        let running = match (engine::for_object(&p.manifest.id), &p.live) {
            (Some(e), Some(live)) => !e.is_finished(live),
            _ => false,
        };
        if running {
            out.push((p.manifest.id.clone(), Retry::Running));
            continue;
        }
        if p.live.is_some() {
            kube.delete(&p.resource, &p.manifest.id).await?;
            wait_gone(kube, p).await?;
        }
        p.live = None;
        p.recorded = None;
        out.push((p.manifest.id.clone(), Retry::Resubmit));
    }
    Ok(out)
}
