//! `cargo bench --bench apply`: apply 1,000 builds to a real API server (the test cluster of
//! scripts/kube-testenv, started here unless BUILDPLANE_TEST_KUBECONFIG names one), then the
//! same 1,000 again, then 1,000 new builds into the now existing organizations. Reports wall
//! time, requests and writes per build, counted by the client itself.

use buildplane::core::render::Chart;
use buildplane::kube::{ClientSettings, Kube};
use buildplane::pipeline::deploy::{self, DeployOptions};
use buildplane::pipeline::{self, RenderRequest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BUILDS: usize = 1_000;
const ORGS: usize = 10;

fn write_builds(dir: &Path, round: &str, tag: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..BUILDS {
        let text = format!(
            "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata:\n  name: {round}-{i}\n  namespace: bench-org-{org}\nspec:\n  owner: {{projectName: p, componentName: c{i}}}\n  repository:\n    url: https://git.example.com/repo-{i}.git\n    revision: {{branch: {tag}}}\n    appPath: /\n  templateRef: {{name: google-cloud-buildpacks}}\n",
            org = i % ORGS
        );
        std::fs::write(dir.join(format!("{round}-{i:04}.yaml")), text).unwrap();
    }
}

struct Cluster(Option<PathBuf>);
impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = Command::new("scripts/kube-testenv")
                .arg("down")
                .arg(dir)
                .status();
        }
    }
}

async fn apply(
    kube: &Kube,
    req: &RenderRequest,
    opts: &DeployOptions,
) -> (f64, usize, usize, usize) {
    let (r0, w0) = (kube.requests(), kube.writes());
    let t = Instant::now();
    let rendered = pipeline::render_parts(&Chart::builtin(), req).expect("render");
    let prepared = deploy::prepare(kube, &rendered, opts)
        .await
        .expect("prepare");
    let done = deploy::apply(kube, &prepared, opts, |_, _| {})
        .await
        .expect("apply");
    let created = done
        .iter()
        .filter(|(_, a)| *a == deploy::Action::Created)
        .count();
    (
        t.elapsed().as_secs_f64(),
        kube.requests() - r0,
        kube.writes() - w0,
        created,
    )
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let (kubeconfig, _cluster) = match std::env::var_os("BUILDPLANE_TEST_KUBECONFIG") {
        Some(k) => (PathBuf::from(k), Cluster(None)),
        None => {
            let dir = tmp.path().join("cluster");
            let ok = Command::new("scripts/kube-testenv")
                .arg("up")
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success(), "cannot start the test cluster");
            (dir.join("kubeconfig"), Cluster(Some(dir)))
        }
    };
    let kube = Kube::connect(&ClientSettings {
        kubeconfig: Some(kubeconfig),
        ..Default::default()
    })
    .await
    .unwrap();
    let opts = DeployOptions {
        inventory: "bench".into(),
        ..Default::default()
    };
    // The bundle first (CRDs), as an install would.
    let install = RenderRequest::default();
    apply(&kube, &install, &opts).await;

    let first = tmp.path().join("first");
    write_builds(&first, "build", "main");
    let req = |dir: &Path| RenderRequest {
        builds: vec![dir.to_path_buf()],
        default_namespace: Some("default".into()),
        ..Default::default()
    };
    let (t1, r1, w1, c1) = apply(&kube, &req(&first), &opts).await;
    let (t2, r2, w2, c2) = apply(&kube, &req(&first), &opts).await;
    // 1,000 more builds into the same, now existing organizations.
    let both = tmp.path().join("both");
    std::fs::create_dir_all(&both).unwrap();
    for e in std::fs::read_dir(&first).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), both.join(e.file_name())).unwrap();
    }
    write_builds(&both, "next", "main");
    let (t3, r3, w3, c3) = apply(&kube, &req(&both), &opts).await;
    println!(
        "apply of {BUILDS} builds in {ORGS} organizations to kube-apiserver 1.20 on loopback:"
    );
    println!(
        "  first apply (namespaces too): {t1:.2} s, {r1} requests ({:.2}/build), {w1} writes, {c1} created",
        r1 as f64 / BUILDS as f64
    );
    println!("  second apply, same builds:    {t2:.2} s, {r2} requests, {w2} writes, {c2} created");
    println!(
        "  {BUILDS} new builds, namespaces exist: {t3:.2} s, {r3} requests ({:.2}/new build), {w3} writes, {c3} created",
        r3 as f64 / BUILDS as f64
    );
}
