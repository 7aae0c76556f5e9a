//! Tenant isolation at the emit edge, against the real API server: what one team's build
//! outputs can never do to another team's Workloads or to the terminal that watches it. The test
//! plays the Argo controller as tests/watch.rs does: it writes a recorded `.status` (with the
//! `workload-cr` output the attack needs) into the Workflow while `watch` runs.

mod cluster;
mod gitd;

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

/// The reading-list Build (owner `default/reading-list-service`) in a fresh organization.
fn build_in_new_org(dir: &Path) -> (String, PathBuf) {
    let org = cluster::unique_name("iso");
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("fixtures/builds/reading-list-commit.yaml"))
            .unwrap()
            .replace("namespace: default", &format!("namespace: {org}"));
    let file = dir.join("build.yaml");
    std::fs::write(&file, text).unwrap();
    (org, file)
}

/// The recorded succeeded status with `workload_cr` as the build's `workload-cr` output.
fn status_with_output(workload_cr: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join("fixtures/argo-status/succeeded.yaml"))
        .unwrap();
    let mut v: Value = serde_saphyr::from_str(&text).unwrap();
    let mut replaced = 0;
    for node in v["status"]["nodes"].as_object_mut().unwrap().values_mut() {
        if let Some(params) = node["outputs"]["parameters"].as_array_mut() {
            for p in params.iter_mut().filter(|p| p["name"] == "workload-cr") {
                p["value"] = json!(workload_cr);
                replaced += 1;
            }
        }
    }
    assert_eq!(replaced, 1);
    json!({"status": v["status"]})
}

/// A Workload as the upstream CLI writes it: `name`, owned by `project/component`, `image`.
fn workload_cr(name: &str, project: &str, component: &str, image: &str) -> Value {
    json!({
        "apiVersion": "openchoreo.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {"name": name},
        "spec": {
            "owner": {"projectName": project, "componentName": component},
            "containers": {"main": {"image": image}}
        }
    })
}

/// Applies the Build, starts `watch -o json` with `args`, writes `status` into the Workflow,
/// and returns the watch's output and its one `finished` line.
fn apply_and_watch(kc: &Path, file: &Path, org: &str, status: &Value, args: &[&str]) -> Output {
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
        .args(["--timeout", "60s", "--kubeconfig"])
        .arg(kc)
        .args(args)
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

fn finished(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "finished")
        .unwrap_or_else(|| {
            panic!(
                "no finished line: {out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        })
}

fn workload_path(org: &str, name: &str) -> String {
    format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/{name}")
}

fn create(kc: &Path, path: &str, body: &Value) {
    let (code, b) = cluster::raw_request(kc, None, "POST", path, Some(body), "application/json");
    assert_eq!(code, 201, "{b}");
}

/// Attack 1: with Workload `org/pay` (owner default/pay) in the control plane, the
/// reading-list build's output names `pay`. The control plane's `pay` keeps its image and
/// owner; the build ends `workload-conflict` (exit 1) with its own condition reason.
#[test]
fn a_build_never_overwrites_another_components_workload_in_the_cluster() {
    let kc = cluster::with_argo();
    let cp = cluster::start_private();
    cluster::install_workload_crd(&cp.kubeconfig);
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    create(
        &cp.kubeconfig,
        "/api/v1/namespaces",
        &json!({"metadata": {"name": org}}),
    );
    let mut pay = workload_cr("pay", "default", "pay", "registry.test/pay:1");
    pay["metadata"]["namespace"] = json!(org);
    create(
        &cp.kubeconfig,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads"),
        &pay,
    );
    let hostile = workload_cr(
        "pay",
        "default",
        "reading-list-service",
        "registry.test/reading-list:evil",
    );
    let status = status_with_output(&serde_json::to_string(&hostile).unwrap());
    let cpk = cp.kubeconfig.to_str().unwrap();
    let o = apply_and_watch(
        &kc,
        &file,
        &org,
        &status,
        &[
            "-o",
            "json",
            "--emit-cluster",
            "--control-plane-kubeconfig",
            cpk,
        ],
    );
    let f = finished(&o);
    assert_eq!(o.status.code(), Some(1), "{f}");
    assert_eq!(f["result"], "workload-conflict", "{f}");
    let last = f["conditions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "WorkloadUpdated");
    assert_eq!(last["status"], "False");
    assert_eq!(last["reason"], "WorkloadOwnedByAnotherComponent");
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "Workload {org}/pay belongs to component default/pay"
        )),
        "{message}"
    );
    let (code, live) = cluster::kubectl_like_get(&cp.kubeconfig, None, &workload_path(&org, "pay"));
    assert_eq!(code, 200);
    assert_eq!(
        live["spec"]["containers"]["main"]["image"],
        "registry.test/pay:1"
    );
    assert_eq!(live["spec"]["owner"]["componentName"], "pay");
    assert!(
        !cluster::managers(&live).contains(&"build-controller".to_owned()),
        "{live}"
    );
}

/// Attack 1, file targets: a path template that puts two components in one file. The file
/// in the directory and on the Git branch holds default/pay's Workload; the reading-list
/// build refuses to replace either, and both keep their content byte for byte.
#[test]
fn directory_and_git_targets_keep_another_components_workload_file() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let rel = format!("{org}/default/workload.yaml");
    let theirs = format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: pay\n  \
         namespace: {org}\nspec:\n  owner:\n    projectName: default\n    componentName: pay\n  \
         containers:\n    main:\n      image: registry.test/pay:1\n"
    );
    let emit_dir = dir.path().join("out");
    std::fs::create_dir_all(emit_dir.join(&org).join("default")).unwrap();
    std::fs::write(emit_dir.join(&rel), &theirs).unwrap();

    let daemon = gitd::Daemon::start();
    let (bare, url) = daemon.repo("workloads");
    let seed = dir.path().join("seed");
    gitd::git(
        dir.path(),
        &["clone", gitd::path_str(&bare), gitd::path_str(&seed)],
    );
    std::fs::create_dir_all(seed.join(&org).join("default")).unwrap();
    std::fs::write(seed.join(&rel), &theirs).unwrap();
    gitd::git(&seed, &["add", "."]);
    gitd::git(&seed, &["commit", "-m", "pay's Workload"]);
    gitd::git(&seed, &["push", "origin", "HEAD:main"]);
    let tip = gitd::git(&seed, &["rev-parse", "HEAD"]);

    let ours = workload_cr(
        "reading-list-service",
        "default",
        "reading-list-service",
        "registry.test/reading-list:2",
    );
    let status = status_with_output(&serde_json::to_string(&ours).unwrap());
    let o = apply_and_watch(
        &kc,
        &file,
        &org,
        &status,
        &[
            "-o",
            "json",
            "--emit-path",
            "{org}/{project}/workload.yaml",
            "--emit-dir",
            emit_dir.to_str().unwrap(),
            "--emit-git",
            &url,
        ],
    );
    let f = finished(&o);
    assert_eq!(o.status.code(), Some(1), "{f}");
    assert_eq!(f["result"], "workload-conflict", "{f}");
    let notes: Vec<&str> = f["emitted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(notes.len(), 2, "{f}");
    for (note, target) in notes.iter().zip(["dir", "git"]) {
        assert!(
            note.starts_with(&format!("not emitted ({target}): "))
                && note.contains("belongs to component default/pay"),
            "{note}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(emit_dir.join(&rel)).unwrap(),
        theirs
    );
    let after = gitd::git(&bare, &["rev-parse", "main"]);
    assert_eq!(after, tip, "nothing was pushed over pay's file");
}

/// Attack 5: a build output whose key is a terminal control sequence. What `watch` prints
/// (plain text here) holds no escape byte, and the conditions the controller would write
/// (the JSON line's, the same function) hold the escaped text.
#[test]
fn control_sequences_from_a_build_never_reach_the_terminal_or_the_conditions() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let (org, file) = build_in_new_org(dir.path());
    let mut hostile = workload_cr(
        "reading-list-service",
        "default",
        "reading-list-service",
        "registry.test/reading-list:2",
    );
    hostile["spec"]["\u{1b}[2J\u{1b}]0;owned\u{7}"] = json!(1);
    let mut status = status_with_output(&serde_json::to_string(&hostile).unwrap());
    status["status"]["message"] = json!("done\u{1b}[31m red");
    let emit_dir = dir.path().join("out");
    let text = apply_and_watch(
        &kc,
        &file,
        &org,
        &status,
        &["--emit-dir", emit_dir.to_str().unwrap()],
    );
    assert_eq!(text.status.code(), Some(1));
    for stream in [&text.stdout, &text.stderr] {
        assert!(
            !stream.iter().any(|&b| b == 0x1b || b == 0x07),
            "{}",
            String::from_utf8_lossy(stream)
        );
    }
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("spec.\\e[2J\\e]0;owned\\x07"), "{out}");

    let json_run = bin()
        .arg("watch")
        .arg(&file)
        .args(["--timeout", "60s", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    let f = finished(&json_run);
    assert_eq!(f["result"], "invalid-workload", "{f}");
    let conditions = serde_json::to_string(&f["conditions"]).unwrap();
    let decoded: Value = serde_json::from_str(&conditions).unwrap();
    for c in decoded.as_array().unwrap() {
        let m = c["message"].as_str().unwrap();
        assert!(!m.contains(['\u{1b}', '\u{7}']), "{m:?}");
    }
    assert!(conditions.contains("\\\\e[2J"), "{conditions}");
    assert!(
        f["message"].as_str().unwrap().contains("done\\e[31m red"),
        "{f}"
    );
}

/// Attack 8: harvest refuses what the API server refuses, before any target sees it: an
/// invalid label key, an invalid label value, and a 600 KB annotation. The same objects are
/// sent to the real API server first to show it refuses each (422), and no file is written.
#[test]
fn harvest_refuses_workloads_the_api_server_would_refuse() {
    let kc = cluster::with_argo();
    cluster::install_workload_crd(&kc);
    let base = || {
        workload_cr(
            "reading-list-service",
            "default",
            "reading-list-service",
            "registry.test/reading-list:2",
        )
    };
    let cases: [(&str, Value); 3] = [
        ("labels", json!({"labels": {"bad key!": "v"}})),
        ("labels", json!({"labels": {"tier": "not a value"}})),
        (
            "annotations",
            json!({"annotations": {"note": "x".repeat(600 * 1024)}}),
        ),
    ];
    for (what, meta) in cases {
        let mut w = base();
        w["metadata"]
            .as_object_mut()
            .unwrap()
            .extend(meta.as_object().unwrap().clone());
        let dir = tempfile::tempdir().unwrap();
        let (org, file) = build_in_new_org(dir.path());
        // The API server's own verdict on this object.
        create(
            &kc,
            "/api/v1/namespaces",
            &json!({"metadata": {"name": org}}),
        );
        let mut direct = w.clone();
        direct["metadata"]["namespace"] = json!(org);
        let (code, body) = cluster::raw_request(
            &kc,
            None,
            "POST",
            &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads"),
            Some(&direct),
            "application/json",
        );
        assert_eq!(code, 422, "the API server refuses {what}: {body}");

        let status = status_with_output(&serde_json::to_string(&w).unwrap());
        let emit_dir = dir.path().join("out");
        let o = apply_and_watch(
            &kc,
            &file,
            &org,
            &status,
            &["-o", "json", "--emit-dir", emit_dir.to_str().unwrap()],
        );
        let f = finished(&o);
        assert_eq!(o.status.code(), Some(1), "{f}");
        assert_eq!(f["result"], "invalid-workload", "{f}");
        let err = f["workloadError"].as_str().unwrap();
        assert!(err.contains(&format!("metadata.{what}")), "{err}");
        assert!(!emit_dir.exists(), "nothing written for {what}");
    }
}
