//! `buildplane check` against a real API server of its own (the test creates Nodes and edits
//! the controller's status, which must not reach other tests): every finding changes with
//! the cluster state it reads. The API server has no kubelet and no Argo controller, so the
//! test plays both: it creates the Node objects and writes the Deployment's status.

mod cluster;

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn bp(kc: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KUBECONFIG")
        .args(args)
        .arg("--kubeconfig")
        .arg(kc)
        .output()
        .unwrap()
}

/// Runs `check -o json`: the exit code and each check's status and message.
fn check(kc: &Path, extra: &[&str]) -> (Option<i32>, Vec<(String, String, String)>) {
    let mut args = vec!["check", "-o", "json"];
    args.extend_from_slice(extra);
    let o = bp(kc, &args);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let findings = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (o.status.code(), findings)
}

fn status_of<'a>(findings: &'a [(String, String, String)], check: &str) -> (&'a str, &'a str) {
    findings
        .iter()
        .find(|f| f.0 == check)
        .map(|f| (f.1.as_str(), f.2.as_str()))
        .unwrap_or_else(|| panic!("no {check} in {findings:?}"))
}

fn request(kc: &Path, method: &str, path: &str, body: Value, patch: bool) {
    let ct = if patch {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let (code, answer) = cluster::raw_request(kc, None, method, path, Some(&body), ct);
    assert!(
        (200..300).contains(&code),
        "{method} {path}: {code} {answer}"
    );
}

#[test]
fn check_reports_each_missing_part_of_a_build_plane_until_it_is_ready() {
    let c = cluster::start_private();
    let kc = c.kubeconfig.as_path();

    // An empty cluster: no Argo at all.
    let (code, f) = check(kc, &[]);
    assert_eq!(code, Some(1), "{f:?}");
    let (s, m) = status_of(&f, "argo-crds");
    assert_eq!(s, "fail");
    assert!(m.contains("workflows.argoproj.io"), "{m}");
    assert_eq!(status_of(&f, "argo-controller").0, "fail");
    assert_eq!(status_of(&f, "templates").0, "fail");

    // Installed, but the controller has no available replica and no node can run builds.
    let o = bp(kc, &["apply", "--install"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, f) = check(kc, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&f, "argo-crds").0, "ok", "{f:?}");
    assert_eq!(status_of(&f, "build-namespaces").0, "ok", "{f:?}");
    assert_eq!(status_of(&f, "templates").0, "ok", "{f:?}");
    let (s, m) = status_of(&f, "argo-controller");
    assert_eq!(s, "fail");
    assert!(m.contains("0 of 1 replicas available"), "{m}");
    let (s, m) = status_of(&f, "nodes");
    assert_eq!(s, "fail");
    assert!(m.contains("openchoreo.dev/noderole=workflow-runner"), "{m}");

    // The controller runs; a Ready node carries the label: nothing fails (the registry is
    // not on this cluster: a warning).
    request(
        kc,
        "PATCH",
        "/apis/apps/v1/namespaces/openchoreo-build-plane/deployments/argo-workflow-controller/status",
        json!({"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
        true,
    );
    request(
        kc,
        "POST",
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "runner-1", "labels": {"openchoreo.dev/noderole": "workflow-runner"}}}),
        false,
    );
    // Labelled but not Ready yet.
    let (_, f) = check(kc, &[]);
    assert!(status_of(&f, "nodes").1.contains("none is Ready"), "{f:?}");
    request(
        kc,
        "PATCH",
        "/api/v1/nodes/runner-1/status",
        json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        true,
    );
    let (code, f) = check(kc, &[]);
    assert_eq!(code, Some(0), "{f:?}");
    assert_eq!(status_of(&f, "nodes").0, "ok");
    assert_eq!(status_of(&f, "registry").0, "warn");
    // Values that select other nodes: none matches.
    let (_, f) = check(
        kc,
        &["--set", "global.defaultResources.nodeAffinity.values={gpu}"],
    );
    assert_eq!(status_of(&f, "nodes").0, "fail", "{f:?}");

    // A template edited by hand, and a build namespace that refuses hostPath volumes.
    request(
        kc,
        "PATCH",
        "/apis/argoproj.io/v1alpha1/clusterworkflowtemplates/docker",
        json!({"spec": {"entrypoint": "edited"}}),
        true,
    );
    request(
        kc,
        "PATCH",
        "/api/v1/namespaces/openchoreo-ci-default",
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
        true,
    );
    let (code, f) = check(kc, &[]);
    assert_eq!(code, Some(1));
    let (s, m) = status_of(&f, "templates");
    assert_eq!((s, m.contains("docker")), ("fail", true), "{m}");
    let (s, m) = status_of(&f, "build-cache");
    assert_eq!(s, "fail");
    assert!(m.contains("openchoreo-ci-default (baseline)"), "{m}");
    // The text form: one line per finding and a count.
    let o = bp(kc, &["check"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("fail  templates")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("2 failed"), "{text}");
}

#[test]
fn bad_values_and_an_unreachable_server_are_exit_2_with_one_line() {
    let dead = cluster::kubeconfig_pointing_at("127.0.0.1:9".parse().unwrap());
    let o = bp(dead.path(), &["check"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let o = bp(
        dead.path(),
        &["check", "--set", "global.defaultResources.enabled=maybe"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("global.defaultResources.enabled"), "{err}");
}
