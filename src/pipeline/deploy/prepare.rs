//! Everything diff and apply read before they decide: label → resolve → permissions →
//! inventories (all of the inventory namespace) → live objects → first owners' labels → prune
//! set. Permissions are checked before anything else is read, and nothing here writes.

use super::{
    DeployError, DeployOptions, HeldBack, Kept, Planned, Prepared, Prunable, Released, inventory,
};
use crate::core::control_plane::CONTROL_PLANE_INVENTORY;
use crate::core::manifest::{Manifest, ObjectId};
use crate::core::plan::{self, Inventory, PruneDecision};
use crate::engine;
use crate::kube::{Kube, KubeError, Resource, resource_from_crd};
use crate::pipeline::Rendered;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A list request: apiVersion, kind, and namespace (none for all / cluster-scoped).
type ListKey = (String, String, Option<String>);
/// A permission to check: verb, API group, resource, namespace (none: cluster-wide).
type Permission = (String, String, String, Option<String>);

/// Resolves, checks and reads: the only phase that talks to the cluster before writes.
pub async fn prepare(
    kube: &Kube,
    rendered: &Rendered,
    opts: &DeployOptions,
) -> Result<Prepared, DeployError> {
    let problems = if opts.cluster_templates_checked {
        Vec::new()
    } else {
        super::cluster_template_problems(kube, &rendered.bundle, &rendered.builds).await?
    };
    if let Some(first) = problems.first() {
        return Err(DeployError::Template {
            first: Box::new(first.clone()),
            more: problems.len() - 1,
        });
    }
    let labelled = label(rendered, opts);
    let used: BTreeSet<String> = labelled.iter().map(|(_, i)| i.clone()).collect();
    let mut objects = resolve(kube, labelled).await?;
    check_permissions(kube, &objects, opts, &used).await?;
    let names: BTreeSet<String> = used
        .into_iter()
        .chain(std::iter::once(opts.inventory.clone()))
        .collect();
    let inventories = inventory::read(kube, &names, opts).await?;
    for p in &mut objects {
        p.recorded = inventories
            .get(&p.inventory)
            .and_then(|inv| inv.get(&p.manifest.id))
            .cloned();
    }
    read_live(kube, &mut objects, opts).await?;
    let declaring = declaring(&objects, &inventories);
    keep_first_owners(&mut objects, &declaring);
    let (prune, released, held_back) = match (&opts.prune_hold, opts.prune) {
        (_, false) => Default::default(),
        (Some(reason), true) => (
            Vec::new(),
            Vec::new(),
            held_back(&objects, &names, &inventories, reason),
        ),
        (None, true) => {
            let (prune, released) =
                prune_set(kube, &objects, &names, &inventories, &declaring).await?;
            (prune, released, Vec::new())
        }
    };
    Ok(Prepared {
        objects,
        prune,
        released,
        held_back,
        inventories,
    })
}

/// For each object (`Kind/ns/name`), the inventories that declare it: those that record it and
/// those that render it in this run.
fn declaring(
    objects: &[Planned],
    inventories: &BTreeMap<String, Inventory>,
) -> HashMap<String, BTreeSet<String>> {
    let mut declaring: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (name, inventory) in inventories {
        for id in inventory.entries.keys() {
            declaring
                .entry(id.clone())
                .or_default()
                .insert(name.clone());
        }
    }
    for p in objects {
        declaring
            .entry(p.manifest.id.to_string())
            .or_default()
            .insert(p.inventory.clone());
    }
    declaring
}

/// An object another declaring inventory labelled first keeps that label
/// (`core::plan::owner_label`): shared objects are not relabelled back and forth.
fn keep_first_owners(objects: &mut [Planned], declaring: &HashMap<String, BTreeSet<String>>) {
    for p in objects {
        let Some(owners) = declaring.get(&p.manifest.id.to_string()) else {
            continue;
        };
        let live_label = p.live.as_ref().and_then(plan::live_inventory_label);
        let label = plan::owner_label(&p.inventory, live_label, owners);
        if label != p.inventory {
            let label = label.to_owned();
            plan::label_for_inventory(&mut p.manifest, &label);
        }
    }
}

/// Every object with its inventory's label, and the inventory's name.
fn label(rendered: &Rendered, opts: &DeployOptions) -> Vec<(Manifest, String)> {
    let sets = [
        (&rendered.control_plane, CONTROL_PLANE_INVENTORY),
        (&rendered.bundle, plan::BUNDLE_INVENTORY),
        (&rendered.builds, opts.inventory.as_str()),
    ];
    let mut labelled = Vec::new();
    for (set, inventory) in sets {
        for m in set {
            let mut m = m.clone();
            plan::label_for_inventory(&mut m, inventory);
            labelled.push((m, inventory.to_owned()));
        }
    }
    labelled
}

/// Resolves every kind (discovery, or a CRD of this very plan) and sorts in apply order.
async fn resolve(
    kube: &Kube,
    labelled: Vec<(Manifest, String)>,
) -> Result<Vec<Planned>, DeployError> {
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
                None => return Err(no_api(&m.id).into()),
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
    objects.sort_by(|a, b| apply_order(&a.manifest).cmp(&apply_order(&b.manifest)));
    Ok(objects)
}

/// The order apply writes in: by stage, then kind, namespace and name.
fn apply_order(m: &Manifest) -> (usize, &str, Option<&str>, &str) {
    let id = &m.id;
    (m.stage_rank(), &id.kind, id.namespace.as_deref(), &id.name)
}

/// Every object as apply would send it (its inventory's label on it), in apply's order,
/// without asking the cluster anything: `apply --dry-run=client`. (A shared object another
/// inventory labelled first would keep that label; only the cluster can say which.)
pub fn to_send(rendered: &Rendered, opts: &DeployOptions) -> Vec<Manifest> {
    let mut objects: Vec<Manifest> = label(rendered, opts).into_iter().map(|(m, _)| m).collect();
    objects.sort_by(|a, b| apply_order(a).cmp(&apply_order(b)));
    objects
}

fn no_api(id: &ObjectId) -> KubeError {
    KubeError::NoApi {
        object: id.to_string(),
        api_version: id.api_version.clone(),
        kind: id.kind.clone(),
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// The namespace requests about `p` are scoped to (none for cluster-scoped kinds).
fn scope(p: &Planned) -> Option<String> {
    if p.resource.namespaced {
        p.manifest.id.namespace.clone()
    } else {
        None
    }
}

/// Every permission the plan needs.
fn needed_permissions(
    objects: &[Planned],
    opts: &DeployOptions,
    inventories: &BTreeSet<String>,
) -> BTreeSet<Permission> {
    let mut needed = BTreeSet::new();
    for p in objects {
        let group = group_of(&p.manifest.id.api_version).to_owned();
        let plural = &p.resource.api.plural;
        let deletes = opts.prune || engine::is_build_object(&p.manifest.id);
        let verbs = ["list", "create", "patch"]
            .into_iter()
            .chain(deletes.then_some("delete"));
        for verb in verbs {
            needed.insert((verb.into(), group.clone(), plural.clone(), scope(p)));
        }
    }
    if !inventories.is_empty() {
        // list: every other inventory's records decide what prune may delete.
        for verb in ["get", "list", "create", "patch"] {
            let ns = Some(opts.inventory_namespace.clone());
            needed.insert((verb.into(), String::new(), "configmaps".into(), ns));
        }
    }
    needed
}

/// Asks the server for every permission the plan needs; all missing ones are one error.
async fn check_permissions(
    kube: &Kube,
    objects: &[Planned],
    opts: &DeployOptions,
    inventories: &BTreeSet<String>,
) -> Result<(), DeployError> {
    let needed = needed_permissions(objects, opts, inventories);
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

/// Fills in each served object's live state: one list per resource and namespace.
async fn read_live(
    kube: &Kube,
    objects: &mut [Planned],
    opts: &DeployOptions,
) -> Result<(), DeployError> {
    let mut groups: BTreeMap<ListKey, Resource> = BTreeMap::new();
    for p in objects.iter().filter(|p| p.served) {
        let id = &p.manifest.id;
        groups
            .entry((id.api_version.clone(), id.kind.clone(), scope(p)))
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
            if let Some(id) = listed_id(&api_version, &kind, &item) {
                live.insert(id.to_string(), item);
            }
        }
    }
    for p in objects {
        p.live = live.remove(&p.manifest.id.to_string());
    }
    Ok(())
}

/// The identity of a listed item; `None` for an item without a name.
fn listed_id(api_version: &str, kind: &str, item: &Value) -> Option<ObjectId> {
    let name = item.pointer("/metadata/name").and_then(Value::as_str)?;
    Some(ObjectId {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        namespace: item
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: name.to_owned(),
    })
}

/// Every object an inventory of this run recorded and no longer renders, held back: the run
/// knows only part of its sources, and an object no loaded file renders may well be defined by
/// one that did not load (a typo, a clash, or a Build moved into a broken file). Nothing is
/// read: nothing will be deleted.
fn held_back(
    objects: &[Planned],
    pruning: &BTreeSet<String>,
    inventories: &BTreeMap<String, Inventory>,
    reason: &str,
) -> Vec<HeldBack> {
    unrendered(objects, pruning, inventories)
        .map(|(name, entry)| HeldBack {
            entry,
            inventory: name.to_owned(),
            reason: reason.to_owned(),
        })
        .collect()
}

/// For each inventory of this run, every object it recorded and no longer renders
/// (`core::plan::prune_set`): what --prune acts on, or holds back.
fn unrendered<'a>(
    objects: &'a [Planned],
    pruning: &'a BTreeSet<String>,
    inventories: &'a BTreeMap<String, Inventory>,
) -> impl Iterator<Item = (&'a str, plan::Entry)> + 'a {
    inventories
        .iter()
        .filter(|(n, _)| pruning.contains(*n))
        .flat_map(move |(name, inventory)| {
            let rendered_here: Vec<Manifest> = objects
                .iter()
                .filter(|p| &p.inventory == name)
                .map(|p| p.manifest.clone())
                .collect();
            plan::prune_set(inventory, &rendered_here)
                .into_iter()
                .map(move |entry| (name.as_str(), entry))
        })
}

/// What --prune would delete, and what it holds back: for each inventory of this run, every
/// object it recorded and no longer renders, as `core::plan::decide_prune` rules.
async fn prune_set(
    kube: &Kube,
    objects: &[Planned],
    pruning: &BTreeSet<String>,
    inventories: &BTreeMap<String, Inventory>,
    declaring: &HashMap<String, BTreeSet<String>>,
) -> Result<(Vec<Prunable>, Vec<Released>), DeployError> {
    let known: BTreeSet<String> = inventories.keys().cloned().collect();
    let none = BTreeSet::new();
    let (mut prune, mut released) = (Vec::new(), Vec::new());
    for (name, entry) in unrendered(objects, pruning, inventories) {
        let name = name.to_owned();
        let Some(resource) = kube.resource(&entry.api_version, &entry.kind).await? else {
            continue;
        };
        let Some(live) = kube.get(&resource, &entry.id()).await? else {
            continue;
        };
        let owners = declaring.get(&entry.id().to_string()).unwrap_or(&none);
        let label = plan::live_inventory_label(&live);
        let keep = plan::resource_policy_keep(&live);
        match plan::decide_prune(&name, label, owners, &known, keep) {
            PruneDecision::Delete => prune.push(Prunable {
                entry,
                inventory: name.clone(),
                resource,
                live,
            }),
            PruneDecision::Release(owners) => released.push(Released {
                entry,
                inventory: name.clone(),
                why: Kept::Declared(owners),
            }),
            PruneDecision::Keep => released.push(Released {
                entry,
                inventory: name.clone(),
                why: Kept::Policy,
            }),
            PruneDecision::Foreign => {}
        }
    }
    Ok((prune, released))
}
