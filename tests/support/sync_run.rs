//! `buildplane sync --log-format json` run as a user runs it, its JSON events read as they come
//! (tests/sync.rs, tests/user_templates.rs, tests/sync_inputs.rs).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a wait for an event lasts unless the test sets [`Sync::wait`].
const WAIT: Duration = Duration::from_secs(60);

/// A running `buildplane sync --log-format json` and its stderr events as they come.
pub struct Sync {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<Value>,
    /// How long [`Sync::wait_event`] waits.
    pub wait: Duration,
}

pub fn start_sync(kc: &Path, args: &[&str]) -> Sync {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
        wait: WAIT,
    }
}

impl Sync {
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            let v = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
            self.seen.push(v);
        }
    }

    /// Waits for the `n`-th event named `event` (counting from the start) and returns it.
    pub fn wait_event(&mut self, event: &str, n: usize) -> Value {
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
                started.elapsed() < self.wait,
                "no {event} #{n} after {:?} (memory high-water mark {:?} MB); so far: {:#?}",
                self.wait,
                self.peak_mb(),
                self.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn events(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|e| e["event"] == event)
            .cloned()
            .collect()
    }

    /// The most memory the process has used so far (VmHWM), in MB.
    pub fn peak_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024)
    }

    /// SIGTERM, then the exit code (bounded).
    pub fn terminate(&mut self) -> Option<i32> {
        self.terminate_within(WAIT).0
    }

    /// SIGTERM, then the exit code and how long it took (failing after `limit`).
    pub fn terminate_within(&mut self, limit: Duration) -> (Option<i32>, Duration) {
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
