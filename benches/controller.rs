//! `cargo bench --bench controller`: two test API servers it starts (scripts/kube-testenv), a
//! control plane and a build plane. 1,000 Build custom resources are created at once; the Argo
//! stand-in of tests/argo completes each Workflow at once (one status write); the figure is the
//! time from the first create to the 1,000th Workload in the control plane, with the HTTP
//! requests and writes the controller sent (counted at its clients' wire, logged at shutdown)
//! and its peak resident memory.

#[path = "../tests/argo/mod.rs"]
mod argo;

use base64::Engine as _;
use buildplane::controller::openchoreo;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BUILDS: usize = 1000;
const ORG: &str = "bench";

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stops a test cluster however the bench ends.
struct Down(PathBuf);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new("scripts/kube-testenv")
            .arg("down")
            .arg(&self.0)
            .status();
    }
}

fn up(dir: &Path) -> Down {
    sh(Command::new("scripts/kube-testenv").arg("up").arg(dir));
    Down(dir.to_path_buf())
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// The kubeconfig with its CA file inline: a BuildPlane's Secret may name no file.
fn inline_ca(kubeconfig: &str) -> String {
    let mut out = String::new();
    for line in kubeconfig.lines() {
        match line.split_once("certificate-authority: ") {
            Some((indent, path)) => {
                let pem = std::fs::read(path.trim()).unwrap();
                let data = base64::engine::general_purpose::STANDARD.encode(pem);
                out.push_str(&format!("{indent}certificate-authority-data: {data}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn main() {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/buildplane");
    sh(Command::new("cargo").args(["build", "--release", "-q", "--bin", "buildplane"]));
    let tmp = tempfile::tempdir().unwrap();
    let (cp_dir, plane_dir) = (tmp.path().join("cp"), tmp.path().join("plane"));
    let _cp_down = up(&cp_dir);
    let _plane_down = up(&plane_dir);
    let (cp, plane) = (cp_dir.join("kubeconfig"), plane_dir.join("kubeconfig"));
    let run = |kc: &Path, args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .arg("--kubeconfig")
            .arg(kc)
            .env_remove("KUBECONFIG");
        c
    };
    // The test API server (v1.20) predates policy/v1: no PodDisruptionBudget.
    sh(&mut run(
        &cp,
        &[
            "apply",
            "--control-plane",
            "--set",
            "controller.podDisruptionBudget=false",
        ],
    ));
    sh(&mut run(&plane, &["apply", "--set", "buildNamespaces={}"]));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let cpc = rt.block_on(client(&cp));
    let kubeconfig = inline_ca(&std::fs::read_to_string(&plane).unwrap());
    rt.block_on(async {
        let ns: Api<DynamicObject> = Api::all_with(cpc.clone(), &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
        let post = |api: Api<DynamicObject>, v: Value| async move {
            let o: DynamicObject = serde_json::from_value(v).unwrap();
            api.create(&PostParams::default(), &o).await.unwrap();
        };
        post(ns, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ORG}})).await;
        let secrets: Api<DynamicObject> = Api::namespaced_with(cpc.clone(), ORG, &ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()));
        post(secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plane"},
            "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(&kubeconfig)}})).await;
        let planes: Api<DynamicObject> = Api::namespaced_with(cpc.clone(), ORG, &openchoreo("BuildPlane", "buildplanes"));
        post(planes, json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "BuildPlane", "metadata": {"name": "default"},
            "spec": {"kubernetesCluster": {"clusterRef": {"name": "plane"}}}})).await;
    });
    let _argo = argo::start(&plane, &[&format!("openchoreo-ci-{ORG}")], |_| {
        Some(argo::Script::succeed().instant())
    });
    let log = tmp.path().join("controller.log");
    let mut controller = run(&cp, &["controller", "--log-format", "json"])
        .env("BUILDPLANE_LOG", "buildplane=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let builds: Api<DynamicObject> =
        Api::namespaced_with(cpc.clone(), ORG, &openchoreo("Build", "builds"));
    let workloads: Api<DynamicObject> =
        Api::namespaced_with(cpc.clone(), ORG, &openchoreo("Workload", "workloads"));
    let started = Instant::now();
    rt.block_on(
        futures::stream::iter((0..BUILDS).map(|i| {
            let api = builds.clone();
            async move {
                let b: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
                    "metadata": {"name": format!("c{i}-build")},
                    "spec": {"owner": {"projectName": "shop", "componentName": format!("c{i}")},
                        "repository": {"url": "https://git.example.com/shop.git",
                            "revision": {"branch": "main"}, "appPath": "/"},
                        "templateRef": {"name": "google-cloud-buildpacks"}}}))
                .unwrap();
                api.create(&PostParams::default(), &b).await.unwrap();
            }
        }))
        .buffer_unordered(32)
        .for_each(|_| async {}),
    );
    let created = started.elapsed();
    let mut peak_kb = 0;
    let done = loop {
        peak_kb = peak_kb.max(rss_kb(controller.id()));
        let n = rt
            .block_on(workloads.list_metadata(&ListParams::default()))
            .unwrap()
            .items
            .len();
        if n == BUILDS {
            break started.elapsed();
        }
        // A build that ended any other way would keep this loop waiting: stop and say which.
        let ended_otherwise: Vec<String> = rt
            .block_on(builds.list(&ListParams::default()))
            .unwrap()
            .items
            .iter()
            .filter(|b| {
                b.data
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "BuildFailed"))
            })
            .map(|b| b.metadata.name.clone().unwrap_or_default())
            .collect();
        assert!(
            ended_otherwise.is_empty(),
            "builds failed: {ended_otherwise:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {n} Workloads after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Let the last status writes land, then stop the controller for its request counts.
    std::thread::sleep(Duration::from_secs(2));
    peak_kb = peak_kb.max(rss_kb(controller.id()));
    sh(Command::new("kill").args(["-TERM", &controller.id().to_string()]));
    assert!(controller.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let shutdown: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "shutdown")
        .unwrap_or_else(|| panic!("no shutdown event in:\n{text}"));
    let n = |k: &str| shutdown[k].as_u64().unwrap_or(0) as f64;
    let requests = n("control_plane_requests") + n("build_plane_requests");
    let writes = n("control_plane_writes") + n("build_plane_writes");
    println!(
        "controller, two kube-apiservers 1.20 on loopback (2 cores), {BUILDS} Build CRs created at once:"
    );
    println!(
        "  created in {:.1} s; all {BUILDS} Workloads applied after {:.1} s",
        created.as_secs_f64(),
        done.as_secs_f64()
    );
    println!(
        "  requests {requests} ({:.2} per build: control plane {}, build planes {}); writes {writes} ({:.2} per build: control plane {}, build planes {})",
        requests / BUILDS as f64,
        n("control_plane_requests"),
        n("build_plane_requests"),
        writes / BUILDS as f64,
        n("control_plane_writes"),
        n("build_plane_writes"),
    );
    let events = n("control_plane_events");
    println!(
        "  of those, Events published: {events} ({:.2} per build); without them {:.2} requests and {:.2} writes per build",
        events / BUILDS as f64,
        (requests - events) / BUILDS as f64,
        (writes - events) / BUILDS as f64,
    );
    println!(
        "  controller peak resident memory: {:.1} MB",
        peak_kb as f64 / 1024.0
    );
}
