//! Helm's values rule, built the way Helm's `MergeValues` builds it. The user's values are the
//! `-f` files merged in order ([`merge_maps`]: maps merge, everything else replaces, `null` is
//! kept), then the `--set` family written into them ([`assign`]) in Helm's order —
//! `--set-json`, `--set`, `--set-string`, `--set-file`, each in command-line order. The user's
//! values are then coalesced over the chart's defaults ([`coalesce`]): maps merge, scalars and
//! lists replace, and `null` deletes the key it lands on.

use serde_json::{Map, Value};

/// A values input was malformed or the merged values break the schema.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValuesError {
    /// A `--set`-family expression could not be parsed; names the flag (and the key).
    #[error("{flag} {expr:?}: {reason}")]
    BadSet {
        flag: &'static str,
        expr: String,
        reason: String,
    },
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
/// overlay deletes the key from the result. This is how the user's values meet the chart's
/// defaults.
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

/// Helm's `MergeMaps`, for the user's `-f` files (and a whole `--set-json` object): maps merge
/// key by key, everything else replaces. A `null` is kept, not applied: it deletes a chart
/// default only when the user's values are [`coalesce`]d, so a later file can still fill the
/// key in.
pub fn merge_maps(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_maps(existing, v)
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The `--set` family: how the text after `=` becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// `--set`: typed (`true`, `false`, `null`, integers; any case), lists `{a,b}`.
    Typed,
    /// `--set-string`: always a string.
    String,
    /// `--set-file`: the text is a path; the caller reads the file and its content becomes
    /// the (string) value.
    File,
    /// `--set-json`: a JSON value per key (`key=<json>,key2=<json>`), or one whole JSON object.
    Json,
}

impl SetKind {
    /// The flag, as messages name it.
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Typed => "--set",
            SetKind::String => "--set-string",
            SetKind::File => "--set-file",
            SetKind::Json => "--set-json",
        }
    }

    /// Where Helm applies this flag, whatever its place on the command line (`MergeValues` in
    /// Helm's `pkg/cli/values/options.go`): `--set-json`, then `--set`, `--set-string`,
    /// `--set-file`. A later flag of the same kind wins over an earlier one.
    pub fn helm_rank(self) -> u8 {
        match self {
            SetKind::Json => 0,
            SetKind::Typed => 1,
            SetKind::String => 2,
            SetKind::File => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Field(String),
    Index(usize),
}

/// One `key=value` of a `--set`-family flag. For `--set-file`, `value` is the path (a string)
/// until the caller replaces it with the file's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The key as written, for messages; empty for a whole `--set-json` object.
    pub key: String,
    keys: Vec<Key>,
    pub value: Value,
}

/// A refused expression of `kind`; a long expression is shown by its first 60 characters.
fn bad(kind: SetKind, expr: &str, reason: impl Into<String>) -> ValuesError {
    let expr = match expr.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &expr[..cut]),
        None => expr.to_owned(),
    };
    ValuesError::BadSet {
        flag: kind.flag(),
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

/// The deepest key path one `--set` may name (the walk over it is recursive).
pub const MAX_SET_DEPTH: usize = 64;

fn parse_path(kind: SetKind, expr: &str, path: &str) -> Result<Vec<Key>, ValuesError> {
    if path.is_empty() {
        return Err(bad(kind, expr, "empty key"));
    }
    let mut keys = Vec::new();
    for segment in split_escaped(path, '.') {
        let segment = segment.replace("\\\\", "\\");
        let (name, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment.as_str(), ""),
        };
        if name.is_empty() && (keys.is_empty() || rest.is_empty()) {
            return Err(bad(kind, expr, format!("empty key segment in {path:?}")));
        }
        if !name.is_empty() {
            keys.push(Key::Field(name.to_owned()));
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| bad(kind, expr, format!("missing ']' in {path:?}")))?;
            let idx: usize = rest[1..close].parse().map_err(|_| {
                bad(
                    kind,
                    expr,
                    format!("list index {:?} is not a number", &rest[1..close]),
                )
            })?;
            if idx > 65_536 {
                return Err(bad(kind, expr, format!("list index {idx} is too large")));
            }
            keys.push(Key::Index(idx));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad(kind, expr, format!("unexpected {rest:?} after ']'")));
            }
        }
    }
    if keys.len() > MAX_SET_DEPTH {
        return Err(bad(
            kind,
            expr,
            format!("{} keys deep; at most {MAX_SET_DEPTH}", keys.len()),
        ));
    }
    Ok(keys)
}

/// Helm's `typedVal`: `true`, `false` and `null` in any case, integers without a leading zero.
fn typed_scalar(raw: &str, kind: SetKind) -> Value {
    if kind != SetKind::Typed {
        return Value::String(raw.to_owned());
    }
    if raw.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if raw.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if raw.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    match raw.parse::<i64>() {
        Ok(n) if !(raw.len() > 1 && raw.starts_with('0')) => Value::from(n),
        _ => Value::String(raw.to_owned()),
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

/// Parses one flag of the `--set` family into its assignments, in order: `a.b=c,d[0]=e`,
/// `a={x,y}` for a list (`--set`), `\,` and `\.` to escape; `--set-json` takes
/// `key=<json>,key2=<json>` (an empty value is `null`) or one whole JSON object. Nothing is
/// assigned unless the whole flag parses.
pub fn parse_set(expr: &str, kind: SetKind) -> Result<Vec<Assignment>, ValuesError> {
    if kind == SetKind::Json {
        return parse_json_set(expr);
    }
    let mut out = Vec::new();
    for assignment in split_escaped(expr, ',') {
        let assignment = assignment.replace("\\,", ",");
        let (path, raw) = assignment.split_once('=').ok_or_else(|| {
            bad(
                kind,
                expr,
                format!("{assignment:?} has no '=' (expected key=value)"),
            )
        })?;
        let keys = parse_path(kind, expr, path)?;
        let value = match kind {
            SetKind::File if raw.is_empty() => {
                return Err(bad(kind, expr, format!("{path}: no file named")));
            }
            SetKind::File => Value::String(raw.replace("\\\\", "\\")),
            _ => parse_value(raw, kind),
        };
        out.push(Assignment {
            key: path.to_owned(),
            keys,
            value,
        });
    }
    Ok(out)
}

/// `--set-json`: like Helm's JSON parser, each key runs to the first unescaped `=`, and its
/// value is exactly one JSON value, after which only `,` (and the next assignment) may follow.
fn parse_json_set(expr: &str) -> Result<Vec<Assignment>, ValuesError> {
    let kind = SetKind::Json;
    let whole = expr.trim();
    if whole.starts_with('{') {
        let value: Value = serde_json::from_str(whole)
            .map_err(|e| bad(kind, expr, format!("invalid JSON object: {e}")))?;
        return Ok(vec![Assignment {
            key: String::new(),
            keys: Vec::new(),
            value,
        }]);
    }
    let mut out = Vec::new();
    let mut rest = expr;
    loop {
        let end = key_end(rest);
        if !rest[end..].starts_with('=') {
            return Err(bad(
                kind,
                expr,
                format!("{:?} has no '=' (expected key=<json>)", &rest[..end]),
            ));
        }
        let path = &rest[..end];
        let keys = parse_path(kind, expr, path)?;
        let (value, tail) = json_value(&rest[end + 1..])
            .map_err(|e| bad(kind, expr, format!("{path}: invalid JSON: {e}")))?;
        out.push(Assignment {
            key: path.to_owned(),
            keys,
            value,
        });
        rest = match tail.strip_prefix(',') {
            Some(next) if !next.trim().is_empty() => next,
            Some(_) => return Ok(out),
            None if tail.is_empty() => return Ok(out),
            None => {
                return Err(bad(
                    kind,
                    expr,
                    format!("{path}: unexpected {tail:?} after its JSON value"),
                ));
            }
        };
    }
}

/// Where a `--set-json` key ends: the first `=` or `,` not escaped by a backslash.
fn key_end(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ',' => return i,
            _ => {}
        }
    }
    s.len()
}

/// One JSON value at the start of `s` (after blanks) and what follows it, blanks skipped; an
/// empty value is `null`, as in Helm.
fn json_value(s: &str) -> Result<(Value, &str), serde_json::Error> {
    let s = s.trim_start();
    if s.is_empty() || s.starts_with(',') {
        return Ok((Value::Null, s));
    }
    let mut stream = serde_json::Deserializer::from_str(s).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, s[stream.byte_offset()..].trim_start())),
        Some(Err(e)) => Err(e),
        None => Ok((Value::Null, "")),
    }
}

/// Writes assignments into the user's values as Helm's parser writes into them: maps on the
/// way are entered (made where there is none), an index enters the list already there (padded
/// with `null`), and the value replaces whatever is at its key. A whole `--set-json` object
/// merges like a values file ([`merge_maps`]).
pub fn assign(user: &mut Value, assignments: Vec<Assignment>) {
    for a in assignments {
        if a.keys.is_empty() {
            merge_maps(user, a.value);
        } else {
            insert(user, &a.keys, a.value);
        }
    }
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

    /// The user's values one flag makes, written into empty values.
    fn set(expr: &str, kind: SetKind) -> Value {
        let mut v = json!({});
        assign(&mut v, parse_set(expr, kind).unwrap());
        v
    }

    #[test]
    fn later_sources_win() {
        let mut v = json!({"x": 1});
        coalesce(&mut v, json!({"x": 2}));
        coalesce(&mut v, set("x=3", SetKind::Typed));
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
            set("a.b=c,d=true,e=10,f=null,g=007", SetKind::Typed),
            json!({"a": {"b": "c"}, "d": true, "e": 10, "f": null, "g": "007"})
        );
        assert_eq!(
            set("a.b=true", SetKind::String),
            json!({"a": {"b": "true"}})
        );
        assert_eq!(
            set("l[0]=x,l[2].k=y", SetKind::Typed),
            json!({"l": ["x", null, {"k": "y"}]})
        );
        assert_eq!(
            set(r"labels.app\.kubernetes\.io/team=a\,b", SetKind::Typed),
            json!({"labels": {"app.kubernetes.io/team": "a,b"}})
        );
        assert_eq!(set("ns={a,b}", SetKind::Typed), json!({"ns": ["a", "b"]}));
        // Helm's typedVal ignores case; a leading zero keeps a string.
        assert_eq!(
            set("a=TRUE,b=False,c=NULL,d=0,e=-3", SetKind::Typed),
            json!({"a": true, "b": false, "c": null, "d": 0, "e": -3})
        );
    }

    /// The examples of Helm's documentation ("The Format and Limitations of --set",
    /// helm.sh/docs/intro/using_helm), as the shell hands them over.
    #[test]
    fn helm_documented_set_examples() {
        let typed = |e| set(e, SetKind::Typed);
        assert_eq!(typed("name=value"), json!({"name": "value"}));
        assert_eq!(typed("a=b,c=d"), json!({"a": "b", "c": "d"}));
        assert_eq!(
            typed("outer.inner=value"),
            json!({"outer": {"inner": "value"}})
        );
        // The docs show `[a, b, c]`; Helm's parser keeps the blanks after the commas (its
        // valList splits on ',' only), and so does this one.
        assert_eq!(typed("name={a, b, c}"), json!({"name": ["a", " b", " c"]}));
        assert_eq!(typed("name={a,b,c}"), json!({"name": ["a", "b", "c"]}));
        assert_eq!(
            typed("servers[0].port=80"),
            json!({"servers": [{"port": 80}]})
        );
        assert_eq!(
            typed("servers[0].port=80,servers[0].host=example"),
            json!({"servers": [{"port": 80, "host": "example"}]})
        );
        assert_eq!(
            typed(r"name=value1\,value2"),
            json!({"name": "value1,value2"})
        );
        // `--set nodeSelector."kubernetes\.io/role"=master`: the shell drops the quotes.
        assert_eq!(
            typed(r"nodeSelector.kubernetes\.io/role=master"),
            json!({"nodeSelector": {"kubernetes.io/role": "master"}})
        );
        // helm install --set-json 'master.sidecars=[{"name":"sidecar","image":"myImage",
        // "imagePullPolicy":"Always","ports":[{"name":"portname","containerPort":1234}]}]'
        assert_eq!(
            set(
                r#"master.sidecars=[{"name":"sidecar","image":"myImage","imagePullPolicy":"Always","ports":[{"name":"portname","containerPort":1234}]}]"#,
                SetKind::Json
            ),
            json!({"master": {"sidecars": [{"name": "sidecar", "image": "myImage",
                "imagePullPolicy": "Always", "ports": [{"name": "portname", "containerPort": 1234}]}]}})
        );
    }

    /// Helm's own `TestParseJSON` cases (pkg/strvals/parser_test.go).
    #[test]
    fn set_json_values() {
        let mut v = json!({"outer": {"inner1": "overwrite", "inner2": "value2"}});
        assign(
            &mut v,
            parse_set(
                r#"outer.inner1="1",outer.inner3=3,outer.inner4=true,outer.inner5="true""#,
                SetKind::Json,
            )
            .unwrap(),
        );
        assert_eq!(
            v,
            json!({"outer": {"inner1": "1", "inner2": "value2", "inner3": 3, "inner4": true, "inner5": "true"}})
        );
        // An object value replaces the map at its key (it does not merge into it).
        let mut v = json!({"outer": {"inner1": {"x": "overwrite"}, "inner2": "value2", "inner3": ["overwrite"]}});
        assign(
            &mut v,
            parse_set(
                r#"outer.inner1={"a":"1","b":2,"c":[1,2,3]},outer.inner3=["new value 1","new value 2"]"#,
                SetKind::Json,
            )
            .unwrap(),
        );
        assert_eq!(
            v,
            json!({"outer": {"inner1": {"a": "1", "b": 2, "c": [1, 2, 3]}, "inner2": "value2",
                "inner3": ["new value 1", "new value 2"]}})
        );
        // An empty value is null; a later key writes into the value just set.
        assert_eq!(
            set(
                r#"outer.inner1=,outer.inner3={"aa":"1","cc":[1,2,3]},outer.inner3.cc[1]=null"#,
                SetKind::Json
            ),
            json!({"outer": {"inner1": null, "inner3": {"aa": "1", "cc": [1, null, 3]}}})
        );
        // A whole object (Helm 4) merges like a values file.
        let mut v = json!({"a": {"keep": 1}});
        assign(
            &mut v,
            parse_set(r#" {"a": {"b": 2}, "c": [1]} "#, SetKind::Json).unwrap(),
        );
        assert_eq!(v, json!({"a": {"keep": 1, "b": 2}, "c": [1]}));
        assert_eq!(
            set(r#"a\.b=1 ,c="x""#, SetKind::Json),
            json!({"a.b": 1, "c": "x"})
        );
    }

    #[test]
    fn bad_set_json_names_the_flag_and_key() {
        for (expr, needle) in [
            (
                r#"master.sidecars=[{"name":"sidecar"]"#,
                "master.sidecars: invalid JSON",
            ),
            ("a=nojson", "a: invalid JSON"),
            ("a=1 2", r#"a: unexpected "2" after its JSON value"#),
            ("a=1,b", r#""b" has no '='"#),
            ("a", r#""a" has no '='"#),
            ("", r#""" has no '='"#),
            (r#"{"a": 1"#, "invalid JSON object"),
            ("a..b=1", "empty key segment"),
        ] {
            let err = parse_set(expr, SetKind::Json).unwrap_err().to_string();
            assert!(err.starts_with("--set-json "), "{expr}: {err}");
            assert!(err.contains(needle), "{expr}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        let deep = format!("a={}1{}", "[".repeat(500), "]".repeat(500));
        let err = parse_set(&deep, SetKind::Json).unwrap_err().to_string();
        assert!(err.contains("a: invalid JSON: recursion limit"), "{err}");
    }

    #[test]
    fn set_file_takes_the_path_as_its_value() {
        let a = parse_set(r"script=a\,b.sh,other.key=/x/y", SetKind::File).unwrap();
        let got: Vec<(&str, &Value)> = a.iter().map(|a| (a.key.as_str(), &a.value)).collect();
        assert_eq!(
            got,
            vec![("script", &json!("a,b.sh")), ("other.key", &json!("/x/y"))]
        );
        let err = parse_set("a=", SetKind::File).unwrap_err().to_string();
        assert!(
            err.starts_with("--set-file \"a=\": a: no file named"),
            "{err}"
        );
    }

    /// Helm builds the user's values first (files merged with nulls kept, then the flags
    /// written into them) and only then meets the chart's defaults.
    #[test]
    fn flags_write_into_the_files_values_and_nulls_wait_for_the_defaults() {
        let defaults = json!({"list": ["d0", "d1"], "m": {"keep": 1, "gone": 2}, "x": {"d": 1}});
        let mut user = json!({});
        merge_maps(
            &mut user,
            json!({"list": ["f0", "f1"], "m": {"gone": null}, "x": null}),
        );
        merge_maps(&mut user, json!({"x": {"f": 2}}));
        // An index writes into the list the files gave, not into the chart's default.
        assign(&mut user, parse_set("list[1]=s1", SetKind::Typed).unwrap());
        let mut merged = defaults;
        coalesce(&mut merged, user);
        assert_eq!(
            merged,
            json!({"list": ["f0", "s1"], "m": {"keep": 1}, "x": {"d": 1, "f": 2}})
        );
    }

    #[test]
    fn helm_applies_the_set_family_in_its_own_order() {
        let mut kinds = [
            SetKind::File,
            SetKind::String,
            SetKind::Typed,
            SetKind::Json,
        ];
        kinds.sort_by_key(|k| k.helm_rank());
        assert_eq!(
            kinds,
            [
                SetKind::Json,
                SetKind::Typed,
                SetKind::String,
                SetKind::File
            ]
        );
        let flags: Vec<&str> = kinds.iter().map(|k| k.flag()).collect();
        assert_eq!(flags, ["--set-json", "--set", "--set-string", "--set-file"]);
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
