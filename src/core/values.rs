//! Helm's values rule: defaults < `-f` files in order < `--set` flags in order. Maps merge,
//! scalars and lists replace, and `null` deletes the key it lands on.

use serde_json::{Map, Value};

/// A values input was malformed or the merged values break the schema.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValuesError {
    /// A `--set` expression could not be parsed.
    #[error("--set {expr:?}: {reason}")]
    BadSet { expr: String, reason: String },
    /// A values file is not a mapping at the top.
    #[error("{source_name}: values must be a mapping at the top level")]
    NotAMap { source_name: String },
    /// The merged values break `values.schema.json`; one line per violation.
    #[error("invalid values:\n{}", .0.join("\n"))]
    Schema(Vec<String>),
    /// `--strict`: the values set keys buildplane accepts but does not apply.
    #[error("--strict: values buildplane accepts but does not apply: {}", keys(.0))]
    NotApplicable(Vec<NotApplicable>),
}

fn keys(notices: &[NotApplicable]) -> String {
    let shown: Vec<String> = notices
        .iter()
        .map(|n| format!("{} ({})", n.key, n.source))
        .collect();
    shown.join(", ")
}

/// Schema keyword: the key is accepted but nothing renders from it; the value is the reason.
/// Nothing below a key so marked is checked (nothing reads it).
pub const NOT_APPLICABLE: &str = "x-not-applicable";
/// Schema keyword next to [`NOT_APPLICABLE`]: said as well when the key's `enabled` is true in
/// the merged values (the user asked for something that will not happen).
pub const NOT_APPLICABLE_IF_ENABLED: &str = "x-not-applicable-if-enabled";

/// A key one input set that the schema marks [`NOT_APPLICABLE`]: reported, never rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplicable {
    /// The key path, e.g. `fluentBit` or `argo-workflows.server.ingress`.
    pub key: String,
    /// The input it came from: a values file's name, or `--set EXPR`.
    pub source: String,
    /// Why it does not apply.
    pub reason: String,
}

impl std::fmt::Display for NotApplicable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): not applicable: {}; ignored",
            self.key, self.source, self.reason
        )
    }
}

/// Every key of each input (`(source, overlay)` in order) that lands on a schema node marked
/// [`NOT_APPLICABLE`], outermost only, in input then key order. `merged` (the final values)
/// decides the [`NOT_APPLICABLE_IF_ENABLED`] note: a later input may switch `enabled` off.
pub fn not_applicable(
    inputs: &[(String, Value)],
    schema: &Value,
    merged: &Value,
) -> Vec<NotApplicable> {
    let mut out = Vec::new();
    for (source, overlay) in inputs {
        walk_marked(
            overlay,
            schema,
            schema,
            &mut Vec::new(),
            &mut |path, node| {
                let mut reason = node[NOT_APPLICABLE].as_str().unwrap_or("").to_owned();
                let pointer: String = path
                    .iter()
                    .map(|k| format!("/{}", pointer_escape(k)))
                    .collect();
                let enabled =
                    merged.pointer(&format!("{pointer}/enabled")) == Some(&Value::Bool(true));
                if let (true, Some(note)) = (enabled, node[NOT_APPLICABLE_IF_ENABLED].as_str()) {
                    reason = format!("{reason}; {}.enabled is true, but {note}", path.join("."));
                }
                out.push(NotApplicable {
                    key: path.join("."),
                    source: source.clone(),
                    reason,
                });
            },
        );
    }
    out
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The schema node a `$ref` stands for (only local `#/...` references exist in the chart).
fn resolve<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .map_or(node, |target| resolve(target, root)),
        None => node,
    }
}

/// Calls `found` for each key of `value` whose schema node is marked, not descending into it.
fn walk_marked(
    value: &Value,
    node: &Value,
    root: &Value,
    path: &mut Vec<String>,
    found: &mut dyn FnMut(&[String], &Value),
) {
    let Value::Object(map) = value else { return };
    let node = resolve(node, root);
    for (key, child) in map {
        if child.is_null() {
            continue;
        }
        let sub = node
            .get("properties")
            .and_then(|p| p.get(key))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
        let Some(sub) = sub.map(|s| resolve(s, root)) else {
            continue;
        };
        path.push(key.clone());
        if sub.get(NOT_APPLICABLE).is_some() {
            found(path, sub);
        } else {
            walk_marked(child, sub, root, path, found);
        }
        path.pop();
    }
}

/// Merges `overlay` into `base`: maps recursively, everything else replaces; a `null` in the
/// overlay deletes the key from the result.
pub fn coalesce(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                } else if let Some(existing) = b.get_mut(&k) {
                    if existing.is_object() && v.is_object() {
                        coalesce(existing, v);
                    } else {
                        *existing = strip_nulls(v);
                    }
                } else {
                    b.insert(k, strip_nulls(v));
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Nulls inside a newly added map have nothing to delete; drop them as Helm does.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Whether `--set` values are typed (`true`, `1`, `null`) or always strings (`--set-string`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetKind {
    Typed,
    String,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Field(String),
    Index(usize),
}

/// A refused `--set`; a long expression is shown by its first 60 characters.
fn bad(expr: &str, reason: impl Into<String>) -> ValuesError {
    let expr = match expr.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &expr[..cut]),
        None => expr.to_owned(),
    };
    ValuesError::BadSet {
        expr,
        reason: reason.into(),
    }
}

/// Splits on unescaped `sep` outside `{...}`, removing the escaping backslash before `sep`.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        if sep == ',' && c == '{' {
            depth += 1;
        } else if sep == ',' && c == '}' {
            depth = depth.saturating_sub(1);
        } else if c == sep && depth > 0 {
            parts.last_mut().unwrap().push(c);
            continue;
        }
        if c == '\\' {
            match chars.peek() {
                Some(&n) if n == sep || n == '\\' => {
                    if n == sep {
                        parts.last_mut().unwrap().push(n);
                    } else {
                        parts.last_mut().unwrap().push_str("\\\\");
                    }
                    chars.next();
                    continue;
                }
                _ => {}
            }
            parts.last_mut().unwrap().push(c);
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push(c);
        }
    }
    parts
}

fn parse_path(expr: &str, path: &str) -> Result<Vec<Key>, ValuesError> {
    if path.is_empty() {
        return Err(bad(expr, "empty key"));
    }
    let mut keys = Vec::new();
    for segment in split_escaped(path, '.') {
        let segment = segment.replace("\\\\", "\\");
        let (name, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment.as_str(), ""),
        };
        if name.is_empty() && (keys.is_empty() || rest.is_empty()) {
            return Err(bad(expr, format!("empty key segment in {path:?}")));
        }
        if !name.is_empty() {
            keys.push(Key::Field(name.to_owned()));
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| bad(expr, format!("missing ']' in {path:?}")))?;
            let idx: usize = rest[1..close].parse().map_err(|_| {
                bad(
                    expr,
                    format!("list index {:?} is not a number", &rest[1..close]),
                )
            })?;
            if idx > 65_536 {
                return Err(bad(expr, format!("list index {idx} is too large")));
            }
            keys.push(Key::Index(idx));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad(expr, format!("unexpected {rest:?} after ']'")));
            }
        }
    }
    Ok(keys)
}

fn typed_scalar(raw: &str, kind: SetKind) -> Value {
    if kind == SetKind::String {
        return Value::String(raw.to_owned());
    }
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match raw.parse::<i64>() {
            Ok(n) if !(raw.len() > 1 && raw.starts_with('0')) => Value::from(n),
            _ => Value::String(raw.to_owned()),
        },
    }
}

fn parse_value(raw: &str, kind: SetKind) -> Value {
    if kind == SetKind::Typed && raw.starts_with('{') && raw.ends_with('}') {
        let inner = &raw[1..raw.len() - 1];
        let items = if inner.is_empty() {
            vec![]
        } else {
            split_escaped(inner, ',')
        };
        return Value::Array(items.iter().map(|s| typed_scalar(s, kind)).collect());
    }
    typed_scalar(&raw.replace("\\\\", "\\"), kind)
}

/// The deepest key path one `--set` may name (the walk over it is recursive).
pub const MAX_SET_DEPTH: usize = 64;

/// Builds the overlay that one `--set`/`--set-string` flag stands for: `a.b=c,d[0]=e`,
/// `a={x,y}` for a list, `\,` and `\.` to escape.
pub fn parse_set(expr: &str, kind: SetKind) -> Result<Value, ValuesError> {
    let mut overlay = Value::Object(Map::new());
    for assignment in split_escaped(expr, ',') {
        let assignment = assignment.replace("\\,", ",");
        let (path, raw) = assignment.split_once('=').ok_or_else(|| {
            bad(
                expr,
                format!("{assignment:?} has no '=' (expected key=value)"),
            )
        })?;
        let keys = parse_path(expr, path)?;
        if keys.len() > MAX_SET_DEPTH {
            return Err(bad(
                expr,
                format!("{} keys deep; at most {MAX_SET_DEPTH}", keys.len()),
            ));
        }
        insert(&mut overlay, &keys, parse_value(raw, kind));
    }
    Ok(overlay)
}

fn insert(target: &mut Value, keys: &[Key], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        *target = value;
        return;
    };
    match first {
        Key::Field(name) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let map = target.as_object_mut().expect("just made a map");
            if rest.is_empty() {
                map.insert(name.clone(), value);
                return;
            }
            let next = map.entry(name.clone()).or_insert(Value::Null);
            insert(next, rest, value)
        }
        Key::Index(i) => {
            if !target.is_array() {
                *target = Value::Array(Vec::new());
            }
            let list = target.as_array_mut().expect("just made a list");
            while list.len() <= *i {
                list.push(Value::Null);
            }
            insert(&mut list[*i], rest, value)
        }
    }
}

/// A list set by index (`a[2]=x`) replaces the whole default list, as in Helm; positions it
/// did not name stay `null`, which the schema reports.
pub fn apply_set(values: &mut Value, overlay: Value) {
    coalesce(values, overlay);
}

/// Validates merged values against a JSON schema and says, per violation, the key path and
/// what was expected, e.g. `global.defaultResources.registry.type: must be one of local,
/// external (got "s3")`.
pub fn validate(values: &Value, schema: &Value) -> Result<(), ValuesError> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| ValuesError::Schema(vec![format!("values.schema.json is invalid: {e}")]))?;
    let mut problems: Vec<String> = validator
        .iter_errors(values)
        .map(|e| describe(&e))
        .collect();
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ValuesError::Schema(problems))
    }
}

/// A JSON pointer (`/a/b/0`) as a key path (`a.b[0]`).
pub fn key_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    if out.is_empty() {
        "(top level)".to_owned()
    } else {
        out
    }
}

fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    let instance = e.instance();
    let got = serde_json::to_string(instance.as_ref()).unwrap_or_default();
    let path = key_path(e.instance_path().as_str());
    let what = match e.kind() {
        K::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map(str::to_owned).unwrap_or(v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            format!("must be one of {} (got {got})", opts.join(", "))
        }
        K::Type { kind } => format!("must be of type {} (got {got})", type_names(kind)),
        K::Required { property } => {
            let key = property
                .as_str()
                .map(str::to_owned)
                .unwrap_or(property.to_string());
            let full = if path == "(top level)" {
                key
            } else {
                format!("{path}.{key}")
            };
            return format!("{full}: is required");
        }
        K::AdditionalProperties { unexpected } => {
            return unexpected
                .iter()
                .map(|k| {
                    let full = if path == "(top level)" {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    format!("{full}: unknown key")
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        K::Pattern { pattern } => format!("must match {pattern} (got {got})"),
        K::Minimum { limit } => format!("must be at least {limit} (got {got})"),
        K::Maximum { limit } => format!("must be at most {limit} (got {got})"),
        K::MinLength { limit } => format!("must be at least {limit} characters long (got {got})"),
        _ => format!("{e} (got {got})"),
    };
    format!("{path}: {what}")
}

fn type_names(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::error::TypeKind;
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(ts) => ts
            .into_iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_scalars_and_lists_replace_null_deletes() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2], "d": "x"}, "keep": true});
        coalesce(
            &mut base,
            json!({"a": {"b": 2, "c": [3], "d": null, "e": {"f": null, "g": 1}}}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 2, "c": [3], "e": {"g": 1}}, "keep": true})
        );
    }

    #[test]
    fn later_sources_win() {
        let mut v = json!({"x": 1});
        coalesce(&mut v, json!({"x": 2}));
        coalesce(&mut v, parse_set("x=3", SetKind::Typed).unwrap());
        assert_eq!(v, json!({"x": 3}));
    }

    #[test]
    fn set_paths_are_bounded() {
        let deep = format!("{}=1", vec!["a"; 5000].join("."));
        let e = parse_set(&deep, SetKind::Typed).unwrap_err().to_string();
        assert!(e.contains("5000 keys deep; at most 64"), "{e}");
        let ok = format!("{}=1", vec!["a"; 64].join("."));
        parse_set(&ok, SetKind::Typed).unwrap();
        let e = parse_set("a[999999999]=x", SetKind::Typed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("list index 999999999 is too large"), "{e}");
    }

    #[test]
    fn set_syntax() {
        assert_eq!(
            parse_set("a.b=c,d=true,e=10,f=null,g=007", SetKind::Typed).unwrap(),
            json!({"a": {"b": "c"}, "d": true, "e": 10, "f": null, "g": "007"})
        );
        assert_eq!(
            parse_set("a.b=true", SetKind::String).unwrap(),
            json!({"a": {"b": "true"}})
        );
        assert_eq!(
            parse_set("l[0]=x,l[2].k=y", SetKind::Typed).unwrap(),
            json!({"l": ["x", null, {"k": "y"}]})
        );
        assert_eq!(
            parse_set(r"labels.app\.kubernetes\.io/team=a\,b", SetKind::Typed).unwrap(),
            json!({"labels": {"app.kubernetes.io/team": "a,b"}})
        );
        assert_eq!(
            parse_set("ns={a,b}", SetKind::Typed).unwrap(),
            json!({"ns": ["a", "b"]})
        );
    }

    #[test]
    fn bad_set_expressions_say_why() {
        for (expr, needle) in [
            ("novalue", "has no '='"),
            ("=x", "empty key"),
            ("a..b=x", "empty key segment"),
            ("a[x]=1", "not a number"),
            ("a[1=1", "missing ']'"),
        ] {
            let err = parse_set(expr, SetKind::Typed).unwrap_err().to_string();
            assert!(err.contains(needle), "{expr}: {err}");
            assert!(err.contains(expr), "{expr}: {err}");
        }
    }

    #[test]
    fn schema_errors_name_the_key_path() {
        let schema = json!({"type": "object", "properties": {"global": {"type": "object",
            "properties": {"registry": {"type": "object", "additionalProperties": false,
                "properties": {"type": {"enum": ["local", "external"]}, "port": {"type": "integer"}}}}}}});
        let err = validate(
            &json!({"global": {"registry": {"type": "s3", "port": "x", "oops": 1}}}),
            &schema,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("global.registry.type: must be one of local, external (got \"s3\")"),
            "{err}"
        );
        assert!(
            err.contains("global.registry.port: must be of type integer (got \"x\")"),
            "{err}"
        );
        assert!(err.contains("global.registry.oops: unknown key"), "{err}");
        assert_eq!(key_path("/a/b/0/c"), "a.b[0].c");
    }

    fn marked_schema() -> Value {
        json!({"type": "object", "additionalProperties": false, "properties": {
            "kept": {"type": "object", "additionalProperties": false, "properties": {
                "on": {"type": "boolean"},
                "old": {"x-not-applicable": "nothing reads it"}}},
            "shipper": {"$ref": "#/$defs/shipper"}},
            "$defs": {"shipper": {"x-not-applicable": "no shipper",
                "x-not-applicable-if-enabled": "nothing is shipped"}}})
    }

    #[test]
    fn not_applicable_keys_are_named_with_their_input_outermost_only() {
        let schema = marked_schema();
        let inputs = vec![
            (
                "a.yaml".to_owned(),
                json!({"kept": {"on": true, "old": {"x": 1}},
                "shipper": {"enabled": true, "deep": {"er": 1}}}),
            ),
            (
                "--set shipper.enabled=false".to_owned(),
                json!({"shipper": {"enabled": false}}),
            ),
            (
                "--set kept.old=null".to_owned(),
                json!({"kept": {"old": null}}),
            ),
        ];
        let merged = json!({"kept": {"on": true, "old": {"x": 1}}, "shipper": {"enabled": false}});
        validate(&merged, &schema).unwrap();
        let shown: Vec<String> = not_applicable(&inputs, &schema, &merged)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "kept.old (a.yaml): not applicable: nothing reads it; ignored",
                "shipper (a.yaml): not applicable: no shipper; ignored",
                "shipper (--set shipper.enabled=false): not applicable: no shipper; ignored",
            ]
        );
        // A null deletes nothing there: no input sets the key.
        let enabled = json!({"shipper": {"enabled": true}});
        let n = not_applicable(&[("b.yaml".into(), enabled.clone())], &schema, &enabled);
        assert_eq!(
            n[0].reason,
            "no shipper; shipper.enabled is true, but nothing is shipped"
        );
        // Keys of the chart and misspelled keys are not reported here (the schema refuses the
        // second).
        let plain = json!({"kept": {"on": false, "typo": 1}});
        assert!(not_applicable(&[("c.yaml".into(), plain.clone())], &schema, &plain).is_empty());
        assert!(validate(&plain, &schema).is_err());
    }

    #[test]
    fn strict_refusal_is_one_line_naming_each_key_and_input() {
        let e = ValuesError::NotApplicable(vec![
            NotApplicable {
                key: "fluentBit".into(),
                source: "up.yaml".into(),
                reason: "r".into(),
            },
            NotApplicable {
                key: "argo-workflows.workflow".into(),
                source: "--set argo-workflows.workflow.x=1".into(),
                reason: "r".into(),
            },
        ]);
        assert_eq!(
            e.to_string(),
            "--strict: values buildplane accepts but does not apply: fluentBit (up.yaml), \
             argo-workflows.workflow (--set argo-workflows.workflow.x=1)"
        );
    }
}
