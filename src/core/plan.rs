//! What an apply will do, decided without I/O: the stages objects go in, the inventory of what
//! was applied, the prune set, and when an object or a build needs no request at all.

use super::manifest::{Manifest, ObjectId};
pub use super::manifest::{Stage, stage_of};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Label on every applied object: the inventory that applied it first (see [`owner_label`]).
/// Prune deletes only objects that carry it, and only once no other inventory declares them
/// ([`decide_prune`]).
pub const INVENTORY_LABEL: &str = "buildplane.openchoreo.dev/inventory";
/// Name of the inventory of the build-plane bundle.
pub const BUNDLE_INVENTORY: &str = "build-plane";
/// Default name of the inventory of a set of builds.
pub const BUILDS_INVENTORY: &str = "builds";
/// The ConfigMap that holds an inventory is `<prefix><name>`.
pub const INVENTORY_PREFIX: &str = "buildplane-inventory-";
/// Key of the inventory's entries in its ConfigMap (plain JSON; read for compatibility).
pub const INVENTORY_KEY: &str = "inventory.json";
/// Key of the gzip-compressed entries (`binaryData`), what is written: 10,000 builds fit in
/// the 1 MiB a Kubernetes object may hold.
pub const INVENTORY_GZ_KEY: &str = "inventory.json.gz";
/// Hex digits of the hashes an inventory records (128 bits: ample to notice a change).
pub const RECORDED_HASH_LEN: usize = 32;

/// Every stage, in the order apply runs them.
pub const STAGES: [Stage; 5] = [
    Stage::Crds,
    Stage::Namespaces,
    Stage::Identity,
    Stage::Workloads,
    Stage::Builds,
];

/// One object recorded in an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// [`recorded_hash`] of the object as rendered (what was applied): for a Secret, without
    /// its values.
    pub hash: String,
    /// For Workflows: the Build spec hash it was submitted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
}

impl Entry {
    pub fn id(&self) -> ObjectId {
        ObjectId {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// What an inventory recorded, keyed by `Kind/ns/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub entries: BTreeMap<String, Entry>,
}

/// An inventory ConfigMap could not be read.
#[derive(Debug, thiserror::Error)]
#[error("inventory {name}: {message}")]
pub struct InventoryError {
    pub name: String,
    pub message: String,
}

impl Inventory {
    /// Reads the entries of an inventory ConfigMap (`binaryData["inventory.json.gz"]`, or
    /// plain `data["inventory.json"]`).
    pub fn from_configmap(name: &str, cm: &Value) -> Result<Inventory, InventoryError> {
        use base64::Engine as _;
        use std::io::Read as _;
        let err = |message: String| InventoryError {
            name: name.to_owned(),
            message,
        };
        let text = if let Some(b64) = cm
            .pointer(&format!(
                "/binaryData/{}",
                INVENTORY_GZ_KEY.replace('/', "~1")
            ))
            .and_then(Value::as_str)
        {
            let gz = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| err(e.to_string()))?;
            let mut text = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .take(64 << 20)
                .read_to_string(&mut text)
                .map_err(|e| err(e.to_string()))?;
            text
        } else if let Some(t) = cm
            .pointer(&format!("/data/{INVENTORY_KEY}"))
            .and_then(Value::as_str)
        {
            t.to_owned()
        } else {
            return Ok(Inventory::default());
        };
        let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        Ok(Inventory {
            entries: entries
                .into_iter()
                .map(|e| (e.id().to_string(), e))
                .collect(),
        })
    }

    /// The ConfigMap that stores this inventory, its entries gzip-compressed.
    pub fn to_configmap(&self, name: &str, namespace: &str) -> Manifest {
        use base64::Engine as _;
        use std::io::Write as _;
        let entries: Vec<&Entry> = self.entries.values().collect();
        let text = serde_json::to_vec(&entries).expect("entries serialize");
        // A fixed header (no timestamp) keeps the bytes a function of the entries.
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&text).expect("writing to memory");
        let gz = gz.finish().expect("writing to memory");
        Manifest::new(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": format!("{INVENTORY_PREFIX}{name}"),
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "buildplane", INVENTORY_LABEL: name},
            },
            "binaryData": {INVENTORY_GZ_KEY: base64::engine::general_purpose::STANDARD.encode(gz)},
        }))
        .expect("inventory ConfigMap has kind and name")
    }

    pub fn get(&self, id: &ObjectId) -> Option<&Entry> {
        self.entries.get(&id.to_string())
    }
}

/// SHA-256 of an object as rendered (sorted-key JSON), cut to [`RECORDED_HASH_LEN`] digits.
pub fn object_hash(object: &Value) -> String {
    let bytes = serde_json::to_vec(object).expect("JSON values serialize");
    let mut h = super::naming::hex(&Sha256::digest(&bytes));
    h.truncate(RECORDED_HASH_LEN);
    h
}

/// What stands for a Secret's values in [`recorded_hash`].
const SECRET_VALUE: &str = "(secret value)";

/// The hash an inventory records of a rendered object: [`object_hash`], except that a Secret
/// is hashed with every value of `data` and `stringData` (and any client-side
/// `last-applied-configuration`, which copies them) replaced by one placeholder.
///
/// An inventory is a ConfigMap, which more people may read than Secrets: an unsalted hash of a
/// Secret's content would let any of them confirm a guessed value offline. The record only has
/// to notice a rendering that changed in a way the live object cannot show (a key, a label, an
/// annotation removed), and the Secret's keys, metadata and type still do that; whether its
/// values changed is [`unchanged_without_request`]'s comparison with the live Secret, which is
/// read anyway. An inventory written before holds a hash of the whole Secret: it matches
/// nothing, so that Secret is applied once more (a no-op on the server) and recorded anew.
pub fn recorded_hash(m: &Manifest) -> String {
    if m.id.api_version != "v1" || m.id.kind != "Secret" {
        return object_hash(&m.object);
    }
    let mut object = m.object.clone();
    for field in ["data", "stringData"] {
        match object.get_mut(field) {
            Some(Value::Object(values)) => values
                .values_mut()
                .for_each(|v| *v = Value::String(SECRET_VALUE.to_owned())),
            Some(v) if !v.is_null() => *v = Value::String(SECRET_VALUE.to_owned()),
            _ => {}
        }
    }
    if let Some(applied) = object
        .pointer_mut("/metadata/annotations")
        .and_then(|a| a.get_mut("kubectl.kubernetes.io/last-applied-configuration"))
    {
        *applied = Value::String(SECRET_VALUE.to_owned());
    }
    object_hash(&object)
}

/// A Build spec hash as an inventory records it.
pub fn recorded_spec_hash(spec_hash: &str) -> String {
    spec_hash.chars().take(RECORDED_HASH_LEN).collect()
}

/// Sets the inventory label on a rendered object.
pub fn label_for_inventory(m: &mut Manifest, inventory: &str) {
    let meta = m
        .object
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut)
        .expect("a manifest has metadata");
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(map) = labels.as_object_mut() {
        map.insert(
            INVENTORY_LABEL.to_owned(),
            Value::String(inventory.to_owned()),
        );
    }
}

/// The entry an applied object leaves in its inventory.
pub fn entry_for(m: &Manifest, spec_hash: Option<String>) -> Entry {
    let spec_hash = spec_hash.map(|h| recorded_spec_hash(&h));
    Entry {
        api_version: m.id.api_version.clone(),
        kind: m.id.kind.clone(),
        namespace: m.id.namespace.clone(),
        name: m.id.name.clone(),
        hash: recorded_hash(m),
        spec_hash,
    }
}

/// Objects recorded earlier and no longer rendered, in reverse stage order (Workflows first,
/// CRDs last) and reverse name order within a stage.
pub fn prune_set(previous: &Inventory, rendered: &[Manifest]) -> Vec<Entry> {
    let keep: BTreeSet<String> = rendered.iter().map(|m| m.id.to_string()).collect();
    let mut gone: Vec<Entry> = previous
        .entries
        .iter()
        .filter(|(id, _)| !keep.contains(*id))
        .map(|(_, e)| e.clone())
        .collect();
    gone.sort_by(|a, b| {
        (stage_of(&b.kind), &b.kind, &b.namespace, &b.name).cmp(&(
            stage_of(&a.kind),
            &a.kind,
            &a.namespace,
            &a.name,
        ))
    });
    gone
}

/// The inventory label a live object carries, if any.
pub fn live_inventory_label(live: &Value) -> Option<&str> {
    live.pointer("/metadata/labels")
        .and_then(|l| l.get(INVENTORY_LABEL))
        .and_then(Value::as_str)
}

// Shared objects. Two inventories may declare the same object: the bundle's
// `buildNamespaces` and the prerequisites of a set of builds both render the Namespace,
// ServiceAccount, Role and RoleBinding of a build namespace. The rule:
//
// - **Ownership is the inventory records.** An object is owned by every inventory whose
//   ConfigMap (in the inventory namespace) records it, and by every inventory that renders it in
//   the running apply; together these are the object's *declaring* inventories.
// - **The label is the first owner's.** An apply keeps a live label that names another
//   declaring inventory ([`owner_label`]), so inventories that share an object never relabel it
//   back and forth (no change to apply, nothing to diff); otherwise it writes its own.
// - **Prune deletes only what nobody else declares** ([`decide_prune`]). While another
//   inventory declares it, prune drops only its own record and holds the object back. The last
//   declaring inventory deletes it if the label is its own or names a known inventory that let
//   go of it (a former first owner); an object without the label, or labelled for an inventory
//   this namespace does not hold (taken over), is never deleted.

/// The inventory label an apply writes on an object that inventory `ours` renders: the live
/// object's label when it names another inventory in `declaring` (the first owner keeps it),
/// otherwise `ours`.
pub fn owner_label<'a>(
    ours: &'a str,
    live_label: Option<&'a str>,
    declaring: &BTreeSet<String>,
) -> &'a str {
    match live_label {
        Some(l) if l != ours && declaring.contains(l) => l,
        _ => ours,
    }
}

/// The annotation Helm reads before it deletes an object; `keep` means never (prune reads it too).
pub const RESOURCE_POLICY_ANNOTATION: &str = "helm.sh/resource-policy";

/// Whether a live object says it must never be deleted: `helm.sh/resource-policy: keep`,
/// compared as Helm compares it (trimmed, any case).
pub fn resource_policy_keep(live: &Value) -> bool {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(RESOURCE_POLICY_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("keep"))
}

/// What prune does with an object its inventory recorded and no longer renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneDecision {
    /// No other inventory declares it and it is labelled as buildplane's: delete it.
    Delete,
    /// Other inventories (named) still declare it: drop only this inventory's record.
    Release(Vec<String>),
    /// It would be deleted, but it carries `helm.sh/resource-policy: keep`: the object stays
    /// and leaves the inventory (its record is dropped), as Helm leaves it out of a release.
    Keep,
    /// Not labelled, or labelled for an inventory this namespace does not hold (someone took
    /// it over): leave the object and the record alone.
    Foreign,
}

/// Whether inventory `pruning` deletes an object it no longer renders. `declaring` is every
/// inventory that records or renders the object (`pruning` itself is ignored), `known` every
/// inventory of the inventory namespace, `keep` whether the live object carries
/// [`resource_policy_keep`] (then nothing deletes it).
pub fn decide_prune(
    pruning: &str,
    live_label: Option<&str>,
    declaring: &BTreeSet<String>,
    known: &BTreeSet<String>,
    keep: bool,
) -> PruneDecision {
    let others: Vec<String> = declaring
        .iter()
        .filter(|d| d.as_str() != pruning)
        .cloned()
        .collect();
    if !others.is_empty() {
        return PruneDecision::Release(others);
    }
    match live_label {
        Some(l) if l == pruning || known.contains(l) => {
            if keep {
                PruneDecision::Keep
            } else {
                PruneDecision::Delete
            }
        }
        _ => PruneDecision::Foreign,
    }
}

/// Every field of `want` is present in `have` with the same value (maps recursively, lists
/// element by element with the same length). Server-set extra fields in `have` are ignored.
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        (a, b) => a == b,
    }
}

/// No request is needed for an object when the inventory says this very rendering was applied
/// (the hash covers fields removed since) and the live object still holds every rendered field
/// (no one changed it by hand).
pub fn unchanged_without_request(m: &Manifest, recorded: Option<&Entry>, live: &Value) -> bool {
    recorded.is_some_and(|e| e.hash == recorded_hash(m)) && is_subset(&m.object, live)
}

/// A shared object that another declaring inventory labelled first (the label
/// [`owner_label`] kept) needs no request from inventory `ours` while the live object holds
/// every field `ours` renders: the first owner may render more (the bundle adds its chart
/// labels), and applying the smaller rendering would take those fields away, only for the
/// first owner's next apply to put them back.
pub fn covered_by_first_owner(m: &Manifest, ours: &str, live: &Value) -> bool {
    live_inventory_label(&m.object).is_some_and(|l| l != ours) && is_subset(&m.object, live)
}

/// What apply does with a build's Workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildDecision {
    /// Never submitted for this spec: create it.
    Submit,
    /// Submitted for this spec already (running, finished, or since deleted by its TTL): leave it.
    AlreadySubmitted,
    /// A finished Workflow of an earlier spec has this name: delete it, then submit.
    Replace,
    /// A Workflow of an earlier spec is still running: leave it and say so.
    Busy,
}

/// What the cluster holds of a build's object, as its engine reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveBuild<'a> {
    /// The spec hash it was made from (its annotation).
    pub spec_hash: Option<&'a str>,
    /// Whether it reached a phase after which it no longer changes.
    pub finished: bool,
}

/// Decides whether a build is (re)submitted. The rule: a build object is submitted once per
/// Build spec hash. A finished or deleted one is never re-created for the same spec; a changed
/// spec replaces a finished one and waits for a running one. `recorded_spec_hash` is what the
/// caller's record (an inventory entry, a Build's status) says was submitted last, as
/// [`recorded_spec_hash`] cuts it.
pub fn decide_build(
    rendered_spec_hash: &str,
    recorded_spec_hash: Option<&str>,
    live: Option<LiveBuild<'_>>,
) -> BuildDecision {
    match live {
        Some(l) if l.spec_hash == Some(rendered_spec_hash) => BuildDecision::AlreadySubmitted,
        Some(l) if l.finished => BuildDecision::Replace,
        Some(_) => BuildDecision::Busy,
        None if recorded_spec_hash
            == Some(self::recorded_spec_hash(rendered_spec_hash).as_str()) =>
        {
            BuildDecision::AlreadySubmitted
        }
        None => BuildDecision::Submit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(kind: &str, ns: Option<&str>, name: &str) -> Manifest {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        Manifest::new(
            json!({"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"a": "1"}}),
        )
        .unwrap()
    }

    #[test]
    fn stages_follow_the_safe_order() {
        assert!(stage_of("CustomResourceDefinition") < stage_of("Namespace"));
        assert!(stage_of("Namespace") < stage_of("RoleBinding"));
        assert!(stage_of("ConfigMap") < stage_of("Deployment"));
        assert!(stage_of("ClusterWorkflowTemplate") < stage_of("Workflow"));
        assert_eq!(stage_of("Frobnicator"), Stage::Workloads);
    }

    #[test]
    fn inventory_round_trips_through_its_configmap() {
        let mut inv = Inventory::default();
        for obj in [m("ConfigMap", Some("a"), "x"), m("Namespace", None, "a")] {
            inv.entries
                .insert(obj.id.to_string(), entry_for(&obj, None));
        }
        let cm = inv.to_configmap("builds", "default");
        assert_eq!(cm.id.name, "buildplane-inventory-builds");
        assert_eq!(
            Inventory::from_configmap("builds", &cm.object).unwrap(),
            inv
        );
        assert!(Inventory::from_configmap("x", &json!({"data": {INVENTORY_KEY: "nope"}})).is_err());
        // The plain form is still read.
        let plain: Vec<&Entry> = inv.entries.values().collect();
        let plain = json!({"data": {INVENTORY_KEY: serde_json::to_string(&plain).unwrap()}});
        assert_eq!(Inventory::from_configmap("builds", &plain).unwrap(), inv);
        assert!(cm.object.pointer("/data").is_none(), "written compressed");
    }

    #[test]
    fn an_inventory_of_10000_builds_fits_in_one_object() {
        let mut inv = Inventory::default();
        for i in 0..10_000 {
            let wf = Manifest::new(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"name": format!("component-{i}-build-{i:08x}-0a1b2c3d"), "namespace": format!("openchoreo-ci-org-{}", i % 50)}}))
            .unwrap();
            let spec = crate::core::naming::hex(&Sha256::digest(i.to_string()));
            inv.entries
                .insert(wf.id.to_string(), entry_for(&wf, Some(spec)));
        }
        let cm = inv.to_configmap("builds", "default");
        let size = serde_json::to_vec(&cm.object).unwrap().len();
        assert!(size < 1 << 20, "{size} bytes");
        assert_eq!(
            Inventory::from_configmap("builds", &cm.object).unwrap(),
            inv
        );
    }

    #[test]
    fn prune_is_the_set_difference_in_reverse_stage_order() {
        let mut inv = Inventory::default();
        for obj in [
            m("Namespace", None, "a"),
            m("ConfigMap", Some("a"), "keep"),
            m("ConfigMap", Some("a"), "gone"),
            m("Workflow", Some("a"), "w"),
        ] {
            inv.entries
                .insert(obj.id.to_string(), entry_for(&obj, None));
        }
        let rendered = vec![m("ConfigMap", Some("a"), "keep")];
        let ids: Vec<String> = prune_set(&inv, &rendered)
            .iter()
            .map(|e| e.id().to_string())
            .collect();
        assert_eq!(ids, ["Workflow/a/w", "ConfigMap/a/gone", "Namespace/a"]);
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_label_is_the_first_owners() {
        let live = json!({"metadata": {"labels": {INVENTORY_LABEL: "build-plane"}}});
        let label = live_inventory_label(&live);
        assert_eq!(label, Some("build-plane"));
        assert_eq!(live_inventory_label(&json!({"metadata": {}})), None);
        let both = set(&["build-plane", "builds"]);
        assert_eq!(owner_label("builds", label, &both), "build-plane");
        assert_eq!(owner_label("build-plane", label, &both), "build-plane");
        // The first owner let go, or never was one: the label becomes ours.
        assert_eq!(owner_label("builds", label, &set(&["builds"])), "builds");
        assert_eq!(owner_label("builds", Some("stranger"), &both), "builds");
        assert_eq!(owner_label("builds", None, &both), "builds");
    }

    #[test]
    fn a_first_owners_richer_object_needs_no_request() {
        let mut ours = m("ConfigMap", Some("a"), "shared");
        label_for_inventory(&mut ours, "build-plane");
        let mut live = ours.object.clone();
        live["metadata"]["labels"]["app.kubernetes.io/part-of"] = json!("openchoreo");
        assert!(covered_by_first_owner(&ours, "builds", &live));
        // Our own label: the inventory record decides, as for any object.
        assert!(!covered_by_first_owner(&ours, "build-plane", &live));
        // The live object lacks a field we render: it is applied.
        live["data"]["a"] = json!("2");
        assert!(!covered_by_first_owner(&ours, "builds", &live));
    }

    #[test]
    fn prune_deletes_only_what_no_other_inventory_declares() {
        let known = set(&["build-plane", "builds", "sync"]);
        let cases = [
            (
                "only ours",
                Some("builds"),
                set(&["builds"]),
                PruneDecision::Delete,
            ),
            (
                "recorded by no one else",
                Some("builds"),
                set(&[]),
                PruneDecision::Delete,
            ),
            (
                "the bundle still declares it",
                Some("builds"),
                set(&["builds", "build-plane"]),
                PruneDecision::Release(vec!["build-plane".into()]),
            ),
            (
                "labelled by the bundle, which declares it",
                Some("build-plane"),
                set(&["build-plane"]),
                PruneDecision::Release(vec!["build-plane".into()]),
            ),
            (
                "labelled by a former owner that let go",
                Some("build-plane"),
                set(&["builds"]),
                PruneDecision::Delete,
            ),
            (
                "label removed",
                None,
                set(&["builds"]),
                PruneDecision::Foreign,
            ),
            (
                "labelled for an unknown inventory",
                Some("elsewhere"),
                set(&["builds"]),
                PruneDecision::Foreign,
            ),
            (
                "taken over, still declared elsewhere",
                None,
                set(&["sync"]),
                PruneDecision::Release(vec!["sync".into()]),
            ),
        ];
        for (case, label, declaring, want) in cases {
            assert_eq!(
                decide_prune("builds", label, &declaring, &known, false),
                want,
                "{case}"
            );
        }
    }

    /// `helm.sh/resource-policy: keep` turns every delete into a keep and changes nothing else:
    /// an object another inventory declares is still released, a foreign one still left alone.
    #[test]
    fn prune_never_deletes_an_object_helm_would_keep() {
        let known = set(&["build-plane", "builds"]);
        let decide = |label, declaring: &[&str]| {
            decide_prune("build-plane", label, &set(declaring), &known, true)
        };
        assert_eq!(
            decide(Some("build-plane"), &["build-plane"]),
            PruneDecision::Keep
        );
        assert_eq!(decide(Some("builds"), &[]), PruneDecision::Keep);
        assert_eq!(
            decide(Some("build-plane"), &["builds"]),
            PruneDecision::Release(vec!["builds".into()])
        );
        assert_eq!(decide(None, &[]), PruneDecision::Foreign);

        let live = |policy: &str| serde_json::json!({"metadata": {"annotations": {RESOURCE_POLICY_ANNOTATION: policy}}});
        assert!(resource_policy_keep(&live("keep")));
        assert!(
            resource_policy_keep(&live(" Keep ")),
            "Helm trims and ignores case"
        );
        assert!(!resource_policy_keep(&live("delete")));
        assert!(!resource_policy_keep(&serde_json::json!({"metadata": {}})));
    }

    #[test]
    fn subset_ignores_server_fields_but_not_changes() {
        let want = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
        let have = json!({"spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}]}, "status": {}});
        assert!(is_subset(&want, &have));
        let changed = json!({"spec": {"containers": [{"name": "c", "image": "j"}]}});
        assert!(!is_subset(&want, &changed));
        let extra_item =
            json!({"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d"}]}});
        assert!(!is_subset(&want, &extra_item));
    }

    #[test]
    fn unchanged_needs_both_the_recorded_hash_and_the_live_fields() {
        let obj = m("ConfigMap", Some("a"), "x");
        let entry = entry_for(&obj, None);
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "a", "uid": "u"}, "data": {"a": "1"}});
        assert!(unchanged_without_request(&obj, Some(&entry), &live));
        assert!(!unchanged_without_request(&obj, None, &live));
        let drifted = json!({"metadata": {"name": "x", "namespace": "a"}, "apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "2"}});
        assert!(!unchanged_without_request(&obj, Some(&entry), &drifted));
        let mut older = entry.clone();
        older.hash = "other".into();
        assert!(!unchanged_without_request(&obj, Some(&older), &live));
    }

    fn secret(token: &str, extra_key: bool) -> Manifest {
        let mut data = json!({"token": token});
        if extra_key {
            data["user"] = json!("cm9ib3Q=");
        }
        Manifest::new(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "a"}, "type": "Opaque", "data": data}))
        .unwrap()
    }

    #[test]
    fn a_secret_is_recorded_without_its_values() {
        let (one, two) = (secret("b25l", false), secret("dHdv", false));
        let plain = object_hash(&one.object);
        let entry = entry_for(&one, None);
        assert_ne!(
            entry.hash, plain,
            "the content hash of a Secret is recorded"
        );
        assert_eq!(
            entry.hash,
            entry_for(&two, None).hash,
            "the hash depends on the values"
        );
        assert_ne!(entry.hash, entry_for(&secret("b25l", true), None).hash);
        let text = serde_json::to_string(&entry).unwrap();
        assert!(!text.contains("b25l") && !text.contains(&plain), "{text}");
        let string_data = Manifest::new(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"t\":\"x\"}}"}},
            "stringData": {"t": "s3cr3t"}}))
        .unwrap();
        let mut other = string_data.clone();
        other.object["stringData"]["t"] = json!("another");
        other.object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!("{}");
        assert_eq!(recorded_hash(&string_data), recorded_hash(&other));
        // Other kinds keep the hash of the whole object.
        let cm = m("ConfigMap", Some("a"), "x");
        assert_eq!(entry_for(&cm, None).hash, object_hash(&cm.object));
    }

    #[test]
    fn a_secret_is_unchanged_by_its_live_values() {
        let (one, two) = (secret("b25l", false), secret("dHdv", false));
        let mut live = one.object.clone();
        live["metadata"]["uid"] = json!("u");
        let entry = entry_for(&one, None);
        assert!(unchanged_without_request(&one, Some(&entry), &live));
        // A new value: the record matches, the live Secret does not.
        assert!(!unchanged_without_request(&two, Some(&entry), &live));
        // A key added: the record does not match.
        let wider = secret("b25l", true);
        let mut wider_live = wider.object.clone();
        wider_live["metadata"]["uid"] = json!("u");
        assert!(!unchanged_without_request(
            &one,
            Some(&entry_for(&wider, None)),
            &wider_live
        ));
        // What an earlier version recorded (the content hash): applied once more, then recorded
        // without the values.
        let mut older = entry.clone();
        older.hash = object_hash(&one.object);
        assert!(!unchanged_without_request(&one, Some(&older), &live));
        let mut inv = Inventory::default();
        inv.entries.insert(one.id.to_string(), older);
        let read =
            Inventory::from_configmap("b", &inv.to_configmap("b", "default").object).unwrap();
        assert_eq!(read, inv, "an earlier inventory still reads");
    }

    #[test]
    fn builds_are_submitted_once_per_spec() {
        let live = |hash: &'static str, finished: bool| {
            Some(LiveBuild {
                spec_hash: Some(hash),
                finished,
            })
        };
        let recorded = Some("s1");
        assert_eq!(decide_build("s1", None, None), BuildDecision::Submit);
        assert_eq!(
            decide_build("s1", recorded, None),
            BuildDecision::AlreadySubmitted
        );
        assert_eq!(decide_build("s2", recorded, None), BuildDecision::Submit);
        assert_eq!(
            decide_build("s1", None, live("s1", true)),
            BuildDecision::AlreadySubmitted
        );
        assert_eq!(
            decide_build("s2", None, live("s1", true)),
            BuildDecision::Replace
        );
        assert_eq!(
            decide_build("s2", recorded, live("s1", false)),
            BuildDecision::Busy
        );
        // A record cut to the recorded length still matches the full hash.
        let full = "a".repeat(64);
        let cut = recorded_spec_hash(&full);
        assert_eq!(
            decide_build(&full, Some(&cut), None),
            BuildDecision::AlreadySubmitted
        );
    }
}
