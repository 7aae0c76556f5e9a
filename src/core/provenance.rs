//! Where an emitted Workload came from, as annotations every target writes (directory, Git,
//! cluster): the Build, the build object that ran it, the commit clone-step actually built, and
//! what the build object itself records of its inputs (the Build's spec hash, and what
//! rendering stamped on it). A build's own output cannot forge them: a Workload whose output
//! writes any key under `buildplane.openchoreo.dev/` is refused (`core::workload::validate`),
//! and [`Provenance::stamp`] drops such keys anyway before writing its own.

use serde_json::{Map, Value};

/// `namespace/name` of the Build.
pub const BUILD: &str = "buildplane.openchoreo.dev/build";
/// `namespace/name` of the build object (the Argo Workflow) that ran it.
pub const BUILD_OBJECT: &str = "buildplane.openchoreo.dev/build-object";
/// The commit clone-step checked out and built (its `git-revision` output).
pub const REVISION: &str = "buildplane.openchoreo.dev/revision";
/// The Build spec's hash, as on the build object (`core::spec::SPEC_HASH_ANNOTATION`).
pub const SPEC_HASH: &str = crate::core::spec::SPEC_HASH_ANNOTATION;
/// `sha256:<hex>` of the ClusterWorkflowTemplate the build ran, as rendered.
pub const TEMPLATE_DIGEST: &str = "buildplane.openchoreo.dev/template-digest";
/// `sha256:<hex>` of the merged values the build was rendered with.
pub const VALUES_DIGEST: &str = "buildplane.openchoreo.dev/values-digest";
/// The buildplane version that rendered the build object.
pub const VERSION: &str = "buildplane.openchoreo.dev/version";

/// The version of buildplane that renders: [`VERSION`]'s value.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The annotations copied from the build object onto the Workload, when it has them.
pub const FROM_BUILD_OBJECT: &[&str] = &[SPEC_HASH, TEMPLATE_DIGEST, VALUES_DIGEST, VERSION];

/// Every provenance key, in the order `get` shows them.
pub const KEYS: &[&str] = &[
    BUILD,
    BUILD_OBJECT,
    REVISION,
    SPEC_HASH,
    TEMPLATE_DIGEST,
    VALUES_DIGEST,
    VERSION,
];

/// The longest provenance value taken from a build object (digests are 71 characters).
const MAX_VALUE: usize = 128;

/// What is known of a finished build, to stamp on its Workload.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// `(key, value)` in [`KEYS`] order.
    pub entries: Vec<(&'static str, String)>,
}

impl Provenance {
    /// From the Build's `namespace/name`, its build object (`namespace/name` and the live
    /// object) and the commit built. A build object's value that is not a short printable
    /// string is left out.
    pub fn of(build: &str, object_ref: &str, object: &Value, revision: Option<&str>) -> Provenance {
        let annotations = object.pointer("/metadata/annotations");
        let mut entries = vec![
            (BUILD, build.to_owned()),
            (BUILD_OBJECT, object_ref.to_owned()),
        ];
        if let Some(r) = revision.filter(|r| plain(r)) {
            entries.push((REVISION, r.to_owned()));
        }
        for key in FROM_BUILD_OBJECT {
            if let Some(v) = annotations
                .and_then(|a| a.get(*key))
                .and_then(Value::as_str)
                .filter(|v| plain(v))
            {
                entries.push((key, v.to_owned()));
            }
        }
        entries.sort_by_key(|(k, _)| KEYS.iter().position(|x| x == k));
        Provenance { entries }
    }

    /// Writes these annotations into `workload` (a canonical Workload object), after dropping
    /// every provenance key the build's output wrote there itself.
    pub fn stamp(&self, workload: &mut Value) {
        let Some(meta) = workload.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        let map = annotations.as_object_mut().expect("just made a map");
        map.retain(|k, _| !KEYS.contains(&k.as_str()));
        for (k, v) in &self.entries {
            map.insert((*k).to_owned(), Value::String(v.clone()));
        }
        if map.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// The provenance annotations an object carries, in [`KEYS`] order.
pub fn read(object: &Value) -> Vec<(&'static str, String)> {
    let annotations = object.pointer("/metadata/annotations");
    KEYS.iter()
        .filter_map(|k| {
            let v = annotations?.get(*k)?.as_str()?;
            Some((*k, v.to_owned()))
        })
        .collect()
}

/// Whether a value may be copied: short, and printable ASCII without spaces (a digest, a hash,
/// a version, a commit).
fn plain(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_VALUE && v.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_workload_carries_its_builds_provenance_and_none_its_output_forged() {
        let object = json!({"metadata": {"annotations": {
            SPEC_HASH: "4a1b2c3d",
            VERSION: "0.1.0",
            TEMPLATE_DIGEST: "sha256:00ff",
            // Not a provenance key: not copied.
            "workflows.argoproj.io/pod-name-format": "v2",
            // A value that is not plain text is left out.
            VALUES_DIGEST: "sha256:ab\ncd",
        }}});
        let p = Provenance::of(
            "acme/cart-build",
            "openchoreo-ci-acme/cart-1",
            &object,
            Some("4f2a9c1e"),
        );
        let mut workload = json!({"metadata": {"name": "cart", "annotations": {
            // Forged by the repository's own output: replaced.
            REVISION: "0000000",
            BUILD: "other/build",
            "team.example.com/note": "kept",
        }}});
        p.stamp(&mut workload);
        assert_eq!(
            workload["metadata"]["annotations"],
            json!({
                BUILD: "acme/cart-build",
                BUILD_OBJECT: "openchoreo-ci-acme/cart-1",
                REVISION: "4f2a9c1e",
                SPEC_HASH: "4a1b2c3d",
                TEMPLATE_DIGEST: "sha256:00ff",
                VERSION: "0.1.0",
                "team.example.com/note": "kept",
            })
        );
        assert_eq!(
            read(&workload).iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [
                BUILD,
                BUILD_OBJECT,
                REVISION,
                SPEC_HASH,
                TEMPLATE_DIGEST,
                VERSION
            ]
        );
        // Without a commit and annotations, the Build and its object are still named.
        let p = Provenance::of("acme/b", "ns/wf", &json!({}), None);
        let mut w = json!({"metadata": {"name": "x"}});
        p.stamp(&mut w);
        assert_eq!(
            w["metadata"]["annotations"],
            json!({BUILD: "acme/b", BUILD_OBJECT: "ns/wf"})
        );
    }
}
