//! The install part of the bundle: Argo's CRDs, the workflow controller and the build
//! namespaces, rendered from the built-in chart with default and changed values.

use buildplane::core::manifest::Manifest;
use buildplane::core::render::{Chart, common_labels, defaults, render_chart};
use buildplane::core::spec::{Build, build_from_value, parse_documents};
use buildplane::core::values::coalesce;
use buildplane::engine::Engine;
use buildplane::engine::argo::ArgoEngine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

const CONTROLLER_NS: &str = "openchoreo-build-plane";

fn values_with(overlay: Value) -> Value {
    let chart = Chart::builtin();
    let mut v = defaults(&chart).unwrap();
    coalesce(&mut v, overlay);
    v
}

fn render(overlay: Value) -> Vec<Manifest> {
    render_chart(&Chart::builtin(), &values_with(overlay)).unwrap()
}

/// The install objects only: the ClusterWorkflowTemplates are another template's business.
fn install_objects(ms: &[Manifest]) -> Vec<&Manifest> {
    ms.iter()
        .filter(|m| m.id.kind != "ClusterWorkflowTemplate")
        .collect()
}

fn ids<'a>(ms: impl IntoIterator<Item = &'a Manifest>) -> BTreeSet<String> {
    ms.into_iter().map(|m| m.id.to_string()).collect()
}

fn find<'a>(ms: &'a [Manifest], id: &str) -> &'a Value {
    &ms.iter()
        .find(|m| m.id.to_string() == id)
        .unwrap_or_else(|| panic!("{id} not rendered; have {:?}", ids(ms)))
        .object
}

fn build(namespace: &str) -> Build {
    let text = format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\n\
         metadata: {{name: greeter-build-01, namespace: {namespace}}}\n\
         spec:\n  owner: {{projectName: p, componentName: greeter}}\n  \
         repository: {{url: 'https://example.com/r', revision: {{}}, appPath: /app}}\n  \
         templateRef: {{name: ballerina-buildpack}}\n"
    );
    let (origin, doc) = parse_documents("test.yaml", &text).unwrap().remove(0);
    build_from_value(&origin, doc).unwrap()
}

const CRD_NAMES: [&str; 8] = [
    "clusterworkflowtemplates",
    "cronworkflows",
    "workflowartifactgctasks",
    "workfloweventbindings",
    "workflows",
    "workflowtaskresults",
    "workflowtasksets",
    "workflowtemplates",
];

fn crd_ids() -> Vec<String> {
    CRD_NAMES
        .iter()
        .map(|n| format!("CustomResourceDefinition/{n}.argoproj.io"))
        .collect()
}

fn build_ns_ids(ns: &str) -> Vec<String> {
    vec![
        format!("Namespace/{ns}"),
        format!("ServiceAccount/{ns}/workflow-sa"),
        format!("Role/{ns}/workflow-role"),
        format!("RoleBinding/{ns}/workflow-role-binding"),
    ]
}

fn controller_ids(ns: &str, name: &str) -> Vec<String> {
    vec![
        format!("Namespace/{ns}"),
        format!("ServiceAccount/{ns}/{name}"),
        format!("ClusterRole/{name}"),
        format!("ClusterRole/{name}-cluster-template"),
        format!("ClusterRoleBinding/{name}"),
        format!("ClusterRoleBinding/{name}-cluster-template"),
        format!("ConfigMap/{ns}/{name}-configmap"),
        format!("Deployment/{ns}/{name}"),
    ]
}

#[test]
fn default_install_renders_crds_controller_and_the_default_build_namespace() {
    let ms = render(json!({}));
    let mut expected: BTreeSet<String> = crd_ids().into_iter().collect();
    expected.extend(controller_ids(CONTROLLER_NS, "argo-workflow-controller"));
    expected.extend(build_ns_ids("openchoreo-ci-default"));
    assert_eq!(ids(install_objects(&ms)), expected);
    let all = ids(&ms);
    assert_eq!(all.len(), ms.len(), "an object is rendered twice");
}

#[test]
fn crds_are_cluster_objects_of_argoproj_io_without_cel() {
    let ms = render(json!({}));
    for m in ms
        .iter()
        .filter(|m| m.id.kind == "CustomResourceDefinition")
    {
        let crd = &m.object;
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1", "{}", m.id);
        assert!(m.id.namespace.is_none(), "{}", m.id);
        assert_eq!(crd["spec"]["group"], "argoproj.io");
        let text = serde_json::to_string(crd).unwrap();
        assert!(
            !text.contains("x-kubernetes-validations"),
            "{}: CEL rules",
            m.id
        );
        let versions = crd["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["name"], "v1alpha1");
        let props = &versions[0]["schema"]["openAPIV3Schema"]["properties"];
        for field in ["spec", "status", "outputs"] {
            if let Some(p) = props.get(field) {
                assert_eq!(p["type"], "object", "{}: {field}", m.id);
                assert_eq!(
                    p["x-kubernetes-preserve-unknown-fields"], true,
                    "{}: {field}",
                    m.id
                );
            }
        }
    }
    let wf = find(&ms, "CustomResourceDefinition/workflows.argoproj.io");
    assert_eq!(
        wf["spec"]["versions"][0]["subresources"],
        json!({}),
        "Argo writes Workflow .status with the object: no status subresource"
    );
}

/// Names, short names, scope, printer columns, subresources, version flags and the top-level
/// schema fields are those of Argo's own minimal CRDs (v3.6, fixtures/argo/crds-minimal).
#[test]
fn crds_match_argos_minimal_crds() {
    let ms = render(json!({}));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/argo/crds-minimal");
    for plural in CRD_NAMES {
        let file = dir.join(format!("argoproj.io_{plural}.yaml"));
        let text = std::fs::read_to_string(&file).unwrap();
        let argo: Value = serde_saphyr::from_str(&text).unwrap();
        let ours = find(
            &ms,
            &format!("CustomResourceDefinition/{plural}.argoproj.io"),
        );
        assert_eq!(ours["metadata"]["name"], argo["metadata"]["name"]);
        for key in ["group", "names", "scope"] {
            assert_eq!(ours["spec"][key], argo["spec"][key], "{plural}: spec.{key}");
        }
        let (o, a) = (&ours["spec"]["versions"][0], &argo["spec"]["versions"][0]);
        for key in [
            "name",
            "served",
            "storage",
            "additionalPrinterColumns",
            "subresources",
        ] {
            assert_eq!(o.get(key), a.get(key), "{plural}: versions[0].{key}");
        }
        let (os, as_) = (
            &o["schema"]["openAPIV3Schema"],
            &a["schema"]["openAPIV3Schema"],
        );
        assert_eq!(os["required"], as_["required"], "{plural}: required");
        let keys = |s: &Value| -> Vec<String> {
            s["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(keys(os), keys(as_), "{plural}: top-level fields");
        for (field, schema) in as_["properties"].as_object().unwrap() {
            assert_eq!(
                os["properties"][field]["type"], schema["type"],
                "{plural}: {field}"
            );
        }
    }
}

#[test]
fn controller_takes_namespace_name_images_and_resources_from_values() {
    let resources = json!({"limits": {"cpu": "1", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}});
    let ms = render(json!({
        "namespace": "ci-system",
        "argo-workflows": {
            "fullnameOverride": "wf",
            "images": {"controller": "reg.example/wfc:v3.6.5", "executor": "reg.example/exec:v3.6.5",
                       "pullPolicy": "Always"},
            "controller": {"replicas": 2, "logLevel": "debug", "resources": resources},
        },
    }));
    let mut expected: BTreeSet<String> = crd_ids().into_iter().collect();
    expected.extend(controller_ids("ci-system", "wf-workflow-controller"));
    expected.extend(build_ns_ids("openchoreo-ci-default"));
    assert_eq!(ids(install_objects(&ms)), expected);

    let d = find(&ms, "Deployment/ci-system/wf-workflow-controller");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "wf-workflow-controller");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "reg.example/wfc:v3.6.5");
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["resources"], resources);
    assert_eq!(
        c["args"],
        json!([
            "--configmap",
            "wf-workflow-controller-configmap",
            "--executor-image",
            "reg.example/exec:v3.6.5",
            "--loglevel",
            "debug",
            "--gloglevel",
            "0",
            "--log-format",
            "text"
        ])
    );
    assert!(
        !c["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--namespaced")),
        "the controller must watch every build namespace"
    );
    assert_eq!(
        c["env"][1],
        json!({"name": "LEADER_ELECTION_IDENTITY",
               "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}})
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "metrics", "containerPort": 9090}, {"containerPort": 6060}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"port": 6060, "path": "/healthz"})
    );
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    let selector = &d["spec"]["selector"]["matchLabels"];
    for (k, v) in selector.as_object().unwrap() {
        assert_eq!(
            &d["spec"]["template"]["metadata"]["labels"][k], v,
            "pod label {k}"
        );
    }

    let cm = find(&ms, "ConfigMap/ci-system/wf-workflow-controller-configmap");
    let config: Value = serde_saphyr::from_str(cm["data"]["config"].as_str().unwrap()).unwrap();
    assert!(config.is_object(), "{config}");

    for binding in [
        "wf-workflow-controller",
        "wf-workflow-controller-cluster-template",
    ] {
        let crb = find(&ms, &format!("ClusterRoleBinding/{binding}"));
        assert_eq!(
            crb["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole", "name": binding})
        );
        assert_eq!(
            crb["subjects"],
            json!([{"kind": "ServiceAccount",
            "name": "wf-workflow-controller", "namespace": "ci-system"}])
        );
    }
}

/// The controller's rules, per (apiGroup, resource): the verbs argo-helm 0.45.2 grants.
#[test]
fn controller_cluster_roles_grant_what_argo_needs() {
    let ms = render(json!({}));
    let mut grants: BTreeSet<String> = BTreeSet::new();
    for name in [
        "argo-workflow-controller",
        "argo-workflow-controller-cluster-template",
    ] {
        let role = find(&ms, &format!("ClusterRole/{name}"));
        for rule in role["rules"].as_array().unwrap() {
            let names = rule
                .get("resourceNames")
                .map(|n| format!("{n}"))
                .unwrap_or_default();
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        let (g, r, v) = (
                            g.as_str().unwrap(),
                            r.as_str().unwrap(),
                            v.as_str().unwrap(),
                        );
                        grants.insert(format!("{g}/{r}:{v}{names}"));
                    }
                }
            }
        }
    }
    let all = [
        "get", "list", "watch", "update", "patch", "delete", "create",
    ];
    let mut needed: Vec<String> = Vec::new();
    let mut want = |group: &str, resources: &[&str], verbs: &[&str]| {
        for r in resources {
            for v in verbs {
                needed.push(format!("{group}/{r}:{v}"));
            }
        }
    };
    want("", &["pods"], &all);
    want("", &["pods/exec"], &["create"]);
    want("", &["configmaps"], &["get", "list", "watch"]);
    want(
        "",
        &[
            "persistentvolumeclaims",
            "persistentvolumeclaims/finalizers",
        ],
        &["create", "update", "delete", "get"],
    );
    want(
        "argoproj.io",
        &[
            "workflows",
            "workflows/finalizers",
            "workflowtasksets",
            "workflowtasksets/finalizers",
            "workflowartifactgctasks",
        ],
        &all,
    );
    want(
        "argoproj.io",
        &[
            "workflowtemplates",
            "workflowtemplates/finalizers",
            "clusterworkflowtemplates",
            "clusterworkflowtemplates/finalizers",
        ],
        &["get", "list", "watch"],
    );
    want(
        "argoproj.io",
        &["workflowtaskresults", "workflowtaskresults/finalizers"],
        &["list", "watch", "deletecollection"],
    );
    want(
        "argoproj.io",
        &["cronworkflows", "cronworkflows/finalizers"],
        &["get", "list", "watch", "update", "patch", "delete"],
    );
    want("", &["events"], &["create", "patch"]);
    want("", &["serviceaccounts"], &["get", "list"]);
    want(
        "policy",
        &["poddisruptionbudgets"],
        &["create", "get", "delete"],
    );
    want("coordination.k8s.io", &["leases"], &["create"]);
    needed.push(
        r#"coordination.k8s.io/leases:get["workflow-controller","workflow-controller-lease"]"#
            .into(),
    );
    needed.push(
        r#"coordination.k8s.io/leases:update["workflow-controller","workflow-controller-lease"]"#
            .into(),
    );
    needed.push(r#"/secrets:get["argo-workflows-agent-ca-certificates"]"#.into());
    for n in &needed {
        assert!(grants.contains(n), "missing grant {n}");
    }
    assert!(
        !grants
            .iter()
            .any(|g| g.starts_with("/secrets:") && !g.contains('[')),
        "the controller may read one named secret, not all of them"
    );
}

#[test]
fn argo_disabled_leaves_only_the_templates() {
    let ms = render(json!({"argo-workflows": {"enabled": false}}));
    assert_eq!(ids(install_objects(&ms)), BTreeSet::new());
}

#[test]
fn crds_install_false_drops_only_the_crds() {
    let ms = render(json!({"argo-workflows": {"crds": {"install": false}}}));
    let mut expected: BTreeSet<String> = BTreeSet::new();
    expected.extend(controller_ids(CONTROLLER_NS, "argo-workflow-controller"));
    expected.extend(build_ns_ids("openchoreo-ci-default"));
    assert_eq!(ids(install_objects(&ms)), expected);
}

#[test]
fn build_namespaces_follow_the_build_namespaces_value() {
    let ms = render(json!({"buildNamespaces": ["openchoreo-ci-acme", "argo-build"]}));
    let mut expected: BTreeSet<String> = crd_ids().into_iter().collect();
    expected.extend(controller_ids(CONTROLLER_NS, "argo-workflow-controller"));
    expected.extend(build_ns_ids("openchoreo-ci-acme"));
    expected.extend(build_ns_ids("argo-build"));
    assert_eq!(ids(install_objects(&ms)), expected);
    // Not an openchoreo-ci-<org> namespace: the organization label is the namespace itself.
    assert_eq!(
        find(&ms, "Namespace/argo-build")["metadata"]["labels"]["organization-name"],
        "argo-build"
    );

    let ms = render(json!({"buildNamespaces": []}));
    let mut expected: BTreeSet<String> = crd_ids().into_iter().collect();
    expected.extend(controller_ids(CONTROLLER_NS, "argo-workflow-controller"));
    assert_eq!(ids(install_objects(&ms)), expected);
}

/// Upstream's `argo-workflows.workflowNamespaces` is not a key of the Argo chart, so upstream
/// ignored it (its builds run in openchoreo-ci-<org>); it changes nothing here either.
#[test]
fn upstreams_workflow_namespaces_prepare_nothing() {
    let ms = render(json!({"argo-workflows": {"workflowNamespaces": ["argo-build"]}}));
    assert_eq!(ids(&ms), ids(&render(json!({}))));
    assert!(ids(&ms).contains("Namespace/openchoreo-ci-default"));
}

/// A namespace prepared at install is exactly what the engine creates for a Build of that
/// organization (plus the common labels), so a render with Builds emits it once either way.
#[test]
fn build_namespace_objects_equal_the_engines_prerequisites() {
    let values = values_with(json!({"global": {"commonLabels": {"team": "ci"}},
        "buildNamespaces": ["openchoreo-ci-default", "openchoreo-ci-acme"]}));
    let chart = Chart::builtin();
    let ms = render_chart(&chart, &values).unwrap();
    let common = common_labels(&chart.meta().unwrap(), &values);
    for org in ["default", "acme"] {
        let prereqs = ArgoEngine.prerequisites(&build(org));
        assert_eq!(prereqs.len(), 4);
        for p in prereqs {
            let mut expected = p.object.clone();
            let mut labels = common.clone();
            coalesce(&mut labels, p.object["metadata"]["labels"].clone());
            expected["metadata"]["labels"] = labels;
            assert_eq!(find(&ms, &p.id.to_string()), &expected, "{}", p.id);
        }
    }
}

#[test]
fn controller_namespace_may_not_be_a_build_namespace() {
    let v = values_with(json!({"namespace": "openchoreo-ci-default"}));
    let err = render_chart(&Chart::builtin(), &v).unwrap_err().to_string();
    assert!(
        err.contains("namespace openchoreo-ci-default is both"),
        "{err}"
    );
}

#[test]
fn every_object_carries_the_common_labels() {
    let extra = json!({"team": "platform", "example.com/cost-center": "42"});
    let values = values_with(json!({"global": {"commonLabels": extra},
        "argo-workflows": {"server": {"enabled": true}}}));
    let chart = Chart::builtin();
    let ms = render_chart(&chart, &values).unwrap();
    let common = common_labels(&chart.meta().unwrap(), &values);
    assert_eq!(common["team"], "platform");
    assert_eq!(common["app.kubernetes.io/managed-by"], "buildplane");
    let mut checked = 0;
    for m in &ms {
        let mut label_sets = vec![(&m.object["metadata"]["labels"], "metadata")];
        if m.id.kind == "Deployment" {
            label_sets.push((
                &m.object["spec"]["template"]["metadata"]["labels"],
                "pod template",
            ));
        }
        for (labels, place) in label_sets {
            for (k, v) in common.as_object().unwrap() {
                assert_eq!(&labels[k], v, "{} {place}: label {k}", m.id);
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} label sets checked");
}

/// Each object is a valid instance of its Kubernetes type: it deserializes into the
/// k8s-openapi struct and serializes back to the same JSON (no unknown or misplaced field).
#[test]
fn core_objects_round_trip_through_their_kubernetes_types() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    fn round_trip<T: DeserializeOwned + Serialize>(m: &Manifest) {
        let typed: T =
            serde_json::from_value(m.object.clone()).unwrap_or_else(|e| panic!("{}: {e}", m.id));
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back, m.object, "{} lost or changed fields", m.id);
    }

    let ms = render(json!({"buildNamespaces": ["openchoreo-ci-default", "x"],
        "argo-workflows": {"server": {"enabled": true}, "crds": {"keep": true}}}));
    let mut seen = BTreeSet::new();
    for m in install_objects(&ms) {
        match m.id.kind.as_str() {
            "Namespace" => round_trip::<Namespace>(m),
            "ServiceAccount" => round_trip::<ServiceAccount>(m),
            "ConfigMap" => round_trip::<ConfigMap>(m),
            "Service" => round_trip::<Service>(m),
            "Deployment" => round_trip::<Deployment>(m),
            "ClusterRole" => round_trip::<ClusterRole>(m),
            "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(m),
            "Role" => round_trip::<Role>(m),
            "RoleBinding" => round_trip::<RoleBinding>(m),
            "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(m),
            other => panic!("{}: no Kubernetes type checked for kind {other}", m.id),
        }
        seen.insert(m.id.kind.clone());
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
}

fn server_ids(ns: &str, name: &str) -> Vec<String> {
    vec![
        format!("ServiceAccount/{ns}/{name}"),
        format!("ClusterRole/{name}"),
        format!("ClusterRole/{name}-cluster-template"),
        format!("ClusterRoleBinding/{name}"),
        format!("ClusterRoleBinding/{name}-cluster-template"),
        format!("Deployment/{ns}/{name}"),
        format!("Service/{ns}/{name}"),
    ]
}

fn round_trips<T: DeserializeOwned + Serialize>(object: &Value) {
    let typed: T = serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&serde_json::to_value(&typed).unwrap(), object);
}

/// Every (apiGroup/resource:verb) a set of ClusterRoles grants.
fn grants(ms: &[Manifest], roles: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in roles {
        for rule in find(ms, &format!("ClusterRole/{name}"))["rules"]
            .as_array()
            .unwrap()
        {
            assert!(rule.get("resourceNames").is_none(), "{rule}");
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        out.insert(format!(
                            "{}/{}:{}",
                            g.as_str().unwrap(),
                            r.as_str().unwrap(),
                            v.as_str().unwrap()
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `argo-workflows.server.enabled: true` renders what argo-helm's argo-workflows 0.45.2
/// renders for the server with its defaults: objects of valid Kubernetes types, the argocli
/// image at the controller's tag, `argo server` on 2746 with a readiness probe on `/`, and a
/// Service that selects the Deployment's pods.
#[test]
fn argo_server_renders_as_the_argo_chart_does() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};

    let ms = render(json!({"argo-workflows": {"server": {"enabled": true}}}));
    let mut expected = ids(install_objects(&render(json!({}))));
    expected.extend(server_ids(CONTROLLER_NS, "argo-server"));
    assert_eq!(ids(install_objects(&ms)), expected);

    let name = "argo-server";
    let d = find(&ms, &format!("Deployment/{CONTROLLER_NS}/{name}"));
    let svc = find(&ms, &format!("Service/{CONTROLLER_NS}/{name}"));
    round_trips::<Deployment>(d);
    round_trips::<Service>(svc);
    round_trips::<ServiceAccount>(find(&ms, &format!("ServiceAccount/{CONTROLLER_NS}/{name}")));
    for role in [name.to_owned(), format!("{name}-cluster-template")] {
        round_trips::<ClusterRole>(find(&ms, &format!("ClusterRole/{role}")));
        let crb = find(&ms, &format!("ClusterRoleBinding/{role}"));
        round_trips::<ClusterRoleBinding>(crb);
        assert_eq!(
            crb["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role})
        );
        assert_eq!(
            crb["subjects"],
            json!([{"kind": "ServiceAccount", "name": name, "namespace": CONTROLLER_NS}])
        );
    }

    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], name);
    let c = &pod["containers"][0];
    assert_eq!(c["name"], "argo-server");
    assert_eq!(c["image"], "quay.io/argoproj/argocli:v3.6.2");
    assert_eq!(
        c["args"],
        json!([
            "server",
            "--configmap=argo-workflow-controller-configmap",
            "--auth-mode=client",
            "--secure=false",
            "--loglevel",
            "info",
            "--gloglevel",
            "0",
            "--log-format",
            "text"
        ])
    );
    assert_eq!(c["ports"], json!([{"name": "web", "containerPort": 2746}]));
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/", "port": 2746, "scheme": "HTTP"})
    );
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "ARGO_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}))
    );
    // The server reads the controller's ConfigMap, which the bundle renders.
    find(
        &ms,
        &format!("ConfigMap/{CONTROLLER_NS}/argo-workflow-controller-configmap"),
    );

    // The Service selects exactly the Deployment's pods, and reaches their port.
    let selector = svc["spec"]["selector"].as_object().unwrap();
    assert!(!selector.is_empty());
    assert_eq!(
        &d["spec"]["selector"]["matchLabels"],
        &svc["spec"]["selector"]
    );
    for (k, v) in selector {
        assert_eq!(&d["spec"]["template"]["metadata"]["labels"][k], v, "{k}");
    }
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 2746, "protocol": "TCP", "targetPort": 2746}])
    );
    // ... and no other Deployment's pods: the controller's selector differs.
    let controller = find(
        &ms,
        &format!("Deployment/{CONTROLLER_NS}/argo-workflow-controller"),
    );
    assert!(
        selector
            .iter()
            .any(|(k, v)| &controller["spec"]["template"]["metadata"]["labels"][k] != v),
        "the server's Service would select the controller's pods"
    );

    // The permissions of argo-helm 0.45.2's server roles (no SSO, no persistence), no more.
    let all = [
        "create", "get", "list", "watch", "update", "patch", "delete",
    ];
    let mut want = BTreeSet::new();
    let mut grant = |group: &str, resources: &[&str], verbs: &[&str]| {
        for r in resources {
            for v in verbs {
                want.insert(format!("{group}/{r}:{v}"));
            }
        }
    };
    grant("", &["configmaps", "events"], &["get", "watch", "list"]);
    grant("", &["pods"], &["get", "list", "watch", "delete"]);
    grant("", &["pods/log"], &["get", "list"]);
    grant("", &["secrets"], &["get"]);
    grant("", &["events"], &["watch", "create", "patch"]);
    grant(
        "argoproj.io",
        &[
            "eventsources",
            "sensors",
            "workflows",
            "workfloweventbindings",
            "workflowtemplates",
            "cronworkflows",
        ],
        &all,
    );
    grant("argoproj.io", &["clusterworkflowtemplates"], &all);
    assert_eq!(
        grants(&ms, &[name, &format!("{name}-cluster-template")]),
        want
    );
}

#[test]
fn argo_server_takes_its_values() {
    let resources = json!({"limits": {"memory": "256Mi"}, "requests": {"cpu": "50m"}});
    let ms = render(json!({
        "namespace": "ci-system",
        "argo-workflows": {
            "fullnameOverride": "wf",
            "images": {"controller": "reg.example:5000/argo/workflow-controller:v3.6.5@sha256:0123"},
            "server": {"enabled": true, "replicas": 2, "serviceType": "NodePort", "servicePort": 80,
                "authModes": ["server", "client"], "extraArgs": ["--x-frame-options=DENY"],
                "image": {"registry": "", "repository": "mirror/argocli", "tag": ""},
                "resources": resources},
        },
    }));
    let mut expected = ids(install_objects(&render(json!({"namespace": "ci-system",
        "argo-workflows": {"fullnameOverride": "wf"}}))));
    expected.extend(server_ids("ci-system", "wf-server"));
    assert_eq!(ids(install_objects(&ms)), expected);
    let d = find(&ms, "Deployment/ci-system/wf-server");
    assert_eq!(d["spec"]["replicas"], 2);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "mirror/argocli:v3.6.5", "the controller's tag");
    assert_eq!(c["resources"], resources);
    assert_eq!(
        c["args"],
        json!([
            "server",
            "--configmap=wf-workflow-controller-configmap",
            "--x-frame-options=DENY",
            "--auth-mode=server",
            "--auth-mode=client",
            "--secure=false",
            "--loglevel",
            "info",
            "--gloglevel",
            "0",
            "--log-format",
            "text"
        ])
    );
    let svc = find(&ms, "Service/ci-system/wf-server");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP", "targetPort": 2746}])
    );

    let ms = render(json!({"argo-workflows": {"server": {"enabled": true,
        "image": {"tag": "v3.6.4"}, "authModes": []}}}));
    let c = &find(&ms, &format!("Deployment/{CONTROLLER_NS}/argo-server"))["spec"]["template"]["spec"]
        ["containers"][0];
    assert_eq!(c["image"], "quay.io/argoproj/argocli:v3.6.4");
    assert!(
        !c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("--auth-mode")),
        "no authModes: no flag (Argo's default, client)"
    );

    // Argo disabled: no server either.
    let ms = render(json!({"argo-workflows": {"enabled": false, "server": {"enabled": true}}}));
    assert_eq!(ids(install_objects(&ms)), BTreeSet::new());
}

#[test]
fn the_server_image_needs_a_tag_when_the_controllers_has_none() {
    let v = values_with(json!({"argo-workflows": {"server": {"enabled": true},
        "images": {"controller": "quay.io/argoproj/workflow-controller@sha256:0123"}}}));
    let err = render_chart(&Chart::builtin(), &v).unwrap_err().to_string();
    assert!(
        err.contains("argo-workflows.server.image.tag must be set"),
        "{err}"
    );
}

/// `crds.keep` is Helm's: the CRDs, and only they, carry `helm.sh/resource-policy: keep`
/// (which prune honours: `core::plan::decide_prune`).
#[test]
fn crds_keep_annotates_the_crds_and_nothing_else() {
    let plain = render(json!({}));
    let kept = render(json!({"argo-workflows": {"crds": {"keep": true}}}));
    assert_eq!(ids(&plain), ids(&kept));
    for (p, k) in plain.iter().zip(&kept) {
        assert_eq!(p.id, k.id);
        if p.id.kind == "CustomResourceDefinition" {
            assert_eq!(
                k.object["metadata"]["annotations"],
                json!({"helm.sh/resource-policy": "keep"}),
                "{}",
                k.id
            );
            let mut k = k.object.clone();
            k["metadata"].as_object_mut().unwrap().remove("annotations");
            assert_eq!(k, p.object, "{}: only the annotation differs", p.id);
        } else {
            assert_eq!(k.object, p.object, "{}", p.id);
        }
    }
    assert!(
        plain
            .iter()
            .all(|m| m.object["metadata"].get("annotations").is_none()),
        "crds.keep false (the default) annotates nothing"
    );
}
