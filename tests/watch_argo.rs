//! `buildplane watch` against the real API server with the Argo stand-in (tests/argo) running
//! every build through its steps: success (with `nodes` and with `compressedNodes`), failure at
//! each step, errors, deletion mid-run, a missing `workload-cr`, slow steps; the Build
//! conditions are checked against upstream's table; the Workload reaches all three targets.

mod argo;
mod cluster;
mod gitd;

use argo::{Outcome, Script};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT).env_remove("KUBECONFIG");
    c
}

/// Writes one Build per component (google-cloud-buildpacks: no parameters) into `dir/builds`
/// for organization `org`, applies them, and returns the directory.
fn apply_builds(kc: &Path, dir: &Path, org: &str, components: &[&str]) -> PathBuf {
    let builds = dir.join("builds");
    std::fs::create_dir_all(&builds).unwrap();
    for c in components {
        let text = format!(
            "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\n\
             metadata: {{name: {c}-build, namespace: {org}}}\n\
             spec:\n  owner: {{projectName: shop, componentName: {c}}}\n\
             \x20 repository: {{url: 'https://git.example.com/shop.git', revision: {{branch: main}}, appPath: /{c}}}\n\
             \x20 templateRef: {{name: google-cloud-buildpacks}}\n"
        );
        std::fs::write(builds.join(format!("{c}.yaml")), text).unwrap();
    }
    let o = bin()
        .arg("apply")
        .arg(&builds)
        .args(["--inventory", org, "--kubeconfig"])
        .arg(kc)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    builds
}

/// A running `watch -o json` and its stdout lines as they come.
struct Watching {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

fn watch_json(kc: &Path, builds: &Path, extra: &[&str]) -> Watching {
    let mut child = bin()
        .arg("watch")
        .arg(builds)
        .args(["-o", "json", "--kubeconfig"])
        .arg(kc)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Watching {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Watching {
    /// Reads until `n` events have arrived (the initial list reports 4 Pending steps per build).
    fn wait_for_events(&mut self, n: usize) {
        while self.seen.len() < n {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => self.seen.push(l),
                Err(e) => panic!("watch stopped talking ({e}); so far: {:#?}", self.seen),
            }
        }
    }

    /// Waits for the end: exit code, every event, stderr.
    fn finish(mut self) -> (Option<i32>, Vec<Value>, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
        let events = self
            .seen
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        (status.code(), events, stderr)
    }
}

/// Per build: the step changes after the first listing (phase other than Pending), in order.
fn steps_by_build(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event"] == "step") {
        if e["phase"] != "Pending" {
            out.entry(e["build"].as_str().unwrap().to_owned())
                .or_default()
                .push(format!(
                    "{} {}",
                    e["step"].as_str().unwrap(),
                    e["phase"].as_str().unwrap()
                ));
        }
    }
    out
}

fn finished<'a>(events: &'a [Value], build: &str) -> &'a Value {
    let mut found = events
        .iter()
        .filter(|e| e["event"] == "finished" && e["build"] == build);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("{build} never finished"));
    assert!(found.next().is_none(), "{build} finished twice");
    first
}

/// `type status reason` of each condition, in order.
fn conditions(finished: &Value) -> Vec<String> {
    finished["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["type"], c["status"], c["reason"]).replace('"', ""))
        .collect()
}

fn component_of(wf: &Value) -> String {
    wf.pointer("/metadata/labels/component-name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

const OK_STEPS: [&str; 8] = [
    "clone-step Running",
    "clone-step Succeeded",
    "build-step Running",
    "build-step Succeeded",
    "push-step Running",
    "push-step Succeeded",
    "workload-create-step Running",
    "workload-create-step Succeeded",
];
const FAILED: [&str; 3] = [
    "BuildInitiated True BuildInitiated",
    "BuildTriggered True BuildTriggered",
    "BuildCompleted False BuildFailed",
];

/// One build of the table: its script, the step changes watch reports, its conditions
/// (`type status reason`), and whether a Workload is emitted.
struct Case {
    component: &'static str,
    script: Script,
    steps: Vec<&'static str>,
    conditions: Vec<&'static str>,
    workload: bool,
}

fn case(
    component: &'static str,
    script: Script,
    steps: Vec<&'static str>,
    conditions: Vec<&'static str>,
    workload: bool,
) -> Case {
    Case {
        component,
        script,
        steps,
        conditions,
        workload,
    }
}

#[test]
fn every_outcome_ends_with_upstreams_conditions() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let org = cluster::unique_name("outcomes");
    let ok: Vec<&str> = OK_STEPS.to_vec();
    let upto = |n: usize, last: &'static str| {
        let mut v: Vec<&str> = OK_STEPS[..n].to_vec();
        v.push(last);
        v
    };
    let done = vec![
        "BuildInitiated True BuildInitiated",
        "BuildTriggered True BuildTriggered",
        "BuildCompleted True BuildCompleted",
    ];
    let with = |extra: &'static str| {
        let mut v = done.clone();
        v.push(extra);
        v
    };
    let failed = FAILED.to_vec();
    let cases: Vec<Case> = vec![
        case(
            "ok",
            Script::succeed(),
            ok.clone(),
            with("WorkloadUpdated True WorkloadUpdated"),
            true,
        ),
        case(
            "packed",
            Script::succeed().compressed(),
            ok.clone(),
            with("WorkloadUpdated True WorkloadUpdated"),
            true,
        ),
        case(
            "fail-clone",
            Script::new(Outcome::FailAt("clone-step")),
            upto(1, "clone-step Failed"),
            failed.clone(),
            false,
        ),
        case(
            "fail-build",
            Script::new(Outcome::FailAt("build-step")),
            upto(3, "build-step Failed"),
            failed.clone(),
            false,
        ),
        case(
            "fail-push",
            Script::new(Outcome::FailAt("push-step")),
            upto(5, "push-step Failed"),
            failed.clone(),
            false,
        ),
        case(
            "fail-workload",
            Script::new(Outcome::FailAt("workload-create-step")),
            upto(7, "workload-create-step Failed"),
            failed.clone(),
            false,
        ),
        case(
            "error-build",
            Script::new(Outcome::ErrorAt("build-step")),
            upto(3, "build-step Failed"),
            failed.clone(),
            false,
        ),
        case(
            "error-wf",
            Script::new(Outcome::WorkflowError(
                "clusterworkflowtemplate.argoproj.io \"google-cloud-buildpacks\" not found".into(),
            )),
            vec![],
            failed.clone(),
            false,
        ),
        case(
            "deleted",
            Script::new(Outcome::DeleteAt("push-step")),
            upto(4, "push-step Running"),
            failed.clone(),
            false,
        ),
        case(
            "no-cr",
            Script::new(Outcome::NoWorkloadCr),
            ok.clone(),
            with("WorkloadUpdated False WorkloadUpdateFailed"),
            false,
        ),
    ];
    let components: Vec<&str> = cases.iter().map(|c| c.component).collect();
    let builds = apply_builds(&kc, dir.path(), &org, &components);
    let emit = dir.path().join("out");
    let emit_arg = emit.to_str().unwrap();
    let mut w = watch_json(&kc, &builds, &["--timeout", "120s", "--emit-dir", emit_arg]);
    w.wait_for_events(4 * cases.len());
    let scripts: BTreeMap<String, Script> = cases
        .iter()
        .map(|c| (c.component.to_owned(), c.script.clone()))
        .collect();
    let ns = format!("openchoreo-ci-{org}");
    let stand_in = argo::start(&kc, &[&ns], move |wf| {
        scripts.get(&component_of(wf)).cloned()
    });
    let (code, events, stderr) = w.finish();
    assert!(stand_in.errors.lock().unwrap().is_empty());
    assert_eq!(code, Some(1), "some builds failed: {stderr}");
    let steps = steps_by_build(&events);
    for Case {
        component,
        steps: want_steps,
        conditions: want_conditions,
        workload,
        ..
    } in &cases
    {
        let build = format!("{org}/{component}-build");
        let got: Vec<&str> = steps
            .get(&build)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(&got, want_steps, "{build} steps");
        let f = finished(&events, &build);
        assert_eq!(&conditions(f), want_conditions, "{build}: {f}");
        let file = emit.join(format!("{org}/shop/{component}/workload.yaml"));
        assert_eq!(file.exists(), *workload, "{build}: {f}");
    }
    // What the user is told beyond the conditions.
    let msg = |c: &str| finished(&events, &format!("{org}/{c}-build"))["message"].clone();
    assert!(msg("error-wf").as_str().unwrap().contains("not found"));
    assert!(msg("deleted").as_str().unwrap().contains("deleted"));
    assert!(msg("fail-push").as_str().unwrap().contains("failed"));
    let no_cr = finished(&events, &format!("{org}/no-cr-build"));
    assert!(
        no_cr["workloadError"]
            .as_str()
            .unwrap()
            .contains("no workload-cr")
    );
    assert_eq!(
        no_cr["image"],
        format!("{}/shop-no-cr:default-{}", argo::REGISTRY, argo::REVISION)
    );
    let ok = finished(&events, &format!("{org}/packed-build"));
    assert_eq!(ok["workload"]["metadata"]["namespace"], org.as_str());
    assert_eq!(ok["workload"]["spec"]["owner"]["componentName"], "packed");
}

#[test]
fn slow_steps_show_progress_and_the_timeout_ends_the_watch() {
    let kc = cluster::with_argo();
    let dir = tempfile::tempdir().unwrap();
    let org = cluster::unique_name("slow");
    let builds = apply_builds(&kc, dir.path(), &org, &["slow"]);
    let mut w = watch_json(&kc, &builds, &["--timeout", "4s"]);
    w.wait_for_events(4);
    let ns = format!("openchoreo-ci-{org}");
    let _stand_in = argo::start(&kc, &[&ns], |_| {
        Some(Script::succeed().slow(Duration::from_millis(1500)))
    });
    let (code, events, stderr) = w.finish();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("timed out after 4 s; still running:")
            && stderr.contains(&format!("{org}/slow-build")),
        "{stderr}"
    );
    let steps = steps_by_build(&events);
    let got = &steps[&format!("{org}/slow-build")];
    assert!(
        got.len() >= 2 && got.len() < OK_STEPS.len(),
        "some steps, not all: {got:?}"
    );
    assert_eq!(got[..], OK_STEPS[..got.len()]);
    assert!(!events.iter().any(|e| e["event"] == "finished"));
}

#[test]
fn the_workload_reaches_a_directory_a_git_branch_and_the_control_plane() {
    let kc = cluster::with_argo();
    // The shared cluster is the control plane too: Workloads go to namespace <org>.
    cluster::install_workload_crd(&kc);
    let dir = tempfile::tempdir().unwrap();
    let org = cluster::unique_name("targets");
    let (code, body) = cluster::raw_request(
        &kc,
        None,
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": org}})),
        "application/json",
    );
    assert_eq!(code, 201, "{body}");
    let daemon = gitd::Daemon::start();
    let (repo, url) = daemon.repo("results");
    let builds = apply_builds(&kc, dir.path(), &org, &["cart"]);
    let emit = dir.path().join("out");
    let args = [
        "--timeout",
        "60s",
        "--emit-dir",
        emit.to_str().unwrap(),
        "--emit-git",
        &url,
        "--emit-branch",
        "main",
        "--emit-path",
        "workloads/{org}/{component}.yaml",
        "--emit-author",
        "Build Bot <bot@example.com>",
        "--emit-message",
        "{build}: {image} from {commit}",
        "--emit-cluster",
    ];
    let mut w = watch_json(&kc, &builds, &args);
    w.wait_for_events(4);
    let ns = format!("openchoreo-ci-{org}");
    let stand_in = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let (code, events, stderr) = w.finish();
    assert_eq!(code, Some(0), "{stderr}\n{events:#?}");
    drop(stand_in);
    let build = format!("{org}/cart-build");
    let f = finished(&events, &build);
    let image = format!("{}/shop-cart:default-{}", argo::REGISTRY, argo::REVISION);
    let path = format!("workloads/{org}/cart.yaml");
    let notes: Vec<&str> = f["emitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_eq!(notes[0], format!("applied Workload/{org}/cart"));
    assert!(notes[1].starts_with("wrote "), "{notes:?}");
    assert!(
        notes[2].starts_with("committed ") && notes[2].ends_with(&format!("main:{path}")),
        "{notes:?}"
    );
    // The same bytes in the directory and on the branch; the commit says what was built.
    let file = std::fs::read_to_string(emit.join(&path)).unwrap();
    let committed = gitd::git_raw(&repo, &["show", &format!("main:{path}")], b"");
    assert_eq!(file, committed);
    let w: Value = serde_saphyr::from_str(&file).unwrap();
    assert_eq!(w["metadata"]["namespace"], org.as_str());
    assert_eq!(w["spec"]["containers"]["main"]["image"], image.as_str());
    let log = gitd::git(&repo, &["log", "--format=%an <%ae>|%s", "main"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "Build Bot <bot@example.com>|cart-build: {image} from {}",
                argo::REVISION
            )
            .as_str(),
            "fixture <fixture@example.com>|init",
        ]
    );
    let (code, live) = cluster::kubectl_like_get(
        &kc,
        None,
        &format!("/apis/openchoreo.dev/v1alpha1/namespaces/{org}/workloads/cart"),
    );
    assert_eq!(code, 200);
    assert_eq!(live["spec"]["containers"]["main"]["image"], image.as_str());
    // Watching the finished build again emits nothing new anywhere.
    let (code, events, stderr) = watch_json(&kc, &builds, &args).finish();
    assert_eq!(code, Some(0), "{stderr}");
    let again: Vec<&str> = finished(&events, &build)["emitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(again.len(), 3, "{again:?}");
    assert!(
        again.iter().all(|n| n.starts_with("unchanged ")),
        "{again:?}"
    );
    assert_eq!(
        gitd::git(&repo, &["rev-list", "--count", "main"]),
        "2",
        "no second commit"
    );
}

#[test]
fn bad_emit_settings_fail_before_any_request() {
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    let build = Path::new(ROOT).join("fixtures/builds/greeter-docker.yaml");
    for (flags, message) in [
        (
            vec!["--emit-dir", "/tmp/x", "--emit-path", "{team}/w.yaml"],
            "--emit-path",
        ),
        (
            vec!["--emit-git", "/tmp/r.git", "--emit-author", "nobody"],
            "--emit-author",
        ),
        (
            vec!["--emit-git", "/tmp/r.git", "--emit-branch", "a..b"],
            "--emit-branch",
        ),
    ] {
        let o = bin()
            .arg("watch")
            .arg(&build)
            .args(&flags)
            .arg("--kubeconfig")
            .arg(kc.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    assert_eq!(counter.count(), 0, "no request was made");
}
