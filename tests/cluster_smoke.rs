//! The test clusters of tests/cluster work: real API servers, RBAC, independent private clusters,
//! stopping and restarting the API server, raw requests, and the connection counter.

mod cluster;

use cluster::{
    LIMITED, kubeconfig, kubeconfig_pointing_at, kubectl_like_get, raw_request, request_counter,
    start_private, unique_name,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const JSON: &str = "application/json";

fn create_namespace(kubeconfig: &Path, name: &str) -> Value {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, ns) = raw_request(
        kubeconfig,
        None,
        "POST",
        "/api/v1/namespaces",
        Some(&body),
        JSON,
    );
    assert_eq!(status, 201, "{ns}");
    ns
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shared_cluster_answers_the_admin() {
    let (status, version) = kubectl_like_get(&kubeconfig(), None, "/version");
    assert_eq!(status, 200, "{version}");
    assert!(version["gitVersion"].is_string(), "{version}");

    let (status, list) = kubectl_like_get(&kubeconfig(), None, "/api/v1/namespaces");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "NamespaceList");
    let items = list["items"].as_array().unwrap().iter();
    let names: Vec<&str> = items
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"default"), "{names:?}");
}

#[test]
fn limited_user_is_forbidden_to_list_namespaces() {
    let (status, body) = kubectl_like_get(&kubeconfig(), Some(LIMITED), "/api/v1/namespaces");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden", "{body}");
}

#[test]
fn raw_requests_create_replace_patch_and_delete() {
    let kc = kubeconfig();
    let ns = unique_name("smoke-raw");
    create_namespace(&kc, &ns);
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let cm = format!("{cms}/settings");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings"}, "data": {"a": "1"}});
    let (status, created) = raw_request(&kc, None, "POST", &cms, Some(&body), JSON);
    assert_eq!(status, 201, "{created}");

    let mut replaced = created.clone();
    replaced["data"] = json!({"a": "2"});
    let (status, out) = raw_request(&kc, None, "PUT", &cm, Some(&replaced), JSON);
    assert_eq!(status, 200, "{out}");

    let patch = json!({"data": {"b": "3"}});
    let merge = "application/merge-patch+json";
    let (status, out) = raw_request(&kc, None, "PATCH", &cm, Some(&patch), merge);
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"], json!({"a": "2", "b": "3"}));

    let (status, out) = raw_request(&kc, None, "DELETE", &cm, None, JSON);
    assert_eq!(status, 200, "{out}");
    let (status, out) = kubectl_like_get(&kc, None, &cm);
    assert_eq!(status, 404, "{out}");
}

#[test]
fn a_private_cluster_is_independent_of_the_shared_one() {
    let private = start_private();
    assert_ne!(private.kubeconfig, kubeconfig());
    let only_private = unique_name("smoke-private");
    let only_shared = unique_name("smoke-shared");
    create_namespace(&private.kubeconfig, &only_private);
    create_namespace(&kubeconfig(), &only_shared);

    let get =
        |kc: &Path, name: &str| kubectl_like_get(kc, None, &format!("/api/v1/namespaces/{name}")).0;
    assert_eq!(get(&private.kubeconfig, &only_private), 200);
    assert_eq!(get(&kubeconfig(), &only_private), 404);
    assert_eq!(get(&kubeconfig(), &only_shared), 200);
    assert_eq!(get(&private.kubeconfig, &only_shared), 404);
}

#[test]
fn a_restarted_api_server_serves_the_same_data() {
    let private = start_private();
    let name = unique_name("smoke-restart");
    let uid = create_namespace(&private.kubeconfig, &name)["metadata"]["uid"].clone();
    let path = format!("/api/v1/namespaces/{name}");

    private.stop_apiserver();
    let (status, error) = kubectl_like_get(&private.kubeconfig, None, &path);
    assert_eq!(status, 0, "a stopped API server answered: {error}");

    private.start_apiserver();
    let (status, ns) = kubectl_like_get(&private.kubeconfig, None, &path);
    assert_eq!(status, 200, "{ns}");
    assert_eq!(ns["metadata"]["uid"], uid);
}

#[test]
fn the_request_counter_counts_connections() {
    let counter = request_counter();
    assert_eq!(counter.count(), 0);
    drop(TcpStream::connect(counter.addr).unwrap());
    wait_until("one connection counted", || counter.count() == 1);

    // A client pointed at it by kubeconfig_pointing_at connects, and gets no answer.
    let kc = kubeconfig_pointing_at(counter.addr);
    let (status, _) = kubectl_like_get(kc.path(), None, "/api/v1/namespaces");
    assert_eq!(status, 0);
    assert_eq!(counter.count(), 2);
}

#[test]
fn unique_names_are_distinct_dns_labels() {
    let prefixes = [
        "org",
        "",
        "9lives",
        "Weird_Prefix.With.Dots",
        &"x-".repeat(40),
    ];
    let mut seen = HashSet::new();
    for prefix in prefixes.iter().cycle().take(50) {
        let name = unique_name(prefix);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name}");
        assert!(!name.ends_with('-'), "{name}");
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        assert!(name.chars().all(allowed), "{name}");
        assert!(seen.insert(name.clone()), "repeated: {name}");
    }
    assert!(unique_name("org").starts_with("org-"));
    // The API server agrees (namespace names are RFC 1123 labels).
    create_namespace(&kubeconfig(), &unique_name(&"Weird_Prefix.".repeat(10)));
}
