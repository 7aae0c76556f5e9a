//! `cargo bench --bench watch`, against a test API server it starts (scripts/kube-testenv):
//! 1. emit latency: 1,000 builds are applied and watched by `buildplane watch --emit-dir`; a
//!    writer plays the Argo controller and sets each Workflow to Succeeded (the recorded status
//!    of fixtures/argo-status/succeeded.yaml), noting the time; the latency is from that write's
//!    response to the Workload file appearing (p50, p99).
//! 2. memory: `buildplane watch` following 10,000 running builds, each Workflow with the status
//!    Argo writes while push-step runs (nodes of four steps so far, from the Argo stand-in of
//!    tests/argo); its resident set (VmRSS, peak over 30 s) once it has listed them all.

#[path = "../tests/argo/mod.rs"]
mod argo;

use buildplane::kube::{ClientSettings, Kube};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_builds(dir: &Path, n: usize, org: &str) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let (name, component) = (format!("b{i}"), format!("c{i}"));
            let text = format!("apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata: {{name: {name}, namespace: {org}}}\nspec:\n  owner: {{projectName: default, componentName: {component}}}\n  repository: {{url: 'https://git.example.com/r.git', revision: {{branch: main}}, appPath: /}}\n  templateRef: {{name: google-cloud-buildpacks}}\n");
            std::fs::write(dir.join(format!("{i:05}.yaml")), text).unwrap();
            (buildplane::core::naming::workflow_name(&name), component)
        })
        .collect()
}

/// Stops the test cluster however the bench ends.
struct Down(PathBuf);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new("scripts/kube-testenv")
            .arg("down")
            .arg(&self.0)
            .status();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // Built by `cargo bench` with the bench's own (optimized) profile: no second build.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_buildplane"));
    let tmp = tempfile::tempdir().unwrap();
    let cluster = tmp.path().join("cluster");
    sh(Command::new("scripts/kube-testenv").arg("up").arg(&cluster));
    let _down = Down(cluster.clone());
    let kc = cluster.join("kubeconfig");
    let run = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args)
            .arg("--kubeconfig")
            .arg(&kc)
            .env_remove("KUBECONFIG");
        c
    };
    sh(&mut run(&["apply", "--set", "buildNamespaces={}"]));

    // 1. Emit latency over 1,000 builds.
    let n = 1000;
    let builds = tmp.path().join("latency");
    let workflows = write_builds(&builds, n, "lat");
    sh(
        run(&["apply", builds.to_str().unwrap(), "--inventory", "lat"])
            .arg("--request-timeout")
            .arg("60s"),
    );
    let out = tmp.path().join("out");
    let mut watch = run(&[
        "watch",
        builds.to_str().unwrap(),
        "--emit-dir",
        out.to_str().unwrap(),
        "--timeout",
        "10m",
    ])
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let template = std::fs::read_to_string("fixtures/argo-status/succeeded.yaml").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(workflows_api(&kc, "openchoreo-ci-lat"));
    let mut latencies = Vec::with_capacity(n);
    for (wf, component) in &workflows {
        let text = template
            .replace("reading-list-service-build-7c9e4a1b-8081ce9a", wf)
            .replace("reading-list-service", component);
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        let body = json!({"status": v["status"]});
        rt.block_on(api.patch(wf, &PatchParams::default(), &Patch::Merge(&body)))
            .expect("status written");
        let written = Instant::now();
        let file = out.join(format!("lat/default/{component}/workload.yaml"));
        while !file.exists() {
            std::thread::sleep(Duration::from_micros(200));
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "{component} never emitted"
            );
        }
        latencies.push(written.elapsed());
    }
    assert!(watch.wait().unwrap().success());
    latencies.sort();

    // 2. Memory while watching 10,000 running builds.
    let big = tmp.path().join("memory");
    let running = write_builds(&big, 10_000, "mem");
    sh(run(&["apply", big.to_str().unwrap(), "--inventory", "mem"])
        .arg("--request-timeout")
        .arg("120s"));
    let api = rt.block_on(workflows_api(&kc, "openchoreo-ci-mem"));
    let script = argo::Script::new(argo::Outcome::FailAt("workload-create-step"));
    let now = || "2026-12-01T10:00:00Z".to_owned();
    rt.block_on(
        futures::stream::iter(running.iter().map(|(wf, _)| {
            let frames = argo::frames(&json!({"metadata": {"name": wf}}), &script, &now);
            let argo::Frame::Status { status, .. } = &frames[2] else {
                unreachable!("push-step running is a status")
            };
            let body = json!({"status": status});
            let api = api.clone();
            async move {
                api.patch(wf, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .expect("running status written")
            }
        }))
        .buffer_unordered(16)
        .for_each(|_| async {}),
    );
    let mut watch = run(&["watch", big.to_str().unwrap(), "--timeout", "10m"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak_kb = 0u64;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_secs(1));
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", watch.id())).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap_or(0))
            .unwrap_or(0);
        peak_kb = peak_kb.max(rss);
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = Command::new("scripts/kube-testenv")
        .arg("down")
        .arg(&cluster)
        .status();
    println!("watch, against kube-apiserver 1.20 on loopback (2 cores):");
    println!(
        "  emit latency, status Succeeded -> Workload file written, {n} builds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "  resident memory of `buildplane watch` following 10,000 running builds (status with nodes): {:.1} MB (peak VmRSS over 30 s)",
        peak_kb as f64 / 1024.0
    );
}

/// The Workflows of a namespace, through the same client library the product uses.
async fn workflows_api(kubeconfig: &Path, namespace: &str) -> Api<DynamicObject> {
    let kube = Kube::connect(&ClientSettings {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = kube
        .resource("argoproj.io/v1alpha1", "Workflow")
        .await
        .unwrap()
        .unwrap();
    Api::namespaced_with(kube.client().clone(), namespace, &r.api)
}
