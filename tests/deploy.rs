//! `diff` and `apply` against a real kube-apiserver (tests/cluster): safe order, idempotence,
//! drift, secret masking, inventory and prune, permissions, and no request on bad input.

mod cluster;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn bp(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
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

/// Build files for a fresh organization: the fixture builds with their namespace replaced.
struct Org {
    name: String,
    dir: tempfile::TempDir,
}

impl Org {
    fn new() -> Org {
        Org {
            name: cluster::unique_name("org"),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn namespace(&self) -> String {
        format!("openchoreo-ci-{}", self.name)
    }

    /// Writes a docker Build named `name` (branch `branch`) into the org's directory.
    fn build(&self, name: &str, branch: &str) -> PathBuf {
        let src =
            std::fs::read_to_string(Path::new(ROOT).join("fixtures/builds/greeter-docker.yaml"))
                .unwrap();
        let text = src
            .replace("name: greeter-build-0a1b2c3d", &format!("name: {name}"))
            .replace("namespace: default", &format!("namespace: {}", self.name))
            .replace("branch: main", &format!("branch: {branch}"));
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn inventory(&self) -> String {
        format!("inv-{}", self.name)
    }
}

fn lines_with<'a>(out: &'a str, word: &str) -> Vec<&'a str> {
    // Object lines only (`Kind/[ns/]name action`), not the closing summary.
    out.lines()
        .filter(|l| l.contains('/') && l.ends_with(word))
        .collect()
}

fn get(kc: &Path, path: &str) -> (u16, Value) {
    cluster::kubectl_like_get(kc, None, path)
}

fn workflow_path(ns: &str, name: &str) -> String {
    format!("/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows/{name}")
}

#[test]
fn bundle_install_then_reapply_is_unchanged_and_diff_is_clean() {
    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    let rendered = ok(&Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(ROOT)
        .args(["render", "--install", "fixtures/builds"])
        .output()
        .unwrap());
    let objects =
        rendered.matches("\nkind: ").count() + usize::from(rendered.starts_with("kind: "));
    let first = ok(&bp(kc, &["apply", "--install", "fixtures/builds"]));
    assert_eq!(lines_with(&first, " created").len(), objects, "{first}");
    // Stages: every CRD line comes before every Namespace, which come before the Workflows.
    let pos = |needle: &str| {
        first
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} missing in {first}"))
    };
    assert!(
        pos("CustomResourceDefinition/workflows.argoproj.io created")
            < pos("Namespace/openchoreo-build-plane created")
    );
    assert!(
        pos("Namespace/openchoreo-ci-default created")
            < pos("ServiceAccount/openchoreo-ci-default/workflow-sa created")
    );
    assert!(pos("ClusterWorkflowTemplate/docker created") < pos("Workflow/openchoreo-ci-default/"));

    let second = ok(&bp(kc, &["apply", "--install", "fixtures/builds"]));
    assert_eq!(lines_with(&second, " unchanged").len(), objects, "{second}");
    assert!(
        second.trim_end().ends_with(&format!("{objects} unchanged")),
        "{second}"
    );
    let d = bp(kc, &["diff", "--install", "fixtures/builds"]);
    assert_eq!(
        d.status.code(),
        Some(0),
        "{}{}",
        text(&d.stdout),
        text(&d.stderr)
    );
    assert!(text(&d.stdout).contains(&format!(
        "0 to create, 0 to change, 0 to delete, {objects} unchanged"
    )));

    // What the cluster holds: the CRD is Established, objects carry the inventory label, and
    // the inventory lists them.
    let (code, crd) = get(
        kc,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/workflows.argoproj.io",
    );
    assert_eq!(code, 200);
    let established = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established);
    let (_, dep) = get(
        kc,
        "/apis/apps/v1/namespaces/openchoreo-build-plane/deployments/argo-workflow-controller",
    );
    assert_eq!(
        dep["metadata"]["labels"]["buildplane.openchoreo.dev/inventory"],
        "build-plane"
    );
    let (code, inv) = get(
        kc,
        "/api/v1/namespaces/default/configmaps/buildplane-inventory-builds",
    );
    assert_eq!(code, 200);
    let entries = buildplane::core::plan::Inventory::from_configmap("builds", &inv)
        .unwrap()
        .entries;
    assert!(
        entries
            .values()
            .any(|e| e.kind == "Workflow" && e.name == "greeter-build-0a1b2c3d-ccd3e8e5")
    );
}

#[test]
fn secret_changes_are_masked_in_diff() {
    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    let dir = tempfile::tempdir().unwrap();
    let values = |token: &str| {
        let p = dir.path().join(format!("v-{token}.yaml"));
        let v = json!({
            "argo-workflows": {"enabled": false},
            "global": {"defaultResources": {"enabled": false}},
            "extraObjects": [{"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "registry-credentials", "namespace": "default"},
                "stringData": {"token": token, "user": "robot"}}]
        });
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        p.display().to_string()
    };
    let first = values("s3cr3t-one");
    ok(&bp(kc, &["apply", "-f", &first]));
    let second = values("s3cr3t-two");
    for extra in [&["--no-color"][..], &["-o", "json"][..]] {
        let mut args = vec!["diff", "-f", second.as_str()];
        args.extend_from_slice(extra);
        let d = bp(kc, &args);
        let out = text(&d.stdout);
        assert_eq!(d.status.code(), Some(1), "{out}{}", text(&d.stderr));
        for secret in [
            "s3cr3t-one",
            "s3cr3t-two",
            "czNjcjN0LW9uZQ",
            "czNjcjN0LXR3bw",
        ] {
            assert!(
                !out.contains(secret) && !text(&d.stderr).contains(secret),
                "secret leaked: {out}"
            );
        }
        assert!(
            out.contains("*** (before)") && out.contains("*** (after)"),
            "{out}"
        );
    }
}

#[test]
fn diff_exit_codes_and_apply_of_builds() {
    let kc = cluster::with_argo();
    let org = Org::new();
    org.build("alpha", "main");
    let inv = org.inventory();
    let args = |cmd: &'static str| {
        vec![
            cmd,
            org.path().leak() as &str,
            "--inventory",
            inv.clone().leak(),
        ]
    };
    let d = bp(&kc, &args("diff"));
    assert_eq!(d.status.code(), Some(1), "{}", text(&d.stderr));
    assert!(
        text(&d.stdout).contains("5 to create, 0 to change, 0 to delete, 0 unchanged"),
        "{}",
        text(&d.stdout)
    );
    let out = ok(&bp(&kc, &args("apply")));
    assert_eq!(lines_with(&out, " created").len(), 5, "{out}");
    let d = bp(&kc, &args("diff"));
    assert_eq!(
        d.status.code(),
        Some(0),
        "{}{}",
        text(&d.stdout),
        text(&d.stderr)
    );
    let again = ok(&bp(&kc, &args("apply")));
    assert!(again.trim_end().ends_with("5 unchanged"), "{again}");
    // Errors exit 2: a bad input, and a kubeconfig that is not one.
    let d = bp(&kc, &["diff", "fixtures/bad/missing-url.yaml"]);
    assert_eq!(d.status.code(), Some(2));
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "this: is: not a kubeconfig").unwrap();
    let d = bp(bad.path(), &["diff", org.path().as_str()]);
    assert_eq!(d.status.code(), Some(2));
    let err = text(&d.stderr);
    assert!(err.starts_with("error: kubeconfig "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_field_changed_by_hand_is_shown_and_restored() {
    let kc = cluster::with_argo();
    let org = Org::new();
    org.build("beta", "main");
    let inv = org.inventory();
    ok(&bp(&kc, &["apply", &org.path(), "--inventory", &inv]));
    let role = format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/roles/workflow-role",
        org.namespace()
    );
    let patch = json!({"rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["get"]}]});
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "PATCH",
        &role,
        Some(&patch),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200);
    let d = bp(
        &kc,
        &["diff", &org.path(), "--inventory", &inv, "--no-color"],
    );
    let out = text(&d.stdout);
    assert_eq!(d.status.code(), Some(1), "{out}{}", text(&d.stderr));
    assert!(
        out.contains(&format!(
            "+++ rendered/Role/{}/workflow-role",
            org.namespace()
        )),
        "{out}"
    );
    assert!(out.contains("+  - create"), "{out}");
    assert!(
        out.contains("0 to create, 1 to change, 0 to delete, 4 unchanged"),
        "{out}"
    );
    assert!(!out.contains("\u{1b}["), "colour without a terminal");
    let a = ok(&bp(
        &kc,
        &[
            "apply",
            &org.path(),
            "--inventory",
            &inv,
            "--force-conflicts",
        ],
    ));
    assert!(
        a.contains(&format!(
            "Role/{}/workflow-role configured",
            org.namespace()
        )),
        "{a}"
    );
    let (_, live) = get(&kc, &role);
    assert_eq!(live["rules"][0]["verbs"].as_array().unwrap().len(), 6);
    assert_eq!(
        bp(&kc, &["diff", &org.path(), "--inventory", &inv])
            .status
            .code(),
        Some(0)
    );
}

/// `helm.sh/resource-policy: keep` (what `argo-workflows.crds.keep` puts on the CRDs): prune
/// leaves such an object and drops it from the inventory, as Helm leaves it out of a release.
#[test]
fn prune_never_deletes_an_object_whose_resource_policy_is_keep() {
    let kc = cluster::with_argo();
    let a = Org::new();
    let inv = a.inventory();
    a.build("stays", "main");
    let kept = a.build("kept", "main");
    ok(&bp(&kc, &["apply", &a.path(), "--inventory", &inv]));
    let name = format!("kept-{}", buildplane::core::naming::hash8(&["kept"]));
    let path = workflow_path(&a.namespace(), &name);
    let keep = json!({"metadata": {"annotations": {"helm.sh/resource-policy": "keep"}}});
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "PATCH",
        &path,
        Some(&keep),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200);
    std::fs::remove_file(&kept).unwrap();

    let d = bp(
        &kc,
        &[
            "diff",
            &a.path(),
            "--inventory",
            &inv,
            "--prune",
            "-o",
            "json",
        ],
    );
    let plan: Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(plan["summary"]["delete"], 0, "{plan}");
    let out = ok(&bp(
        &kc,
        &["apply", &a.path(), "--inventory", &inv, "--prune"],
    ));
    let line = format!(
        "Workflow/{}/{name} kept (helm.sh/resource-policy: keep; no longer in the inventory)",
        a.namespace()
    );
    assert!(out.lines().any(|l| l == line), "{out}");
    assert!(lines_with(&out, " pruned").is_empty(), "{out}");
    let (code, live) = get(&kc, &path);
    assert_eq!(code, 200);
    assert!(live["metadata"]["deletionTimestamp"].is_null(), "{live}");
    // Its record went: the next prune does not look at it again.
    let out = ok(&bp(
        &kc,
        &["apply", &a.path(), "--inventory", &inv, "--prune"],
    ));
    assert!(!out.contains(&name), "{out}");
    assert_eq!(get(&kc, &path).0, 200);
}

#[test]
fn prune_removes_exactly_what_was_dropped() {
    let kc = cluster::with_argo();
    let (a, b) = (Org::new(), Org::new());
    let dir = tempfile::tempdir().unwrap();
    let inv = a.inventory();
    let keep = a.build("keep", "main");
    let drop = a.build("drop", "main");
    let other = b.build("other", "main");
    for f in [&keep, &drop, &other] {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let all = dir.path().display().to_string();
    ok(&bp(&kc, &["apply", &all, "--inventory", &inv]));
    // An object nobody rendered, and a recorded one someone else took over: prune keeps both.
    let wf = |ns: &str, name: &str| {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": name, "namespace": ns}, "spec": {"entrypoint": "x"}})
    };
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "POST",
        &format!(
            "/apis/argoproj.io/v1alpha1/namespaces/{}/workflows",
            a.namespace()
        ),
        Some(&wf(&a.namespace(), "hand-made")),
        "application/json",
    );
    assert_eq!(code, 201);
    let taken = json!({"metadata": {"labels": {"buildplane.openchoreo.dev/inventory": null}}});
    let b_sa = format!(
        "/api/v1/namespaces/{}/serviceaccounts/workflow-sa",
        b.namespace()
    );
    assert_eq!(
        cluster::raw_request(
            &kc,
            None,
            "PATCH",
            &b_sa,
            Some(&taken),
            "application/merge-patch+json"
        )
        .0,
        200
    );

    std::fs::remove_file(dir.path().join("drop.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("other.yaml")).unwrap();
    let d = bp(
        &kc,
        &["diff", &all, "--inventory", &inv, "--prune", "-o", "json"],
    );
    assert_eq!(d.status.code(), Some(1));
    let plan: Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(plan["summary"]["delete"], 5, "{plan}");
    let out = ok(&bp(&kc, &["apply", &all, "--inventory", &inv, "--prune"]));
    let mut pruned: Vec<&str> = lines_with(&out, " pruned");
    pruned.sort();
    let expected = [
        format!("Namespace/{} pruned", b.namespace()),
        format!("Role/{}/workflow-role pruned", b.namespace()),
        format!("RoleBinding/{}/workflow-role-binding pruned", b.namespace()),
        format!(
            "Workflow/{}/drop-{} pruned",
            a.namespace(),
            buildplane::core::naming::hash8(&["drop"])
        ),
        format!(
            "Workflow/{}/other-{} pruned",
            b.namespace(),
            buildplane::core::naming::hash8(&["other"])
        ),
    ];
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(pruned, expected, "{out}");
    // Reverse stage order: Workflows go before the Namespace.
    assert!(
        out.find(&format!("Workflow/{}/other", b.namespace()))
            .unwrap()
            < out
                .find(&format!("Namespace/{} pruned", b.namespace()))
                .unwrap()
    );
    assert_eq!(get(&kc, &workflow_path(&a.namespace(), "hand-made")).0, 200);
    assert_eq!(
        get(
            &kc,
            &workflow_path(
                &a.namespace(),
                &format!("keep-{}", buildplane::core::naming::hash8(&["keep"]))
            )
        )
        .0,
        200
    );
    assert_eq!(
        get(
            &kc,
            &workflow_path(
                &a.namespace(),
                &format!("drop-{}", buildplane::core::naming::hash8(&["drop"]))
            )
        )
        .0,
        404
    );
}

#[test]
fn a_finished_or_deleted_build_is_not_resubmitted() {
    let kc = cluster::with_argo();
    let org = Org::new();
    let file = org.build("gamma", "main");
    let inv = org.inventory();
    let file_s = file.display().to_string();
    ok(&bp(&kc, &["apply", &file_s, "--inventory", &inv]));
    let wf = workflow_path(
        &org.namespace(),
        &format!("gamma-{}", buildplane::core::naming::hash8(&["gamma"])),
    );
    // Its TTL deletes it.
    assert_eq!(
        cluster::raw_request(&kc, None, "DELETE", &wf, None, "application/json").0,
        200
    );
    let out = ok(&bp(&kc, &["apply", &file_s, "--inventory", &inv]));
    assert!(
        out.contains("gamma-") && lines_with(&out, " created").is_empty(),
        "{out}"
    );
    assert_eq!(get(&kc, &wf).0, 404, "re-created a build that already ran");
    assert_eq!(
        bp(&kc, &["diff", &file_s, "--inventory", &inv])
            .status
            .code(),
        Some(0)
    );
    // A new spec (another branch) is a new build.
    org.build("gamma", "release");
    let out = ok(&bp(&kc, &["apply", &file_s, "--inventory", &inv]));
    assert!(
        out.contains(&format!("Workflow/{}/gamma-", org.namespace())) && out.contains(" created"),
        "{out}"
    );
    let (_, live) = get(&kc, &wf);
    let branch = live["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "branch")
        .unwrap()["value"]
        .clone();
    assert_eq!(branch, "release");
    // It finishes (as Argo would write it); a further spec change replaces the finished run.
    let status = json!({"status": {"phase": "Failed", "finishedAt": "2025-07-01T10:01:47Z"}});
    assert_eq!(
        cluster::raw_request(
            &kc,
            None,
            "PATCH",
            &wf,
            Some(&status),
            "application/merge-patch+json"
        )
        .0,
        200
    );
    assert_eq!(
        bp(&kc, &["diff", &file_s, "--inventory", &inv])
            .status
            .code(),
        Some(0),
        "a failed build is not re-run"
    );
    org.build("gamma", "hotfix");
    let out = ok(&bp(&kc, &["apply", &file_s, "--inventory", &inv]));
    assert!(out.contains(" configured"), "{out}");
    let (_, live) = get(&kc, &wf);
    assert!(
        live["status"].is_null() || live["status"]["phase"].is_null(),
        "old run's status survived: {live}"
    );
}

#[test]
fn the_no_permission_user_changes_nothing() {
    let kc = cluster::with_argo();
    let org = Org::new();
    org.build("delta", "main");
    let o = bp(
        &kc,
        &[
            "apply",
            &org.path(),
            "--inventory",
            &org.inventory(),
            "--context",
            "testenv-limited",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("missing permissions, nothing was changed"),
        "{err}"
    );
    assert!(
        err.contains("cannot create namespaces (cluster-wide)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "cannot patch workflows.argoproj.io in namespace {}",
            org.namespace()
        )),
        "{err}"
    );
    assert!(
        err.contains("cannot get configmaps in namespace default"),
        "{err}"
    );
    assert_eq!(
        get(&kc, &format!("/api/v1/namespaces/{}", org.namespace())).0,
        404
    );
}

#[test]
fn bad_input_sends_no_request() {
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    for cmd in ["diff", "apply"] {
        let o = bp(kc.path(), &[cmd, "fixtures/bad/missing-url.yaml"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o.stderr).contains("spec.repository.url: is required"));
        let o = bp(
            kc.path(),
            &[cmd, "--set", "global.defaultResources.registry.type=s3"],
        );
        assert_eq!(o.status.code(), Some(2));
    }
    assert_eq!(counter.count(), 0, "a request was sent for bad input");
    // The same server is contacted for good input (it is no API server: exit 2, one line).
    let o = bp(kc.path(), &["diff", "fixtures/builds/greeter-docker.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(counter.count() > 0);
    let err = text(&o.stderr);
    assert!(
        err.starts_with("error: cannot reach the API server at https://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn dry_run_changes_nothing() {
    let kc = cluster::with_argo();
    let org = Org::new();
    org.build("epsilon", "main");
    let out = ok(&bp(
        &kc,
        &[
            "apply",
            &org.path(),
            "--inventory",
            &org.inventory(),
            "--dry-run",
        ],
    ));
    assert_eq!(
        lines_with(&out, " created (server dry run)").len(),
        5,
        "{out}"
    );
    assert_eq!(
        get(&kc, &format!("/api/v1/namespaces/{}", org.namespace())).0,
        404
    );
    let (code, _) = get(
        &kc,
        &format!(
            "/api/v1/namespaces/default/configmaps/buildplane-inventory-{}",
            org.inventory()
        ),
    );
    assert_eq!(code, 404, "a dry run wrote the inventory");
}

#[test]
fn rejected_credentials_are_one_line() {
    let kc = cluster::with_argo();
    let mut config: Value = serde_saphyr::from_str(&std::fs::read_to_string(&kc).unwrap()).unwrap();
    let bad = tempfile::NamedTempFile::new().unwrap();
    // Same server, every token replaced: what an expired token looks like to the client.
    for user in config["users"].as_array_mut().unwrap() {
        user["user"]["token"] = json!("0000000000000000");
    }
    let forged = serde_json::to_string(&config).unwrap();
    std::fs::write(bad.path(), forged).unwrap();
    let o = bp(bad.path(), &["diff", "fixtures/builds/greeter-docker.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("rejected the credentials"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A docker Build of organization `org` whose free text is `text(field)`.
fn text_build(dir: &Path, org: &str, name: &str, text: &dyn Fn(&str) -> String) -> PathBuf {
    let build = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": name, "namespace": org},
        "spec": {
            "owner": {"projectName": text("project-name"), "componentName": text("component-name")},
            "repository": {"url": text("git-repo"), "appPath": text("app-path"),
                "revision": {"branch": text("branch")}},
            "templateRef": {"name": "docker", "parameters": [
                {"name": "docker-context", "value": text("docker-context")},
                {"name": "dockerfile-path", "value": text("dockerfile-path")}]}}});
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_json::to_string(&build).unwrap()).unwrap();
    path
}

/// Build text with `$` is in the Workflow the API server holds with each `$` doubled (what
/// kubelet reads back as the text itself); Build text with `{{` is refused before any request.
#[test]
fn build_text_is_escaped_for_kubelet_or_refused() {
    let kc = cluster::with_argo();
    let org = Org::new();
    let hostile = |field: &str| format!("$(HOME)/$$(X)/{field}/a$b${{X}}`id`;rm -rf /\n\"'$");
    let file = text_build(org.dir.path(), &org.name, "hostile", &hostile);
    let inv = org.inventory();
    ok(&bp(
        &kc,
        &["apply", file.to_str().unwrap(), "--inventory", &inv],
    ));
    let name = buildplane::core::naming::workflow_name("hostile");
    let (code, wf) = get(&kc, &workflow_path(&org.namespace(), &name));
    assert_eq!(code, 200, "{wf}");
    let params = wf["spec"]["arguments"]["parameters"].as_array().unwrap();
    let value = |n: &str| {
        let p = params.iter().find(|p| p["name"] == n);
        p.unwrap_or_else(|| panic!("no argument {n}: {params:?}"))["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for arg in [
        "project-name",
        "component-name",
        "git-repo",
        "app-path",
        "branch",
        "docker-context",
        "dockerfile-path",
    ] {
        assert_eq!(value(arg), hostile(arg).replace('$', "$$"), "{arg}");
    }

    let refused = Org::new();
    let evil = |field: &str| match field {
        "git-repo" => "https://git.example.com/{{workflow.name}}.git".to_owned(),
        f => format!("ok-{f}"),
    };
    let file = text_build(refused.dir.path(), &refused.name, "evil", &evil);
    let o = bp(
        &kc,
        &[
            "apply",
            file.to_str().unwrap(),
            "--inventory",
            &refused.inventory(),
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(&format!("error: {}: spec.repository.url: ", file.display())),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(
        get(&kc, &format!("/api/v1/namespaces/{}", refused.namespace())).0,
        404,
        "something was applied"
    );
    let cm = format!(
        "/api/v1/namespaces/default/configmaps/buildplane-inventory-{}",
        refused.inventory()
    );
    assert_eq!(get(&kc, &cm).0, 404, "an inventory was written");
}

/// The inventory ConfigMap holds nothing from which a Secret's content could be confirmed, and
/// an unchanged Secret still costs no write on re-apply; an inventory an earlier version wrote
/// (with the Secret's content hash) still works and loses that hash.
#[test]
fn the_inventory_is_no_oracle_for_secrets() {
    use buildplane::core::plan::{self, Inventory};
    use buildplane::core::render::Chart;
    use buildplane::kube::{ClientSettings, Kube};
    use buildplane::pipeline::deploy::{self, Action, DeployOptions};
    use buildplane::pipeline::{self, RenderRequest};
    use sha2::{Digest, Sha256};

    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    let v = json!({
        "argo-workflows": {"enabled": false},
        "global": {"defaultResources": {"enabled": false}},
        "extraObjects": [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "registry-credentials", "namespace": "default"},
            // base64 of "s3cr3t-registry-token"
            "data": {"token": "czNjcjN0LXJlZ2lzdHJ5LXRva2Vu"}}]
    });
    std::fs::write(&values, serde_json::to_string(&v).unwrap()).unwrap();
    let first = ok(&bp(kc, &["apply", "-f", values.to_str().unwrap()]));
    assert!(
        first.contains("Secret/default/registry-credentials created"),
        "{first}"
    );

    // The Secret as applied, and its SHA-256 the way earlier versions recorded it.
    let req = RenderRequest {
        values_files: vec![values.clone()],
        ..Default::default()
    };
    let rendered = pipeline::render_parts(&Chart::builtin(), &req).unwrap();
    let mut secret = rendered
        .bundle
        .iter()
        .find(|m| m.id.kind == "Secret")
        .unwrap()
        .clone();
    plan::label_for_inventory(&mut secret, plan::BUNDLE_INVENTORY);
    let content_hash =
        buildplane::core::naming::hex(&Sha256::digest(serde_json::to_vec(&secret.object).unwrap()));
    let inventory_path = "/api/v1/namespaces/default/configmaps/buildplane-inventory-build-plane";
    let read_inventory = || {
        let (code, cm) = get(kc, inventory_path);
        assert_eq!(code, 200, "{cm}");
        let inv = Inventory::from_configmap(plan::BUNDLE_INVENTORY, &cm).unwrap();
        let text = format!("{cm} {}", serde_json::to_string(&inv.entries).unwrap());
        (inv, text)
    };
    let (inv, stored) = read_inventory();
    let key = secret.id.to_string();
    assert!(inv.entries.contains_key(&key), "the Secret is not recorded");
    for len in [16, 32, 64] {
        assert!(
            !stored.contains(&content_hash[..len]),
            "the inventory holds the Secret's SHA-256 ({len} digits)"
        );
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let settings = ClientSettings {
            kubeconfig: Some(kc.clone()),
            ..Default::default()
        };
        let kube = Kube::connect(&settings).await.unwrap();
        let opts = DeployOptions::default();
        let apply = |kube: &Kube| {
            let rendered = rendered.clone();
            let opts = opts.clone();
            let kube = kube.clone();
            async move {
                let prepared = deploy::prepare(&kube, &rendered, &opts).await.unwrap();
                deploy::apply(&kube, &prepared, &opts, |_, _| {})
                    .await
                    .unwrap()
            }
        };
        let action_of = |done: &[(buildplane::core::manifest::ObjectId, Action)]| {
            done.iter()
                .find(|(id, _)| id.to_string() == key)
                .map(|(_, a)| a.clone())
        };

        // Unchanged: no write at all, as before.
        let writes = kube.writes();
        let done = apply(&kube).await;
        assert_eq!(action_of(&done), Some(Action::Unchanged));
        assert_eq!(kube.writes() - writes, 0, "re-apply wrote: {done:?}");

        // An inventory an earlier version wrote: the Secret recorded by its content hash.
        let mut old = inv.clone();
        if let Some(e) = old.entries.get_mut(&key) {
            e.hash = content_hash[..plan::RECORDED_HASH_LEN].to_owned();
        }
        let cm = kube.resource("v1", "ConfigMap").await.unwrap().unwrap();
        kube.apply(
            &cm,
            &old.to_configmap(plan::BUNDLE_INVENTORY, "default"),
            false,
            true,
        )
        .await
        .unwrap();
        let done = apply(&kube).await;
        assert_eq!(action_of(&done), Some(Action::Unchanged), "{done:?}");
    });
    let (_, stored) = read_inventory();
    assert!(
        !stored.contains(&content_hash[..16]),
        "the earlier record survived"
    );
}

/// The inventory label on a live object.
fn inventory_label(kc: &Path, path: &str) -> Value {
    let (code, live) = get(kc, path);
    assert_eq!(code, 200, "{path}: {live}");
    live["metadata"]["labels"]["buildplane.openchoreo.dev/inventory"].clone()
}

/// The API paths of a build namespace's prerequisites, as `apply` names them and as GET reads.
fn prerequisites(ns: &str) -> Vec<(String, String)> {
    let rbac = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}");
    vec![
        (
            format!("Namespace/{ns}"),
            format!("/api/v1/namespaces/{ns}"),
        ),
        (
            format!("ServiceAccount/{ns}/workflow-sa"),
            format!("/api/v1/namespaces/{ns}/serviceaccounts/workflow-sa"),
        ),
        (
            format!("Role/{ns}/workflow-role"),
            format!("{rbac}/roles/workflow-role"),
        ),
        (
            format!("RoleBinding/{ns}/workflow-role-binding"),
            format!("{rbac}/rolebindings/workflow-role-binding"),
        ),
    ]
}

#[test]
fn an_object_two_inventories_declare_is_shared_and_pruned_only_when_neither_does() {
    // Its own cluster: this test owns the bundle inventory and `openchoreo-ci-default`.
    let c = cluster::start_private();
    let kc = &c.kubeconfig;
    let greeter = "fixtures/builds/greeter-docker.yaml";
    let ns = "openchoreo-ci-default";
    let shared = prerequisites(ns);
    let labelled_by_bundle = |when: &str| {
        for (object, path) in &shared {
            assert_eq!(inventory_label(kc, path), "build-plane", "{object} {when}");
        }
    };
    ok(&bp(kc, &["apply", "--install"]));
    labelled_by_bundle("after the install");
    // The builds of org `default` and the bundle take turns: no label flips, nothing to change.
    let turns: [&[&str]; 3] = [
        &["apply", greeter],
        &["apply", "--install"],
        &["apply", greeter],
    ];
    for args in turns {
        let out = ok(&bp(kc, args));
        for (object, _) in &shared {
            assert!(
                out.contains(&format!("{object} unchanged\n")),
                "{args:?}: {out}"
            );
        }
        labelled_by_bundle(&format!("after {args:?}"));
    }
    let quiet: [&[&str]; 2] = [&["diff", greeter], &["diff", "--install"]];
    for args in quiet {
        let d = bp(kc, args);
        let out = text(&d.stdout);
        assert_eq!(
            d.status.code(),
            Some(0),
            "{args:?}: {out}{}",
            text(&d.stderr)
        );
    }

    // Only another organization's builds: the builds inventory lets go of the shared objects,
    // which the bundle still declares, and prunes the rest.
    let acme = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(ROOT).join("fixtures/builds/acme-builds.yaml"),
        acme.path().join("acme-builds.yaml"),
    )
    .unwrap();
    let acme = acme.path().display().to_string();
    let d = bp(kc, &["diff", &acme, "--prune", "-o", "json"]);
    let plan: Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(
        plan["summary"]["delete"], 1,
        "only greeter's Workflow: {plan}"
    );
    let out = ok(&bp(kc, &["apply", &acme, "--prune"]));
    for (object, _) in &shared {
        let kept = format!("{object} kept (still declared by inventory build-plane)\n");
        assert!(out.contains(&kept), "{out}");
    }
    let pruned = lines_with(&out, " pruned");
    assert_eq!(pruned.len(), 1, "{out}");
    assert!(pruned[0].starts_with(&format!("Workflow/{ns}/")), "{out}");
    assert!(out.contains("4 kept"), "{out}");
    let (code, live) = get(kc, &shared[0].1);
    assert_eq!(code, 200);
    assert!(live["metadata"]["deletionTimestamp"].is_null(), "{live}");
    labelled_by_bundle("after the builds inventory let go");

    // The bundle no longer declares the namespace either: now its prune deletes it.
    let values = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(values.path(), "buildNamespaces: []\n").unwrap();
    let values = values.path().display().to_string();
    let out = ok(&bp(
        kc,
        &[
            "apply",
            "--install",
            "-f",
            &values,
            "--prune",
            "--inventory",
            "acme-only",
        ],
    ));
    for (object, _) in &shared {
        assert!(out.contains(&format!("{object} pruned\n")), "{out}");
    }
    let (_, live) = get(kc, &shared[0].1);
    assert!(!live["metadata"]["deletionTimestamp"].is_null(), "{live}");
}

#[test]
fn retry_stays_in_the_inventory_apply_used() {
    let kc = cluster::with_argo();
    let org = Org::new();
    let file = org.build("delta", "main").display().to_string();
    // The default inventory name is shared by tests: this one keeps its inventories apart.
    let inv_ns = cluster::unique_name("inv");
    let (code, _) = cluster::raw_request(
        &kc,
        None,
        "POST",
        "/api/v1/namespaces",
        Some(&json!({"metadata": {"name": inv_ns}})),
        "application/json",
    );
    assert_eq!(code, 201);
    let inventories = || -> Vec<String> {
        let (code, list) = get(&kc, &format!("/api/v1/namespaces/{inv_ns}/configmaps"));
        assert_eq!(code, 200);
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|cm| cm["metadata"]["name"].as_str())
            .filter(|n| n.starts_with("buildplane-inventory-"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    let labels = || -> Vec<Value> {
        prerequisites(&org.namespace())
            .iter()
            .map(|(_, path)| inventory_label(&kc, path))
            .collect()
    };
    ok(&bp(
        &kc,
        &["apply", &file, "--inventory-namespace", &inv_ns],
    ));
    assert_eq!(inventories(), ["buildplane-inventory-builds"]);
    assert_eq!(labels(), vec![json!("builds"); 4]);

    let out = ok(&bp(
        &kc,
        &["retry", &file, "--inventory-namespace", &inv_ns],
    ));
    assert!(
        out.contains(&format!("Workflow/{}/delta-", org.namespace())),
        "{out}"
    );
    assert_eq!(inventories(), ["buildplane-inventory-builds"], "{out}");
    assert_eq!(labels(), vec![json!("builds"); 4], "{out}");

    // An inventory that does not hold the build is refused before any write.
    let o = bp(
        &kc,
        &[
            "retry",
            &file,
            "--inventory-namespace",
            &inv_ns,
            "--inventory",
            "other",
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}{}", text(&o.stdout));
    assert!(
        err.contains("is not in inventory other: inventory builds records it (pass --inventory builds); nothing was changed"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(inventories(), ["buildplane-inventory-builds"]);
    assert_eq!(labels(), vec![json!("builds"); 4]);
}
