//! The per-build templates of `templates/`: overlays (`--templates DIR`, `buildTemplates` in
//! values) shape what is rendered per build, within what buildplane relies on; provenance on
//! every build object.

mod cluster;
mod support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use support::{bp, objects, refused, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BUILD: &str = "fixtures/builds/greeter-docker.yaml";

fn kind<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap()
}

fn builtin(file: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("templates").join(file)).unwrap()
}

/// A directory holding `workflow.yaml` = the built-in one with `from` replaced by `to`.
fn overlay(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = builtin(file);
    assert!(t.contains(from), "{file} has no {from:?}");
    std::fs::write(dir.path().join(file), t.replace(from, to)).unwrap();
    dir
}

/// Where the built-in workflow.yaml opens its spec: overlays below add fields there.
const WF_SPEC: &str = "\"spec\": {\n    \"serviceAccountName\":";

/// WF_SPEC with `fields` (JSON members, each followed by a comma) added first.
fn spec_with(fields: &str) -> String {
    format!("\"spec\": {{\n    {fields}\n    \"serviceAccountName\":")
}

#[test]
fn an_overlay_adds_fields_and_everything_else_stays_as_built_in() {
    let plain = objects(&bp(&["render", BUILD]));
    let added = spec_with(
        "\"podGC\": {\"strategy\": \"OnPodSuccess\"}, \"podPriorityClassName\": \"builds\", \"nodeSelector\": {\"pool\": \"builds\"},",
    );
    let dir = overlay("workflow.yaml", WF_SPEC, &added);
    let d = dir.path().to_str().unwrap();
    let shaped = objects(&bp(&["render", "--templates", d, BUILD]));
    let (p, s) = (kind(&plain, "Workflow"), kind(&shaped, "Workflow"));
    assert_eq!(s["spec"]["podGC"], json!({"strategy": "OnPodSuccess"}));
    assert_eq!(s["spec"]["podPriorityClassName"], "builds");
    let mut back = s.clone();
    for k in ["podGC", "podPriorityClassName", "nodeSelector"] {
        back["spec"].as_object_mut().unwrap().remove(k);
    }
    assert_eq!(&back, p, "nothing else changed");
    // The same file through values.
    let file = dir.path().join("workflow.yaml");
    let set = format!("buildTemplates.workflow\\.yaml={}", file.display());
    let via_values = objects(&bp(&["render", "--set-file", &set, BUILD]));
    let v = kind(&via_values, "Workflow");
    assert_eq!(v["spec"], s["spec"]);
    // The template is part of the values there, so of their digest.
    let digest =
        |o: &Value| o["metadata"]["annotations"]["buildplane.openchoreo.dev/values-digest"].clone();
    assert_ne!(digest(v), digest(s));
    // Labels on the prerequisites.
    let dir = overlay(
        "prerequisites.yaml",
        "kind: ServiceAccount\nmetadata:\n",
        "kind: ServiceAccount\nimagePullSecrets: [{name: mirror}]\nmetadata:\n",
    );
    let shaped = objects(&bp(&[
        "render",
        "--templates",
        dir.path().to_str().unwrap(),
        BUILD,
    ]));
    assert_eq!(
        kind(&shaped, "ServiceAccount")["imagePullSecrets"],
        json!([{"name": "mirror"}])
    );
}

#[test]
fn an_overlay_that_breaks_what_buildplane_relies_on_is_refused() {
    let cases: [(&str, &str, &str, &str); 8] = [
        (
            "workflow.yaml",
            "\"name\": [[ names.workflow | tojson ]]",
            "\"name\": [[ (names.workflow ~ \"-x\") | tojson ]]",
            "Workflow/openchoreo-ci-default/",
        ),
        (
            "workflow.yaml",
            "\"parameters\": [[ arguments | tojson ]]",
            "\"parameters\": [[ arguments[:8] | tojson ]]",
            "spec.arguments must be",
        ),
        (
            "workflow.yaml",
            "\"labels\": [[ labels.workflow | tojson ]],\n    \"annotations\"",
            "\"labels\": {\"team\": \"a\"},\n    \"annotations\"",
            "metadata.labels.build-name must be",
        ),
        // Build text into a step of its own: the injection templates exist to prevent.
        (
            "workflow.yaml",
            WF_SPEC,
            &spec_with(
                "\"templates\": [{\"name\": \"x\", \"script\": {\"image\": \"sh\", \"source\": [[ build.spec.repository.url | tojson ]]}}],",
            ),
            "spec.templates is not allowed here",
        ),
        (
            "workflow.yaml",
            WF_SPEC,
            &spec_with("\"podGc\": {\"strategy\": \"OnPodSuccess\"},"),
            "podGc",
        ),
        (
            "workflow.yaml",
            WF_SPEC,
            &spec_with("\"volumes\": [{\"name\": \"h\", \"hostPath\": {\"path\": \"/\"}}],"),
            "spec.volumes[0].hostPath",
        ),
        (
            "prerequisites.yaml",
            "resources: [workflowtaskresults]",
            "resources: [workflowtaskresults, secrets]",
            "Role/openchoreo-ci-default/workflow-role: rules must be",
        ),
        (
            "prerequisites.yaml",
            "---\napiVersion: v1\nkind: ServiceAccount",
            "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ServiceAccount",
            "renders an object of kind \"Secret\"",
        ),
    ];
    for (file, from, to, needle) in cases {
        let dir = overlay(file, from, to);
        let d = dir.path().to_str().unwrap();
        let origin = format!("{d}/{file} for Build default/greeter-build");
        refused(
            &bp(&["render", "--templates", d, BUILD]),
            &[origin.as_str(), needle],
        );
    }
    // A file buildplane does not render, and a broken one, are named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workflows.yaml"), "x").unwrap();
    let d = dir.path().to_str().unwrap();
    refused(
        &bp(&["render", "--templates", d, BUILD]),
        &["workflows.yaml: not a per-build template (they are: prerequisites.yaml, workflow.yaml)"],
    );
    std::fs::remove_file(dir.path().join("workflows.yaml")).unwrap();
    std::fs::write(dir.path().join("workflow.yaml"), "kind: [[ names.nope ]]").unwrap();
    refused(
        &bp(&["render", "--templates", d, BUILD]),
        &[
            "workflow.yaml for Build default/greeter-build-0a1b2c3d: ",
            "undefined",
        ],
    );
}

fn digest(v: &Value) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(serde_json::to_vec(v).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[test]
fn every_build_object_names_the_template_the_values_and_the_version_it_was_rendered_with() {
    let out = objects(&bp(&["render", "--install", BUILD]));
    let wf = kind(&out, "Workflow");
    let a = &wf["metadata"]["annotations"];
    let cwt = out
        .iter()
        .find(|o| o["kind"] == "ClusterWorkflowTemplate" && o["metadata"]["name"] == "docker")
        .unwrap();
    assert_eq!(
        a["buildplane.openchoreo.dev/template-digest"],
        json!(digest(cwt))
    );
    assert_eq!(
        a["buildplane.openchoreo.dev/version"],
        env!("CARGO_PKG_VERSION")
    );
    let values_digest = |args: &[&str]| {
        let mut all = vec!["render"];
        all.extend_from_slice(args);
        all.push(BUILD);
        let out = objects(&bp(&all));
        kind(&out, "Workflow")["metadata"]["annotations"]["buildplane.openchoreo.dev/values-digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let base = values_digest(&[]);
    assert_eq!(json!(base), a["buildplane.openchoreo.dev/values-digest"]);
    assert_ne!(
        values_digest(&["--set", "global.defaultResources.registry.tlsVerify=true"]),
        base
    );
    // A Secret's data among the values does not reach the digest: no guess can be tested.
    let secret = |v: &str| {
        format!(
            "extraObjects=[{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{{\"name\":\"s\",\"namespace\":\"d\"}},\"stringData\":{{\"token\":\"{v}\"}}}}]"
        )
    };
    let (one, two) = (secret("hunter2"), secret("swordfish"));
    let with_one = values_digest(&["--set-json", &one]);
    assert_ne!(with_one, base);
    assert_eq!(with_one, values_digest(&["--set-json", &two]));
    // A changed template changes the digest of the Workflows that use it.
    let other = objects(&bp(&[
        "render",
        "--set",
        "global.defaultResources.activeDeadlineSeconds=60",
        BUILD,
    ]));
    assert_ne!(
        kind(&other, "Workflow")["metadata"]["annotations"]["buildplane.openchoreo.dev/template-digest"],
        a["buildplane.openchoreo.dev/template-digest"]
    );
}

#[test]
fn an_overlaid_workflow_is_applied_as_rendered_and_applying_again_changes_nothing() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("org");
    let dir = overlay(
        "workflow.yaml",
        WF_SPEC,
        &spec_with("\"podGC\": {\"strategy\": \"OnPodSuccess\"},"),
    );
    let d = dir.path().to_str().unwrap().to_owned();
    let builds = tempfile::tempdir().unwrap();
    let build = builds.path().join("build.yaml");
    let text_of = std::fs::read_to_string(Path::new(ROOT).join(BUILD)).unwrap();
    std::fs::write(
        &build,
        text_of.replace("namespace: default", &format!("namespace: {org}")),
    )
    .unwrap();
    let apply = || {
        Command::new(env!("CARGO_BIN_EXE_buildplane"))
            .current_dir(ROOT)
            .env_remove("KUBECONFIG")
            .args(["apply", "--templates", &d])
            .arg(&build)
            .arg("--kubeconfig")
            .arg(&kc)
            .output()
            .unwrap()
    };
    let o = apply();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let wf = buildplane::core::naming::workflow_name("greeter-build-0a1b2c3d");
    let (code, live) = cluster::kubectl_like_get(
        &kc,
        None,
        &format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{wf}"),
    );
    assert_eq!(code, 200, "{live}");
    assert_eq!(live["spec"]["podGC"], json!({"strategy": "OnPodSuccess"}));
    assert!(
        live["metadata"]["annotations"]["buildplane.openchoreo.dev/template-digest"].is_string()
    );
    let again = apply();
    let out = text(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        !out.contains(" created") && !out.contains(" configured"),
        "{out}"
    );
}

/// The streamed render (stdout YAML) is byte for byte the whole render, over several chunks,
/// organizations the bundle already prepares, and a bundle installed alongside.
#[test]
fn the_streamed_render_is_the_whole_render() {
    use buildplane::core::manifest;
    use buildplane::core::render::Chart;
    use buildplane::pipeline::{self, RenderRequest};
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(ROOT).join(BUILD)).unwrap();
    for i in 0..5000 {
        let org = if i % 7 == 0 {
            "default".to_owned()
        } else {
            format!("org-{}", i % 31)
        };
        let t = text
            .replace("namespace: default", &format!("namespace: {org}"))
            .replace("greeter-build-0a1b2c3d", &format!("b-{i:05}"));
        std::fs::write(dir.path().join(format!("b{i}.yaml")), t).unwrap();
    }
    let req = RenderRequest {
        builds: vec![dir.path().to_path_buf()],
        install: true,
        default_namespace: Some("default".into()),
        ..Default::default()
    };
    let chart = Chart::builtin();
    let whole = manifest::to_yaml_stream(&pipeline::render(&chart, &req).unwrap()).unwrap();
    let mut streamed = String::new();
    let mut pieces = 0;
    pipeline::render_streamed(
        &chart,
        &req,
        |_| {},
        |objects: &[manifest::Manifest]| {
            pieces += 1;
            streamed.push_str(&manifest::to_yaml_stream(objects)?);
            Ok::<(), Box<dyn std::error::Error>>(())
        },
    )
    .map_err(|e| e.to_string())
    .unwrap();
    assert!(pieces > 2, "{pieces} pieces");
    assert!(whole == streamed, "the streamed render differs");
}
