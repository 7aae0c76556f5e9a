//! The inventory ConfigMaps: read before a diff or an apply, written after an apply.

use super::{Action, DeployError, DeployOptions, Prepared};
use crate::core::manifest::ObjectId;
use crate::core::plan::{self, Inventory};
use crate::engine;
use crate::kube::{Kube, KubeError, Resource};
use std::collections::{BTreeMap, BTreeSet};

/// The ConfigMap that holds inventory `name`.
fn configmap_id(name: &str, opts: &DeployOptions) -> ObjectId {
    ObjectId {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(opts.inventory_namespace.clone()),
        name: format!("{}{name}", plan::INVENTORY_PREFIX),
    }
}

/// The ConfigMap API; a cluster without one (or a discovery answer that omits it) cannot keep
/// an inventory, which is an error naming the inventory rather than a panic.
async fn configmaps(
    kube: &Kube,
    name: &str,
    opts: &DeployOptions,
) -> Result<Resource, DeployError> {
    let id = configmap_id(name, opts);
    kube.resource(&id.api_version, &id.kind)
        .await?
        .ok_or_else(|| {
            KubeError::NoApi {
                object: id.to_string(),
                api_version: id.api_version.clone(),
                kind: id.kind.clone(),
            }
            .into()
        })
}

/// Reads every inventory of the inventory namespace: those in `names` (a missing ConfigMap is
/// an empty inventory) and every other labelled inventory ConfigMap there, whose records say
/// which objects other inventories still declare.
pub(super) async fn read(
    kube: &Kube,
    names: &BTreeSet<String>,
    opts: &DeployOptions,
) -> Result<BTreeMap<String, Inventory>, DeployError> {
    let mut inventories = BTreeMap::new();
    let Some(first) = names.first() else {
        return Ok(inventories);
    };
    let cm = configmaps(kube, first, opts).await?;
    for name in names {
        let inv = match kube.get(&cm, &configmap_id(name, opts)).await? {
            Some(v) => Inventory::from_configmap(name, &v)?,
            None => Inventory::default(),
        };
        inventories.insert(name.clone(), inv);
    }
    let listed = kube
        .list_selected(&cm, &opts.inventory_namespace, plan::INVENTORY_LABEL)
        .await?;
    for v in listed {
        let Some(name) = v
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .and_then(|n| n.strip_prefix(plan::INVENTORY_PREFIX))
        else {
            continue;
        };
        if !inventories.contains_key(name) {
            let inv = Inventory::from_configmap(name, &v)?;
            inventories.insert(name.to_owned(), inv);
        }
    }
    Ok(inventories)
}

/// Writes each inventory that changed: what was applied is recorded (with its build's spec
/// hash), what was pruned is dropped, what was skipped keeps its earlier record.
pub(super) async fn write(
    kube: &Kube,
    prepared: &Prepared,
    opts: &DeployOptions,
    done: &[(ObjectId, Action)],
) -> Result<(), DeployError> {
    let Some(first) = prepared.inventories.keys().next() else {
        return Ok(());
    };
    let cm = configmaps(kube, first, opts).await?;
    for (name, previous) in &prepared.inventories {
        let next = next_inventory(prepared, name, previous, done);
        if &next == previous {
            continue;
        }
        let object = next.to_configmap(name, &opts.inventory_namespace);
        kube.apply(&cm, &object, false, true).await?;
    }
    Ok(())
}

/// Inventory `name` after `done`: what it pruned or released is dropped from it alone.
fn next_inventory(
    prepared: &Prepared,
    name: &str,
    previous: &Inventory,
    done: &[(ObjectId, Action)],
) -> Inventory {
    let skipped: BTreeSet<String> = done
        .iter()
        .filter(|(_, a)| matches!(a, Action::Skipped(_)))
        .map(|(id, _)| id.to_string())
        .collect();
    let dropped: BTreeSet<String> = prepared
        .prune
        .iter()
        .map(|x| (&x.inventory, &x.entry))
        .chain(prepared.released.iter().map(|x| (&x.inventory, &x.entry)))
        .filter(|(inventory, _)| inventory.as_str() == name)
        .map(|(_, entry)| entry.id().to_string())
        .collect();
    let mut next = previous.clone();
    // Without --prune, objects no longer rendered stay recorded: a later --prune finds them.
    next.entries.retain(|id, _| !dropped.contains(id));
    for p in prepared.objects.iter().filter(|p| p.inventory == name) {
        let key = p.manifest.id.to_string();
        if skipped.contains(&key) {
            continue;
        }
        let spec_hash = engine::spec_hash_of(&p.manifest.object).map(str::to_owned);
        next.entries
            .insert(key, plan::entry_for(&p.manifest, spec_hash));
    }
    next
}
