//! The control plane's view of builds: the `BuildPlane` resource (which cluster runs the builds
//! of its namespace, through a kubeconfig kept in a Secret, as the seed has it) and the `Build`
//! status the controller writes. Pure types; the CRDs are generated from them (`core::crd`).

use super::conditions::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Secret key holding the build plane's kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// `BuildPlane.spec`: upstream's shape (the cluster inline, plus `observer`) or buildplane's
/// (`clusterRef` to a kubeconfig Secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildPlaneSpec {
    pub kubernetes_cluster: KubernetesCluster,
    /// Upstream's Observer API settings: kept as given and not used by the build controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserved_object")]
    pub observer: Option<serde_json::Value>,
}

/// An object the API server keeps as given.
fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// How to reach the build plane's API server: `clusterRef` (a kubeconfig Secret), or upstream's
/// inline form (`server`, `tls.ca`, `auth.mtls` or `auth.bearerToken`). Exactly one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesCluster {
    /// A Secret with the kubeconfig under the key `kubeconfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ref: Option<ClusterRef>,
    /// Upstream's form: the API server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<InlineTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<InlineAuth>,
}

/// Upstream's `tls`: the CA bundle (base64 PEM in `value`, or a Secret's `ca.crt`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InlineTls {
    #[serde(default)]
    pub ca: ValueFrom,
}

/// Upstream's `auth`: client certificate and key, or a bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InlineAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<InlineMtls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<ValueFrom>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InlineMtls {
    pub client_cert: ValueFrom,
    pub client_key: ValueFrom,
}

/// Upstream's `ValueFrom`: an inline `value`, or `secretRef`, the name of a Secret in the
/// BuildPlane's own namespace (upstream never read it; buildplane reads the conventional key:
/// `ca.crt`, `tls.crt`, `tls.key`, `token`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
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

/// Which form a BuildPlane uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterForm<'a> {
    Kubeconfig(&'a ClusterRef),
    Inline {
        server: &'a str,
        ca: Option<&'a ValueFrom>,
        auth: &'a InlineAuth,
    },
}

/// A BuildPlane's cluster that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterSpecError {
    #[error(
        "spec.kubernetesCluster: set either clusterRef or server (with tls and auth), not both"
    )]
    Both,
    #[error("spec.kubernetesCluster: set clusterRef (a kubeconfig Secret) or server, tls and auth")]
    Neither,
    #[error("spec.kubernetesCluster.auth: set mtls or bearerToken")]
    NoAuth,
    #[error("spec.kubernetesCluster.server: {0:?} is not an https:// URL")]
    Server(String),
    #[error("{field}: set value or secretRef")]
    Empty { field: &'static str },
    #[error("{field}: value is not base64: {message}")]
    Base64 {
        field: &'static str,
        message: String,
    },
}

impl KubernetesCluster {
    /// The form in use, checked: exactly one form; the inline one with an https server and
    /// one way to authenticate (mTLS first, as upstream).
    pub fn form(&self) -> Result<ClusterForm<'_>, ClusterSpecError> {
        match (&self.cluster_ref, &self.server) {
            (Some(_), Some(_)) => Err(ClusterSpecError::Both),
            (Some(r), None) if self.tls.is_none() && self.auth.is_none() => {
                Ok(ClusterForm::Kubeconfig(r))
            }
            (Some(_), None) => Err(ClusterSpecError::Both),
            (None, None) => Err(ClusterSpecError::Neither),
            (None, Some(server)) => {
                if !server.starts_with("https://") {
                    return Err(ClusterSpecError::Server(server.clone()));
                }
                let auth = self.auth.as_ref().ok_or(ClusterSpecError::NoAuth)?;
                if auth.mtls.is_none() && auth.bearer_token.is_none() {
                    return Err(ClusterSpecError::NoAuth);
                }
                Ok(ClusterForm::Inline {
                    server,
                    ca: self.tls.as_ref().map(|t| &t.ca),
                    auth,
                })
            }
        }
    }
}

/// The Secret key a `secretRef` of each inline field is read from.
pub fn secret_key(field: &str) -> &'static str {
    match field {
        "tls.ca" => "ca.crt",
        "auth.mtls.clientCert" => "tls.crt",
        "auth.mtls.clientKey" => "tls.key",
        _ => "token",
    }
}

/// The bytes of an inline field: `value` (base64-decoded where upstream decodes it: the CA,
/// the client certificate and key; a bearer token is taken as it is), or what `secret` returns
/// for its `secretRef` (name, key), already decoded. `Ok(None)`: neither is set.
pub fn resolve_value<E>(
    v: &ValueFrom,
    field: &'static str,
    base64_value: bool,
    secret: &mut impl FnMut(&str, &str) -> Result<Vec<u8>, E>,
) -> Result<Option<Vec<u8>>, Result<ClusterSpecError, E>> {
    use base64::Engine as _;
    match (&v.value, &v.secret_ref) {
        (Some(value), _) if !value.is_empty() => {
            if !base64_value {
                return Ok(Some(value.clone().into_bytes()));
            }
            let compact: String = value.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(Some)
                .map_err(|e| {
                    Ok(ClusterSpecError::Base64 {
                        field,
                        message: e.to_string(),
                    })
                })
        }
        (_, Some(name)) if !name.is_empty() => {
            secret(name, secret_key(field)).map(Some).map_err(Err)
        }
        _ => Ok(None),
    }
}

/// The kubeconfig (as YAML text) of an inline cluster: what a kubeconfig Secret would hold, so
/// both forms go through the same client construction and the same policy.
pub fn inline_kubeconfig(
    server: &str,
    ca: Option<&[u8]>,
    cert_key: Option<(&[u8], &[u8])>,
    token: Option<&str>,
) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut cluster = serde_json::json!({"server": server});
    if let Some(ca) = ca {
        cluster["certificate-authority-data"] = b64(ca).into();
    }
    let mut user = serde_json::json!({});
    if let Some((cert, key)) = cert_key {
        user["client-certificate-data"] = b64(cert).into();
        user["client-key-data"] = b64(key).into();
    } else if let Some(token) = token {
        user["token"] = token.into();
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "build-plane", "cluster": cluster}],
        "users": [{"name": "build-plane", "user": user}],
        "contexts": [{"name": "build-plane", "context": {"cluster": "build-plane", "user": "build-plane"}}],
        "current-context": "build-plane",
    })
    .to_string()
}

/// The label on a Build naming the BuildPlane (in its namespace) that runs it.
pub const BUILD_PLANE_LABEL: &str = "openchoreo.dev/build-plane";
/// The annotation marking the BuildPlane used when a namespace holds several and the Build
/// names none (`"true"`).
pub const DEFAULT_PLANE_ANNOTATION: &str = "buildplane.openchoreo.dev/default";

/// Why no BuildPlane could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaneChoiceError {
    #[error("no BuildPlane in the namespace")]
    None,
    #[error("the Build names BuildPlane {wanted:?} ({BUILD_PLANE_LABEL}), which is not there (there: {})", .available.join(", "))]
    NotFound {
        wanted: String,
        available: Vec<String>,
    },
    #[error("{} BuildPlanes and none marked {DEFAULT_PLANE_ANNOTATION}=true: {} (mark one, or label the Build {BUILD_PLANE_LABEL}=NAME)", .0.len(), .0.join(", "))]
    Ambiguous(Vec<String>),
    #[error("several BuildPlanes are marked {DEFAULT_PLANE_ANNOTATION}=true: {}", .0.join(", "))]
    SeveralDefaults(Vec<String>),
}

/// The rule for a namespace's BuildPlanes, never "the first by name": the one the Build names
/// (label `openchoreo.dev/build-plane`); else the only one; else the one marked default.
/// `planes`: each BuildPlane's name and whether it carries the default marker.
pub fn choose_plane<'a>(
    wanted: Option<&str>,
    planes: &'a [(String, bool)],
) -> Result<&'a str, PlaneChoiceError> {
    let names = || planes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if let Some(w) = wanted {
        return planes
            .iter()
            .find(|(n, _)| n == w)
            .map(|(n, _)| n.as_str())
            .ok_or_else(|| PlaneChoiceError::NotFound {
                wanted: w.to_owned(),
                available: names(),
            });
    }
    match planes {
        [] => Err(PlaneChoiceError::None),
        [(only, _)] => Ok(only),
        _ => {
            let defaults: Vec<&(String, bool)> = planes.iter().filter(|(_, d)| *d).collect();
            match defaults.as_slice() {
                [(one, _)] => Ok(one),
                [] => Err(PlaneChoiceError::Ambiguous(names())),
                many => Err(PlaneChoiceError::SeveralDefaults(
                    many.iter().map(|(n, _)| n.clone()).collect(),
                )),
            }
        }
    }
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
    /// One word for `kubectl get builds` (Pending, Running, Succeeded, Failed), read from the
    /// conditions (`conditions::phase_word`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The BuildPlane (in the Build's namespace) the build runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_plane_ref: Option<BuildPlaneRef>,
}

/// A BuildPlane in the Build's namespace, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BuildPlaneRef {
    pub name: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(v: serde_json::Value) -> KubernetesCluster {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn both_forms_parse_and_exactly_one_is_used() {
        let by_ref = cluster(json!({"clusterRef": {"name": "plane"}}));
        assert!(matches!(by_ref.form(), Ok(ClusterForm::Kubeconfig(r)) if r.name == "plane"));
        // As upstream's add-build-plane.sh writes it.
        let inline = cluster(json!({"server": "https://10.0.0.1:6443",
            "tls": {"ca": {"value": "Q0E="}},
            "auth": {"mtls": {"clientCert": {"value": "Y2VydA=="}, "clientKey": {"value": "a2V5"}}}}));
        assert!(matches!(
            inline.form(),
            Ok(ClusterForm::Inline {
                server: "https://10.0.0.1:6443",
                ..
            })
        ));
        let both = cluster(json!({"clusterRef": {"name": "p"}, "server": "https://x"}));
        assert_eq!(both.form(), Err(ClusterSpecError::Both));
        assert_eq!(cluster(json!({})).form(), Err(ClusterSpecError::Neither));
        let no_auth = cluster(json!({"server": "https://x", "tls": {"ca": {}}, "auth": {}}));
        assert_eq!(no_auth.form(), Err(ClusterSpecError::NoAuth));
        let plain = cluster(json!({"server": "http://x", "auth": {"bearerToken": {"value": "t"}}}));
        assert!(matches!(plain.form(), Err(ClusterSpecError::Server(_))));
        // The observer section is kept, and ignored.
        let spec: BuildPlaneSpec = serde_json::from_value(json!({"kubernetesCluster": {"clusterRef": {"name": "p"}},
            "observer": {"url": "http://observer", "authentication": {"basicAuth": {"username": "u", "password": "p"}}}})).unwrap();
        assert_eq!(spec.observer.unwrap()["url"], "http://observer");
    }

    #[test]
    fn values_decode_as_upstream_and_secret_refs_read_the_conventional_keys() {
        let mut asked = Vec::new();
        let mut secret = |name: &str, key: &str| -> Result<Vec<u8>, String> {
            asked.push(format!("{name}/{key}"));
            Ok(b"from-secret".to_vec())
        };
        let ca = ValueFrom {
            value: Some("Q0E=".into()),
            secret_ref: None,
        };
        assert_eq!(
            resolve_value(&ca, "tls.ca", true, &mut secret),
            Ok(Some(b"CA".to_vec()))
        );
        let token = ValueFrom {
            value: Some("abc.def".into()),
            secret_ref: None,
        };
        assert_eq!(
            resolve_value(&token, "auth.bearerToken", false, &mut secret),
            Ok(Some(b"abc.def".to_vec()))
        );
        let by_ref = ValueFrom {
            value: None,
            secret_ref: Some("plane-creds".into()),
        };
        assert_eq!(
            resolve_value(&by_ref, "auth.mtls.clientKey", true, &mut secret),
            Ok(Some(b"from-secret".to_vec()))
        );
        let bad = ValueFrom {
            value: Some("not base64!".into()),
            secret_ref: None,
        };
        assert!(matches!(
            resolve_value(&bad, "tls.ca", true, &mut secret),
            Err(Ok(ClusterSpecError::Base64 {
                field: "tls.ca",
                ..
            }))
        ));
        assert_eq!(
            resolve_value(&ValueFrom::default(), "tls.ca", true, &mut secret),
            Ok(None)
        );
    }

    #[test]
    fn an_inline_cluster_becomes_a_kubeconfig() {
        let text = inline_kubeconfig("https://h:6443", Some(b"CA"), None, Some("tok"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(v["users"][0]["user"], json!({"token": "tok"}));
        assert_eq!(v["current-context"], "build-plane");
        let mtls = inline_kubeconfig("https://h", None, Some((b"c", b"k")), None);
        let v: serde_json::Value = serde_json::from_str(&mtls).unwrap();
        assert_eq!(v["users"][0]["user"]["client-key-data"], "aw==");
        assert!(
            v["clusters"][0]["cluster"]
                .get("certificate-authority-data")
                .is_none()
        );
    }

    #[test]
    fn several_planes_need_a_name_or_one_default_never_the_first() {
        let planes = |list: &[(&str, bool)]| {
            list.iter()
                .map(|(n, d)| (n.to_string(), *d))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            choose_plane(None, &planes(&[])),
            Err(PlaneChoiceError::None)
        );
        assert_eq!(choose_plane(None, &planes(&[("a", false)])), Ok("a"));
        let two = planes(&[("a", false), ("b", false)]);
        assert!(
            matches!(choose_plane(None, &two), Err(PlaneChoiceError::Ambiguous(n)) if n == ["a", "b"])
        );
        assert_eq!(choose_plane(Some("b"), &two), Ok("b"));
        assert!(matches!(
            choose_plane(Some("c"), &two),
            Err(PlaneChoiceError::NotFound { .. })
        ));
        assert_eq!(
            choose_plane(None, &planes(&[("a", false), ("b", true)])),
            Ok("b")
        );
        assert!(matches!(
            choose_plane(None, &planes(&[("a", true), ("b", true)])),
            Err(PlaneChoiceError::SeveralDefaults(_))
        ));
    }
}
