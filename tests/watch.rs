//! `buildplane watch` against the real API server. The test plays the Argo controller the
//! simplest way: it writes the recorded `.status` of fixtures/argo-status (reference §3 and §4,
//! what Argo v3.6 writes) into the Workflow while `watch` runs, so the watch sees the change
//! as an event, not in its first list.

mod cluster;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WF: &str = "reading-list-service-build-7c9e4a1b-8081ce9a";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT).env_remove("KUBECONFIG");
    c
}

/// The reading-list Build (the Workflow of the recorded status) in a fresh organization.
fn build_in_new_org(dir: &Path) -> (String, PathBuf) {
    let org = cluster::unique_name("w");
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("fixtures/builds/reading-list-commit.yaml"))
            .unwrap()
            .replace("namespace: default", &format!("namespace: {org}"));
    let file = dir.join("build.yaml");
    std::fs::write(&file, text).unwrap();
    (org, file)
}

/// Adds an annotation of the build's own to the status's `workload-cr` output (one under
/// `buildplane.openchoreo.dev/` would have the Workload refused: those keys are reserved).
fn annotate_output(status: &mut Value) {
    let nodes = status["status"]["nodes"].as_object_mut().unwrap();
    let node = nodes
        .values_mut()
        .find(|n| n["templateName"] == "workload-create-step")
        .unwrap();
    let out = node["outputs"]["parameters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == "workload-cr")
        .unwrap();
    let cr = out["value"].as_str().unwrap().replace(
        "metadata:\n    name: reading-list-service\n",
        "metadata:\n    name: reading-list-service\n    annotations:\n        \
         team.example.com/note: kept\n",
    );
    assert!(
        cr.contains("note: kept"),
        "the fixture's workload-cr changed: {cr}"
    );
    out["value"] = json!(cr);
}

fn recorded_status(fixture: &str) -> Value {
    let v: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(Path::new(ROOT).join(fixture)).unwrap())
            .unwrap();
    json!({"status": v["status"]})
}

/// Applies the build, starts `watch`, writes `status` into the Workflow, waits for the watch.
fn run(kc: &Path, file: &Path, org: &str, status: &Value, emit_dir: &Path) -> Output {
    run_with(kc, file, org, status, emit_dir, &[])
}

/// [`run`], with more flags for `watch`.
fn run_with(
    kc: &Path,
    file: &Path,
    org: &str,
    status: &Value,
    emit_dir: &Path,
    extra: &[&str],
) -> Output {
    let a = bin()
        .args(["apply"])
        .arg(file)
        .args(["--inventory", org, "--kubeconfig"])
        .arg(kc)
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let child = bin()
        .arg("watch")
        .arg(file)
        .args(["--timeout", "60s", "--emit-dir"])
        .arg(emit_dir)
        .args(extra)
        .arg("--kubeconfig")
        .arg(kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let path = format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{WF}");
    let (code, body) = cluster::raw_request(
        kc,
        None,
        "PATCH",
        &path,
        Some(status),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    child.wait_with_output().unwrap()
}

#[test]
fn a_succeeded_build_emits_its_workload_once() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let emit = dir.path().join("out");
    let mut status = recorded_status("fixtures/argo-status/succeeded.yaml");
    annotate_output(&mut status);
    let o = run(&kc, &file, &org, &status, &emit);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for step in [
        "clone-step",
        "build-step",
        "push-step",
        "workload-create-step",
    ] {
        assert!(
            out.contains(&format!(
                "{org}/reading-list-service-build-7c9e4a1b {step} Succeeded"
            )),
            "{out}"
        );
    }
    assert!(
        out.contains("image localhost:30003/default-reading-list-service:default-4f2a9c1e"),
        "{out}"
    );
    // Conditions exactly as upstream's controller sets them.
    for c in [
        "BuildInitiated True BuildInitiated Build initialization started",
        "BuildTriggered True BuildTriggered Build has been triggered",
        "BuildCompleted True BuildCompleted Build completed successfully",
        "WorkloadUpdated True WorkloadUpdated Workload updated successfully",
    ] {
        assert!(out.contains(c), "{c} missing: {out}");
    }
    let written = emit.join(format!("{org}/default/reading-list-service/workload.yaml"));
    let workload: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(workload["metadata"]["namespace"], org.as_str());
    assert_eq!(workload["spec"]["owner"]["projectName"], "default");
    assert_eq!(
        workload["spec"]["containers"]["main"]["image"],
        "localhost:30003/default-reading-list-service:default-4f2a9c1e"
    );
    // Where it came from: the Build, its Workflow, the commit clone-step built, the spec hash
    // the Workflow carries; beside the output's own annotation.
    let (_, wf) = cluster::kubectl_like_get(
        &kc,
        None,
        &format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{WF}"),
    );
    // And what the Workflow says it was rendered from: the template, the values, the version.
    let from_wf = |k: &str| {
        let v = &wf["metadata"]["annotations"][format!("buildplane.openchoreo.dev/{k}")];
        assert!(v.is_string(), "{k}: {wf}");
        v.clone()
    };
    assert_eq!(
        workload["metadata"]["annotations"],
        json!({
            "buildplane.openchoreo.dev/build": format!("{org}/reading-list-service-build-7c9e4a1b"),
            "buildplane.openchoreo.dev/build-object": format!("openchoreo-ci-{org}/{WF}"),
            "buildplane.openchoreo.dev/revision": "4f2a9c1e",
            "buildplane.openchoreo.dev/spec-hash": from_wf("spec-hash"),
            "buildplane.openchoreo.dev/template-digest": from_wf("template-digest"),
            "buildplane.openchoreo.dev/values-digest": from_wf("values-digest"),
            "buildplane.openchoreo.dev/version": from_wf("version"),
            "team.example.com/note": "kept",
        })
    );
    // Watching the finished build again emits nothing new.
    let again = bin()
        .arg("watch")
        .arg(&file)
        .arg("--emit-dir")
        .arg(&emit)
        .arg("--kubeconfig")
        .arg(&kc)
        .output()
        .unwrap();
    let out2 = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{out2}");
    assert!(
        out2.contains("unchanged ") && !out2.contains("wrote "),
        "{out2}"
    );
}

#[test]
fn a_failed_build_exits_1_with_build_failed() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let emit = dir.path().join("out");
    let o = run(
        &kc,
        &file,
        &org,
        &recorded_status("fixtures/argo-status/build-step-failed.yaml"),
        &emit,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("build-step Failed"), "{out}");
    assert!(
        out.contains("BuildCompleted False BuildFailed Build workflow failed"),
        "{out}"
    );
    assert!(!out.contains("WorkloadUpdated"), "{out}");
    assert!(!emit.exists(), "a failed build emitted something");
}

#[test]
fn a_deleted_workflow_ends_the_watch_as_failed() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let a = bin()
        .args(["apply"])
        .arg(&file)
        .args(["--inventory", &org, "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    assert!(a.status.success());
    let child = bin()
        .arg("watch")
        .arg(&file)
        .args(["--timeout", "60s", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let path = format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{WF}");
    assert_eq!(
        cluster::raw_request(&kc, None, "DELETE", &path, None, "application/json").0,
        200
    );
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "finished");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("deleted before it finished"),
        "{last}"
    );
}

#[test]
fn timeout_is_exit_2() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let a = bin()
        .args(["apply"])
        .arg(&file)
        .args(["--inventory", &org, "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    assert!(a.status.success());
    let o = bin()
        .arg("watch")
        .arg(&file)
        .args(["--timeout", "2s", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("timed out after 2 s; still running:"));
}

#[test]
fn the_workload_is_applied_into_the_control_plane() {
    let kc = cluster::with_argo();
    let cp = cluster::start_private();
    // The control plane gets the Workload CRD generated from our types.
    cluster::install_workload_crd(&cp.kubeconfig);
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    assert_eq!(
        cluster::raw_request(
            &cp.kubeconfig,
            None,
            "POST",
            "/api/v1/namespaces",
            Some(&json!({"metadata": {"name": org}})),
            "application/json"
        )
        .0,
        201
    );
    let a = bin()
        .args(["apply"])
        .arg(&file)
        .args(["--inventory", &org, "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    assert!(a.status.success());
    let path = format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{WF}");
    let status = recorded_status("fixtures/argo-status/succeeded.yaml");
    assert_eq!(
        cluster::raw_request(
            &kc,
            None,
            "PATCH",
            &path,
            Some(&status),
            "application/merge-patch+json"
        )
        .0,
        200
    );
    let watch = |kc: &Path| {
        bin()
            .arg("watch")
            .arg(&file)
            .args(["--timeout", "60s", "--emit-cluster", "--kubeconfig"])
            .arg(kc)
            .arg("--control-plane-kubeconfig")
            .arg(&cp.kubeconfig)
            .output()
            .unwrap()
    };
    let o = watch(&kc);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("applied Workload/{org}/reading-list-service")),
        "{out}"
    );
    let (code, w) = cluster::kubectl_like_get(
        &cp.kubeconfig,
        None,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/reading-list-service"),
    );
    assert_eq!(code, 200);
    assert_eq!(w["spec"]["owner"]["componentName"], "reading-list-service");
    assert_eq!(cluster::managers(&w), ["build-controller"]);
    let annotation =
        |k: &str| w["metadata"]["annotations"][format!("buildplane.openchoreo.dev/{k}")].clone();
    assert_eq!(annotation("revision"), "4f2a9c1e", "{w}");
    assert_eq!(
        annotation("build-object"),
        json!(format!("openchoreo-ci-{org}/{WF}"))
    );
    // Not in the build plane.
    assert_eq!(
        cluster::kubectl_like_get(&kc, None, &format!("/api/v1/namespaces/{org}")).0,
        404
    );
    let again = watch(&kc);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        out.contains(&format!("unchanged Workload/{org}/reading-list-service")),
        "{out}"
    );
}

#[test]
fn apply_wait_follows_the_builds_it_applied() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let emit = dir.path().join("out");
    let child = bin()
        .arg("apply")
        .arg(&file)
        .args([
            "--inventory",
            &org,
            "--wait",
            "--timeout",
            "60s",
            "--emit-dir",
        ])
        .arg(&emit)
        .arg("--kubeconfig")
        .arg(&kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Play the controller once the Workflow exists.
    let path = format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{WF}");
    let status = recorded_status("fixtures/argo-status/build-step-failed.yaml");
    let mut code = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        code = cluster::raw_request(
            &kc,
            None,
            "PATCH",
            &path,
            Some(&status),
            "application/merge-patch+json",
        )
        .0;
        if code == 200 {
            break;
        }
    }
    assert_eq!(code, 200);
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("Workflow/openchoreo-ci-{org}/{WF} created")),
        "{out}"
    );
    assert!(
        out.contains("BuildCompleted False BuildFailed Build workflow failed"),
        "{out}"
    );
}

/// The recorded success with its nodes moved into `compressedNodes` (gzip, then base64), as
/// Argo stores a status too large for the object.
fn compressed(status: &Value) -> Value {
    use base64::Engine as _;
    use std::io::Write as _;
    let mut s = status.clone();
    let nodes = s["status"]["nodes"].take();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(nodes.to_string().as_bytes()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    s["status"]["nodes"] = Value::Null;
    s["status"]["compressedNodes"] = json!(b64);
    s
}

#[test]
fn compressed_nodes_are_harvested() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let emit = dir.path().join("out");
    let status = compressed(&recorded_status("fixtures/argo-status/succeeded.yaml"));
    let o = run(&kc, &file, &org, &status, &emit);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("image localhost:30003/default-reading-list-service:default-4f2a9c1e"),
        "{out}"
    );
    assert!(
        emit.join(format!("{org}/default/reading-list-service/workload.yaml"))
            .exists()
    );
}

#[test]
fn a_success_without_workload_is_not_reported_as_updated() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let emit = dir.path().join("out");
    let mut status = recorded_status("fixtures/argo-status/succeeded.yaml");
    for node in status["status"]["nodes"]
        .as_object_mut()
        .unwrap()
        .values_mut()
    {
        if node["templateName"] == "workload-create-step" {
            node["outputs"]["parameters"][0]
                .as_object_mut()
                .unwrap()
                .remove("value");
        }
    }
    let o = run(&kc, &file, &org, &status, &emit);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("BuildCompleted True BuildCompleted Build completed successfully"),
        "{out}"
    );
    assert!(
        out.contains("WorkloadUpdated False WorkloadUpdateFailed"),
        "{out}"
    );
    assert!(!out.contains("WorkloadUpdated True"), "{out}");
    assert!(!emit.exists());
}

/// The built-in Workload envelope with its labels block replaced by `labels`.
fn envelope(dir: &Path, labels: &str, spec: Option<&str>) -> PathBuf {
    let builtin = std::fs::read_to_string(Path::new(ROOT).join("templates/workload.yaml")).unwrap();
    let block = "[%- if workload.metadata.labels is defined %]\n  labels: [[ workload.metadata.labels | tojson ]]\n[%- endif %]";
    assert!(builtin.contains(block), "templates/workload.yaml changed");
    let mut text = builtin.replace(block, labels);
    if let Some(spec) = spec {
        text = text.replace("spec: [[ workload.spec | tojson ]]", spec);
    }
    let path = dir.join("envelope.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_emit_template_adds_labels_and_one_that_changes_the_workload_emits_nothing() {
    let kc = cluster::with_argo();
    let status = recorded_status("fixtures/argo-status/succeeded.yaml");
    // A build of a fresh organization followed with envelope `labels`/`spec`: watch's output,
    // the emitted file's path, and the envelope's path.
    let emit_with = |dir: &Path, labels: &str, spec: Option<&str>| {
        let (org, file) = build_in_new_org(dir);
        let emit = dir.join("out");
        let e = envelope(dir, labels, spec);
        let flags = ["--emit-template", e.to_str().unwrap()];
        let o = run_with(&kc, &file, &org, &status, &emit, &flags);
        let written = emit.join(format!("{org}/default/reading-list-service/workload.yaml"));
        (o, written, e, file)
    };
    let dir = tempfile::tempdir().unwrap();
    let labels = "  labels:\n    team.example.com/owner: builds\n[%- for k, v in (workload.metadata.labels | default({})) | items %]\n    [[ k | tojson ]]: [[ v | tojson ]]\n[%- endfor %]";
    let (o, written, _, _) = emit_with(dir.path(), labels, None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let workload: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(
        workload["metadata"]["labels"]["team.example.com/owner"],
        "builds"
    );
    assert_eq!(
        workload["metadata"]["annotations"]["buildplane.openchoreo.dev/revision"],
        "4f2a9c1e"
    );

    // An envelope that changes the spec: nothing is written, the build's Workload is refused.
    let dir = tempfile::tempdir().unwrap();
    let spec = "spec: {owner: {projectName: other, componentName: x}}";
    let (o, written, e, file) = emit_with(dir.path(), "", Some(spec));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("spec must be"), "{out}");
    assert!(!written.exists());

    // One that does not parse: exit 2 before any request.
    std::fs::write(&e, "[% if %]").unwrap();
    let o = bin()
        .arg("watch")
        .arg(&file)
        .args(["--emit-dir", "/nonexistent", "--emit-template"])
        .arg(&e)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: --emit-template: "), "{err}");
}
