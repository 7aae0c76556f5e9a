//! What happens to one planned object, decided once for both `diff` and `apply`: the
//! submit-once rule for build objects, the no-request check for everything else.

use super::Planned;
use crate::core::plan::{self, BuildDecision};
use crate::engine;

/// What diff shows and apply does for one planned object, before any request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// No request: the inventory records this rendering and the live object still holds it,
    /// a shared object's first owner already holds every rendered field, or the build object
    /// was submitted for this spec already.
    Unchanged,
    /// Server-side apply (a dry run for diff): the object may differ from the live one.
    Apply,
    /// A build object never submitted for this spec: create it.
    Submit,
    /// A finished build object of an earlier spec has this name: delete it, then create.
    Replace,
    /// A build object of an earlier spec is still running: leave it and say so.
    Busy,
}

/// The one decision per planned object.
pub(super) fn decide(p: &Planned) -> Decision {
    if engine::is_build_object(&p.manifest.id) {
        return match decide_build(p) {
            BuildDecision::AlreadySubmitted => Decision::Unchanged,
            BuildDecision::Submit => Decision::Submit,
            BuildDecision::Replace => Decision::Replace,
            BuildDecision::Busy => Decision::Busy,
        };
    }
    match &p.live {
        Some(live)
            if plan::unchanged_without_request(&p.manifest, p.recorded.as_ref(), live)
                || plan::covered_by_first_owner(&p.manifest, &p.inventory, live) =>
        {
            Decision::Unchanged
        }
        _ => Decision::Apply,
    }
}

/// The submit-once rule for a planned build object: its rendered spec hash against its
/// inventory record and the live object as its engine reads it.
fn decide_build(p: &Planned) -> BuildDecision {
    let spec = engine::spec_hash_of(&p.manifest.object).unwrap_or_default();
    let recorded = p.recorded.as_ref().and_then(|e| e.spec_hash.as_deref());
    let live = match (engine::for_object(&p.manifest.id), &p.live) {
        (Some(e), Some(l)) => Some(engine::live_build(e, l)),
        _ => None,
    };
    plan::decide_build(spec, recorded, live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::manifest::Manifest;
    use crate::core::plan::{Stage, entry_for};
    use crate::core::spec::{Build, Origin};
    use crate::kube::Resource;
    use kube::discovery::ApiResource;
    use serde_json::{Value, json};

    /// A Build rendered by its engine: the build object the submit-once rule governs.
    fn build_object(branch: &str) -> Manifest {
        let build: Build = serde_json::from_value(json!({
            "metadata": {"name": "greeter", "namespace": "org"},
            "spec": {
                "owner": {"projectName": "p", "componentName": "c"},
                "repository": {"url": "https://git.example.com/r.git",
                               "revision": {"branch": branch}, "appPath": "/"},
                "templateRef": {"name": "docker"},
            },
        }))
        .unwrap();
        let origin = Origin {
            file: "greeter.yaml".into(),
            document: 1,
            documents: 1,
        };
        engine::for_build(&origin, &build)
            .unwrap()
            .build_object(&build)
    }

    fn config_map(value: &str) -> Manifest {
        Manifest::new(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "org"}, "data": {"a": value}}))
        .unwrap()
    }

    /// `m` as the server holds it, in the build phase `phase` (ignored by other kinds).
    fn live(m: &Manifest, phase: &str) -> Value {
        let mut v = m.object.clone();
        v["metadata"]["uid"] = json!("u");
        v["status"] = json!({"phase": phase});
        v
    }

    fn planned(m: &Manifest, recorded: Option<&Manifest>, live: Option<Value>) -> Planned {
        let spec_hash = |m: &Manifest| engine::spec_hash_of(&m.object).map(str::to_owned);
        Planned {
            manifest: m.clone(),
            inventory: "builds".into(),
            resource: Resource {
                api: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
                namespaced: true,
            },
            served: true,
            live,
            recorded: recorded.map(|r| entry_for(r, spec_hash(r))),
            stage: Stage::Workloads,
        }
    }

    #[test]
    fn each_object_gets_one_decision() {
        let (v1, v2) = (build_object("main"), build_object("next"));
        let engine = engine::for_object(&v1.id).unwrap();
        let (done, running) = (live(&v1, "Succeeded"), live(&v1, "Running"));
        assert!(engine.is_finished(&done) && !engine.is_finished(&running));
        let (cm, cm2) = (config_map("1"), config_map("2"));
        let cases: Vec<(&str, Planned, Decision)> = vec![
            (
                "never submitted",
                planned(&v1, None, None),
                Decision::Submit,
            ),
            (
                "submitted, since deleted",
                planned(&v1, Some(&v1), None),
                Decision::Unchanged,
            ),
            (
                "submitted, finished",
                planned(&v1, Some(&v1), Some(done.clone())),
                Decision::Unchanged,
            ),
            (
                "submitted, no record",
                planned(&v1, None, Some(running.clone())),
                Decision::Unchanged,
            ),
            (
                "changed spec, earlier one finished",
                planned(&v2, Some(&v1), Some(done)),
                Decision::Replace,
            ),
            (
                "changed spec, earlier one running",
                planned(&v2, Some(&v1), Some(running)),
                Decision::Busy,
            ),
            (
                "changed spec, earlier one deleted",
                planned(&v2, Some(&v1), None),
                Decision::Submit,
            ),
            (
                "object applied and untouched",
                planned(&cm, Some(&cm), Some(live(&cm, ""))),
                Decision::Unchanged,
            ),
            (
                "object changed",
                planned(&cm2, Some(&cm), Some(live(&cm, ""))),
                Decision::Apply,
            ),
            (
                "object changed by hand",
                planned(&cm, Some(&cm), Some(live(&cm2, ""))),
                Decision::Apply,
            ),
            ("object new", planned(&cm, None, None), Decision::Apply),
            (
                "object never recorded",
                planned(&cm, None, Some(live(&cm, ""))),
                Decision::Apply,
            ),
        ];
        for (case, p, want) in cases {
            assert_eq!(decide(&p), want, "{case}");
        }
    }
}
