//! Which proxy a connection to an API server goes through, answered as kubectl answers it.
//! client-go takes a cluster's `proxy-url` when it has one (for every server, whatever
//! `NO_PROXY` says), otherwise Go's `http.ProxyFromEnvironment`: `HTTPS_PROXY` for an https
//! server, `HTTP_PROXY` for an http one (upper case first, then lower case, the first that is
//! not empty), never for `localhost` or a loopback address, and not for a server `NO_PROXY`
//! names.
//!
//! kube-rs has an answer of its own that differs (`HTTPS_PROXY` for every scheme, loopback
//! servers proxied, host entries of `NO_PROXY` that must repeat the port, an error for an empty
//! entry), so it is never asked: the `Config` it gets already holds this module's answer.
//! Pure, apart from [`ProxyEnv::from_env`], the one place the variables are read.

use http::Uri;
use std::net::IpAddr;

/// A proxy variable that was set: its name (for messages) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub value: String,
}

/// The proxy variables of the environment, as Go reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https_proxy: Option<Var>,
    pub http_proxy: Option<Var>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// The process environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Each variable from `get`: the upper-case name first, then the lower-case one; an empty
    /// value counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                get(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|value| Var { name, value })
            })
        };
        ProxyEnv {
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]).map(|v| v.value),
        }
    }
}

/// Where the proxy in use was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySource {
    /// The cluster's `proxy-url` in the kubeconfig.
    Kubeconfig,
    /// An environment variable of the process (`HTTPS_PROXY`, `http_proxy`, …).
    Environment(&'static str),
}

/// The proxy a client connects through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub uri: Uri,
    pub source: ProxySource,
}

impl Proxy {
    /// Whether the client speaks TLS to the proxy itself (`https://`), not only through it.
    pub fn is_tls(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }
}

/// `scheme://host:port` only: a proxy URL may carry credentials (`http://user:pass@host`), and
/// messages reach logs and Build conditions.
impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let host = self.uri.host().unwrap_or_default();
        match self.uri.port_u16() {
            Some(port) => write!(f, "{scheme}://{host}:{port}"),
            None => write!(f, "{scheme}://{host}"),
        }
    }
}

/// A proxy setting that cannot be used. `value` is shown without its userinfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Not a URL with a host.
    #[error("{from} {value:?} is not a proxy URL")]
    Invalid { from: String, value: String },
    /// A scheme the client cannot speak (no SOCKS support is built in).
    #[error("{from} {value:?}: proxy scheme {scheme:?} is not supported (use http:// or https://)")]
    Scheme {
        from: String,
        value: String,
        scheme: String,
    },
}

/// The proxy for `server`: the cluster's `proxy_url` if set, else the environment's unless
/// `NO_PROXY` or the loopback rule exempts the server; `None` to connect directly.
pub fn choose(
    server: &Uri,
    proxy_url: Option<&str>,
    cluster: &str,
    env: &ProxyEnv,
) -> Result<Option<Proxy>, ProxyError> {
    if let Some(url) = proxy_url.filter(|u| !u.trim().is_empty()) {
        let from = format!("cluster {cluster:?} proxy-url");
        return parse(url, &from, false).map(|uri| {
            Some(Proxy {
                uri,
                source: ProxySource::Kubeconfig,
            })
        });
    }
    let var = match server.scheme_str() {
        Some("https") => env.https_proxy.as_ref(),
        Some("http") => env.http_proxy.as_ref(),
        _ => None,
    };
    let Some(var) = var else { return Ok(None) };
    if bypasses(server, env.no_proxy.as_deref()) {
        return Ok(None);
    }
    parse(&var.value, var.name, true).map(|uri| {
        Some(Proxy {
            uri,
            source: ProxySource::Environment(var.name),
        })
    })
}

/// A proxy URL with a host and the http or https scheme. Like Go, a variable's value without
/// a scheme (`proxy.corp:3128`) is taken as `http://`; a kubeconfig's `proxy-url` must name its
/// scheme.
fn parse(value: &str, from: &str, lenient: bool) -> Result<Uri, ProxyError> {
    let value = value.trim();
    let complete = |u: &Uri| u.scheme().is_some() && u.host().is_some_and(|h| !h.is_empty());
    let uri = match value.parse::<Uri>() {
        Ok(u) if complete(&u) => Some(u),
        _ if lenient && !value.contains("://") => format!("http://{value}")
            .parse::<Uri>()
            .ok()
            .filter(complete),
        _ => None,
    };
    let Some(uri) = uri else {
        return Err(ProxyError::Invalid {
            from: from.to_owned(),
            value: without_userinfo(value),
        });
    };
    match uri.scheme_str() {
        Some("http" | "https") => Ok(uri),
        other => Err(ProxyError::Scheme {
            from: from.to_owned(),
            value: without_userinfo(value),
            scheme: other.unwrap_or_default().to_owned(),
        }),
    }
}

/// `value` with whatever precedes the last `@` of its authority replaced by `***`.
fn without_userinfo(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => value.to_owned(),
    }
}

/// Whether `server` is reached directly although a proxy variable is set: Go never proxies
/// `localhost` or a loopback address, nor a server `no_proxy` names. `no_proxy` is a comma
/// separated list; each entry is `*` (every server), an IP address or CIDR range (matching
/// servers written as an address), or a domain: `corp.example` matches it and its subdomains,
/// `.corp.example` and `*.corp.example` only its subdomains. An address or domain may end in
/// `:port`, matching that port only. Entries match case-insensitively; an empty or
/// unparseable entry is skipped, as Go skips it.
pub fn bypasses(server: &Uri, no_proxy: Option<&str>) -> bool {
    let host = server
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = server
        .port_u16()
        .or(match server.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })
        .map(|p| p.to_string())
        .unwrap_or_default();
    let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    let Some(list) = no_proxy else { return false };
    list.split(',').any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        entry == "*" || entry_matches(&entry, &host, &port, ip)
    })
}

fn entry_matches(entry: &str, host: &str, port: &str, ip: Option<IpAddr>) -> bool {
    if entry.is_empty() {
        return false;
    }
    if let Some((net, bits)) = entry.split_once('/') {
        return match (net.parse::<IpAddr>(), bits.parse::<u8>(), ip) {
            (Ok(net), Ok(bits), Some(ip)) => in_cidr(ip, net.to_canonical(), bits),
            _ => false,
        };
    }
    let (entry_host, entry_port) = split_port(entry);
    let port_ok = entry_port.is_none_or(|p| p == port);
    if entry_host.is_empty() {
        return false;
    }
    if let Ok(entry_ip) = entry_host.parse::<IpAddr>() {
        return ip == Some(entry_ip.to_canonical()) && port_ok;
    }
    if ip.is_some() {
        return false;
    }
    let entry_host = entry_host.strip_prefix('*').unwrap_or(entry_host);
    let matched = match entry_host.strip_prefix('.') {
        Some(domain) => host.len() > domain.len() && host.ends_with(entry_host),
        None => host == entry_host || host.ends_with(&format!(".{entry_host}")),
    };
    matched && port_ok
}

/// `host:port`, `[v6]:port` or `[v6]` into host and port; a bare IPv6 address has no port.
fn split_port(entry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (entry, None),
        };
    }
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: Option<&str>, http: Option<&str>, no_proxy: Option<&str>) -> ProxyEnv {
        let var = |name, v: Option<&str>| {
            v.map(|v| Var {
                name,
                value: v.to_owned(),
            })
        };
        ProxyEnv {
            https_proxy: var("HTTPS_PROXY", https),
            http_proxy: var("HTTP_PROXY", http),
            no_proxy: no_proxy.map(str::to_owned),
        }
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    fn chosen(server: &str, proxy_url: Option<&str>, env: &ProxyEnv) -> Option<String> {
        choose(&uri(server), proxy_url, "c", env)
            .unwrap()
            .map(|p| p.uri.to_string())
    }

    #[test]
    fn the_environment_is_read_upper_case_first_and_empty_counts_as_unset() {
        let vars = [
            ("HTTPS_PROXY", ""),
            ("https_proxy", "http://lower:1"),
            ("HTTP_PROXY", "http://upper:2"),
            ("http_proxy", "http://lower:2"),
            ("no_proxy", ".corp"),
        ];
        let got = ProxyEnv::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(got, {
            let mut e = env(
                Some("http://lower:1"),
                Some("http://upper:2"),
                Some(".corp"),
            );
            e.https_proxy.as_mut().unwrap().name = "https_proxy";
            e
        });
    }

    #[test]
    fn the_scheme_of_the_server_picks_the_variable() {
        let e = env(Some("http://s:3128"), Some("http://p:3128"), None);
        assert_eq!(
            chosen("https://api.test:6443", None, &e).as_deref(),
            Some("http://s:3128/")
        );
        assert_eq!(
            chosen("http://api.test:8080", None, &e).as_deref(),
            Some("http://p:3128/")
        );
        // No fallback from one scheme's variable to the other's, as in Go.
        let only_http = env(None, Some("http://p:3128"), None);
        assert_eq!(chosen("https://api.test", None, &only_http), None);
        let p = choose(&uri("https://api.test"), None, "c", &e)
            .unwrap()
            .unwrap();
        assert_eq!(p.source, ProxySource::Environment("HTTPS_PROXY"));
    }

    #[test]
    fn a_clusters_proxy_url_wins_even_over_no_proxy_and_loopback() {
        let e = env(Some("http://env:3128"), None, Some("*"));
        for server in ["https://api.test:6443", "https://127.0.0.1:6443"] {
            let p = choose(&uri(server), Some("http://kc:8080"), "c", &e)
                .unwrap()
                .unwrap();
            assert_eq!(p.uri.to_string(), "http://kc:8080/");
            assert_eq!(p.source, ProxySource::Kubeconfig);
        }
        // An empty proxy-url is no proxy-url.
        assert_eq!(
            chosen(
                "https://api.test",
                Some(""),
                &env(Some("http://env:1"), None, None)
            )
            .as_deref(),
            Some("http://env:1/")
        );
    }

    #[test]
    fn loopback_and_localhost_are_never_proxied_from_the_environment() {
        let e = env(Some("http://env:3128"), Some("http://env:3128"), None);
        for server in [
            "https://127.0.0.1:6443",
            "https://127.0.0.2",
            "https://[::1]:6443",
            "https://[::ffff:127.0.0.1]:6443",
            "https://localhost:6443",
            "http://LOCALHOST",
        ] {
            assert_eq!(chosen(server, None, &e), None, "{server}");
        }
        for server in [
            "https://[::2]",
            "https://localhost.corp",
            "https://10.0.0.1",
        ] {
            assert!(chosen(server, None, &e).is_some(), "{server}");
        }
    }

    #[test]
    fn no_proxy_entries_match_as_go_matches_them() {
        let list = "corp.example, .sub.example, *.wild.example, 192.168.1.1, 192.168.1.2:81, \
                    10.0.0.0/30, 2001:db8::1, [2001:db8::2]:443, 2002:db8::/64, Ported.example:8443, , :1";
        let cases = [
            ("https://corp.example", true),
            ("https://api.corp.example:6443", true),
            ("https://notcorp.example", false),
            ("https://corp.example.org", false),
            ("https://sub.example", false),
            ("https://api.sub.example", true),
            ("https://wild.example", false),
            ("https://a.b.wild.example", true),
            ("https://awild.example", false),
            ("https://192.168.1.1:6443", true),
            ("https://192.168.1.2", false),
            ("https://192.168.1.2:81", true),
            ("https://10.0.0.3", true),
            ("https://10.0.0.4", false),
            ("https://[2001:db8::1]:6443", true),
            ("https://[2001:db8::2]", true),
            ("https://[2001:db8::2]:6443", false),
            ("https://[2002:db8::5]", true),
            ("https://[2002:db9::5]", false),
            ("https://ported.example:8443", true),
            ("https://ported.example", false),
            ("HTTPS://API.CORP.EXAMPLE", true),
            // Domain entries never match a server written as an address, and the reverse.
            ("https://1.168.192.corp.example", true),
            ("https://192.168.1.1.nip.example", false),
        ];
        for (server, bypass) in cases {
            assert_eq!(bypasses(&uri(server), Some(list)), bypass, "{server}");
        }
        assert!(bypasses(&uri("https://any.test"), Some("x.test, *")));
        assert!(!bypasses(&uri("https://any.test"), Some(" , ")));
        assert!(!bypasses(&uri("https://any.test"), None));
        let e = env(Some("http://env:3128"), None, Some("corp.example"));
        assert_eq!(chosen("https://api.corp.example", None, &e), None);
    }

    #[test]
    fn proxy_values_are_checked_and_shown_without_credentials() {
        // A value without a scheme is http, as Go takes it.
        let e = env(Some("proxy.corp:3128"), None, None);
        assert_eq!(
            chosen("https://api.test", None, &e).as_deref(),
            Some("http://proxy.corp:3128/")
        );
        let e = env(Some("http://user:s3cret@proxy.corp:3128"), None, None);
        let p = choose(&uri("https://api.test"), None, "c", &e)
            .unwrap()
            .unwrap();
        assert_eq!(p.to_string(), "http://proxy.corp:3128");
        assert!(!p.is_tls());
        let e = env(Some("socks5://user:s3cret@proxy.corp:1080"), None, None);
        let err = choose(&uri("https://api.test"), None, "c", &e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTPS_PROXY \"socks5://***@proxy.corp:1080\": proxy scheme \"socks5\" is not supported (use http:// or https://)"
        );
        // A proxy-url must name its scheme.
        let err = choose(
            &uri("https://api.test"),
            Some("proxy:3128"),
            "plane",
            &ProxyEnv::default(),
        );
        assert!(matches!(
            err,
            Err(ProxyError::Invalid { .. } | ProxyError::Scheme { .. })
        ));
        let err = choose(
            &uri("https://api.test"),
            Some("http://"),
            "plane",
            &ProxyEnv::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster \"plane\" proxy-url \"http://\" is not a proxy URL"
        );
        // A variable set to garbage only matters for servers it would apply to.
        let e = env(Some("http://"), None, Some(".corp"));
        assert_eq!(chosen("https://api.corp", None, &e), None);
        assert!(choose(&uri("https://api.test"), None, "c", &e).is_err());
        assert_eq!(
            without_userinfo("u:p@h:1/path@x"),
            "***@h:1/path@x".to_owned()
        );
    }
}
