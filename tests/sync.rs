//! `buildplane sync` end to end: the real binary against the real API server, real Git (`git
//! daemon` on loopback) and the Argo stand-in: a pushed spec builds once and its Workload is
//! committed into the same repository; a restart submits nothing; a broken file is skipped;
//! SIGTERM during a push loses nothing; a watched directory; metrics; retry; bad input.

mod argo;
mod cluster;
mod gitd;
mod support;

use argo::Script;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::sync_run::start_sync;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WAIT: Duration = Duration::from_secs(60);

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env_remove("BUILDPLANE_LOG");
    c
}

fn build_yaml(org: &str, component: &str) -> String {
    format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\n\
         metadata: {{name: {component}-build, namespace: {org}}}\n\
         spec:\n  owner: {{projectName: shop, componentName: {component}}}\n\
         \x20 repository: {{url: 'https://git.example.com/shop.git', revision: {{branch: main}}, appPath: /{component}}}\n\
         \x20 templateRef: {{name: google-cloud-buildpacks}}\n"
    )
}

fn ci_namespace(org: &str) -> String {
    format!("openchoreo-ci-{org}")
}

/// Commits `files` (path, content) onto `main` of `url` with the git CLI and pushes.
fn push(url: &str, files: &[(&str, &str)]) {
    push_changes(url, files, &[]);
}

/// Commits `files` (path, content) and the removal of `removed` onto `main` of `url`.
fn push_changes(url: &str, files: &[(&str, &str)], removed: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("w");
    gitd::git(work.path(), &["clone", "-q", url, gitd::path_str(&dir)]);
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    for path in removed {
        std::fs::remove_file(dir.join(path)).unwrap();
    }
    gitd::git(&dir, &["add", "-A"]);
    gitd::git(&dir, &["commit", "-q", "-m", "specs"]);
    gitd::git(&dir, &["push", "-q", "origin", "HEAD:main"]);
}

/// The content of `path` on `main` of the bare repository, if there.
fn on_branch(bare: &Path, path: &str) -> Option<String> {
    let out = gitd::git_cmd(bare, &["show", &format!("main:{path}")])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

fn head(bare: &Path) -> String {
    gitd::git(bare, &["rev-parse", "main"])
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn workflows(kc: &Path, org: &str) -> Vec<Value> {
    let path = format!(
        "/apis/argoproj.io/v1alpha1/namespaces/{}/workflows",
        ci_namespace(org)
    );
    let (code, list) = cluster::kubectl_like_get(kc, None, &path);
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_pushed_spec_builds_once_is_committed_back_and_a_restart_starts_nothing() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("sg");
    let daemon = gitd::Daemon::start();
    let (bare, url) = daemon.repo("deploy");
    push(&url, &[("builds/cart.yaml", &build_yaml(&org, "cart"))]);
    let ns = ci_namespace(&org);
    let argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let port = cluster::free_port();
    let inventory = format!("sync-{org}");
    let addr = format!("127.0.0.1:{port}");
    let workload_path = format!("workloads/{org}/cart.yaml");
    let args = [
        "--repo",
        &url,
        "--path",
        "builds",
        "--interval",
        "1s",
        "--inventory",
        &inventory,
        "--emit-git",
        &url,
        "--emit-path",
        "workloads/{org}/{component}.yaml",
        "--metrics-addr",
        &addr,
    ];
    let mut sync = start_sync(&kc, &args);
    let workload = wait_until("the Workload on the branch", || {
        on_branch(&bare, &workload_path)
    });
    assert!(workload.contains("kind: Workload"), "{workload}");
    assert!(workload.contains("componentName: cart"), "{workload}");
    let finished = sync.wait_event("build_finished", 1);
    assert_eq!(finished["phase"], "Succeeded", "{finished}");
    assert_eq!(finished["workload"], "emitted", "{finished}");
    assert_eq!(sync.events("build_submitted").len(), 1);

    // The sync's own commit is a new commit: it is read (a round), and submits nothing.
    let own_commit = head(&bare);
    let round = wait_until("a round on the sync's own commit", || {
        sync.drain();
        sync.events("sync_round")
            .into_iter()
            .find(|e| e["commit"] == own_commit.as_str())
    });
    assert_eq!(round["builds"], 1, "{round}");
    assert_eq!(workflows(&kc, &org).len(), 1);
    assert_eq!(argo.handled.lock().unwrap().len(), 1);

    assert!(http_get(port, "/healthz").ends_with("\r\n\r\nok"));
    let metrics = http_get(port, "/metrics");
    for line in [
        "buildplane_builds_started_total 1",
        "buildplane_builds_succeeded_total 1",
        "buildplane_builds_failed_total 0",
        "buildplane_reconcile_errors_total 0",
        "buildplane_emit_latency_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }

    assert_eq!(sync.terminate(), Some(0));
    let before = workflows(&kc, &org).remove(0);
    let commit = head(&bare);

    let mut again = start_sync(&kc, &args);
    let round = again.wait_event("sync_round", 1);
    assert_eq!(round["commit"], commit.as_str(), "{round}");
    // The finished Workflow is harvested again at start: idempotent, nothing new committed.
    let finished = again.wait_event("build_finished", 1);
    assert!(
        finished["emitted"]
            .as_str()
            .unwrap()
            .starts_with("unchanged"),
        "{finished}"
    );
    let after = workflows(&kc, &org);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(
        after[0]["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert!(again.events("build_submitted").is_empty());
    assert_eq!(head(&bare), commit, "no new commit after a restart");
    assert_eq!(argo.handled.lock().unwrap().len(), 1);
    let metrics = http_get(port, "/metrics");
    assert!(
        metrics.contains("buildplane_builds_started_total 0"),
        "{metrics}"
    );
    assert_eq!(again.terminate(), Some(0));
    assert!(argo.errors.lock().unwrap().is_empty());
}

#[test]
fn a_broken_file_is_skipped_with_its_error_and_the_others_build() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("sb");
    let daemon = gitd::Daemon::start();
    let (_bare, url) = daemon.repo("specs");
    let broken = build_yaml(&org, "bad").replace("componentName: bad", "name: x");
    push(
        &url,
        &[
            ("bad.yaml", &broken),
            ("good.yaml", &build_yaml(&org, "good")),
            ("notes.yaml", "a: [unclosed\n"),
        ],
    );
    let ns = ci_namespace(&org);
    let _argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let out = tempfile::tempdir().unwrap();
    let inventory = format!("sync-{org}");
    let mut sync = start_sync(
        &kc,
        &[
            "--repo",
            &url,
            "--inventory",
            &inventory,
            "--emit-dir",
            out.path().to_str().unwrap(),
        ],
    );
    let file = out.path().join(format!("{org}/shop/good/workload.yaml"));
    wait_until("the good Workload", || file.exists().then_some(()));
    let round = sync.wait_event("sync_round", 1);
    assert_eq!(round["builds"], 1, "{round}");
    assert_eq!(round["broken"], 2, "{round}");
    let skipped = sync.events("file_skipped");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[0]["file"], "bad.yaml");
    let error = skipped[0]["error"].as_str().unwrap();
    assert!(error.contains("spec.owner"), "{error}");
    assert_eq!(skipped[1]["file"], "notes.yaml");
    assert!(
        skipped[1]["error"]
            .as_str()
            .unwrap()
            .contains("invalid YAML")
    );
    let names: Vec<String> = workflows(&kc, &org)
        .iter()
        .map(|w| w["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains("good"), "{names:?}");
    assert_eq!(sync.terminate(), Some(0));
}

/// The Workflow of `org` whose name holds `component`, if there.
fn workflow_of(kc: &Path, org: &str, component: &str) -> Option<Value> {
    workflows(kc, org)
        .into_iter()
        .find(|w| w["metadata"]["name"].as_str().unwrap().contains(component))
}

fn uid(w: &Value) -> String {
    w["metadata"]["uid"].as_str().unwrap().to_owned()
}

#[test]
fn prune_holds_back_what_broken_or_clashing_files_defined_and_a_fixed_typo_builds_nothing() {
    let kc = cluster::with_argo();
    let (org, lone) = (cluster::unique_name("sp"), cluster::unique_name("sq"));
    let daemon = gitd::Daemon::start();
    let (_bare, url) = daemon.repo("specs");
    let (cart, pay, web) = (
        build_yaml(&org, "cart"),
        build_yaml(&org, "pay"),
        build_yaml(&lone, "web"),
    );
    push(
        &url,
        &[("cart.yaml", &cart), ("pay.yaml", &pay), ("web.yaml", &web)],
    );
    let (ns, lone_ns) = (ci_namespace(&org), ci_namespace(&lone));
    // cart stays running (the stand-in leaves it alone); pay and web succeed.
    let argo = argo::start(&kc, &[&ns, &lone_ns], |wf| {
        let name = wf["metadata"]["name"].as_str().unwrap_or("");
        (!name.contains("cart")).then(|| Script::succeed().instant())
    });
    let inventory = format!("sync-{org}");
    let mut sync = start_sync(
        &kc,
        &[
            "--repo",
            &url,
            "--prune",
            "--interval",
            "1s",
            "--inventory",
            &inventory,
        ],
    );
    let finished = |org: &str, c: &str| {
        workflow_of(&kc, org, c).filter(|w| w["status"]["phase"] == "Succeeded")
    };
    let cart_uid = uid(&wait_until("cart submitted", || {
        workflow_of(&kc, &org, "cart")
    }));
    let pay_uid = uid(&wait_until("pay finished", || finished(&org, "pay")));
    let web_uid = uid(&wait_until("web finished", || finished(&lone, "web")));
    sync.wait_event("build_submitted", 3);

    // A one-character typo in cart.yaml and in web.yaml, the last Build of its organization.
    let typo = |y: &str| y.replace("componentName:", "componentNme:");
    push(
        &url,
        &[("cart.yaml", &typo(&cart)), ("web.yaml", &typo(&web))],
    );
    // The round ends with cart's Workflow, web's Workflow and the four prerequisites of web's
    // organization held back (or, as before, with them pruned).
    wait_until("the round after the typos", || {
        sync.drain();
        (sync.events("prune_held_back").len() >= 6 || workflow_of(&kc, &org, "cart").is_none())
            .then_some(())
    });
    assert_eq!(
        uid(&workflow_of(&kc, &org, "cart").expect("the running Workflow")),
        cart_uid
    );
    let held = sync.events("prune_held_back");
    let reason = held[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("2 files") && reason.contains("cart.yaml, web.yaml"),
        "{reason}"
    );
    let objects: Vec<&str> = held.iter().map(|e| e["object"].as_str().unwrap()).collect();
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("Namespace/") && o.ends_with(&lone_ns)),
        "{objects:?}"
    );
    assert_eq!(uid(&workflow_of(&kc, &lone, "web").unwrap()), web_uid);
    let (code, _) = cluster::kubectl_like_get(&kc, None, &format!("/api/v1/namespaces/{lone_ns}"));
    assert_eq!(code, 200, "the organization's Namespace is still there");

    // The typos fixed; a second team copies pay.yaml (both copies are set aside).
    push(
        &url,
        &[
            ("cart.yaml", &cart),
            ("web.yaml", &web),
            ("copy.yaml", &pay),
        ],
    );
    let copied = wait_until("pay held back for the copy", || {
        sync.drain();
        sync.events("prune_held_back")
            .into_iter()
            .find(|e| e["reason"].as_str().unwrap().contains("copy.yaml"))
    });
    assert!(
        copied["object"].as_str().unwrap().contains("pay"),
        "{copied}"
    );
    assert_eq!(uid(&workflow_of(&kc, &org, "cart").unwrap()), cart_uid);
    assert_eq!(uid(&workflow_of(&kc, &lone, "web").unwrap()), web_uid);
    assert_eq!(uid(&finished(&org, "pay").unwrap()), pay_uid);

    // pay's finished Workflow goes (as a TTL would delete it); then the copy goes and so does
    // cart.yaml: every file loads again, so prune acts, and only on cart.
    let path = format!(
        "/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows/{}",
        finished(&org, "pay").unwrap()["metadata"]["name"]
            .as_str()
            .unwrap()
    );
    let (code, _) = cluster::raw_request(&kc, None, "DELETE", &path, None, "application/json");
    assert_eq!(code, 200);
    wait_until("pay's Workflow gone", || {
        workflow_of(&kc, &org, "pay").is_none().then_some(())
    });
    push_changes(&url, &[], &["copy.yaml", "cart.yaml"]);
    wait_until("cart pruned", || {
        workflow_of(&kc, &org, "cart").is_none().then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    sync.drain();
    assert_eq!(
        sync.events("build_submitted").len(),
        3,
        "a fixed typo or a set-aside copy rebuilt an unchanged spec: {:#?}",
        sync.events("build_submitted")
    );
    assert!(workflow_of(&kc, &org, "pay").is_none());
    assert_eq!(uid(&workflow_of(&kc, &lone, "web").unwrap()), web_uid);
    // pay and web, once each (cart was left running, untouched).
    assert_eq!(argo.handled.lock().unwrap().len(), 2);
    assert_eq!(sync.terminate(), Some(0));
}

/// Every push waits 3 s in the server's pre-receive hook.
const SLOW_HOOK: &str = "#!/bin/sh\ncat >/dev/null\nsleep 3\n";

#[test]
fn sigterm_during_a_write_back_loses_nothing() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("st");
    let daemon = gitd::Daemon::start();
    let (bare, url) = daemon.repo("slow");
    push(&url, &[("builds/cart.yaml", &build_yaml(&org, "cart"))]);
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, SLOW_HOOK).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let ns = ci_namespace(&org);
    let _argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let inventory = format!("sync-{org}");
    let mut sync = start_sync(
        &kc,
        &[
            "--repo",
            &url,
            "--path",
            "builds",
            "--inventory",
            &inventory,
            "--emit-git",
            &url,
            "--emit-path",
            "workloads/{component}.yaml",
        ],
    );
    wait_until("the Workflow to succeed", || {
        workflows(&kc, &org)
            .first()
            .filter(|w| w["status"]["phase"] == "Succeeded")
            .map(|_| ())
    });
    let terminated = Instant::now();
    assert!(
        on_branch(&bare, "workloads/cart.yaml").is_none(),
        "pushed too early for this test"
    );
    assert_eq!(sync.terminate(), Some(0));
    assert!(
        terminated.elapsed() >= Duration::from_secs(1),
        "exited without waiting for the push"
    );
    let workload =
        on_branch(&bare, "workloads/cart.yaml").expect("the Workload was pushed before exit");
    assert!(workload.contains("kind: Workload"));
    assert_eq!(sync.events("build_finished").len(), 1);
}

#[test]
fn a_build_file_written_into_a_watched_directory_builds_and_a_change_builds_again() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("sd");
    let ns = ci_namespace(&org);
    let argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let tmp = tempfile::tempdir().unwrap();
    let (specs, out) = (tmp.path().join("specs"), tmp.path().join("out"));
    std::fs::create_dir_all(&specs).unwrap();
    let inventory = format!("sync-{org}");
    let mut sync = start_sync(
        &kc,
        &[
            "--dir",
            specs.to_str().unwrap(),
            "--inventory",
            &inventory,
            "--emit-dir",
            out.to_str().unwrap(),
        ],
    );
    let first = sync.wait_event("sync_round", 1);
    assert_eq!(first["builds"], 0, "{first}");
    assert_eq!(first["dir"], specs.to_str().unwrap(), "{first}");
    // Written in two parts 100 ms apart: the debounced round sees only the whole file.
    let text = build_yaml(&org, "cart");
    let (a, b) = text.split_at(text.len() / 2);
    let file = specs.join("cart.yaml");
    std::fs::write(&file, a).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b.as_bytes())
        .unwrap();
    let workload: PathBuf = out.join(format!("{org}/shop/cart/workload.yaml"));
    wait_until("the Workload in --emit-dir", || {
        workload.exists().then_some(())
    });
    let round = sync.wait_event("sync_round", 2);
    assert_eq!(round["builds"], 1, "{round}");
    assert!(sync.events("file_skipped").is_empty(), "{:#?}", sync.seen);
    let first = workflows(&kc, &org).remove(0);
    sync.wait_event("build_finished", 1);

    // A changed spec builds again: the finished Workflow is replaced, once.
    std::fs::write(&file, text.replace("appPath: /cart", "appPath: /cart/v2")).unwrap();
    let finished = sync.wait_event("build_finished", 2);
    assert_eq!(finished["phase"], "Succeeded", "{finished}");
    assert_eq!(sync.events("build_submitted").len(), 2);
    let now = workflows(&kc, &org);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0]["metadata"]["uid"], first["metadata"]["uid"]);
    assert_eq!(argo.handled.lock().unwrap().len(), 2);
    assert_eq!(sync.terminate(), Some(0));
}

#[test]
fn retry_resubmits_a_finished_build_exactly_once() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("sr");
    let ns = ci_namespace(&org);
    let argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed().instant()));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cart.yaml");
    std::fs::write(&file, build_yaml(&org, "cart")).unwrap();
    let inventory = format!("sync-{org}");
    let run = |cmd: &str| {
        let o = bin()
            .arg(cmd)
            .arg(&file)
            .args(["--inventory", &inventory, "--kubeconfig"])
            .arg(&kc)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    run("apply");
    let succeeded = || {
        workflows(&kc, &org)
            .first()
            .filter(|w| w["status"]["phase"] == "Succeeded")
            .cloned()
    };
    let first = wait_until("the first build", succeeded);
    assert!(run("apply").contains("Workflow") && workflows(&kc, &org).len() == 1);
    let out = run("retry");
    assert!(out.contains("resubmitted"), "{out}");
    let second = wait_until("the retried build", succeeded);
    assert_ne!(first["metadata"]["uid"], second["metadata"]["uid"]);
    assert_eq!(argo.handled.lock().unwrap().len(), 2);
    // The spec is still unchanged: apply does not submit a third.
    let out = run("apply");
    assert!(
        !out.contains("Workflow/") || out.contains("unchanged"),
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(argo.handled.lock().unwrap().len(), 2);
}

#[test]
fn bad_flags_and_unreadable_sources_exit_2_without_a_request() {
    let counter = cluster::request_counter();
    let kc = cluster::kubeconfig_pointing_at(counter.addr);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let missing = tmp.path().join("missing");
    let nowhere = format!("git://127.0.0.1:{}/nope.git", cluster::free_port());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--repo", &nowhere], "fetching"),
        (vec!["--dir", missing.to_str().unwrap()], "missing"),
        (
            vec!["--dir", dir, "--branch", "dev"],
            "--branch needs --repo",
        ),
        (vec!["--repo", "x", "--path", "../up"], "--path"),
        (vec!["--dir", dir, "--emit-path", "../x"], "--emit-path"),
        (
            vec!["--dir", dir, "--emit-git", "x", "--emit-author", "me"],
            "--emit-author",
        ),
        (vec!["--dir", dir, "--interval", "0s"], "--interval"),
    ];
    for (args, expected) in cases {
        let o = bin()
            .arg("sync")
            .args(&args)
            .arg("--kubeconfig")
            .arg(kc.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    for args in [
        vec!["--repo", "x", "--dir", dir],
        vec![],
        vec!["--dir", dir, "--metrics-addr", "nope"],
    ] {
        let o = bin().arg("sync").args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(counter.count(), 0, "a request was sent");
}

/// The one verdict: a build that succeeds with a valid Workload and no emit target is a success
/// for `sync` (metric `builds_succeeded`, event `result: succeeded`) exactly as for `watch`
/// (exit 0). `sync` used to count it as failed.
#[test]
fn a_success_with_no_emit_target_counts_as_succeeded_like_watch_does() {
    let kc = cluster::with_argo();
    let org = cluster::unique_name("sn");
    let ns = ci_namespace(&org);
    let _argo = argo::start(&kc, &[&ns], |_| Some(Script::succeed()));
    let tmp = tempfile::tempdir().unwrap();
    let specs = tmp.path().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let file = specs.join("cart.yaml");
    std::fs::write(&file, build_yaml(&org, "cart")).unwrap();
    let port = cluster::free_port();
    let addr = format!("127.0.0.1:{port}");
    let inventory = format!("sync-{org}");
    let mut sync = start_sync(
        &kc,
        &[
            "--dir",
            specs.to_str().unwrap(),
            "--inventory",
            &inventory,
            "--metrics-addr",
            &addr,
        ],
    );
    let finished = sync.wait_event("build_finished", 1);
    assert_eq!(finished["phase"], "Succeeded", "{finished}");
    assert_eq!(finished["workload"], "none", "{finished}");
    let metrics = http_get(port, "/metrics");
    for line in [
        "buildplane_builds_succeeded_total 1",
        "buildplane_builds_failed_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert_eq!(finished["result"], "succeeded", "{finished}");
    assert_eq!(sync.terminate(), Some(0));

    // `watch` of the same finished build, with no emit target either: exit 0.
    let out = bin()
        .args(["watch", "--timeout", "30s", "--kubeconfig"])
        .arg(&kc)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("BuildCompleted True"), "{stdout}");
    assert!(!stdout.contains("WorkloadUpdated"), "{stdout}");
}
