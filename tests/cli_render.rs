//! The `render` command as a user runs it: the real binary, real files, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn render(args: &[&str]) -> Output {
    bin().arg("render").args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bad input: exit code 2, one error naming the file and field, nothing on stdout.
fn assert_bad(args: &[&str], needles: &[&str]) {
    let o = render(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected {n:?} in {err}");
    }
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
}

#[test]
fn malformed_yaml_names_file_and_line() {
    assert_bad(
        &["fixtures/bad/malformed.yaml"],
        &["fixtures/bad/malformed.yaml: invalid YAML: line 7"],
    );
}

#[test]
fn missing_field_names_file_and_key_path() {
    assert_bad(
        &["fixtures/bad/missing-url.yaml"],
        &["fixtures/bad/missing-url.yaml: spec.repository.url: is required"],
    );
}

#[test]
fn unknown_template_lists_the_known_ones() {
    assert_bad(
        &["fixtures/bad/unknown-template.yaml"],
        &[
            "spec.templateRef.name: unknown template \"maven\"",
            "docker, react, ballerina-buildpack, google-cloud-buildpacks",
        ],
    );
}

#[test]
fn unknown_kind_names_the_document() {
    assert_bad(
        &["fixtures/bad/unknown-kind.yaml"],
        &["fixtures/bad/unknown-kind.yaml (document 2): kind: unknown kind \"Deployment\""],
    );
}

#[test]
fn invalid_name_is_refused() {
    assert_bad(
        &["fixtures/bad/invalid-name.yaml"],
        &["metadata.name: \"Greeter Build!\" is not a valid object name"],
    );
}

#[test]
fn template_parameters_are_checked() {
    assert_bad(
        &["fixtures/bad/missing-parameter.yaml"],
        &["spec.templateRef.parameters: template docker needs parameter \"docker-context\""],
    );
    assert_bad(
        &["fixtures/bad/reserved-parameter.yaml"],
        &["spec.templateRef.parameters[0].name: \"image-name\" is set by buildplane itself"],
    );
    assert_bad(
        &["fixtures/bad/unknown-engine.yaml"],
        &["spec.templateRef.engine: unsupported build engine \"tekton\""],
    );
}

#[test]
fn bad_set_expression() {
    assert_bad(
        &["--set", "global..x=1"],
        &["--set \"global..x=1\": empty key segment"],
    );
    assert_bad(&["--set", "novalue"], &["--set \"novalue\"", "has no '='"]);
    // 5,000 nested keys once overflowed the stack (abort, exit 134).
    let deep = format!("{}=1", vec!["a"; 5000].join("."));
    assert_bad(&["--set", &deep], &["5000 keys deep; at most 64"]);
    let o = render(&["--set", &deep]);
    assert!(stderr(&o).len() < 300, "{}", stderr(&o));
}

#[test]
fn values_violating_the_schema_name_the_key() {
    let o = render(&["-f", "fixtures/bad/values-s3.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.contains(
            "global.defaultResources.registry.type: must be one of local, external (got \"s3\")"
        ),
        "{err}"
    );
    let o = render(&["--set", "global.defaultResources.registry.type=s3"]);
    assert!(stderr(&o).contains("(got \"s3\")"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn missing_input_file() {
    assert_bad(
        &["fixtures/builds/nope.yaml"],
        &["fixtures/builds/nope.yaml: "],
    );
    assert_bad(&["-f", "nope.yaml"], &["nope.yaml: "]);
}

#[test]
fn a_bad_file_among_good_ones_renders_nothing() {
    let o = render(&[
        "--install",
        "fixtures/builds",
        "fixtures/bad/missing-url.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn output_is_byte_identical_across_runs_and_environments() {
    let a = render(&["--install", "fixtures/builds"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert!(!a.stdout.is_empty());
    // Another working directory, locale, time zone and home: same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let builds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/builds");
    let b = Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(tmp.path())
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "tr_TR.UTF-8")
        .env("HOME", tmp.path())
        .args(["render", "--install"])
        .arg(&builds)
        .output()
        .unwrap();
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert!(a.stdout == b.stdout, "render output differs between runs");
}

#[test]
fn kinds_come_in_apply_order() {
    let o = render(&["--install", "fixtures/builds"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    let order = [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "ClusterWorkflowTemplate",
        "Workflow",
    ];
    let ranks: Vec<usize> = kinds
        .iter()
        .map(|k| {
            order
                .iter()
                .position(|o| o == k)
                .unwrap_or_else(|| panic!("unexpected kind {k}"))
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{kinds:?}");
    for k in order {
        assert!(kinds.contains(&k), "no {k} in the install render");
    }
}

#[test]
fn json_output_is_a_list_of_the_same_objects() {
    let y = render(&["fixtures/builds"]);
    let j = render(&["fixtures/builds", "-o", "json"]);
    assert_eq!(j.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&y.stdout).unwrap()).unwrap();
    assert_eq!(list["items"].as_array().unwrap(), &docs);
}

#[test]
fn out_dir_writes_one_file_per_object_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let o = render(&["fixtures/builds", "--out-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let stream = render(&["fixtures/builds"]);
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&stream.stdout).unwrap()).unwrap();
    assert_eq!(names.len(), docs.len());
    for (name, doc) in names.iter().zip(&docs) {
        let text = std::fs::read_to_string(tmp.path().join(name)).unwrap();
        let got: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(&got, doc, "{name}");
    }
    assert!(names[0].starts_with("0000-namespace-"), "{names:?}");
    assert!(names.last().unwrap().contains("-workflow-"), "{names:?}");
}

#[test]
fn builds_render_upstream_names_and_arguments() {
    let o = render(&["fixtures/builds/reading-list-commit.yaml", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Workflow"
        ]
    );
    let wf = &items[4];
    assert_eq!(
        wf["metadata"]["name"],
        "reading-list-service-build-7c9e4a1b-8081ce9a"
    );
    assert_eq!(wf["metadata"]["namespace"], "openchoreo-ci-default");
    let params: Vec<(String, String)> = wf["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = [
        ("project-name", "default"),
        ("component-name", "reading-list-service"),
        ("git-repo", "https://github.com/openchoreo/sample-workloads"),
        ("app-path", "/service-go-reading-list"),
        ("image-name", "default-reading-list-service"),
        ("image-tag", "default"),
        ("commit", "4f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
        ("branch", ""),
        ("docker-context", "/service-go-reading-list"),
        ("dockerfile-path", "/service-go-reading-list/Dockerfile"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(params, expect);
    assert_eq!(
        wf["spec"]["workflowTemplateRef"],
        serde_json::json!({"name": "docker", "clusterScope": true})
    );
    assert_eq!(wf["spec"]["serviceAccountName"], "workflow-sa");
    assert_eq!(
        wf["spec"]["podMetadata"]["labels"],
        wf["metadata"]["labels"]
    );
    let labels = &wf["metadata"]["labels"];
    assert_eq!(labels["build-name"], "reading-list-service-build-7c9e4a1b");
    assert_eq!(labels["organization-name"], "default");
    assert_eq!(labels["target"], "build");
}

#[test]
fn builds_without_namespace_take_the_namespace_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/builds/time-service-gcp.yaml"),
    )
    .unwrap();
    let file = tmp.path().join("b.yaml");
    std::fs::write(&file, src.replace("  namespace: default\n", "")).unwrap();
    let o = render(&[file.to_str().unwrap(), "-n", "globex", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let wf = list["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(wf["metadata"]["namespace"], "openchoreo-ci-globex");
    assert_eq!(wf["metadata"]["labels"]["organization-name"], "globex");
}

#[test]
fn duplicate_builds_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/builds/greeter-docker.yaml");
    std::fs::copy(&src, tmp.path().join("a.yaml")).unwrap();
    std::fs::copy(&src, tmp.path().join("b.yaml")).unwrap();
    let o = render(&[tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("Build default/greeter-build-0a1b2c3d is defined twice"),
        "{}",
        stderr(&o)
    );
}

/// A Kubernetes object name as the API server checks it (`IsDNS1123Subdomain`): at most 253
/// characters of dot-separated `[a-z0-9]([-a-z0-9]*[a-z0-9])?` parts, no per-part limit.
fn is_object_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !p.starts_with('-')
                && !p.ends_with('-')
        })
}

fn build_named(name: &str) -> String {
    format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata: {{name: '{name}', namespace: acme}}\n\
         spec:\n  owner: {{projectName: shop, componentName: cart}}\n\
         \x20 repository: {{url: 'https://git.example.com/shop.git', revision: {{branch: main}}, appPath: /}}\n\
         \x20 templateRef: {{name: google-cloud-buildpacks}}\n"
    )
}

/// The Workflow name of `name` as rendered, or the error line.
fn rendered_workflow_name(name: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.yaml");
    std::fs::write(&file, build_named(name)).unwrap();
    let o = render(&[file.to_str().unwrap(), "-o", "json"]);
    if !o.status.success() {
        return Err(stderr(&o));
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&o.stdout)));
    let items = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![v.clone()]);
    let wf = items
        .iter()
        .find(|i| i["kind"] == "Workflow")
        .unwrap_or_else(|| panic!("no Workflow for {name}: {v}"));
    Ok(wf["metadata"]["name"].as_str().unwrap().to_owned())
}

/// Build names are checked exactly as Kubernetes checks object names: upstream's own vectors
/// that are valid names (one has a 107-character part, refused before) and long multi-part
/// names render, with upstream's Workflow name where it is valid; longer than 253 is refused.
#[test]
fn build_names_are_checked_as_kubernetes_checks_object_names() {
    let vectors = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/name-vectors.tsv"
    ))
    .unwrap();
    let mut checked = 0;
    for line in vectors
        .lines()
        .filter(|l| l.starts_with("MakeWorkflowName\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (input, upstream) = (cols[1], cols[3]);
        if !is_object_name(input) {
            continue;
        }
        assert_eq!(
            rendered_workflow_name(input).unwrap_or_else(|e| panic!("{input}: {e}")),
            upstream,
            "{input}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} vectors were valid names");
    let long = [
        format!("{}.{}", "a".repeat(70), "b".repeat(70)),
        format!("{}.{}.{}", "a".repeat(100), "b".repeat(100), "c".repeat(51)),
        format!("team-{}.build.v1", "x".repeat(120)),
    ];
    for name in &long {
        assert!(is_object_name(name), "{name}");
        let wf = rendered_workflow_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(wf.len() <= 63 && is_object_name(&wf), "{name} -> {wf}");
    }
    let too_long = format!("{}.{}", "a".repeat(200), "b".repeat(53));
    let err = rendered_workflow_name(&too_long).unwrap_err();
    assert!(err.contains("is not a valid object name"), "{err}");
}
