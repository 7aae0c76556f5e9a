//! `cargo bench --bench controller`: three test API servers it starts (scripts/kube-testenv), a
//! control plane and two build planes, one per organization (namespace, Secret, BuildPlane).
//! `BUILDPLANE_BENCH_BUILDS` Build custom resources (10,000 unless set), half in each
//! organization, are created at once; the controller runs as the rendered Deployment runs it,
//! with leader election (the clock starts once it holds the Lease); the Argo stand-in of
//! tests/argo on each plane completes each Workflow at once (one status write). The figure is
//! the time from the first create to the last Workload in the control plane, with the HTTP
//! requests and writes the controller sent (counted at its clients' wire, logged at shutdown),
//! its peak resident memory and the CPU time of every process. A run that has not finished
//! after `BUILDPLANE_BENCH_TIMEOUT_SECS` (900 unless set) reports how far it got.

#[path = "../tests/argo/mod.rs"]
mod argo;

use base64::Engine as _;
use buildplane::controller::openchoreo;
use buildplane::core::control_plane;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ORGS: [&str; 2] = ["bench-a", "bench-b"];

/// The number of Builds: `BUILDPLANE_BENCH_BUILDS`, else 10,000.
fn builds_wanted() -> usize {
    std::env::var("BUILDPLANE_BENCH_BUILDS")
        .ok()
        .map(|v| {
            v.replace([',', '_'], "")
                .parse()
                .expect("BUILDPLANE_BENCH_BUILDS: a number")
        })
        .unwrap_or(10_000)
}

/// How long to wait for the Workloads: `BUILDPLANE_BENCH_TIMEOUT_SECS`, else 900 s.
fn timeout() -> Duration {
    Duration::from_secs(
        std::env::var("BUILDPLANE_BENCH_TIMEOUT_SECS")
            .ok()
            .map(|v| v.parse().expect("BUILDPLANE_BENCH_TIMEOUT_SECS: a number"))
            .unwrap_or(900),
    )
}

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
    let builds_n = builds_wanted();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/buildplane");
    sh(Command::new("cargo").args(["build", "--release", "-q", "--bin", "buildplane"]));
    let tmp = tempfile::tempdir().unwrap();
    let cp_dir = tmp.path().join("cp");
    let plane_dirs = ORGS.map(|org| tmp.path().join(format!("plane-{org}")));
    let _cp_down = up(&cp_dir);
    let _planes_down: Vec<Down> = plane_dirs.iter().map(|d| up(d)).collect();
    let cp = cp_dir.join("kubeconfig");
    let planes = plane_dirs.clone().map(|d| d.join("kubeconfig"));
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
    for plane in &planes {
        sh(&mut run(plane, &["apply", "--set", "buildNamespaces={}"]));
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let cpc = rt.block_on(client(&cp));
    // One organization per build plane: its namespace, the plane's kubeconfig as a Secret, and
    // a BuildPlane naming it.
    for (org, plane) in ORGS.iter().zip(&planes) {
        let kubeconfig = inline_ca(&std::fs::read_to_string(plane).unwrap());
        rt.block_on(async {
            let ns: Api<DynamicObject> = Api::all_with(cpc.clone(), &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()));
            let post = |api: Api<DynamicObject>, v: Value| async move {
                let o: DynamicObject = serde_json::from_value(v).unwrap();
                api.create(&PostParams::default(), &o).await.unwrap();
            };
            post(ns, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": org}})).await;
            let secrets: Api<DynamicObject> = Api::namespaced_with(cpc.clone(), org, &ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()));
            post(secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plane"},
                "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(&kubeconfig)}})).await;
            let bps: Api<DynamicObject> = Api::namespaced_with(cpc.clone(), org, &openchoreo("BuildPlane", "buildplanes"));
            post(bps, json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "BuildPlane", "metadata": {"name": "default"},
                "spec": {"kubernetesCluster": {"clusterRef": {"name": "plane"}}}})).await;
        });
    }
    let _argo: Vec<argo::Argo> = ORGS
        .iter()
        .zip(&planes)
        .map(|(org, plane)| {
            argo::start(plane, &[&format!("openchoreo-ci-{org}")], |_| {
                Some(argo::Script::succeed().instant())
            })
        })
        .collect();
    // As the rendered Deployment runs it: with leader election, the Lease in its namespace.
    let log = tmp.path().join("controller.log");
    let mut controller = run(
        &cp,
        &[
            "controller",
            "--log-format",
            "json",
            "--enable-leader-election",
        ],
    )
    .env("BUILDPLANE_LOG", "buildplane=info")
    .env("POD_NAMESPACE", control_plane::NAMESPACE)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    // The clock starts once it leads.
    let leases: Api<Lease> = Api::namespaced(cpc.clone(), control_plane::NAMESPACE);
    let waiting = Instant::now();
    while rt
        .block_on(leases.get_opt(&control_plane::lease_name(None)))
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
        .is_none()
    {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "the controller took no Lease in 60 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));

    // Workloads as they appear, counted from one metadata watch.
    let workloads: Api<PartialObjectMeta<DynamicObject>> =
        Api::all_with(cpc.clone(), &openchoreo("Workload", "workloads"));
    let applied = Arc::new(Mutex::new(HashSet::<String>::new()));
    let seen = applied.clone();
    rt.spawn(async move {
        let mut events = watcher(workloads, watcher::Config::default()).boxed();
        while let Some(e) = events.next().await {
            if let Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) = e {
                let key = format!(
                    "{}/{}",
                    m.metadata.namespace.unwrap_or_default(),
                    m.metadata.name.unwrap_or_default()
                );
                seen.lock().unwrap().insert(key);
            }
        }
    });
    let cpu_before = cpu_seconds(controller.id(), &cp_dir, &plane_dirs);

    let started = Instant::now();
    rt.block_on(
        futures::stream::iter((0..builds_n).map(|i| {
            let org = ORGS[i % ORGS.len()];
            let api: Api<DynamicObject> =
                Api::namespaced_with(cpc.clone(), org, &openchoreo("Build", "builds"));
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
    eprintln!(
        "{builds_n} Builds created in {:.1} s",
        created.as_secs_f64()
    );
    let all_builds: Api<DynamicObject> = Api::all_with(cpc.clone(), &openchoreo("Build", "builds"));
    let mut peak_kb = 0;
    let (mut last_n, mut last_change, mut last_report) = (0, Instant::now(), Instant::now());
    let done = loop {
        peak_kb = peak_kb.max(rss_kb(controller.id()));
        let n = applied.lock().unwrap().len();
        if n >= builds_n {
            break Ok(started.elapsed());
        }
        if n != last_n {
            (last_n, last_change) = (n, Instant::now());
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  {:>5.0} s: {n} Workloads, controller {:.0} MB",
                started.elapsed().as_secs_f64(),
                rss_kb(controller.id()) as f64 / 1024.0
            );
        }
        if started.elapsed() > timeout() {
            break Err(n);
        }
        // No progress for 30 s: a build that ended any other way would keep this loop
        // waiting; stop and say which.
        if last_change.elapsed() > Duration::from_secs(30) {
            last_change = Instant::now();
            let ended_otherwise: Vec<String> = rt
                .block_on(all_builds.list(&ListParams::default()))
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
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Let the last status writes land, then stop the controller for its request counts.
    std::thread::sleep(Duration::from_secs(2));
    peak_kb = peak_kb.max(rss_kb(controller.id()));
    let cpu_after = cpu_seconds(controller.id(), &cp_dir, &plane_dirs);
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
        "controller (--enable-leader-election), three kube-apiservers 1.20 on loopback (a control plane, two build planes; {} cores), {builds_n} Build CRs in two organizations created at once:",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    match done {
        Ok(done) => println!(
            "  created in {:.1} s; all {builds_n} Workloads applied after {:.1} s",
            created.as_secs_f64(),
            done.as_secs_f64()
        ),
        Err(n) => println!(
            "  created in {:.1} s; only {n} of {builds_n} Workloads applied after {:.0} s (BUILDPLANE_BENCH_TIMEOUT_SECS)",
            created.as_secs_f64(),
            timeout().as_secs_f64()
        ),
    }
    println!(
        "  requests {requests} ({:.2} per build: control plane {}, build planes {}); writes {writes} ({:.2} per build: control plane {}, build planes {})",
        requests / builds_n as f64,
        n("control_plane_requests"),
        n("build_plane_requests"),
        writes / builds_n as f64,
        n("control_plane_writes"),
        n("build_plane_writes"),
    );
    let events = n("control_plane_events");
    println!(
        "  of those, Events published: {events} ({:.2} per build); without them {:.2} requests and {:.2} writes per build",
        events / builds_n as f64,
        (requests - events) / builds_n as f64,
        (writes - events) / builds_n as f64,
    );
    println!(
        "  controller peak resident memory: {:.1} MB",
        peak_kb as f64 / 1024.0
    );
    let cpu: Vec<String> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|((who, after), (_, before))| format!("{who} {:.1}", after - before))
        .collect();
    println!(
        "  CPU seconds from the first create to the end: {}",
        cpu.join(", ")
    );
}

/// User and system CPU seconds of a process so far.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, fields 14 and 15 of proc(5), counted from the state (field 3); 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the controller, each API server and etcd, and this process (the Argo
/// stand-ins, the creates and the Workload watch).
fn cpu_seconds(controller: u32, cp_dir: &Path, plane_dirs: &[PathBuf]) -> Vec<(String, f64)> {
    let pid = |dir: &Path, file: &str| -> u32 {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let mut out = vec![("controller".to_owned(), cpu_of(controller))];
    for (who, dir) in std::iter::once(("control plane", cp_dir))
        .chain(plane_dirs.iter().map(|d| ("build plane", d.as_path())))
    {
        out.push((
            format!("{who} kube-apiserver"),
            cpu_of(pid(dir, "apiserver.pid")),
        ));
        out.push((format!("{who} etcd"), cpu_of(pid(dir, "etcd.pid"))));
    }
    out.push((
        "bench and Argo stand-ins".to_owned(),
        cpu_of(std::process::id()),
    ));
    out
}
