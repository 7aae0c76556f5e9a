//! The Argo stand-in (tests/argo) writes what Argo writes: its timeline for the reading-list
//! Workflow is compared with the statuses recorded from the reference (fixtures/argo-status,
//! reference §3 and §4) field by field — node IDs (FNV-32a), names, display names, types,
//! templates, phases, parents and children, inputs and outputs, progress and messages.

mod argo;

use argo::{Frame, Outcome, Script};
use serde_json::{Value, json};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WF: &str = "reading-list-service-build-7c9e4a1b-8081ce9a";

fn workflow() -> Value {
    json!({
        "metadata": {"name": WF, "namespace": "openchoreo-ci-default"},
        "spec": {"arguments": {"parameters": [
            {"name": "project-name", "value": "default"},
            {"name": "component-name", "value": "reading-list-service"},
            {"name": "image-name", "value": "default-reading-list-service"},
            {"name": "image-tag", "value": "default"},
        ]}},
    })
}

fn recorded(fixture: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(fixture)).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    v["status"].clone()
}

fn final_status(script: &Script) -> (Vec<Frame>, Value) {
    let frames = argo::frames(&workflow(), script, &|| "2025-07-01T10:00:00Z".to_owned());
    let last = match frames.last() {
        Some(Frame::Status { status, .. }) => status.clone(),
        other => panic!("last frame {other:?}"),
    };
    (frames, last)
}

/// The fields of each node that Argo's algorithms decide (times and accounting left out).
fn shape(nodes: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (id, n) in nodes.as_object().unwrap() {
        let mut keep = serde_json::Map::new();
        for key in [
            "id",
            "name",
            "displayName",
            "type",
            "templateName",
            "phase",
            "boundaryID",
            "children",
            "outboundNodes",
            "message",
        ] {
            if let Some(v) = n.get(key) {
                keep.insert(key.into(), v.clone());
            }
        }
        let params = |side: &str| {
            n.pointer(&format!("/{side}/parameters"))
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| json!([p["name"], p["value"]]))
                        .collect::<Vec<_>>()
                })
        };
        keep.insert("inputs".into(), json!(params("inputs")));
        keep.insert("outputs".into(), json!(params("outputs")));
        keep.insert(
            "exitCode".into(),
            n.pointer("/outputs/exitCode").cloned().into(),
        );
        out.insert(id.clone(), Value::Object(keep));
    }
    Value::Object(out)
}

#[test]
fn a_success_matches_the_recorded_status() {
    let (frames, status) = final_status(&Script::succeed());
    let want = recorded("fixtures/argo-status/succeeded.yaml");
    assert_eq!(shape(&status["nodes"]), shape(&want["nodes"]));
    for key in [
        "phase",
        "progress",
        "conditions",
        "taskResultsCompletionStatus",
    ] {
        assert_eq!(status[key], want[key], "{key}");
    }
    // One write as each step starts, then the final one.
    assert_eq!(frames.len(), 5);
    let progress: Vec<&str> = frames
        .iter()
        .map(|f| match f {
            Frame::Status { status, .. } => status["progress"].as_str().unwrap(),
            Frame::Delete => "delete",
            Frame::AwaitSchedulable => "await",
        })
        .collect();
    assert_eq!(progress, ["0/1", "1/2", "2/3", "3/4", "4/4"]);
}

#[test]
fn a_build_step_failure_matches_the_recorded_status() {
    let (_, status) = final_status(&Script::new(Outcome::FailAt("build-step")));
    let want = recorded("fixtures/argo-status/build-step-failed.yaml");
    // The recorded example abridges some nodes' templateScope: compare what it states.
    assert_eq!(shape(&status["nodes"]), shape(&want["nodes"]));
    for key in ["phase", "progress", "message", "conditions"] {
        assert_eq!(status[key], want[key], "{key}");
    }
}

#[test]
fn compressed_nodes_hold_the_same_map() {
    let (_, plain) = final_status(&Script::succeed());
    let (_, packed) = final_status(&Script::succeed().compressed());
    assert!(packed.get("nodes").is_none());
    let wf = json!({"status": packed});
    let nodes = buildplane::engine::argo::status::nodes(&wf).unwrap();
    assert_eq!(nodes.len(), plain["nodes"].as_object().unwrap().len());
    let artifacts = buildplane::engine::argo::status::artifacts(&wf).unwrap();
    assert_eq!(
        artifacts.image.as_deref(),
        Some("localhost:30003/default-reading-list-service:default-4f2a9c1e")
    );
}

#[test]
fn scripted_endings() {
    let frames = argo::frames(
        &workflow(),
        &Script::new(Outcome::DeleteAt("push-step")),
        &|| "2025-07-01T10:00:00Z".to_owned(),
    );
    assert!(matches!(frames.last(), Some(Frame::Delete)));
    assert_eq!(frames.len(), 4, "clone, build, push running, then delete");
    let (_, s) = final_status(&Script::new(Outcome::ErrorAt("clone-step")));
    assert_eq!(s["phase"], "Error");
    assert_eq!(s["progress"], "0/1");
    let (frames, s) = final_status(&Script::new(Outcome::WorkflowError("no template".into())));
    assert_eq!(
        (frames.len(), &s["phase"], &s["message"]),
        (1, &json!("Error"), &json!("no template"))
    );
    assert!(s.get("nodes").is_none());
    let (_, s) = final_status(&Script::new(Outcome::NoWorkloadCr));
    let wf = json!({"status": s});
    let a = buildplane::engine::argo::status::artifacts(&wf).unwrap();
    assert!(a.image.is_some() && a.workload_cr.is_none());
    let (frames, _) = final_status(&Script::succeed().instant());
    assert_eq!(frames.len(), 1);
}

/// Argo's terminate (`spec.shutdown: Terminate`): the Workflow and each node still running end
/// Failed with Argo's message; finished nodes keep their phase.
#[test]
fn a_terminated_workflow_fails_with_argos_message() {
    let frames = argo::frames(&workflow(), &Script::succeed(), &|| {
        "2025-07-01T10:00:00Z".to_owned()
    });
    // The second write: clone-step succeeded, build-step running.
    let Frame::Status { status, .. } = &frames[1] else {
        panic!("{:?}", frames[1])
    };
    assert_eq!(status["phase"], "Running");
    let out = argo::terminated(status, "Terminate", "2025-07-01T10:05:00Z");
    assert_eq!(out["phase"], "Failed");
    assert_eq!(out["message"], "Stopped with strategy 'Terminate'");
    assert_eq!(out["finishedAt"], "2025-07-01T10:05:00Z");
    let phases: Vec<(String, String)> = out["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| {
            (
                n["displayName"].as_str().unwrap().to_owned(),
                n["phase"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(d, _)| d.ends_with("-step"))
        .collect();
    assert!(
        phases.contains(&("clone-step".into(), "Succeeded".into())),
        "{phases:?}"
    );
    assert!(
        phases.contains(&("build-step".into(), "Failed".into())),
        "{phases:?}"
    );
    assert!(
        out["nodes"]
            .as_object()
            .unwrap()
            .values()
            .filter(|n| n["phase"] == "Failed")
            .all(|n| n["message"] == "Stopped with strategy 'Terminate'")
    );
}

#[test]
fn an_unschedulable_step_waits_pending_with_argos_message_then_runs() {
    let script = Script::succeed().unschedulable_at("push-step");
    let (frames, last) = final_status(&script);
    // The pending write and the wait come before push-step's running write.
    let at = frames
        .iter()
        .position(|f| matches!(f, Frame::AwaitSchedulable))
        .expect("a wait for a node");
    let Frame::Status { status, .. } = &frames[at - 1] else {
        panic!("a status before the wait");
    };
    let pending = buildplane::engine::argo::status::unschedulable(&json!({"status": status}))
        .expect("the engine reads the pending pod node");
    assert_eq!(pending.step, "push-step");
    assert_eq!(pending.reason, argo::AFFINITY_UNMATCHED);
    assert_eq!(status["phase"], "Running");
    let Frame::Status { status, .. } = &frames[at + 1] else {
        panic!("a status after the wait");
    };
    assert_eq!(
        buildplane::engine::argo::status::unschedulable(&json!({"status": status})),
        None
    );
    // Otherwise the same timeline: the same final status as without the wait.
    assert_eq!(last, final_status(&Script::succeed()).1);
}
