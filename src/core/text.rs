//! Text that came from outside (the cluster, a build's outputs, a repository) made safe to
//! print: a terminal must never receive a control sequence it would act on (clear the screen,
//! move the cursor, retitle the window, hide text), and one message stays one line.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown escaped: C0 controls, DEL, C1 controls, and the Unicode
/// bidirectional overrides and isolates (which reorder what is shown around them).
fn is_unsafe(c: char, keep_layout: bool) -> bool {
    match c {
        '\n' | '\t' if keep_layout => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c, keep_layout)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            _ if !is_unsafe(c, keep_layout) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `s` as one printable line: every control character (newlines too) written as an escape
/// (`\e`, `\n`, `\x07`, `\u{202e}`). For messages, names, keys and conditions.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` with its newlines and tabs kept and every other control character escaped (`\r` too,
/// which would let a line overwrite the one before). For multi-line text such as build logs.
pub fn escape_controls_keep_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// JSON text as `serde_json` writes it, with the characters it leaves as they are and a
/// terminal may act on (DEL, C1 controls, bidirectional overrides: [`escape_controls`]'s set
/// beyond what JSON escapes) written as `\uXXXX`: the same data, decoded, and nothing to act on.
/// Outside strings JSON text is printable ASCII and layout, so only string contents change.
pub fn escape_json_text(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| is_unsafe(c, true)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c, true) {
            // Every such character is in the Basic Multilingual Plane: one escape each.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A JSON value as block YAML in which every string is double-quoted and escaped as JSON
/// escapes it (each JSON escape is a YAML one), plus [`escape_json_text`]'s: what YAML
/// encoders leave raw (`serde-saphyr` writes bidirectional overrides as they are, even quoted)
/// cannot reach a terminal. Keys are plain when they are plain words. Map order is kept.
pub fn safe_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => yaml_map(m, 0, String::new(), &mut out),
        Value::Array(a) if !a.is_empty() => yaml_seq(a, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

/// A scalar, or an empty map or list, on one line.
fn yaml_scalar(v: &Value) -> String {
    let json = serde_json::to_string(v).expect("JSON values always serialize");
    escape_json_text(&json).into_owned()
}

fn yaml_key(k: &str) -> String {
    let word = k.starts_with(|c: char| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if word {
        k.to_owned()
    } else {
        yaml_scalar(&Value::String(k.to_owned()))
    }
}

/// The entries of `m` at `indent`; the first line starts with `lead` (a list item's `- `).
fn yaml_map(m: &serde_json::Map<String, Value>, indent: usize, lead: String, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i == 0 {
            out.push_str(&lead);
        } else {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&yaml_key(k));
        out.push(':');
        match v {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                yaml_map(child, indent + 2, " ".repeat(indent + 2), out);
            }
            // Items at the key's indent, as kubectl writes lists.
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                yaml_seq(items, indent, out);
            }
            scalar => {
                out.push(' ');
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
    }
}

fn yaml_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        let lead = format!("{}- ", " ".repeat(indent));
        match item {
            Value::Object(m) if !m.is_empty() => yaml_map(m, indent + 2, lead, out),
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str(lead.trim_end());
                out.push('\n');
                yaml_seq(inner, indent + 2, out);
            }
            scalar => {
                out.push_str(&lead);
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "Workload acme/pay: émis ✓ $(X) {{y}}";
        assert!(matches!(escape_controls(s), Cow::Borrowed(t) if t == s));
    }

    #[test]
    fn terminal_sequences_become_visible_escapes() {
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\e[2Jb");
        assert_eq!(escape_controls("x\u{1b}]0;title\u{7}"), "x\\e]0;title\\x07");
        assert_eq!(escape_controls("l1\nl2\r\t"), "l1\\nl2\\r\\t");
        assert_eq!(escape_controls("\u{9b}31m"), "\\x9b31m");
        assert_eq!(escape_controls("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape_controls("\u{7f}"), "\\x7f");
    }

    #[test]
    fn json_text_escapes_what_serde_json_leaves_raw() {
        let v = serde_json::json!({"m": "a\u{1b}[2J\u{7f}\u{9b}31m\u{202e}z é"});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let safe = escape_json_text(&text);
        assert!(!safe.chars().any(|c| is_unsafe(c, true)), "{safe}");
        assert!(
            safe.contains(r"\u001b[2J\u007f\u009b31m\u202ez é"),
            "{safe}"
        );
        let back: Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v, "the same data");
        assert!(matches!(escape_json_text("{\"a\": 1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn safe_yaml_is_the_same_data_with_nothing_raw() {
        let v = serde_json::json!({
            "name": "b",
            "message": "x\u{1b}]0;t\u{7}\u{202e}\nline 2",
            "n": 3, "ok": true, "none": null, "empty": {}, "list": [],
            "steps": [{"step": "clone-step", "attempts": 1}, {"step": "build"}],
            "nested": {"yes": "quoted key", "a b": 1, "k\u{202e}": [["x"], "y"]},
        });
        let y = safe_yaml(&v);
        assert!(!y.chars().any(|c| is_unsafe(c, true)), "{y}");
        assert!(y.contains("name: \"b\"\n"), "{y}");
        assert!(y.contains("steps:\n- "), "{y}");
        assert!(y.contains("\n- step: \"build\"\n"), "{y}");
        assert!(y.contains("  \"yes\": \"quoted key\"\n"), "{y}");
        let back: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(back, v, "{y}");
        assert_eq!(safe_yaml(&serde_json::json!("s")), "\"s\"\n");
    }

    #[test]
    fn log_text_keeps_its_lines() {
        assert_eq!(
            escape_controls_keep_lines("step 1\n\tok\r\u{1b}[1Aover"),
            "step 1\n\tok\\r\\e[1Aover"
        );
    }
}
