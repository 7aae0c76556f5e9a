//! What a kubeconfig the operator did not write may make the controller do. kubectl trusts its
//! kubeconfig: it runs the `exec` plugin it names and reads the files it points at. A
//! BuildPlane's Secret is written by a tenant, so from it the controller takes only what is
//! inline — the server, CA data, a token, client certificate and key data, basic auth — and
//! refuses every field that would run a command or read one of the controller's own files (in
//! a pod, its ServiceAccount token), which it would then send to a server the Secret names.
//!
//! Every cluster and user of the kubeconfig is checked, not only the current context's: which
//! one is used can change with the context, the policy must not. The check runs on what kube
//! parsed (documents merged, first entry of a name wins), so it sees what kube would use.
//!
//! Proxies: a Secret's `proxy-url` is honoured (the Secret could name any address as its
//! server just as well, and the proxy's credentials are the tenant's own). The operator's proxy
//! variables apply to build planes as to every connection of the controller, but kube checks a
//! TLS connection to an `https://` proxy with the kubeconfig's own CA, `tls-server-name` and
//! `insecure-skip-tls-verify`: a Secret would decide how the operator's proxy (and the
//! credentials the operator put in its URL) is authenticated, so that one is refused
//! (`check_proxy`).
//! Pure: it reads nothing.

use super::proxy::{Proxy, ProxySource};
use kube::config::{AuthInfo, Cluster, Kubeconfig};

/// What a kubeconfig from a Secret may use beyond inline data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KubeconfigPolicy {
    /// `exec` credential plugins run (`--insecure-kubeconfig-exec`); nothing else is relaxed.
    pub allow_exec: bool,
}

/// A kubeconfig field the policy refuses; `field` names it as `users[0].user.exec`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An exec credential plugin: the command it names would run inside the controller.
    #[error(
        "{field} is not allowed (an exec credential plugin runs a command in the controller); run the controller with --insecure-kubeconfig-exec to allow it"
    )]
    Exec { field: String },
    /// An auth-provider plugin: its configuration can run a command (gcp's `cmd-path`) or read
    /// the controller's files and environment.
    #[error(
        "{field} is not allowed (an auth-provider plugin can run a command in the controller); use a token or a client certificate"
    )]
    AuthProvider { field: String },
    /// A path: the controller would read a file of its own and use it as the Secret's data.
    #[error(
        "{field} is not allowed (it names a file the controller would read); put the contents in {inline} instead"
    )]
    File { field: String, inline: &'static str },
    /// The operator's proxy (a variable of the controller's environment) is reached over TLS,
    /// which kube would verify with the Secret's TLS settings.
    #[error(
        "the controller's proxy {proxy} ({variable}) is an https:// proxy, and its certificate would be checked with this kubeconfig's certificate authority, tls-server-name and insecure-skip-tls-verify; give the controller an http:// proxy, or name the build plane in its NO_PROXY"
    )]
    ProxyTls {
        variable: &'static str,
        proxy: String,
    },
}

impl Refused {
    /// The refused field, as `users[0].user.exec` (the variable, for the operator's proxy).
    pub fn field(&self) -> &str {
        match self {
            Refused::Exec { field }
            | Refused::AuthProvider { field }
            | Refused::File { field, .. } => field,
            Refused::ProxyTls { variable, .. } => variable,
        }
    }
}

/// The first field of `config` that `policy` refuses, clusters before users.
pub fn check(config: &Kubeconfig, policy: KubeconfigPolicy) -> Result<(), Refused> {
    for (i, named) in config.clusters.iter().enumerate() {
        if let Some(cluster) = &named.cluster {
            check_cluster(&format!("clusters[{i}].cluster"), cluster)?;
        }
    }
    for (i, named) in config.auth_infos.iter().enumerate() {
        if let Some(user) = &named.auth_info {
            check_user(&format!("users[{i}].user"), user, policy)?;
        }
    }
    Ok(())
}

/// The proxy a Secret's connection would go through: anything but an `https://` proxy of the
/// operator's environment (see the module).
pub fn check_proxy(proxy: Option<&Proxy>) -> Result<(), Refused> {
    match proxy {
        Some(
            p @ Proxy {
                source: ProxySource::Environment(variable),
                ..
            },
        ) if p.is_tls() => Err(Refused::ProxyTls {
            variable,
            proxy: p.to_string(),
        }),
        _ => Ok(()),
    }
}

fn file(at: &str, name: &str, inline: &'static str) -> Refused {
    Refused::File {
        field: format!("{at}.{name}"),
        inline,
    }
}

/// A cluster may hold its server, CA data, `insecure-skip-tls-verify`, `tls-server-name` and
/// `proxy-url` (an address like the server's, which reaches nothing the server field cannot;
/// http or https, checked when the client is made); only the CA path names a file.
fn check_cluster(at: &str, cluster: &Cluster) -> Result<(), Refused> {
    if cluster.certificate_authority.is_some() {
        return Err(file(
            at,
            "certificate-authority",
            "certificate-authority-data",
        ));
    }
    Ok(())
}

/// A user may hold a token, client certificate and key data, basic auth and impersonation
/// (headers sent to the Secret's own server); plugins and paths are refused.
fn check_user(at: &str, user: &AuthInfo, policy: KubeconfigPolicy) -> Result<(), Refused> {
    if user.exec.is_some() && !policy.allow_exec {
        return Err(Refused::Exec {
            field: format!("{at}.exec"),
        });
    }
    if user.auth_provider.is_some() {
        return Err(Refused::AuthProvider {
            field: format!("{at}.auth-provider"),
        });
    }
    if user.token_file.is_some() {
        return Err(file(at, "tokenFile", "token"));
    }
    if user.client_certificate.is_some() {
        return Err(file(at, "client-certificate", "client-certificate-data"));
    }
    if user.client_key.is_some() {
        return Err(file(at, "client-key", "client-key-data"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: KubeconfigPolicy = KubeconfigPolicy { allow_exec: false };
    const EXEC: KubeconfigPolicy = KubeconfigPolicy { allow_exec: true };

    /// A kubeconfig with one cluster and one user holding the given fields (YAML flow maps).
    fn config(cluster: &str, user: &str) -> Kubeconfig {
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: c\n  cluster: {{server: 'https://plane.test:6443', {cluster}}}\n\
             users:\n- name: u\n  user: {{{user}}}\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: u}}\n\
             current-context: x\n"
        );
        Kubeconfig::from_yaml(&text).unwrap()
    }

    fn refused(cluster: &str, user: &str, policy: KubeconfigPolicy) -> Refused {
        check(&config(cluster, user), policy).unwrap_err()
    }

    #[test]
    fn inline_fields_are_accepted() {
        for (cluster, user) in [
            ("certificate-authority-data: Q0E=", "token: abc"),
            ("insecure-skip-tls-verify: true", "token: abc"),
            ("tls-server-name: plane", "username: u, password: p"),
            ("proxy-url: 'http://proxy.test:3128'", "token: abc"),
            (
                "certificate-authority-data: Q0E=",
                "client-certificate-data: Q0VSVA==, client-key-data: S0VZ",
            ),
            (
                "certificate-authority-data: Q0E=",
                "token: abc, as: someone, as-groups: [g]",
            ),
        ] {
            assert_eq!(
                check(&config(cluster, user), STRICT),
                Ok(()),
                "{cluster} / {user}"
            );
        }
    }

    #[test]
    fn exec_is_refused_unless_allowed_and_named_with_the_flag() {
        let user = "exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, args: [-c, 'touch /tmp/x']}";
        let e = refused("insecure-skip-tls-verify: true", user, STRICT);
        assert_eq!(e.field(), "users[0].user.exec");
        assert_eq!(
            e.to_string(),
            "users[0].user.exec is not allowed (an exec credential plugin runs a command in the controller); run the controller with --insecure-kubeconfig-exec to allow it"
        );
        assert_eq!(
            check(&config("insecure-skip-tls-verify: true", user), EXEC),
            Ok(())
        );
    }

    #[test]
    fn plugins_and_paths_are_refused_even_with_exec_allowed() {
        for (cluster, user, field) in [
            (
                "certificate-authority: /etc/ca.crt",
                "token: abc",
                "clusters[0].cluster.certificate-authority",
            ),
            (
                "insecure-skip-tls-verify: true",
                "tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token",
                "users[0].user.tokenFile",
            ),
            (
                "insecure-skip-tls-verify: true",
                "client-certificate: /etc/tls.crt, client-key-data: S0VZ",
                "users[0].user.client-certificate",
            ),
            (
                "insecure-skip-tls-verify: true",
                "client-certificate-data: Q0VSVA==, client-key: /etc/tls.key",
                "users[0].user.client-key",
            ),
            (
                "insecure-skip-tls-verify: true",
                "auth-provider: {name: gcp, config: {cmd-path: /bin/sh}}",
                "users[0].user.auth-provider",
            ),
        ] {
            for policy in [STRICT, EXEC] {
                let e = refused(cluster, user, policy);
                assert_eq!(e.field(), field, "{e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("{field} is not allowed")),
                    "{e}"
                );
            }
        }
        // A path is refused even beside the inline data that would take precedence.
        let e = refused(
            "certificate-authority-data: Q0E=, certificate-authority: /etc/ca.crt",
            "token: abc, tokenFile: /etc/token",
            STRICT,
        );
        assert!(
            e.to_string()
                .ends_with("put the contents in certificate-authority-data instead"),
            "{e}"
        );
    }

    #[test]
    fn only_an_https_proxy_of_the_operator_is_refused() {
        let proxy = |url: &str, source| Proxy {
            uri: url.parse().unwrap(),
            source,
        };
        let env = ProxySource::Environment("HTTPS_PROXY");
        assert_eq!(check_proxy(None), Ok(()));
        assert_eq!(check_proxy(Some(&proxy("http://corp:3128", env))), Ok(()));
        assert_eq!(
            check_proxy(Some(&proxy("https://t:3128", ProxySource::Kubeconfig))),
            Ok(())
        );
        let e = check_proxy(Some(&proxy("https://u:p@corp:3129", env))).unwrap_err();
        assert_eq!(e.field(), "HTTPS_PROXY");
        assert!(
            e.to_string().starts_with(
                "the controller's proxy https://corp:3129 (HTTPS_PROXY) is an https:// proxy"
            ),
            "{e}"
        );
    }

    #[test]
    fn every_entry_is_checked_not_only_the_current_context() {
        let text = "clusters:\n- name: a\n  cluster: {server: 'https://a.test'}\n\
                    users:\n- name: ok\n  user: {token: abc}\n\
                    - name: other\n  user: {tokenFile: /etc/token}\n\
                    contexts:\n- name: x\n  context: {cluster: a, user: ok}\n\
                    current-context: x\n\
                    ---\n\
                    users:\n- name: late\n  user: {exec: {command: sh}}\n";
        let config = Kubeconfig::from_yaml(text).unwrap();
        assert_eq!(
            check(&config, EXEC).unwrap_err().field(),
            "users[1].user.tokenFile"
        );
        let mut without = config.clone();
        without.auth_infos.remove(1);
        assert_eq!(
            check(&without, STRICT).unwrap_err().field(),
            "users[1].user.exec"
        );
        assert_eq!(check(&without, EXEC), Ok(()));
    }
}
