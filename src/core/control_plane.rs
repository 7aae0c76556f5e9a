//! What `--control-plane` installs: the Build, BuildPlane and Workload CRDs and the controller
//! (`buildplane controller`) with least-privilege RBAC. Pure: a function of its settings.

use super::crd;
use super::manifest::Manifest;
use serde_json::{Value, json};

/// The inventory the control-plane objects are recorded in.
pub const CONTROL_PLANE_INVENTORY: &str = "control-plane";
pub const NAMESPACE: &str = "buildplane-system";
pub const NAME: &str = "buildplane-controller";

/// The label that puts a Build or BuildPlane in a shard (Flux's `sharding.fluxcd.io/key`).
pub const SHARD_LABEL: &str = "sharding.buildplane.openchoreo.dev/key";

/// How the controller is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneSettings {
    /// The image holding the `buildplane` binary.
    pub image: String,
    /// `controller.shards`: a controller Deployment per shard besides the main one.
    pub shards: Vec<String>,
    /// `controller.podDisruptionBudget`: a PodDisruptionBudget per controller Deployment.
    pub disruption_budget: bool,
}

impl ControlPlaneSettings {
    /// The defaults of the chart's `controller` values: no shards, a PodDisruptionBudget.
    pub fn new(image: String) -> ControlPlaneSettings {
        ControlPlaneSettings {
            image,
            shards: Vec::new(),
            disruption_budget: true,
        }
    }

    /// These settings with the merged values' `controller` map (the schema checked its types
    /// and the shard names).
    pub fn with_values(mut self, values: &Value) -> ControlPlaneSettings {
        let controller = &values["controller"];
        if let Some(shards) = controller["shards"].as_array() {
            self.shards = shards
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        if let Some(pdb) = controller["podDisruptionBudget"].as_bool() {
            self.disruption_budget = pdb;
        }
        self
    }
}

/// The `controller` values of each input, when no control plane is rendered: nothing reads
/// them, which is said rather than ignored.
pub fn unread_values(inputs: &[(String, Value)]) -> Vec<super::values::NotApplicable> {
    inputs
        .iter()
        .filter(|(_, overlay)| overlay.get("controller").is_some())
        .map(|(source, _)| super::values::NotApplicable {
            key: "controller".to_owned(),
            source: source.clone(),
            reason: "the controller's settings are read only with --control-plane".to_owned(),
        })
        .collect()
}

/// One controller Deployment: its name (also its Lease's and its pods' `app.kubernetes.io/name`)
/// and the `--watch-label-selector` it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerDeployment {
    pub name: String,
    pub selector: Option<String>,
}

/// The controller Deployments: without shards one, watching everything; with shards, one per
/// shard watching its label value, and the main one watching what carries no shard label.
pub fn controller_deployments(shards: &[String]) -> Vec<ControllerDeployment> {
    if shards.is_empty() {
        return vec![ControllerDeployment {
            name: NAME.to_owned(),
            selector: None,
        }];
    }
    let main = ControllerDeployment {
        name: NAME.to_owned(),
        selector: Some(format!("!{SHARD_LABEL}")),
    };
    let each = shards.iter().map(|shard| ControllerDeployment {
        name: format!("{NAME}-{shard}"),
        selector: Some(format!("{SHARD_LABEL}={shard}")),
    });
    std::iter::once(main).chain(each).collect()
}

/// The Lease of a controller without `--leader-election-id`: [`LEASE`] when it watches
/// everything, otherwise a name derived from its selector — replicas of one shard share a
/// Lease, two shards never do.
pub fn lease_name(selector: Option<&str>) -> String {
    match selector {
        None => LEASE.to_owned(),
        Some(s) => format!("{LEASE}-{}", super::naming::hash8(&[s])),
    }
}

fn labels_of(name: &str) -> Value {
    json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "openchoreo",
        "app.kubernetes.io/managed-by": "buildplane"})
}

fn labels() -> Value {
    labels_of(NAME)
}

/// The permissions the controller needs, and no more: it reads Builds and BuildPlanes, patches
/// a Build only to add or remove its finalizer (a JSON patch of `metadata.finalizers`), writes
/// Build status, reads (never lists) the kubeconfig Secrets BuildPlanes name, watches Workloads
/// (so that applying one needs no read first), applies them (a server-side apply that creates
/// an object needs `create` besides `patch`) and deletes the one a deleted Build created, and
/// publishes Events on Builds (each status write that moves a condition, each cleanup step;
/// events.k8s.io: `create`).
///
/// The Secret read stays cluster-wide: BuildPlanes live in every tenant's namespace, and a
/// Role per namespace would need a binding per tenant the install cannot know. What keeps a
/// tenant to its own Secrets is the controller: a BuildPlane may name only a Secret in its own
/// namespace unless the controller runs with `--allow-cross-namespace-refs`.
pub fn cluster_role_rules() -> Value {
    json!([
        {"apiGroups": ["openchoreo.dev"], "resources": ["builds"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["openchoreo.dev"], "resources": ["buildplanes"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["openchoreo.dev"], "resources": ["builds/status"], "verbs": ["get", "patch"]},
        {"apiGroups": ["openchoreo.dev"], "resources": ["workloads"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ])
}

/// The Lease the replicas elect a leader on (`--leader-election-id`'s default).
pub const LEASE: &str = "buildplane-controller";

/// The namespaced permissions: the controllers' Leases (named `leases`), and only them.
/// `create` cannot be limited to a name (RBAC never names an object that does not exist yet);
/// `get` and `update` are.
pub fn lease_role_rules(leases: &[&str]) -> Value {
    json!([
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": leases,
            "verbs": ["get", "update"]},
    ])
}

/// Replicas of the controller: one leads, the other stands by with warm caches.
pub const REPLICAS: u32 = 2;

/// The objects, unsorted (the pipeline sorts).
pub fn bundle(settings: &ControlPlaneSettings) -> Vec<Manifest> {
    let l = labels();
    let controllers = controller_deployments(&settings.shards);
    let leases: Vec<&str> = controllers.iter().map(|c| c.name.as_str()).collect();
    let mut objects: Vec<Value> = crd::control_plane_crds()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    objects.extend([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": l}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": l}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": NAME, "labels": l}, "rules": cluster_role_rules()}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME, "labels": l},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("{NAME}-leader-election"), "namespace": NAMESPACE, "labels": l},
            "rules": lease_role_rules(&leases)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{NAME}-leader-election"), "namespace": NAMESPACE, "labels": l},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                "name": format!("{NAME}-leader-election")},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}),
    ]);
    for c in &controllers {
        objects.push(deployment(settings, c));
        if settings.disruption_budget {
            objects.push(disruption_budget(&c.name));
        }
    }
    objects
        .into_iter()
        .map(|o| Manifest::new(o).expect("control-plane objects carry kind and name"))
        .collect()
}

/// Keeps one replica of controller `name` through drains and other voluntary disruptions.
fn disruption_budget(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels_of(name)},
        "spec": {"minAvailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}})
}

/// The Deployment of controller `c`: [`REPLICAS`] replicas electing a leader on the Lease
/// named as the Deployment.
fn deployment(settings: &ControlPlaneSettings, c: &ControllerDeployment) -> Value {
    let name = c.name.as_str();
    let l = labels_of(name);
    // Neither opt-in (`--insecure-kubeconfig-exec`, `--allow-cross-namespace-refs`): the
    // operator adds them knowingly.
    let mut args = vec![
        "controller",
        "--metrics-addr",
        "0.0.0.0:9090",
        "--enable-leader-election",
        "--leader-election-id",
        name,
    ];
    if let Some(selector) = &c.selector {
        args.extend(["--watch-label-selector", selector]);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": name, "namespace": NAMESPACE, "labels": l},
    "spec": {
        "replicas": REPLICAS,
        // One replica at a time: the other keeps leading or standing by meanwhile.
        "strategy": {"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {
            "metadata": {"labels": l},
            "spec": {
                "serviceAccountName": NAME,
                // Replicas on different nodes where there are several: a drain or a node
                // failure takes one.
                "affinity": {"podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                        },
                    }],
                }},
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "controller",
                    "image": settings.image,
                    "args": args,
                    // The Lease holder's name and the Lease's namespace.
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    ],
                    "ports": [{"name": "metrics", "containerPort": 9090}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                    // Ready once its caches listed, leading or standing by.
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                  "limits": {"memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                }],
            },
        },
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_holds_the_crds_the_controller_and_nothing_broader_than_needed() {
        let b = bundle(&ControlPlaneSettings::new(
            "registry.test/buildplane:1".into(),
        ));
        let ids: Vec<String> = b.iter().map(|m| m.id.to_string()).collect();
        for id in [
            "CustomResourceDefinition/builds.openchoreo.dev",
            "CustomResourceDefinition/buildplanes.openchoreo.dev",
            "CustomResourceDefinition/workloads.openchoreo.dev",
            "Deployment/buildplane-system/buildplane-controller",
            "PodDisruptionBudget/buildplane-system/buildplane-controller",
            "ClusterRole/buildplane-controller",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
        }
        let rules = cluster_role_rules().to_string();
        assert!(!rules.contains("\"*\""), "no wildcard: {rules}");
        assert!(!rules.contains("update"), "patches only: {rules}");
        let all = cluster_role_rules();
        let with = |verb: &str| -> Vec<&Value> {
            all.as_array()
                .unwrap()
                .iter()
                .filter(|r| r["verbs"].as_array().unwrap().contains(&json!(verb)))
                .map(|r| &r["resources"])
                .collect()
        };
        assert_eq!(
            with("create"),
            [&json!(["workloads"]), &json!(["events"])],
            "only Workloads and Events are created"
        );
        assert_eq!(
            with("delete"),
            [&json!(["workloads"])],
            "only Workloads are deleted"
        );
        assert_eq!(
            with("patch"),
            [
                &json!(["builds"]),
                &json!(["builds/status"]),
                &json!(["workloads"]),
            ],
            "Events are created, never patched (no series)"
        );
        assert_eq!(
            with("list"),
            [
                &json!(["builds"]),
                &json!(["buildplanes"]),
                &json!(["workloads"])
            ],
            "Secrets are read one by one, never listed"
        );
        let role = b.iter().find(|m| m.id.kind == "Role").unwrap();
        assert_eq!(
            role.object["rules"],
            json!([
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                    "resourceNames": ["buildplane-controller"], "verbs": ["get", "update"]},
            ]),
            "exactly the Lease verbs, the Lease named where RBAC allows"
        );
        let deploy = b.iter().find(|m| m.id.kind == "Deployment").unwrap();
        assert_eq!(deploy.object["spec"]["replicas"], 2);
        let c = &deploy.object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["args"],
            json!([
                "controller",
                "--metrics-addr",
                "0.0.0.0:9090",
                "--enable-leader-election",
                "--leader-election-id",
                "buildplane-controller"
            ])
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        let pdb = b
            .iter()
            .find(|m| m.id.kind == "PodDisruptionBudget")
            .unwrap();
        assert_eq!(
            pdb.object["spec"],
            json!({"minAvailable": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "buildplane-controller"}}})
        );
        assert_eq!(
            deploy.object["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.test/buildplane:1"
        );
    }

    #[test]
    fn each_shard_has_its_deployment_lease_and_budget_and_the_main_one_takes_the_rest() {
        let values = json!({"controller": {"shards": ["a", "b"], "podDisruptionBudget": true}});
        let settings = ControlPlaneSettings::new("i".into()).with_values(&values);
        let b = bundle(&settings);
        let deployments: Vec<(&str, Vec<&str>)> = b
            .iter()
            .filter(|m| m.id.kind == "Deployment")
            .map(|m| {
                let args = m.object["spec"]["template"]["spec"]["containers"][0]["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .skip(4)
                    .map(|a| a.as_str().unwrap())
                    .collect();
                (m.id.name.as_str(), args)
            })
            .collect();
        assert_eq!(
            deployments,
            [
                (
                    "buildplane-controller",
                    vec![
                        "--leader-election-id",
                        "buildplane-controller",
                        "--watch-label-selector",
                        "!sharding.buildplane.openchoreo.dev/key"
                    ]
                ),
                (
                    "buildplane-controller-a",
                    vec![
                        "--leader-election-id",
                        "buildplane-controller-a",
                        "--watch-label-selector",
                        "sharding.buildplane.openchoreo.dev/key=a"
                    ]
                ),
                (
                    "buildplane-controller-b",
                    vec![
                        "--leader-election-id",
                        "buildplane-controller-b",
                        "--watch-label-selector",
                        "sharding.buildplane.openchoreo.dev/key=b"
                    ]
                ),
            ]
        );
        // Each Deployment selects its own pods only (the main one's selector is unchanged).
        for m in b.iter().filter(|m| m.id.kind == "Deployment") {
            let own = json!({"app.kubernetes.io/name": m.id.name});
            assert_eq!(m.object["spec"]["selector"]["matchLabels"], own);
            assert_eq!(
                m.object["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
                m.id.name
            );
        }
        let budgets = b
            .iter()
            .filter(|m| m.id.kind == "PodDisruptionBudget")
            .count();
        assert_eq!(budgets, 3);
        let role = b.iter().find(|m| m.id.kind == "Role").unwrap();
        assert_eq!(
            role.object["rules"][1]["resourceNames"],
            json!([
                "buildplane-controller",
                "buildplane-controller-a",
                "buildplane-controller-b"
            ])
        );
        let without = ControlPlaneSettings::new("i".into())
            .with_values(&json!({"controller": {"podDisruptionBudget": false}}));
        assert!(
            bundle(&without)
                .iter()
                .all(|m| m.id.kind != "PodDisruptionBudget")
        );
    }

    #[test]
    fn a_selector_without_a_lease_name_gets_its_own_lease() {
        assert_eq!(lease_name(None), "buildplane-controller");
        let a = lease_name(Some("sharding.buildplane.openchoreo.dev/key=a"));
        let b = lease_name(Some("sharding.buildplane.openchoreo.dev/key=b"));
        assert!(
            a.starts_with("buildplane-controller-") && a.len() == 30,
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(
            a,
            lease_name(Some("sharding.buildplane.openchoreo.dev/key=a"))
        );
    }

    #[test]
    fn controller_values_without_a_control_plane_are_named() {
        let inputs = [
            ("v.yaml".to_owned(), json!({"namespace": "x"})),
            (
                "--set controller.shards={a}".to_owned(),
                json!({"controller": {"shards": ["a"]}}),
            ),
        ];
        let unread: Vec<String> = unread_values(&inputs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            unread,
            [
                "controller (--set controller.shards={a}): not applicable: the controller's settings are read only with --control-plane; ignored"
            ]
        );
    }
}
