//! The Workload CRD is generated from the Rust types; the committed copy must equal it (bless
//! with `BUILDPLANE_BLESS=1 cargo test --test crds`), and it must load on the real API server
//! (Kubernetes 1.20) and enforce the schema there.

mod cluster;

use buildplane::core::crd::{build_crd, buildplane_crd, control_plane_crds, workload_crd};
use buildplane::core::manifest::{self, Manifest};
use buildplane::kube::{ClientSettings, Kube};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[test]
fn committed_crds_equal_the_generated_ones() {
    for (rel, crd) in control_plane_crds() {
        let generated = manifest::to_yaml(&Manifest::new(crd).unwrap()).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        if std::env::var_os("BUILDPLANE_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).expect("committed CRD (bless it)");
        assert!(
            committed == generated,
            "{rel} differs from the types: bless and review"
        );
        assert!(!generated.contains("$ref") && !generated.contains("x-kubernetes-validations"));
    }
    // The schemas speak the field names the code reads and writes.
    let text = |crd| manifest::to_yaml(&Manifest::new(crd).unwrap()).unwrap();
    let workload = text(workload_crd());
    for key in [
        "projectName",
        "componentName",
        "containers",
        "endpoints",
        "connections",
        "port",
    ] {
        assert!(workload.contains(key), "{key}");
    }
    let build = text(build_crd());
    for key in [
        "templateRef",
        "appPath",
        "imageStatus",
        "conditions",
        "lastTransitionTime",
    ] {
        assert!(build.contains(key), "{key}");
    }
    assert!(text(buildplane_crd()).contains("clusterRef"));
}

#[test]
fn the_crd_loads_and_enforces_its_schema_on_the_api_server() {
    let kc = cluster::kubeconfig();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let kube = Kube::connect(&ClientSettings {
            kubeconfig: Some(kc.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        let r = kube
            .resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            .await
            .unwrap()
            .unwrap();
        for (_, crd) in control_plane_crds() {
            let crd = Manifest::new(crd).unwrap();
            kube.apply(&r, &crd, false, true)
                .await
                .unwrap_or_else(|e| panic!("{} refused by Kubernetes 1.20: {e}", crd.id));
            kube.wait_crd_established(&crd.id.name, Duration::from_secs(60))
                .await
                .unwrap();
        }
    });
    let ns = cluster::unique_name("wl");
    assert_eq!(
        cluster::raw_request(
            &kc,
            None,
            "POST",
            "/api/v1/namespaces",
            Some(&json!({"metadata": {"name": ns}})),
            "application/json"
        )
        .0,
        201
    );
    let path = format!("/apis/openchoreo.dev/v1alpha1/namespaces/{ns}/workloads");
    let workload = |port: i64| {
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": format!("w{port}")},
        "spec": {"owner": {"projectName": "p", "componentName": "c"},
            "containers": {"main": {"image": "r/i:t"}},
            "endpoints": {"api": {"type": "REST", "port": port}}}})
    };
    // Discovery of a new group can lag a moment behind Established.
    let mut code = 0;
    for _ in 0..50 {
        code = cluster::raw_request(
            &kc,
            None,
            "POST",
            &path,
            Some(&workload(8080)),
            "application/json",
        )
        .0;
        if code != 404 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, 201);
    let (code, body) = cluster::raw_request(
        &kc,
        None,
        "POST",
        &path,
        Some(&workload(70000)),
        "application/json",
    );
    assert_eq!(code, 422, "port 70000 accepted: {body}");
    let bad_type = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Workload", "metadata": {"name": "bad"},
        "spec": {"owner": {"projectName": "p", "componentName": "c"}, "endpoints": {"api": {"type": "SOAP", "port": 1}}}});
    assert_eq!(
        cluster::raw_request(
            &kc,
            None,
            "POST",
            &path,
            Some(&bad_type),
            "application/json"
        )
        .0,
        422
    );

    // An empty string in a custom resource stays an empty string. The test server's old build
    // (scripts/kube-testenv before recipe r2) turned every "" into null, and `appPath: ""` was
    // then refused by the Build schema.
    let build = json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
        "metadata": {"name": "empty-strings"},
        "spec": {"owner": {"projectName": "p", "componentName": "c"},
            "repository": {"url": "https://git.example.com/p.git",
                "revision": {"branch": "main", "commit": ""}, "appPath": ""},
            "templateRef": {"name": "docker", "parameters": [{"name": "docker-context", "value": ""}]}}});
    let builds = format!("/apis/openchoreo.dev/v1alpha1/namespaces/{ns}/builds");
    let (code, body) =
        cluster::raw_request(&kc, None, "POST", &builds, Some(&build), "application/json");
    assert_eq!(code, 201, "{body}");
    let (code, back) = cluster::kubectl_like_get(&kc, None, &format!("{builds}/empty-strings"));
    assert_eq!(code, 200);
    assert_eq!(back["spec"]["repository"]["appPath"], json!(""), "{back}");
    assert_eq!(
        back["spec"]["repository"]["revision"]["commit"],
        json!(""),
        "{back}"
    );
    assert_eq!(
        back["spec"]["templateRef"]["parameters"][0]["value"],
        json!(""),
        "{back}"
    );
}
