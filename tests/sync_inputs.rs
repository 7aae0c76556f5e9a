//! `buildplane sync --dir` over a directory someone filled with traps (symlink loops, a link
//! to `/dev/zero`, a FIFO): the loop keeps running, reports each bad path as a skipped file,
//! stays small, and stops within `--grace` after SIGTERM. The real binary against the real
//! API server.

mod cluster;
mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::sync_run::start_sync;

/// How long a round over a handful of entries may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);
/// The most memory the loop may ever have used (VmHWM).
const MEMORY_MB: u64 = 200;
const GRACE: Duration = Duration::from_secs(2);

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
    sync.wait = WAIT;
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

    let (code, took) = sync.terminate_within(GRACE + Duration::from_secs(1));
    assert_eq!(code, Some(0), "{:#?}", sync.seen);
    assert!(took < GRACE, "stopped {took:?} after SIGTERM");
}
