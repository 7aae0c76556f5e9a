//! The one place integration tests get Kubernetes API servers from (`mod cluster;`): real
//! kube-apiserver v1.20.2 + etcd on loopback, provisioned by `scripts/kube-testenv`.
//!
//! - [`kubeconfig`]: the cluster shared by every test of the process: `BUILDPLANE_TEST_KUBECONFIG`
//!   when set (`scripts/test` starts one cluster for the whole run), otherwise one started on first
//!   use and stopped by a watchdog process once the test process is gone.
//! - [`start_private`]: a new cluster of its own (two planes, or stopping the API server).
//! - [`unique_name`]: a fresh DNS label per call; tests share the cluster, so each works in its own
//!   namespaces and organizations and never deletes what it did not create.
//! - [`kubectl_like_get`], [`raw_request`]: raw API calls (with `curl`) for assertions and setup.
//! - [`request_counter`], [`kubeconfig_pointing_at`]: prove whether a command connects at all.
//!
//! The API server runs alone: no controller manager, so a deleted namespace stays `Terminating`
//! forever and nothing garbage-collects owned objects.
#![allow(dead_code)] // shared by several test crates; each uses its own part

use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::{fs, thread};

/// Set to a kubeconfig to run the tests against that cluster instead of starting one.
pub const KUBECONFIG_ENV: &str = "BUILDPLANE_TEST_KUBECONFIG";
/// The contexts of a kube-testenv kubeconfig: admin (system:masters), and a user without grants.
pub const ADMIN: &str = "testenv";
pub const LIMITED: &str = "testenv-limited";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-testenv")
}

/// Runs `kube-testenv ARGS`, in a process group of its own so that a Ctrl-C aimed at the tests
/// does not reach the servers it starts (the watchdog or `Drop` stops them).
fn testenv(args: &[&str]) -> Result<(), String> {
    let out = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "kube-testenv {} failed ({}):\n{stderr}",
        args.join(" "),
        out.status
    ))
}

/// Builds kube-apiserver once per process (a cold build takes minutes; concurrent `up`s of one
/// process must not all build it at once).
fn ensure_built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(|| testenv(&["build"])) {
        panic!("{e}");
    }
}

/// Started by `up`: runs `kube-testenv up DIR` and prints its exit status (the test process reads
/// that line), then waits for the test process (`$2`) to end and stops the cluster, however the
/// test process ended (panic, abort, signal). A private cluster's `Drop` kills it first.
const WATCHDOG: &str = r#"
"$0" up "$1" >"$1/up.log" 2>&1
echo "$?"
exec >/dev/null 2>&1
while kill -0 "$2" 2>/dev/null; do sleep 1; done
"$0" down "$1"
rm -rf "$1"
"#;

/// Starts a cluster in a new temporary directory; returns it and its watchdog.
fn up(kind: &str) -> Result<(PathBuf, Child), String> {
    ensure_built();
    let mut last = String::new();
    for _attempt in 0..2 {
        // `up` picks free ports by binding and releasing them: concurrent starts can rarely
        // collide, so one failed start is retried in a fresh directory.
        let dir = tempfile::Builder::new()
            .prefix(&format!("buildplane-testenv-{kind}-"))
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(script())
            .arg(&dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start sh: {e}"))?;
        let mut status = String::new();
        let stdout = watchdog.stdout.take().expect("piped stdout");
        let read = BufReader::new(stdout).read_line(&mut status);
        if read.is_ok() && status.trim() == "0" {
            return Ok((dir, watchdog));
        }
        let log = fs::read_to_string(dir.join("up.log")).unwrap_or_default();
        last = format!(
            "kube-testenv up {} failed ({}):\n{log}",
            dir.display(),
            status.trim()
        );
        let _ = watchdog.kill();
        let _ = watchdog.wait();
        let _ = testenv(&["down", &dir.to_string_lossy()]);
        let _ = fs::remove_dir_all(&dir);
    }
    Err(last)
}

/// The kubeconfig of the cluster shared by the whole test process (context [`ADMIN`] current,
/// [`LIMITED`] beside it): `$BUILDPLANE_TEST_KUBECONFIG` when set, otherwise a cluster started
/// on first use (about 10 s) and stopped after the process exits.
pub fn kubeconfig() -> PathBuf {
    static SHARED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return match path.is_file() {
                true => Ok(path),
                false => Err(format!("{KUBECONFIG_ENV}={}: no such file", path.display())),
            };
        }
        // The watchdog outlives the process by design: dropping its handle does not stop it.
        up("shared").map(|(dir, _watchdog)| dir.join("kubeconfig"))
    });
    match shared {
        Ok(path) => path.clone(),
        Err(e) => panic!("no shared test cluster: {e}"),
    }
}

/// A cluster of one test's own, stopped (`kube-testenv down`) and deleted on drop.
pub struct Cluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    watchdog: Child,
}

/// Starts a new cluster, independent of the shared one and of other private ones (about 10 s).
pub fn start_private() -> Cluster {
    match up("private") {
        Ok((dir, watchdog)) => Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            watchdog,
        },
        Err(e) => panic!("cannot start a private test cluster: {e}"),
    }
}

impl Cluster {
    /// Stops the API server (etcd keeps the data): requests then fail to connect.
    pub fn stop_apiserver(&self) {
        testenv(&["stop-apiserver", &self.dir.to_string_lossy()]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the API server again on the same port with the same data; returns once it is ready.
    pub fn start_apiserver(&self) {
        testenv(&["start-apiserver", &self.dir.to_string_lossy()])
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        if let Err(e) = testenv(&["down", &self.dir.to_string_lossy()]) {
            eprintln!("{e}");
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port free right now (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh DNS label (RFC 1123, starting with a letter, at most 63 characters) starting with
/// `prefix` (lowercased, other characters turned to `-`): `prefix-<pid>-<counter>-<random>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let random = RandomState::new().hash_one((pid, n)) & 0xff_ffff;
    let suffix = format!("-{pid}-{n}-{random:06x}");
    let clean: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let mut head = clean.trim_matches('-').to_owned();
    if !head.starts_with(|c: char| c.is_ascii_lowercase()) {
        head.insert(0, 't');
    }
    head.truncate(63 - suffix.len());
    format!("{}{suffix}", head.trim_end_matches('-'))
}

/// Server URL and bearer token of `context` (default: the current context) of a kubeconfig.
fn endpoint(kubeconfig: &Path, context: Option<&str>) -> (String, String) {
    let text = fs::read_to_string(kubeconfig)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", kubeconfig.display()));
    let doc: Value = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", kubeconfig.display()));
    let named = |list: &str, name: &Value| {
        let found = doc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == *name));
        found.unwrap_or_else(|| panic!("{}: no {list} entry named {name}", kubeconfig.display()))
    };
    let context = match context {
        Some(c) => Value::from(c),
        None => doc["current-context"].clone(),
    };
    let context = &named("contexts", &context)["context"];
    let server = named("clusters", &context["cluster"])["cluster"]["server"].as_str();
    let token = named("users", &context["user"])["user"]["token"].as_str();
    match (server, token) {
        (Some(s), Some(t)) => (s.trim_end_matches('/').to_owned(), t.to_owned()),
        _ => panic!("{}: needs a server and a token user", kubeconfig.display()),
    }
}

/// `GET path` as kubectl asks for what it prints: a `meta.k8s.io/v1` Table (the printer
/// columns, computed by the API server).
pub fn get_table(kubeconfig: &Path, path: &str) -> (u16, Value) {
    let (server, token) = endpoint(kubeconfig, None);
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "30"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Accept: application/json;as=Table;v=v1;g=meta.k8s.io"])
        .args(["-w", "\n%{http_code}"])
        .arg(format!("{server}{path}"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (text, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let value = serde_json::from_str(text.trim()).unwrap_or_else(|_| Value::from(text));
    (code.trim().parse().unwrap_or(0), value)
}

/// `GET path` (e.g. `/api/v1/namespaces/x`) as the user of `context` (default: current).
pub fn kubectl_like_get(kubeconfig: &Path, context: Option<&str>, path: &str) -> (u16, Value) {
    raw_request(kubeconfig, context, "GET", path, None, "application/json")
}

/// One API request with `curl`, as the user of `context` (default: the current context):
/// `method` (GET, POST, PUT, PATCH, DELETE) on `path` with an optional JSON `body` sent as
/// `content_type` (`application/merge-patch+json` for merge patches). Returns the HTTP status and
/// the body (JSON; `Null` when empty, a string when not JSON); status 0 and curl's error as a
/// string when no response arrived (e.g. the API server is stopped).
pub fn raw_request(
    kubeconfig: &Path,
    context: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    content_type: &str,
) -> (u16, Value) {
    let (server, token) = endpoint(kubeconfig, context);
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-k", "--max-time", "30", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Accept: application/json", "-w", "\n%{http_code}"])
        .arg(format!("{server}{path}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if body.is_some() {
        curl.args([
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            "@-",
        ]);
        curl.stdin(Stdio::piped());
    }
    let mut child = curl
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    if let Some(body) = body {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(body.to_string().as_bytes())
            .expect("write the request body to curl");
    }
    let out = child.wait_with_output().expect("wait for curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (text, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let status: u16 = code.trim().parse().unwrap_or(0);
    if status == 0 {
        return (0, Value::from(String::from_utf8_lossy(&out.stderr).trim()));
    }
    let value = match text.trim() {
        "" => Value::Null,
        t => serde_json::from_str(t).unwrap_or_else(|_| Value::from(t)),
    };
    (status, value)
}

/// The field managers of an object (`metadata.managedFields[].manager`), in order.
pub fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|m| m["manager"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Counts the TCP connections made to `addr` (each is accepted, counted, then closed at once).
pub struct RequestCounter {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// A listener on 127.0.0.1 (free port) counting connections in a background thread. A client
/// sees its connection closed only after it was counted, so once a command has failed, `count`
/// already includes its connections.
pub fn request_counter() -> RequestCounter {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (Arc::clone(&count), Arc::clone(&stop));
    thread::spawn(move || {
        for stream in listener.incoming() {
            if s.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(stream) = stream {
                c.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        }
    });
    RequestCounter { addr, count, stop }
}

impl RequestCounter {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for RequestCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the thread up, which then stops
    }
}

/// A kubeconfig (one context `counter`, current, namespace `default`) whose server is
/// `https://<addr>`, with a dummy token and TLS verification off.
pub fn kubeconfig_pointing_at(addr: SocketAddr) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("buildplane-kubeconfig-")
        .suffix(".yaml")
        .tempfile()
        .expect("create a temporary kubeconfig");
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: counter
  cluster:
    server: https://{addr}
    insecure-skip-tls-verify: true
users:
- name: counter
  user:
    token: dummy-token
contexts:
- name: counter
  context:
    cluster: counter
    user: counter
    namespace: default
current-context: counter
"
    );
    file.write_all(yaml.as_bytes())
        .expect("write the kubeconfig");
    file.flush().expect("flush the kubeconfig");
    file
}

/// Installs Argo's CRDs and the four ClusterWorkflowTemplates into the cluster of `kubeconfig`
/// with the real binary (a build plane, without build namespaces).
pub fn install_argo(kubeconfig: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KUBECONFIG")
        .args([
            "apply",
            "--set",
            "buildNamespaces={}",
            "--force-conflicts",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .output()
        .expect("run buildplane");
    assert!(
        out.status.success(),
        "installing Argo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shared cluster with Argo installed ([`install_argo`]), once per test process
/// (cluster-scoped objects every build test needs).
pub fn with_argo() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let kc = kubeconfig();
        install_argo(&kc);
        kc
    })
    .clone()
}

/// Installs the Workload CRD generated from the Rust types (a control plane for
/// `--emit-cluster`) and waits until it is Established.
pub fn install_workload_crd(kubeconfig: &Path) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    rt.block_on(async {
        use buildplane::kube::{ClientSettings, Kube};
        let kube = Kube::connect(&ClientSettings {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            ..Default::default()
        })
        .await
        .expect("a client");
        let crd = buildplane::core::manifest::Manifest::new(buildplane::core::crd::workload_crd())
            .expect("a manifest");
        let r = kube
            .resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .await
            .expect("discovery")
            .expect("CRDs are served");
        kube.apply(&r, &crd, false, true)
            .await
            .expect("the CRD applies");
        kube.wait_crd_established(
            "workloads.openchoreo.dev",
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("the CRD is Established");
    });
}
