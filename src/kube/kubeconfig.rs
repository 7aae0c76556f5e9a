//! The kubeconfig as kubectl reads it, and the one way a client configuration is made from
//! it, for the operator's kubeconfig and a BuildPlane's Secret alike.
//!
//! Which files: `--kubeconfig` names exactly one; otherwise every file `KUBECONFIG` lists,
//! merged (the first file that sets `current-context` wins; of clusters, users and contexts of
//! the same name the first file's wins; a file of the list that does not exist is skipped, as
//! kubectl skips it); otherwise `~/.kube/config`.
//!
//! The configuration is made here rather than by kube's `Config::from_custom_kubeconfig`,
//! because that one also reads `HTTPS_PROXY` and `NO_PROXY` with rules of its own (and fails on
//! a `NO_PROXY` kubectl accepts); the proxy is `proxy::choose`'s answer instead.

use super::KubeError;
use super::proxy::{self, Proxy, ProxyEnv};
use base64::Engine as _;
use kube::Config;
use kube::config::{Cluster, ExecAuthCluster, Kubeconfig, KubeconfigError};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The files of the operator's kubeconfig, in precedence order (see the module).
pub fn files(explicit: Option<&Path>, env: Option<&OsStr>, home: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut listed: Vec<PathBuf> = Vec::new();
    for p in env.map(std::env::split_paths).into_iter().flatten() {
        if !p.as_os_str().is_empty() && !listed.contains(&p) {
            listed.push(p);
        }
    }
    if !listed.is_empty() {
        return listed;
    }
    vec![home.unwrap_or(Path::new("")).join(".kube").join("config")]
}

/// How `files` are named in messages: the file, or the list as `KUBECONFIG` writes it.
pub fn shown(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    names.join(":")
}

/// Reads `files` and merges them in order. A file that does not exist is skipped when others
/// are listed; when none exists, or the only one is missing, that is the error.
pub fn read(files: &[PathBuf]) -> Result<Kubeconfig, KubeError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in files {
        let next = match Kubeconfig::read_from(path) {
            Ok(k) => k,
            Err(KubeconfigError::ReadConfig(e, _))
                if files.len() > 1 && e.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => return Err(config_error(&path.display().to_string(), &e)),
        };
        merged = Some(match merged {
            None => next,
            Some(m) => m
                .merge(next)
                .map_err(|e| config_error(&path.display().to_string(), &e))?,
        });
    }
    merged.ok_or_else(|| KubeError::Config {
        path: shown(files),
        message: "none of these files exists".into(),
    })
}

fn config_error(path: &str, e: &(dyn std::error::Error + 'static)) -> KubeError {
    KubeError::Config {
        path: path.to_owned(),
        message: super::root_cause(e),
    }
}

/// A client configuration and what messages name it by.
pub struct Selected {
    pub config: Config,
    /// The proxy the connection goes through (already in `config.proxy_url`).
    pub proxy: Option<Proxy>,
    /// The context's user, as the kubeconfig names it.
    pub user: Option<String>,
}

/// The configuration of `context` (default: the current context) of `kubeconfig`: its
/// cluster's server, CA, TLS settings and proxy, its user's credentials (kube applies them,
/// running an exec plugin when it builds the client), its namespace. `shown` names the
/// kubeconfig in errors.
pub fn select(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
    env: &ProxyEnv,
    shown: &str,
) -> Result<Selected, KubeError> {
    let err = |message: String| KubeError::Config {
        path: shown.to_owned(),
        message,
    };
    // An empty name is no name, as kubectl takes `--context ""`.
    let name = context
        .filter(|c| !c.is_empty())
        .or(kubeconfig.current_context.as_deref())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| err("no context chosen and no current-context set".into()))?;
    let ctx = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| err(format!("no context {name:?}")))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| err(format!("context {name:?}: no cluster {:?}", ctx.cluster)))?;
    // As client-go: a context without a user, or naming none, connects without credentials.
    let mut user = ctx
        .user
        .as_ref()
        .and_then(|u| kubeconfig.auth_infos.iter().find(|a| &a.name == u))
        .and_then(|a| a.auth_info.clone())
        .unwrap_or_default();
    if let Some(exec) = &mut user.exec
        && exec.provide_cluster_info
    {
        let info = ExecAuthCluster::try_from(&cluster).map_err(|e| err(super::root_cause(&e)))?;
        exec.cluster = Some(info);
    }
    let at = format!("cluster {:?}", ctx.cluster);
    let server = cluster
        .server
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(format!("{at} has no server")))?;
    let url = server
        .parse::<http::Uri>()
        .map_err(|e| err(format!("{at}: server {server:?} is not a URL ({e})")))?;
    let mut config = Config::new(url);
    config.default_namespace = ctx.namespace.clone().unwrap_or_else(|| "default".into());
    config.accept_invalid_certs = cluster.insecure_skip_tls_verify.unwrap_or(false);
    config.disable_compression = cluster.disable_compression.unwrap_or(false);
    config.tls_server_name = cluster.tls_server_name.clone();
    config.root_cert = root_certs(&cluster).map_err(|m| err(format!("{at}: {m}")))?;
    config.auth_info = user;
    let proxy = proxy::choose(
        &config.cluster_url,
        cluster.proxy_url.as_deref(),
        &ctx.cluster,
        env,
    )
    .map_err(|source| KubeError::Proxy {
        path: shown.to_owned(),
        source,
    })?;
    config.proxy_url = proxy.as_ref().map(|p| p.uri.clone());
    Ok(Selected {
        config,
        proxy,
        user: ctx.user,
    })
}

/// The CA certificates of a cluster, as kube reads them: `certificate-authority-data` before
/// `certificate-authority`, the `CERTIFICATE` blocks of the PEM text.
fn root_certs(cluster: &Cluster) -> Result<Option<Vec<Vec<u8>>>, String> {
    let pem_text = if let Some(data) = &cluster.certificate_authority_data {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("certificate-authority-data is not base64 ({e})"))?
    } else if let Some(path) = &cluster.certificate_authority {
        std::fs::read(path).map_err(|e| format!("certificate-authority {path}: {e}"))?
    } else {
        return Ok(None);
    };
    let blocks = pem::parse_many(&pem_text)
        .map_err(|e| format!("the certificate authority is not PEM ({e})"))?;
    Ok(Some(
        blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(pem::Pem::into_contents)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn files_are_picked_as_kubectl_picks_them() {
        let home = Path::new("/home/u");
        let env = OsStr::new("/a:/b::/a");
        assert_eq!(
            files(Some(Path::new("/x")), Some(env), Some(home)),
            vec![PathBuf::from("/x")],
            "--kubeconfig is exactly one file"
        );
        assert_eq!(
            files(None, Some(env), Some(home)),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        for env in [None, Some(OsStr::new("")), Some(OsStr::new(":"))] {
            assert_eq!(
                files(None, env, Some(home)),
                vec![PathBuf::from("/home/u/.kube/config")]
            );
        }
        assert_eq!(shown(&files(None, Some(env), None)), "/a:/b");
    }

    const A: &str = "apiVersion: v1\nkind: Config\ncurrent-context: only-in-b\n\
        clusters:\n- name: shared\n  cluster: {server: 'https://first.test'}\n\
        contexts:\n- name: both\n  context: {cluster: shared, user: u, namespace: from-a}\n";
    const B: &str = "apiVersion: v1\nkind: Config\ncurrent-context: both\n\
        clusters:\n- name: shared\n  cluster: {server: 'https://second.test'}\n\
        - name: own\n  cluster: {server: 'https://own.test:6443'}\n\
        users:\n- name: u\n  user: {token: t}\n\
        contexts:\n- name: both\n  context: {cluster: own, user: u}\n\
        - name: only-in-b\n  context: {cluster: own, user: u, namespace: b}\n";

    #[test]
    fn a_kubeconfig_list_merges_first_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", A);
        let b = write(dir.path(), "b", B);
        let missing = dir.path().join("missing");
        let merged = read(&[a.clone(), missing.clone(), b.clone()]).unwrap();
        let env = ProxyEnv::default();
        // A's current-context, defined only in B.
        let s = select(&merged, None, &env, "list").unwrap();
        assert_eq!(s.config.cluster_url.to_string(), "https://own.test:6443/");
        assert_eq!(s.config.default_namespace, "b");
        assert_eq!(s.user.as_deref(), Some("u"));
        // The same name in both: A's context and A's cluster.
        let s = select(&merged, Some("both"), &env, "list").unwrap();
        assert_eq!(s.config.cluster_url.to_string(), "https://first.test/");
        assert_eq!(s.config.default_namespace, "from-a");
        // The other order, the other answers.
        let merged = read(&[b, a]).unwrap();
        let s = select(&merged, None, &env, "list").unwrap();
        assert_eq!(s.config.cluster_url.to_string(), "https://own.test:6443/");
        assert_eq!(merged.current_context.as_deref(), Some("both"));
        // Missing files: the only one, or all of them, are the error.
        let e = read(std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(e.contains("No such file"), "{e}");
        let e = read(&[missing.clone(), missing.with_extension("2")])
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("none of these files exists"), "{e}");
    }

    #[test]
    fn selection_errors_name_what_is_missing() {
        let k = Kubeconfig::from_yaml(B).unwrap();
        let env = ProxyEnv::default();
        let e = |context: Option<&str>, k: &Kubeconfig| {
            select(k, context, &env, "kc.yaml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            e(Some("nope"), &k),
            "kubeconfig kc.yaml: no context \"nope\""
        );
        let mut no_current = k.clone();
        no_current.current_context = None;
        assert_eq!(
            e(None, &no_current),
            "kubeconfig kc.yaml: no context chosen and no current-context set"
        );
        assert_eq!(
            e(Some(""), &k),
            "",
            "an empty --context is the current context"
        );
        let mut dangling = k.clone();
        dangling.clusters.retain(|c| c.name != "own");
        assert_eq!(
            e(None, &dangling),
            "kubeconfig kc.yaml: context \"both\": no cluster \"own\""
        );
    }

    #[test]
    fn the_proxy_is_ours_not_kubes() {
        let k = Kubeconfig::from_yaml(B).unwrap();
        let env = ProxyEnv::from_lookup(|name| {
            (name == "HTTPS_PROXY").then(|| "http://proxy.test:3128".to_owned())
        });
        let s = select(&k, None, &env, "kc").unwrap();
        assert_eq!(
            s.config.proxy_url.map(|u| u.to_string()).as_deref(),
            Some("http://proxy.test:3128/")
        );
        // kube would fail on this NO_PROXY (an empty entry); kubectl skips the entry.
        let env = ProxyEnv::from_lookup(|name| match name {
            "HTTPS_PROXY" => Some("http://proxy.test:3128".to_owned()),
            "NO_PROXY" => Some("own.test,".to_owned()),
            _ => None,
        });
        let s = select(&k, None, &env, "kc").unwrap();
        assert_eq!(s.config.proxy_url, None);
        assert_eq!(s.proxy, None);
    }
}
