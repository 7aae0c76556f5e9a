//! A stand-in for the Argo Workflows controller, for tests (`mod argo;`): the test API server has
//! no Argo controller, so this one watches Workflows and writes their `.status` the way Argo
//! v3.6 does (`../shared/reference/argo-workflow-status.md`, copied facts below):
//!
//! - `phase` Running → Succeeded / Failed / Error, `startedAt`/`finishedAt`, `progress` `N/M`
//!   (completed / created pod nodes), `message` = the root node's message on failure,
//!   `conditions` (PodRunning, Completed) and `taskResultsCompletionStatus` once done;
//! - the `nodes` map: the `Steps` root (the workflow name), a `StepGroup` `<wf>[i]` per step and a
//!   `Pod` node `<wf>[i].<step>` with `templateName`, `phase`, `outputs.parameters`; node IDs are
//!   `<wf>-<FNV-32a(node name)>` in decimal; nodes after a failure are never created;
//! - with [`Script::compressed`], `compressedNodes` (base64 of gzip of the node map's JSON) and no
//!   `nodes`, as Argo stores large statuses;
//! - the labels `workflows.argoproj.io/phase` and `workflows.argoproj.io/completed`;
//! - with [`Script::unschedulable_at`], the step's pod node `Pending` with Argo's message for a
//!   pod no node can take (`Unschedulable: <the scheduler's message>`, as Argo's
//!   `getPendingReason` writes it), until a Node labelled [`RUNNER_LABEL`] exists on the
//!   cluster (the stand-in plays the scheduler too: the test API server has none);
//! - `spec.shutdown: Terminate` on a running Workflow ([`terminated`]): the Workflow and every
//!   node still running end `Failed` with the message `Stopped with strategy 'Terminate'`, and
//!   no later step is played.
//!
//! The Workflow CRD has no status subresource, so each write is a merge patch of the object (the
//! maps only grow, so a merge patch gives the same object as Argo's full update).
//!
//! Outcomes are scripted per Workflow ([`Script`]): success, failure or error at any step, a
//! Workflow-level error without nodes, deletion while a step runs, a missing `workload-cr`,
//! slow steps. [`frames`] is the pure timeline; [`start`] runs it against a cluster.
#![allow(dead_code)] // shared by several test crates; each uses its own part

use base64::Engine as _;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const STEPS: [&str; 4] = [
    "clone-step",
    "build-step",
    "push-step",
    "workload-create-step",
];
/// The git revision every build "clones" (8 hex digits, as clone-step writes them).
pub const REVISION: &str = "4f2a9c1e";
/// The registry the push step "pushes" to (the chart's default local registry).
pub const REGISTRY: &str = "localhost:30003";

/// The node label the templates' affinity requires (the chart's default), as `key=value`.
pub const RUNNER_LABEL: &str = "openchoreo.dev/noderole=workflow-runner";
/// The scheduler's message for a pod whose required node affinity no node matches.
pub const AFFINITY_UNMATCHED: &str =
    "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.";

/// How a Workflow ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeds; push-step outputs `image`, workload-create-step `workload-cr`.
    Succeed,
    /// The step's `main` container exits 1: the step, its group, the root and the Workflow Fail.
    FailAt(&'static str),
    /// The step's pod fails before `main` starts: phase Error all the way up.
    ErrorAt(&'static str),
    /// The Workflow errors before any node exists (e.g. a template that is not there).
    WorkflowError(String),
    /// The Workflow is deleted while the step runs.
    DeleteAt(&'static str),
    /// Success, but workload-create-step reports no `workload-cr` output.
    NoWorkloadCr,
}

/// What the stand-in does with one Workflow.
#[derive(Debug, Clone)]
pub struct Script {
    pub outcome: Outcome,
    /// Wait before each write (a slow step takes this long).
    pub step_time: Duration,
    /// Write `compressedNodes` instead of `nodes`.
    pub compressed: bool,
    /// Write only the final status, at once (a controller that completes builds instantly).
    pub instant: bool,
    /// This step's pod waits, unschedulable, until a Node labelled [`RUNNER_LABEL`] exists.
    pub unschedulable_at: Option<&'static str>,
}

impl Script {
    pub fn new(outcome: Outcome) -> Script {
        Script {
            outcome,
            step_time: Duration::from_millis(100),
            compressed: false,
            instant: false,
            unschedulable_at: None,
        }
    }
    pub fn succeed() -> Script {
        Script::new(Outcome::Succeed)
    }
    pub fn compressed(mut self) -> Script {
        self.compressed = true;
        self
    }
    pub fn slow(mut self, step_time: Duration) -> Script {
        self.step_time = step_time;
        self
    }
    pub fn unschedulable_at(mut self, step: &'static str) -> Script {
        self.unschedulable_at = Some(step);
        self
    }
    pub fn instant(mut self) -> Script {
        self.instant = true;
        self.step_time = Duration::ZERO;
        self
    }
}

/// One write of the timeline.
#[derive(Debug, Clone)]
pub enum Frame {
    /// Merge-patch these labels and this whole `.status` into the Workflow.
    Status { phase: String, status: Value },
    /// Delete the Workflow.
    Delete,
    /// Wait until a Node labelled [`RUNNER_LABEL`] exists (what the scheduler waits for).
    AwaitSchedulable,
}

/// FNV-32a, as Argo hashes node names into node IDs.
pub fn fnv32a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Argo's node ID for a node name of workflow `wf`.
pub fn node_id(wf: &str, node_name: &str) -> String {
    if node_name == wf {
        wf.to_owned()
    } else {
        format!("{wf}-{}", fnv32a(node_name))
    }
}

/// The Workflow's argument `name`, or "".
pub fn argument(wf: &Value, name: &str) -> String {
    wf.pointer("/spec/arguments/parameters")
        .and_then(Value::as_array)
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .and_then(|p| p["value"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// The image push-step reports for this Workflow: `<registry>/<image-name>:<image-tag>-<rev>`.
pub fn image_of(wf: &Value) -> String {
    format!(
        "{REGISTRY}/{}:{}-{REVISION}",
        argument(wf, "image-name"),
        argument(wf, "image-tag")
    )
}

/// The `workload-cr` output as the upstream `choreoctl create workload` writes it (lower-cased
/// owner keys, four-space indents).
pub fn workload_cr(wf: &Value) -> String {
    let (project, component) = (argument(wf, "project-name"), argument(wf, "component-name"));
    let image = image_of(wf);
    format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata:\n    name: {component}\n\
         spec:\n    owner:\n        projectname: {project}\n        componentname: {component}\n\
         \x20   containers:\n        main:\n            image: {image}\n            command: []\n\
         \x20           args: []\n            env: []\n    endpoints:\n        rest-api:\n\
         \x20           type: REST\n            port: 8080\n            schema: null\n"
    )
}

/// The status writes Argo would make for `wf` under `script`, in order, at times `now()`.
pub fn frames(wf: &Value, script: &Script, now: &dyn Fn() -> String) -> Vec<Frame> {
    let name = wf["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let started = now();
    if let Outcome::WorkflowError(message) = &script.outcome {
        let status = json!({"phase": "Error", "startedAt": started, "finishedAt": now(),
            "progress": "0/0", "message": message,
            "conditions": [{"type": "Completed", "status": "True"}]});
        return vec![Frame::Status {
            phase: "Error".into(),
            status,
        }];
    }
    let mut nodes = Map::new();
    nodes.insert(
        name.clone(),
        json!({"id": name, "name": name, "displayName": name, "type": "Steps",
            "templateName": "build-workflow", "templateScope": "local/", "phase": "Running",
            "startedAt": started, "children": []}),
    );
    let (mut created, mut completed) = (0usize, 0usize);
    let mut task_results = Map::new();
    let mut out = Vec::new();
    let mut previous_pod: Option<String> = None;
    let emit = |out: &mut Vec<Frame>, nodes: &Map<String, Value>, status: Value| {
        let mut status = status;
        if script.compressed {
            status["compressedNodes"] = json!(compress(&Value::Object(nodes.clone())));
        } else {
            status["nodes"] = Value::Object(nodes.clone());
        }
        let phase = status["phase"].as_str().unwrap_or("").to_owned();
        out.push(Frame::Status { phase, status });
    };
    for (i, step) in STEPS.iter().enumerate() {
        let group_name = format!("{name}[{i}]");
        let pod_name = format!("{group_name}.{step}");
        let (group_id, pod_id) = (node_id(&name, &group_name), node_id(&name, &pod_name));
        let t = now();
        nodes.insert(
            group_id.clone(),
            json!({"id": group_id, "name": group_name, "displayName": format!("[{i}]"),
                "type": "StepGroup", "templateScope": "local/", "phase": "Running",
                "boundaryID": name, "startedAt": t, "children": [pod_id]}),
        );
        let mut pod = json!({"id": pod_id, "name": pod_name, "displayName": step, "type": "Pod",
            "templateName": step, "templateScope": "local/", "phase": "Running",
            "boundaryID": name, "startedAt": t, "hostNodeName": "build-plane-worker"});
        pod["inputs"] = match *step {
            "clone-step" => Value::Null,
            "workload-create-step" => {
                json!({"parameters": [{"name": "image", "value": image_of(wf)}]})
            }
            _ => json!({"parameters": [{"name": "git-revision", "value": REVISION}]}),
        };
        if pod["inputs"].is_null() {
            pod.as_object_mut().expect("an object").remove("inputs");
        }
        nodes.insert(pod_id.clone(), pod);
        match &previous_pod {
            Some(prev) => nodes[prev]["children"] = json!([group_id]),
            None => nodes[&name]["children"] = json!([group_id]),
        }
        created += 1;
        let running = json!({"phase": "Running", "startedAt": started,
            "progress": format!("{completed}/{created}")});
        if script.unschedulable_at == Some(*step) {
            let pod = &mut nodes[&pod_id];
            pod["phase"] = json!("Pending");
            pod["message"] = json!(format!("Unschedulable: {AFFINITY_UNMATCHED}"));
            pod.as_object_mut()
                .expect("an object")
                .remove("hostNodeName");
            emit(&mut out, &nodes, running.clone());
            out.push(Frame::AwaitSchedulable);
            let pod = &mut nodes[&pod_id];
            pod.as_object_mut().expect("an object").remove("message");
            pod["phase"] = json!("Running");
            pod["hostNodeName"] = json!("build-plane-worker");
        }
        if !script.instant {
            emit(&mut out, &nodes, running.clone());
        }
        let failure = match &script.outcome {
            Outcome::DeleteAt(s) if s == step => {
                if script.instant {
                    emit(&mut out, &nodes, running);
                }
                out.push(Frame::Delete);
                return out;
            }
            Outcome::FailAt(s) if s == step => Some(("Failed", "Error (exit code 1)", "1")),
            Outcome::ErrorAt(s) if s == step => Some((
                "Error",
                "Pod failed before main container starts due to ErrImagePull: image not found",
                "",
            )),
            _ => None,
        };
        let t = now();
        task_results.insert(pod_id.clone(), json!(true));
        if let Some((phase, message, exit)) = failure {
            let child = format!("child '{pod_id}' failed");
            let pod = &mut nodes[&pod_id];
            pod["phase"] = json!(phase);
            pod["message"] = json!(message);
            pod["finishedAt"] = json!(t);
            if !exit.is_empty() {
                pod["outputs"] = json!({"exitCode": exit});
            }
            for id in [&group_id, &name] {
                let n = &mut nodes[id];
                n["phase"] = json!(phase);
                n["message"] = json!(child);
                n["finishedAt"] = json!(t);
            }
            nodes[&name]["outboundNodes"] = json!([pod_id]);
            let status = json!({"phase": phase, "startedAt": started, "finishedAt": t,
                "progress": format!("{completed}/{created}"), "message": child,
                "conditions": [{"type": "PodRunning", "status": "False"},
                               {"type": "Completed", "status": "True"}],
                "taskResultsCompletionStatus": task_results});
            emit(&mut out, &nodes, status);
            return out;
        }
        let outputs = match *step {
            "clone-step" => json!({"parameters": [{"name": "git-revision", "value": REVISION,
                "valueFrom": {"path": "/tmp/git-revision.txt"}}], "exitCode": "0"}),
            "push-step" => json!({"parameters": [{"name": "image", "value": image_of(wf),
                "valueFrom": {"path": "/tmp/image.txt"}}], "exitCode": "0"}),
            "workload-create-step" if script.outcome == Outcome::NoWorkloadCr => {
                json!({"exitCode": "0"})
            }
            "workload-create-step" => json!({"parameters": [{"name": "workload-cr",
                "value": workload_cr(wf), "valueFrom": {"path": "/mnt/vol/workload-cr.yaml"}}],
                "exitCode": "0"}),
            _ => json!({"exitCode": "0"}),
        };
        let pod = &mut nodes[&pod_id];
        pod["phase"] = json!("Succeeded");
        pod["finishedAt"] = json!(t);
        pod["outputs"] = outputs;
        let group = &mut nodes[&group_id];
        group["phase"] = json!("Succeeded");
        group["finishedAt"] = json!(t);
        completed += 1;
        previous_pod = Some(pod_id);
    }
    let t = now();
    let last = previous_pod.unwrap_or_default();
    let root = &mut nodes[&name];
    root["phase"] = json!("Succeeded");
    root["finishedAt"] = json!(t);
    root["outboundNodes"] = json!([last]);
    let status = json!({"phase": "Succeeded", "startedAt": started, "finishedAt": t,
        "progress": format!("{completed}/{created}"),
        "conditions": [{"type": "PodRunning", "status": "False"},
                       {"type": "Completed", "status": "True"}],
        "taskResultsCompletionStatus": task_results});
    emit(&mut out, &nodes, status);
    out
}

/// Argo's message for a Workflow (and its running nodes) stopped by `spec.shutdown`.
pub fn stopped_message(strategy: &str) -> String {
    format!("Stopped with strategy '{strategy}'")
}

/// The status Argo writes over `status` (the last one written, with `nodes`) when the
/// Workflow's `spec.shutdown` is `strategy`: the Workflow and each node not yet finished
/// `Failed` with [`stopped_message`], finished at `now`.
pub fn terminated(status: &Value, strategy: &str, now: &str) -> Value {
    let message = stopped_message(strategy);
    let mut out = status.clone();
    if let Some(nodes) = out.get_mut("nodes").and_then(Value::as_object_mut) {
        for node in nodes.values_mut() {
            if matches!(node["phase"].as_str(), Some("Running" | "Pending")) {
                node["phase"] = json!("Failed");
                node["message"] = json!(message);
                node["finishedAt"] = json!(now);
            }
        }
    }
    out["phase"] = json!("Failed");
    out["message"] = json!(message);
    out["finishedAt"] = json!(now);
    out["conditions"] = json!([{"type": "PodRunning", "status": "False"},
                               {"type": "Completed", "status": "True"}]);
    out
}

/// base64(gzip(JSON)), as Argo's `compressedNodes`.
pub fn compress(nodes: &Value) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(nodes.to_string().as_bytes())
        .expect("gzip to memory");
    base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip to memory"))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A running stand-in; stops when dropped.
pub struct Argo {
    runtime: Option<tokio::runtime::Runtime>,
    /// Errors the stand-in met writing statuses (a test may assert there were none).
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Workflows it took on, `namespace/name`, in order.
    pub handled: Arc<Mutex<Vec<String>>>,
    /// Workflows it stopped because their `spec.shutdown` was set, `namespace/name`, in order.
    pub terminated: Arc<Mutex<Vec<String>>>,
}

impl Drop for Argo {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn workflows() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Workflow".into(),
        plural: "workflows".into(),
    }
}

/// Starts playing Argo on the cluster of `kubeconfig` for Workflows in `namespaces` (all
/// namespaces when empty) that have no status yet: `script` says what happens to each (`None`:
/// leave it alone). Returns once its watches have listed, so Workflows created afterwards are
/// seen as events.
pub fn start(
    kubeconfig: &Path,
    namespaces: &[&str],
    script: impl Fn(&Value) -> Option<Script> + Send + Sync + 'static,
) -> Argo {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let client = runtime.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("a client config");
        kube::Client::try_from(config).expect("a client")
    });
    let apis: Vec<Api<DynamicObject>> = if namespaces.is_empty() {
        vec![Api::all_with(client.clone(), &workflows())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &workflows()))
            .collect()
    };
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let terminated = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(HashSet::<String>::new()));
    // UIDs of Workflows whose spec.shutdown is set, with the strategy: their play stops.
    let shutdown = Arc::new(Mutex::new(
        std::collections::HashMap::<String, String>::new(),
    ));
    let script = Arc::new(script);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    for api in apis {
        let (errors, handled, seen, script) = (
            errors.clone(),
            handled.clone(),
            seen.clone(),
            script.clone(),
        );
        let (terminated, shutdown) = (terminated.clone(), shutdown.clone());
        let ready = ready_tx.clone();
        let client = client.clone();
        runtime.spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let object = match event {
                    Ok(watcher::Event::InitDone) => {
                        let _ = ready.send(());
                        continue;
                    }
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    _ => continue,
                };
                let wf = serde_json::to_value(&object).expect("objects serialize");
                let uid = object.metadata.uid.clone().unwrap_or_default();
                if let Some(strategy) = wf.pointer("/spec/shutdown").and_then(Value::as_str) {
                    shutdown
                        .lock()
                        .unwrap()
                        .insert(uid.clone(), strategy.to_owned());
                }
                let has_status = wf.pointer("/status/phase").and_then(Value::as_str);
                if has_status.is_some_and(|p| !p.is_empty()) {
                    continue;
                }
                if !seen.lock().unwrap().insert(uid.clone()) {
                    continue;
                }
                let Some(script) = script(&wf) else { continue };
                let ns = object.metadata.namespace.clone().unwrap_or_default();
                let name = object.metadata.name.clone().unwrap_or_default();
                handled.lock().unwrap().push(format!("{ns}/{name}"));
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &ns, &workflows());
                let errors = errors.clone();
                let (terminated, shutdown) = (terminated.clone(), shutdown.clone());
                tokio::spawn(async move {
                    let stop = || shutdown.lock().unwrap().get(&uid).cloned();
                    match play(&api, &name, &wf, &script, &stop).await {
                        Ok(true) => terminated.lock().unwrap().push(format!("{ns}/{name}")),
                        Ok(false) => {}
                        Err(e) => errors.lock().unwrap().push(format!("{ns}/{name}: {e}")),
                    }
                });
            }
        });
    }
    drop(ready_tx);
    for _ in 0..(namespaces.len().max(1)) {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the Argo stand-in's watches listed");
    }
    Argo {
        runtime: Some(runtime),
        errors,
        handled,
        terminated,
    }
}

/// Writes `script`'s frames into Workflow `name`, one every `step_time`, until `stop` names a
/// shutdown strategy: then the terminated status, and `true`.
async fn play(
    api: &Api<DynamicObject>,
    name: &str,
    wf: &Value,
    script: &Script,
    stop: &(dyn Fn() -> Option<String> + Sync),
) -> Result<bool, kube::Error> {
    let mut last = json!({"phase": "Running"});
    for frame in frames(wf, script, &now_rfc3339) {
        let wake = tokio::time::Instant::now() + script.step_time;
        loop {
            if let Some(strategy) = stop() {
                let status = terminated(&last, &strategy, &now_rfc3339());
                write_status(api, name, "Failed", status).await?;
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= wake {
                break;
            }
            tokio::time::sleep((wake - now).min(Duration::from_millis(50))).await;
        }
        match frame {
            Frame::Delete => {
                api.delete(name, &DeleteParams::default()).await?;
            }
            Frame::AwaitSchedulable => {
                let nodes: Api<k8s_openapi::api::core::v1::Node> =
                    Api::all(api.clone().into_client());
                let selected = kube::api::ListParams::default().labels(RUNNER_LABEL);
                while nodes.list(&selected).await?.items.is_empty() {
                    if let Some(strategy) = stop() {
                        let status = terminated(&last, &strategy, &now_rfc3339());
                        write_status(api, name, "Failed", status).await?;
                        return Ok(true);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Frame::Status { phase, status } => {
                write_status(api, name, &phase, status.clone()).await?;
                last = status;
            }
        }
    }
    Ok(false)
}

/// Merge-patches `status` and the phase labels into Workflow `name`.
async fn write_status(
    api: &Api<DynamicObject>,
    name: &str,
    phase: &str,
    status: Value,
) -> Result<(), kube::Error> {
    let completed = matches!(phase, "Succeeded" | "Failed" | "Error");
    let patch = json!({
        "metadata": {
            "labels": {
                "workflows.argoproj.io/phase": phase,
                "workflows.argoproj.io/completed": completed.to_string(),
            },
            "annotations": {"workflows.argoproj.io/pod-name-format": "v2"},
        },
        "status": status,
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
