//! Directory and file inputs that must never hang, spin or exhaust memory, as a user meets
//! them with the real binary: symlink loops, a link to `/dev/zero`, a FIFO, a link leading
//! outside the directory, an oversized file. Each is refused with exit code 2 and one line
//! naming the path, within seconds and without growing; a link inside the directory still works.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one render of a tiny input may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(15);
/// How much memory one render of a tiny input may use (VmRSS, checked while it runs).
const MEMORY_MB: u64 = 300;

const BUILD: &str = include_str!("../fixtures/builds/greeter-docker.yaml");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `buildplane render ARGS`, killed (and the test failed) when it outlives [`DEADLINE`] or
/// grows beyond [`MEMORY_MB`].
fn render(args: &[OsString]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .arg("render")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipes.0.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipes.1.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let rss = rss_mb(child.id()).unwrap_or(0);
        if rss > MEMORY_MB || started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "render {args:?} killed after {:?} at {rss} MB (limits {DEADLINE:?}, {MEMORY_MB} MB)",
                started.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A directory holding one good Build file and the entries `add` puts there.
fn dir_with(add: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("build.yaml"), BUILD).unwrap();
    add(dir.path());
    dir
}

/// Exit code 2, nothing on stdout, one error line holding every needle.
fn assert_refused(args: &[OsString], needles: &[&str]) {
    let run = render(args);
    assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
    assert!(run.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    for n in needles {
        assert!(run.stderr.contains(n), "expected {n:?} in {}", run.stderr);
    }
}

fn arg(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

#[test]
fn symlink_loops_are_refused_not_walked_forever() {
    let dir = dir_with(|d| {
        for l in ["l1", "l2", "l3"] {
            symlink(".", d.join(l)).unwrap();
        }
    });
    let named = format!(
        "{}: symlink loop: leads back to ",
        dir.path().join("l1").display()
    );
    assert_refused(&[arg(dir.path())], &[&named]);
}

#[test]
fn a_yaml_link_to_dev_zero_is_refused_without_reading() {
    let dir = dir_with(|d| symlink("/dev/zero", d.join("zero.yaml")).unwrap());
    let named = format!(
        "{}: symlink to /dev/zero",
        dir.path().join("zero.yaml").display()
    );
    assert_refused(&[arg(dir.path())], &[&named, "leads outside"]);
    // Named directly, a link is followed, and what it leads to must be a regular file.
    let link = arg(&dir.path().join("zero.yaml"));
    assert_refused(
        std::slice::from_ref(&link),
        &["zero.yaml: a character device, not a regular file"],
    );
    assert_refused(
        &["-f".into(), link, arg(&dir.path().join("build.yaml"))],
        &["zero.yaml: a character device"],
    );
}

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let dir = dir_with(|d| {
        let made = Command::new("mkfifo")
            .arg(d.join("x.yaml"))
            .status()
            .unwrap();
        assert!(made.success());
    });
    let fifo = dir.path().join("x.yaml");
    let named = format!("{}: a FIFO, not a regular file", fifo.display());
    assert_refused(&[arg(dir.path())], &[&named]);
    assert_refused(
        &["-f".into(), arg(&fifo), arg(&dir.path().join("build.yaml"))],
        &[&named],
    );
}

#[test]
fn a_symlink_leading_outside_the_directory_is_refused() {
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("other.yaml");
    std::fs::write(&target, BUILD.replace("greeter", "other")).unwrap();
    let dir = dir_with(|d| {
        symlink(&target, d.join("other.yaml")).unwrap();
        symlink(elsewhere.path(), d.join("more")).unwrap();
    });
    let file = format!("{}: symlink to ", dir.path().join("more").display());
    assert_refused(&[arg(dir.path())], &[&file, "leads outside"]);
    std::fs::remove_file(dir.path().join("more")).unwrap();
    let file = format!("{}: symlink to ", dir.path().join("other.yaml").display());
    assert_refused(&[arg(dir.path())], &[&file, "leads outside"]);
}

#[test]
fn an_oversized_file_is_refused_naming_it_and_the_cap() {
    let dir = dir_with(|d| {
        // Valid YAML all the way (a comment), one byte over the cap.
        let mut big = b"# ".to_vec();
        big.resize(4 << 20, b'x');
        big.push(b'\n');
        std::fs::write(d.join("big.yaml"), big).unwrap();
    });
    let named = format!(
        "{}: larger than 4 MiB",
        dir.path().join("big.yaml").display()
    );
    assert_refused(&[arg(dir.path())], &[&named]);
}

#[test]
fn a_symlink_to_a_file_inside_the_directory_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".shared")).unwrap();
    std::fs::write(dir.path().join(".shared/greeter.yml"), BUILD).unwrap();
    symlink(".shared/greeter.yml", dir.path().join("greeter.yaml")).unwrap();
    let run = render(&[arg(dir.path())]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("kind: Workflow"), "{}", run.stdout);
}
