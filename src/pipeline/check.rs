//! `buildplane check`: a preflight of a build plane, as far as its API server can tell. Each
//! check reads a few objects and ends in one finding; what a finding means (ok, warn, fail) is
//! decided by the pure functions below, from the objects read and the values the bundle was
//! rendered with. A check the credentials may not read ends in a warning that says so: it
//! cannot tell, which is not the same as a failure.

use crate::core::manifest::{Manifest, ObjectId};
use crate::core::plan::is_subset;
use crate::kube::{Kube, KubeError, Resource};
use serde_json::Value;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub message: String,
}

fn finding(check: &'static str, status: Status, message: impl Into<String>) -> Finding {
    Finding {
        check,
        status,
        message: message.into(),
    }
}

/// The CRDs a build needs when the bundle does not install them (Argo v3.6).
const REQUIRED_CRDS: [&str; 3] = [
    "workflows.argoproj.io",
    "clusterworkflowtemplates.argoproj.io",
    "workflowtaskresults.argoproj.io",
];

/// The label of an Argo workflow-controller Deployment (the upstream chart's and ours).
const CONTROLLER_SELECTOR: &str = "app.kubernetes.io/component=workflow-controller";

/// Everything `check` compares the cluster with: the bundle as rendered and its values.
pub struct Expected<'a> {
    pub bundle: &'a [Manifest],
    pub values: &'a Value,
}

impl Expected<'_> {
    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Manifest> {
        self.bundle.iter().filter(move |m| m.id.kind == kind)
    }

    fn value(&self, pointer: &str) -> Option<&Value> {
        self.values.pointer(pointer)
    }

    fn flag(&self, pointer: &str) -> bool {
        self.value(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn text(&self, pointer: &str) -> &str {
        self.value(pointer).and_then(Value::as_str).unwrap_or("")
    }
}

/// Runs every check, in a fixed order. Only an unreachable API server (or rejected
/// credentials) is an error; everything else is a finding.
pub async fn check(kube: &Kube, expected: &Expected<'_>) -> Result<Vec<Finding>, KubeError> {
    let mut out = Vec::new();
    out.push(crds(kube, expected).await?);
    let controller = controller(kube, expected).await?;
    out.push(controller.0);
    // Both namespace checks read one listing.
    let listed = namespace_list(kube).await?;
    out.push(namespaces(kube, expected, controller.1.as_ref(), &listed).await?);
    out.push(nodes(kube, expected).await?);
    out.push(build_cache(expected, &listed));
    out.push(registry(kube, expected).await?);
    out.push(templates(kube, expected).await?);
    Ok(out)
}

/// A read that may be forbidden: `Ok(None)` with the reason when the credentials may not.
async fn readable<T>(
    what: &str,
    read: impl std::future::Future<Output = Result<T, KubeError>>,
) -> Result<Result<T, String>, KubeError> {
    match read.await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.code() == Some(403) => Ok(Err(format!("cannot tell: may not read {what}"))),
        Err(e) if e.code().is_some() => Ok(Err(format!("cannot tell: {what}: {e}"))),
        Err(e) => Err(e),
    }
}

async fn resource(
    kube: &Kube,
    api_version: &str,
    kind: &str,
) -> Result<Option<Resource>, KubeError> {
    kube.resource(api_version, kind).await
}

fn id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectId {
    ObjectId {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    }
}

/// Whether a CRD's `Established` condition is True.
fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

async fn crds(kube: &Kube, expected: &Expected<'_>) -> Result<Finding, KubeError> {
    const CHECK: &str = "argo-crds";
    let mut names: Vec<String> = expected
        .of_kind("CustomResourceDefinition")
        .map(|m| m.id.name.clone())
        .collect();
    if names.is_empty() {
        names = REQUIRED_CRDS.iter().map(|s| s.to_string()).collect();
    }
    let Some(r) = resource(kube, "apiextensions.k8s.io/v1", "CustomResourceDefinition").await?
    else {
        return Ok(finding(
            CHECK,
            Status::Fail,
            "the API server serves no CRDs",
        ));
    };
    let (mut missing, mut pending) = (Vec::new(), Vec::new());
    for name in &names {
        let got = readable(
            "customresourcedefinitions",
            kube.get(
                &r,
                &id(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    None,
                    name,
                ),
            ),
        )
        .await?;
        match got {
            Err(why) => return Ok(finding(CHECK, Status::Warn, why)),
            Ok(None) => missing.push(name.as_str()),
            Ok(Some(crd)) if !established(&crd) => pending.push(name.as_str()),
            Ok(Some(_)) => {}
        }
    }
    Ok(match (missing.is_empty(), pending.is_empty()) {
        (true, true) => finding(
            CHECK,
            Status::Ok,
            format!("{} CRDs present and established", names.len()),
        ),
        (false, _) => finding(
            CHECK,
            Status::Fail,
            format!(
                "missing: {} (buildplane apply --install installs them)",
                missing.join(", ")
            ),
        ),
        (true, false) => finding(
            CHECK,
            Status::Fail,
            format!("not established: {}", pending.join(", ")),
        ),
    })
}

/// The workflow-controller's Deployment: the bundle's, or any labelled as one.
async fn controller(
    kube: &Kube,
    expected: &Expected<'_>,
) -> Result<(Finding, Option<Value>), KubeError> {
    const CHECK: &str = "argo-controller";
    let Some(r) = resource(kube, "apps/v1", "Deployment").await? else {
        return Ok((
            finding(CHECK, Status::Fail, "the API server serves no Deployments"),
            None,
        ));
    };
    let live = match expected.of_kind("Deployment").next() {
        Some(m) => readable("deployments", kube.get(&r, &m.id)).await?,
        None => readable("deployments", kube.list(&r, None))
            .await?
            .map(|all| {
                all.into_iter().find(|d| {
                    d.pointer("/metadata/labels/app.kubernetes.io~1component")
                        .and_then(Value::as_str)
                        == CONTROLLER_SELECTOR.split_once('=').map(|(_, v)| v)
                })
            }),
    };
    let live = match live {
        Err(why) => return Ok((finding(CHECK, Status::Warn, why), None)),
        Ok(None) => {
            let want = expected
                .of_kind("Deployment")
                .next()
                .map(|m| {
                    format!(
                        "Deployment {}/{}",
                        m.id.namespace.as_deref().unwrap_or(""),
                        m.id.name
                    )
                })
                .unwrap_or_else(|| format!("a Deployment labelled {CONTROLLER_SELECTOR}"));
            return Ok((
                finding(CHECK, Status::Fail, format!("{want} not found")),
                None,
            ));
        }
        Ok(Some(d)) => d,
    };
    Ok((controller_finding(&live), Some(live)))
}

/// A controller Deployment is running when at least one replica is available.
pub fn controller_finding(d: &Value) -> Finding {
    const CHECK: &str = "argo-controller";
    let name = format!(
        "{}/{}",
        d.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        d.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    );
    let want = d
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let available = d
        .pointer("/status/availableReplicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if want == 0 {
        return finding(
            CHECK,
            Status::Fail,
            format!("{name} is scaled to 0 replicas"),
        );
    }
    if available == 0 {
        return finding(
            CHECK,
            Status::Fail,
            format!("{name}: 0 of {want} replicas available (no build would start)"),
        );
    }
    finding(
        CHECK,
        Status::Ok,
        format!("{name}: {available} of {want} replicas available"),
    )
}

/// The namespaces a controller Deployment manages: `None` for all (no `--namespaced`).
pub fn managed_namespaces(d: &Value) -> Option<String> {
    let args: Vec<&str> = d
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !args
        .iter()
        .any(|a| *a == "--namespaced" || a.starts_with("--namespaced=true"))
    {
        return None;
    }
    let managed = args
        .iter()
        .position(|a| *a == "--managed-namespace")
        .and_then(|i| args.get(i + 1).map(|s| s.to_string()))
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--managed-namespace=").map(str::to_owned))
        });
    Some(managed.unwrap_or_else(|| {
        d.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }))
}

/// Every Namespace, or why they cannot be read (the status and message a check reports).
type NamespaceList = Result<Vec<Value>, (Status, String)>;

async fn namespace_list(kube: &Kube) -> Result<NamespaceList, KubeError> {
    let Some(ns) = resource(kube, "v1", "Namespace").await? else {
        return Ok(Err((
            Status::Fail,
            "the API server serves no Namespaces".to_owned(),
        )));
    };
    Ok(readable("namespaces", kube.list(&ns, None))
        .await?
        .map_err(|why| (Status::Warn, why)))
}

async fn namespaces(
    kube: &Kube,
    expected: &Expected<'_>,
    controller: Option<&Value>,
    listed: &NamespaceList,
) -> Result<Finding, KubeError> {
    const CHECK: &str = "build-namespaces";
    let listed = match listed {
        Err((status, why)) => return Ok(finding(CHECK, *status, why.clone())),
        Ok(l) => l,
    };
    let live: Vec<String> = listed
        .iter()
        .filter_map(|n| n.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut build: Vec<String> = expected
        .values
        .pointer("/buildNamespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    build.extend(
        live.iter()
            .filter(|n| n.starts_with("openchoreo-ci-"))
            .cloned(),
    );
    build.sort();
    build.dedup();
    let missing: Vec<&str> = build
        .iter()
        .filter(|n| !live.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Ok(finding(
            CHECK,
            Status::Fail,
            format!(
                "missing: {} (buildplane apply --install creates them)",
                missing.join(", ")
            ),
        ));
    }
    let Some(sa) = resource(kube, "v1", "ServiceAccount").await? else {
        return Ok(finding(
            CHECK,
            Status::Fail,
            "the API server serves no ServiceAccounts",
        ));
    };
    let mut without_sa = Vec::new();
    for n in &build {
        match readable(
            "serviceaccounts",
            kube.get(&sa, &id("v1", "ServiceAccount", Some(n), "workflow-sa")),
        )
        .await?
        {
            Err(why) => return Ok(finding(CHECK, Status::Warn, why)),
            Ok(None) => without_sa.push(n.as_str()),
            Ok(Some(_)) => {}
        }
    }
    if !without_sa.is_empty() {
        return Ok(finding(
            CHECK,
            Status::Fail,
            format!("no ServiceAccount workflow-sa in {}", without_sa.join(", ")),
        ));
    }
    if let Some(managed) = controller.and_then(managed_namespaces) {
        let outside: Vec<&str> = build
            .iter()
            .filter(|n| **n != managed)
            .map(String::as_str)
            .collect();
        if !outside.is_empty() {
            return Ok(finding(
                CHECK,
                Status::Fail,
                format!(
                    "the workflow-controller watches only {managed} (--namespaced): builds in {} never start",
                    outside.join(", ")
                ),
            ));
        }
    }
    Ok(finding(
        CHECK,
        Status::Ok,
        format!(
            "{} build namespaces ready ({})",
            build.len(),
            build.join(", ")
        ),
    ))
}

/// Whether a Node is Ready and schedulable.
fn ready(node: &Value) -> bool {
    let unschedulable = node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    !unschedulable
        && node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

/// The nodes the build pods may run on: the Ready ones carrying the affinity label.
pub fn nodes_finding(nodes: &[Value], key: &str, values: &[String]) -> Finding {
    const CHECK: &str = "nodes";
    let carries = |n: &&Value| {
        n.pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .is_some_and(|v| values.iter().any(|w| w == v))
    };
    let labelled: Vec<&Value> = nodes.iter().filter(carries).collect();
    let usable = labelled.iter().filter(|n| ready(n)).count();
    let rule = format!("{key} in ({})", values.join(", "));
    if usable > 0 {
        return finding(
            CHECK,
            Status::Ok,
            format!("{usable} Ready nodes match {rule}"),
        );
    }
    let hint = format!(
        "every build would stay Pending: label a node (kubectl label node NODE {key}={}) or set global.defaultResources.nodeAffinity.enabled=false",
        values.first().map(String::as_str).unwrap_or("")
    );
    if labelled.is_empty() {
        finding(
            CHECK,
            Status::Fail,
            format!("no node matches {rule}; {hint}"),
        )
    } else {
        finding(
            CHECK,
            Status::Fail,
            format!(
                "{} nodes match {rule} but none is Ready; {hint}",
                labelled.len()
            ),
        )
    }
}

async fn nodes(kube: &Kube, expected: &Expected<'_>) -> Result<Finding, KubeError> {
    const CHECK: &str = "nodes";
    let Some(r) = resource(kube, "v1", "Node").await? else {
        return Ok(finding(
            CHECK,
            Status::Fail,
            "the API server serves no Nodes",
        ));
    };
    let all = match readable("nodes", kube.list(&r, None)).await? {
        Err(why) => return Ok(finding(CHECK, Status::Warn, why)),
        Ok(all) => all,
    };
    if !expected.flag("/global/defaultResources/nodeAffinity/enabled") {
        let usable = all.iter().filter(|n| ready(n)).count();
        return Ok(finding(
            CHECK,
            if usable > 0 { Status::Ok } else { Status::Fail },
            format!("node affinity disabled; {usable} Ready nodes"),
        ));
    }
    let key = expected.text("/global/defaultResources/nodeAffinity/key");
    let values: Vec<String> = expected
        .value("/global/defaultResources/nodeAffinity/values")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(nodes_finding(&all, key, &values))
}

/// Pod Security levels that refuse hostPath volumes.
fn forbids_host_path(level: &str) -> bool {
    matches!(level, "baseline" | "restricted")
}

fn build_cache(expected: &Expected<'_>, listed: &NamespaceList) -> Finding {
    const CHECK: &str = "build-cache";
    if !expected.flag("/global/defaultResources/buildCache/enabled") {
        return finding(
            CHECK,
            Status::Ok,
            "disabled (buildpack images are pulled by every build)",
        );
    }
    let path = expected.text("/global/defaultResources/buildCache/hostPath");
    let listed = match listed {
        Err((status, why)) => return finding(CHECK, *status, why.clone()),
        Ok(l) => l,
    };
    let refusing: Vec<String> = listed
        .iter()
        .filter(|n| {
            n.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("openchoreo-ci-"))
        })
        .filter_map(|n| {
            let level = n
                .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce")
                .and_then(Value::as_str)?;
            forbids_host_path(level).then(|| {
                format!(
                    "{} ({level})",
                    n.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )
            })
        })
        .collect();
    if !refusing.is_empty() {
        return finding(
            CHECK,
            Status::Fail,
            format!(
                "hostPath {path} is refused by Pod Security in {}: set global.defaultResources.buildCache.enabled=false or allow privileged pods there",
                refusing.join(", ")
            ),
        );
    }
    finding(
        CHECK,
        Status::Ok,
        format!(
            "hostPath {path} on each node (not visible through the API: check the nodes' disks)"
        ),
    )
}

/// `host[:port]` split; a host of the form `service.namespace[.svc…]` names a Service.
pub fn service_of(endpoint: &str) -> Option<(String, String, Option<u16>)> {
    let (host, port) = match endpoint.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (endpoint, None),
    };
    let mut parts = host.split('.');
    let (name, ns) = (parts.next()?, parts.next()?);
    let rest: Vec<&str> = parts.collect();
    let in_cluster = rest.is_empty()
        || rest == ["svc"]
        || rest.first() == Some(&"svc") && rest.get(1) == Some(&"cluster");
    in_cluster.then(|| (name.to_owned(), ns.to_owned(), port))
}

async fn registry(kube: &Kube, expected: &Expected<'_>) -> Result<Finding, KubeError> {
    const CHECK: &str = "registry";
    let kind = expected.text("/global/defaultResources/registry/type");
    if kind == "external" {
        let endpoint = expected.text("/global/defaultResources/registry/external/endpoint");
        return Ok(if endpoint.is_empty() {
            finding(
                CHECK,
                Status::Fail,
                "registry.type is external but registry.external.endpoint is empty",
            )
        } else {
            finding(
                CHECK,
                Status::Ok,
                format!(
                    "external registry {endpoint} (not reachable through the API: not checked)"
                ),
            )
        });
    }
    let push = expected.text("/global/defaultResources/registry/local/pushEndpoint");
    let Some((name, ns, port)) = service_of(push) else {
        return Ok(finding(
            CHECK,
            Status::Warn,
            format!("push endpoint {push} is not a Service name: not checked"),
        ));
    };
    let Some(r) = resource(kube, "v1", "Service").await? else {
        return Ok(finding(
            CHECK,
            Status::Fail,
            "the API server serves no Services",
        ));
    };
    let svc = match readable(
        "services",
        kube.get(&r, &id("v1", "Service", Some(&ns), &name)),
    )
    .await?
    {
        Err(why) => return Ok(finding(CHECK, Status::Warn, why)),
        Ok(s) => s,
    };
    Ok(match svc {
        None => finding(
            CHECK,
            Status::Warn,
            format!(
                "push endpoint {push}: no Service {ns}/{name} on this cluster (builds cannot push unless it resolves elsewhere)"
            ),
        ),
        Some(s) => {
            let ports: Vec<u64> = s
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|p| p["port"].as_u64()).collect())
                .unwrap_or_default();
            match port {
                Some(p) if !ports.contains(&u64::from(p)) => finding(
                    CHECK,
                    Status::Fail,
                    format!(
                        "push endpoint {push}: Service {ns}/{name} has no port {p} (ports: {ports:?})"
                    ),
                ),
                _ => finding(
                    CHECK,
                    Status::Ok,
                    format!("push endpoint {push}: Service {ns}/{name} exists"),
                ),
            }
        }
    })
}

async fn templates(kube: &Kube, expected: &Expected<'_>) -> Result<Finding, KubeError> {
    const CHECK: &str = "templates";
    let rendered: Vec<&Manifest> = expected.of_kind("ClusterWorkflowTemplate").collect();
    if rendered.is_empty() {
        return Ok(finding(
            CHECK,
            Status::Ok,
            "not managed (global.defaultResources.enabled=false)",
        ));
    }
    let Some(r) = resource(kube, "argoproj.io/v1alpha1", "ClusterWorkflowTemplate").await? else {
        return Ok(finding(
            CHECK,
            Status::Fail,
            "ClusterWorkflowTemplates are not served (no Argo CRDs)",
        ));
    };
    let (mut missing, mut differ) = (Vec::new(), Vec::new());
    for m in &rendered {
        match readable("clusterworkflowtemplates", kube.get(&r, &m.id)).await? {
            Err(why) => return Ok(finding(CHECK, Status::Warn, why)),
            Ok(None) => missing.push(m.id.name.as_str()),
            Ok(Some(live)) if !is_subset(&m.object["spec"], &live["spec"]) => {
                differ.push(m.id.name.as_str())
            }
            Ok(Some(_)) => {}
        }
    }
    Ok(if !missing.is_empty() {
        finding(
            CHECK,
            Status::Fail,
            format!(
                "missing: {} (buildplane apply --install applies them)",
                missing.join(", ")
            ),
        )
    } else if !differ.is_empty() {
        finding(
            CHECK,
            Status::Fail,
            format!(
                "differ from the render: {} (buildplane diff --install shows how)",
                differ.join(", ")
            ),
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            format!(
                "{} templates applied and equal to the render",
                rendered.len()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: Value, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": labels},
               "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn a_build_plane_without_a_runner_node_fails_with_the_fix() {
        let values = vec!["workflow-runner".to_owned()];
        let key = "openchoreo.dev/noderole";
        let none = nodes_finding(&[node("a", json!({}), true)], key, &values);
        assert_eq!(none.status, Status::Fail);
        assert!(
            none.message
                .contains("kubectl label node NODE openchoreo.dev/noderole=workflow-runner"),
            "{}",
            none.message
        );
        let down = nodes_finding(
            &[node("a", json!({key: "workflow-runner"}), false)],
            key,
            &values,
        );
        assert_eq!(down.status, Status::Fail);
        assert!(down.message.contains("none is Ready"));
        let ok = nodes_finding(
            &[node("a", json!({key: "workflow-runner"}), true)],
            key,
            &values,
        );
        assert_eq!(ok.status, Status::Ok);
    }

    #[test]
    fn a_namespaced_controller_manages_one_namespace() {
        let d = |args: Value| json!({"metadata": {"namespace": "argo"}, "spec": {"template": {"spec": {"containers": [{"args": args}]}}}});
        assert_eq!(managed_namespaces(&d(json!(["--configmap", "x"]))), None);
        assert_eq!(
            managed_namespaces(&d(json!(["--namespaced"]))).as_deref(),
            Some("argo")
        );
        assert_eq!(
            managed_namespaces(&d(json!(["--namespaced", "--managed-namespace", "ci"]))).as_deref(),
            Some("ci")
        );
    }

    #[test]
    fn registry_endpoints_name_services() {
        assert_eq!(
            service_of("registry.openchoreo-data-plane:5000"),
            Some((
                "registry".into(),
                "openchoreo-data-plane".into(),
                Some(5000)
            ))
        );
        assert_eq!(
            service_of("r.ns.svc.cluster.local:80").map(|s| s.1),
            Some("ns".into())
        );
        assert_eq!(service_of("registry.example.com:5000"), None);
        assert_eq!(service_of("localhost:30003"), None);
    }

    #[test]
    fn a_controller_without_available_replicas_fails() {
        let d = |available: u64| {
            json!({"metadata": {"namespace": "b", "name": "argo-workflow-controller"},
                                       "spec": {"replicas": 1}, "status": {"availableReplicas": available}})
        };
        assert_eq!(controller_finding(&d(0)).status, Status::Fail);
        assert_eq!(controller_finding(&d(1)).status, Status::Ok);
    }
}
