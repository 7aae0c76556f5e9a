//! `git::emit` against real repositories served by `git daemon` on loopback.
//!
//! The `git` CLI only sets fixtures up and inspects results; everything under test goes
//! through git2. The concurrency test re-executes this binary as worker processes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buildplane::git::{Change, EmitOutcome, GitError, GitTarget, emit, render_message};

const WORKER_ENV: &str = "GIT_EMIT_WORKER";
const WORKERS: usize = 8;
const PER_WORKER: usize = 25;

/// A `git daemon` serving `<base>/*.git` with push enabled; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
    base: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start() -> Daemon {
        let base = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("git")
                .arg("daemon")
                .arg("--reuseaddr")
                .arg(format!("--base-path={}", base.path().display()))
                .args([
                    "--export-all",
                    "--enable=receive-pack",
                    "--informative-errors",
                ])
                .args(["--listen=127.0.0.1", &format!("--port={port}")])
                .arg(base.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn git daemon");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Daemon { child, port, base };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start");
    }

    /// A bare repository `<name>.git` whose `main` holds one commit with `README.md`.
    fn repo(&self, name: &str) -> (PathBuf, String) {
        let dir = self.base.path().join(format!("{name}.git"));
        git(
            self.base.path(),
            &["init", "--bare", "-q", "-b", "main", path_str(&dir)],
        );
        let blob = git_stdin(&dir, &["hash-object", "-w", "--stdin"], b"# results\n");
        let tree = git_stdin(
            &dir,
            &["mktree"],
            format!("100644 blob {blob}\tREADME.md\n").as_bytes(),
        );
        let commit = git(&dir, &["commit-tree", &tree, "-m", "init"]);
        git(&dir, &["update-ref", "refs/heads/main", &commit]);
        let url = format!("git://127.0.0.1:{}/{name}.git", self.port);
        (dir, url)
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "fixture"),
        ("GIT_AUTHOR_EMAIL", "fixture@example.com"),
        ("GIT_COMMITTER_NAME", "fixture"),
        ("GIT_COMMITTER_EMAIL", "fixture@example.com"),
    ] {
        cmd.env(k, v);
    }
    cmd
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_stdin(dir, args, b"")
}

fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    git_raw(dir, args, input).trim_end().to_owned()
}

/// The command's whole stdout, trailing newlines included.
fn git_raw(dir: &Path, args: &[&str], input: &[u8]) -> String {
    let mut child = git_cmd(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("git output");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

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

#[test]
fn emit_commits_once_then_reports_unchanged() {
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("results");
    let cache = tempfile::tempdir().expect("tempdir");
    let change = workload(7);

    let outcome = emit(
        &target(&url, "main"),
        cache.path(),
        std::slice::from_ref(&change),
        DEADLINE,
    )
    .expect("first emit");
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

    let again = emit(
        &target(&url, "main"),
        cache.path(),
        std::slice::from_ref(&change),
        DEADLINE,
    );
    assert_eq!(again.expect("second emit"), EmitOutcome::Unchanged);
    let fresh_cache = tempfile::tempdir().expect("tempdir");
    let from_fresh = emit(
        &target(&url, "main"),
        fresh_cache.path(),
        &[change],
        DEADLINE,
    );
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

    let outcome = emit(
        &target(&url, "results/builds"),
        cache.path(),
        &[workload(1)],
        DEADLINE,
    )
    .expect("emit");
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
    let t00 = Instant::now();
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("race");
    println!("setup {:?}", t00.elapsed());
    let caches = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let mut children: Vec<Child> = (0..WORKERS)
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
    for (i, child) in children.iter_mut().enumerate() {
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait worker") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                panic!("worker {i} did not finish in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read");
        assert!(status.success(), "worker {i} failed: {out}\n{err}");
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("GIT_EMIT_RETRIES="));
        retries += line
            .expect("worker reports retries")
            .parse::<u32>()
            .expect("number");
    }
    let wall = started.elapsed();
    println!(
        "concurrency: {} emits from {WORKERS} processes in {wall:.2?}, {retries} push retries",
        WORKERS * PER_WORKER
    );

    let verify = Instant::now();
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

    // Every new commit adds exactly one file, and every file is added exactly once.
    let log = git(
        &bare,
        &[
            "log",
            "--format=@%H",
            "--name-status",
            "--no-renames",
            "main",
        ],
    );
    let mut added: BTreeMap<String, usize> = BTreeMap::new();
    let mut commits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        if let Some(id) = line.strip_prefix('@') {
            current = id.to_owned();
            commits.entry(current.clone()).or_default();
        } else {
            commits
                .get_mut(&current)
                .expect("commit")
                .push(line.to_owned());
            if let Some(path) = line.strip_prefix("A\t") {
                *added.entry(path.to_owned()).or_default() += 1;
            }
        }
    }
    for (id, files) in &commits {
        assert_eq!(files.len(), 1, "commit {id} changes {files:?}");
        assert!(
            files[0].starts_with("A\t"),
            "commit {id} does not add: {files:?}"
        );
    }
    assert_eq!(added.len(), total + 1, "README plus one file per emit");
    assert!(added.values().all(|&n| n == 1));

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
    println!("verify {:?} total {:?}", verify.elapsed(), t00.elapsed());
}

fn run_worker(index: usize) {
    let t = Instant::now();
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
    eprintln!("worker {index} done in {:?}", t.elapsed());
    println!("GIT_EMIT_RETRIES={retries}");
}

#[test]
fn escaping_paths_are_refused_before_any_request() {
    for path in [
        "../outside.yaml",
        "org/../../x",
        "/etc/passwd",
        "a//b",
        ".git/config",
        "",
    ] {
        let cache = tempfile::tempdir().expect("tempdir");
        let workdir = cache.path().join("clone");
        let change = Change {
            path: path.to_owned(),
            content: b"x".to_vec(),
            message: "m".into(),
        };
        // An address nothing listens on: any request would fail with Fetch, not InvalidPath.
        let err = emit(
            &target("git://127.0.0.1:1/x.git", "main"),
            &workdir,
            &[workload(1), change],
            DEADLINE,
        )
        .expect_err("refused");
        assert!(
            matches!(&err, GitError::InvalidPath { path: p, .. } if p == path),
            "{path:?}: {err}"
        );
        assert!(!workdir.exists(), "{path:?}: the cache was touched");
    }
}

#[test]
fn a_branch_that_keeps_moving_hits_the_deadline() {
    let daemon = Daemon::start();
    let (bare, url) = daemon.repo("moving");
    // Before every update lands, the server moves the branch itself, so each push is stale.
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY \
         GIT_ALTERNATE_OBJECT_DIRECTORIES\n  c=$(git commit-tree \"$old^{tree}\" -p \"$old\" -m moved)\n  \
         git update-ref \"$ref\" \"$c\" \"$old\"\ndone\n",
    )
    .expect("write hook");
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
    )
    .expect_err("deadline");
    let elapsed = started.elapsed();
    let GitError::Deadline {
        attempts,
        ref branch,
        ..
    } = err
    else {
        panic!("expected Deadline, got {err}");
    };
    assert_eq!(branch, "main");
    assert!(attempts >= 2, "only {attempts} attempts");
    assert!(
        elapsed < deadline + Duration::from_secs(5),
        "took {elapsed:?}"
    );
    let text = err.to_string();
    assert!(text.contains("main") && text.contains(&url), "{text}");
    println!("deadline: {attempts} attempts in {elapsed:.2?}: {text}");
    let moved: usize = git(&bare, &["rev-list", "--count", "main"])
        .parse()
        .expect("count");
    assert!(moved > 1, "the hook never moved the branch");
    assert_eq!(
        git(&bare, &["log", "--format=%s", "main"])
            .lines()
            .filter(|s| s.starts_with("build"))
            .count(),
        0
    );
}

#[test]
fn credentials_in_the_url_never_reach_the_error() {
    let cache = tempfile::tempdir().expect("tempdir");
    let url = "git://user:secret@127.0.0.1:1/x.git";
    let err = emit(&target(url, "main"), cache.path(), &[workload(1)], DEADLINE)
        .expect_err("unreachable");
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
