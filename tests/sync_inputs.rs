//! `buildplane sync --dir` over a directory someone filled with traps (symlink loops, a link
//! to `/dev/zero`, a FIFO): the loop keeps running, reports each bad path as a skipped file,
//! stays small, and stops within `--grace` after SIGTERM. The real binary against the real
//! API server.

mod cluster;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a round over a handful of entries may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);
/// The most memory the loop may ever have used (VmHWM).
const MEMORY_MB: u64 = 200;
const GRACE: Duration = Duration::from_secs(2);

/// A running `buildplane sync --log-format json` and its stderr events as they come.
struct Sync {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

fn start_sync(kc: &Path, args: &[&str]) -> Sync {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .env_remove("KUBECONFIG")
        .env_remove("BUILDPLANE_LOG")
        .arg("sync")
        .args(args)
        .args(["--log-format", "json", "--kubeconfig"])
        .arg(kc)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Sync {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Sync {
    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            let v = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
            self.seen.push(v);
        }
    }

    /// Waits for the `n`-th event named `event` (counting from the start) and returns it.
    fn wait_event(&mut self, event: &str, n: usize) -> Value {
        let started = Instant::now();
        loop {
            self.drain();
            if let Some(e) = self.events(event).into_iter().nth(n - 1) {
                return e;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sync exited ({status}) before {event}: {:#?}", self.seen);
            }
            assert!(
                started.elapsed() < WAIT,
                "no {event} #{n} after {WAIT:?} (memory high-water mark {:?} MB); so far: {:#?}",
                self.peak_mb(),
                self.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn events(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    /// The most memory the process has used so far (VmHWM), in MB.
    fn peak_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024)
    }

    /// SIGTERM, then the exit code and how long it took (failing after `limit`).
    fn terminate(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain();
                return (status.code(), started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "sync still running {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn loops_a_dev_zero_link_and_a_fifo_are_skipped_and_sigterm_stops_the_loop_within_grace() {
    let kc = cluster::kubeconfig();
    let tmp = tempfile::tempdir().unwrap();
    let specs = tmp.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    for l in ["l1", "l2", "l3"] {
        symlink(".", specs.join(l)).unwrap();
    }
    symlink("/dev/zero", specs.join("zero.yaml")).unwrap();
    let made = Command::new("mkfifo")
        .arg(specs.join("x.yaml"))
        .status()
        .unwrap();
    assert!(made.success());
    let inventory = cluster::unique_name("sync-inputs");
    let grace = format!("{}s", GRACE.as_secs());
    let mut sync = start_sync(
        &kc,
        &[
            "--dir",
            specs.to_str().unwrap(),
            "--inventory",
            &inventory,
            "--grace",
            &grace,
        ],
    );
    let round = sync.wait_event("sync_round", 1);
    assert_eq!(round["builds"], 0, "{round}");
    assert_eq!(round["broken"], 5, "{round}");
    let skipped: Vec<(String, String)> = sync
        .events("file_skipped")
        .iter()
        .map(|e| {
            let file = e["file"].as_str().unwrap_or_default();
            let file = Path::new(file).strip_prefix(&specs).unwrap();
            let error = e["error"].as_str().unwrap_or_default().to_owned();
            (file.display().to_string(), error)
        })
        .collect();
    let names: Vec<&str> = skipped.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        ["l1", "l2", "l3", "x.yaml", "zero.yaml"],
        "{skipped:#?}"
    );
    for (file, error) in &skipped[..3] {
        assert!(error.contains("symlink loop"), "{file}: {error}");
    }
    assert!(skipped[3].1.contains("a FIFO"), "{skipped:#?}");
    assert!(skipped[4].1.contains("leads outside"), "{skipped:#?}");

    // Still running, and still reading: a change is a second round with one more bad entry.
    symlink("..", specs.join("up")).unwrap();
    let round = sync.wait_event("sync_round", 2);
    assert_eq!(round["broken"], 6, "{round}");
    assert!(sync.child.try_wait().unwrap().is_none());
    let peak = sync.peak_mb().unwrap();
    assert!(peak < MEMORY_MB, "sync used {peak} MB");

    let (code, took) = sync.terminate(GRACE + Duration::from_secs(1));
    assert_eq!(code, Some(0), "{:#?}", sync.seen);
    assert!(took < GRACE, "stopped {took:?} after SIGTERM");
}
