//! Build text on its way to a step: the real binary renders a Build full of characters that
//! Argo Workflows or kubelet would evaluate, and the test follows each value the way the
//! cluster would — Argo's one substitution of `{{workflow.parameters.x}}` into the
//! ClusterWorkflowTemplate's env entries, then kubelet's `$(VAR)` expansion of env values —
//! to check the step receives the Build's bytes exactly. Text Argo would evaluate (`{{`) is
//! refused with exit code 2, naming the file and field.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Texts kubelet or a shell would act on, and the corner cases of kubelet's syntax.
const HOSTILE: &[&str] = &[
    "$(HOME)",
    "$$(X)",
    "$$",
    "a$b",
    "${X}",
    "$(WORKSPACE)",
    "$$$(HOME)",
    "$(",
    "$()",
    "end$",
    "$",
    "`id` $(id)",
    "'\"quotes\"'",
    "line one\nline two",
    ";rm -rf /",
    "x; $(HOME)/$$(X)/${X}/$X",
];

/// Which Build field each Workflow argument carries (the template parameters by name).
const FIELDS: &[(&str, &str)] = &[
    ("project-name", "spec.owner.projectName"),
    ("component-name", "spec.owner.componentName"),
    ("git-repo", "spec.repository.url"),
    ("app-path", "spec.repository.appPath"),
    ("branch", "spec.repository.revision.branch"),
    ("commit", "spec.repository.revision.commit"),
];

fn template_parameters(template: &str) -> &'static [&'static str] {
    buildplane::core::catalog::template(template)
        .map(|t| t.parameters)
        .unwrap_or_default()
}

/// A Build of `template` with `text(field)` in every free-text field; a commit (which clears
/// the branch) only when `with_commit`.
fn build(template: &str, with_commit: bool, text: &dyn Fn(&str) -> String) -> Value {
    let params: Vec<Value> = template_parameters(template)
        .iter()
        .map(|p| json!({"name": p, "value": text(p)}))
        .collect();
    let revision = if with_commit {
        json!({"commit": text("commit")})
    } else {
        json!({"branch": text("branch")})
    };
    json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "hostile", "namespace": "acme"},
        "spec": {
            "owner": {"projectName": text("project-name"), "componentName": text("component-name")},
            "repository": {"url": text("git-repo"), "appPath": text("app-path"),
                "revision": revision},
            "templateRef": {"name": template, "parameters": params}}})
}

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(ROOT)
        .arg("render")
        .args(args)
        .output()
        .unwrap()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && (name.is_empty() || o["metadata"]["name"] == name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Argo's substitution of the workflow parameters into a template's text: one pass, each
/// placeholder replaced by the argument's value as it stands in the Workflow.
fn argo_substitute(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{workflow.parameters.") {
        let end = i + rest[i..].find("}}").expect("a closed placeholder");
        let name = &rest[i + "{{workflow.parameters.".len()..end];
        out.push_str(&rest[..i]);
        out.push_str(&args[name]);
        rest = &rest[end + 2..];
    }
    out + rest
}

/// kubelet's expansion of an env value, as k8s.io/kubernetes
/// third_party/forked/golang/expansion `Expand` and `tryReadVariableName` do it, byte for
/// byte: `$$` is `$`; `$(NAME)` is NAME's value when `lookup` knows it, else stays as written;
/// an unclosed `$(` stays; any other `$` stays with the byte after it (which Go re-encodes as a
/// rune: a non-ASCII byte after a lone `$` comes out mangled).
fn kubelet_expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<u8> {
    let b = input.as_bytes();
    let mut buf = Vec::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            buf.extend_from_slice(&b[checkpoint..cursor]);
            let rest = &b[cursor + 1..];
            let advance = match rest[0] {
                b'$' => {
                    buf.push(b'$');
                    1
                }
                b'(' => match rest.iter().position(|&c| c == b')') {
                    Some(close) => {
                        let name = String::from_utf8(rest[1..close].to_vec()).unwrap();
                        match lookup(&name) {
                            Some(v) => buf.extend_from_slice(v.as_bytes()),
                            None => buf.extend_from_slice(format!("$({name})").as_bytes()),
                        }
                        close + 1
                    }
                    None => {
                        buf.extend_from_slice(b"$(");
                        1
                    }
                },
                other => {
                    buf.push(b'$');
                    let mut utf8 = [0; 4];
                    buf.extend_from_slice(char::from(other).encode_utf8(&mut utf8).as_bytes());
                    1
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    buf.extend_from_slice(&b[checkpoint..]);
    buf
}

#[test]
fn kubelet_expansion_is_modelled_faithfully() {
    let lookup = |n: &str| (n == "A").then(|| "alpha".to_owned());
    let cases: &[(&str, &[u8])] = &[
        ("$(A)", b"alpha"),
        ("$(B)", b"$(B)"),
        ("$$(A)", b"$(A)"),
        ("$$$(A)", b"$alpha"),
        ("a$b", b"a$b"),
        ("${A}", b"${A}"),
        ("$(A", b"$(A"),
        ("$", b"$"),
        ("x$", b"x$"),
        ("$$", b"$"),
        ("$()", b"$()"),
        ("$\u{e9}", b"$\xc3\x83\xa9"),
    ];
    for (input, want) in cases {
        assert_eq!(kubelet_expand(input, &lookup), *want, "{input:?}");
    }
}

/// Every Build field's text that becomes a Workflow argument, by argument name, as the step
/// must receive it (the engine clears the branch when a commit is given).
fn expected_arguments(build: &Value) -> BTreeMap<String, String> {
    let at = |path: &str| {
        let pointer = format!("/{}", path.replace('.', "/"));
        build
            .pointer(&pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut out: BTreeMap<String, String> = FIELDS
        .iter()
        .map(|(arg, path)| ((*arg).to_owned(), at(path)))
        .collect();
    for p in build["spec"]["templateRef"]["parameters"]
        .as_array()
        .unwrap()
    {
        let (name, value) = (p["name"].as_str().unwrap(), p["value"].as_str().unwrap());
        out.insert(name.to_owned(), value.to_owned());
    }
    out
}

/// Each step's env as the container sees it: the CWT's entries with the Workflow's arguments
/// substituted once (Argo), then expanded in order (kubelet: earlier entries, and variables a
/// container may have anyway, are defined).
fn step_envs(cwt: &Value, args: &BTreeMap<String, String>) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    for tpl in cwt["spec"]["templates"].as_array().unwrap() {
        let Some(env) = tpl["container"]["env"].as_array() else {
            continue;
        };
        let mut defined: Vec<(String, String)> = vec![
            ("HOME".into(), "/root".into()),
            ("X".into(), "x-value".into()),
        ];
        for e in env {
            let (name, raw) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
            let substituted = argo_substitute(raw, args);
            let lookup = |n: &str| {
                defined
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            };
            let seen = kubelet_expand(&substituted, &lookup);
            defined.push((name.to_owned(), String::from_utf8_lossy(&seen).into_owned()));
            out.push((name.to_owned(), raw.to_owned(), seen));
        }
    }
    out
}

/// Every string of `v` with its path.
fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, format!("{path}[{i}]"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| strings(x, format!("{path}.{k}"), out)),
        _ => {}
    }
}

#[test]
fn hostile_text_reaches_the_step_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut builds = Vec::new();
    for template in buildplane::core::catalog::template_names() {
        for with_commit in [false, true] {
            for k in 0..HOSTILE.len() {
                // Each field its own text (the field's name in it), rotating through HOSTILE.
                let text = |field: &str| {
                    let i = (k + field.len()) % HOSTILE.len();
                    format!("{}{field}{}", HOSTILE[i], HOSTILE[(i + 1) % HOSTILE.len()])
                };
                let mut b = build(template, with_commit, &text);
                b["metadata"]["name"] = json!(format!("h-{template}-{with_commit}-{k}"));
                builds.push(b);
            }
        }
    }
    let file = dir.path().join("builds.yaml");
    let docs: Vec<String> = builds
        .iter()
        .map(|b| serde_json::to_string(b).unwrap())
        .collect();
    std::fs::write(&file, docs.join("\n---\n")).unwrap();
    let out = render(&["--install", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();

    // The arguments reach a step only as a whole env value (the one place kubelet expands
    // them and nothing else reads them).
    let cwts: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterWorkflowTemplate")
        .collect();
    assert_eq!(cwts.len(), 4);
    for cwt in &cwts {
        let mut all = Vec::new();
        strings(cwt, String::new(), &mut all);
        for (path, s) in all
            .iter()
            .filter(|(_, s)| s.contains("{{workflow.parameters."))
        {
            let whole = s.starts_with("{{workflow.parameters.")
                && s.ends_with("}}")
                && s.matches("{{").count() == 1;
            assert!(
                whole && path.contains(".container.env[") && path.ends_with("].value"),
                "{path}: {s}"
            );
        }
    }

    let mut checked = 0;
    for b in &builds {
        let name = b["metadata"]["name"].as_str().unwrap();
        let wf = objects
            .iter()
            .find(|o| o["kind"] == "Workflow" && o["metadata"]["labels"]["build-name"] == name)
            .unwrap_or_else(|| panic!("no Workflow for {name}"));
        let args: BTreeMap<String, String> = wf["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let template = b["spec"]["templateRef"]["name"].as_str().unwrap();
        let cwt = of_kind(&objects, "ClusterWorkflowTemplate", template);
        let expected = expected_arguments(b);
        for (env, raw, seen) in step_envs(cwt, &args) {
            let Some(arg) = raw
                .strip_prefix("{{workflow.parameters.")
                .and_then(|r| r.strip_suffix("}}"))
            else {
                continue;
            };
            let Some(want) = expected.get(arg) else {
                continue; // image-name, image-tag: made by buildplane, not Build text
            };
            assert_eq!(
                String::from_utf8_lossy(&seen),
                *want,
                "{name}: {env} ({arg}) as the step sees it"
            );
            assert_eq!(seen, want.as_bytes(), "{name}: {env}");
            checked += 1;
        }
    }
    // Clone and workload-create: three each; build: at least the app path.
    assert!(
        checked >= builds.len() * 7,
        "only {checked} env values checked"
    );
}

#[test]
fn text_argo_would_evaluate_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("build.yaml");
    let shown = file.display().to_string();
    let fields: Vec<(&str, &str, bool)> = vec![
        ("project-name", "spec.owner.projectName", false),
        ("component-name", "spec.owner.componentName", false),
        ("git-repo", "spec.repository.url", false),
        ("app-path", "spec.repository.appPath", false),
        ("branch", "spec.repository.revision.branch", false),
        ("commit", "spec.repository.revision.commit", true),
        (
            "docker-context",
            "spec.templateRef.parameters[0].value",
            false,
        ),
        (
            "dockerfile-path",
            "spec.templateRef.parameters[1].value",
            false,
        ),
    ];
    let evil = [
        "{{workflow.name}}",
        "{{=sprig.x}}",
        "{{=",
        "tail{{",
        "$({{workflow.name}})",
        "{{inputs.parameters.git-revision}}",
        "{{ workflow.uid }}",
    ];
    for text in evil {
        for (field, path, with_commit) in &fields {
            let b = build("docker", *with_commit, &|f| {
                if f == *field {
                    format!("x{text}")
                } else {
                    format!("ok-{f}")
                }
            });
            std::fs::write(&file, serde_json::to_string(&b).unwrap()).unwrap();
            let out = render(&[&shown]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{text:?} in {path}: {err}");
            assert!(
                out.stdout.is_empty(),
                "{text:?} in {path} printed to stdout"
            );
            let prefix = format!("error: {shown}: {path}: ");
            assert!(
                err.starts_with(&prefix),
                "{text:?}: expected {prefix:?} in {err}"
            );
            assert!(err.contains("{{"), "{err}");
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "one line expected: {err}"
            );
        }
    }
    // A lone brace, or braces apart, are not Argo syntax and pass.
    let b = build("docker", false, &|f| format!("{{{f}}} {{ }}"));
    std::fs::write(&file, serde_json::to_string(&b).unwrap()).unwrap();
    let out = render(&[&shown]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
