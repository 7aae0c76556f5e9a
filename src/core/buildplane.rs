//! The control plane's view of builds: the `BuildPlane` resource (which cluster runs the builds
//! of its namespace, through a kubeconfig kept in a Secret, as the seed has it) and the `Build`
//! status the controller writes. Pure types; the CRDs are generated from them (`core::crd`).

use super::conditions::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Secret key holding the build plane's kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// `BuildPlane.spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildPlaneSpec {
    pub kubernetes_cluster: KubernetesCluster,
}

/// How to reach the build plane's API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCluster {
    /// A Secret with the kubeconfig under the key `kubeconfig`.
    pub cluster_ref: ClusterRef,
}

/// A Secret by name; the namespace defaults to the BuildPlane's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What the build controller observed: upstream's conditions and the built image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ConditionSchema>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_status: Option<ImageStatus>,
    /// The spec hash of the build submitted last (what the submit-once rule compares; the
    /// status tells which spec it shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// The Workload (in the Build's namespace) this Build applied last: what deleting the Build
    /// may delete, and what keeps another Build's deletion from deleting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<WorkloadRef>,
}

/// A Workload in the Build's namespace, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadRef {
    pub name: String,
}

/// The built image's pull reference (empty before a success).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageStatus {
    pub image: String,
}

/// A condition in the shape of Kubernetes' metav1.Condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSchema {
    #[serde(rename = "type")]
    pub type_: String,
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl From<&Condition> for ConditionSchema {
    fn from(c: &Condition) -> Self {
        ConditionSchema {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            observed_generation: c.observed_generation,
            last_transition_time: c.last_transition_time.clone(),
        }
    }
}
