//! The cluster edge: a client from a kubeconfig and context, discovery of any kind, and the
//! few calls diff and apply need. Every HTTP request is counted at the wire (`count`), so commands and benchmarks can say
//! how many requests they sent. Errors are one line and name the object.

pub mod count;
pub mod kubeconfig;
pub mod policy;
pub mod proxy;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions,
};
use kube::config::Kubeconfig;
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use proxy::{Proxy, ProxyEnv};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

use crate::core::manifest::{Manifest, ObjectId};
use futures::StreamExt;
use futures::stream::BoxStream;
use policy::KubeconfigPolicy;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "buildplane";

/// A cluster call failed. Messages are one line: what, on which object, and why. Variants
/// with a `source` leave the cause out of their own text: it follows in the printed chain.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig could not be read or has no usable context.
    #[error("kubeconfig {path}: {message}")]
    Config { path: String, message: String },
    /// A kubeconfig the operator did not write asks for a field the policy refuses (a command,
    /// a file of the controller's).
    #[error("kubeconfig {path}")]
    Refused {
        path: String,
        #[source]
        source: policy::Refused,
    },
    /// A proxy setting cannot be used: the cluster's `proxy-url`, or the proxy variable that
    /// applies to its server.
    #[error("kubeconfig {path}")]
    Proxy {
        path: String,
        #[source]
        source: proxy::ProxyError,
    },
    /// The exec credential plugin of the kubeconfig's user does not exist (kubectl names the
    /// program too). `in_path`: the command was looked up in `PATH`, having no `/`.
    #[error(
        "kubeconfig {path}: user {user:?}: exec plugin {command:?} not found{}",
        if *in_path { " in PATH" } else { "" }
    )]
    ExecNotFound {
        path: String,
        user: String,
        command: String,
        in_path: bool,
    },
    /// The API server could not be reached.
    #[error("cannot reach the API server at {server}: {message}")]
    Unreachable { server: String, message: String },
    /// The credentials were rejected (401).
    #[error("the API server at {server} rejected the credentials (expired or invalid): {message}")]
    Unauthorized { server: String, message: String },
    /// The server answered an error about an object; `code` is the HTTP status it sent.
    #[error("{object}: {message}")]
    Api {
        object: String,
        code: u16,
        message: String,
    },
    /// No API serves this kind.
    #[error("{object}: the cluster serves no {kind} in {api_version} (is its CRD installed?)")]
    NoApi {
        object: String,
        api_version: String,
        kind: String,
    },
    /// An object did not reach a state in time (a CRD Established, a replaced object gone).
    #[error("{object}: not {condition} within {seconds} s")]
    Timeout {
        object: String,
        condition: String,
        seconds: u64,
    },
    /// A watch on objects ended with an error before it saw what it waited for.
    #[error("{object}: the watch failed")]
    Watch {
        object: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A streamed answer (a container log) broke off while being read.
    #[error("{object}: reading the stream failed")]
    Stream {
        object: String,
        #[source]
        source: std::io::Error,
    },
    /// An answer of the server could not be taken as a JSON object.
    #[error("{object}: unreadable answer from the API server")]
    Decode {
        object: String,
        #[source]
        source: serde_json::Error,
    },
}

impl KubeError {
    /// The HTTP status the server answered (404 when an object is missing); only an API error
    /// has one.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Where to connect, as kubectl takes it.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// `--kubeconfig` (exactly that file), else every file of `KUBECONFIG` merged, else
    /// `~/.kube/config` (`kubeconfig::files`).
    pub kubeconfig: Option<PathBuf>,
    /// A context of the (merged) kubeconfig; default: its current context.
    pub context: Option<String>,
    /// Per-request timeout.
    pub request_timeout: Option<Duration>,
    /// Counters the client's requests are counted into (shared with others, or exposed as
    /// metrics); a client of its own otherwise.
    pub counts: Option<count::Counts>,
}

impl ClientSettings {
    /// Inside a pod with no kubeconfig named and none at the default place, the pod's service
    /// account is used, as kubectl and client-go do.
    fn in_cluster(&self, files: &[PathBuf]) -> bool {
        self.kubeconfig.is_none()
            && std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty())
            && files.iter().all(|p| !p.exists())
            && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
    }

    fn kubeconfig_files(&self) -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        kubeconfig::files(
            self.kubeconfig.as_deref(),
            std::env::var_os("KUBECONFIG").as_deref(),
            home.as_deref(),
        )
    }
}

/// An API resource as discovery describes it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub api: ApiResource,
    pub namespaced: bool,
}

/// A connected client with discovery cache and request counter.
#[derive(Clone)]
pub struct Kube {
    client: Client,
    /// The server as messages name it, with the proxy it is reached through.
    server: String,
    counts: count::Counts,
    discovery: Arc<Mutex<DiscoveryCache>>,
}

/// The innermost cause, first line only (parsers add source snippets on later lines).
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_owned()
}

/// A typed answer as the JSON our callers read; `object` names it if that fails.
fn to_json(object: &str, answer: impl serde::Serialize) -> Result<Value, KubeError> {
    serde_json::to_value(answer).map_err(|source| KubeError::Decode {
        object: object.to_owned(),
        source,
    })
}

/// `https://host:port`, and `through the proxy http://proxy:port` when there is one (without
/// its credentials).
fn shown_server(config: &Config, proxy: Option<&Proxy>) -> String {
    let server = config.cluster_url.to_string();
    let server = server.trim_end_matches('/');
    match proxy {
        Some(p) => format!("{server} through the proxy {p}"),
        None => server.to_owned(),
    }
}

/// Discovery results by group-version: `None` when the group-version is not served.
type DiscoveryCache = HashMap<String, Option<Vec<(String, Resource)>>>;

impl Kube {
    /// Reads the kubeconfig and builds a client. Nothing is sent yet.
    pub async fn connect(settings: &ClientSettings) -> Result<Kube, KubeError> {
        let env = ProxyEnv::from_env();
        let files = settings.kubeconfig_files();
        if settings.in_cluster(&files) {
            let shown = "in-cluster service account";
            let mut config = Config::incluster().map_err(|e| KubeError::Config {
                path: shown.into(),
                message: root_cause(&e),
            })?;
            let proxy =
                proxy::choose(&config.cluster_url, None, "in-cluster", &env).map_err(|source| {
                    KubeError::Proxy {
                        path: shown.into(),
                        source,
                    }
                })?;
            config.proxy_url = proxy.as_ref().map(|p| p.uri.clone());
            let selected = kubeconfig::Selected {
                config,
                proxy,
                user: None,
            };
            return Self::from_selected(selected, shown, settings);
        }
        let shown = kubeconfig::shown(&files);
        let merged = kubeconfig::read(&files)?;
        let selected = kubeconfig::select(&merged, settings.context.as_deref(), &env, &shown)?;
        Self::from_selected(selected, &shown, settings)
    }

    /// A client from kubeconfig text someone other than the operator wrote (a BuildPlane's
    /// Secret): unlike the operator's own kubeconfig, it may use only what `policy` allows —
    /// nothing that runs a command or reads a file (`policy::check`), and no TLS connection to
    /// the operator's proxy checked with its settings (`policy::check_proxy`). Its `proxy-url`
    /// is honoured: it reaches nothing its `server` could not. `shown` names it in errors; the
    /// text's credentials never appear in one.
    pub async fn from_kubeconfig_text(
        text: &str,
        shown: &str,
        settings: &ClientSettings,
        policy: KubeconfigPolicy,
    ) -> Result<Kube, KubeError> {
        let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| KubeError::Config {
            path: shown.to_owned(),
            message: root_cause(&e),
        })?;
        let refused = |source| KubeError::Refused {
            path: shown.to_owned(),
            source,
        };
        policy::check(&kubeconfig, policy).map_err(refused)?;
        let env = ProxyEnv::from_env();
        let selected = kubeconfig::select(&kubeconfig, settings.context.as_deref(), &env, shown)?;
        policy::check_proxy(selected.proxy.as_ref()).map_err(refused)?;
        Self::from_selected(selected, shown, settings)
    }

    fn from_selected(
        selected: kubeconfig::Selected,
        shown: &str,
        settings: &ClientSettings,
    ) -> Result<Kube, KubeError> {
        let kubeconfig::Selected {
            mut config,
            proxy,
            user,
        } = selected;
        if let Some(t) = settings.request_timeout {
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
            config.connect_timeout = Some(t);
            config.reset_reader_on_write = true;
        }
        let server = shown_server(&config, proxy.as_ref());
        let exec = config
            .auth_info
            .exec
            .as_ref()
            .and_then(|e| e.command.clone());
        let counts = settings.counts.clone().unwrap_or_default();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| match (e, exec) {
                (kube::Error::Auth(kube::client::AuthError::AuthExecStart(io)), Some(command))
                    if io.kind() == std::io::ErrorKind::NotFound =>
                {
                    KubeError::ExecNotFound {
                        path: shown.to_owned(),
                        user: user.unwrap_or_default(),
                        in_path: !command.contains('/'),
                        command,
                    }
                }
                (e, _) => KubeError::Config {
                    path: shown.to_owned(),
                    message: root_cause(&e),
                },
            })?
            .with_layer(&counts)
            .build();
        Ok(Kube {
            client,
            server,
            counts,
            discovery: Arc::default(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// HTTP requests sent so far, of every kind (discovery, reads, writes, watches).
    pub fn requests(&self) -> usize {
        self.counts.requests()
    }

    /// Writes sent so far (anything but GET/HEAD, dry runs excluded).
    pub fn writes(&self) -> usize {
        self.counts.writes()
    }

    /// Of [`Kube::writes`], those that published Events.
    pub fn events(&self) -> usize {
        self.counts.events()
    }

    /// Maps a client error to one line naming `object`; anything but an answer we could not
    /// read is taken for the server being out of reach.
    pub fn error(&self, object: &str, e: kube::Error) -> KubeError {
        match e {
            kube::Error::Api(status) => {
                if status.code == 401 {
                    KubeError::Unauthorized {
                        server: self.server.clone(),
                        message: status.message,
                    }
                } else {
                    KubeError::Api {
                        object: object.to_owned(),
                        code: status.code,
                        message: status.message,
                    }
                }
            }
            kube::Error::SerdeError(source) => KubeError::Decode {
                object: object.to_owned(),
                source,
            },
            other => KubeError::Unreachable {
                server: self.server.clone(),
                message: root_cause(&other),
            },
        }
    }

    /// The resource serving `kind` in `api_version`, or `None` when the cluster has none.
    /// One discovery request per group-version, cached (a miss is cached until `forget`).
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Resource>, KubeError> {
        let mut cache = self.discovery.lock().await;
        if !cache.contains_key(api_version) {
            let listed = if api_version.contains('/') {
                self.client.list_api_group_resources(api_version).await
            } else {
                self.client.list_core_api_resources(api_version).await
            };
            let entry = match listed {
                Ok(list) => Some(
                    list.resources
                        .into_iter()
                        .filter(|r| !r.name.contains('/'))
                        .map(|r| {
                            let gvk = GroupVersionKind::gvk(
                                api_version.split_once('/').map_or("", |(g, _)| g),
                                api_version.rsplit('/').next().unwrap_or(api_version),
                                &r.kind,
                            );
                            let api = ApiResource::from_gvk_with_plural(&gvk, &r.name);
                            (
                                r.kind.clone(),
                                Resource {
                                    api,
                                    namespaced: r.namespaced,
                                },
                            )
                        })
                        .collect(),
                ),
                Err(kube::Error::Api(s)) if s.code == 404 => None,
                Err(e) => return Err(self.error(&format!("discovery of {api_version}"), e)),
            };
            cache.insert(api_version.to_owned(), entry);
        }
        Ok(cache
            .get(api_version)
            .and_then(|e| e.as_ref())
            .and_then(|list| list.iter().find(|(k, _)| k == kind))
            .map(|(_, r)| r.clone()))
    }

    /// Drops cached discovery (after CRDs were installed).
    pub async fn forget_discovery(&self) {
        self.discovery.lock().await.clear();
    }

    fn api(&self, r: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        match (r.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.api),
            (true, None) => Api::all_with(self.client.clone(), &r.api),
            (false, _) => Api::all_with(self.client.clone(), &r.api),
        }
    }

    /// Every object of a resource in a namespace (all namespaces for `None`).
    pub async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, KubeError> {
        let what = format!(
            "{} in {}",
            r.api.kind,
            namespace.unwrap_or("all namespaces")
        );
        let list = self
            .api(r, namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| self.error(&what, e))?;
        // List items come without apiVersion and kind; give them back, as a GET has them.
        list.items
            .into_iter()
            .map(|o| {
                let mut v = to_json(&what, o)?;
                if let Some(map) = v.as_object_mut() {
                    map.insert(
                        "apiVersion".into(),
                        Value::String(r.api.api_version.clone()),
                    );
                    map.insert("kind".into(), Value::String(r.api.kind.clone()));
                }
                Ok(v)
            })
            .collect()
    }

    /// The objects of a resource in a namespace that match a label selector.
    pub async fn list_selected(
        &self,
        r: &Resource,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, KubeError> {
        self.list_matching(r, Some(namespace), selector).await
    }

    /// The objects of a resource that match a label selector, in one namespace or in all
    /// (`None`): one LIST request.
    pub async fn list_matching(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Value>, KubeError> {
        let what = format!(
            "{} in {} ({selector})",
            r.api.kind,
            namespace.unwrap_or("all namespaces")
        );
        let list = self
            .api(r, namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| self.error(&what, e))?;
        list.items.into_iter().map(|o| to_json(&what, o)).collect()
    }

    /// Creates an object (a POST, field manager `buildplane`): `None` when one of that name
    /// already exists (409 AlreadyExists), which is left as it is.
    pub async fn create(&self, r: &Resource, m: &Manifest) -> Result<Option<Value>, KubeError> {
        let object: DynamicObject =
            serde_json::from_value(m.object.clone()).map_err(|e| KubeError::Api {
                object: m.id.to_string(),
                code: 0,
                message: e.to_string(),
            })?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..Default::default()
        };
        match self
            .api(r, m.id.namespace.as_deref())
            .create(&params, &object)
            .await
        {
            Ok(out) => to_json(&m.id.to_string(), out).map(Some),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(None),
            Err(e) => Err(self.error(&m.id.to_string(), e)),
        }
    }

    /// A JSON merge patch of one object (what `kubectl patch --type merge` sends).
    pub async fn merge_patch(
        &self,
        r: &Resource,
        id: &ObjectId,
        patch: &Value,
    ) -> Result<Value, KubeError> {
        let out = self
            .api(r, id.namespace.as_deref())
            .patch(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| self.error(&id.to_string(), e))?;
        to_json(&id.to_string(), out)
    }

    /// A container's log line by line, following it while the container runs if `follow`.
    /// Writing the lines anywhere is the caller's: its failures are not the cluster's.
    pub async fn log_lines(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        follow: bool,
    ) -> Result<BoxStream<'static, Result<String, KubeError>>, KubeError> {
        use futures::AsyncBufReadExt;
        let object = format!("Pod/{namespace}/{pod}");
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::LogParams {
            container: Some(container.to_owned()),
            follow,
            ..Default::default()
        };
        let reader = api
            .log_stream(pod, &params)
            .await
            .map_err(|e| self.error(&object, e))?;
        Ok(reader
            .lines()
            .map(move |line| {
                line.map_err(|source| KubeError::Stream {
                    object: object.clone(),
                    source,
                })
            })
            .boxed())
    }

    /// One object, or `None` if it does not exist.
    pub async fn get(&self, r: &Resource, id: &ObjectId) -> Result<Option<Value>, KubeError> {
        match self.api(r, id.namespace.as_deref()).get_opt(&id.name).await {
            Ok(o) => o.map(|o| to_json(&id.to_string(), o)).transpose(),
            Err(e) => Err(self.error(&id.to_string(), e)),
        }
    }

    /// Server-side apply as `buildplane`; `dry_run` asks the server what would result.
    pub async fn apply(
        &self,
        r: &Resource,
        m: &Manifest,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, KubeError> {
        self.apply_as(FIELD_MANAGER, r, m, dry_run, force).await
    }

    /// Server-side apply as `manager` (e.g. `build-controller` for Workloads, as upstream).
    pub async fn apply_as(
        &self,
        manager: &str,
        r: &Resource,
        m: &Manifest,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, KubeError> {
        let mut params = PatchParams::apply(manager);
        if force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let out = self
            .api(r, m.id.namespace.as_deref())
            .patch(&m.id.name, &params, &Patch::Apply(&m.object))
            .await
            .map_err(|e| match self.error(&m.id.to_string(), e) {
                KubeError::Api {
                    object,
                    code: 409,
                    message,
                } => KubeError::Api {
                    object,
                    code: 409,
                    message: format!("{message} (use --force-conflicts to take over these fields)"),
                },
                other => other,
            })?;
        to_json(&m.id.to_string(), out)
    }

    /// Deletes an object (background propagation); a missing object is not an error.
    pub async fn delete(&self, r: &Resource, id: &ObjectId) -> Result<(), KubeError> {
        self.delete_with(r, id, DeleteParams::background()).await
    }

    /// Deletes an object only while it is the one the caller judged: the `uid` and the
    /// `resource_version` given are preconditions (the server answers 409 when either changed).
    /// A missing object is not an error.
    pub async fn delete_exact(
        &self,
        r: &Resource,
        id: &ObjectId,
        uid: Option<&str>,
        resource_version: Option<&str>,
    ) -> Result<(), KubeError> {
        let mut params = DeleteParams::background();
        params.preconditions = Some(Preconditions {
            uid: uid.map(str::to_owned),
            resource_version: resource_version.map(str::to_owned),
        });
        self.delete_with(r, id, params).await
    }

    async fn delete_with(
        &self,
        r: &Resource,
        id: &ObjectId,
        params: DeleteParams,
    ) -> Result<(), KubeError> {
        match self
            .api(r, id.namespace.as_deref())
            .delete(&id.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.error(&id.to_string(), e)),
        }
    }

    /// Whether the current credentials may `verb` the resource in `namespace`.
    pub async fn can_i(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<bool, KubeError> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_owned()),
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    namespace: namespace.map(str::to_owned),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let out = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| self.error("SelfSubjectAccessReview", e))?;
        Ok(out.status.is_some_and(|s| s.allowed))
    }

    /// Waits until a CRD reports Established (a watch, not a polling loop).
    pub async fn wait_crd_established(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let cond = kube::runtime::wait::conditions::is_crd_established();
        match tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(api, name, cond),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(KubeError::Watch {
                object: format!("CustomResourceDefinition/{name}"),
                source: Box::new(e),
            }),
            Err(_) => Err(KubeError::Timeout {
                object: format!("CustomResourceDefinition/{name}"),
                condition: "Established".into(),
                seconds: timeout.as_secs(),
            }),
        }
    }
}

/// The resource of a CRD in the plan, for kinds the cluster does not serve yet.
pub fn resource_from_crd(crd: &Value) -> Option<(String, String, Resource)> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let names = spec.get("names")?;
    let kind = names.get("kind")?.as_str()?;
    let plural = names.get("plural")?.as_str()?;
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec.get("versions")?.as_array()?;
    let version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())?
        .get("name")?
        .as_str()?;
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Some((
        format!("{group}/{version}"),
        kind.to_owned(),
        Resource {
            api: ApiResource::from_gvk_with_plural(&gvk, plural),
            namespaced,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// The chain `main` prints: each link once, joined with ": ".
    fn chain(e: &KubeError) -> String {
        let mut out = e.to_string();
        let mut cur = e.source();
        while let Some(cause) = cur {
            out = format!("{out}: {cause}");
            cur = cause.source();
        }
        out
    }

    #[test]
    fn errors_with_a_source_name_it_once_in_the_chain() {
        let io = || std::io::Error::other("connection reset");
        let cases = [
            KubeError::Watch {
                object: "CustomResourceDefinition/x".into(),
                source: Box::new(io()),
            },
            KubeError::Stream {
                object: "Pod/ns/p".into(),
                source: io(),
            },
        ];
        for e in &cases {
            let shown = chain(e);
            assert_eq!(shown.matches("connection reset").count(), 1, "{shown}");
            assert_eq!(e.code(), None);
        }
        let decode = serde_json::from_str::<Value>("{").unwrap_err();
        let e = KubeError::Decode {
            object: "Pod/ns/p".into(),
            source: decode,
        };
        assert!(chain(&e).starts_with("Pod/ns/p: unreadable answer from the API server: EOF"));
        let e = KubeError::Timeout {
            object: "CustomResourceDefinition/x".into(),
            condition: "Established".into(),
            seconds: 30,
        };
        assert_eq!(
            e.to_string(),
            "CustomResourceDefinition/x: not Established within 30 s"
        );
        let api = KubeError::Api {
            object: "Pod/ns/p".into(),
            code: 404,
            message: "not found".into(),
        };
        assert_eq!(api.code(), Some(404));
    }
}
