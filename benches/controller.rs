//! `cargo bench --bench controller`: three test API servers it starts (scripts/kube-testenv), a
//! control plane and two build planes, one per organization (namespace, Secret, BuildPlane).
//! `BUILDPLANE_BENCH_BUILDS` Build custom resources (10,000 unless set), half in each
//! organization, are created at once; the controller runs as the rendered Deployment runs it,
//! two replicas with leader election (the clock starts once one holds the Lease); the Argo
//! stand-in of tests/argo on each plane completes each Workflow at once (one status write).
//! The figure is the time from the first create to the last Workload in the control plane,
//! with the HTTP requests and writes the leader sent (counted at its clients' wire, read from
//! its `buildplane_api_requests_total`), the peak resident memory of both replicas and the CPU
//! time of every process. Then the leader is killed (SIGKILL) and a Build created: the time
//! until the standby leads, and until that Build's Workload is applied, is the failover time.
//! A run that has not finished after `BUILDPLANE_BENCH_TIMEOUT_SECS` (900 unless set) reports
//! how far it got.

#[path = "../tests/argo/mod.rs"]
mod argo;
#[path = "../tests/scrape/mod.rs"]
mod scrape;

use base64::Engine as _;
use buildplane::controller::openchoreo;
use buildplane::core::control_plane;
use futures::StreamExt;
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
    // Built by `cargo bench` with the bench's own (optimized) profile: no second build.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_buildplane"));
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
    // As the rendered Deployment runs it: two replicas, leader election, the Lease in its
    // namespace; each serves its metrics.
    let controllers: Vec<Replica> = ["replica-0", "replica-1"]
        .iter()
        .map(|name| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let log = tmp.path().join(format!("{name}.log"));
            let child = run(
                &cp,
                &[
                    "controller",
                    "--log-format",
                    "json",
                    "--enable-leader-election",
                    "--metrics-addr",
                    &addr,
                ],
            )
            .env("BUILDPLANE_LOG", "buildplane=info")
            .env("POD_NAMESPACE", control_plane::NAMESPACE)
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
            Replica { child, addr, log }
        })
        .collect();
    // The clock starts once one leads.
    let waiting = Instant::now();
    let leader = loop {
        if let Some(i) = controllers.iter().position(|c| c.leads()) {
            break i;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no replica led within 60 s:\n{}",
            std::fs::read_to_string(&controllers[0].log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let standby = 1 - leader;
    let (leader_pid, standby_pid) = (
        controllers[leader].child.id(),
        controllers[standby].child.id(),
    );
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
    let cpu_before = cpu_seconds([leader_pid, standby_pid], &cp_dir, &plane_dirs);

    let started = Instant::now();
    rt.block_on(
        futures::stream::iter((0..builds_n).map(|i| {
            let cpc = cpc.clone();
            async move { create_build(&cpc, ORGS[i % ORGS.len()], &format!("c{i}")).await }
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
    let (mut peak_kb, mut standby_peak_kb) = (0, 0);
    let (mut last_n, mut last_change, mut last_report) = (0, Instant::now(), Instant::now());
    let done = loop {
        peak_kb = peak_kb.max(rss_kb(leader_pid));
        standby_peak_kb = standby_peak_kb.max(rss_kb(standby_pid));
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
                "  {:>5.0} s: {n} Workloads, leader {:.0} MB",
                started.elapsed().as_secs_f64(),
                rss_kb(leader_pid) as f64 / 1024.0
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
    // Let the last status writes land, then read the leader's request counts.
    std::thread::sleep(Duration::from_secs(2));
    peak_kb = peak_kb.max(rss_kb(leader_pid));
    standby_peak_kb = standby_peak_kb.max(rss_kb(standby_pid));
    let cpu_after = cpu_seconds([leader_pid, standby_pid], &cp_dir, &plane_dirs);
    let sent = controllers[leader].api_requests();
    let n = |cluster: &str, kinds: &[&str]| -> f64 {
        kinds
            .iter()
            .map(|k| {
                sent.get(&(cluster.to_owned(), (*k).to_owned()))
                    .copied()
                    .unwrap_or(0)
            })
            .sum::<u64>() as f64
    };
    let all = ["read", "write", "event"];
    let changes = ["write", "event"];

    // Failover: the leader is killed (SIGKILL: no release of the Lease), a Build is created at
    // once; timed until the standby leads and until that Build's Workload is applied.
    let mut controllers = controllers;
    let killed = Instant::now();
    controllers[leader].child.kill().unwrap();
    let _ = controllers[leader].child.wait();
    rt.block_on(create_build(&cpc, ORGS[0], "failover"));
    let (mut led_after, mut built_after) = (None, None);
    while built_after.is_none() || led_after.is_none() {
        if led_after.is_none() && controllers[standby].leads() {
            led_after = Some(killed.elapsed());
        }
        if built_after.is_none()
            && applied
                .lock()
                .unwrap()
                .contains(&format!("{}/failover", ORGS[0]))
        {
            built_after = Some(killed.elapsed());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "no failover within 120 s:\n{}",
            std::fs::read_to_string(&controllers[standby].log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sh(Command::new("kill").args(["-TERM", &standby_pid.to_string()]));
    assert!(controllers[standby].child.wait().unwrap().success());

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
    let per = |v: f64| v / builds_n as f64;
    println!(
        "  requests {} ({:.2} per build: control plane {}, build planes {}); writes {} ({:.2} per build: control plane {}, build planes {})",
        n("control-plane", &all) + n("build-plane", &all),
        per(n("control-plane", &all) + n("build-plane", &all)),
        n("control-plane", &all),
        n("build-plane", &all),
        n("control-plane", &changes) + n("build-plane", &changes),
        per(n("control-plane", &changes) + n("build-plane", &changes)),
        n("control-plane", &changes),
        n("build-plane", &changes),
    );
    let events = n("control-plane", &["event"]);
    println!(
        "  of those, Events published: {events} ({:.2} per build); without them {:.2} requests and {:.2} writes per build; reads {:.2} per build",
        per(events),
        per(n("control-plane", &all) + n("build-plane", &all) - events),
        per(n("control-plane", &changes) + n("build-plane", &changes) - events),
        per(n("control-plane", &["read"]) + n("build-plane", &["read"])),
    );
    println!(
        "  peak resident memory: leader {:.1} MB, standby {:.1} MB",
        peak_kb as f64 / 1024.0,
        standby_peak_kb as f64 / 1024.0
    );
    println!(
        "  failover (leader SIGKILLed, lease 15 s): the standby led after {:.1} s; a Build created at the kill had its Workload after {:.1} s",
        led_after.unwrap().as_secs_f64(),
        built_after.unwrap().as_secs_f64()
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

/// Creates Build `<component>-build` of component `component` in `org`.
async fn create_build(cpc: &kube::Client, org: &str, component: &str) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cpc.clone(), org, &openchoreo("Build", "builds"));
    let b: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": format!("{component}-build")},
        "spec": {"owner": {"projectName": "shop", "componentName": component},
            "repository": {"url": "https://git.example.com/shop.git",
                "revision": {"branch": "main"}, "appPath": "/"},
            "templateRef": {"name": "google-cloud-buildpacks"}}}))
    .unwrap();
    api.create(&PostParams::default(), &b).await.unwrap();
}

/// A controller replica: its process, metrics address and log.
struct Replica {
    child: std::process::Child,
    addr: String,
    log: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn leads(&self) -> bool {
        scrape::metrics(&self.addr)
            .lines()
            .any(|l| l == "buildplane_leader 1")
    }

    /// `buildplane_api_requests_total`: (cluster, kind) → requests.
    fn api_requests(&self) -> std::collections::BTreeMap<(String, String), u64> {
        scrape::api_requests(&scrape::metrics(&self.addr))
    }
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

/// CPU seconds of the controllers (leader, standby), each API server and etcd, and this
/// process (the Argo stand-ins, the creates and the Workload watch).
fn cpu_seconds(controllers: [u32; 2], cp_dir: &Path, plane_dirs: &[PathBuf]) -> Vec<(String, f64)> {
    let pid = |dir: &Path, file: &str| -> u32 {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let mut out = vec![
        ("leader".to_owned(), cpu_of(controllers[0])),
        ("standby".to_owned(), cpu_of(controllers[1])),
    ];
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
