//! The comparison half of `buildplane diff`: what would change if the rendered objects were
//! applied, decided without I/O.
//!
//! The caller fetches the live object and the server-side dry-run result of the rendered one
//! (both as `serde_json::Value`); everything after that lives here: dropping what the server
//! owns ([`normalize`]), hiding Secret values ([`mask_secrets`]), deciding the kind of change
//! ([`classify`]), the unified YAML diff ([`unified`]) and the machine-readable plan
//! ([`plan_json`]). [`Comparison::new`] runs the first three in the one safe order.

use super::manifest::{self, Manifest, ObjectId, SerializeError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::ffi::OsStr;
use std::fmt;

/// Fields of `metadata` that the server owns or rewrites on every write.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// Client-side `kubectl apply` keeps the whole previous object here, Secret data included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What every Secret value becomes when it is the same on both sides (or on one side only).
pub const MASK: &str = "***";
/// The live side of a Secret value that would change.
pub const MASK_BEFORE: &str = "*** (before)";
/// The rendered side of a Secret value that would change.
pub const MASK_AFTER: &str = "*** (after)";

/// Drops what the server owns or what changes on every write, so that a live object and a
/// server-side dry-run result compare equal when nothing would change:
/// `metadata.{managedFields, resourceVersion, uid, creationTimestamp, generation, selfLink}`,
/// the annotation `kubectl.kubernetes.io/last-applied-configuration`, and `status`.
/// Empty (or null) `metadata.annotations`/`labels` left behind are removed: the API server
/// never returns them, so a rendered `labels: {}` means the same as no labels.
/// Anything that is not a mapping is returned as it is.
pub fn normalize(obj: &Value) -> Value {
    let mut out = obj.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    map.remove("status");
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(LAST_APPLIED);
        }
        for key in ["annotations", "labels"] {
            let empty = match meta.get(key) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(key);
            }
        }
    }
    out
}

fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// Secret masking for a pair (either side may be absent), as helm-diff does it: for kind
/// Secret, every value of `data` and `stringData` is replaced by a mask that says only whether
/// that key changed: equal on both sides -> `***` on both; different -> `*** (before)` /
/// `*** (after)`; a key on one side only -> `***`. The actual value never survives (also not
/// its length or hash), so diffs and plans can be printed and stored in CI logs.
///
/// Because masking keeps "same" and "different" apart, [`classify`] gives the same answer on
/// the masked pair as on the clear one. A Secret's `last-applied-configuration` annotation
/// (which holds the data in clear) is dropped here too, so masking is safe even on an object
/// that was not [`normalize`]d. Objects of other kinds are left untouched.
pub fn mask_secrets(mut before: Option<&mut Value>, mut after: Option<&mut Value>) {
    let secret =
        before.as_deref().is_some_and(is_secret) || after.as_deref().is_some_and(is_secret);
    if !secret {
        return;
    }
    for field in ["data", "stringData"] {
        let old = before
            .as_deref()
            .and_then(|v| v.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let new = after
            .as_deref()
            .and_then(|v| v.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mask = |side: Option<&mut Value>,
                    this: &Map<String, Value>,
                    other: &Map<String, Value>,
                    changed: &str| {
            let Some(values) = side
                .and_then(|v| v.get_mut(field))
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            for (key, value) in values.iter_mut() {
                let same = other.get(key).is_none_or(|o| Some(o) == this.get(key));
                *value = Value::String(if same { MASK } else { changed }.to_owned());
            }
        };
        mask(before.as_deref_mut(), &old, &new, MASK_BEFORE);
        mask(after.as_deref_mut(), &new, &old, MASK_AFTER);
        // `data: "oops"` or any other non-mapping would otherwise pass through in clear.
        for side in [before.as_deref_mut(), after.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(v) = side.get_mut(field)
                && !v.is_object()
                && !v.is_null()
            {
                *v = Value::String(MASK.to_owned());
            }
        }
    }
    for side in [before, after].into_iter().flatten() {
        if let Some(annotations) = side
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
    }
}

/// What applying the rendered object would do to the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Delete,
    Unchanged,
}

/// Compares normalized, masked objects. Create when only `after`, Delete when only `before`;
/// neither side is nothing to do (Unchanged).
pub fn classify(before: Option<&Value>, after: Option<&Value>) -> Change {
    match (before, after) {
        (None, Some(_)) => Change::Create,
        (Some(_), None) => Change::Delete,
        (Some(b), Some(a)) if b != a => Change::Update,
        _ => Change::Unchanged,
    }
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn yaml(id: &ObjectId, object: Option<&Value>) -> Result<String, SerializeError> {
    match object {
        None => Ok(String::new()),
        Some(object) => manifest::to_yaml(&Manifest {
            id: id.clone(),
            object: object.clone(),
        }),
    }
}

/// Appends one diff line, coloured as a whole but with the reset before the newline, so a
/// pager never carries the colour onto the next line.
fn push_line(out: &mut String, color: Option<&str>, line: &str) {
    let line = line.strip_suffix('\n').unwrap_or(line);
    match color {
        Some(c) => {
            out.push_str(c);
            out.push_str(line);
            out.push_str(RESET);
        }
        None => out.push_str(line),
    }
    out.push('\n');
}

/// A unified diff of the two objects' YAML (the same serializer as `render`, so scripts appear
/// as `|` blocks and diff line by line), with headers `--- live/<id>` and `+++ rendered/<id>`
/// where `<id>` is `Kind/ns/name`, and 3 lines of context. A new object is shown in full (all
/// `+`), a deleted one in full (all `-`); equal objects give an empty string.
/// `color` adds ANSI colours: red `-`, green `+`, cyan `@@`, bold headers.
///
/// Pass normalized, masked objects (see [`Comparison`]): this function shows what it is given.
pub fn unified(
    id: &ObjectId,
    before: Option<&Value>,
    after: Option<&Value>,
    color: bool,
) -> Result<String, SerializeError> {
    let old = yaml(id, before)?;
    let new = yaml(id, after)?;
    let diff = similar::TextDiff::from_lines(&old, &new);
    let mut out = String::new();
    let paint = |c: &'static str| color.then_some(c);
    for (index, hunk) in diff
        .unified_diff()
        .context_radius(3)
        .iter_hunks()
        .enumerate()
    {
        if index == 0 {
            push_line(&mut out, paint(BOLD), &format!("--- live/{id}"));
            push_line(&mut out, paint(BOLD), &format!("+++ rendered/{id}"));
        }
        push_line(&mut out, paint(CYAN), &hunk.header().to_string());
        for change in hunk.iter_changes() {
            let (tag, c) = match change.tag() {
                similar::ChangeTag::Delete => ('-', paint(RED)),
                similar::ChangeTag::Insert => ('+', paint(GREEN)),
                similar::ChangeTag::Equal => (' ', None),
            };
            push_line(&mut out, c, &format!("{tag}{}", change.value()));
        }
    }
    Ok(out)
}

/// Counts of each kind of change, for the last line of `diff` and the `-o json` summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub change: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Summary {
    /// Counts one object.
    pub fn add(&mut self, c: Change) {
        match c {
            Change::Create => self.create += 1,
            Change::Update => self.change += 1,
            Change::Delete => self.delete += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }

    /// Whether applying would do anything (what `diff --exit-code` style callers test).
    pub fn has_differences(&self) -> bool {
        self.create + self.change + self.delete > 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to change, {} to delete, {} unchanged",
            self.create, self.change, self.delete, self.unchanged
        )
    }
}

/// One planned object for `-o json`. `namespace` is null for cluster-scoped objects; `diff` is
/// the plain (uncoloured) unified diff, empty when unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    pub id: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub change: Change,
    pub diff: String,
}

impl PlanEntry {
    pub fn new(id: &ObjectId, change: Change, diff: String) -> Self {
        PlanEntry {
            id: id.to_string(),
            api_version: id.api_version.clone(),
            kind: id.kind.clone(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            change,
            diff,
        }
    }
}

/// The machine-readable plan: `{"summary": {...}, "objects": [PlanEntry...]}`.
pub fn plan_json(entries: &[PlanEntry], summary: &Summary) -> Value {
    json!({"summary": summary, "objects": entries})
}

/// One object compared, from the live object and the server-side dry-run result of the rendered
/// one. It holds only the normalized, masked pair, so nothing printed from it (text diff or
/// plan entry) can reveal a Secret value, and the text and JSON outputs agree.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub id: ObjectId,
    pub change: Change,
    /// The live object, normalized and masked.
    pub before: Option<Value>,
    /// The rendered (dry-run) object, normalized and masked.
    pub after: Option<Value>,
}

impl Comparison {
    /// [`normalize`] both sides, [`mask_secrets`], then [`classify`].
    pub fn new(id: &ObjectId, live: Option<&Value>, rendered: Option<&Value>) -> Self {
        let mut before = live.map(normalize);
        let mut after = rendered.map(normalize);
        mask_secrets(before.as_mut(), after.as_mut());
        Comparison {
            id: id.clone(),
            change: classify(before.as_ref(), after.as_ref()),
            before,
            after,
        }
    }

    /// The unified diff of the masked pair; see [`unified`].
    pub fn diff(&self, color: bool) -> Result<String, SerializeError> {
        unified(&self.id, self.before.as_ref(), self.after.as_ref(), color)
    }

    /// The `-o json` entry, with the plain diff.
    pub fn entry(&self) -> Result<PlanEntry, SerializeError> {
        Ok(PlanEntry::new(&self.id, self.change, self.diff(false)?))
    }
}

/// Whether to colour the output, from facts the caller gathers: the `--no-color` flag, the
/// value of `NO_COLOR` (set and non-empty disables colour, as <https://no-color.org> says; an
/// empty value counts as unset), and whether stdout is a terminal (colour only there).
pub fn use_color(no_color_flag: bool, no_color_env: Option<&OsStr>, is_terminal: bool) -> bool {
    if no_color_flag || no_color_env.is_some_and(|v| !v.is_empty()) {
        return false;
    }
    is_terminal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, ns: Option<&str>, name: &str) -> ObjectId {
        ObjectId {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
        }
    }

    fn rendered_cm() -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ns", "labels": {"app": "x"},
                         "annotations": {"keep": "me"}},
            "data": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7"}
        })
    }

    /// The same object as the server returns it.
    fn live_cm() -> Value {
        let mut v = rendered_cm();
        let meta = v["metadata"].as_object_mut().unwrap();
        meta.insert("managedFields".into(), json!([{"manager": "buildplane"}]));
        meta.insert("resourceVersion".into(), json!("123"));
        meta.insert("uid".into(), json!("0000-1111"));
        meta.insert("creationTimestamp".into(), json!("2024-01-01T00:00:00Z"));
        meta.insert("generation".into(), json!(4));
        meta.insert(
            "selfLink".into(),
            json!("/api/v1/namespaces/ns/configmaps/cfg"),
        );
        meta["annotations"][LAST_APPLIED] = json!("{\"big\":\"blob\"}");
        v["status"] = json!({"phase": "Whatever"});
        v
    }

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": "creds", "namespace": "ns"}, "data": data})
    }

    fn lines_with(diff: &str, prefix: char, header: &str) -> Vec<String> {
        diff.lines()
            .filter(|l| l.starts_with(prefix) && !l.starts_with(header))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn normalize_drops_exactly_the_server_fields() {
        let n = normalize(&live_cm());
        assert_eq!(n, rendered_cm());
        // Labels, other annotations, spec-like content survive.
        assert_eq!(n["metadata"]["labels"]["app"], "x");
        assert_eq!(n["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(n["data"]["g"], "7");
        // Fields with the same names elsewhere are not touched.
        let d = json!({"kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"generation": 1, "uid": "u", "status": "s",
                                "template": {"metadata": {"labels": {}}}}});
        assert_eq!(normalize(&d), d);
    }

    #[test]
    fn normalize_removes_maps_left_empty() {
        let v = json!({"kind": "A", "metadata": {"name": "a",
            "annotations": {LAST_APPLIED: "{}"}, "labels": {}}});
        assert_eq!(
            normalize(&v),
            json!({"kind": "A", "metadata": {"name": "a"}})
        );
        assert_eq!(normalize(&json!([1])), json!([1]));
    }

    #[test]
    fn live_with_server_fields_is_unchanged() {
        let i = id("ConfigMap", Some("ns"), "cfg");
        let c = Comparison::new(&i, Some(&live_cm()), Some(&rendered_cm()));
        assert_eq!(c.change, Change::Unchanged);
        assert_eq!(c.diff(false).unwrap(), "");
        assert_eq!(c.entry().unwrap().diff, "");
        // Without normalizing they differ: the test above is not vacuous.
        assert_eq!(
            classify(Some(&live_cm()), Some(&rendered_cm())),
            Change::Update
        );
    }

    #[test]
    fn a_changed_field_is_one_minus_and_one_plus_line() {
        let i = id("ConfigMap", Some("ns"), "cfg");
        let mut new = rendered_cm();
        new["data"]["d"] = json!("40");
        let c = Comparison::new(&i, Some(&live_cm()), Some(&new));
        assert_eq!(c.change, Change::Update);
        let d = c.diff(false).unwrap();
        assert!(
            d.starts_with("--- live/ConfigMap/ns/cfg\n+++ rendered/ConfigMap/ns/cfg\n@@ "),
            "{d}"
        );
        assert_eq!(lines_with(&d, '-', "---"), ["-  d: \"4\""], "{d}");
        assert_eq!(lines_with(&d, '+', "+++"), ["+  d: \"40\""], "{d}");
        // 3 lines of context each side, nothing more.
        assert_eq!(lines_with(&d, ' ', "\0").len(), 6, "{d}");
        assert_eq!(d.lines().filter(|l| l.starts_with("@@")).count(), 1, "{d}");
    }

    #[test]
    fn created_and_deleted_objects_are_shown_whole() {
        let i = id("ConfigMap", Some("ns"), "cfg");
        let obj = rendered_cm();
        let yaml_lines = manifest::to_yaml(&Manifest {
            id: i.clone(),
            object: obj.clone(),
        })
        .unwrap()
        .lines()
        .count();
        assert!(yaml_lines > 10);

        let c = Comparison::new(&i, None, Some(&obj));
        assert_eq!(c.change, Change::Create);
        let d = c.diff(false).unwrap();
        assert!(d.contains(&format!("@@ -0,0 +1,{yaml_lines} @@\n")), "{d}");
        assert_eq!(lines_with(&d, '+', "+++").len(), yaml_lines, "{d}");
        assert!(lines_with(&d, '-', "---").is_empty(), "{d}");
        assert!(lines_with(&d, ' ', "\0").is_empty(), "{d}");

        let c = Comparison::new(&i, Some(&live_cm()), None);
        assert_eq!(c.change, Change::Delete);
        let d = c.diff(false).unwrap();
        assert!(d.contains(&format!("@@ -1,{yaml_lines} +0,0 @@\n")), "{d}");
        assert_eq!(lines_with(&d, '-', "---").len(), yaml_lines, "{d}");
        assert!(lines_with(&d, '+', "+++").is_empty(), "{d}");
        assert!(!d.contains("resourceVersion"), "{d}");

        assert_eq!(classify(None, None), Change::Unchanged);
        assert_eq!(unified(&i, None, None, true).unwrap(), "");
    }

    const CLEAR: &[&str] = &[
        "old-secret-value",
        "b2xkLXNlY3JldC12YWx1ZQ==",
        "new-secret-value",
        "bmV3LXNlY3JldC12YWx1ZQ==",
        "same-value",
        "c2FtZS12YWx1ZQ==",
        "only-after",
        "b25seS1hZnRlcg==",
    ];

    #[test]
    fn secrets_are_masked_but_changes_still_show() {
        let i = id("Secret", Some("ns"), "creds");
        let mut live = secret(json!({"token": "b2xkLXNlY3JldC12YWx1ZQ==",
                                     "user": "c2FtZS12YWx1ZQ=="}));
        // Client-side apply leaves the whole Secret in clear in this annotation.
        live["metadata"]["annotations"] = json!({LAST_APPLIED: live.to_string()});
        live["metadata"]["resourceVersion"] = json!("9");
        let mut rendered = secret(json!({"token": "bmV3LXNlY3JldC12YWx1ZQ==",
                                         "user": "c2FtZS12YWx1ZQ==",
                                         "extra": "b25seS1hZnRlcg=="}));
        rendered["stringData"] = json!({"plain": "only-after"});

        let c = Comparison::new(&i, Some(&live), Some(&rendered));
        assert_eq!(c.change, Change::Update);
        let before = c.before.as_ref().unwrap();
        let after = c.after.as_ref().unwrap();
        assert_eq!(before["data"], json!({"token": MASK_BEFORE, "user": MASK}));
        assert_eq!(
            after["data"],
            json!({"token": MASK_AFTER, "user": MASK, "extra": MASK})
        );
        assert_eq!(after["stringData"], json!({"plain": MASK}));

        let plain = c.diff(false).unwrap();
        let colored = c.diff(true).unwrap();
        assert!(plain.contains("-  token: \"*** (before)\""), "{plain}");
        assert!(plain.contains("+  token: \"*** (after)\""), "{plain}");
        assert!(plain.contains("+  extra: \"***\""), "{plain}");
        assert!(plain.contains("   user: \"***\""), "{plain}");
        let summary = Summary {
            change: 1,
            ..Summary::default()
        };
        let plan = plan_json(&[c.entry().unwrap()], &summary).to_string();
        let debug = format!("{c:?}");
        for text in [&plain, &colored, &plan, &debug] {
            for clear in CLEAR {
                assert!(!text.contains(clear), "{clear} leaked into {text}");
            }
        }
    }

    #[test]
    fn equal_secrets_stay_unchanged_and_other_kinds_are_not_masked() {
        let i = id("Secret", Some("ns"), "creds");
        let s = secret(json!({"token": "c2FtZS12YWx1ZQ=="}));
        let c = Comparison::new(&i, Some(&s), Some(&s));
        assert_eq!(c.change, Change::Unchanged);
        assert_eq!(c.after.unwrap()["data"]["token"], MASK);

        // A Secret only on one side is masked too.
        let c = Comparison::new(&i, Some(&s), None);
        assert_eq!(c.before.unwrap()["data"]["token"], MASK);

        // Masking alone (without normalize) also drops the clear copy in last-applied.
        let mut raw = secret(json!({"token": "b2xkLXNlY3JldC12YWx1ZQ=="}));
        raw["metadata"]["annotations"] = json!({LAST_APPLIED: raw.to_string(), "keep": "me"});
        mask_secrets(None, Some(&mut raw));
        assert!(!raw.to_string().contains(CLEAR[1]), "{raw}");
        assert_eq!(raw["metadata"]["annotations"], json!({"keep": "me"}));

        let mut cm = rendered_cm();
        mask_secrets(Some(&mut cm), None);
        assert_eq!(cm, rendered_cm());
    }

    #[test]
    fn color_is_ansi_only_when_asked() {
        let i = id("ConfigMap", Some("ns"), "cfg");
        let mut new = rendered_cm();
        new["data"]["d"] = json!("40");
        let plain = unified(&i, Some(&rendered_cm()), Some(&new), false).unwrap();
        let colored = unified(&i, Some(&rendered_cm()), Some(&new), true).unwrap();
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(
            colored.contains("\x1b[1m--- live/ConfigMap/ns/cfg\x1b[0m\n"),
            "{colored}"
        );
        assert!(
            colored.contains("\x1b[1m+++ rendered/ConfigMap/ns/cfg\x1b[0m\n"),
            "{colored}"
        );
        assert!(colored.contains("\x1b[36m@@ -"), "{colored}");
        assert!(
            colored.contains("\x1b[31m-  d: \"4\"\x1b[0m\n"),
            "{colored}"
        );
        assert!(
            colored.contains("\x1b[32m+  d: \"40\"\x1b[0m\n"),
            "{colored}"
        );
        // Stripping the escapes gives back the plain diff.
        let stripped = colored
            .replace(BOLD, "")
            .replace(RED, "")
            .replace(GREEN, "")
            .replace(CYAN, "")
            .replace(RESET, "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn summary_counts_and_prints() {
        let mut s = Summary::default();
        assert!(!s.has_differences());
        for c in [
            Change::Create,
            Change::Create,
            Change::Create,
            Change::Update,
        ] {
            s.add(c);
        }
        for _ in 0..12 {
            s.add(Change::Unchanged);
        }
        assert_eq!(
            s.to_string(),
            "3 to create, 1 to change, 0 to delete, 12 unchanged"
        );
        assert!(s.has_differences());
        let only_delete = Summary {
            delete: 1,
            ..Summary::default()
        };
        assert!(only_delete.has_differences());
        let only_unchanged = Summary {
            unchanged: 5,
            ..Summary::default()
        };
        assert!(!only_unchanged.has_differences());
    }

    #[test]
    fn plan_json_shape() {
        let cluster = id("Namespace", None, "bp");
        let entries = [
            PlanEntry::new(&cluster, Change::Create, "--- x\n".into()),
            PlanEntry::new(
                &id("ConfigMap", Some("ns"), "cfg"),
                Change::Unchanged,
                String::new(),
            ),
        ];
        let mut s = Summary::default();
        entries.iter().for_each(|e| s.add(e.change));
        assert_eq!(
            plan_json(&entries, &s),
            json!({
                "summary": {"create": 1, "change": 0, "delete": 0, "unchanged": 1},
                "objects": [
                    {"id": "Namespace/bp", "apiVersion": "v1", "kind": "Namespace",
                     "namespace": null, "name": "bp", "change": "create", "diff": "--- x\n"},
                    {"id": "ConfigMap/ns/cfg", "apiVersion": "v1", "kind": "ConfigMap",
                     "namespace": "ns", "name": "cfg", "change": "unchanged", "diff": ""}
                ]
            })
        );
    }

    #[test]
    fn use_color_truth_table() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        // (flag, env, terminal) -> colour
        let table = [
            (false, None, true, true),
            (false, None, false, false),
            (false, empty, true, true),
            (false, empty, false, false),
            (false, set, true, false),
            (false, set, false, false),
            (true, None, true, false),
            (true, None, false, false),
            (true, empty, true, false),
            (true, set, true, false),
        ];
        for (flag, env, tty, want) in table {
            assert_eq!(use_color(flag, env, tty), want, "{flag} {env:?} {tty}");
        }
    }
}
