//! `buildplane controller` with real API servers: a private control plane (Builds, BuildPlanes,
//! kubeconfig Secrets, Workloads), the shared cluster and a private one as build planes with
//! the Argo stand-in running the builds. The controller runs as the real binary.

mod argo;
mod cluster;
mod scrape;

use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The values that leave out the PodDisruptionBudget, which needs Kubernetes 1.21.
const NO_BUDGET: &str = "controller.podDisruptionBudget=false";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT).env_remove("KUBECONFIG");
    c
}

/// A running controller; stopped with SIGTERM when dropped (its log is printed on failure).
struct Running {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("controller log:\n{}", self.log());
        }
    }
}

fn start_controller(cp: &Path, extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("controller.log");
    let child = bin()
        .args(["controller", "--kubeconfig"])
        .arg(cp)
        .args(extra)
        .env("BUILDPLANE_LOG", "buildplane=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Running {
        child,
        log,
        _dir: dir,
    }
}

/// Installs the control plane's CRDs (and the controller's RBAC) with `apply --control-plane`.
/// The test API server (v1.20) predates policy/v1: no PodDisruptionBudget.
fn install_control_plane(cp: &Path) {
    let o = bin()
        .args([
            "apply",
            "--control-plane",
            "--set",
            NO_BUDGET,
            "--kubeconfig",
        ])
        .arg(cp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A kubeconfig for the controller's own ServiceAccount (`apply --control-plane` made it and its
/// ClusterRole), with a token from the TokenRequest API: the controller then runs with exactly
/// the permissions the install grants.
fn service_account_kubeconfig(cp: &Path, dir: &Path) -> PathBuf {
    let (code, resp) = cluster::raw_request(
        cp,
        None,
        "POST",
        "/api/v1/namespaces/buildplane-system/serviceaccounts/buildplane-controller/token",
        Some(
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}}),
        ),
        "application/json",
    );
    assert_eq!(code, 201, "{resp}");
    let token = resp["status"]["token"].as_str().unwrap();
    let mut kc: Value = serde_saphyr::from_str(&std::fs::read_to_string(cp).unwrap()).unwrap();
    for user in kc["users"].as_array_mut().unwrap() {
        user["user"] = json!({"token": token});
    }
    let path = dir.join("controller-kubeconfig.yaml");
    std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
    path
}

fn post(kc: &Path, path: &str, body: Value) {
    let (code, resp) =
        cluster::raw_request(kc, None, "POST", path, Some(&body), "application/json");
    assert_eq!(code, 201, "POST {path}: {resp}");
}

fn merge(kc: &Path, path: &str, body: Value) {
    let (code, resp) = cluster::raw_request(
        kc,
        None,
        "PATCH",
        path,
        Some(&body),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "PATCH {path}: {resp}");
}

fn namespace(kc: &Path, name: &str) {
    post(
        kc,
        "/api/v1/namespaces",
        json!({"metadata": {"name": name}}),
    );
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The kubeconfig of `kc` with `context` current, as a Secret would hold it: the CA inline (a
/// Secret's kubeconfig may name no file).
fn kubeconfig_text(kc: &Path, context: &str) -> String {
    let mut doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(kc).unwrap()).unwrap();
    for named in doc["clusters"].as_array_mut().unwrap() {
        let cluster = named["cluster"].as_object_mut().unwrap();
        if let Some(path) = cluster.remove("certificate-authority") {
            let pem = std::fs::read(path.as_str().unwrap()).unwrap();
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            cluster.insert("certificate-authority-data".into(), json!(data));
        }
    }
    doc["current-context"] = json!(context);
    doc.to_string()
}

fn secret(kc: &Path, ns: &str, name: &str, kubeconfig: &str) {
    post(
        kc,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        json!({"metadata": {"name": name}, "data": {"kubeconfig": b64(kubeconfig)}}),
    );
}

fn rotate(kc: &Path, ns: &str, name: &str, kubeconfig: &str) {
    merge(
        kc,
        &format!("/api/v1/namespaces/{ns}/secrets/{name}"),
        json!({"data": {"kubeconfig": b64(kubeconfig)}}),
    );
}

fn build_plane(kc: &Path, org: &str, secret_ns: &str, secret: &str) {
    post(
        kc,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/buildplanes"),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "BuildPlane",
            "metadata": {"name": "default"},
            "spec": {"kubernetesCluster": {"clusterRef": {"name": secret, "namespace": secret_ns}}}}),
    );
}

fn build(kc: &Path, org: &str, component: &str) -> String {
    let name = format!("{component}-build");
    post(
        kc,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/builds"),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": name},
            "spec": {"owner": {"projectName": "shop", "componentName": component},
                "repository": {"url": "https://git.example.com/shop.git",
                    "revision": {"branch": "main"}, "appPath": format!("/{component}")},
                "templateRef": {"name": "google-cloud-buildpacks"}}}),
    );
    name
}

fn get_build(kc: &Path, org: &str, name: &str) -> Value {
    let (code, b) = cluster::kubectl_like_get(
        kc,
        None,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/builds/{name}"),
    );
    assert_eq!(code, 200, "{b}");
    b
}

/// `type status reason` of each condition.
fn conditions(b: &Value) -> Vec<String> {
    b.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| format!("{} {} {}", c["type"], c["status"], c["reason"]).replace('"', ""))
                .collect()
        })
        .unwrap_or_default()
}

/// The Build's condition of `type_`.
fn condition<'a>(b: &'a Value, type_: &str) -> Option<&'a Value> {
    b.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
}

/// Waits (bounded) until the Build's conditions contain `wanted`; returns the Build.
fn wait_for(kc: &Path, org: &str, name: &str, wanted: &str, c: &Running) -> Value {
    wait_until(kc, org, name, c, wanted, |b| {
        conditions(b).iter().any(|x| x == wanted)
    })
}

/// Waits (bounded) until the Build passes `done` (described as `wanted`); returns the Build.
fn wait_until(
    kc: &Path,
    org: &str,
    name: &str,
    c: &Running,
    wanted: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let b = get_build(kc, org, name);
        if done(&b) {
            return b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{org}/{name} never got {wanted}: {:?}\n{}",
            conditions(&b),
            c.log()
        );
        // A controller that died (a panic) is the failure to report, not the wait.
        let alive = Command::new("kill")
            .args(["-0", &c.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let log = c.log();
        assert!(
            alive && !log.contains("panicked"),
            "the controller stopped:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn workflow_names(kc: &Path, org: &str) -> Vec<String> {
    let (code, list) = cluster::kubectl_like_get(
        kc,
        None,
        &format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows"),
    );
    assert_eq!(code, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

const DONE: [&str; 4] = [
    "BuildInitiated True BuildInitiated",
    "BuildTriggered True BuildTriggered",
    "BuildCompleted True BuildCompleted",
    "WorkloadUpdated True WorkloadUpdated",
];

#[test]
fn builds_of_two_organizations_run_on_two_build_planes() {
    let plane1 = cluster::with_argo();
    let plane2 = cluster::start_private();
    cluster::install_argo(&plane2.kubeconfig);
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let (a, b) = (cluster::unique_name("org-a"), cluster::unique_name("org-b"));
    for org in [&a, &b] {
        namespace(cpk, org);
    }
    namespace(cpk, "planes");
    secret(
        cpk,
        "planes",
        "plane-1",
        &kubeconfig_text(&plane1, cluster::ADMIN),
    );
    secret(
        cpk,
        "planes",
        "plane-2",
        &kubeconfig_text(&plane2.kubeconfig, cluster::ADMIN),
    );
    build_plane(cpk, &a, "planes", "plane-1");
    build_plane(cpk, &b, "planes", "plane-2");
    let ns_a = format!("openchoreo-ci-{a}");
    let ns_b = format!("openchoreo-ci-{b}");
    let argo1 = argo::start(&plane1, &[&ns_a], |wf| {
        let c = wf
            .pointer("/metadata/labels/component-name")
            .and_then(Value::as_str);
        Some(match c {
            Some("broken") => argo::Script::new(argo::Outcome::FailAt("build-step")),
            _ => argo::Script::succeed(),
        })
    });
    let argo2 = argo::start(&plane2.kubeconfig, &[&ns_b], |_| {
        Some(argo::Script::succeed())
    });
    let port = cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    // The planes' Secrets live in their own namespace: the operator allows that.
    let c = start_controller(
        cpk,
        &["--metrics-addr", &addr, "--allow-cross-namespace-refs"],
    );
    let ok_a = build(cpk, &a, "cart");
    let broken = build(cpk, &a, "broken");
    let ok_b = build(cpk, &b, "search");

    for (org, name, component) in [(&a, &ok_a, "cart"), (&b, &ok_b, "search")] {
        let done = wait_for(cpk, org, name, DONE[3], &c);
        assert_eq!(conditions(&done), DONE, "upstream's timeline, in order");
        assert_eq!(
            done["status"]["imageStatus"]["image"],
            format!(
                "{}/shop-{component}:default-{}",
                argo::REGISTRY,
                argo::REVISION
            )
        );
        let (code, w) = cluster::kubectl_like_get(
            cpk,
            None,
            &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/{component}"),
        );
        assert_eq!(code, 200, "Workload in the control plane: {w}");
        assert_eq!(cluster::managers(&w), ["build-controller"]);
        // What `kubectl get builds` prints: the CRD's columns over the status.
        let (code, table) = cluster::get_table(
            cpk,
            &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/builds/{name}"),
        );
        assert_eq!(code, 200, "{table}");
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Name", "Phase", "Image", "Plane", "Age"]);
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[1], "Succeeded", "{table}");
        assert_eq!(cells[2], done["status"]["imageStatus"]["image"], "{table}");
        assert_eq!(cells[3], "default", "{table}");
    }
    // Each organization's Workflows ran on its own plane only.
    assert_eq!(workflow_names(&plane1, &a).len(), 2);
    assert_eq!(workflow_names(&plane2.kubeconfig, &b).len(), 1);
    assert_eq!(
        cluster::kubectl_like_get(
            &plane2.kubeconfig,
            None,
            &format!("/api/v1/namespaces/{ns_a}")
        )
        .0,
        404
    );

    // The failed build ends BuildFailed and is not resubmitted: not when the Build is touched,
    // not when its Workflow is deleted (as Argo's TTL would).
    let failed = wait_for(cpk, &a, &broken, "BuildCompleted False BuildFailed", &c);
    assert_eq!(failed["status"]["phase"], "Failed");
    assert_eq!(failed["status"]["buildPlaneRef"]["name"], "default");
    assert!(
        !conditions(&failed)
            .iter()
            .any(|x| x.starts_with("WorkloadUpdated"))
    );
    let wf = buildplane::core::naming::workflow_name(&broken);
    let wf_path = format!("/apis/argoproj.io/v1alpha1/namespaces/{ns_a}/workflows/{wf}");
    let (code, _) =
        cluster::raw_request(&plane1, None, "DELETE", &wf_path, None, "application/json");
    assert_eq!(code, 200);
    merge(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{a}/builds/{broken}"),
        json!({"metadata": {"annotations": {"touched": "yes"}}}),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        cluster::kubectl_like_get(&plane1, None, &wf_path).0,
        404,
        "resubmitted"
    );
    let handled = argo1.handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 2, "{handled:?}");
    assert_eq!(argo2.handled.lock().unwrap().len(), 1);
    assert!(argo1.errors.lock().unwrap().is_empty());
    // The counters saw three submissions, two successes, one failure.
    let out = Command::new("curl")
        .args(["-sS", &format!("http://{addr}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    for line in [
        "buildplane_builds_started_total 3",
        "buildplane_builds_succeeded_total 2",
        "buildplane_builds_failed_total 1",
        "buildplane_emit_latency_seconds_count 2",
        // By result, reason and plane.
        &format!(
            r#"buildplane_builds_finished_total{{result="succeeded",reason="succeeded",plane="{a}/default"}} 1"#
        ),
        &format!(
            r#"buildplane_builds_finished_total{{result="failed",reason="build-failed",plane="{a}/default"}} 1"#
        ),
        &format!(
            r#"buildplane_builds_finished_total{{result="succeeded",reason="succeeded",plane="{b}/default"}} 1"#
        ),
        "buildplane_leader 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("{name} in:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(value("buildplane_reconcile_duration_seconds_count") >= 3.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_cpu_seconds_total") > 0.0);
    assert!(value("process_open_fds") > 0.0);
}

#[test]
fn failures_become_conditions_and_recover_when_fixed() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = cluster::unique_name("org-c");
    namespace(cpk, &org);
    let ns = format!("openchoreo-ci-{org}");
    let _argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed()));
    // The controller runs as its ServiceAccount: the rendered RBAC is enough, and no more is used.
    let dir = tempfile::tempdir().unwrap();
    let c = start_controller(&service_account_kubeconfig(cpk, dir.path()), &[]);
    let name = build(cpk, &org, "cart");

    // 1. No BuildPlane in the namespace.
    let b = wait_for(
        cpk,
        &org,
        &name,
        "BuildTriggered False BuildPlaneNotFound",
        &c,
    );
    assert_eq!(conditions(&b)[0], "BuildInitiated True BuildInitiated");
    // 2. A BuildPlane whose Secret holds no kubeconfig.
    secret(cpk, &org, "plane", "this is not a kubeconfig");
    build_plane(cpk, &org, &org, "plane");
    let b = wait_for(
        cpk,
        &org,
        &name,
        "BuildTriggered False BuildPlaneCredentialsInvalid",
        &c,
    );
    let message = b["status"]["conditions"][1]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("Secret {org}/plane")),
        "{message}"
    );
    // 3. Rotated to credentials the build plane refuses: the new client is used.
    rotate(
        cpk,
        &org,
        "plane",
        &kubeconfig_text(&plane, cluster::LIMITED),
    );
    let b = wait_for(
        cpk,
        &org,
        &name,
        "BuildTriggered False PrerequisitesFailed",
        &c,
    );
    let message = b["status"]["conditions"][1]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("forbidden") || message.contains("Forbidden"),
        "{message}"
    );
    assert!(
        !message.contains("token"),
        "no credentials in messages: {message}"
    );
    // 4. Rotated to working credentials: the build goes through.
    rotate(cpk, &org, "plane", &kubeconfig_text(&plane, cluster::ADMIN));
    let b = wait_for(cpk, &org, &name, DONE[3], &c);
    assert_eq!(conditions(&b), DONE);
    assert!(c.log().contains("kubeconfig Secret changed"), "{}", c.log());
}

#[test]
fn in_a_pod_without_a_kubeconfig_the_service_account_is_used() {
    let home = tempfile::tempdir().unwrap();
    let o = bin()
        .arg("controller")
        .env("HOME", home.path())
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // Outside a pod the service account's token file is missing: the in-cluster path was taken.
    assert!(err.contains("in-cluster service account"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A kubeconfig (as a Secret holds it) whose one user is `user`, against `server`.
fn kubeconfig_with_user(server: &str, user: Value) -> String {
    json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "plane", "cluster": {"server": server, "insecure-skip-tls-verify": true}}],
        "users": [{"name": "tenant", "user": user}],
        "contexts": [{"name": "plane", "context": {"cluster": "plane", "user": "tenant"}}],
        "current-context": "plane"})
    .to_string()
}

/// A plain-HTTP listener on 127.0.0.1 that records every request head it receives and answers
/// 401: whatever credentials a client sends end up in `heads`.
struct Recorder {
    addr: std::net::SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn recorder() -> Recorder {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Recorder { addr, heads }
}

/// A control plane with the CRDs, an organization whose BuildPlane names Secret `plane` (in
/// `secret_ns`, default: the organization's own namespace) holding `kubeconfig`, and a Build;
/// returns the control plane, the organization and the Build's name.
fn plane_with_secret(
    kubeconfig: &str,
    secret_ns: Option<&str>,
) -> (cluster::Cluster, String, String) {
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = cluster::unique_name("tenant-c");
    namespace(cpk, &org);
    let secret_ns = secret_ns.map_or_else(|| org.clone(), str::to_owned);
    if secret_ns != org {
        namespace(cpk, &secret_ns);
    }
    secret(cpk, &secret_ns, "plane", kubeconfig);
    build_plane(cpk, &org, &secret_ns, "plane");
    let name = build(cpk, &org, "cart");
    (cp, org, name)
}

#[test]
fn an_exec_plugin_in_a_kubeconfig_secret_is_refused_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(cluster::unique_name("exec-ran"));
    let kubeconfig = kubeconfig_with_user(
        "https://127.0.0.1:1",
        json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh",
            "args": ["-c", format!("touch {}", marker.display())]}}),
    );
    let (cp, org, name) = plane_with_secret(&kubeconfig, None);
    let c = start_controller(&cp.kubeconfig, &[]);
    let b = wait_until(
        &cp.kubeconfig,
        &org,
        &name,
        &c,
        "a BuildTriggered condition",
        |b| condition(b, "BuildTriggered").is_some(),
    );
    assert!(
        !marker.exists(),
        "the Secret's exec plugin ran in the controller"
    );
    let triggered = condition(&b, "BuildTriggered").unwrap();
    assert_eq!(
        triggered["reason"], "BuildPlaneKubeconfigRefused",
        "{triggered}"
    );
    let message = triggered["message"].as_str().unwrap();
    for part in [
        &format!("Secret {org}/plane"),
        "users[0].user.exec is not allowed",
        "--insecure-kubeconfig-exec",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    // Retried with backoff, never run: the condition stays, the marker never appears.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !marker.exists(),
        "the Secret's exec plugin ran in the controller"
    );
    assert_eq!(
        condition(&get_build(&cp.kubeconfig, &org, &name), "BuildTriggered"),
        Some(triggered)
    );
    // The operator opts in: the plugin runs (and, printing no credential, fails).
    drop(c);
    let c = start_controller(&cp.kubeconfig, &["--insecure-kubeconfig-exec"]);
    wait_until(
        &cp.kubeconfig,
        &org,
        &name,
        &c,
        "the exec plugin to run",
        |_| marker.exists(),
    );
}

#[test]
fn a_token_file_in_a_kubeconfig_secret_is_refused_and_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let stolen = cluster::unique_name("controller-own-token");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &stolen).unwrap();
    let server = recorder();
    let kubeconfig = kubeconfig_with_user(
        &format!("http://{}", server.addr),
        json!({"tokenFile": token_file}),
    );
    let (cp, org, name) = plane_with_secret(&kubeconfig, None);
    let c = start_controller(&cp.kubeconfig, &[]);
    let b = wait_until(
        &cp.kubeconfig,
        &org,
        &name,
        &c,
        "a BuildTriggered condition",
        |b| condition(b, "BuildTriggered").is_some(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let heads = server.heads.lock().unwrap().clone();
    assert!(
        !heads.iter().any(|h| h.contains(&stolen)),
        "the controller sent its file as a token to the Secret's server: {heads:?}"
    );
    let triggered = condition(&b, "BuildTriggered").unwrap();
    assert_eq!(
        triggered["reason"], "BuildPlaneKubeconfigRefused",
        "{triggered}"
    );
    let message = triggered["message"].as_str().unwrap();
    assert!(
        message.contains("users[0].user.tokenFile is not allowed"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Secret {org}/plane")),
        "{message}"
    );
    assert!(heads.is_empty(), "no request at all: {heads:?}");
    assert!(!c.log().contains(&stolen) && !message.contains(&stolen));
}

#[test]
fn a_secret_in_another_namespace_is_refused_unless_allowed() {
    let plane = cluster::with_argo();
    let platform = cluster::unique_name("platform");
    let (cp, org, name) =
        plane_with_secret(&kubeconfig_text(&plane, cluster::ADMIN), Some(&platform));
    let cpk = &cp.kubeconfig;
    let c = start_controller(cpk, &[]);
    let b = wait_until(cpk, &org, &name, &c, "a BuildTriggered condition", |b| {
        condition(b, "BuildTriggered").is_some()
    });
    let triggered = condition(&b, "BuildTriggered").unwrap();
    assert_eq!(
        triggered["reason"], "CrossNamespaceSecretRefused",
        "the Build ran with another namespace's credentials: {triggered}"
    );
    let message = triggered["message"].as_str().unwrap();
    for part in [
        &format!("BuildPlane {org}/default"),
        &format!("Secret {platform}/plane"),
        "--allow-cross-namespace-refs",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let ns = format!("openchoreo-ci-{org}");
    assert_eq!(
        cluster::kubectl_like_get(&plane, None, &format!("/api/v1/namespaces/{ns}")).0,
        404,
        "nothing was applied on the plane"
    );
    drop(c);
    // The operator opts in: the same Build goes through.
    let _argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed()));
    let c = start_controller(cpk, &["--allow-cross-namespace-refs"]);
    let b = wait_for(cpk, &org, &name, DONE[3], &c);
    assert_eq!(conditions(&b), DONE);
}

/// Attack 1 through the controller: Workload `org/cart` belongs to component shop/pay; the
/// Build of shop/cart, whose output names `cart`, leaves it as it is, with its own condition
/// reason and the conflict counted (not retried).
#[test]
fn the_controller_never_overwrites_another_components_workload() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-w", cluster::ADMIN);
    let theirs = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": "cart"},
        "spec": {"owner": {"projectName": "shop", "componentName": "pay"},
            "containers": {"main": {"image": "registry.test/pay:1"}}}});
    post(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads"),
        theirs,
    );
    let ns = format!("openchoreo-ci-{org}");
    let _argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed()));
    let port = cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    let c = start_controller(cpk, &["--metrics-addr", &addr]);
    let name = build(cpk, &org, "cart");
    let b = wait_for(
        cpk,
        &org,
        &name,
        "WorkloadUpdated False WorkloadOwnedByAnotherComponent",
        &c,
    );
    let message = condition(&b, "WorkloadUpdated").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!(
            "Workload {org}/cart belongs to component shop/pay"
        )),
        "{message}"
    );
    let (code, w) = cluster::kubectl_like_get(
        cpk,
        None,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/cart"),
    );
    assert_eq!(code, 200);
    assert_eq!(w["spec"]["owner"]["componentName"], "pay");
    assert_eq!(
        w["spec"]["containers"]["main"]["image"],
        "registry.test/pay:1"
    );
    let metrics = Command::new("curl")
        .args(["-sS", &format!("http://{addr}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    assert!(
        metrics
            .lines()
            .any(|l| l == "buildplane_workload_conflicts_total 1"),
        "{metrics}"
    );
}

/// A new organization on the control plane `cpk` whose BuildPlane names Secret `plane` in its
/// own namespace, holding `plane`'s kubeconfig for `user`; returns the organization.
fn organization_on(cpk: &Path, plane: &Path, prefix: &str, user: &str) -> String {
    let org = cluster::unique_name(prefix);
    namespace(cpk, &org);
    secret(cpk, &org, "plane", &kubeconfig_text(plane, user));
    build_plane(cpk, &org, &org, "plane");
    org
}

/// Peak resident memory of `pid`, in kB.
fn peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A Workflow status whose `compressedNodes` (about 60 KB) inflates to 60 MiB once took the
/// controller from ~60 MB to over 200 MB (its memory limit is 256 Mi) on every harvest. It is now
/// read up to the cap (8 MiB by default) and the build fails with the reason.
#[test]
fn an_inflating_workflow_status_fails_its_build_without_taking_the_memory() {
    use base64::Engine as _;
    use std::io::Write as _;
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-z", cluster::ADMIN);
    let c = start_controller(cpk, &[]);
    let name = build(cpk, &org, "cart");
    wait_for(cpk, &org, &name, "BuildTriggered True BuildTriggered", &c);
    let wf = buildplane::core::naming::workflow_name(&name);
    let nodes = format!(
        "{{\"{wf}\":{{\"id\":\"{wf}\",\"name\":\"{wf}\",\"type\":\"Steps\",\"phase\":\"Succeeded\",\
         \"message\":\"{}\"}}}}",
        "x".repeat(60 * 1024 * 1024)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(nodes.as_bytes()).unwrap();
    drop(nodes);
    let compressed = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    assert!(compressed.len() < 400 * 1024, "{}", compressed.len());
    let (code, body) = cluster::raw_request(
        &plane,
        None,
        "PATCH",
        &format!("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{wf}"),
        Some(&json!({"status": {"phase": "Succeeded", "compressedNodes": compressed}})),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{body}");
    let b = wait_for(
        cpk,
        &org,
        &name,
        "WorkloadUpdated False WorkloadUpdateFailed",
        &c,
    );
    let message = condition(&b, "WorkloadUpdated").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("decompresses to more than 8388608 bytes"),
        "{message}"
    );
    let peak = peak_kb(c.child.id());
    eprintln!("controller peak {peak} kB");
    assert!(peak > 0 && peak < 150 * 1024, "controller peak {peak} kB");
}

/// One tenant's build plane cannot list Workflows (its credentials have no such right). Its
/// submitted Build once held a reconcile slot for 30 s per attempt waiting for that plane's
/// watch; with one slot, another tenant's new Build waited behind it. Now nothing waits for a
/// plane's listing: the other tenant's build is triggered at once.
#[test]
fn a_plane_that_cannot_list_does_not_stall_other_tenants() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let stuck = organization_on(cpk, &plane, "org-s", cluster::LIMITED);
    let fine = organization_on(cpk, &plane, "org-f", cluster::ADMIN);
    // The stuck tenant's Build says it was submitted (as after a controller restart).
    let stuck_build = build(cpk, &stuck, "cart");
    let now = "2026-01-01T00:00:00Z";
    merge(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{stuck}/builds/{stuck_build}/status"),
        json!({"status": {"specHash": "submitted-earlier", "conditions": [
            {"type": "BuildInitiated", "status": "True", "reason": "BuildInitiated",
             "message": "Build initialization started", "lastTransitionTime": now},
            {"type": "BuildTriggered", "status": "True", "reason": "BuildTriggered",
             "message": "Build has been triggered", "lastTransitionTime": now}]}}),
    );
    let c = start_controller(cpk, &["--concurrency", "1"]);
    let created = Instant::now();
    let fine_build = build(cpk, &fine, "search");
    wait_for(
        cpk,
        &fine,
        &fine_build,
        "BuildTriggered True BuildTriggered",
        &c,
    );
    let waited = created.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the other tenant's build waited {waited:?}"
    );
}

fn builds_path(org: &str) -> String {
    format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/builds")
}

/// A Build `name` of component `component` (project `shop`) building `branch`.
fn build_named(kc: &Path, org: &str, name: &str, component: &str, branch: &str) {
    post(
        kc,
        &builds_path(org),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": name},
            "spec": {"owner": {"projectName": "shop", "componentName": component},
                "repository": {"url": "https://git.example.com/shop.git",
                    "revision": {"branch": branch}, "appPath": format!("/{component}")},
                "templateRef": {"name": "google-cloud-buildpacks"}}}),
    );
}

/// A Build of component `component` on `main` that names BuildPlane `plane` by label.
fn build_on_plane(kc: &Path, org: &str, name: &str, component: &str, plane: &str) {
    post(
        kc,
        &builds_path(org),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": name, "labels": {"openchoreo.dev/build-plane": plane}},
            "spec": {"owner": {"projectName": "shop", "componentName": component},
                "repository": {"url": "https://git.example.com/shop.git",
                    "revision": {"branch": "main"}, "appPath": format!("/{component}")},
                "templateRef": {"name": "google-cloud-buildpacks"}}}),
    );
}

fn delete(kc: &Path, path: &str) {
    let (code, resp) = cluster::raw_request(kc, None, "DELETE", path, None, "application/json");
    assert!(code == 200 || code == 202, "DELETE {path}: {code} {resp}");
}

/// Waits (bounded) until `path` is gone (404).
fn wait_gone(kc: &Path, path: &str, c: &Running) {
    let started = Instant::now();
    loop {
        let (code, body) = cluster::kubectl_like_get(kc, None, path);
        if code == 404 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{path} is still there: {body}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn workload_path(org: &str, name: &str) -> String {
    format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/{name}")
}

fn workflow_path(org: &str, build: &str) -> String {
    format!(
        "/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-{org}/workflows/{}",
        buildplane::core::naming::workflow_name(build)
    )
}

/// `reason: note` of each Event the controller published on Build `name`, oldest first.
fn events(kc: &Path, org: &str, name: &str) -> Vec<String> {
    let (code, list) = cluster::kubectl_like_get(
        kc,
        None,
        &format!("/apis/events.k8s.io/v1/namespaces/{org}/events"),
    );
    assert_eq!(code, 200, "{list}");
    let mut items: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["regarding"]["kind"] == "Build" && e["regarding"]["name"] == name)
        .collect();
    items.sort_by_key(|e| e["eventTime"].as_str().unwrap_or("").to_owned());
    items
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["reason"].as_str().unwrap(),
                e["note"].as_str().unwrap()
            )
        })
        .collect()
}

const FINALIZER: &str = "buildplane.openchoreo.dev/cleanup";

/// Deleting a Build whose Workflow runs: the Workflow is asked to stop (Argo's terminate), is
/// deleted once the stand-in (as Argo) ended it, and the Build goes with its finalizer. The
/// controller runs as its ServiceAccount: the rendered RBAC covers the finalizer and the Events.
#[test]
fn deleting_a_build_whose_workflow_runs_terminates_then_deletes_it() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-t", cluster::ADMIN);
    let ns = format!("openchoreo-ci-{org}");
    let argo = argo::start(&plane, &[&ns], |_| {
        Some(argo::Script::succeed().slow(Duration::from_secs(3)))
    });
    let dir = tempfile::tempdir().unwrap();
    let c = start_controller(&service_account_kubeconfig(cpk, dir.path()), &[]);
    let name = build(cpk, &org, "cart");
    let b = wait_for(cpk, &org, &name, "BuildCompleted False BuildInProgress", &c);
    assert_eq!(b["metadata"]["finalizers"], json!([FINALIZER]));
    let wf = workflow_path(&org, &name);
    delete(cpk, &format!("{}/{name}", builds_path(&org)));
    wait_gone(cpk, &format!("{}/{name}", builds_path(&org)), &c);
    assert_eq!(cluster::kubectl_like_get(&plane, None, &wf).0, 404);
    let wf_name = buildplane::core::naming::workflow_name(&name);
    assert_eq!(
        *argo.terminated.lock().unwrap(),
        [format!("{ns}/{wf_name}")],
        "the Workflow was stopped before it was deleted"
    );
    assert_eq!(argo.handled.lock().unwrap().len(), 1, "nothing resubmitted");
    assert!(argo.errors.lock().unwrap().is_empty(), "{:?}", argo.errors);
    let said = events(cpk, &org, &name);
    let stopping = said.iter().position(|e| e.starts_with("BuildStopping: "));
    let deleted = said
        .iter()
        .position(|e| e.starts_with("BuildObjectDeleted: "));
    assert!(
        stopping.is_some() && deleted.is_some() && stopping < deleted,
        "{said:?}"
    );
    assert!(said[deleted.unwrap()].contains(&wf_name), "{said:?}");
    assert_eq!(
        cluster::kubectl_like_get(cpk, None, &workload_path(&org, "cart")).0,
        404,
        "an unfinished build applies no Workload"
    );
}

/// Deleting finished Builds: the Workload buildplane created stays while another Build of the
/// component still points at it and goes with the last one; a Workload buildplane did not
/// create (it only updated it) stays.
#[test]
fn deleting_a_finished_build_deletes_its_workload_only_when_nothing_else_claims_it() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-k", cluster::ADMIN);
    let ns = format!("openchoreo-ci-{org}");
    let _argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed()));
    // Somebody else's Workload for component search, before any build of it.
    let theirs = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": "search"},
        "spec": {"owner": {"projectName": "shop", "componentName": "search"},
            "containers": {"main": {"image": "registry.test/search:hand-made"}}}});
    post(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads"),
        theirs,
    );
    // As its ServiceAccount: the rendered RBAC covers listing Builds and deleting a Workload.
    let dir = tempfile::tempdir().unwrap();
    let c = start_controller(&service_account_kubeconfig(cpk, dir.path()), &[]);
    build_named(cpk, &org, "cart-1", "cart", "main");
    wait_for(cpk, &org, "cart-1", DONE[3], &c);
    build_named(cpk, &org, "cart-2", "cart", "main");
    let b2 = wait_for(cpk, &org, "cart-2", DONE[3], &c);
    assert_eq!(b2["status"]["workloadRef"], json!({"name": "cart"}));
    build_named(cpk, &org, "search-1", "search", "main");
    wait_for(cpk, &org, "search-1", DONE[3], &c);
    let (code, w) = cluster::kubectl_like_get(cpk, None, &workload_path(&org, "cart"));
    assert_eq!(code, 200);
    assert_eq!(
        w["metadata"]["annotations"]["buildplane.openchoreo.dev/created-by"],
        format!("{org}/cart-1"),
        "created by the first build, kept by the second"
    );

    // cart-1 goes: cart-2 still points at the Workload.
    delete(cpk, &format!("{}/cart-1", builds_path(&org)));
    wait_gone(cpk, &format!("{}/cart-1", builds_path(&org)), &c);
    assert_eq!(
        cluster::kubectl_like_get(&plane, None, &workflow_path(&org, "cart-1")).0,
        404,
        "the finished Workflow is deleted"
    );
    assert_eq!(
        cluster::kubectl_like_get(cpk, None, &workload_path(&org, "cart")).0,
        200
    );
    let said = events(cpk, &org, "cart-1");
    assert!(
        said.iter().any(|e| e
            == &format!(
                "WorkloadKept: Workload/{org}/cart kept: Build {org}/cart-2 still points at it"
            )),
        "{said:?}"
    );
    // cart-2 goes: nothing points at it any more.
    delete(cpk, &format!("{}/cart-2", builds_path(&org)));
    wait_gone(cpk, &format!("{}/cart-2", builds_path(&org)), &c);
    assert_eq!(
        cluster::kubectl_like_get(cpk, None, &workload_path(&org, "cart")).0,
        404,
        "the last Build's Workload is deleted"
    );
    assert!(
        events(cpk, &org, "cart-2")
            .iter()
            .any(|e| e.starts_with(&format!("WorkloadDeleted: Workload/{org}/cart deleted"))),
    );
    // search-1 goes: the Workload it updated was not created by buildplane.
    delete(cpk, &format!("{}/search-1", builds_path(&org)));
    wait_gone(cpk, &format!("{}/search-1", builds_path(&org)), &c);
    let (code, w) = cluster::kubectl_like_get(cpk, None, &workload_path(&org, "search"));
    assert_eq!(code, 200, "a Workload buildplane did not create is kept");
    assert!(
        w["metadata"]["annotations"]
            .get("buildplane.openchoreo.dev/created-by")
            .is_none(),
        "{w}"
    );
    assert!(
        events(cpk, &org, "search-1").iter().any(|e| e
            == &format!("WorkloadKept: Workload/{org}/search kept: buildplane did not create it")),
    );
}

/// The plane refuses (credentials rotated to a user without rights): the deleted Build stays,
/// with the failure as its condition, retried. Its BuildPlane deleted: nothing is left to clean
/// up with, the finalizer goes and a Warning Event says what was left on the plane.
#[test]
fn a_build_whose_buildplane_is_gone_can_still_be_deleted() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-g", cluster::ADMIN);
    // No stand-in: the Workflow stays as submitted, never finishing.
    let c = start_controller(cpk, &[]);
    let name = build(cpk, &org, "cart");
    wait_for(cpk, &org, &name, "BuildTriggered True BuildTriggered", &c);
    rotate(
        cpk,
        &org,
        "plane",
        &kubeconfig_text(&plane, cluster::LIMITED),
    );
    let build_path = format!("{}/{name}", builds_path(&org));
    delete(cpk, &build_path);
    let b = wait_for(cpk, &org, &name, "CleanedUp False CleanupFailed", &c);
    let message = condition(&b, "CleanedUp").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("cleaning up after the deleted Build: build plane of ")
            && message.contains("forbidden"),
        "{message}"
    );
    assert!(b["metadata"]["deletionTimestamp"].is_string());
    let wf = workflow_path(&org, &name);
    assert_eq!(cluster::kubectl_like_get(&plane, None, &wf).0, 200);
    delete(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/buildplanes/default"),
    );
    wait_gone(cpk, &build_path, &c);
    assert_eq!(
        cluster::kubectl_like_get(&plane, None, &wf).0,
        200,
        "a plane no BuildPlane names is not touched"
    );
    let said = events(cpk, &org, &name);
    let wf_name = buildplane::core::naming::workflow_name(&name);
    assert!(
        said.iter().any(|e| e
            == &format!(
                "BuildPlaneGone: no BuildPlane in namespace {org}: Workflow/openchoreo-ci-{org}/{wf_name} on its build plane, if still there, is left as it is"
            )),
        "{said:?}"
    );
}

/// An edit while the Workflow runs is built once that Workflow finished; an edit to a finished
/// Build is built once; a change outside the spec builds nothing.
#[test]
fn an_edited_build_is_built_once_per_spec() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-e", cluster::ADMIN);
    let ns = format!("openchoreo-ci-{org}");
    // The first spec's build takes a while, so the edit lands while it runs.
    let argo = argo::start(&plane, &[&ns], |wf| {
        Some(match argo::argument(wf, "branch").as_str() {
            "main" => argo::Script::succeed().slow(Duration::from_secs(1)),
            _ => argo::Script::succeed(),
        })
    });
    let c = start_controller(cpk, &[]);
    let name = build(cpk, &org, "cart");
    let path = format!("{}/{name}", builds_path(&org));
    let running = wait_for(cpk, &org, &name, "BuildCompleted False BuildInProgress", &c);
    let first = running["status"]["specHash"].as_str().unwrap().to_owned();
    let branch = |b: &str| json!({"spec": {"repository": {"revision": {"branch": b}}}});
    merge(cpk, &path, branch("release"));
    let spec_hash = |b: &Value| b["status"]["specHash"].as_str().unwrap_or("").to_owned();
    let done =
        |b: &Value, not: &str| spec_hash(b) != not && conditions(b).iter().any(|x| x == DONE[3]);
    let b = wait_until(cpk, &org, &name, &c, "the edited spec built", |b| {
        done(b, &first)
    });
    assert_eq!(
        conditions(&b),
        DONE,
        "conditions start over for the new run"
    );
    let second = spec_hash(&b);
    let live_spec = |c: &Running| {
        let (code, wf) = cluster::kubectl_like_get(&plane, None, &workflow_path(&org, &name));
        assert_eq!(code, 200, "{wf}\n{}", c.log());
        (
            argo::argument(&wf, "branch"),
            wf["metadata"]["annotations"]["buildplane.openchoreo.dev/spec-hash"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    assert!(
        c.log().contains("spec edited while its build runs"),
        "the edit landed while the first build ran:\n{}",
        c.log()
    );
    let (wf_branch, wf_hash) = live_spec(&c);
    assert_eq!(wf_branch, "release");
    assert!(wf_hash.starts_with(&second), "{wf_hash} shows {second}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        argo.handled.lock().unwrap().len(),
        2,
        "the running build finished, then exactly one build of the new spec"
    );
    assert!(
        argo.terminated.lock().unwrap().is_empty() && argo.errors.lock().unwrap().is_empty(),
        "a running build is not replaced: {:?}",
        argo.errors
    );

    // An edit to the finished Build: one new build.
    merge(cpk, &path, branch("v2"));
    let b = wait_until(cpk, &org, &name, &c, "the second edit built", |b| {
        done(b, &second)
    });
    let third = spec_hash(&b);
    assert_eq!(live_spec(&c).0, "v2");
    // A change outside the spec: no build.
    merge(
        cpk,
        &path,
        json!({"metadata": {"annotations": {"touched": "yes"}}}),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(argo.handled.lock().unwrap().len(), 3);
    assert_eq!(spec_hash(&get_build(cpk, &org, &name)), third);
    assert_eq!(conditions(&get_build(cpk, &org, &name)), DONE);
}

/// The server, CA (base64 PEM, as upstream's `tls.ca.value`) and token of `kc`'s admin user.
fn inline_parts(kc: &Path) -> (String, String, String) {
    let doc: Value = serde_json::from_str(&kubeconfig_text(kc, cluster::ADMIN)).unwrap();
    let ctx = doc["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster::ADMIN)
        .unwrap()["context"]
        .clone();
    let named = |list: &str, name: &Value| {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["name"] == name)
            .unwrap()
            .clone()
    };
    let cl = named("clusters", &ctx["cluster"])["cluster"].clone();
    let user = named("users", &ctx["user"])["user"].clone();
    (
        cl["server"].as_str().unwrap().to_owned(),
        cl["certificate-authority-data"]
            .as_str()
            .unwrap()
            .to_owned(),
        user["token"].as_str().unwrap().to_owned(),
    )
}

fn inline_plane(kc: &Path, org: &str, name: &str, cluster: Value, default: bool) {
    let annotations = if default {
        json!({"buildplane.openchoreo.dev/default": "true"})
    } else {
        json!({})
    };
    post(
        kc,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/buildplanes"),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "BuildPlane",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"kubernetesCluster": cluster,
                "observer": {"url": "http://observer.example", "authentication": {"basicAuth": {"username": "u", "password": "p"}}}}}),
    );
}

/// Upstream's BuildPlanes carry the cluster inline (as `add-build-plane.sh` writes them), and a
/// namespace may hold several: the Build names one, or one is marked default; never the first
/// by name.
#[test]
fn upstream_inline_build_planes_work_and_several_need_an_explicit_choice() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = cluster::unique_name("inline");
    namespace(cpk, &org);
    let ns = format!("openchoreo-ci-{org}");
    let argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed()));
    let (server, ca, token) = inline_parts(&plane);
    // "a-dead" sorts first and points nowhere; "upstream" is the working inline form.
    inline_plane(
        cpk,
        &org,
        "a-dead",
        json!({"server": "https://127.0.0.1:1", "tls": {"ca": {"value": ca}},
               "auth": {"bearerToken": {"value": "nothing"}}}),
        false,
    );
    inline_plane(
        cpk,
        &org,
        "upstream",
        json!({"server": server, "tls": {"ca": {"value": ca}},
               "auth": {"bearerToken": {"value": token}}}),
        false,
    );
    let c = start_controller(cpk, &[]);
    let first = build(cpk, &org, "cart");
    let b = wait_until(cpk, &org, &first, &c, "a BuildTriggered condition", |b| {
        condition(b, "BuildTriggered").is_some()
    });
    let triggered = condition(&b, "BuildTriggered").unwrap();
    assert_eq!(triggered["reason"], "BuildPlaneAmbiguous", "{triggered}");
    let message = triggered["message"].as_str().unwrap();
    assert!(
        message.contains("a-dead, upstream")
            && message.contains("buildplane.openchoreo.dev/default"),
        "{message}"
    );
    assert!(workflow_names(&plane, &org).is_empty());

    // Marked default, the inline plane runs the build to the end.
    merge(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/buildplanes/upstream"),
        json!({"metadata": {"annotations": {"buildplane.openchoreo.dev/default": "true"}}}),
    );
    // A touch of the Build makes the controller look again (BuildPlanes are watched too).
    merge(
        cpk,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/builds/{first}"),
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    );
    let done = wait_for(cpk, &org, &first, DONE[3], &c);
    assert_eq!(conditions(&done), DONE);

    // Secrets of the BuildPlane's own namespace by secretRef (upstream's field, never read
    // upstream): the CA under ca.crt, the token under token. A Build names this plane.
    post(
        cpk,
        &format!("/api/v1/namespaces/{org}/secrets"),
        json!({"metadata": {"name": "plane-creds"}, "data": {
            "ca.crt": ca,
            "token": base64::engine::general_purpose::STANDARD.encode(&token)}}),
    );
    inline_plane(
        cpk,
        &org,
        "by-ref",
        json!({"server": server, "tls": {"ca": {"secretRef": "plane-creds"}},
               "auth": {"bearerToken": {"secretRef": "plane-creds"}}}),
        false,
    );
    let named = "pay-build";
    build_on_plane(cpk, &org, named, "pay", "by-ref");
    let done = wait_for(cpk, &org, named, DONE[3], &c);
    assert_eq!(conditions(&done), DONE);
    // A Build naming a BuildPlane that is not there says so.
    build_on_plane(cpk, &org, "lost-build", "lost", "gone");
    let lost = wait_until(
        cpk,
        &org,
        "lost-build",
        &c,
        "a BuildTriggered condition",
        |b| condition(b, "BuildTriggered").is_some(),
    );
    let m = condition(&lost, "BuildTriggered").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(m.contains("\"gone\"") && m.contains("by-ref"), "{m}");
    assert_eq!(argo.handled.lock().unwrap().len(), 2);
}

/// Upstream §10: with no node carrying the label the templates' affinity requires, every build
/// stays Pending and nothing says why. Here the stand-in plays Argo and the scheduler: the
/// first step's pod node is Pending with Argo's `Unschedulable: …` message until a Node
/// labelled `openchoreo.dev/noderole=workflow-runner` exists (a private cluster, so no other
/// test's Node counts; it is the control plane and the build plane at once).
#[test]
fn a_build_no_node_can_take_says_so_until_a_node_can() {
    let cp = cluster::start_private();
    let kc = &cp.kubeconfig;
    install_control_plane(kc);
    cluster::install_argo(kc);
    let org = organization_on(kc, kc, "org-u", cluster::ADMIN);
    let ns = format!("openchoreo-ci-{org}");
    let argo = argo::start(kc, &[&ns], |_| {
        Some(argo::Script::succeed().unschedulable_at("clone-step"))
    });
    let c = start_controller(kc, &[]);
    let name = build(kc, &org, "cart");
    let stuck = "BuildCompleted False BuildUnschedulable";
    let b = wait_for(kc, &org, &name, stuck, &c);
    let message = condition(&b, "BuildCompleted").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    for part in [
        "clone-step is Pending",
        argo::AFFINITY_UNMATCHED,
        "buildplane check",
    ] {
        assert!(message.contains(part), "{part:?} in {message:?}");
    }
    // Nothing but a node ends it: still so a while later, with the one Workflow.
    std::thread::sleep(Duration::from_secs(2));
    assert!(conditions(&get_build(kc, &org, &name)).contains(&stuck.to_owned()));
    // A node the templates select joins: the build runs and finishes, once.
    post(
        kc,
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "runner-1", "labels": {"openchoreo.dev/noderole": "workflow-runner"}}}),
    );
    let b = wait_for(kc, &org, &name, DONE[3], &c);
    assert_eq!(conditions(&b), DONE);
    assert_eq!(argo.handled.lock().unwrap().len(), 1);
    assert!(argo.errors.lock().unwrap().is_empty(), "{:?}", argo.errors);
    // Each status write that moves a condition is one Event (reason and message those of its
    // first warning, else of its furthest condition), the stuck one a Warning; published off
    // the reconcile's path, so waited for. The submit's own write may have waited for the
    // stuck pod (a build seen within 2 s of its submit is one write), and a step may pass
    // faster than a reconcile: BuildTriggered and BuildInProgress may or may not be there.
    let reasons = |kc: &Path| -> Vec<String> {
        events(kc, &org, &name)
            .iter()
            .map(|e| e.split(':').next().unwrap().to_owned())
            .filter(|r| r != "BuildInProgress" && r != "BuildTriggered")
            .collect()
    };
    let expected = ["BuildUnschedulable", "WorkloadUpdated"];
    let started = Instant::now();
    while reasons(kc) != expected && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(reasons(kc), expected, "{:?}", events(kc, &org, &name));
    assert!(
        events(kc, &org, &name).contains(&format!("BuildUnschedulable: {message}")),
        "the Event says what the condition says"
    );
    let (_, list) = cluster::kubectl_like_get(
        kc,
        None,
        &format!("/apis/events.k8s.io/v1/namespaces/{org}/events"),
    );
    let kind_of = |reason: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["reason"] == reason && e["regarding"]["name"] == name.as_str())
            .map(|e| (e["type"].clone(), e["reportingController"].clone()))
    };
    assert_eq!(
        kind_of("BuildUnschedulable").unwrap().0,
        json!("Warning"),
        "a Build that cannot run is a warning"
    );
    assert_eq!(
        kind_of("WorkloadUpdated").unwrap(),
        (json!("Normal"), json!("buildplane"))
    );
    assert!(
        kind_of("BuildCompleted").is_none() && kind_of("BuildInitiated").is_none(),
        "conditions moved by the same write are that write's one Event"
    );
}

/// The holder of Lease `default/<lease>` (`""` when none or no Lease yet).
fn lease_holder(kc: &Path, lease: &str) -> String {
    let (code, lease) = cluster::kubectl_like_get(
        kc,
        None,
        &format!("/apis/coordination.k8s.io/v1/namespaces/default/leases/{lease}"),
    );
    if code != 200 {
        return String::new();
    }
    lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The process id in a holder identity (`<name>_<pid>_<start>`).
fn holder_pid(holder: &str) -> Option<u32> {
    holder.rsplit('_').nth(1)?.parse().ok()
}

/// Waits (bounded by `within`) until Lease `lease` is held by a process other than `not`;
/// returns the holder and how long it took.
fn wait_for_new_holder(kc: &Path, lease: &str, not: &str, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let h = lease_holder(kc, lease);
        if !h.is_empty() && h != not {
            return (h, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no new leader within {within:?} (holder {h:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `sig` (`-KILL`, `-TERM`) to process `pid`.
fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// A number in `lo..hi`, different on each run.
fn random_in(lo: usize, hi: usize) -> usize {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    lo + usize::try_from(r % (hi - lo) as u64).unwrap()
}

/// Builds of `org` whose status has WorkloadUpdated True.
fn builds_done(kc: &Path, org: &str) -> usize {
    let (code, list) = cluster::kubectl_like_get(kc, None, &builds_path(org));
    assert_eq!(code, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| conditions(b).iter().any(|c| c == DONE[3]))
        .count()
}

/// Objects in a list response at `path`.
fn count_at(kc: &Path, path: &str) -> usize {
    let (code, list) = cluster::kubectl_like_get(kc, None, path);
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().unwrap().len()
}

/// The Builds whose reconcile logged a submit, in all of `logs` (one entry per submit).
fn submits(logs: &[String]) -> Vec<String> {
    logs.iter()
        .flat_map(|log| log.lines())
        .filter(|l| l.contains("build_submitted"))
        .map(|l| {
            let build = l.split("build=").nth(1).unwrap_or("");
            build.split('}').next().unwrap_or("").to_owned()
        })
        .collect()
}

/// Lease timing of the election tests (lease 4 s, renew deadline 3 s, retry 0.5 s) and the
/// bounds on the time without a leader the README documents: after a crash, the lease duration
/// and two retry periods (the last renewal is seen up to one retry late, and the expiry noticed
/// up to one retry late), plus slack for the requests on a loaded machine; after SIGTERM, one
/// retry period after the leader stopped its reconciles and released the Lease, plus slack.
const ELECTION: [&str; 9] = [
    "--enable-leader-election",
    "--leader-election-namespace",
    "default",
    "--leader-election-lease-duration",
    "4s",
    "--leader-election-renew-deadline",
    "3s",
    "--leader-election-retry-period",
    "500ms",
];
const ELECTION_BOUND_KILL: Duration = Duration::from_millis(4000 + 2 * 500 + 1500);
const ELECTION_BOUND_TERM: Duration = Duration::from_millis(500 + 2000);

/// Three controller replicas (as a Deployment runs them: a stopped one is replaced) elect a
/// leader on one Lease; 200 Builds of two organizations on two build planes are in flight when
/// the leader is SIGKILLed at a random moment, and the next two leaders are SIGTERMed. Every
/// Build ends with its Workload, each has exactly one Workflow played once, no Build was ever
/// submitted twice (every process logs each submit), and the leaderless gaps stay under the
/// documented bounds. Before leader election, three replicas all reconciled: every Build was
/// submitted by each of them.
#[test]
fn three_replicas_elect_one_leader_and_fail_over_without_a_second_submit() {
    const PER_ORG: usize = 100;
    let plane1 = cluster::with_argo();
    let cp = cluster::start_private();
    let kc = &cp.kubeconfig;
    install_control_plane(kc);
    // The control plane's API server is the second build plane.
    cluster::install_argo(kc);
    let orgs = [
        organization_on(kc, &plane1, "org-ha1", cluster::ADMIN),
        organization_on(kc, kc, "org-ha2", cluster::ADMIN),
    ];
    let planes: [&Path; 2] = [&plane1, kc];
    let step = argo::Script::succeed().slow(Duration::from_millis(500));
    let argos: Vec<argo::Argo> = (0..2)
        .map(|i| {
            let step = step.clone();
            argo::start(
                planes[i],
                &[&format!("openchoreo-ci-{}", orgs[i])],
                move |_| Some(step.clone()),
            )
        })
        .collect();
    let lease = "buildplane-controller";
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", cluster::free_port()))
        .collect();
    let mut cs: Vec<Running> = addrs
        .iter()
        .map(|addr| {
            let mut flags = ELECTION.to_vec();
            flags.extend(["--metrics-addr", addr]);
            start_controller(kc, &flags)
        })
        .collect();
    let started = Instant::now();
    let (mut holder, _) = wait_for_new_holder(kc, lease, "", Duration::from_secs(30));
    eprintln!("first leader after {:?}", started.elapsed());
    // Every replica is ready (its caches listed), the leader and the standbys alike; one leads.
    let get = |url: String| -> (String, String) {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.to_owned(), body.to_owned())
    };
    let waiting = Instant::now();
    while addrs
        .iter()
        .any(|a| get(format!("http://{a}/readyz")).0 != "200")
    {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "a replica never got ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let leading: Vec<bool> = addrs
        .iter()
        .map(|a| {
            let metrics = get(format!("http://{a}/metrics")).1;
            metrics.lines().any(|l| l == "buildplane_leader 1")
        })
        .collect();
    assert_eq!(leading.iter().filter(|l| **l).count(), 1, "{leading:?}");
    let names: Vec<Vec<String>> = (0..2)
        .map(|_| (0..PER_ORG).map(|i| format!("svc-{i}")).collect())
        .collect();
    let workflows = || -> usize {
        (0..2)
            .map(|i| workflow_names(planes[i], &orgs[i]).len())
            .sum()
    };
    let mut gaps = Vec::new();
    std::thread::scope(|s| {
        // The Builds are created four at a time while the leaders are stopped.
        for (org, names) in orgs.iter().zip(&names) {
            for chunk in names.chunks(PER_ORG / 2) {
                s.spawn(move || {
                    for name in chunk {
                        build_named(kc, org, name, name, "main");
                    }
                });
            }
        }
        // A random moment while Builds are in flight: after 1 to 120 Workflows were submitted.
        let moment = random_in(1, 120);
        let waiting = Instant::now();
        while workflows() < moment {
            assert!(waiting.elapsed() < Duration::from_secs(60), "no Workflows");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (round, sig) in ["-KILL", "-TERM", "-TERM"].into_iter().enumerate() {
            let pid = holder_pid(&holder).unwrap();
            assert!(cs.iter().any(|c| c.child.id() == pid), "{holder}: not ours");
            signal(sig, pid);
            let (next, gap) = wait_for_new_holder(kc, lease, &holder, Duration::from_secs(30));
            let done: usize = orgs.iter().map(|o| builds_done(kc, o)).sum();
            eprintln!(
                "round {round}: {sig} the leader; a new leader after {gap:?}, with {} Workflows submitted and {done} Builds done",
                workflows()
            );
            gaps.push((sig, gap));
            // The Deployment replaces the stopped replica.
            cs.push(start_controller(kc, &ELECTION));
            holder = next;
            std::thread::sleep(Duration::from_millis(random_in(100, 1000) as u64));
        }
    });
    let last = cs
        .iter()
        .find(|c| Some(c.child.id()) == holder_pid(&holder))
        .expect("the last leader is ours");
    let waiting = Instant::now();
    loop {
        let done: usize = orgs.iter().map(|o| builds_done(kc, o)).sum();
        if done == 2 * PER_ORG {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(240),
            "{done} of {} Builds done\n{}",
            2 * PER_ORG,
            last.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "all {} Builds done after {:?}",
        2 * PER_ORG,
        started.elapsed()
    );
    for i in 0..2 {
        let (org, ns) = (&orgs[i], format!("openchoreo-ci-{}", orgs[i]));
        // One Workflow per Build, each played once by the stand-in (never replaced).
        assert_eq!(workflow_names(planes[i], org).len(), PER_ORG);
        let handled = argos[i].handled.lock().unwrap().clone();
        let unique: std::collections::BTreeSet<&String> = handled.iter().collect();
        assert_eq!(
            (handled.len(), unique.len()),
            (PER_ORG, PER_ORG),
            "{ns}: {handled:?}"
        );
        assert!(
            argos[i].errors.lock().unwrap().is_empty(),
            "{:?}",
            argos[i].errors
        );
        // Each Build's Workload was applied.
        let workloads = format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads");
        assert_eq!(count_at(kc, &workloads), PER_ORG);
        for name in &names[i] {
            let b = get_build(kc, org, name);
            assert_eq!(b["status"]["workloadRef"]["name"], json!(name), "{b}");
        }
    }
    // No Build submitted twice, across every process's log.
    let logs: Vec<String> = cs.iter().map(Running::log).collect();
    let all = submits(&logs);
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a Build was submitted twice: {all:?}"
    );
    // A leader killed between a submit and its log line leaves that submit unlogged.
    assert!(all.len() <= 2 * PER_ORG, "{all:?}");
    for (sig, gap) in gaps {
        let bound = match sig {
            "-KILL" => ELECTION_BOUND_KILL,
            _ => ELECTION_BOUND_TERM,
        };
        assert!(
            gap < bound,
            "no leader for {gap:?} after {sig} (bound {bound:?})"
        );
    }
}

/// A Build `name` of component `name` in `org`, labelled into `shard`.
fn build_in_shard(kc: &Path, org: &str, name: &str, shard: &str) {
    post(
        kc,
        &builds_path(org),
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": name, "labels": {SHARD_LABEL: shard}},
            "spec": {"owner": {"projectName": "shop", "componentName": name},
                "repository": {"url": "https://git.example.com/shop.git",
                    "revision": {"branch": "main"}, "appPath": format!("/{name}")},
                "templateRef": {"name": "google-cloud-buildpacks"}}}),
    );
}

const SHARD_LABEL: &str = "sharding.buildplane.openchoreo.dev/key";

/// Two shards, Flux-style: each controller watches the Builds and BuildPlanes labelled with
/// its shard and elects its leader on a Lease of its own. Each builds its own organization's
/// Builds and never reconciles the other's; a Build of neither shard is touched by neither.
#[test]
fn two_shards_split_the_builds_and_each_elects_on_its_own_lease() {
    const PER_SHARD: usize = 10;
    let cp = cluster::start_private();
    let kc = &cp.kubeconfig;
    install_control_plane(kc);
    cluster::install_argo(kc);
    let orgs: Vec<String> = ["a", "b"]
        .iter()
        .map(|shard| {
            let org = organization_on(kc, kc, &format!("org-shard-{shard}"), cluster::ADMIN);
            merge(
                kc,
                &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/buildplanes/default"),
                json!({"metadata": {"labels": {SHARD_LABEL: shard}}}),
            );
            org
        })
        .collect();
    let namespaces: Vec<String> = orgs.iter().map(|o| format!("openchoreo-ci-{o}")).collect();
    let ns_refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let argo = argo::start(kc, &ns_refs, |_| Some(argo::Script::succeed()));
    let selector = |shard: &str| format!("{SHARD_LABEL}={shard}");
    let shards: Vec<Running> = ["a", "b"]
        .iter()
        .map(|shard| {
            let s = selector(shard);
            let mut flags: Vec<&str> = ELECTION.to_vec();
            flags.extend(["--watch-label-selector", &s]);
            start_controller(kc, &flags)
        })
        .collect();
    for (org, shard) in orgs.iter().zip(["a", "b"]) {
        for i in 0..PER_SHARD {
            build_in_shard(kc, org, &format!("svc-{i}"), shard);
        }
    }
    // A Build of org a in no shard: neither controller watches it.
    build_named(kc, &orgs[0], "unsharded", "unsharded", "main");
    for (i, org) in orgs.iter().enumerate() {
        for n in 0..PER_SHARD {
            wait_for(kc, org, &format!("svc-{n}"), DONE[3], &shards[i]);
        }
    }
    // Each shard's Lease is its own, held by its controller.
    for (c, shard) in shards.iter().zip(["a", "b"]) {
        let lease = buildplane::core::control_plane::lease_name(Some(&selector(shard)));
        let holder = lease_holder(kc, &lease);
        assert_eq!(
            holder_pid(&holder),
            Some(c.child.id()),
            "{lease}: {holder:?}"
        );
    }
    // Each controller reconciled its own organization's Builds only.
    for (i, c) in shards.iter().enumerate() {
        let log = c.log();
        let touched: std::collections::BTreeSet<&str> = log
            .lines()
            .filter_map(|l| l.split("reconcile{build=").nth(1))
            .filter_map(|rest| rest.split('/').next())
            .collect();
        assert_eq!(
            touched,
            std::collections::BTreeSet::from([orgs[i].as_str()]),
            "{log}"
        );
        assert_eq!(
            submits(std::slice::from_ref(&log)).len(),
            PER_SHARD,
            "{log}"
        );
    }
    let unsharded = get_build(kc, &orgs[0], "unsharded");
    assert!(unsharded.get("status").is_none(), "{unsharded}");
    assert!(
        unsharded["metadata"].get("finalizers").is_none(),
        "{unsharded}"
    );
    assert_eq!(argo.handled.lock().unwrap().len(), 2 * PER_SHARD);
    // A selector the API server cannot parse stops the controller at start, saying so.
    let o = bin()
        .args(["controller", "--kubeconfig"])
        .arg(kc)
        .args(["--watch-label-selector", "key in (a"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("--watch-label-selector \"key in (a\""),
        "{stderr}"
    );
}

/// `buildplane_api_requests_total` of the controller at `addr`: (cluster, kind) → count.
fn api_requests(addr: &str) -> std::collections::BTreeMap<(String, String), u64> {
    let text = scrape::metrics(addr);
    let counts = scrape::api_requests(&text);
    assert!(!counts.is_empty(), "no request counts in:\n{text}");
    counts
}

/// Once a plane is in use (its client, discovery, the organization's prerequisites), a Build
/// costs four requests: its finalizer, its Workflow, its Workload and one status write, plus
/// one Event. No read: the BuildPlane, the Workload and the build object come from watches,
/// the kubeconfig Secret is read at most every 30 s. (Before: a Secret read and a Workload read
/// per build, a status write at the submit and another at the end, an Event per condition.)
#[test]
fn a_build_at_steady_state_is_four_requests_and_one_event() {
    let plane = cluster::with_argo();
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = organization_on(cpk, &plane, "org-n", cluster::ADMIN);
    let ns = format!("openchoreo-ci-{org}");
    let _argo = argo::start(&plane, &[&ns], |_| Some(argo::Script::succeed().instant()));
    let addr = format!("127.0.0.1:{}", cluster::free_port());
    let c = start_controller(cpk, &["--metrics-addr", &addr]);
    let has_event = |name: &str| {
        let started = Instant::now();
        while events(cpk, &org, name).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no Event on {name}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let warm = build(cpk, &org, "warm");
    wait_for(cpk, &org, &warm, DONE[3], &c);
    has_event(&warm);
    let before = api_requests(&addr);
    const K: u64 = 12;
    let names: Vec<String> = (0..K).map(|i| build(cpk, &org, &format!("c{i}"))).collect();
    for name in &names {
        let b = wait_for(cpk, &org, name, DONE[3], &c);
        assert_eq!(conditions(&b), DONE);
        has_event(name);
    }
    let after = api_requests(&addr);
    // Every trigger was taken up: the queue drains to nothing (a last watch event may still
    // be on its way when the last Event is seen).
    let metrics = || scrape::metrics(&addr);
    let drained = |m: &str| m.lines().any(|l| l == "buildplane_reconcile_queue_depth 0");
    let started = Instant::now();
    while !drained(&metrics()) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(drained(&metrics()), "nothing left waiting: {}", metrics());
    let sent = |cluster: &str, kind: &str| {
        let k = (cluster.to_owned(), kind.to_owned());
        after.get(&k).copied().unwrap_or(0) - before.get(&k).copied().unwrap_or(0)
    };
    let shown = format!("{before:?}\n{after:?}");
    assert_eq!(
        sent("build-plane", "write"),
        K,
        "one Workflow each: {shown}"
    );
    assert_eq!(sent("build-plane", "read"), 0, "{shown}");
    // A Secret read if 30 s passed since the last one; nothing else is read.
    assert!(sent("control-plane", "read") <= 2, "{shown}");
    for name in &names {
        assert_eq!(
            events(cpk, &org, name),
            ["WorkloadUpdated: Workload updated successfully".to_owned()],
            "one Event per build: its one status write"
        );
    }
    assert_eq!(sent("control-plane", "event"), K, "{shown}");
    // Finalizer, Workload and status: 3 each. A build that took longer than 2 s after its
    // submit (a loaded machine) has its status written twice.
    let writes = sent("control-plane", "write");
    assert!(
        (3 * K..=3 * K + K / 4).contains(&writes),
        "{writes} control-plane writes for {K} builds: {shown}"
    );
    // Deleted, each Build's cleanup deletes its Workflow, whose deletion triggers a Build that
    // is gone by then: such a trigger leaves the queue too.
    for name in &names {
        delete(cpk, &format!("{}/{name}", builds_path(&org)));
    }
    for name in &names {
        wait_gone(cpk, &format!("{}/{name}", builds_path(&org)), &c);
    }
    let started = Instant::now();
    while !drained(&metrics()) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(drained(&metrics()), "nothing left waiting: {}", metrics());
}

/// A Workload view that says what it was told, and records what was applied.
struct FixedView(std::sync::Mutex<(buildplane::emit::cluster::Known, Vec<Value>)>);

impl buildplane::emit::cluster::WorkloadView for FixedView {
    fn known(&self, _: &str, _: &str) -> buildplane::emit::cluster::Known {
        self.0.lock().unwrap().0.clone()
    }
    fn applied(&self, w: &Value) {
        self.0.lock().unwrap().1.push(w.clone());
    }
}

/// The Workload apply trusts what the controller's watch knows only as far as the server
/// agrees: a Workload the view shows is applied with its resourceVersion as a precondition. A
/// view that lags behind another writer (here: the Workload taken over by another component)
/// is refused by the server, and the apply reads the Workload and decides again — it does not
/// overwrite. With a current view the apply is one request.
#[test]
fn a_workload_apply_from_a_stale_view_reads_again_and_never_overwrites() {
    use buildplane::emit::EmitFailure;
    use buildplane::emit::cluster::{Known, apply};
    let cp = cluster::start_private();
    let cpk = &cp.kubeconfig;
    install_control_plane(cpk);
    let org = cluster::unique_name("org-v");
    namespace(cpk, &org);
    let ours = |image: &str| {
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
            "metadata": {"name": "cart", "namespace": org},
            "spec": {"owner": {"projectName": "shop", "componentName": "cart"},
                "containers": {"main": {"image": image}}}})
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kube = rt
        .block_on(buildplane::kube::Kube::connect(
            &buildplane::kube::ClientSettings {
                kubeconfig: Some(cpk.to_path_buf()),
                ..Default::default()
            },
        ))
        .unwrap();
    let creator = format!("{org}/cart-build");
    // Created through a view that knows it is absent: one request (discovery aside).
    let view = FixedView(std::sync::Mutex::new((Known::Absent, vec![])));
    let r = rt.block_on(apply(&kube, &ours("r/cart:1"), &creator, Some(&view)));
    assert_eq!(r.unwrap(), format!("applied Workload/{org}/cart"));
    let first = view.0.lock().unwrap().1[0].clone();
    // The view shows it as it is now: one request, and "unchanged".
    view.0.lock().unwrap().0 = Known::Present(first.clone());
    let n = kube.requests();
    let r = rt.block_on(apply(&kube, &ours("r/cart:1"), &creator, Some(&view)));
    assert_eq!(r.unwrap(), format!("unchanged Workload/{org}/cart"));
    assert_eq!(kube.requests() - n, 1, "no read before the apply");
    // Another component takes the name over; the view still shows it as ours.
    let path = format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/cart");
    merge(
        cpk,
        &path,
        json!({"spec": {"owner": {"componentName": "pay"}, "containers": {"main": {"image": "r/pay:1"}}}}),
    );
    let n = kube.requests();
    let r = rt.block_on(apply(&kube, &ours("r/cart:2"), &creator, Some(&view)));
    assert!(
        matches!(&r, Err(EmitFailure::OwnedElsewhere(why)) if why.contains("belongs to component shop/pay")),
        "{r:?}"
    );
    assert_eq!(
        kube.requests() - n,
        2,
        "the apply refused (409), the read, no second apply"
    );
    let (_, w) = cluster::kubectl_like_get(cpk, None, &path);
    assert_eq!(w["spec"]["owner"]["componentName"], "pay");
    assert_eq!(w["spec"]["containers"]["main"]["image"], "r/pay:1");
}
