//! Real Git for tests (`mod gitd;`): a `git daemon` on loopback serving bare repositories with
//! push enabled, and the `git` CLI to set fixtures up and inspect results (what is under test
//! goes through git2).
#![allow(dead_code)] // shared by several test crates; each uses its own part

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `git daemon` serving `<base>/*.git` with push enabled; killed on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub base: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git-daemon` itself: `git daemon` runs it as a child, which killing `git` would leave
/// running (one orphaned daemon per test).
fn git_daemon() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("run git --exec-path");
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    PathBuf::from(dir).join("git-daemon")
}

impl Daemon {
    pub fn start() -> Daemon {
        let base = tempfile::tempdir().expect("tempdir");
        let daemon = git_daemon();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new(&daemon)
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
    pub fn repo(&self, name: &str) -> (PathBuf, String) {
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

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

pub fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    let identity = [
        "-c",
        "user.name=fixture",
        "-c",
        "user.email=fixture@example.com",
    ];
    cmd.args(identity).arg("-C").arg(dir).args(args);
    cmd
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    git_stdin(dir, args, b"")
}

pub fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    git_raw(dir, args, input).trim_end().to_owned()
}

/// The command's whole stdout, trailing newlines included.
pub fn git_raw(dir: &Path, args: &[&str], input: &[u8]) -> String {
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
