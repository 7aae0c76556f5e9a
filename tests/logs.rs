//! `buildplane logs`. Pod listing and step ordering run against the real API server (pods are
//! created by hand: there is no Argo controller or kubelet). The test API server has no kubelet,
//! so it cannot serve container logs: the log streaming test replays a recorded HTTP exchange
//! (discovery, the pod list Argo's pods would give, and each pod's log) from a loopback server.

mod cluster;

use buildplane::kube::{ClientSettings, Kube};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WF: &str = "greeter-build-0a1b2c3d-ccd3e8e5";
const STEPS: [&str; 4] = [
    "clone-step",
    "build-step",
    "push-step",
    "workload-create-step",
];

fn pod(ns: &str, wf: &str, i: usize, step: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{wf}-{step}-{}", 1000 + i), "namespace": ns,
            "labels": {"workflows.argoproj.io/workflow": wf},
            "annotations": {"workflows.argoproj.io/node-name": format!("{wf}[{i}].{step}")}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
}

#[test]
fn step_pods_are_listed_in_step_order_from_the_api_server() {
    let kc = cluster::kubeconfig();
    let ns = cluster::unique_name("logs");
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": ns}})),
        "application/json",
    );
    assert_eq!(code, 201);
    // Created out of order, plus a pod of another Workflow.
    for i in [2, 0, 3, 1] {
        let (code, body) = cluster::raw_request(
            &kc,
            None,
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            Some(&pod(&ns, WF, i, STEPS[i])),
            "application/json",
        );
        assert_eq!(code, 201, "{body}");
    }
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        Some(&pod(&ns, "other-wf", 0, "clone-step")),
        "application/json",
    );
    assert_eq!(code, 201);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pods = rt.block_on(async {
        let kube = Kube::connect(&ClientSettings {
            kubeconfig: Some(kc.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        buildplane::pipeline::logs::step_pods(&kube, buildplane::engine::DEFAULT, &ns, WF)
            .await
            .unwrap()
    });
    let steps: Vec<&str> = pods.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, STEPS);
    assert!(pods.iter().all(|p| p.pod.starts_with(WF)));
}

/// A loopback HTTP server answering from a recording; remembers the request lines.
fn replay(ns: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            seen2.lock().unwrap().push(path.clone());
            let (ctype, body) = if path == "/api/v1" {
                ("application/json", json!({"kind": "APIResourceList", "groupVersion": "v1",
                    "resources": [{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"]}]}).to_string())
            } else if path.starts_with(&format!("/api/v1/namespaces/{ns}/pods?")) {
                // Listed newest first, as a server may return them.
                let items: Vec<Value> = (0..4).rev().map(|i| pod(&ns, WF, i, STEPS[i])).collect();
                (
                    "application/json",
                    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                        .to_string(),
                )
            } else if let Some(rest) = path.strip_prefix(&format!("/api/v1/namespaces/{ns}/pods/"))
            {
                let pod = rest.split('/').next().unwrap();
                (
                    "text/plain",
                    format!("log of {pod} line 1\nlog of {pod} line 2\n"),
                )
            } else {
                (
                    "application/json",
                    json!({"kind": "Status", "code": 404}).to_string(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

fn kubeconfig_for(server: &str, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n")).unwrap();
    path
}

#[test]
fn logs_stream_in_step_order_recorded_exchange() {
    let (server, seen) = replay("openchoreo-ci-default");
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig_for(&server, dir.path());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_buildplane"))
            .current_dir(ROOT)
            .args([
                "logs",
                "fixtures/builds/greeter-docker.yaml",
                "--kubeconfig",
            ])
            .arg(&kc)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("=== ")).collect();
    assert_eq!(headers.len(), 4, "{out}");
    for (h, step) in headers.iter().zip(STEPS) {
        assert!(
            h.starts_with(&format!("=== greeter-build-0a1b2c3d {step} ({WF}-{step}-")),
            "{h}"
        );
    }
    let first_build_line = out.find("build-step-1001 line 1").unwrap();
    assert!(
        out.find("clone-step-1000 line 2").unwrap() < first_build_line,
        "{out}"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.contains(
            "labelSelector=workflows.argoproj.io%2Fworkflow%3Dgreeter-build-0a1b2c3d-ccd3e8e5"
        )),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.contains("/log?"))
            .all(|r| r.contains("container=main")),
        "{requests:?}"
    );

    let o = run(&["--step", "build"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        out.lines().filter(|l| l.starts_with("=== ")).count(),
        1,
        "{out}"
    );
    assert!(
        out.contains("build-step-1001 line 2") && !out.contains("clone-step"),
        "{out}"
    );
}
