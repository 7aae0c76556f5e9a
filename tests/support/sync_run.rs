//! `buildplane sync --log-format json` run as a user runs it, its JSON events read as they come
//! (tests/sync.rs, tests/user_templates.rs).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a wait for an event lasts.
const WAIT: Duration = Duration::from_secs(60);

/// A running `buildplane sync --log-format json` and its stderr events as they come.
pub struct Sync {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<Value>,
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
                started.elapsed() < WAIT,
                "no {event} #{n}; so far: {:#?}",
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

    /// SIGTERM, then the exit code (bounded).
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.drain();
                return status.code();
            }
            assert!(started.elapsed() < WAIT, "sync did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
