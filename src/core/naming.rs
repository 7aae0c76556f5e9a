//! Object names, exactly as upstream computes them, and the valid names we use where upstream's
//! would be rejected by Kubernetes or a registry.
//!
//! The `upstream_*` functions reproduce `internal/dataplane/kubernetes/name.go` and
//! `internal/controller/build/names` byte for byte (tested against `fixtures/name-vectors.tsv`),
//! including their defects. The unprefixed functions are what buildplane renders: the upstream
//! name whenever it is valid, otherwise an ASCII-only name that keeps the upstream hash suffix.

use sha2::{Digest, Sha256};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Upstream's hash suffix length and the Kubernetes length limits used here.
pub const HASH_LEN: usize = 8;
pub const MAX_LABEL_LEN: usize = 63;
pub const NAMESPACE_PREFIX: &str = "openchoreo-ci-";
/// Upstream's constant image tag.
pub const IMAGE_TAG: &str = "default";

/// A name could not be computed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    /// Upstream divides by the number of parts; there must be at least one.
    #[error("a name needs at least one part")]
    NoParts,
    /// The limit leaves no room for the parts and the hash suffix.
    #[error("length limit {limit} is too small for {parts} part(s) and the hash suffix")]
    LimitTooSmall { limit: usize, parts: usize },
}

fn is_letter(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Letter
}

fn is_number(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Number
}

/// Go's `unicode.ToLower`: the simple, one-to-one case mapping (no final sigma, `İ` → `i`).
fn simple_lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        // Only U+0130 has a multi-character full mapping; its simple mapping is the first char.
        (Some(l), Some(_)) => l,
        _ => c,
    }
}

/// First 8 hex digits of SHA-256 over `parts` joined with `-` (raw, unsanitized).
pub fn hash8(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("-").as_bytes());
    hex(&digest[..HASH_LEN / 2])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn upstream_sanitize(part: &str) -> String {
    let mapped: String = part
        .chars()
        .map(simple_lower)
        .map(|c| {
            if is_letter(c) || is_number(c) || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches(|c| c == '-' || c == '.').to_owned()
}

/// Byte-exact port of `GenerateK8sNameWithLengthLimit`. Returns bytes because upstream truncates
/// by bytes and may cut a UTF-8 sequence in half (one test vector shows it).
pub fn upstream_k8s_name_bytes(limit: usize, parts: &[&str]) -> Result<Vec<u8>, NameError> {
    let n = parts.len();
    if n == 0 {
        return Err(NameError::NoParts);
    }
    let max_base = (limit as isize) - (HASH_LEN as isize) - (n as isize - 1) - 1;
    if max_base < 0 {
        return Err(NameError::LimitTooSmall { limit, parts: n });
    }
    let max_base = max_base as usize;
    let (per, extra) = (max_base / n, max_base % n);
    let mut out: Vec<u8> = Vec::with_capacity(limit);
    for (i, part) in parts.iter().enumerate() {
        let allowed = if i < extra { per + 1 } else { per };
        let s = upstream_sanitize(part);
        let bytes = s.as_bytes();
        if i > 0 {
            out.push(b'-');
        }
        out.extend_from_slice(&bytes[..bytes.len().min(allowed)]);
    }
    out.push(b'-');
    out.extend_from_slice(hash8(parts).as_bytes());
    Ok(trim_non_alnum_bytes(out))
}

/// Go's `strings.TrimFunc(s, not letter/number)` on possibly invalid UTF-8: invalid bytes decode
/// as U+FFFD (a symbol), so they are trimmed too.
fn trim_non_alnum_bytes(bytes: Vec<u8>) -> Vec<u8> {
    let keep = |c: char| is_letter(c) || is_number(c);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.as_bytes() == bytes.as_slice() {
        return text.trim_matches(|c| !keep(c)).as_bytes().to_vec();
    }
    // Lossy text differs: walk the raw bytes with Go's decoding rules.
    let mut start = 0;
    while start < bytes.len() {
        let (c, len) = decode_one(&bytes[start..]);
        if keep(c) {
            break;
        }
        start += len;
    }
    let mut end = bytes.len();
    while end > start {
        let (c, len) = decode_last(&bytes[start..end]);
        if keep(c) {
            break;
        }
        end -= len;
    }
    bytes[start..end].to_vec()
}

fn decode_one(b: &[u8]) -> (char, usize) {
    for len in 1..=b.len().min(4) {
        if let Ok(s) = std::str::from_utf8(&b[..len]) {
            return (s.chars().next().unwrap_or('\u{FFFD}'), len);
        }
    }
    ('\u{FFFD}', 1)
}

fn decode_last(b: &[u8]) -> (char, usize) {
    for len in 1..=b.len().min(4) {
        if let Ok(s) = std::str::from_utf8(&b[b.len() - len..]) {
            return (s.chars().next_back().unwrap_or('\u{FFFD}'), len);
        }
    }
    ('\u{FFFD}', 1)
}

/// `GenerateK8sNameWithLengthLimit` as text (lossy only where upstream itself breaks UTF-8).
pub fn upstream_k8s_name(limit: usize, parts: &[&str]) -> Result<String, NameError> {
    upstream_k8s_name_bytes(limit, parts).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `MakeWorkflowName`.
pub fn upstream_workflow_name(build_name: &str) -> Vec<u8> {
    upstream_k8s_name_bytes(MAX_LABEL_LEN, &[build_name]).expect("one part always fits in 63")
}

fn cut_one_trailing_dash(mut s: String, limit: usize) -> String {
    if s.len() > limit {
        let mut cut = limit;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        if s.ends_with('-') {
            s.pop();
        }
    }
    s
}

/// `MakeNamespaceName`: `openchoreo-ci-` + normalized organization (total not re-checked).
pub fn upstream_namespace_name(org: &str) -> String {
    let norm = org.replace(['_', '.'], "-").to_lowercase();
    let norm = norm.trim_matches('-').to_owned();
    format!(
        "{NAMESPACE_PREFIX}{}",
        cut_one_trailing_dash(norm, MAX_LABEL_LEN)
    )
}

fn upstream_norm_image_part(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_owned()
}

/// `MakeImageName`: normalized project `-` normalized component, cut to 63.
pub fn upstream_image_name(project: &str, component: &str) -> String {
    let joined = format!(
        "{}-{}",
        upstream_norm_image_part(project),
        upstream_norm_image_part(component)
    );
    cut_one_trailing_dash(joined, MAX_LABEL_LEN)
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain of at most `limit` characters, as Kubernetes checks object names
/// (`IsDNS1123Subdomain`): dot-separated parts of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`. Kubernetes
/// limits only the whole (253); a part may be longer than a label's 63.
pub fn is_dns_subdomain(s: &str, limit: usize) -> bool {
    !s.is_empty()
        && s.len() <= limit
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= MAX_LABEL_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A qualified name, as the API server checks label and annotation keys: an optional prefix
/// (a DNS-1123 subdomain of at most 253 characters) and `/`, then a name of at most 63 of
/// `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(|p| is_dns_subdomain(p, 253)) && !name.is_empty() && is_label_value(name)
}

/// An image repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_image_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    {
        return false;
    }
    // Separators between alphanumeric runs: one '.', one or two '_', or any number of '-'.
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Lower-case ASCII `[a-z0-9-]` with runs of anything else folded into one `-`, trimmed.
fn ascii_slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// `slug-hash` within `limit` bytes; just the hash when nothing of the slug survives.
fn slug_with_hash(raw: &str, limit: usize, hash: &str) -> String {
    let mut slug = ascii_slug(raw);
    slug.truncate(limit.saturating_sub(HASH_LEN + 1));
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        hash.to_owned()
    } else {
        format!("{slug}-{hash}")
    }
}

/// The Workflow name: upstream's when it is a valid name, else an ASCII slug of the Build name
/// with the same hash suffix (upstream can keep non-ASCII letters, `.-`, or cut UTF-8 in half).
pub fn workflow_name(build_name: &str) -> String {
    let upstream = upstream_workflow_name(build_name);
    match String::from_utf8(upstream) {
        Ok(s) if is_dns_subdomain(&s, MAX_LABEL_LEN) => s,
        _ => slug_with_hash(build_name, MAX_LABEL_LEN, &hash8(&[build_name])),
    }
}

/// The build namespace: upstream's `openchoreo-ci-<org>` when it is a valid namespace name,
/// else `openchoreo-ci-<ascii slug>-<hash of org>` within 63 characters.
pub fn namespace_name(org: &str) -> String {
    let upstream = upstream_namespace_name(org);
    if is_dns_label(&upstream) {
        return upstream;
    }
    let room = MAX_LABEL_LEN - NAMESPACE_PREFIX.len();
    format!(
        "{NAMESPACE_PREFIX}{}",
        slug_with_hash(org, room, &hash8(&[org]))
    )
}

/// The image name: upstream's when it is a valid repository component, else each part as an
/// ASCII slug (a part with nothing left becomes the hash of that part), joined with `-`.
pub fn image_name(project: &str, component: &str) -> String {
    let upstream = upstream_image_name(project, component);
    if is_image_component(&upstream) {
        return upstream;
    }
    let part = |raw: &str| {
        let s = ascii_slug(raw);
        if s.is_empty() { hash8(&[raw]) } else { s }
    };
    let joined = format!("{}-{}", part(project), part(component));
    let mut cut = joined;
    cut.truncate(MAX_LABEL_LEN);
    cut.trim_end_matches('-').to_owned()
}

/// A label value for a raw name: the name itself when valid, else a slug with its hash.
pub fn label_value(raw: &str) -> String {
    if is_label_value(raw) {
        raw.to_owned()
    } else {
        slug_with_hash(raw, MAX_LABEL_LEN, &hash8(&[raw]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_as_the_api_server_checks_keys() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "a_b.c-d",
            "x/Y",
            &"a".repeat(63),
        ] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        let long_prefix = format!("{}/x", "a".repeat(254));
        for bad in [
            "",
            "/x",
            "x/",
            "a/b/c",
            "-x",
            "x-",
            "bad key",
            "UPPER.case/x",
            "\u{1b}[2J",
            &"a".repeat(64),
            &long_prefix,
        ] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }

    #[test]
    fn upstream_examples() {
        assert_eq!(
            String::from_utf8(upstream_workflow_name(
                "reading-list-service-build-7c9e4a1b"
            ))
            .unwrap(),
            "reading-list-service-build-7c9e4a1b-8081ce9a"
        );
        assert_eq!(
            upstream_namespace_name("Acme_Corp.Dev"),
            "openchoreo-ci-acme-corp-dev"
        );
        assert_eq!(
            upstream_image_name("My Project", "Comp_Name"),
            "my-project-comp_name"
        );
    }

    #[test]
    fn our_names_are_upstream_names_when_valid() {
        assert_eq!(
            workflow_name("greeter-build-0a1b2c3d"),
            "greeter-build-0a1b2c3d-ccd3e8e5"
        );
        assert_eq!(namespace_name("default"), "openchoreo-ci-default");
        assert_eq!(
            image_name("default", "reading-list-service"),
            "default-reading-list-service"
        );
    }

    #[test]
    fn invalid_upstream_names_become_valid() {
        let cases = [
            workflow_name("Café-Ünïcödé"),
            workflow_name("aéééééééééééééééééééééééééééééééééééééééé"),
            workflow_name("a.-b"),
            namespace_name("Ünïcode"),
            namespace_name(""),
            namespace_name(&"o".repeat(70)),
        ];
        for name in &cases {
            assert!(is_dns_label(name) || is_dns_subdomain(name, 63), "{name}");
        }
        assert_eq!(workflow_name("Café-Ünïcödé"), "caf-n-c-d-c8f32338");
        assert!(namespace_name(&"o".repeat(70)).len() <= 63);
        for (p, c) in [
            ("", "comp"),
            ("proj", ""),
            ("Café", "日本"),
            ("a", "c___d"),
            ("p_", "x"),
        ] {
            let n = image_name(p, c);
            assert!(is_image_component(&n), "{p}|{c} -> {n}");
        }
        assert_ne!(image_name("", "comp"), image_name("x", "comp"));
    }

    #[test]
    fn validity_predicates() {
        assert!(is_image_component("a__b-c--d.e"));
        assert!(!is_image_component("a___b"));
        assert!(!is_image_component("a._b"));
        assert!(!is_image_component("-a"));
        assert!(is_label_value("Build_Upper.v1"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(!is_dns_label("a.b"));
        assert!(is_dns_subdomain("a.b", 63));
        assert!(!is_dns_subdomain("a.-b", 63));
        // Kubernetes checks no per-part length: a 100-character part is a valid object name.
        let long = format!("{}.build", "a".repeat(100));
        assert!(is_dns_subdomain(&long, 253));
        assert!(!is_dns_subdomain(&"a".repeat(254), 253));
        for bad in ["a..b", ".a", "a.", "A.b", "a_b.c", "a.b-"] {
            assert!(!is_dns_subdomain(bad, 253), "{bad}");
        }
    }

    #[test]
    fn label_values_are_kept_or_made_valid() {
        assert_eq!(label_value("greeter"), "greeter");
        let long = "x".repeat(80);
        let v = label_value(&long);
        assert!(is_label_value(&v) && v.ends_with(&hash8(&[&long])), "{v}");
        assert!(is_label_value(&label_value("日本")));
    }
}
