//! Templates of the platform team's own: `extraTemplates` in values (rendered, linted, and
//! Builds checked against their declared parameters) and ClusterWorkflowTemplates that exist
//! only on the build plane (read live before anything is applied; a Build they cannot run
//! changes nothing).

mod cluster;
mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{bp, objects, refused, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VALUES: &str = "fixtures/templates/maven-values.yaml";
const BUILD: &str = "fixtures/templates/maven-build.yaml";

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The fixture values with `edit` applied to the maven template, in a file.
fn values_with(edit: impl FnOnce(&mut Value)) -> tempfile::NamedTempFile {
    let mut v: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(Path::new(ROOT).join(VALUES)).unwrap())
            .unwrap();
    edit(&mut v["extraTemplates"][0]);
    let f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(f.path(), serde_json::to_string(&v).unwrap()).unwrap();
    f
}

/// The maven step template named `step`.
fn step<'a>(template: &'a mut Value, step: &str) -> &'a mut Value {
    template["spec"]["templates"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == step)
        .unwrap()
}

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().unwrap()
}

#[test]
fn a_values_template_is_rendered_with_its_arguments_and_builds_are_checked_against_it() {
    let out = objects(&bp(&["render", "--install", "-f", VALUES, BUILD]));
    let cwt = named(&out, "ClusterWorkflowTemplate", "maven").expect("maven rendered");
    assert_eq!(
        cwt["spec"]["arguments"]["parameters"],
        json!([{"name": "maven-goals"}, {"name": "jdk-version", "value": "21"}])
    );
    // The bundle's labels and its default build deadline, as the built-in templates have.
    assert_eq!(
        cwt["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "buildplane"
    );
    assert_eq!(cwt["spec"]["activeDeadlineSeconds"], 10800);
    let docker = named(&out, "ClusterWorkflowTemplate", "docker").unwrap();
    assert_eq!(cwt["metadata"]["labels"], docker["metadata"]["labels"]);
    let wf_name = buildplane::core::naming::workflow_name("billing-maven");
    let wf = named(&out, "Workflow", &wf_name).expect("the Workflow");
    assert_eq!(wf["spec"]["workflowTemplateRef"]["name"], "maven");
    let params = wf["spec"]["arguments"]["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 9, "eight reserved and maven-goals");
    assert_eq!(
        params[8],
        json!({"name": "maven-goals", "value": "package -DskipTests"})
    );
    // Only the Build: the values still say which templates exist.
    let only = objects(&bp(&["render", "-f", VALUES, BUILD]));
    assert!(named(&only, "Workflow", &wf_name).is_some());
    assert!(named(&only, "ClusterWorkflowTemplate", "maven").is_none());

    // Without the values, maven is unknown; the error says how to name a live one.
    refused(
        &bp(&["render", BUILD]),
        &[
            "fixtures/templates/maven-build.yaml: spec.templateRef.name: unknown template \"maven\"",
            "buildplane.openchoreo.dev/template-source: cluster",
        ],
    );
    // A parameter the template does not declare, and a required one missing.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("b.yaml");
    let build = std::fs::read_to_string(Path::new(ROOT).join(BUILD)).unwrap();
    std::fs::write(&bad, build.replace("maven-goals", "mvn-goals")).unwrap();
    let bad = bad.to_str().unwrap();
    refused(
        &bp(&["render", "-f", VALUES, bad]),
        &[
            "b.yaml: spec.templateRef.parameters[0].name: unknown parameter \"mvn-goals\" for template maven (expected one of maven-goals, jdk-version)",
        ],
    );
    let v = values_with(|t| t["parameters"][1] = json!({"name": "mvn-goals"}));
    refused(
        &bp(&["render", "-f", path(&v), bad]),
        &["b.yaml: spec.templateRef.parameters: template maven needs parameter \"maven-goals\""],
    );
}

#[test]
fn a_values_template_is_linted_before_anything_is_rendered() {
    // A parameter pasted into shell text: the injection upstream had.
    let v = values_with(|t| {
        step(t, "build-step")["container"]["args"] =
            json!(["mvn -B {{workflow.parameters.maven-goals}}"]);
    });
    refused(
        &bp(&["render", "--install", "-f", path(&v), BUILD]),
        &[
            "ClusterWorkflowTemplate maven: step build-step: container.args[0]: {{workflow.parameters.maven-goals}} is shell text here",
        ],
    );
    // Privilege only where the values allow it.
    let v = values_with(|t| {
        step(t, "push-step")["container"]["securityContext"] = json!({"privileged": true});
    });
    refused(
        &bp(&["render", "--install", "-f", path(&v), BUILD]),
        &[
            "ClusterWorkflowTemplate maven: step push-step: container.securityContext.privileged: privileged steps are not allowed",
        ],
    );
    let out = objects(&bp(&[
        "render",
        "--install",
        "-f",
        path(&v),
        "--set",
        "extraTemplates[0].allowPrivileged=true",
        BUILD,
    ]));
    assert!(named(&out, "ClusterWorkflowTemplate", "maven").is_some());
    // The step contract: the Workload's output must exist.
    let v = values_with(|t| {
        step(t, "workload-create-step")["outputs"]["parameters"][0]["name"] = json!("workload");
    });
    refused(
        &bp(&["render", "--install", "-f", path(&v), BUILD]),
        &[
            "ClusterWorkflowTemplate maven: step workload-create-step: outputs.parameters: a template named workload-create-step with the output parameter \"workload-cr\" is needed",
        ],
    );
    // A built-in name, a reserved argument, arguments written by hand: refused.
    let v = values_with(|t| t["name"] = json!("docker"));
    refused(
        &bp(&["render", "--install", "-f", path(&v)]),
        &["extraTemplates: \"docker\" is a built-in template"],
    );
    let v = values_with(|t| t["parameters"][0]["name"] = json!("git-repo"));
    refused(
        &bp(&["render", "--install", "-f", path(&v)]),
        &["extraTemplates[0].parameters[0].name"],
    );
    let v = values_with(|t| t["spec"]["arguments"] = json!({"parameters": []}));
    refused(
        &bp(&["render", "--install", "-f", path(&v)]),
        &["extraTemplates[0].spec"],
    );
}

/// A ClusterWorkflowTemplate created on the build plane by hand, as a platform team would.
fn create_template(kc: &Path, name: &str, edit: impl FnOnce(&mut Value)) {
    let v: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(Path::new(ROOT).join(VALUES)).unwrap())
            .unwrap();
    let mut t = v["extraTemplates"][0].clone();
    edit(&mut t);
    let mut spec = t["spec"].clone();
    spec["arguments"] = json!({"parameters": t["parameters"]});
    let body = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterWorkflowTemplate",
        "metadata": {"name": name}, "spec": spec});
    let (code, resp) = cluster::raw_request(
        kc,
        None,
        "POST",
        "/apis/argoproj.io/v1alpha1/clusterworkflowtemplates",
        Some(&body),
        "application/json",
    );
    assert_eq!(code, 201, "{resp}");
}

/// A Build of organization `org` naming cluster template `template` with `params`.
fn cluster_build(dir: &Path, org: &str, name: &str, template: &str, params: Value) -> PathBuf {
    let b = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": name, "namespace": org,
            "annotations": {"buildplane.openchoreo.dev/template-source": "cluster"}},
        "spec": {"owner": {"projectName": "shop", "componentName": name},
            "repository": {"url": "https://github.com/example/x", "revision": {"branch": "main"}, "appPath": "/"},
            "templateRef": {"name": template, "parameters": params}}});
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, serde_json::to_string(&b).unwrap()).unwrap();
    p
}

fn apply(kc: &Path, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .arg("apply")
        .arg(file)
        .arg("--kubeconfig")
        .arg(kc)
        .output()
        .unwrap()
}

fn exists(kc: &Path, path: &str) -> bool {
    let (code, body) = cluster::kubectl_like_get(kc, None, path);
    assert!(code == 200 || code == 404, "{code}: {body}");
    code == 200
}

#[test]
fn a_cluster_only_template_is_read_live_and_a_build_it_cannot_run_changes_nothing() {
    let kc = cluster::with_argo();
    let tpl = cluster::unique_name("kaniko");
    create_template(&kc, &tpl, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let wf_name = buildplane::core::naming::workflow_name;
    let wf_path = |org: &str, name: &str| {
        format!(
            "/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{}",
            wf_name(name)
        )
    };

    // The live template declares maven-goals (required) and jdk-version: the Build is applied.
    let org = cluster::unique_name("org");
    let good = cluster_build(
        dir.path(),
        &org,
        "cart",
        &tpl,
        json!([{"name": "maven-goals", "value": "verify"}, {"name": "jdk-version", "value": "17"}]),
    );
    let o = apply(&kc, &good);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (_, wf) = cluster::kubectl_like_get(&kc, None, &wf_path(&org, "cart"));
    assert_eq!(wf["spec"]["workflowTemplateRef"]["name"], json!(tpl));
    assert_eq!(
        wf["metadata"]["annotations"]["buildplane.openchoreo.dev/template-source"],
        "cluster"
    );

    // Each Build the live template cannot run: exit 2 naming it, and not even its namespace
    // is created.
    let evil = cluster::unique_name("evil");
    create_template(&kc, &evil, |t| {
        step(t, "build-step")["container"]["args"] =
            json!(["mvn -B {{workflow.parameters.maven-goals}}"]);
    });
    let cases = [
        (
            tpl.clone(),
            json!([{"name": "goals", "value": "verify"}]),
            "spec.templateRef.parameters[0].name: unknown parameter \"goals\"".to_owned(),
        ),
        (
            tpl.clone(),
            json!([{"name": "jdk-version", "value": "17"}]),
            format!("spec.templateRef.parameters: template {tpl} needs parameter \"maven-goals\""),
        ),
        (
            cluster::unique_name("gone"),
            json!([]),
            "does not exist on the build plane".to_owned(),
        ),
        (
            evil.clone(),
            json!([{"name": "maven-goals", "value": "x"}]),
            format!(
                "ClusterWorkflowTemplate {evil}: step build-step: container.args[0]: {{{{workflow.parameters.maven-goals}}}} is shell text here"
            ),
        ),
    ];
    for (template, params, needle) in cases {
        let org = cluster::unique_name("org");
        let bad = cluster_build(dir.path(), &org, "web", &template, params);
        let o = apply(&kc, &bad);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{template}: {err}");
        assert!(
            err.contains(&format!(
                "Workflow/openchoreo-ci-{org}/{}: ",
                wf_name("web")
            )),
            "{err}"
        );
        assert!(err.contains(&needle), "expected {needle:?} in {err}");
        assert!(
            !exists(&kc, &format!("/api/v1/namespaces/openchoreo-ci-{org}")),
            "{org}: half-applied"
        );
        assert!(!exists(&kc, &wf_path(&org, "web")));
    }
}

#[test]
fn sync_sets_aside_a_build_its_cluster_template_cannot_run_and_builds_the_others() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("org");
    let tpl = cluster::unique_name("kaniko");
    let specs = tempfile::tempdir().unwrap();
    let params = json!([{"name": "maven-goals", "value": "verify"}]);
    cluster_build(specs.path(), &org, "cart", &tpl, params);
    let good = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "web", "namespace": org},
        "spec": {"owner": {"projectName": "shop", "componentName": "web"},
            "repository": {"url": "https://github.com/example/x", "revision": {"branch": "main"}, "appPath": "/"},
            "templateRef": {"name": "google-cloud-buildpacks"}}});
    std::fs::write(specs.path().join("web.yaml"), good.to_string()).unwrap();
    let wf = |name: &str| {
        format!(
            "/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{}",
            buildplane::core::naming::workflow_name(name)
        )
    };
    let inventory = format!("sync-{org}");
    let dir = specs.path().to_str().unwrap();
    let mut sync = support::sync_run::start_sync(&kc, &["--dir", dir, "--inventory", &inventory]);
    // The template does not exist yet: cart is set aside, web builds.
    let skipped = sync.wait_event("build_skipped", 1);
    assert!(
        skipped["error"]
            .as_str()
            .unwrap()
            .contains("does not exist on the build plane"),
        "{skipped}"
    );
    sync.wait_event("build_submitted", 1);
    assert!(exists(&kc, &wf("web")));
    assert!(!exists(&kc, &wf("cart")));
    // The platform team installs it; the next round (any change of the source) builds cart.
    create_template(&kc, &tpl, |_| {});
    std::fs::write(specs.path().join("notes.yaml"), "# a change\n").unwrap();
    let submitted = sync.wait_event("build_submitted", 2);
    assert!(
        submitted["build"].as_str().unwrap().ends_with("/cart"),
        "{submitted}"
    );
    assert!(exists(&kc, &wf("cart")));
}
