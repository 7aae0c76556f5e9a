//! Reading an Argo Workflow as the API returns it (`serde_json::Value`): its phase, its nodes
//! (plain or compressed), per-step progress and the build's artifacts. Only the Argo engine
//! reads these fields; everything else sees [`crate::core::progress`]'s engine-neutral terms.
//!
//! Pure: the Workflow object and the current time are arguments.

use crate::core::progress::{Artifacts, MAX_UNSCHEDULABLE, Phase, Unschedulable};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use std::io::Read;

/// The build steps, in execution order (the step templates of every build template).
pub const STEPS: [&str; 4] = [CLONE_STEP, BUILD_STEP, PUSH_STEP, WORKLOAD_CREATE_STEP];
pub const CLONE_STEP: &str = "clone-step";
pub const BUILD_STEP: &str = "build-step";
/// The step whose output parameter [`IMAGE_OUTPUT`] names the pushed image.
pub const PUSH_STEP: &str = "push-step";
/// The step whose output parameter [`WORKLOAD_CR_OUTPUT`] carries the Workload YAML.
pub const WORKLOAD_CREATE_STEP: &str = "workload-create-step";
pub const IMAGE_OUTPUT: &str = "image";
/// clone-step's output: the commit checked out.
pub const REVISION_OUTPUT: &str = "git-revision";
pub const WORKLOAD_CR_OUTPUT: &str = "workload-cr";

/// The default largest decompressed `status.compressedNodes` accepted. A Workflow object is
/// limited by etcd to ~1.5 MiB and Argo compresses only what no longer fits, so real node maps
/// are a few MiB at most; this bounds what a gzip bomb can make a process allocate (about the
/// cap once: nodes are read one at a time into their compact form, never as one JSON tree).
pub const MAX_DECOMPRESSED_NODES: usize = 8 * 1024 * 1024;

static MAX_DECOMPRESSED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(MAX_DECOMPRESSED_NODES);

/// Sets the largest decompressed node map accepted (`--max-workflow-status`), for the process.
pub fn set_max_decompressed_nodes(bytes: usize) {
    MAX_DECOMPRESSED.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

fn max_decompressed_nodes() -> usize {
    MAX_DECOMPRESSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why a Workflow's nodes could not be read. Every message names the Workflow
/// (`namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// `status.nodes` (or the decompressed `status.compressedNodes`) is not a mapping of node ID
    /// to node.
    #[error("workflow {workflow}: {field} is not a mapping of node ID to node")]
    NodesNotAMap {
        workflow: String,
        field: &'static str,
    },
    /// One entry of the node map is not an object.
    #[error("workflow {workflow}: node {id} is not an object")]
    NodeNotAnObject { workflow: String, id: String },
    /// `status.compressedNodes` is not standard base64.
    #[error("workflow {workflow}: status.compressedNodes is not valid base64: {message}")]
    CompressedBase64 { workflow: String, message: String },
    /// The base64-decoded `status.compressedNodes` is not a gzip stream.
    #[error("workflow {workflow}: status.compressedNodes is not valid gzip: {message}")]
    CompressedGzip { workflow: String, message: String },
    /// `status.compressedNodes` decompresses to more than [`MAX_DECOMPRESSED_NODES`] bytes.
    #[error("workflow {workflow}: status.compressedNodes decompresses to more than {limit} bytes")]
    CompressedTooLarge { workflow: String, limit: usize },
    /// The decompressed `status.compressedNodes` is not JSON.
    #[error("workflow {workflow}: status.compressedNodes does not hold JSON: {message}")]
    CompressedJson { workflow: String, message: String },
    /// The node status was offloaded to Argo's persistence database
    /// (`status.offloadNodeStatusVersion`): the Kubernetes object alone does not carry it.
    #[error(
        "workflow {workflow}: node status is offloaded to Argo's database \
         (offloadNodeStatusVersion {version}); it cannot be read from the Workflow object"
    )]
    Offloaded { workflow: String, version: String },
}

/// The Workflow's overall state: the engine phase, Argo's raw `status.phase` and
/// `status.message` (upstream carries the message but never writes it into conditions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowStatus {
    pub phase: Phase,
    pub argo_phase: String,
    pub message: String,
}

/// Workflow phase mapping, exactly upstream's: `Running`, `Succeeded`, `Failed`/`Error` →
/// Failed, everything else (`""`, `Pending`, unknown values) → Unknown.
pub fn workflow_phase(argo_phase: &str) -> Phase {
    match argo_phase {
        "Running" => Phase::Running,
        "Succeeded" => Phase::Succeeded,
        "Failed" | "Error" => Phase::Failed,
        _ => Phase::Unknown,
    }
}

/// Node phase mapping for step display: `Pending`, `Running`, `Succeeded`, `Failed`/`Error`
/// → Failed; `Skipped`, `Omitted` and anything else → Unknown (the raw phase is on the node).
pub fn node_phase(node_phase: &str) -> Phase {
    match node_phase {
        "Pending" => Phase::Pending,
        "Running" => Phase::Running,
        "Succeeded" => Phase::Succeeded,
        "Failed" | "Error" => Phase::Failed,
        _ => Phase::Unknown,
    }
}

/// Reads `status.phase` and `status.message`; both are `""` when absent.
pub fn status(wf: &Value) -> WorkflowStatus {
    let argo_phase = str_at(wf, "/status/phase").to_owned();
    WorkflowStatus {
        phase: workflow_phase(&argo_phase),
        message: str_at(wf, "/status/message").to_owned(),
        argo_phase,
    }
}

/// How Argo words a pod node no node can take: its message is the pod's `PodScheduled`
/// condition, `Unschedulable: <the scheduler's message>` (`getPendingReason` in Argo's
/// `workflow/controller/operator.go`).
const UNSCHEDULABLE: &str = "Unschedulable";

/// The step whose pod node is Pending because nothing can schedule its pod, with the
/// scheduler's reason (cut to `MAX_UNSCHEDULABLE` bytes); the earliest such step when there are
/// several.
pub fn unschedulable_from(nodes: &[Node]) -> Option<Unschedulable> {
    let node = nodes
        .iter()
        .filter(|n| n.node_type == "Pod" && n.phase == "Pending")
        .filter(|n| {
            n.message == UNSCHEDULABLE || n.message.starts_with(&format!("{UNSCHEDULABLE}: "))
        })
        .min_by(|a, b| a.name.cmp(&b.name))?;
    let reason = node.message[UNSCHEDULABLE.len()..].trim_start_matches(": ");
    let mut cut = reason.len().min(MAX_UNSCHEDULABLE);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let step = if node.template_name.is_empty() {
        node.display_name.clone()
    } else {
        node.template_name.clone()
    };
    Some(Unschedulable {
        step,
        reason: reason[..cut].to_owned(),
    })
}

/// [`unschedulable_from`] of a Workflow; `None` when its nodes cannot be read.
pub fn unschedulable(wf: &Value) -> Option<Unschedulable> {
    unschedulable_from(&nodes(wf).ok()?)
}

/// One entry of the Workflow's node map. Absent strings are `""`; absent times are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `Pod`, `Steps`, `StepGroup`, `Retry`, …
    pub node_type: String,
    pub template_name: String,
    /// Argo's raw node phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Error`, …).
    pub phase: String,
    pub message: String,
    /// RFC 3339 (Argo writes UTC, `…Z`, whole seconds, so these compare as strings).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Output parameters `(name, value)` in declared order; `None` when no value was captured.
    pub outputs: Vec<(String, Option<String>)>,
}

impl Node {
    /// The value of output parameter `name`, if the node has one.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn from_value(id: &str, v: &Value) -> Option<Node> {
        let obj = v.as_object()?;
        let text = |key: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let time = |key: &str| {
            obj.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let outputs = v
            .pointer("/outputs/parameters")
            .and_then(Value::as_array)
            .map(|params| {
                params
                    .iter()
                    .filter_map(|p| {
                        let name = p.get("name")?.as_str()?.to_owned();
                        // Argo's AnyString: always a string on the wire, but tolerate scalars.
                        let value = match p.get("value") {
                            Some(Value::String(s)) => Some(s.clone()),
                            Some(Value::Number(n)) => Some(n.to_string()),
                            Some(Value::Bool(b)) => Some(b.to_string()),
                            _ => None,
                        };
                        Some((name, value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let id_field = text("id");
        Some(Node {
            id: if id_field.is_empty() {
                id.to_owned()
            } else {
                id_field
            },
            name: text("name"),
            display_name: text("displayName"),
            node_type: text("type"),
            template_name: text("templateName"),
            phase: text("phase"),
            message: text("message"),
            started_at: time("startedAt"),
            finished_at: time("finishedAt"),
            outputs,
        })
    }
}

/// The fields of `status` that anything here reads ([`nodes`], [`Node`], the phase and
/// conditions, the times and message); `compressedNodes` and `offloadNodeStatusVersion` stay.
const STATUS_READ: [&str; 8] = [
    "phase",
    "message",
    "startedAt",
    "finishedAt",
    "conditions",
    "nodes",
    "compressedNodes",
    "offloadNodeStatusVersion",
];

/// The fields of a node [`Node::from_value`] reads.
const NODE_READ: [&str; 9] = [
    "id",
    "name",
    "displayName",
    "type",
    "templateName",
    "phase",
    "message",
    "startedAt",
    "finishedAt",
];

/// Reduces a Workflow (the object, or a `DynamicObject`'s data) to what is read of it, for a
/// cache that holds thousands: the status keeps [`STATUS_READ`], each node [`NODE_READ`] and
/// its output parameters' names and values. Argo's `storedTemplates`,
/// `storedWorkflowTemplateSpec`, resource durations and each node's inputs, children and pod
/// details go. Everything this module derives from the Workflow is the same before and after.
pub fn strip_for_cache(wf: &mut Value) {
    let Some(status) = wf.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    status.retain(|k, _| STATUS_READ.contains(&k.as_str()));
    let Some(nodes) = status.get_mut("nodes").and_then(Value::as_object_mut) else {
        return;
    };
    for node in nodes.values_mut() {
        let Some(obj) = node.as_object_mut() else {
            continue;
        };
        let outputs = obj
            .get_mut("outputs")
            .and_then(|o| o.get_mut("parameters"))
            .map(Value::take);
        obj.retain(|k, _| NODE_READ.contains(&k.as_str()));
        if let Some(Value::Array(mut params)) = outputs {
            for p in &mut params {
                if let Some(p) = p.as_object_mut() {
                    p.retain(|k, _| k == "name" || k == "value");
                }
            }
            obj.insert(
                "outputs".into(),
                serde_json::json!({ "parameters": params }),
            );
        }
    }
}

/// `namespace/name` of the Workflow, for messages.
pub fn workflow_ref(wf: &Value) -> String {
    let name = str_at(wf, "/metadata/name");
    let name = if name.is_empty() { "<unnamed>" } else { name };
    match str_at(wf, "/metadata/namespace") {
        "" => name.to_owned(),
        ns => format!("{ns}/{name}"),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The Workflow's nodes, sorted by node ID.
///
/// Read from `status.nodes`; when that is empty or absent and `status.compressedNodes` is set,
/// from that (Argo's `CompressEncodeString`: the JSON node map, gzip-compressed, then standard
/// base64). No nodes at all is an empty list (a Workflow Argo has not picked up yet), unless
/// `status.offloadNodeStatusVersion` says they were offloaded, which is an error: they live in
/// Argo's database, not in the object.
pub fn nodes(wf: &Value) -> Result<Vec<Node>, WorkflowError> {
    let workflow = || workflow_ref(wf);
    let plain = wf.pointer("/status/nodes");
    let plain_map = match plain {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(WorkflowError::NodesNotAMap {
                workflow: workflow(),
                field: "status.nodes",
            });
        }
    };
    if let Some(map) = plain_map.filter(|m| !m.is_empty()) {
        return collect_nodes(map, &workflow);
    }
    let compressed = str_at(wf, "/status/compressedNodes");
    if !compressed.is_empty() {
        let decoded = decompress_nodes(compressed, max_decompressed_nodes(), &workflow)?;
        if let Some(id) = decoded.not_an_object {
            return Err(WorkflowError::NodeNotAnObject {
                workflow: workflow(),
                id,
            });
        }
        let mut out = decoded.nodes;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        return Ok(out);
    }
    let offloaded = str_at(wf, "/status/offloadNodeStatusVersion");
    if !offloaded.is_empty() {
        return Err(WorkflowError::Offloaded {
            workflow: workflow(),
            version: offloaded.to_owned(),
        });
    }
    Ok(Vec::new())
}

fn collect_nodes(
    map: &serde_json::Map<String, Value>,
    workflow: &dyn Fn() -> String,
) -> Result<Vec<Node>, WorkflowError> {
    let mut out = Vec::with_capacity(map.len());
    for (id, v) in map {
        let node = Node::from_value(id, v).ok_or_else(|| WorkflowError::NodeNotAnObject {
            workflow: workflow(),
            id: id.clone(),
        })?;
        out.push(node);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A node map read entry by entry: each node's JSON is dropped as soon as it is a [`Node`].
#[derive(Debug)]
struct NodeMap {
    nodes: Vec<Node>,
    /// The first entry that is not an object.
    not_an_object: Option<String>,
}

impl<'de> serde::Deserialize<'de> for NodeMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = NodeMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of node ID to node")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<NodeMap, A::Error> {
                let mut out = NodeMap {
                    nodes: Vec::new(),
                    not_an_object: None,
                };
                while let Some((id, v)) = m.next_entry::<String, Value>()? {
                    match Node::from_value(&id, &v) {
                        Some(n) => out.nodes.push(n),
                        None => {
                            out.not_an_object.get_or_insert(id);
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Entries)
    }
}

fn decompress_nodes(
    text: &str,
    limit: usize,
    workflow: &dyn Fn() -> String,
) -> Result<NodeMap, WorkflowError> {
    // Argo writes one unwrapped line; tolerate line breaks a copy/paste or a tool may add.
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| WorkflowError::CompressedBase64 {
            workflow: workflow(),
            message: e.to_string(),
        })?;
    let mut json = Vec::new();
    // Go's gzip reader reads concatenated members too, hence the multi-member decoder.
    flate2::read::MultiGzDecoder::new(gz.as_slice())
        .take(limit as u64 + 1)
        .read_to_end(&mut json)
        .map_err(|e| WorkflowError::CompressedGzip {
            workflow: workflow(),
            message: e.to_string(),
        })?;
    if json.len() > limit {
        return Err(WorkflowError::CompressedTooLarge {
            workflow: workflow(),
            limit,
        });
    }
    serde_json::from_slice(&json).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => WorkflowError::NodesNotAMap {
            workflow: workflow(),
            field: "status.compressedNodes",
        },
        _ => WorkflowError::CompressedJson {
            workflow: workflow(),
            message: e.to_string(),
        },
    })
}

/// The trailing retry index of a node name (`…push-step(2)` → 2).
fn attempt_index(name: &str) -> Option<u64> {
    name.strip_suffix(')')
        .and_then(|r| r.rsplit_once('('))
        .and_then(|(_, n)| n.parse().ok())
}

/// The pod node of the **last** attempt of step template `template`, and how many pod nodes
/// ran it. Only `Pod` nodes count (a `Retry` parent is not an attempt). "Last" is the greatest
/// `(startedAt, finishedAt (unfinished = latest), retry index, name)`: an attempt starts after the
/// previous one ended, so the map's order (upstream's "first match", weakness 9) never decides.
pub fn last_attempt<'a>(nodes: &'a [Node], template: &str) -> Option<(&'a Node, usize)> {
    let attempts: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.node_type == "Pod" && n.template_name == template)
        .collect();
    let last = attempts.iter().copied().max_by(|a, b| {
        let key = |n: &'a Node| {
            (
                n.started_at.as_deref(),
                // None (still running) sorts after every finish time.
                n.finished_at.as_deref().map_or((1, ""), |t| (0, t)),
                attempt_index(&n.name),
                n.name.as_str(),
            )
        };
        key(a).cmp(&key(b))
    })?;
    Some((last, attempts.len()))
}

/// Display state of one build step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepStatus {
    /// `clone-step`, `build-step`, `push-step` or `workload-create-step`.
    pub step: &'static str,
    /// `Pending` while the step has no node (not reached yet, or never will be after a failure).
    pub phase: Phase,
    /// The pod node of the last attempt.
    pub node: Option<Node>,
    /// Pod nodes that ran this step (more than 1 with retries).
    pub attempts: usize,
}

/// The four steps in order, from already-read nodes.
pub fn steps_from(nodes: &[Node]) -> Vec<StepStatus> {
    STEPS
        .iter()
        .map(|&step| match last_attempt(nodes, step) {
            Some((node, attempts)) => StepStatus {
                step,
                phase: node_phase(&node.phase),
                node: Some(node.clone()),
                attempts,
            },
            None => StepStatus {
                step,
                phase: Phase::Pending,
                node: None,
                attempts: 0,
            },
        })
        .collect()
}

/// The four steps in order (see [`steps_from`]). Fails only when the nodes cannot be read
/// (compressed data broken, status offloaded): showing every step as Pending then would lie.
pub fn steps(wf: &Value) -> Result<Vec<StepStatus>, WorkflowError> {
    Ok(steps_from(&nodes(wf)?))
}

/// Harvests the artifacts from already-read nodes. Unlike upstream, the `push-step` node must
/// have Succeeded too (upstream takes `image` from whichever node matches first, whatever its
/// phase). Missing nodes, outputs or values, and blank values, give `None`.
pub fn artifacts_from(nodes: &[Node]) -> Artifacts {
    let succeeded_output = |template: &str, output: &str| {
        last_attempt(nodes, template)
            .filter(|(n, _)| n.phase == "Succeeded")
            .and_then(|(n, _)| n.output(output))
            .filter(|v| !v.trim().is_empty())
    };
    Artifacts {
        image: succeeded_output(PUSH_STEP, IMAGE_OUTPUT).map(|s| s.trim().to_owned()),
        workload_cr: succeeded_output(WORKLOAD_CREATE_STEP, WORKLOAD_CR_OUTPUT).map(str::to_owned),
        revision: succeeded_output(CLONE_STEP, REVISION_OUTPUT).map(|s| s.trim().to_owned()),
    }
}

/// Harvests the artifacts of a Workflow (see [`artifacts_from`]).
pub fn artifacts(wf: &Value) -> Result<Artifacts, WorkflowError> {
    Ok(artifacts_from(&nodes(wf)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    const WF: &str = "reading-list-service-build-7c9e4a1b-8081ce9a";
    const IMAGE: &str = "localhost:30003/default-reading-list-service:default-4f2a9c1e";

    fn fixture(name: &str) -> Value {
        let text = match name {
            "succeeded" => include_str!("../../../fixtures/argo-status/succeeded.yaml"),
            "failed" => include_str!("../../../fixtures/argo-status/build-step-failed.yaml"),
            _ => unreachable!(),
        };
        serde_saphyr::from_str(text).unwrap()
    }

    fn node_mut<'a>(wf: &'a mut Value, id_suffix: &str) -> &'a mut Value {
        wf.pointer_mut(&format!("/status/nodes/{WF}-{id_suffix}"))
            .unwrap()
    }

    fn compress(nodes: &Value) -> String {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(serde_json::to_string(nodes).unwrap().as_bytes())
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap())
    }

    fn phases(steps: &[StepStatus]) -> Vec<(&'static str, Phase)> {
        steps.iter().map(|s| (s.step, s.phase)).collect()
    }

    fn pod(name: &str, template: &str, phase: &str, message: &str) -> Node {
        Node {
            id: name.to_owned(),
            name: name.to_owned(),
            display_name: template.to_owned(),
            node_type: "Pod".to_owned(),
            template_name: template.to_owned(),
            phase: phase.to_owned(),
            message: message.to_owned(),
            started_at: None,
            finished_at: None,
            outputs: Vec::new(),
        }
    }

    #[test]
    fn a_workflow_stripped_for_the_cache_reads_the_same() {
        for name in ["succeeded", "failed"] {
            let mut wf = fixture(name);
            // What real Argo adds and nothing reads.
            wf["status"]["storedWorkflowTemplateSpec"] = json!({"templates": [{"name": "x"}]});
            wf["status"]["resourcesDuration"] = json!({"cpu": 3});
            let mut stripped = wf.clone();
            strip_for_cache(&mut stripped);
            assert!(
                serde_json::to_string(&stripped).unwrap().len()
                    < serde_json::to_string(&wf).unwrap().len() * 3 / 4,
                "{name}: at least a quarter smaller"
            );
            assert!(
                stripped["status"]
                    .get("storedWorkflowTemplateSpec")
                    .is_none()
            );
            assert_eq!(nodes(&stripped).unwrap(), nodes(&wf).unwrap(), "{name}");
            assert_eq!(status(&stripped), status(&wf), "{name}");
            assert_eq!(steps(&stripped).unwrap(), steps(&wf).unwrap(), "{name}");
            assert_eq!(
                artifacts(&stripped).unwrap(),
                artifacts(&wf).unwrap(),
                "{name}"
            );
            assert_eq!(unschedulable(&stripped), unschedulable(&wf), "{name}");
            assert_eq!(stripped["spec"], wf["spec"]);
            assert_eq!(stripped["metadata"], wf["metadata"]);
        }
        // Compressed nodes stay as they are.
        let mut wf = fixture("succeeded");
        let map = wf["status"]["nodes"].take();
        wf["status"]["compressedNodes"] = json!(compress(&map));
        let mut stripped = wf.clone();
        strip_for_cache(&mut stripped);
        assert_eq!(nodes(&stripped).unwrap(), nodes(&wf).unwrap());
    }

    #[test]
    fn an_unschedulable_pod_node_is_named_with_the_schedulers_reason() {
        let affinity =
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
        let nodes = vec![
            pod("wf[0].clone-step", "clone-step", "Succeeded", ""),
            // Pending for another reason (an image pull): not unschedulable.
            pod(
                "wf[1].build-step",
                "build-step",
                "Pending",
                "ErrImagePull: not found",
            ),
            pod(
                "wf[2].push-step",
                "push-step",
                "Pending",
                &format!("Unschedulable: {affinity}"),
            ),
        ];
        let u = unschedulable_from(&nodes).unwrap();
        assert_eq!(
            (u.step.as_str(), u.reason.as_str()),
            ("push-step", affinity)
        );
        // Scheduled: nothing to say.
        let mut running = nodes.clone();
        running[2].phase = "Running".into();
        assert_eq!(unschedulable_from(&running), None);
        // A message of another shape that merely starts with the word is not Argo's.
        let lookalike = vec![pod(
            "wf[0].clone-step",
            "clone-step",
            "Pending",
            "Unschedulablex",
        )];
        assert_eq!(unschedulable_from(&lookalike), None);
        // The bare reason, and a reason too long: cut on a character boundary.
        let bare = vec![pod(
            "wf[0].clone-step",
            "clone-step",
            "Pending",
            "Unschedulable",
        )];
        assert_eq!(unschedulable_from(&bare).unwrap().reason, "");
        let long = format!("Unschedulable: {}", "é".repeat(MAX_UNSCHEDULABLE));
        let cut = unschedulable_from(&[pod("n", "clone-step", "Pending", &long)]).unwrap();
        assert!(cut.reason.len() <= MAX_UNSCHEDULABLE && cut.reason.len() >= MAX_UNSCHEDULABLE - 1);
        assert!(cut.reason.chars().all(|c| c == 'é'));
    }

    #[test]
    fn phase_mapping_is_upstreams() {
        let table = [
            ("Running", Phase::Running),
            ("Succeeded", Phase::Succeeded),
            ("Failed", Phase::Failed),
            ("Error", Phase::Failed),
            ("", Phase::Unknown),
            ("Pending", Phase::Unknown),
            ("Omitted", Phase::Unknown),
            ("running", Phase::Unknown),
        ];
        for (argo, want) in table {
            assert_eq!(workflow_phase(argo), want, "{argo:?}");
            let wf = json!({"status": {"phase": argo}});
            assert_eq!(status(&wf).phase, want, "{argo:?}");
            assert_eq!(status(&wf).argo_phase, argo);
        }
        assert_eq!(node_phase("Pending"), Phase::Pending);
        assert_eq!(node_phase("Error"), Phase::Failed);
        assert_eq!(node_phase("Skipped"), Phase::Unknown);

        let none = status(&json!({"metadata": {"name": "x"}}));
        assert_eq!((none.phase, none.argo_phase.as_str()), (Phase::Unknown, ""));
        let failed = status(&fixture("failed"));
        assert_eq!(failed.phase, Phase::Failed);
        assert_eq!(
            failed.message,
            format!("child '{WF}-2756791800' failed"),
            "status.message is carried"
        );
    }

    #[test]
    fn nodes_read_every_field() {
        let nodes = nodes(&fixture("succeeded")).unwrap();
        assert_eq!(nodes.len(), 9);
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "sorted by id");
        let push = nodes
            .iter()
            .find(|n| n.id == format!("{WF}-671376837"))
            .unwrap();
        assert_eq!(
            push,
            &Node {
                id: format!("{WF}-671376837"),
                name: format!("{WF}[2].push-step"),
                display_name: "push-step".into(),
                node_type: "Pod".into(),
                template_name: "push-step".into(),
                phase: "Succeeded".into(),
                message: String::new(),
                started_at: Some("2025-07-01T10:04:33Z".into()),
                finished_at: Some("2025-07-01T10:04:50Z".into()),
                outputs: vec![("image".into(), Some(IMAGE.into()))],
            }
        );
        let group = nodes.iter().find(|n| n.display_name == "[1]").unwrap();
        assert_eq!(
            (group.node_type.as_str(), group.template_name.as_str()),
            ("StepGroup", "")
        );
        assert_eq!(group.started_at, None);
        assert!(group.outputs.is_empty());
    }

    #[test]
    fn steps_of_a_successful_build() {
        let steps = steps(&fixture("succeeded")).unwrap();
        assert_eq!(
            phases(&steps),
            vec![
                ("clone-step", Phase::Succeeded),
                ("build-step", Phase::Succeeded),
                ("push-step", Phase::Succeeded),
                ("workload-create-step", Phase::Succeeded),
            ]
        );
        assert_eq!(
            steps[3].node.as_ref().unwrap().name,
            format!("{WF}[3].workload-create-step")
        );
        assert!(steps.iter().all(|s| s.attempts == 1));
    }

    #[test]
    fn steps_after_a_build_step_failure() {
        let steps = steps(&fixture("failed")).unwrap();
        assert_eq!(
            phases(&steps),
            vec![
                ("clone-step", Phase::Succeeded),
                ("build-step", Phase::Failed),
                ("push-step", Phase::Pending),
                ("workload-create-step", Phase::Pending),
            ]
        );
        assert_eq!(
            steps[1].node.as_ref().unwrap().message,
            "Error (exit code 1)"
        );
        assert_eq!((steps[2].node.is_none(), steps[2].attempts), (true, 0));
        assert!(steps[3].node.is_none());
    }

    #[test]
    fn steps_of_a_workflow_argo_has_not_picked_up() {
        let wf = json!({"metadata": {"name": WF, "namespace": "ns"}});
        let steps = steps(&wf).unwrap();
        assert_eq!(steps.len(), 4);
        assert!(steps.iter().all(|s| s.phase == Phase::Pending));
        assert_eq!(artifacts(&wf).unwrap(), Artifacts::default());
    }

    #[test]
    fn artifacts_of_the_successful_build() {
        let a = artifacts(&fixture("succeeded")).unwrap();
        assert_eq!(a.image.as_deref(), Some(IMAGE));
        let cr = a.workload_cr.unwrap();
        assert!(
            cr.starts_with("apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata:\n    name: reading-list-service\n"),
            "{cr}"
        );
        assert!(cr.ends_with("schema: null\n"), "{cr}");
    }

    #[test]
    fn no_artifacts_from_the_failed_build() {
        // Only what the succeeded clone step reported: the revision it checked out.
        let want = Artifacts {
            revision: Some("4f2a9c1e".into()),
            ..Artifacts::default()
        };
        assert_eq!(artifacts(&fixture("failed")).unwrap(), want);
    }

    #[test]
    fn a_failed_push_step_yields_no_image() {
        let mut wf = fixture("succeeded");
        node_mut(&mut wf, "671376837")["phase"] = json!("Failed");
        let a = artifacts(&wf).unwrap();
        assert_eq!(a.image, None, "upstream would take the image anyway");
        assert!(
            a.workload_cr.is_some(),
            "the workload step is judged on its own"
        );

        let mut wf = fixture("succeeded");
        node_mut(&mut wf, "469456046")["phase"] = json!("Error");
        let a = artifacts(&wf).unwrap();
        assert_eq!((a.image.as_deref(), a.workload_cr), (Some(IMAGE), None));
    }

    #[test]
    fn missing_outputs_and_values_do_not_panic() {
        let mut wf = fixture("succeeded");
        node_mut(&mut wf, "671376837")
            .as_object_mut()
            .unwrap()
            .remove("outputs");
        node_mut(&mut wf, "469456046")["outputs"] =
            json!({"parameters": [{"name": "workload-cr"}, {"value": "x"}, 7]});
        node_mut(&mut wf, "3628270336")["outputs"] =
            json!({"parameters": [{"name": "git-revision"}]});
        assert_eq!(artifacts(&wf).unwrap(), Artifacts::default());

        let mut wf = fixture("succeeded");
        node_mut(&mut wf, "671376837")["outputs"] =
            json!({"parameters": [{"name": "image", "value": "  \n"}]});
        node_mut(&mut wf, "469456046")["outputs"] = json!({"parameters": null});
        node_mut(&mut wf, "3628270336")["outputs"] =
            json!({"parameters": [{"name": "git-revision", "value": " "}]});
        assert_eq!(artifacts(&wf).unwrap(), Artifacts::default());

        let mut wf = fixture("succeeded");
        node_mut(&mut wf, "671376837")["outputs"] =
            json!({"parameters": [{"name": "image", "value": format!("{IMAGE}\n")}]});
        assert_eq!(artifacts(&wf).unwrap().image.as_deref(), Some(IMAGE));
    }

    #[test]
    fn compressed_nodes_give_identical_results() {
        for name in ["succeeded", "failed"] {
            let plain = fixture(name);
            let mut wf = plain.clone();
            let status = wf["status"].as_object_mut().unwrap();
            let map = status.remove("nodes").unwrap();
            status.insert("compressedNodes".into(), json!(compress(&map)));
            assert_eq!(nodes(&wf).unwrap(), nodes(&plain).unwrap(), "{name}");
            assert_eq!(steps(&wf).unwrap(), steps(&plain).unwrap(), "{name}");
            assert_eq!(
                artifacts(&wf).unwrap(),
                artifacts(&plain).unwrap(),
                "{name}"
            );

            // Argo leaves `nodes` empty (or null) next to compressedNodes.
            for empty in [json!({}), Value::Null] {
                wf["status"]["nodes"] = empty;
                assert_eq!(nodes(&wf).unwrap(), nodes(&plain).unwrap(), "{name}");
            }
        }
        let a = artifacts(&{
            let mut wf = fixture("succeeded");
            let map = wf["status"]
                .as_object_mut()
                .unwrap()
                .remove("nodes")
                .unwrap();
            wf["status"]["compressedNodes"] = json!(compress(&map));
            wf
        })
        .unwrap();
        assert_eq!(a.image.as_deref(), Some(IMAGE));
    }

    #[test]
    fn broken_or_offloaded_nodes_are_errors_naming_the_workflow() {
        let base = json!({"metadata": {"name": WF, "namespace": "openchoreo-ci-default"}});
        let with = |status: Value| {
            let mut wf = base.clone();
            wf["status"] = status;
            wf
        };
        let who = format!("openchoreo-ci-default/{WF}");

        let e = nodes(&with(json!({"offloadNodeStatusVersion": "fnv:123"}))).unwrap_err();
        assert!(matches!(e, WorkflowError::Offloaded { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&who) && e.to_string().contains("fnv:123"),
            "{e}"
        );
        assert!(steps(&with(json!({"offloadNodeStatusVersion": "v"}))).is_err());
        assert!(artifacts(&with(json!({"offloadNodeStatusVersion": "v"}))).is_err());

        let e = nodes(&with(json!({"compressedNodes": "not base64!"}))).unwrap_err();
        assert!(matches!(e, WorkflowError::CompressedBase64 { .. }), "{e:?}");
        assert!(e.to_string().contains(&who), "{e}");

        let not_gzip = base64::engine::general_purpose::STANDARD.encode(b"{}");
        let e = nodes(&with(json!({"compressedNodes": not_gzip}))).unwrap_err();
        assert!(matches!(e, WorkflowError::CompressedGzip { .. }), "{e:?}");

        let e = nodes(&with(json!({"compressedNodes": compress(&json!([1]))}))).unwrap_err();
        assert!(matches!(e, WorkflowError::NodesNotAMap { .. }), "{e:?}");

        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"{not json").unwrap();
        let bad_json = base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap());
        let e = nodes(&with(json!({"compressedNodes": bad_json}))).unwrap_err();
        assert!(matches!(e, WorkflowError::CompressedJson { .. }), "{e:?}");

        let e = nodes(&with(json!({"nodes": [1]}))).unwrap_err();
        assert!(matches!(e, WorkflowError::NodesNotAMap { .. }), "{e:?}");
        let e = nodes(&with(json!({"nodes": {"a": 1}}))).unwrap_err();
        assert_eq!(
            e,
            WorkflowError::NodeNotAnObject {
                workflow: who.clone(),
                id: "a".into()
            }
        );

        // Plain nodes win over an offload marker.
        let mut wf = fixture("succeeded");
        wf["status"]["offloadNodeStatusVersion"] = json!("v");
        assert_eq!(nodes(&wf).unwrap().len(), 9);
    }

    #[test]
    fn decompression_is_bounded() {
        let text = compress(&json!({"a": " ".repeat(5000)}));
        let who = || "ns/wf".to_owned();
        assert!(decompress_nodes(&text, 6000, &who).is_ok());
        let e = decompress_nodes(&text, 4096, &who).unwrap_err();
        assert_eq!(
            e,
            WorkflowError::CompressedTooLarge {
                workflow: "ns/wf".into(),
                limit: 4096
            }
        );
    }

    /// The success fixture with push-step retried: attempt (0) failed with another image, the
    /// original node becomes attempt (1). The failed attempt's ID sorts after the good one's and
    /// is inserted last, so neither ID order nor map order can pick the right node by accident.
    fn retried() -> Value {
        let mut wf = fixture("succeeded");
        let good = node_mut(&mut wf, "671376837");
        good["name"] = json!(format!("{WF}[2].push-step(1)"));
        good["displayName"] = json!("push-step(1)");
        let mut bad = good.clone();
        bad["id"] = json!(format!("{WF}-9999999999"));
        bad["name"] = json!(format!("{WF}[2].push-step(0)"));
        bad["displayName"] = json!("push-step(0)");
        bad["phase"] = json!("Failed");
        bad["message"] = json!("Error (exit code 1)");
        bad["startedAt"] = json!("2025-07-01T10:04:20Z");
        bad["finishedAt"] = json!("2025-07-01T10:04:30Z");
        bad["outputs"] = json!({"parameters": [{"name": "image", "value": "stale:image"}]});
        let retry = json!({
            "id": format!("{WF}-5555"), "name": format!("{WF}[2].push-step"),
            "displayName": "push-step", "type": "Retry", "templateName": "push-step",
            "phase": "Succeeded", "startedAt": "2025-07-01T10:04:20Z",
            "finishedAt": "2025-07-01T10:04:50Z",
            "outputs": {"parameters": [{"name": "image", "value": "retry-node:copy"}]}
        });
        let nodes = wf["status"]["nodes"].as_object_mut().unwrap();
        nodes.insert(format!("{WF}-9999999999"), bad);
        nodes.insert(format!("{WF}-5555"), retry);
        wf
    }

    #[test]
    fn retries_use_the_last_attempt() {
        let wf = retried();
        let all = steps(&wf).unwrap();
        let push = &all[2];
        assert_eq!((push.phase, push.attempts), (Phase::Succeeded, 2));
        assert_eq!(
            push.node.as_ref().unwrap().name,
            format!("{WF}[2].push-step(1)")
        );
        assert_eq!(artifacts(&wf).unwrap().image.as_deref(), Some(IMAGE));

        // Reversed outcome: the last attempt failed ⇒ no image, step Failed.
        let mut wf = retried();
        node_mut(&mut wf, "9999999999")["startedAt"] = json!("2025-07-01T10:04:51Z");
        node_mut(&mut wf, "9999999999")["finishedAt"] = json!("2025-07-01T10:04:59Z");
        assert_eq!(steps_from(&nodes(&wf).unwrap())[2].phase, Phase::Failed);
        assert_eq!(artifacts(&wf).unwrap().image, None);

        // A retry still running (no finishedAt yet) is the last attempt.
        let mut wf = retried();
        node_mut(&mut wf, "9999999999")["startedAt"] = json!("2025-07-01T10:04:33Z");
        node_mut(&mut wf, "9999999999")["phase"] = json!("Running");
        node_mut(&mut wf, "9999999999")
            .as_object_mut()
            .unwrap()
            .remove("finishedAt");
        assert_eq!(steps(&wf).unwrap()[2].phase, Phase::Running);
        assert_eq!(artifacts(&wf).unwrap().image, None);

        // Same times: the retry index decides numerically, (10) after (9).
        let a = Node {
            id: "b".into(),
            name: "wf[2].push-step(9)".into(),
            display_name: String::new(),
            node_type: "Pod".into(),
            template_name: "push-step".into(),
            phase: "Failed".into(),
            message: String::new(),
            started_at: None,
            finished_at: None,
            outputs: vec![],
        };
        let mut b = a.clone();
        b.id = "a".into();
        b.name = "wf[2].push-step(10)".into();
        b.phase = "Succeeded".into();
        let nodes = [a.clone(), b.clone()];
        assert_eq!(last_attempt(&nodes, "push-step").unwrap().0, &b);
        let nodes = [b.clone(), a];
        assert_eq!(last_attempt(&nodes, "push-step").unwrap().0, &b);
    }
}
