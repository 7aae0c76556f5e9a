//! The four ClusterWorkflowTemplates as rendered from the chart
//! (`templates/cluster-workflow-templates.yaml`): structure, values, and the rule that no Argo
//! placeholder ever reaches a container's command or args.

mod support;

use buildplane::core::catalog::TEMPLATES;
use buildplane::core::render::{Chart, common_labels};
use k8s_openapi::api::core::v1::{Affinity, Container, PersistentVolumeClaim, Volume};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;
use support::{cwt, find, k8s_expand, render, shells, strings, try_render, values};

const STEPS: [&str; 4] = [
    "clone-step",
    "build-step",
    "push-step",
    "workload-create-step",
];

fn template<'a>(cwt: &'a Value, name: &str) -> &'a Value {
    find(&cwt["spec"]["templates"], "name", name).unwrap_or_else(|| panic!("no template {name}"))
}

fn container<'a>(cwt: &'a Value, step: &str) -> &'a Value {
    &template(cwt, step)["container"]
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    find(&c["env"], "name", name)?["value"].as_str()
}

fn mount<'a>(c: &'a Value, volume: &str) -> Option<&'a str> {
    find(&c["volumeMounts"], "name", volume)?["mountPath"].as_str()
}

fn output_path<'a>(cwt: &'a Value, step: &str) -> &'a str {
    let outs = &template(cwt, step)["outputs"]["parameters"];
    assert_eq!(outs.as_array().unwrap().len(), 1);
    outs[0]["valueFrom"]["path"].as_str().unwrap()
}

#[test]
fn renders_the_four_templates_of_the_catalog() {
    let chart = Chart::builtin();
    let cwts = render(json!({"global": {"commonLabels": {"team": "ci"}}}));
    let names: BTreeSet<&str> = cwts
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    let expected = [
        "ballerina-buildpack",
        "docker",
        "google-cloud-buildpacks",
        "react",
    ];
    assert_eq!(names.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(cwts.len(), 4);
    let labels = common_labels(
        &chart.meta().unwrap(),
        &values(json!({"global": {"commonLabels": {"team": "ci"}}})),
    );
    assert_eq!(labels["team"], "ci");
    for c in &cwts {
        assert_eq!(c["apiVersion"], "argoproj.io/v1alpha1");
        assert!(c["metadata"].get("namespace").is_none(), "cluster-scoped");
        assert_eq!(c["metadata"]["labels"], labels);
        assert_eq!(c["spec"]["entrypoint"], "build-workflow");
    }
}

#[test]
fn arguments_are_the_catalog_parameters_without_values() {
    let cwts = render(json!({}));
    assert_eq!(
        cwt(&cwts, "docker")["spec"]["arguments"],
        json!({"parameters": [{"name": "docker-context"}, {"name": "dockerfile-path"}]})
    );
    for t in TEMPLATES {
        let c = cwt(&cwts, t.name);
        if t.parameters.is_empty() {
            assert!(c["spec"].get("arguments").is_none(), "{}", t.name);
            continue;
        }
        let params: Vec<Value> = t.parameters.iter().map(|p| json!({"name": p})).collect();
        assert_eq!(
            c["spec"]["arguments"]["parameters"],
            Value::Array(params),
            "{}",
            t.name
        );
        // Each one reaches the build step, as an env var.
        let build = container(c, "build-step");
        for p in t.parameters {
            let name = p.to_uppercase().replace('-', "_");
            assert_eq!(
                env(build, &name),
                Some(format!("{{{{workflow.parameters.{p}}}}}").as_str())
            );
        }
    }
}

#[test]
fn steps_run_in_order_and_pass_revision_and_image() {
    let cwts = render(json!({}));
    let rev = json!({"parameters": [{"name": "git-revision",
        "value": "{{steps.clone-step.outputs.parameters.git-revision}}"}]});
    for c in &cwts {
        let groups = template(c, "build-workflow")["steps"].as_array().unwrap();
        let names: Vec<&str> = groups
            .iter()
            .map(|g| {
                assert_eq!(g.as_array().unwrap().len(), 1, "one step per group");
                assert_eq!(g[0]["template"], g[0]["name"]);
                g[0]["name"].as_str().unwrap()
            })
            .collect();
        assert_eq!(names, STEPS);
        assert!(groups[0][0].get("arguments").is_none());
        assert_eq!(groups[1][0]["arguments"], rev);
        assert_eq!(groups[2][0]["arguments"], rev);
        assert_eq!(
            groups[3][0]["arguments"],
            json!({"parameters": [{"name": "image",
                "value": "{{steps.push-step.outputs.parameters.image}}"}]})
        );
        for (step, input) in [
            ("build-step", "git-revision"),
            ("push-step", "git-revision"),
            ("workload-create-step", "image"),
        ] {
            assert_eq!(
                template(c, step)["inputs"],
                json!({"parameters": [{"name": input}]})
            );
        }
        assert!(template(c, "clone-step").get("inputs").is_none());
        assert_eq!(output_path(c, "clone-step"), "/tmp/git-revision.txt");
        assert_eq!(output_path(c, "push-step"), "/tmp/image.txt");
        assert_eq!(
            output_path(c, "workload-create-step"),
            "/mnt/vol/workload-cr.yaml"
        );
        assert!(template(c, "build-step").get("outputs").is_none());
        let outs = |s| template(c, s)["outputs"]["parameters"][0]["name"].clone();
        assert_eq!(outs("clone-step"), "git-revision");
        assert_eq!(outs("push-step"), "image");
        assert_eq!(outs("workload-create-step"), "workload-cr");
    }
}

#[test]
fn containers_use_the_configured_images_and_privileges() {
    let cwts = render(json!({}));
    let v = values(json!({}));
    let images = &v["global"]["defaultResources"]["images"];
    for c in &cwts {
        for step in STEPS {
            let k = container(c, step);
            serde_json::from_value::<Container>(k.clone()).expect("a valid core/v1 Container");
            assert_eq!(k["command"], json!(["sh", "-c"]));
            assert_eq!(k["args"].as_array().unwrap().len(), 1, "one script");
            assert_eq!(mount(k, "workspace"), Some("/mnt/vol"));
            assert_eq!(env(k, "WORKSPACE"), Some("/mnt/vol"));
            let names: Vec<&str> = k["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap())
                .collect();
            let unique: BTreeSet<&&str> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "duplicate env in {step}");
            let privileged = k["securityContext"]["privileged"] == true;
            assert_eq!(privileged, step != "clone-step", "{step}");
            let image = if step == "clone-step" {
                &images["git"]
            } else {
                &images["podmanRunner"]
            };
            assert_eq!(&k["image"], image);
        }
        for step in ["clone-step", "push-step", "workload-create-step"] {
            assert_eq!(
                env(container(c, step), "OUTPUT_FILE"),
                Some(output_path(c, step))
            );
        }
    }
    let cli = env(
        container(cwt(&cwts, "docker"), "workload-create-step"),
        "CLI_IMAGE",
    )
    .unwrap();
    let app_version = Chart::builtin().meta().unwrap().app_version;
    assert_eq!(
        cli,
        format!("ghcr.io/openchoreo/openchoreo-cli:{app_version}")
    );

    let custom = render(json!({"global": {"defaultResources": {"images": {
        "git": "mirror/git:2", "podmanRunner": "mirror/podman:1", "cli": "mirror/cli:7",
        "node": "mirror/node", "nginx": "mirror/nginx:1", "ballerinaBuilder": "mirror/bb",
        "ballerinaRun": "mirror/br", "googleBuilder": "mirror/gb", "googleRun": "mirror/gr"}}}}));
    for c in &custom {
        assert_eq!(container(c, "clone-step")["image"], "mirror/git:2");
        assert_eq!(container(c, "push-step")["image"], "mirror/podman:1");
        assert_eq!(
            env(container(c, "workload-create-step"), "CLI_IMAGE"),
            Some("mirror/cli:7")
        );
    }
    let react = container(cwt(&custom, "react"), "build-step");
    assert_eq!(
        (env(react, "NODE_IMAGE"), env(react, "NGINX_IMAGE")),
        (Some("mirror/node"), Some("mirror/nginx:1"))
    );
    for (t, b, r, prefix) in [
        ("ballerina-buildpack", "mirror/bb", "mirror/br", "ballerina"),
        (
            "google-cloud-buildpacks",
            "mirror/gb",
            "mirror/gr",
            "google",
        ),
    ] {
        let k = container(cwt(&custom, t), "build-step");
        assert_eq!(env(k, "BUILDER_IMAGE"), Some(b));
        assert_eq!(env(k, "RUN_IMAGE"), Some(r));
        assert_eq!(
            env(k, "BUILDER_CACHE"),
            Some(format!("{prefix}-builder.tar").as_str())
        );
        assert_eq!(
            env(k, "RUN_CACHE"),
            Some(format!("{prefix}-run.tar").as_str())
        );
    }
}

#[test]
fn node_affinity_follows_values() {
    for c in render(json!({})) {
        let a = &c["spec"]["affinity"];
        serde_json::from_value::<Affinity>(a.clone()).unwrap();
        let expr = &a["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0];
        assert_eq!(
            expr,
            &json!({"key": "openchoreo.dev/noderole", "operator": "In", "values": ["workflow-runner"]})
        );
    }
    let custom = json!({"global": {"defaultResources": {"nodeAffinity": {"key": "pool", "values": ["a", "b"]}}}});
    for c in render(custom) {
        let expr = &c["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"][0];
        assert_eq!(
            expr,
            &json!({"key": "pool", "operator": "In", "values": ["a", "b"]})
        );
    }
    for c in render(json!({"global": {"defaultResources": {"nodeAffinity": {"enabled": false}}}})) {
        assert!(c["spec"].get("affinity").is_none());
    }
}

#[test]
fn build_cache_volume_follows_values() {
    let buildpacks = ["ballerina-buildpack", "google-cloud-buildpacks"];
    let on = json!({"global": {"defaultResources": {"buildCache": {"hostPath": "/var/cache/bp", "type": "Directory"}}}});
    for c in render(on) {
        let name = c["metadata"]["name"].as_str().unwrap();
        let build = container(&c, "build-step");
        if buildpacks.contains(&name) {
            let vols = &c["spec"]["volumes"];
            assert_eq!(
                vols,
                &json!([{"name": "podman-cache", "hostPath": {"path": "/var/cache/bp", "type": "Directory"}}])
            );
            serde_json::from_value::<Volume>(vols[0].clone()).unwrap();
            assert_eq!(mount(build, "podman-cache"), Some("/var/cache/bp"));
            assert_eq!(env(build, "CACHE_DIR"), Some("/var/cache/bp"));
        } else {
            // docker and react never read the cache: no hostPath for them.
            assert!(c["spec"].get("volumes").is_none(), "{name}");
            assert_eq!(mount(build, "podman-cache"), None);
        }
        for step in ["clone-step", "push-step", "workload-create-step"] {
            assert_eq!(mount(container(&c, step), "podman-cache"), None);
        }
    }
    for c in render(json!({"global": {"defaultResources": {"buildCache": {"enabled": false}}}})) {
        assert!(c["spec"].get("volumes").is_none());
        let build = container(&c, "build-step");
        assert_eq!(mount(build, "podman-cache"), None);
        if let Some(dir) = env(build, "CACHE_DIR") {
            assert_eq!(dir, "", "no cache: CACHE_DIR empty");
        }
    }
}

#[test]
fn ttl_and_workspace_follow_values() {
    for c in render(json!({})) {
        assert_eq!(
            c["spec"]["ttlStrategy"],
            json!({"secondsAfterSuccess": 3600, "secondsAfterFailure": 3600})
        );
        let pvc = &c["spec"]["volumeClaimTemplates"];
        assert_eq!(
            pvc,
            &json!([{"metadata": {"name": "workspace"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}])
        );
        serde_json::from_value::<PersistentVolumeClaim>(pvc[0].clone()).unwrap();
    }
    let custom = json!({"global": {"defaultResources": {
        "ttlStrategy": {"secondsAfterSuccess": 60, "secondsAfterFailure": 86400},
        "workspace": {"size": "10Gi", "storageClassName": "fast"}}}});
    for c in render(custom) {
        assert_eq!(
            c["spec"]["ttlStrategy"],
            json!({"secondsAfterSuccess": 60, "secondsAfterFailure": 86400})
        );
        let spec = &c["spec"]["volumeClaimTemplates"][0]["spec"];
        assert_eq!(spec["resources"]["requests"]["storage"], "10Gi");
        assert_eq!(spec["storageClassName"], "fast");
    }
}

/// Every build has a deadline by default; retries, step resources and push credentials come
/// from values, and only where they belong.
#[test]
fn builds_cannot_hang_forever_and_take_retries_resources_and_credentials_from_values() {
    for c in render(json!({})) {
        assert_eq!(
            c["spec"]["activeDeadlineSeconds"], 10800,
            "a generous default"
        );
        for step in STEPS {
            assert!(template(&c, step).get("retryStrategy").is_none(), "{step}");
            assert!(container(&c, step).get("resources").is_none(), "{step}");
        }
        assert!(env(container(&c, "push-step"), "REGISTRY_AUTH_FILE").is_none());
    }
    let set = json!({"global": {"defaultResources": {
        "activeDeadlineSeconds": 0,
        "retryStrategy": {"limit": 2, "retryPolicy": "OnTransientError",
                          "backoff": {"duration": "10s", "factor": 3, "maxDuration": "5m"}},
        "stepResources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "registry": {"credentialsSecret": "push-creds"}}}});
    for c in render(set) {
        assert!(
            c["spec"].get("activeDeadlineSeconds").is_none(),
            "0: no deadline"
        );
        for step in STEPS {
            assert_eq!(
                template(&c, step)["retryStrategy"],
                json!({"limit": "2", "retryPolicy": "OnTransientError",
                       "backoff": {"duration": "10s", "factor": "3", "maxDuration": "5m"}}),
                "{step}"
            );
            let resources = &container(&c, step)["resources"];
            assert_eq!(resources["requests"]["cpu"], "500m", "{step}");
            assert_eq!(resources["limits"]["memory"], "4Gi", "{step}");
            serde_json::from_value::<Container>(container(&c, step).clone()).unwrap();
        }
        let push = container(&c, "push-step");
        let dir = mount(push, "registry-auth").expect("the credentials are mounted");
        assert_eq!(
            env(push, "REGISTRY_AUTH_FILE"),
            Some(format!("{dir}/auth.json").as_str())
        );
        assert_eq!(
            find(&push["volumeMounts"], "name", "registry-auth").unwrap()["readOnly"],
            true
        );
        for step in ["clone-step", "build-step", "workload-create-step"] {
            assert!(
                mount(container(&c, step), "registry-auth").is_none(),
                "only push-step: {step}"
            );
        }
        let volume = find(&c["spec"]["volumes"], "name", "registry-auth").unwrap();
        assert_eq!(
            volume["secret"],
            json!({"secretName": "push-creds", "items": [{"key": ".dockerconfigjson", "path": "auth.json"}]})
        );
        serde_json::from_value::<Volume>(volume.clone()).unwrap();
    }
    let bad = try_render(
        json!({"global": {"defaultResources": {"retryStrategy": {"retryPolicy": "Sometimes"}}}}),
    );
    assert!(
        bad.is_ok(),
        "values are checked against the schema by the pipeline, not the chart"
    );
}

#[test]
fn registry_endpoints_follow_the_registry_type() {
    let push_env = |cwts: &[Value]| -> Vec<(String, String, String)> {
        cwts.iter()
            .map(|c| {
                let k = container(c, "push-step");
                let get = |n| env(k, n).unwrap().to_owned();
                (
                    get("PUSH_REGISTRY"),
                    get("PULL_REGISTRY"),
                    get("TLS_VERIFY"),
                )
            })
            .collect()
    };
    let local = render(
        json!({"global": {"defaultResources": {"registry": {"local": {
        "pushEndpoint": "reg.internal:5000", "pullEndpoint": "localhost:31000"},
        "external": {"endpoint": "ignored.example.com"}}}}}),
    );
    for e in push_env(&local) {
        assert_eq!(
            e,
            (
                "reg.internal:5000".into(),
                "localhost:31000".into(),
                "false".into()
            )
        );
    }
    let external = render(json!({"global": {"defaultResources": {"registry": {
        "type": "external", "tlsVerify": true, "external": {"endpoint": "ghcr.io/acme"}}}}}));
    for e in push_env(&external) {
        assert_eq!(
            e,
            ("ghcr.io/acme".into(), "ghcr.io/acme".into(), "true".into())
        );
    }
}

#[test]
fn bad_registry_values_are_errors_naming_the_key() {
    let err =
        try_render(json!({"global": {"defaultResources": {"registry": {"type": "external"}}}}))
            .unwrap_err();
    assert!(
        err.contains("global.defaultResources.registry.external.endpoint"),
        "{err}"
    );
    assert!(err.contains("cluster-workflow-templates.yaml"), "{err}");
    let err = try_render(json!({"global": {"defaultResources": {"registry": {"type": "remote"}}}}))
        .unwrap_err();
    assert!(
        err.contains("global.defaultResources.registry.type"),
        "{err}"
    );
    // Disabled, the registry is not looked at.
    let off = json!({"global": {"defaultResources": {"enabled": false, "registry": {"type": "external"}}}});
    assert_eq!(try_render(off).unwrap().len(), 0);
}

/// THE security property: Argo placeholders are never part of a script.
#[test]
fn placeholders_only_in_env_values_and_step_arguments() {
    for c in render(json!({})) {
        let name = c["metadata"]["name"].as_str().unwrap().to_owned();
        for t in c["spec"]["templates"].as_array().unwrap() {
            for key in ["container", "script"] {
                let Some(k) = t.get(key) else { continue };
                for field in ["command", "args", "source"] {
                    let mut found = Vec::new();
                    strings(&k[field], String::new(), &mut found);
                    for (p, s) in found {
                        assert!(
                            !s.contains("{{"),
                            "{name}/{}: placeholder in {field}{p}",
                            t["name"]
                        );
                    }
                }
            }
            assert!(t.get("script").is_none(), "script templates are not used");
        }
        let mut all = Vec::new();
        strings(&c, String::new(), &mut all);
        let env_value = |p: &str| {
            p.starts_with(".spec.templates[")
                && p.contains("].container.env[")
                && p.ends_with("].value")
        };
        let step_argument = |p: &str| {
            p.starts_with(".spec.templates[0].steps[")
                && p.contains("].arguments.parameters[")
                && p.ends_with("].value")
        };
        let mut seen = 0;
        for (p, s) in &all {
            if s.contains("{{workflow.parameters.") || s.contains("{{inputs.parameters.") {
                assert!(
                    env_value(p),
                    "{name}: placeholder outside env values at {p}: {s:?}"
                );
                seen += 1;
            }
            if s.contains("{{steps.") {
                assert!(
                    step_argument(p),
                    "{name}: step output outside step arguments at {p}"
                );
            }
            if s.contains("{{") {
                // Whole-value placeholders only: env values are exactly one placeholder.
                assert!(
                    s.starts_with("{{") && s.ends_with("}}") && s.matches("{{").count() == 1,
                    "{name} {p}: {s:?}"
                );
            }
        }
        assert!(
            seen >= 10,
            "{name}: the walk found the env placeholders ({seen})"
        );
    }
}

/// Kubernetes expands `$(VAR)` and `$$` in args: scripts must read the same after it.
/// And they parse, under sh and busybox sh.
#[test]
fn scripts_survive_kubernetes_expansion_and_parse() {
    for c in render(json!({})) {
        for step in STEPS {
            let k = container(&c, step);
            let script = k["args"][0].as_str().unwrap();
            let env: Vec<(String, String)> = k["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_owned(),
                        "EXPANDED".to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                k8s_expand(script, &env),
                script,
                "{step}: changed by Kubernetes"
            );
            assert!(
                script.starts_with("# common.sh"),
                "{step}: common.sh prelude first"
            );
            assert!(script.contains("\nset -eu\n"));
            for sh in shells() {
                let mut command = Command::new(sh);
                if sh == "busybox" {
                    command.arg("sh");
                }
                let o = command.args(["-n", "-c", script]).output().unwrap();
                assert!(
                    o.status.success(),
                    "{sh} -n {step}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

#[test]
fn disabled_default_resources_render_no_templates() {
    assert!(render(json!({"global": {"defaultResources": {"enabled": false}}})).is_empty());
}

/// Upstream pasted parameters into step scripts. A chart that does so again is refused before
/// anything is rendered, naming the template, the step and the field.
#[test]
fn a_template_that_pastes_a_parameter_into_a_script_is_refused_by_the_lint() {
    let path = "templates/cluster-workflow-templates.yaml";
    let builtin = Chart::builtin();
    let text = builtin.file(path).unwrap();
    let pasted = text.replace(
        r#"args: [[ args(["common.sh", "push.sh"]) ]]"#,
        r#"args: ["podman push {{inputs.parameters.git-revision}}"]"#,
    );
    assert_ne!(
        pasted, text,
        "the push-step args are where the test expects them"
    );
    let chart = builtin.clone().with_file(path, &pasted);
    let req = buildplane::pipeline::RenderRequest {
        install: true,
        ..Default::default()
    };
    let err = buildplane::pipeline::render_parts(&chart, &req)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ClusterWorkflowTemplate docker: step push-step: container.args[0]: {{inputs.parameters.git-revision}} is shell text here"),
        "{err}"
    );
    assert!(err.ends_with("(and 3 more)"), "one per template: {err}");
    // The built-in chart passes.
    buildplane::pipeline::render_parts(&builtin, &req).unwrap();
}
