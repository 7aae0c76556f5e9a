//! The watch survives the API server going away: 100 builds run on a private cluster, the API
//! server is stopped for a few seconds and restarted in the middle, and every Workload is still
//! emitted exactly once. The test plays the Argo controller by writing the recorded success
//! status (fixtures/argo-status/succeeded.yaml, reference §3) into each Workflow, with the
//! workflow-specific names and outputs substituted.

mod argo;
mod cluster;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BUILDS: usize = 100;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT).env_remove("KUBECONFIG");
    c
}

/// The recorded status, retargeted to workflow `wf` of component `component`.
fn status_for(template: &str, wf: &str, component: &str) -> Value {
    let text = template
        .replace("reading-list-service-build-7c9e4a1b-8081ce9a", wf)
        .replace("reading-list-service", component);
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    json!({"status": v["status"]})
}

/// Writes `n` Builds `<prefix>-<i>-build` (components `<prefix>-<i>`) of organization `org`
/// into `dir/builds`; returns the directory and each Build's (Workflow, component).
fn write_builds(dir: &Path, org: &str, prefix: &str, n: usize) -> (PathBuf, Vec<(String, String)>) {
    let builds = dir.join("builds");
    std::fs::create_dir_all(&builds).unwrap();
    let mut workflows = Vec::new();
    for i in 0..n {
        let (name, component) = (format!("{prefix}-{i}-build"), format!("{prefix}-{i}"));
        let text = format!(
            "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata: {{name: {name}, namespace: {org}}}\nspec:\n  owner: {{projectName: default, componentName: {component}}}\n  repository: {{url: 'https://git.example.com/r.git', revision: {{branch: main}}, appPath: /}}\n  templateRef: {{name: google-cloud-buildpacks}}\n"
        );
        std::fs::write(builds.join(format!("{i:03}.yaml")), text).unwrap();
        workflows.push((buildplane::core::naming::workflow_name(&name), component));
    }
    (builds, workflows)
}

#[test]
fn watch_survives_an_api_server_restart_and_emits_each_workload_once() {
    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    cluster::install_argo(kc);
    let dir = tempfile::tempdir().unwrap();
    let (builds, workflows) = write_builds(dir.path(), "faults", "svc", BUILDS);
    let o = bin()
        .arg("apply")
        .arg(&builds)
        .arg("--kubeconfig")
        .arg(kc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let emit = dir.path().join("out");
    let mut child = bin()
        .arg("watch")
        .arg(&builds)
        .args(["--timeout", "180s", "--emit-dir"])
        .arg(&emit)
        .arg("--kubeconfig")
        .arg(kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    std::thread::sleep(Duration::from_secs(2));
    let template =
        std::fs::read_to_string(Path::new(ROOT).join("fixtures/argo-status/succeeded.yaml"))
            .unwrap();
    let finish = |range: std::ops::Range<usize>| {
        for (wf, component) in &workflows[range] {
            let path = format!(
                "/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-faults/workflows/{wf}"
            );
            let (code, body) = cluster::raw_request(
                kc,
                None,
                "PATCH",
                &path,
                Some(&status_for(&template, wf, component)),
                "application/merge-patch+json",
            );
            assert_eq!(code, 200, "{body}");
        }
    };
    finish(0..BUILDS / 2);
    c.stop_apiserver();
    std::thread::sleep(Duration::from_secs(4));
    c.start_apiserver();
    finish(BUILDS / 2..BUILDS);
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "exit {status:?}: {stderr}\n{}",
        lines.join("\n")
    );
    let wrote: Vec<&String> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("wrote "))
        .collect();
    assert_eq!(wrote.len(), BUILDS, "each Workload is written exactly once");
    let mut unique: Vec<&String> = wrote.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), BUILDS);
    for (_, component) in &workflows {
        let f = emit.join(format!("faults/default/{component}/workload.yaml"));
        let w: Value = serde_saphyr::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(w["spec"]["owner"]["componentName"], component.as_str());
    }
}

/// A watch resumed with a resourceVersion older than the API server's watch cache gets `410
/// Gone` and must list again. The restart makes that happen for real: the API server's new
/// watch cache starts at etcd's current revision, which a ConfigMap written just before moved
/// past the watch's last resourceVersion. The debug log shows the 410 and the second listing
/// (which, here, already sees every build finished); each build is reported exactly once.
#[test]
fn a_410_gone_after_a_restart_forces_a_relist() {
    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    cluster::install_argo(kc);
    let dir = tempfile::tempdir().unwrap();
    let (builds, _) = write_builds(dir.path(), "gone", "gone", 3);
    let o = bin()
        .arg("apply")
        .arg(&builds)
        .arg("--kubeconfig")
        .arg(kc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut child = bin()
        .arg("watch")
        .arg(&builds)
        .args(["--timeout", "120s", "--kubeconfig"])
        .arg(kc)
        .env("BUILDPLANE_LOG", "buildplane=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all
    });
    // Wait for the first listing to complete.
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("watch logs its listing");
        if line.contains("listed Workflows") {
            break;
        }
    }
    let (code, body) = cluster::raw_request(
        kc,
        None,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&json!({"metadata": {"generateName": "move-the-revision-"}})),
        "application/json",
    );
    assert_eq!(code, 201, "{body}");
    c.stop_apiserver();
    std::thread::sleep(Duration::from_secs(2));
    c.start_apiserver();
    let _argo = argo::start(kc, &["openchoreo-ci-gone"], |_| {
        Some(argo::Script::succeed().instant())
    });
    let status = child.wait().unwrap();
    let log = reader.join().unwrap().join("\n");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status:?}\n{out}\n{log}");
    assert!(
        log.contains("code=410"),
        "the watch was told 410 Gone:\n{log}"
    );
    assert!(
        log.matches("listing Workflows").count() >= 2,
        "listed again after the 410:\n{log}"
    );
    for i in 0..3 {
        assert_eq!(
            out.matches(&format!("gone/gone-{i}-build Succeeded"))
                .count(),
            1,
            "{out}"
        );
    }
}
