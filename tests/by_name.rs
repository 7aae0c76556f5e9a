//! Builds by name, Argo-CLI style, against the real API server: `list`, `get`, `stop`, and
//! `watch`/`logs` given `ORG/BUILD` instead of a Build file. One organization holds three
//! Builds: the Argo stand-in (tests/argo) finishes `cart`; `pay` and `halt` are left running
//! (the test writes the stand-in's first Running frames itself, so they stay there). `halt` is
//! the one `stop` changes, so the other tests never race it. Logs need a kubelet the test API
//! server does not have, so the logs test replays a recorded exchange from a loopback server,
//! as tests/logs.rs does.

mod argo;
mod cluster;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HOSTILE: &str = "step said \u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT).env_remove("KUBECONFIG");
    c
}

fn run(args: &[&str], kc: &Path) -> Output {
    bin()
        .args(args)
        .arg("--kubeconfig")
        .arg(kc)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The organization with its three builds, set up once for every test of this file.
struct Plane {
    kc: PathBuf,
    org: String,
    dir: PathBuf,
}

impl Plane {
    fn ns(&self) -> String {
        format!("openchoreo-ci-{}", self.org)
    }
    fn file(&self, build: &str) -> PathBuf {
        self.dir.join(format!("{build}.yaml"))
    }
    fn name(&self, build: &str) -> String {
        format!("{}/{build}", self.org)
    }
    fn workflow_path(&self, build: &str) -> String {
        format!(
            "/apis/argoproj.io/v1alpha1/namespaces/{}/workflows/{}",
            self.ns(),
            buildplane::core::naming::workflow_name(build)
        )
    }
    fn workflow(&self, build: &str) -> Value {
        let (code, wf) = cluster::kubectl_like_get(&self.kc, None, &self.workflow_path(build));
        assert_eq!(code, 200, "{wf}");
        wf
    }
}

fn build_text(org: &str, name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("fixtures/builds/greeter-docker.yaml"))
        .unwrap()
        .replace("name: greeter-build-0a1b2c3d", &format!("name: {name}"))
        .replace("namespace: default", &format!("namespace: {org}"))
        .replace("componentName: greeter", &format!("componentName: {name}"))
}

fn plane() -> &'static Plane {
    static PLANE: OnceLock<Plane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let kc = cluster::with_argo();
        let org = cluster::unique_name("names");
        let dir = tempfile::tempdir().unwrap().keep();
        for b in ["cart", "pay", "halt"] {
            std::fs::write(dir.join(format!("{b}.yaml")), build_text(&org, b)).unwrap();
        }
        let p = Plane { kc, org, dir };
        let ns = p.ns();
        let stand_in = argo::start(&p.kc, &[&ns], |wf| {
            (wf["metadata"]["labels"]["build-name"] == "cart").then(argo::Script::succeed)
        });
        let a = bin()
            .arg("apply")
            .arg(&p.dir)
            .args(["--inventory", &p.org, "--kubeconfig"])
            .arg(&p.kc)
            .output()
            .unwrap();
        assert!(a.status.success(), "{}", text(&a.stderr));
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.workflow("cart")["status"]["phase"] != "Succeeded" {
            assert!(
                Instant::now() < deadline,
                "the stand-in did not finish cart"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(stand_in.errors.lock().unwrap().is_empty());
        drop(stand_in);
        // pay and halt: clone-step done, build-step running, as the stand-in writes it.
        for b in ["pay", "halt"] {
            let wf = p.workflow(b);
            let frames = argo::frames(&wf, &argo::Script::succeed(), &|| {
                "2026-01-01T00:00:00Z".to_owned()
            });
            let argo::Frame::Status { mut status, .. } = frames[1].clone() else {
                unreachable!("the second frame is a status")
            };
            if b == "pay" {
                status["message"] = json!(HOSTILE);
            }
            let patch = json!({"metadata": {"labels": {"workflows.argoproj.io/phase": "Running"}},
                "status": status});
            let (code, body) = cluster::raw_request(
                &p.kc,
                None,
                "PATCH",
                &p.workflow_path(b),
                Some(&patch),
                "application/merge-patch+json",
            );
            assert_eq!(code, 200, "{body}");
        }
        p
    })
}

fn no_raw_controls(out: &str) {
    assert!(
        !out.chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "raw control characters reached the output: {out:?}"
    );
}

#[test]
fn list_shows_every_build_of_the_organization_with_its_phase() {
    let p = plane();
    let o = bin()
        .args(["list", "-n", &p.org, "--kubeconfig"])
        .arg(&p.kc)
        .env("BUILDPLANE_LOG", "buildplane=debug")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three rows: {out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ORG", "BUILD", "PHASE", "STEPS", "AGE", "IMAGE"]);
    let row = |b: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(b))
            .unwrap_or_else(|| panic!("no row for {b}: {out}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let cart = row("cart");
    assert_eq!(cart[0], p.org);
    assert_eq!(cart[2..4], ["Succeeded", "4/4"]);
    assert_eq!(
        cart[5],
        format!("{}/default-cart:default-{}", argo::REGISTRY, argo::REVISION)
    );
    let pay = row("pay");
    assert_eq!(pay[2..4], ["Running", "1/4"]);
    assert_eq!(pay[5], "<none>");
    // Sorted by organization and build.
    let builds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(builds, ["cart", "halt", "pay"]);
    // One discovery request and one LIST, not a request per build.
    let log = text(&o.stderr);
    assert!(log.contains("listed builds builds=3 requests=2"), "{log}");

    let o = run(&["list", "-n", &p.org, "-o", "name"], &p.kc);
    assert_eq!(
        text(&o.stdout),
        format!("{0}/cart\n{0}/halt\n{0}/pay\n", p.org)
    );

    let o = run(&["list", "-n", &p.org, "-o", "json"], &p.kc);
    let out = text(&o.stdout);
    no_raw_controls(&out);
    let v: Value = serde_json::from_str(&out).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let item = |b: &str| items.iter().find(|i| i["build"] == b).unwrap();
    assert_eq!(item("cart")["phase"], "Succeeded");
    assert_eq!(
        item("cart")["name"],
        buildplane::core::naming::workflow_name("cart")
    );
    assert_eq!(item("pay")["phase"], "Running");
    assert_eq!(
        item("pay")["message"],
        HOSTILE,
        "the same text, escaped on the wire"
    );
    assert_eq!(item("pay")["steps"][1]["phase"], "Running");

    let o = run(&["list", "-n", &p.org, "-o", "yaml"], &p.kc);
    let out = text(&o.stdout);
    no_raw_controls(&out);
    let y: Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(y, v);

    let o = run(&["list", "-n", &p.org, "-o", "wide"], &p.kc);
    let out = text(&o.stdout);
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head[6..],
        ["WORKFLOW", "TEMPLATE", "REVISION", "STARTED", "FINISHED"]
    );
    assert!(
        out.contains(&format!(
            "{}/{}",
            p.ns(),
            buildplane::core::naming::workflow_name("cart")
        )),
        "{out}"
    );

    // Every organization: ours among the others.
    let o = run(&["list", "-A", "-o", "name"], &p.kc);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let all: BTreeSet<String> = text(&o.stdout).lines().map(str::to_owned).collect();
    for b in ["cart", "halt", "pay"] {
        assert!(all.contains(&p.name(b)), "{all:?}");
    }
}

#[test]
fn list_of_a_bad_or_empty_organization() {
    let p = plane();
    let o = run(&["list", "-n", "Bad_Org"], &p.kc);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: -n: \"Bad_Org\" is not a valid namespace name"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let empty = cluster::unique_name("empty");
    let o = run(&["list", "-n", &empty], &p.kc);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert_eq!(
        text(&o.stderr),
        format!("No builds found in organization {empty}.\n")
    );
    let o = run(&["list", "-n", &empty, "-o", "json"], &p.kc);
    let v: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(v, json!({"items": []}));
}

#[test]
fn get_shows_steps_outputs_and_conditions() {
    let p = plane();
    let o = run(&["get", &p.name("cart")], &p.kc);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let image = format!("{}/default-cart:default-{}", argo::REGISTRY, argo::REVISION);
    assert!(
        out.starts_with(&format!("Build:       {}\n", p.name("cart"))),
        "{out}"
    );
    assert!(out.contains("Phase:       Succeeded\n"), "{out}");
    assert!(
        out.contains("Progress:    ✓ clone  ✓ build  ✓ push  ✓ workload-create\n"),
        "{out}"
    );
    for step in argo::STEPS {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("no line for {step}: {out}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1], "Succeeded", "{line}");
        assert!(cells[2].ends_with('Z') && cells[3].ends_with('Z'), "{line}");
        assert_eq!(cells[4], "1", "{line}");
    }
    assert!(out.contains(&format!("  image      {image}\n")), "{out}");
    assert!(
        out.contains(&format!("  revision   {}\n", argo::REVISION)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  workload   Workload {}/cart of default/cart: containers main ({image}); endpoints rest-api\n",
            p.org
        )),
        "{out}"
    );
    let tokens = |first: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find(|t| t.first().map(String::as_str) == Some(first))
            .unwrap_or_else(|| panic!("no line for {first}: {out}"))
    };
    assert_eq!(
        tokens("BuildCompleted").join(" "),
        "BuildCompleted True BuildCompleted Build completed successfully"
    );
    assert!(out.contains("\nWorkflow conditions:\n"), "{out}");
    assert_eq!(tokens("Completed"), ["Completed", "True"]);

    let o = run(&["get", &p.name("cart"), "-o", "json"], &p.kc);
    let v: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(v["image"], image.as_str());
    assert_eq!(v["result"], "succeeded");
    assert_eq!(v["steps"].as_array().unwrap().len(), 4);
    assert_eq!(v["steps"][3]["step"], "workload-create-step");
    assert_eq!(
        v["workload"]["spec"]["containers"]["main"]["image"],
        image.as_str()
    );
    let o = run(&["get", &p.name("cart"), "-o", "yaml"], &p.kc);
    let y: Value = serde_saphyr::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(y, v);

    // A running build: no outputs yet, its message escaped.
    let o = run(&["get", &p.name("pay")], &p.kc);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    no_raw_controls(&out);
    assert!(out.contains("Phase:       Running\n"), "{out}");
    assert!(
        out.contains("Message:     step said \\e]0;owned\\x07\\e[2J\\x9b31m\\u{202e}txt.exe\n"),
        "{out}"
    );
    assert!(
        out.contains("  workload   not yet: the build has not finished\n"),
        "{out}"
    );
    let o = run(&["get", &p.name("pay"), "-o", "json"], &p.kc);
    let out = text(&o.stdout);
    no_raw_controls(&out);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["message"], HOSTILE);
    assert_eq!(v["result"], Value::Null, "no verdict while it runs");
}

#[test]
fn watch_by_name_and_by_file_end_on_the_same_workflow_with_the_same_result() {
    let p = plane();
    let watch = |arg: &str, out_dir: &Path| {
        let o = bin()
            .args(["watch", arg, "-o", "json", "--timeout", "60s", "--emit-dir"])
            .arg(out_dir)
            .arg("--kubeconfig")
            .arg(&p.kc)
            .output()
            .unwrap();
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{arg}: {out}{}", text(&o.stderr));
        let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(last["event"], "finished", "{out}");
        last
    };
    let dir = tempfile::tempdir().unwrap();
    let (by_file, by_name) = (dir.path().join("file"), dir.path().join("name"));
    let file = watch(p.file("cart").to_str().unwrap(), &by_file);
    let name = watch(&p.name("cart"), &by_name);
    for key in [
        "build",
        "workflow",
        "phase",
        "result",
        "image",
        "revision",
        "conditions",
        "workload",
    ] {
        assert_eq!(file[key], name[key], "{key}: {file} / {name}");
    }
    assert_eq!(name["result"], "succeeded");
    assert_eq!(
        name["workflow"],
        format!(
            "{}/{}",
            p.ns(),
            buildplane::core::naming::workflow_name("cart")
        )
    );
    // Both emitted the same Workload to the same path.
    let rel = format!("{}/default/cart/workload.yaml", p.org);
    let a = std::fs::read(by_file.join(&rel)).unwrap();
    let b = std::fs::read(by_name.join(&rel)).unwrap();
    assert_eq!(a, b);
    // A name and the file of the same build follow it once.
    let o = bin()
        .args(["watch", &p.name("cart")])
        .arg(p.file("cart"))
        .args(["-o", "json", "--kubeconfig"])
        .arg(&p.kc)
        .output()
        .unwrap();
    let finished = text(&o.stdout)
        .lines()
        .filter(|l| l.contains("\"event\":\"finished\""))
        .count();
    assert_eq!(finished, 1, "{}", text(&o.stdout));
}

#[test]
fn stop_asks_argo_to_stop_and_terminate_and_refuses_a_finished_build() {
    let p = plane();
    let o = run(&["stop", &p.name("halt")], &p.kc);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert_eq!(
        out,
        format!(
            "{} stopping (Workflow/{}/{} asked to Stop; exit handlers still run)\n",
            p.name("halt"),
            p.ns(),
            buildplane::core::naming::workflow_name("halt")
        )
    );
    assert_eq!(p.workflow("halt")["spec"]["shutdown"], "Stop");
    assert_eq!(
        p.workflow("pay")["spec"]["shutdown"],
        Value::Null,
        "only halt"
    );
    // Asked again: nothing sent.
    let o = run(&["stop", &p.name("halt")], &p.kc);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("Stop was already requested"),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["stop", "--terminate", &p.name("halt")], &p.kc);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("terminating ("),
        "{}",
        text(&o.stdout)
    );
    let wf = p.workflow("halt");
    assert_eq!(wf["spec"]["shutdown"], "Terminate");
    // The rest of the Workflow is as it was (a merge patch of one field).
    assert_eq!(wf["spec"]["workflowTemplateRef"]["name"], "docker");
    let o = run(&["list", "-n", &p.org], &p.kc);
    assert!(
        text(&o.stdout).contains("Running (Terminate requested)"),
        "{}",
        text(&o.stdout)
    );

    // A finished build: refused as Argo refuses it, exit 1, nothing sent.
    let before = p.workflow("cart")["metadata"]["resourceVersion"].clone();
    let o = run(&["stop", &p.name("cart")], &p.kc);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(
        err,
        format!(
            "error: cannot stop a finished build: {} (Succeeded)\n",
            p.name("cart")
        )
    );
    assert_eq!(p.workflow("cart")["metadata"]["resourceVersion"], before);
    assert_eq!(p.workflow("cart")["spec"]["shutdown"], Value::Null);
}

#[test]
fn an_unknown_build_is_not_found_exit_1_with_one_line() {
    let p = plane();
    let nope = p.name("nope");
    for cmd in [
        vec!["get", nope.as_str()],
        vec!["stop", nope.as_str()],
        vec!["watch", nope.as_str()],
        vec!["logs", nope.as_str()],
        // Nothing is done when one of several is missing.
        vec!["stop", &nope, "halt-and-catch-fire/x"],
    ] {
        let o = run(&cmd, &p.kc);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(o.stdout.is_empty(), "{cmd:?}: {}", text(&o.stdout));
        assert_eq!(err.lines().count(), 1, "{cmd:?}: {err}");
        assert!(
            err.starts_with(&format!("error: not found on the build plane: {nope} (no Workflow in namespace {} labelled target=build,organization-name={},build-name=nope)", p.ns(), p.org)),
            "{cmd:?}: {err}"
        );
    }
    // Not a path and not ORG/BUILD: the file error of today.
    let o = run(&["watch", "no-such-file.yaml"], &p.kc);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "error: no-such-file.yaml: No such file or directory (os error 2)\n"
    );
    // A bad ORG/BUILD for get is bad input.
    let o = run(&["get", "Acme/x"], &p.kc);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr)
            .starts_with("error: Acme/x: organization \"Acme\" is not a valid namespace name"),
        "{}",
        text(&o.stderr)
    );
}

/// The rendered Workflow of fixtures/builds/greeter-docker.yaml, as `render` gives it.
fn greeter_workflow() -> Value {
    let o = bin()
        .args([
            "render",
            "fixtures/builds/greeter-docker.yaml",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "Workflow")
        .unwrap()
        .clone()
}

fn pod(ns: &str, wf: &str, i: usize, step: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{wf}-{step}-{}", 1000 + i), "namespace": ns,
            "labels": {"workflows.argoproj.io/workflow": wf},
            "annotations": {"workflows.argoproj.io/node-name": format!("{wf}[{i}].{step}")}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
}

/// A loopback API server answering from a recording: discovery, the Workflow list (the
/// rendered Workflow when the selector names its labels), the step pods and their logs.
/// Remembers the request lines.
fn replay(workflow: Value) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let ns = workflow["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    let wf = workflow["metadata"]["name"].as_str().unwrap().to_owned();
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
            let pods: Vec<Value> = (0..4)
                .rev()
                .map(|i| pod(&ns, &wf, i, argo::STEPS[i]))
                .collect();
            let (ctype, body) = if path == "/api/v1" {
                ("application/json", json!({"kind": "APIResourceList", "groupVersion": "v1",
                    "resources": [{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"]}]}).to_string())
            } else if path == "/apis/argoproj.io/v1alpha1" {
                ("application/json", json!({"kind": "APIResourceList", "groupVersion": "argoproj.io/v1alpha1",
                    "resources": [{"name": "workflows", "singularName": "workflow", "namespaced": true, "kind": "Workflow", "verbs": ["get", "list", "watch", "patch"]}]}).to_string())
            } else if path.starts_with(&format!(
                "/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows?"
            )) {
                let selected = path.contains("organization-name%3Ddefault")
                    && path.contains("build-name%3Dgreeter-build-0a1b2c3d");
                let items = if selected {
                    vec![workflow.clone()]
                } else {
                    vec![]
                };
                (
                    "application/json",
                    json!({"kind": "WorkflowList", "apiVersion": "argoproj.io/v1alpha1",
                    "metadata": {}, "items": items})
                    .to_string(),
                )
            } else if path.starts_with(&format!("/api/v1/namespaces/{ns}/pods?")) {
                (
                    "application/json",
                    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods})
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

#[test]
fn logs_by_name_reach_the_same_pods_as_logs_by_file_recorded_exchange() {
    let workflow = greeter_workflow();
    let (server, seen) = replay(workflow.clone());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n")).unwrap();
    let logs = |arg: &str| {
        seen.lock().unwrap().clear();
        let o = run(&["logs", arg], &kc);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{arg}: {}{out}", text(&o.stderr));
        let pod_requests: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("/pods"))
            .cloned()
            .collect();
        (out, pod_requests, seen.lock().unwrap().clone())
    };
    let (by_file, file_pods, _) = logs("fixtures/builds/greeter-docker.yaml");
    let (by_name, name_pods, requests) = logs("default/greeter-build-0a1b2c3d");
    assert_eq!(by_name, by_file);
    assert_eq!(name_pods, file_pods);
    assert_eq!(
        by_name.lines().filter(|l| l.starts_with("=== ")).count(),
        4,
        "{by_name}"
    );
    assert!(
        by_name.starts_with("=== greeter-build-0a1b2c3d clone-step ("),
        "{by_name}"
    );
    // One Workflow LIST with the labels, in the build's namespace.
    let lists: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/workflows?"))
        .collect();
    assert_eq!(lists.len(), 1, "{requests:?}");
    assert!(
        lists[0]
            .starts_with("/apis/argoproj.io/v1alpha1/namespaces/openchoreo-ci-default/workflows?"),
        "{lists:?}"
    );
    assert!(
        lists[0].contains("labelSelector=target%3Dbuild%2Corganization-name%3Ddefault%2Cbuild-name%3Dgreeter-build-0a1b2c3d"),
        "{lists:?}"
    );
}
