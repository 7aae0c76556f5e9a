//! kubectl's and Helm's flags where their meaning matches, run as a user runs them: the real
//! binary, stdin, exit codes, and (for `apply --dry-run` and `apply -o`) the real API server of
//! tests/cluster, or a connection counter where nothing may be sent.

mod cluster;

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const GREETER: &str = "fixtures/builds/greeter-docker.yaml";
const GREETER_WORKFLOW: &str = "greeter-build-0a1b2c3d-ccd3e8e5";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// Runs with `input` on stdin (a writer that is refused early gets a broken pipe: ignored).
fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `args` against the cluster of `kubeconfig`.
fn bp(kubeconfig: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}\nstdout: {}",
        text(&o.stderr),
        text(&o.stdout)
    );
    text(&o.stdout)
}

/// Bad input: exit code 2, nothing on stdout, one error line holding every needle.
fn assert_refused(o: &Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty(), "stdout: {}", text(&o.stdout));
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in {err}");
    }
}

fn items(list: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(list).unwrap_or_else(|e| panic!("{e}: {list}"));
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "List");
    v["items"].as_array().unwrap().clone()
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} missing"))
}

/// The greeter Build in a fresh organization, in a directory of its own.
struct Org {
    name: String,
    dir: tempfile::TempDir,
}

impl Org {
    fn new() -> Org {
        let org = Org {
            name: cluster::unique_name("flags"),
            dir: tempfile::tempdir().unwrap(),
        };
        let src = std::fs::read_to_string(Path::new(ROOT).join(GREETER)).unwrap();
        let text = src.replace("namespace: default", &format!("namespace: {}", org.name));
        std::fs::write(org.dir.path().join("greeter.yaml"), text).unwrap();
        org
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn namespace(&self) -> String {
        format!("openchoreo-ci-{}", self.name)
    }

    fn inventory(&self) -> String {
        format!("inv-{}", self.name)
    }

    /// What `-o name` lists for the Build's objects, in apply order.
    fn names(&self) -> Vec<String> {
        vec![
            format!("namespace/{}", self.namespace()),
            "serviceaccount/workflow-sa".to_owned(),
            "role.rbac.authorization.k8s.io/workflow-role".to_owned(),
            "rolebinding.rbac.authorization.k8s.io/workflow-role-binding".to_owned(),
            format!("workflow.argoproj.io/{GREETER_WORKFLOW}"),
        ]
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// Values: Helm's flags, Helm's documented examples, Helm's order.

/// Helm's documented `--set` forms and `--set-json` example, on keys of this chart, with a
/// values file on stdin and a `--set-file`, given out of order on purpose: Helm applies -f
/// files, then --set-json, --set, --set-string, --set-file, whatever the command line says.
#[test]
fn helm_values_flags_follow_helms_examples_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "script.sh", b"#!/bin/sh\necho \"hi, $1\"\n");
    let set_file = format!("extraObjects[0].data.script={}", script.display());
    let stdin_values = b"global:\n  commonLabels: {from-stdin: \"yes\"}\nextraObjects:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: from-file, namespace: default}}\n";
    let o = run_with_stdin(
        &[
            "render",
            "-o",
            "json",
            "--set-file",
            &set_file,
            "--set-string",
            "extraObjects[0].data.port=80",
            // a=b,c=d and outer.inner=value
            "--set",
            "global.commonLabels.team=blue,global.commonLabels.tier=build",
            // nodeSelector."kubernetes\.io/role"=master, after the shell
            "--set",
            r"global.commonLabels.kubernetes\.io/role=master",
            // name={a,b,c}
            "--set",
            "buildNamespaces={openchoreo-ci-a,openchoreo-ci-b}",
            // servers[0].port=80: lower than --set-string, whatever the order here
            "--set",
            "extraObjects[0].data.port=81",
            // name=value1\,value2
            "--set",
            r"extraObjects[0].data.csv=value1\,value2",
            "-f",
            "-",
            // master.sidecars=[{...}]: replaces the file's list, then --set writes into it
            "--set-json",
            r#"extraObjects=[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"sidecars","namespace":"default"},"data":{"image":"myImage"}}]"#,
        ],
        stdin_values,
    );
    let items = items(&ok(&o));
    let cm = find(&items, "ConfigMap", "sidecars");
    assert_eq!(
        cm["data"],
        json!({"image": "myImage", "port": "80", "csv": "value1,value2",
            "script": "#!/bin/sh\necho \"hi, $1\"\n"})
    );
    assert!(
        !items.iter().any(|o| o["metadata"]["name"] == "from-file"),
        "--set-json replaces the list the values file gave"
    );
    let ns = find(&items, "Namespace", "openchoreo-build-plane");
    for (k, v) in [
        ("from-stdin", "yes"),
        ("team", "blue"),
        ("tier", "build"),
        ("kubernetes.io/role", "master"),
    ] {
        assert_eq!(ns["metadata"]["labels"][k], v, "label {k}");
    }
    find(&items, "Namespace", "openchoreo-ci-a");
    find(&items, "Namespace", "openchoreo-ci-b");
}

#[test]
fn bad_values_flags_are_one_line_and_apply_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), "big", &vec![b'a'; (4 << 20) + 1]);
    let at_cap = write(dir.path(), "at-cap", &vec![b'a'; 4 << 20]);
    let json = r#"extraObjects=[{"apiVersion":"v1","kind":"ConfigMap""#;
    assert_refused(
        &run(&["render", "--set-json", json]),
        &["--set-json ", "extraObjects: invalid JSON"],
    );
    assert_refused(
        &run(&["render", "--set-json", "a=1 2"]),
        &["--set-json \"a=1 2\": a: unexpected \"2\" after its JSON value"],
    );
    assert_refused(
        &run(&[
            "render",
            "--set-file",
            "global.commonLabels.x=/nonexistent/file",
        ]),
        &["--set-file global.commonLabels.x: /nonexistent/file: No such file"],
    );
    let set_big = format!("global.commonLabels.x={}", big.display());
    assert_refused(
        &run(&["render", "--set-file", &set_big]),
        &["--set-file global.commonLabels.x: ", "larger than 4 MiB"],
    );
    // A file at the cap is read.
    let set_cap = format!("extraObjects[0].data.big={}", at_cap.display());
    let cm = r#"extraObjects=[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"}}]"#;
    let objects = items(&ok(&run(&[
        "render",
        "-o",
        "json",
        "--set-file",
        &set_cap,
        "--set-json",
        cm,
    ])));
    let big_cm = find(&objects, "ConfigMap", "big");
    assert_eq!(big_cm["data"]["big"].as_str().map(str::len), Some(4 << 20));
    assert_refused(
        &run_with_stdin(&["render", "-f", "-"], &vec![b'#'; (4 << 20) + 1]),
        &["stdin: larger than 4 MiB"],
    );
    assert_refused(
        &run_with_stdin(&["render", "-f", "-"], b"global: [1"),
        &["stdin: invalid YAML"],
    );
    assert_refused(
        &run_with_stdin(&["render", "-f", "-", "--set-file", "a=-"], b"{}"),
        &["stdin can be read only once, and is named by -f -, --set-file a=-"],
    );
    // Good flags beside a bad one change nothing: the bad one refuses the whole render.
    assert_refused(
        &run(&[
            "render",
            "--set",
            "global.commonLabels.a=b",
            "--set-json",
            "global.commonLabels.c=nope",
        ]),
        &["--set-json \"global.commonLabels.c=nope\": global.commonLabels.c: invalid JSON"],
    );
}

// ---------------------------------------------------------------------------------------------
// -n and -o, without a cluster.

#[test]
fn namespace_is_checked_as_typed_and_only_means_the_builds_organization() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(Path::new(ROOT).join(GREETER)).unwrap();
    let bare = write(
        dir.path(),
        "bare.yaml",
        src.replace("  namespace: default\n", "").as_bytes(),
    );
    let bare = bare.to_str().unwrap();
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    let kc = kc.path().to_str().unwrap();
    let bad = ["-n/--namespace \"Bad Org\": not a valid organization"];
    assert_refused(&run(&["render", "-n", "Bad Org", bare]), &bad);
    assert_refused(
        &run(&["apply", "-n", "Bad Org", bare, "--kubeconfig", kc]),
        &bad,
    );
    assert_refused(
        &run(&["diff", "--namespace=Bad Org", bare, "--kubeconfig", kc]),
        &bad,
    );
    assert_refused(
        &run(&["watch", "-n", "Bad Org", bare, "--kubeconfig", kc]),
        &bad,
    );
    assert_refused(
        &run(&["logs", "-n", "ACME", bare, "--kubeconfig", kc]),
        &["\"ACME\""],
    );
    assert_eq!(counter.count(), 0, "a refused -n sent a request");
    // The bundle's namespace is a value, and -n says so when it could not apply to anything.
    assert_refused(
        &run(&["render", "-n", "argo"]),
        &["no BUILD was given", "--set namespace=argo"],
    );
    assert_refused(
        &run(&["render", "--install", "-n", "argo"]),
        &["--set namespace=argo"],
    );
    let o = ok(&run(&[
        "render",
        "--install",
        "-n",
        "acme",
        bare,
        "-o",
        "name",
    ]));
    assert!(o.contains("namespace/openchoreo-ci-acme\n"), "{o}");
    assert!(o.contains("namespace/openchoreo-build-plane\n"), "{o}");
    let help = ok(&run(&["render", "--help"]));
    for needle in [
        "Organization (namespace) of the Builds that name none",
        "the bundle's namespace is the value `namespace`",
        "--set-json < --set < --set-string < --set-file",
    ] {
        assert!(help.contains(needle), "render --help lacks {needle:?}");
    }
}

#[test]
fn render_prints_kubectl_names_and_refuses_what_makes_no_sense() {
    let o = ok(&run(&["render", GREETER, "-o", "name"]));
    assert_eq!(
        o.lines().collect::<Vec<_>>(),
        [
            "namespace/openchoreo-ci-default",
            "serviceaccount/workflow-sa",
            "role.rbac.authorization.k8s.io/workflow-role",
            "rolebinding.rbac.authorization.k8s.io/workflow-role-binding",
            &format!("workflow.argoproj.io/{GREETER_WORKFLOW}"),
        ]
    );
    let out = tempfile::tempdir().unwrap();
    assert_refused(
        &run(&[
            "render",
            "-o",
            "name",
            "--out-dir",
            out.path().to_str().unwrap(),
        ]),
        &["-o name cannot be combined with --out-dir"],
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    for o in [
        run(&["render", "-o", "wide"]),
        run(&["apply", "-o", "wide", GREETER]),
        run(&["diff", "-o", "name", GREETER]),
        run(&["apply", "--dry-run=maybe", GREETER]),
    ] {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(o.stdout.is_empty());
        assert!(text(&o.stderr).contains("[possible values:"));
    }
}

#[test]
fn apply_refuses_flags_that_mean_nothing_together_before_any_request() {
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    let kc = kc.path().to_str().unwrap();
    for (args, needle) in [
        (
            &["--dry-run", "--wait"][..],
            "--wait cannot be combined with --dry-run=server: a dry run submits no build to follow",
        ),
        (
            &["--dry-run=client", "--wait"][..],
            "--wait cannot be combined with --dry-run=client",
        ),
        (
            &["-o", "json", "--wait"][..],
            "--wait cannot be combined with -o json: --wait prints the builds' progress on stdout",
        ),
        (
            &["--dry-run=client", "--prune"][..],
            "--prune cannot be combined with --dry-run=client",
        ),
    ] {
        let mut all = vec!["apply", GREETER, "--kubeconfig", kc];
        all.extend_from_slice(args);
        assert_refused(&run(&all), &[needle]);
    }
    assert_eq!(counter.count(), 0);
}

// ---------------------------------------------------------------------------------------------
// --dry-run=client|server and apply -o, where they reach (or must not reach) the cluster.

/// `--dry-run=client` renders and validates and sends nothing: pointed at a connection counter,
/// it succeeds with zero connections, where the server dry run of the same inputs connects.
#[test]
fn client_dry_run_sends_no_request_and_prints_what_apply_would_send() {
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    let args = ["apply", "--install", GREETER, "--dry-run=client"];
    let out = ok(&bp(kc.path(), &args));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&"Workflow/openchoreo-ci-default/greeter-build-0a1b2c3d-ccd3e8e5 rendered (client dry run)"),
        "{out}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.ends_with("objects rendered and validated, nothing sent (client dry run)"),
        "{out}"
    );
    let names = ok(&bp(kc.path(), &[&args[..], &["-o", "name"]].concat()));
    assert!(
        names.starts_with("customresourcedefinition.apiextensions.k8s.io/"),
        "{names}"
    );
    assert!(
        names.ends_with(&format!("workflow.argoproj.io/{GREETER_WORKFLOW}\n")),
        "{names}"
    );
    let objects = items(&ok(&bp(kc.path(), &[&args[..], &["-o", "json"]].concat())));
    assert_eq!(objects.len(), names.lines().count());
    let inventory = |o: &Value| {
        o["metadata"]["labels"]["buildplane.openchoreo.dev/inventory"]
            .as_str()
            .map(str::to_owned)
    };
    let wf = find(&objects, "Workflow", GREETER_WORKFLOW);
    assert_eq!(inventory(wf).as_deref(), Some("builds"));
    let cwt = find(&objects, "ClusterWorkflowTemplate", "docker");
    assert_eq!(inventory(cwt).as_deref(), Some("build-plane"));
    let yaml = ok(&bp(kc.path(), &[&args[..], &["-o", "yaml"]].concat()));
    assert_eq!(yaml.matches("---\n").count(), objects.len());
    assert_eq!(
        counter.count(),
        0,
        "--dry-run=client connected to the server"
    );

    let server = bp(kc.path(), &["apply", GREETER, "--dry-run=server"]);
    assert_eq!(server.status.code(), Some(2), "{}", text(&server.stderr));
    assert!(counter.count() > 0, "the server dry run did not connect");
}

#[test]
fn server_dry_run_prints_names_or_the_servers_objects_and_changes_nothing() {
    let kc = cluster::with_argo();
    let org = Org::new();
    let inv = org.inventory();
    let base = ["apply", &org.path(), "--inventory", &inv];
    let names = ok(&bp(
        &kc,
        &[&base[..], &["--dry-run=server", "-o", "name"]].concat(),
    ));
    assert_eq!(names.lines().collect::<Vec<_>>(), org.names(), "{names}");
    let objects = items(&ok(&bp(
        &kc,
        &[&base[..], &["--dry-run=server", "-o", "json"]].concat(),
    )));
    assert_eq!(objects.len(), 5);
    // The Namespace is the server's answer (it made a uid); nothing shows managedFields.
    let ns = find(&objects, "Namespace", &org.namespace());
    assert!(ns["metadata"]["uid"].is_string(), "{ns}");
    assert!(
        objects
            .iter()
            .all(|o| o["metadata"].get("managedFields").is_none())
    );
    assert_eq!(
        ns["metadata"]["labels"]["buildplane.openchoreo.dev/inventory"],
        inv
    );
    // A bare --dry-run is still the server dry run.
    let bare = ok(&bp(&kc, &[&base[..], &["--dry-run"]].concat()));
    assert!(
        bare.lines().last().unwrap().ends_with("(server dry run)"),
        "{bare}"
    );
    let (code, _) = cluster::kubectl_like_get(
        &kc,
        None,
        &format!("/api/v1/namespaces/{}", org.namespace()),
    );
    assert_eq!(code, 404, "a server dry run created the namespace");
}

#[test]
fn apply_prints_kubectl_names_or_the_applied_objects() {
    let kc = cluster::with_argo();
    let org = Org::new();
    let inv = org.inventory();
    let base = ["apply", &org.path(), "--inventory", &inv];
    let names = ok(&bp(&kc, &[&base[..], &["-o", "name"]].concat()));
    assert_eq!(names.lines().collect::<Vec<_>>(), org.names(), "{names}");
    let (code, live_ns) = cluster::kubectl_like_get(
        &kc,
        None,
        &format!("/api/v1/namespaces/{}", org.namespace()),
    );
    assert_eq!(code, 200);
    // Again: nothing is sent, and -o json prints the objects as they are in the cluster.
    let objects = items(&ok(&bp(&kc, &[&base[..], &["-o", "json"]].concat())));
    assert_eq!(objects.len(), 5);
    let ns = find(&objects, "Namespace", &org.namespace());
    assert_eq!(ns["metadata"]["uid"], live_ns["metadata"]["uid"]);
    assert!(
        objects
            .iter()
            .all(|o| o["metadata"]["resourceVersion"].is_string())
    );
    assert!(
        objects
            .iter()
            .all(|o| o["metadata"].get("managedFields").is_none())
    );
    let wf = find(&objects, "Workflow", GREETER_WORKFLOW);
    assert_eq!(wf["metadata"]["namespace"], org.namespace());
    let yaml = ok(&bp(&kc, &[&base[..], &["-o", "yaml"]].concat()));
    assert_eq!(yaml.matches("\n---\n").count() + 1, 5, "{yaml}");
    assert!(
        yaml.starts_with("---\napiVersion: v1\nkind: Namespace\n"),
        "{yaml}"
    );
    let plain = ok(&bp(&kc, &base));
    assert_eq!(plain.lines().last(), Some("5 unchanged"), "{plain}");
}
