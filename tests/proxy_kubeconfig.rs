//! Connecting as kubectl connects, against the real API server (tests/cluster): through an HTTP
//! CONNECT proxy named by `HTTPS_PROXY` or a cluster's `proxy-url`, past it for servers
//! `NO_PROXY` names and loopback servers, from a merged `KUBECONFIG` list, and with a missing
//! exec credential plugin named in one line; a BuildPlane's Secret through its own `proxy-url`.
//!
//! The proxy is a real one, written here: it answers `CONNECT host:port`, splices the bytes both
//! ways and counts its tunnels. Servers it is meant to carry are named `*.proxy.invalid`, a name
//! no resolver answers (RFC 6761): only the proxy knows where they are, so a command that
//! reaches one went through it, and one that skipped it cannot reach the server at all.

mod cluster;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// A name the test API server's certificate holds (kube-apiserver puts it in every one).
const CERT_NAME: &str = "kubernetes.default.svc";
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Copies bytes from `from` to `to` until `from` ends, then ends `to`'s write side.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// Both directions between two connections, each on a thread of its own.
fn splice(a: TcpStream, b: TcpStream) {
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    thread::spawn(move || pump(a, b));
    thread::spawn(move || pump(b2, a2));
}

/// An HTTP CONNECT proxy on loopback. `routes` sends a `host:port` elsewhere (the proxy's own
/// name resolution); any other target is connected to as named.
struct TunnelProxy {
    addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl TunnelProxy {
    fn start(routes: HashMap<String, String>) -> TunnelProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (Arc::clone(&tunnels), Arc::clone(&targets));
        let routes = Arc::new(routes);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (count, seen, routes) = (count.clone(), seen.clone(), routes.clone());
                thread::spawn(move || serve_connect(client, &routes, &count, &seen));
            }
        });
        TunnelProxy {
            addr,
            tunnels,
            targets,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// One proxy connection: the request head (`CONNECT host:port HTTP/1.1` and headers), `200`,
/// then the tunnel. Anything else is answered `405`, an unreachable target `502`.
fn serve_connect(
    mut client: TcpStream,
    routes: &HashMap<String, String>,
    tunnels: &AtomicUsize,
    targets: &Mutex<Vec<String>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) if head.len() < 16 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    targets.lock().unwrap().push(target.to_owned());
    let upstream = routes.get(target).map_or(target, String::as_str);
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    tunnels.fetch_add(1, Ordering::SeqCst);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_ok()
    {
        splice(client, server);
    }
}

/// A plain TCP forwarder on `ip` to `upstream`, counting connections: a server address that is
/// not loopback in form, reached without a proxy.
struct Forwarder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Forwarder {
    fn start(ip: IpAddr, upstream: String) -> Forwarder {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(server) = TcpStream::connect(&upstream) {
                    splice(client, server);
                }
            }
        });
        Forwarder { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The shared test cluster's current context, taken apart: its server (`https://host:port`),
/// cluster entry and user entry, to write new kubeconfigs around.
struct Plane {
    server: String,
    host_port: String,
    port: u16,
    cluster: Value,
    user: Value,
}

fn plane() -> Plane {
    let path = cluster::with_argo();
    let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let named = |list: &str, name: &Value| {
        doc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == *name))
            .unwrap_or_else(|| panic!("{}: no {list} entry {name}", path.display()))
            .clone()
    };
    let context = named("contexts", &doc["current-context"])["context"].clone();
    let cluster = named("clusters", &context["cluster"])["cluster"].clone();
    let user = named("users", &context["user"])["user"].clone();
    let server = cluster["server"].as_str().unwrap().trim_end_matches('/');
    let host_port = server.trim_start_matches("https://").to_owned();
    let port = host_port.rsplit(':').next().unwrap().parse().unwrap();
    Plane {
        server: server.to_owned(),
        host_port,
        port,
        cluster,
        user,
    }
}

impl Plane {
    /// The cluster entry with `server` replaced and `extra` fields added.
    fn cluster_at(&self, server: &str, extra: Value) -> Value {
        let mut c = self.cluster.clone();
        c["server"] = Value::from(server);
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// A server name only the proxy resolves (to this plane), with the certificate's name.
    fn named(&self, host: &str) -> (String, Value) {
        let server = format!("https://{host}:{}", self.port);
        let cluster = self.cluster_at(&server, json!({"tls-server-name": CERT_NAME}));
        (format!("{host}:{}", self.port), cluster)
    }
}

/// A kubeconfig document: `clusters` and `users` by name, `contexts` as (name, cluster, user).
fn kubeconfig(
    clusters: &[(&str, &Value)],
    users: &[(&str, &Value)],
    contexts: &[(&str, &str, &str)],
    current: Option<&str>,
) -> Value {
    let mut doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters.iter().map(|(n, c)| json!({"name": n, "cluster": c})).collect::<Vec<_>>(),
        "users": users.iter().map(|(n, u)| json!({"name": n, "user": u})).collect::<Vec<_>>(),
        "contexts": contexts
            .iter()
            .map(|(n, c, u)| json!({"name": n, "context": {"cluster": c, "user": u}}))
            .collect::<Vec<_>>(),
    });
    if let Some(c) = current {
        doc["current-context"] = Value::from(c);
    }
    doc
}

/// Writes `doc` (JSON is YAML) as `dir/name`.
fn write(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

/// One context `plane` on `cluster` as the shared cluster's user.
fn one_context(plane: &Plane, cluster: &Value) -> Value {
    kubeconfig(
        &[("plane", cluster)],
        &[("user", &plane.user)],
        &[("plane", "plane", "user")],
        Some("plane"),
    )
}

/// A Build of a fresh organization in `dir` (so a diff has something to create).
fn build_file(dir: &Path) -> PathBuf {
    let org = cluster::unique_name("proxy");
    let src = std::fs::read_to_string(Path::new(ROOT).join("fixtures/builds/greeter-docker.yaml"))
        .unwrap();
    let path = dir.join("build.yaml");
    std::fs::write(
        &path,
        src.replace("namespace: default", &format!("namespace: {org}")),
    )
    .unwrap();
    path
}

/// `buildplane ARGS` with no proxy variable and no `KUBECONFIG` but those in `env`.
fn bp(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_buildplane"));
    c.current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR");
    for var in PROXY_VARS {
        c.env_remove(var);
    }
    c.envs(env.iter().copied()).args(args).output().unwrap()
}

/// `buildplane diff BUILD --kubeconfig KC` with `env`.
fn diff(build: &Path, kc: &Path, env: &[(&str, &str)]) -> Output {
    let (build, kc) = (build.to_str().unwrap(), kc.to_str().unwrap());
    bp(&["diff", build, "--kubeconfig", kc], env)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The diff reached the server: exit 1 (a new organization has objects to create).
#[track_caller]
fn assert_diffed(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}\nstdout: {}",
        text(&o.stderr),
        text(&o.stdout)
    );
    assert!(
        text(&o.stdout).contains(" to create, "),
        "{}",
        text(&o.stdout)
    );
}

/// The command failed with one error line on stderr; returns it.
#[track_caller]
fn error_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stdout: {}", text(&o.stdout));
    let err = text(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err.trim_end().to_owned()
}

#[test]
fn https_proxy_carries_the_connection_and_no_proxy_names_what_it_skips() {
    let plane = plane();
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    let (target, cluster) = plane.named("kube.proxy.invalid");
    let kc = write(dir.path(), "kc.yaml", &one_context(&plane, &cluster));
    let proxy = TunnelProxy::start(HashMap::from([(target.clone(), plane.host_port.clone())]));
    let url = proxy.url();

    for var in ["HTTPS_PROXY", "https_proxy"] {
        let before = proxy.tunnels();
        assert_diffed(&diff(&build, &kc, &[(var, &url)]));
        assert!(proxy.tunnels() > before, "{var}: no tunnel");
    }
    assert!(
        proxy.targets().iter().all(|t| *t == target),
        "{:?}",
        proxy.targets()
    );

    // NO_PROXY entries that do not name the server leave it proxied.
    let others =
        "127.0.0.1, 10.0.0.0/8, proxy.invalid.example, xkube.proxy.invalid, kube.proxy.invalid:1";
    let before = proxy.tunnels();
    assert_diffed(&diff(
        &build,
        &kc,
        &[("HTTPS_PROXY", &url), ("NO_PROXY", others)],
    ));
    assert!(proxy.tunnels() > before);

    // Entries that name it send it direct, where its name resolves nowhere: the proxy is not
    // asked, and the error names the server. (HTTP_PROXY is for http:// servers only.)
    for no_proxy in [
        ("NO_PROXY", ".proxy.invalid"),
        ("NO_PROXY", "other.test, proxy.invalid"),
        ("no_proxy", "*.invalid"),
        ("NO_PROXY", "*"),
    ] {
        let before = proxy.tunnels();
        let o = diff(&build, &kc, &[("HTTPS_PROXY", &url), no_proxy]);
        let err = error_line(&o);
        assert!(
            err.starts_with(&format!(
                "error: cannot reach the API server at https://{target}: "
            )),
            "{no_proxy:?}: {err}"
        );
        assert_eq!(proxy.tunnels(), before, "{no_proxy:?}");
    }
    let o = diff(&build, &kc, &[("HTTP_PROXY", &url)]);
    assert!(error_line(&o).contains("cannot reach"));
}

#[test]
fn a_server_no_proxy_names_is_reached_directly() {
    let plane = plane();
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    // This machine's own name: resolvable, and not loopback in form (Go proxies it).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_owned();
    let ip = (host.as_str(), 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("host name {host:?} does not resolve"))
        .ip();
    let forwarder = Forwarder::start(ip, plane.host_port.clone());
    let server = format!("https://{host}:{}", forwarder.addr.port());
    let cluster = plane.cluster_at(&server, json!({"tls-server-name": CERT_NAME}));
    let kc = write(dir.path(), "kc.yaml", &one_context(&plane, &cluster));
    let proxy = TunnelProxy::start(HashMap::new());
    let url = proxy.url();

    assert_diffed(&diff(&build, &kc, &[("HTTPS_PROXY", &url)]));
    assert!(proxy.tunnels() >= 1, "the named server was not proxied");
    let (tunnels, direct) = (proxy.tunnels(), forwarder.connections());

    let upper = host.to_ascii_uppercase();
    for no_proxy in [
        host.as_str(),
        upper.as_str(),
        &format!("{host}:{}", forwarder.addr.port()),
    ] {
        assert_diffed(&diff(
            &build,
            &kc,
            &[("HTTPS_PROXY", &url), ("NO_PROXY", no_proxy)],
        ));
        assert_eq!(proxy.tunnels(), tunnels, "NO_PROXY={no_proxy}");
    }
    assert!(forwarder.connections() > direct);
}

#[test]
fn loopback_servers_are_reached_directly_whatever_the_variables_say() {
    let plane = plane();
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    let cluster = plane.cluster_at(&plane.server, json!({}));
    let kc = write(dir.path(), "kc.yaml", &one_context(&plane, &cluster));
    let proxy = TunnelProxy::start(HashMap::new());
    let url = proxy.url();
    // Before: every command failed with `requires the disabled feature "kube/http-proxy"`.
    assert_diffed(&diff(&build, &kc, &[("HTTPS_PROXY", &url)]));
    assert_diffed(&diff(
        &build,
        &kc,
        &[("HTTPS_PROXY", &url), ("NO_PROXY", "127.0.0.1")],
    ));
    // An empty entry is skipped (kube's own parser would refuse this NO_PROXY).
    assert_diffed(&diff(
        &build,
        &kc,
        &[("https_proxy", &url), ("no_proxy", "example.test,,")],
    ));
    assert_eq!(proxy.tunnels(), 0, "{:?}", proxy.targets());
}

#[test]
fn a_clusters_proxy_url_is_used_before_the_environment() {
    let plane = plane();
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    let proxy = TunnelProxy::start(HashMap::new());
    // A loopback server, and a NO_PROXY naming it: kubectl still takes the proxy-url.
    let cluster = plane.cluster_at(&plane.server, json!({"proxy-url": proxy.url()}));
    let kc = write(dir.path(), "kc.yaml", &one_context(&plane, &cluster));
    let env_proxy = cluster::request_counter();
    let env_url = format!("http://{}", env_proxy.addr);
    assert_diffed(&diff(
        &build,
        &kc,
        &[("HTTPS_PROXY", &env_url), ("NO_PROXY", "127.0.0.1,*")],
    ));
    assert!(proxy.tunnels() >= 1);
    assert!(
        proxy.targets().iter().all(|t| *t == plane.host_port),
        "{:?}",
        proxy.targets()
    );
    assert_eq!(env_proxy.count(), 0, "the environment's proxy was used");

    // A proxy-url the client cannot speak is one line naming the cluster, sending nothing.
    let socks = plane.cluster_at(
        &plane.server,
        json!({"proxy-url": "socks5://user:secret@127.0.0.1:1080"}),
    );
    let kc = write(dir.path(), "socks.yaml", &one_context(&plane, &socks));
    let err = error_line(&diff(&build, &kc, &[]));
    assert_eq!(
        err,
        format!(
            "error: kubeconfig {}: cluster \"plane\" proxy-url \"socks5://***@127.0.0.1:1080\": proxy scheme \"socks5\" is not supported (use http:// or https://)",
            kc.display()
        )
    );
}

#[test]
fn a_kubeconfig_list_is_merged_as_kubectl_merges_it() {
    let plane = plane();
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    let build = build.to_str().unwrap();
    let good = plane.cluster_at(&plane.server, json!({}));
    let dead = cluster::request_counter();
    let dead_cluster = plane.cluster_at(&format!("https://{}", dead.addr), json!({}));

    // A: the current context (defined only in B) and a context `both` on the good cluster.
    let a = write(
        dir.path(),
        "a.yaml",
        &kubeconfig(
            &[("good", &good)],
            &[],
            &[("both", "good", "user")],
            Some("only-in-b"),
        ),
    );
    // B: the user, `only-in-b`, and its own `both` (on a dead server) as current context.
    let b = write(
        dir.path(),
        "b.yaml",
        &kubeconfig(
            &[
                ("good", &dead_cluster),
                ("b-cluster", &good),
                ("dead", &dead_cluster),
            ],
            &[("user", &plane.user)],
            &[("only-in-b", "b-cluster", "user"), ("both", "dead", "user")],
            Some("both"),
        ),
    );
    let missing = dir.path().join("missing.yaml");
    let list = |files: &[&Path]| std::env::join_paths(files).unwrap().into_string().unwrap();
    let ab = list(&[&missing, &a, &b]);
    let ba = list(&[&b, &a]);

    // A's current-context, found in B; a missing file of the list is skipped.
    assert_diffed(&bp(&["diff", build], &[("KUBECONFIG", &ab)]));
    // `both` is A's (the good cluster), not B's; `--context` picks from the merged set.
    assert_diffed(&bp(
        &["diff", build, "--context", "both"],
        &[("KUBECONFIG", &ab)],
    ));
    assert_diffed(&bp(
        &["diff", build, "--context", "only-in-b"],
        &[("KUBECONFIG", &ba)],
    ));
    assert_eq!(dead.count(), 0, "the second file's `both` was used");

    // The other order: B's current-context and B's `both` win, and that server is dead.
    let err = error_line(&bp(&["diff", build], &[("KUBECONFIG", &ba)]));
    assert!(
        err.contains(&format!(
            "cannot reach the API server at https://{}",
            dead.addr
        )),
        "{err}"
    );
    assert!(dead.count() >= 1);

    // --kubeconfig is exactly one file, KUBECONFIG or not.
    let a_only = a.to_str().unwrap();
    let err = error_line(&bp(
        &["diff", build, "--kubeconfig", a_only],
        &[("KUBECONFIG", &ab)],
    ));
    assert_eq!(
        err,
        format!("error: kubeconfig {a_only}: no context \"only-in-b\"")
    );
}

#[test]
fn a_missing_exec_plugin_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let build = build_file(dir.path());
    let counter = cluster::request_counter();
    let cluster =
        json!({"server": format!("https://{}", counter.addr), "insecure-skip-tls-verify": true});
    for (command, shown, place) in [
        (
            "buildplane-no-such-plugin",
            "buildplane-no-such-plugin".to_owned(),
            " in PATH",
        ),
        // A relative path is the kubeconfig's directory's, as kubectl resolves it.
        (
            "./bin/none",
            dir.path().join("./bin/none").display().to_string(),
            "",
        ),
    ] {
        let user = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": command,
            "interactiveMode": "Never",
        }});
        let doc = kubeconfig(
            &[("c", &cluster)],
            &[("plugin-user", &user)],
            &[("x", "c", "plugin-user")],
            Some("x"),
        );
        let kc = write(dir.path(), "exec.yaml", &doc);
        let err = error_line(&diff(&build, &kc, &[]));
        assert_eq!(
            err,
            format!(
                "error: kubeconfig {}: user \"plugin-user\": exec plugin {shown:?} not found{place}",
                kc.display()
            )
        );
    }
    assert_eq!(counter.count(), 0, "no request without credentials");
}

#[test]
fn a_build_planes_secret_goes_through_its_own_proxy_url() {
    use base64::Engine as _;
    use buildplane::kube::policy::KubeconfigPolicy;
    use buildplane::kube::{ClientSettings, Kube};
    let plane = plane();
    let proxy = TunnelProxy::start(HashMap::new());
    // As a Secret holds it: the CA inline (a Secret's kubeconfig may name no file).
    let mut cluster = plane.cluster_at(&plane.server, json!({"proxy-url": proxy.url()}));
    if let Some(path) = cluster["certificate-authority"].as_str() {
        let ca = std::fs::read(path).unwrap();
        cluster["certificate-authority-data"] =
            Value::from(base64::engine::general_purpose::STANDARD.encode(ca));
        cluster
            .as_object_mut()
            .unwrap()
            .remove("certificate-authority");
    }
    let text = serde_json::to_string(&one_context(&plane, &cluster)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let namespaces = rt.block_on(async {
        let kube = Kube::from_kubeconfig_text(
            &text,
            "Secret tenant/plane",
            &ClientSettings::default(),
            KubeconfigPolicy::default(),
        )
        .await
        .expect("the Secret is accepted");
        kube.resource("v1", "Namespace").await
    });
    assert!(namespaces.expect("discovery").is_some());
    assert!(proxy.tunnels() >= 1, "the Secret's proxy-url was not used");
}
