//! What `--control-plane` installs: the Build, BuildPlane and Workload CRDs and the controller
//! (`buildplane controller`) with least-privilege RBAC. Pure: a function of its settings.

use super::crd;
use super::manifest::Manifest;
use serde_json::{Value, json};

/// The inventory the control-plane objects are recorded in.
pub const CONTROL_PLANE_INVENTORY: &str = "control-plane";
pub const NAMESPACE: &str = "buildplane-system";
pub const NAME: &str = "buildplane-controller";

/// How the controller is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneSettings {
    /// The image holding the `buildplane` binary.
    pub image: String,
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "openchoreo",
        "app.kubernetes.io/managed-by": "buildplane"})
}

/// The permissions the controller needs, and no more: it reads Builds and BuildPlanes, patches
/// a Build only to add or remove its finalizer (a JSON patch of `metadata.finalizers`), writes
/// Build status, reads (never lists) the kubeconfig Secrets BuildPlanes name, applies Workloads
/// (a server-side apply that creates an object needs `create` besides `patch`) and deletes the
/// one a deleted Build created, and publishes Events on Builds (each condition transition, each
/// cleanup step; events.k8s.io: `create`, and
/// `patch` for a repeated Event's series).
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
        {"apiGroups": ["openchoreo.dev"], "resources": ["workloads"], "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

/// The Lease the replicas elect a leader on (`--leader-election-id`'s default).
pub const LEASE: &str = "buildplane-controller";

/// The namespaced permissions: the Lease, and only it. `create` cannot be limited to a name
/// (RBAC never names an object that does not exist yet); `get` and `update` are.
pub fn lease_role_rules() -> Value {
    json!([
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [LEASE],
            "verbs": ["get", "update"]},
    ])
}

/// Replicas of the controller: one leads, the other stands by with warm caches.
pub const REPLICAS: u32 = 2;

/// The objects, unsorted (the pipeline sorts).
pub fn bundle(settings: &ControlPlaneSettings) -> Vec<Manifest> {
    let l = labels();
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
            "rules": lease_role_rules()}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{NAME}-leader-election"), "namespace": NAMESPACE, "labels": l},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                "name": format!("{NAME}-leader-election")},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": l},
            "spec": {
                "replicas": REPLICAS,
                // One replica at a time: the other keeps leading or standing by meanwhile.
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": l},
                    "spec": {
                        "serviceAccountName": NAME,
                        // Replicas on different nodes where there are several: a drain or a
                        // node failure takes one.
                        "affinity": {"podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [{
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": "kubernetes.io/hostname",
                                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                                },
                            }],
                        }},
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "controller",
                            "image": settings.image,
                            // Neither opt-in (`--insecure-kubeconfig-exec`,
                            // `--allow-cross-namespace-refs`): the operator adds them knowingly.
                            "args": ["controller", "--metrics-addr", "0.0.0.0:9090",
                                "--enable-leader-election"],
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
            }}),
    ]);
    objects
        .into_iter()
        .map(|o| Manifest::new(o).expect("control-plane objects carry kind and name"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_holds_the_crds_the_controller_and_nothing_broader_than_needed() {
        let b = bundle(&ControlPlaneSettings {
            image: "registry.test/buildplane:1".into(),
        });
        let ids: Vec<String> = b.iter().map(|m| m.id.to_string()).collect();
        for id in [
            "CustomResourceDefinition/builds.openchoreo.dev",
            "CustomResourceDefinition/buildplanes.openchoreo.dev",
            "CustomResourceDefinition/workloads.openchoreo.dev",
            "Deployment/buildplane-system/buildplane-controller",
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
                &json!(["events"])
            ],
        );
        assert_eq!(with("list"), [&json!(["builds"]), &json!(["buildplanes"])]);
        assert_eq!(
            lease_role_rules(),
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
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--enable-leader-election")),
            "{c}"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            deploy.object["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.test/buildplane:1"
        );
    }
}
