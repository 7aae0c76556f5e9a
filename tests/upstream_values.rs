//! The upstream chart's own values file (`fixtures/upstream/values-a577.yaml`) works: it
//! renders, the keys buildplane does not apply are warnings naming key and file (errors with
//! `--strict`), and every one of its keys is either read (changing it changes the render where
//! expected) or not applicable (changing it changes no byte, and the warning names it).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

const UPSTREAM: &str = "fixtures/upstream/values-a577.yaml";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("KUBECONFIG");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The warnings the upstream file gives, for a file of that name.
fn upstream_warnings(file: &str) -> Vec<String> {
    vec![
        format!(
            "warning: argo-workflows.workflow ({file}): not applicable: buildplane creates the \
             ServiceAccount workflow-sa (with workflow-role and its binding) in every build \
             namespace itself; ignored"
        ),
        format!(
            "warning: argo-workflows.workflowNamespaces ({file}): not applicable: not a key of \
             the Argo Workflows chart, so upstream ignored it too (builds run in \
             openchoreo-ci-<org>); the build namespaces the install prepares are \
             buildNamespaces; ignored"
        ),
        format!(
            "warning: fluentBit ({file}): not applicable: buildplane renders no log shipper \
             (buildplane logs reads a build's step logs from its pods); ignored"
        ),
    ]
}

fn lines(b: &[u8]) -> Vec<String> {
    text(b).lines().map(str::to_owned).collect()
}

#[test]
fn the_upstream_values_file_renders_with_one_warning_per_key_it_does_not_apply() {
    let o = run(&["render", "-f", UPSTREAM]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(lines(&o.stderr), upstream_warnings(UPSTREAM));
    // What the upstream file asks for is buildplane's default install, byte for byte: the
    // build namespace is openchoreo-ci-default (where upstream's builds of `default` ran), not
    // argo-build.
    let defaults = run(&["render"]);
    assert!(defaults.status.success() && defaults.stderr.is_empty());
    assert_eq!(text(&o.stdout), text(&defaults.stdout));
    let out = text(&o.stdout);
    assert!(out.contains("\n  name: openchoreo-ci-default\n"));
    assert!(!out.contains("argo-build"));
}

#[test]
fn strict_refuses_the_upstream_file_in_one_line_and_renders_nothing() {
    let o = run(&["render", "-f", UPSTREAM, "--strict"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(
        err,
        format!(
            "error: --strict: values buildplane accepts but does not apply: \
             argo-workflows.workflow ({UPSTREAM}), argo-workflows.workflowNamespaces ({UPSTREAM}), \
             fluentBit ({UPSTREAM})\n"
        )
    );
    // Without the upstream-only keys, --strict has nothing to refuse.
    let o = run(&[
        "render",
        "--strict",
        "--set",
        "argo-workflows.server.enabled=true",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty());
}

/// diff, apply and check read values the same way: --strict refuses before any request (the
/// kubeconfig does not exist, and is never read).
#[test]
fn strict_stops_diff_apply_and_check_before_the_cluster() {
    for cmd in ["diff", "apply", "check"] {
        let o = run(&[
            cmd,
            "-f",
            UPSTREAM,
            "--strict",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(o.stdout.is_empty(), "{cmd}");
        assert!(err.starts_with("error: --strict: "), "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        // Without --strict they warn, then fail on the missing kubeconfig.
        let o = run(&[
            cmd,
            "-f",
            UPSTREAM,
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ]);
        let err = lines(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err:?}");
        assert_eq!(err[..3], upstream_warnings(UPSTREAM)[..], "{cmd}");
        assert!(err[3].contains("/nonexistent/kubeconfig"), "{cmd}: {err:?}");
    }
}

#[test]
fn warnings_name_the_set_flag_and_what_enabled_would_have_meant() {
    let o = run(&[
        "render",
        "--set",
        "fluentBit.enabled=true",
        "--set-string",
        "argo-workflows.server.ingress.hosts[0]=argo.example.com",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        lines(&o.stderr),
        [
            "warning: fluentBit (--set fluentBit.enabled=true): not applicable: buildplane \
             renders no log shipper (buildplane logs reads a build's step logs from its pods); \
             fluentBit.enabled is true, but build logs are not shipped anywhere; ignored",
            "warning: argo-workflows.server.ingress (--set-string \
             argo-workflows.server.ingress.hosts[0]=argo.example.com): not applicable: \
             buildplane's Argo Server takes only enabled, image, replicas, serviceType, \
             servicePort, authModes, extraArgs and resources; ignored",
        ]
    );
    // A misspelled key is still an error.
    let o = run(&["render", "--set", "fluentbit.enabled=true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("fluentbit: unknown key"));
}

/// Every leaf of `v` by key path (an empty map or a list is a leaf).
fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(k.clone());
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn set_at(v: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = v;
    for k in parents {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(k.to_string())
            .or_insert(json!({}));
    }
    at.as_object_mut().unwrap().insert(last.to_string(), new);
}

fn get_at<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |at, k| &at[k.as_str()])
}

/// Another valid value of the same type, for a key nothing reads.
fn other_value(v: &Value) -> Value {
    match v {
        Value::Bool(b) => json!(!b),
        Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1),
        Value::String(s) if s.is_empty() => json!("changed"),
        Value::String(s) => json!(format!("{s}-changed")),
        Value::Array(_) => json!(["openchoreo-ci-acme"]),
        Value::Object(_) => json!({"changed": true}),
        Value::Null => json!("changed"),
    }
}

/// A key buildplane reads: the new value (and any other value it needs to take effect), which
/// objects must change, and a text the changed objects must then hold.
struct Read {
    value: Value,
    with: Vec<(&'static str, Value)>,
    changes: fn(&str) -> bool,
    holds: Option<&'static str>,
}

fn read_keys() -> BTreeMap<&'static str, Read> {
    let r = |value: Value, changes: fn(&str) -> bool, holds: Option<&'static str>| Read {
        value,
        with: Vec::new(),
        changes,
        holds,
    };
    let cwt = |id: &str| id.starts_with("ClusterWorkflowTemplate/");
    let controller = |id: &str| id == "Deployment/openchoreo-build-plane/argo-workflow-controller";
    let external = ("global.defaultResources.registry.type", json!("external"));
    let endpoint = (
        "global.defaultResources.registry.external.endpoint",
        json!("registry.example.com/team"),
    );
    BTreeMap::from([
        (
            "global.commonLabels",
            r(json!({"team": "ci"}), |_| true, Some(r#""team":"ci""#)),
        ),
        (
            "global.defaultResources.enabled",
            r(json!(false), cwt, None),
        ),
        (
            "global.defaultResources.registry.type",
            Read {
                with: vec![endpoint.clone()],
                ..r(json!("external"), cwt, Some("registry.example.com/team"))
            },
        ),
        (
            "global.defaultResources.registry.local.pushEndpoint",
            r(
                json!("registry.example.com:5001"),
                cwt,
                Some("registry.example.com:5001"),
            ),
        ),
        (
            "global.defaultResources.registry.local.pullEndpoint",
            r(json!("localhost:30004"), cwt, Some("localhost:30004")),
        ),
        (
            "global.defaultResources.registry.external.endpoint",
            Read {
                with: vec![external],
                ..r(endpoint.1.clone(), cwt, Some("registry.example.com/team"))
            },
        ),
        (
            "argo-workflows.fullnameOverride",
            r(
                json!("wf"),
                |id| {
                    id.contains("argo-workflow-controller") || id.contains("wf-workflow-controller")
                },
                Some("wf-workflow-controller"),
            ),
        ),
        (
            "argo-workflows.controller.resources.limits.memory",
            r(json!("128Mi"), controller, Some("128Mi")),
        ),
        (
            "argo-workflows.controller.resources.limits.cpu",
            r(json!("100m"), controller, Some("100m")),
        ),
        (
            "argo-workflows.controller.resources.requests.memory",
            r(json!("48Mi"), controller, Some("48Mi")),
        ),
        (
            "argo-workflows.controller.resources.requests.cpu",
            r(json!("30m"), controller, Some("30m")),
        ),
        (
            "argo-workflows.server.enabled",
            r(
                json!(true),
                |id| id.ends_with("/argo-server") || id.ends_with("/argo-server-cluster-template"),
                Some("argo-server"),
            ),
        ),
        (
            "argo-workflows.crds.keep",
            r(
                json!(true),
                |id| id.starts_with("CustomResourceDefinition/"),
                Some(r#""helm.sh/resource-policy":"keep""#),
            ),
        ),
    ])
}

/// `Kind/namespace/name` → the object's JSON, from `render -o json`.
fn objects(stdout: &[u8]) -> BTreeMap<String, String> {
    let list: Value = serde_json::from_slice(stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let id = match m["namespace"].as_str() {
                Some(ns) => format!(
                    "{}/{ns}/{}",
                    o["kind"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
                None => format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
            };
            (id, serde_json::to_string(o).unwrap())
        })
        .collect()
}

#[test]
fn every_key_of_the_upstream_file_is_read_or_reported_as_not_applicable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let upstream: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join(UPSTREAM)).unwrap()).unwrap();
    let mut all = Vec::new();
    leaves(&upstream, &mut Vec::new(), &mut all);
    assert!(all.len() > 60, "only {} leaves", all.len());
    let read = read_keys();
    let joined: BTreeSet<String> = all.iter().map(|p| p.join(".")).collect();
    for key in read.keys() {
        assert!(
            joined.contains(*key),
            "{key} is not a key of the upstream file"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    let file_name = file.display().to_string();
    let render = |values: &Value| {
        std::fs::write(&file, serde_json::to_vec(values).unwrap()).unwrap();
        let o = run(&["render", "-f", &file_name, "-o", "json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        o
    };
    let base = render(&upstream);
    assert_eq!(lines(&base.stderr), upstream_warnings(&file_name));
    let base_objects = objects(&base.stdout);

    let mut not_applicable = BTreeSet::new();
    for path in &all {
        let key = path.join(".");
        let mut changed = upstream.clone();
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        match read.get(key.as_str()) {
            Some(expect) => {
                set_at(&mut changed, &segments, expect.value.clone());
                for (other, v) in &expect.with {
                    let other: Vec<&str> = other.split('.').collect();
                    set_at(&mut changed, &other, v.clone());
                }
                let o = render(&changed);
                assert_eq!(lines(&o.stderr), upstream_warnings(&file_name), "{key}");
                let now = objects(&o.stdout);
                let ids: BTreeSet<&String> = base_objects.keys().chain(now.keys()).collect();
                let differ: BTreeSet<&String> = ids
                    .into_iter()
                    .filter(|id| base_objects.get(*id) != now.get(*id))
                    .collect();
                let expected: BTreeSet<&String> = base_objects
                    .keys()
                    .chain(now.keys())
                    .filter(|id| (expect.changes)(id))
                    .collect();
                assert!(!differ.is_empty(), "{key}: the render did not change");
                assert_eq!(differ, expected, "{key}: changed elsewhere than expected");
                if let Some(needle) = expect.holds {
                    for id in &differ {
                        if let Some(object) = now.get(*id) {
                            assert!(object.contains(needle), "{key}: {id} lacks {needle}");
                        }
                    }
                }
            }
            None => {
                let new = other_value(get_at(&upstream, path));
                set_at(&mut changed, &segments, new.clone());
                let o = render(&changed);
                assert_eq!(
                    text(&o.stdout),
                    text(&base.stdout),
                    "{key} is not applicable, yet changing it changed the render"
                );
                let warnings = lines(&o.stderr);
                let named: Vec<&String> = warnings
                    .iter()
                    .filter(|w| {
                        let Some(rest) = w.strip_prefix("warning: ") else {
                            return false;
                        };
                        let (marked, _) = rest.split_once(' ').unwrap();
                        (key == marked || key.starts_with(&format!("{marked}.")))
                            && rest.contains(&format!("({file_name}): not applicable: "))
                    })
                    .collect();
                assert_eq!(named.len(), 1, "{key}: no warning names it: {warnings:?}");
                let mut expected = upstream_warnings(&file_name);
                if key == "fluentBit.enabled" && new == json!(true) {
                    expected[2] = expected[2].replace(
                        "; ignored",
                        "; fluentBit.enabled is true, but build logs are not shipped anywhere; ignored",
                    );
                }
                assert_eq!(warnings, expected, "{key}");
                not_applicable.insert(named[0].split(' ').nth(1).unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        not_applicable,
        BTreeSet::from([
            "argo-workflows.workflow".to_owned(),
            "argo-workflows.workflowNamespaces".to_owned(),
            "fluentBit".to_owned(),
        ])
    );
}
