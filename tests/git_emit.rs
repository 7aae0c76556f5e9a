//! `git::emit` against real repositories served by `git daemon` on loopback.
//!
//! The `git` CLI only sets fixtures up and inspects results; everything under test goes
//! through git2. The concurrency test re-executes this binary as worker processes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod gitd;

use gitd::{Daemon, git, git_raw};

use buildplane::git::{Change, EmitOutcome, GitError, GitTarget, emit, redact_url, render_message};

const WORKER_ENV: &str = "GIT_EMIT_WORKER";
const WORKERS: usize = 8;
const PER_WORKER: usize = 25;

fn target(url: &str, branch: &str) -> GitTarget {
    GitTarget {
        url: url.to_owned(),
        branch: branch.to_owned(),
        author_name: "buildplane bot".to_owned(),
        author_email: "bot@buildplane.test".to_owned(),
    }
}

fn workload(n: usize) -> Change {
    Change {
        path: format!("org/project/component-{n}/workload.yaml"),
        content: workload_yaml(n).into_bytes(),
        message: render_message(
            "build {build}: {image}",
            &[
                ("build", &format!("component-{n}-build")),
                ("image", &format!("registry.test/component-{n}:1")),
            ],
        ),
    }
}

fn workload_yaml(n: usize) -> String {
    format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: component-{n}\n\
         spec:\n  containers:\n    main:\n      image: registry.test/component-{n}:1\n"
    )
}

const DEADLINE: Duration = Duration::from_secs(60);

fn emit_to(
    url: &str,
    branch: &str,
    cache: &Path,
    changes: &[Change],
) -> Result<EmitOutcome, GitError> {
    emit(&target(url, branch), cache, changes, DEADLINE)
}

#[test]
fn emit_commits_once_then_reports_unchanged() {
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("results");
    let cache = tempfile::tempdir().expect("tempdir");
    let change = workload(7);

    let outcome =
        emit_to(&url, "main", cache.path(), std::slice::from_ref(&change)).expect("first emit");
    let EmitOutcome::Committed { commit, attempts } = outcome else {
        panic!("expected a commit, got {outcome:?}");
    };
    assert_eq!(attempts, 1);
    assert_eq!(git(&bare, &["rev-parse", "main"]), commit);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]), "2");
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an|%ae|%cn|%ce|%s", "main"]),
        "buildplane bot|bot@buildplane.test|buildplane bot|bot@buildplane.test|\
         build component-7-build: registry.test/component-7:1"
    );
    assert_eq!(
        git(&bare, &["show", &format!("main:{}", change.path)]),
        workload_yaml(7).trim_end()
    );
    assert_eq!(
        git(&bare, &["ls-tree", "-r", "--name-only", "main"]),
        "README.md\norg/project/component-7/workload.yaml"
    );

    let again = emit_to(&url, "main", cache.path(), std::slice::from_ref(&change));
    assert_eq!(again.expect("second emit"), EmitOutcome::Unchanged);
    let fresh_cache = tempfile::tempdir().expect("tempdir");
    let from_fresh = emit_to(&url, "main", fresh_cache.path(), &[change]);
    assert_eq!(
        from_fresh.expect("emit from a new cache"),
        EmitOutcome::Unchanged
    );
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]), "2");
}

#[test]
fn emit_creates_a_missing_branch_as_a_root_commit() {
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("fresh");
    let cache = tempfile::tempdir().expect("tempdir");

    let outcome = emit_to(&url, "results/builds", cache.path(), &[workload(1)]).expect("emit");
    assert!(
        matches!(outcome, EmitOutcome::Committed { attempts: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(git(&bare, &["rev-list", "--count", "results/builds"]), "1");
    assert_eq!(
        git(&bare, &["rev-list", "--parents", "results/builds"])
            .split(' ')
            .count(),
        1
    );
    assert_eq!(
        git(&bare, &["ls-tree", "-r", "--name-only", "results/builds"]),
        "org/project/component-1/workload.yaml"
    );
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]),
        "1",
        "main untouched"
    );
}

/// Eight processes, 25 Workloads each, one branch, all at once.
#[test]
fn concurrent_emits_from_eight_processes() {
    if let Ok(index) = std::env::var(WORKER_ENV) {
        return run_worker(index.parse().expect("worker index"));
    }
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("race");
    let caches = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let children: Vec<Child> = (0..WORKERS)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "concurrent_emits_from_eight_processes",
                    "--nocapture",
                ])
                .env(WORKER_ENV, i.to_string())
                .env("GIT_EMIT_URL", &url)
                .env("GIT_EMIT_CACHE", caches.path().join(format!("w{i}")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let mut retries = 0;
    for (i, mut child) in children.into_iter().enumerate() {
        while child.try_wait().expect("wait worker").is_none() {
            if started.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                panic!("worker {i} did not finish in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("worker output");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "worker {i} failed: {stdout}\n{stderr}"
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("GIT_EMIT_RETRIES="));
        retries += line
            .and_then(|n| n.parse::<u32>().ok())
            .expect("worker reports retries");
    }
    let wall = started.elapsed();
    println!(
        "concurrency: {} emits from {WORKERS} processes in {wall:.2?}, {retries} push retries",
        WORKERS * PER_WORKER
    );

    let total = WORKERS * PER_WORKER;
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]),
        (total + 1).to_string()
    );
    assert_eq!(git(&bare, &["rev-list", "--merges", "main"]), "");
    for line in git(&bare, &["rev-list", "--parents", "main"]).lines() {
        let parents = line.split(' ').count() - 1;
        assert!(parents <= 1, "commit with {parents} parents: {line}");
    }
    assert_eq!(
        git(&bare, &["rev-list", "--max-parents=0", "main"])
            .lines()
            .count(),
        1
    );

    // Every new commit adds exactly one file, and no file is added twice.
    let log = git(
        &bare,
        &[
            "log",
            "--format=tformat:@",
            "--name-status",
            "--no-renames",
            "main",
        ],
    );
    let mut added = BTreeSet::new();
    for commit in log.split('@').skip(1) {
        let files: Vec<&str> = commit.lines().filter(|l| !l.is_empty()).collect();
        let [file] = files[..] else {
            panic!("a commit changes {files:?}");
        };
        let path = file.strip_prefix("A\t");
        assert!(added.insert(path.unwrap_or_else(|| panic!("not an addition: {file}"))));
    }
    assert_eq!(added.len(), total + 1, "README plus one file per emit");

    let expected: Vec<String> = (0..total).map(|n| workload(n).path).collect();
    let input: String = expected.iter().map(|p| format!("main:{p}\n")).collect();
    let blobs = git_raw(&bare, &["cat-file", "--batch"], input.as_bytes());
    let mut rest = blobs.as_str();
    for (n, path) in expected.iter().enumerate() {
        let (header, body) = rest.split_once('\n').expect("cat-file header");
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{path} missing: {header}"));
        assert_eq!(&body[..size], workload_yaml(n), "content of {path}");
        rest = body[size..].strip_prefix('\n').unwrap_or("");
    }
}

fn run_worker(index: usize) {
    let url = std::env::var("GIT_EMIT_URL").expect("url");
    let cache = PathBuf::from(std::env::var("GIT_EMIT_CACHE").expect("cache"));
    let mut retries = 0;
    for k in 0..PER_WORKER {
        let n = index * PER_WORKER + k;
        match emit(&target(&url, "main"), &cache, &[workload(n)], DEADLINE) {
            Ok(EmitOutcome::Committed { attempts, .. }) => retries += attempts - 1,
            other => panic!("worker {index} emit {n}: {other:?}"),
        }
    }
    println!("GIT_EMIT_RETRIES={retries}");
}

#[test]
fn escaping_paths_are_refused_before_any_request() {
    let refused = [
        "../x",
        "org/../../x",
        "/etc/passwd",
        "a//b",
        "./a",
        ".git/config",
        "a\\b",
        "",
    ];
    for path in refused {
        let cache = tempfile::tempdir().expect("tempdir");
        let workdir = cache.path().join("clone");
        let change = Change {
            path: path.to_owned(),
            content: b"x".to_vec(),
            message: "m".into(),
        };
        // An address nothing listens on: any request would fail with Fetch, not InvalidPath.
        let err = emit_to(
            "git://127.0.0.1:1/x.git",
            "main",
            &workdir,
            &[workload(1), change],
        )
        .expect_err("refused");
        assert!(
            matches!(&err, GitError::InvalidPath { path: p, .. } if p == path),
            "{path:?}: {err}"
        );
        assert!(!workdir.exists(), "{path:?}: the cache was touched");
    }
}

/// A pre-receive hook that moves the branch itself before the pushed update can land, so
/// every push is stale. The quarantine is left so its commit survives the rejected push.
const MOVE_FIRST_HOOK: &str = r#"#!/bin/sh
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
while read old new ref; do
  c=$(git commit-tree "$old^{tree}" -p "$old" -m moved)
  git update-ref "$ref" "$c" "$old"
done
"#;

#[test]
fn a_branch_that_keeps_moving_hits_the_deadline() {
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("moving");
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, MOVE_FIRST_HOOK).expect("write hook");
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&hook, executable).expect("chmod hook");
    let cache = tempfile::tempdir().expect("tempdir");
    let deadline = Duration::from_secs(3);

    let started = Instant::now();
    let err = emit(
        &target(&url, "main"),
        cache.path(),
        &[workload(3)],
        deadline,
    );
    let elapsed = started.elapsed();
    let text = format!("{err:?}");
    let Err(GitError::Deadline {
        attempts, branch, ..
    }) = &err
    else {
        panic!("expected Deadline, got {text}");
    };
    assert_eq!(branch, "main");
    assert!(*attempts >= 2, "only {attempts} attempts");
    assert!(
        elapsed < deadline + Duration::from_secs(5),
        "took {elapsed:?}"
    );
    let message = err.expect_err("deadline").to_string();
    assert!(
        message.contains("branch main") && message.contains(&url),
        "{message}"
    );
    println!("deadline: {elapsed:.2?}: {message}");
    let subjects = git(&bare, &["log", "--format=%s", "main"]);
    assert!(
        subjects.lines().any(|s| s == "moved"),
        "the hook never moved the branch"
    );
    assert!(
        !subjects.contains("build"),
        "a stale push landed: {subjects}"
    );
}

#[test]
fn credentials_in_the_url_never_reach_the_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    let url = "git://user:secret@127.0.0.1:1/x.git";
    let err = emit_to(url, "main", cache.path(), &[workload(1)]).expect_err("unreachable");
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    assert!(matches!(err, GitError::Fetch { .. }), "{text}");
    assert!(
        !text.contains("secret") && !debug.contains("secret"),
        "{text}\n{debug}"
    );
    assert!(
        text.contains("git://127.0.0.1:1/x.git") && text.contains("main"),
        "{text}"
    );
    assert!(!format!("{:?}", target(url, "main")).contains("secret"));
    assert_eq!(
        redact_url("https://x-access-token:t0k@h/o/r.git"),
        "https://h/o/r.git"
    );
    assert_eq!(redact_url("git@github.com:o/r.git"), "github.com:o/r.git");
    assert_eq!(redact_url("/srv/a@b:c/r.git"), "/srv/a@b:c/r.git");
}

#[test]
fn render_message_substitutes_literally() {
    let vars = [
        ("build", "b-1"),
        ("image", "r/i:{build}"),
        ("commit", "abc"),
    ];
    assert_eq!(
        render_message("{build} {image} {commit} {unknown} {{build}} {", &vars),
        "b-1 r/i:{build} abc {unknown} {b-1} {"
    );
}
