//! Text that came from outside (the cluster, a build's outputs, a repository) made safe to
//! print: a terminal must never receive a control sequence it would act on (clear the screen,
//! move the cursor, retitle the window, hide text), and one message stays one line.

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
    fn log_text_keeps_its_lines() {
        assert_eq!(
            escape_controls_keep_lines("step 1\n\tok\r\u{1b}[1Aover"),
            "step 1\n\tok\\r\\e[1Aover"
        );
    }
}
