//! Every row of `fixtures/name-vectors.tsv` (upstream's naming outputs) through our port.

use buildplane::core::naming::{
    self, upstream_image_name, upstream_k8s_name_bytes, upstream_namespace_name,
    upstream_workflow_name,
};

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b't' => out.push(b'\t'),
                b'n' => out.push(b'\n'),
                b'\\' => out.push(b'\\'),
                b'|' => out.extend_from_slice(b"\\|"),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Splits inputs on `|` not escaped as `\|`.
fn parts(inputs: &str) -> Vec<String> {
    if inputs == "(none)" {
        return vec![];
    }
    let raw = String::from_utf8(unescape(inputs)).unwrap();
    let mut out = vec![String::new()];
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[test]
fn every_upstream_vector_matches() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/name-vectors.tsv"
    ))
    .unwrap();
    let mut checked = 0;
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let (func, inputs, limit, expected) = (cols[0], cols[1], cols[2], cols[3]);
        let ps = parts(inputs);
        let refs: Vec<&str> = ps.iter().map(String::as_str).collect();
        let got: Result<Vec<u8>, String> = match func {
            "GenerateK8sName" => upstream_k8s_name_bytes(253, &refs).map_err(|e| e.to_string()),
            "GenerateK8sNameWithLengthLimit" => {
                upstream_k8s_name_bytes(limit.parse().unwrap(), &refs).map_err(|e| e.to_string())
            }
            "MakeWorkflowName" => Ok(upstream_workflow_name(refs[0])),
            "MakeNamespaceName" => {
                Ok(upstream_namespace_name(refs.first().copied().unwrap_or("")).into_bytes())
            }
            "MakeImageName" => Ok(upstream_image_name(refs[0], refs[1]).into_bytes()),
            "MakeImageTag" => Ok(naming::IMAGE_TAG.as_bytes().to_vec()),
            other => panic!("line {}: unknown function {other}", n + 1),
        };
        if let Some(panic) = expected.strip_prefix("!PANIC") {
            assert!(
                got.is_err(),
                "line {}: upstream panics ({panic}) but we returned {:?}",
                n + 1,
                got
            );
        } else {
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                Ok(unescape(expected).as_slice()),
                "line {}: {func}({inputs}, {limit})",
                n + 1
            );
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} vectors read");
}

#[test]
fn our_names_are_always_valid_and_equal_upstream_when_upstream_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/name-vectors.tsv"
    ))
    .unwrap();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let ps = parts(cols[1]);
        match cols[0] {
            "MakeWorkflowName" | "GenerateK8sNameWithLengthLimit"
                if ps.len() == 1 && cols[2] == "63" =>
            {
                let ours = naming::workflow_name(&ps[0]);
                assert!(naming::is_dns_subdomain(&ours, 63), "{ours}");
                let up = upstream_workflow_name(&ps[0]);
                if let Ok(up) = String::from_utf8(up)
                    && naming::is_dns_subdomain(&up, 63)
                {
                    assert_eq!(ours, up);
                }
            }
            "MakeNamespaceName" => {
                let org = ps.first().cloned().unwrap_or_default();
                let ours = naming::namespace_name(&org);
                assert!(naming::is_dns_label(&ours), "{org:?} -> {ours}");
                let up = upstream_namespace_name(&org);
                if naming::is_dns_label(&up) {
                    assert_eq!(ours, up);
                }
            }
            "MakeImageName" => {
                let ours = naming::image_name(&ps[0], &ps[1]);
                assert!(naming::is_image_component(&ours), "{ps:?} -> {ours}");
                let up = upstream_image_name(&ps[0], &ps[1]);
                if naming::is_image_component(&up) {
                    assert_eq!(ours, up);
                }
            }
            _ => {}
        }
    }
}
