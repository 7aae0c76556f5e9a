//! Shared by tests/cwt_render.rs and tests/step_contract.rs: rendering the chart's
//! ClusterWorkflowTemplates, and running their steps the way Argo and Kubernetes do, with the
//! stub executables of tests/support/stubs on PATH; and by the template tests
//! (tests/build_templates.rs, tests/user_templates.rs): the binary run as a user runs it.
#![allow(dead_code)] // each test crate uses its own part

pub mod sync_run;

use buildplane::core::render::{Chart, defaults, render_chart};
use buildplane::core::spec::{build_from_value, parse_documents};
use buildplane::core::values::coalesce;
use buildplane::engine::Engine;
use buildplane::engine::argo::ArgoEngine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// What the git stub prints for `rev-parse HEAD` (the test passes it as STUB_GIT_SHA).
pub const SHA: &str = "9c1e5b7a3d2f4e6081726354a5b6c7d8e9f0a1b2";
/// The only env vars whose literal values may be paths: the harness redirects them.
pub const PATH_VARS: [&str; 5] = [
    "WORKSPACE",
    "OUTPUT_FILE",
    "CONTAINERS_STORAGE_CONF",
    "CACHE_DIR",
    "PODMAN_SOCKET",
];

/// The chart's default values with `overlay` merged in.
pub fn values(overlay: Value) -> Value {
    let mut v = defaults(&Chart::builtin()).unwrap();
    coalesce(&mut v, overlay);
    v
}

/// The rendered ClusterWorkflowTemplates, or the render error as text.
pub fn try_render(overlay: Value) -> Result<Vec<Value>, String> {
    let out = render_chart(&Chart::builtin(), &values(overlay)).map_err(|e| e.to_string())?;
    let cwts = out
        .into_iter()
        .filter(|m| m.id.kind == "ClusterWorkflowTemplate");
    Ok(cwts.map(|m| m.object).collect())
}

pub fn render(overlay: Value) -> Vec<Value> {
    try_render(overlay).unwrap()
}

/// The element of the list `list` whose `key` is `name`.
pub fn find<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|x| x[key] == name)
}

pub fn cwt<'a>(cwts: &'a [Value], name: &str) -> &'a Value {
    let found = cwts.iter().find(|c| c["metadata"]["name"] == name);
    found.unwrap_or_else(|| panic!("no ClusterWorkflowTemplate {name}"))
}

/// Every string of `v` with its path (`.spec.templates[1].container.env[2].value`).
pub fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, format!("{path}[{i}]"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| strings(x, format!("{path}.{k}"), out)),
        _ => {}
    }
}

pub fn busybox_available() -> bool {
    Command::new("busybox")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
}

/// `sh`, plus `busybox` (run as `busybox sh`) when it is installed.
pub fn shells() -> Vec<&'static str> {
    let mut v = vec!["sh"];
    if busybox_available() {
        v.push("busybox");
    } else {
        println!("note: busybox is not on PATH; the busybox sh variant is skipped");
    }
    v
}

/// `words` split on spaces, each `{}` replaced by the next of `vals` as one whole argument.
pub fn cmd(words: &str, vals: &[&str]) -> Vec<String> {
    let mut vals = vals.iter();
    let out = words
        .split(' ')
        .map(|w| {
            if w == "{}" {
                vals.next().expect("a value").to_string()
            } else {
                w.into()
            }
        })
        .collect();
    assert!(vals.next().is_none(), "too many values for {words:?}");
    out
}

/// The inputs of one Build.
#[derive(Clone)]
pub struct Case {
    pub template: &'static str,
    pub url: String,
    pub branch: String,
    pub commit: String,
    pub app_path: String,
    pub component: String,
    pub node_version: String,
}

impl Case {
    pub fn new(template: &'static str) -> Case {
        Case {
            template,
            url: "https://github.com/example/repo.git".into(),
            branch: "release".into(),
            commit: String::new(),
            app_path: "/app".into(),
            component: "web".into(),
            node_version: "18.19.1".into(),
        }
    }

    /// The app directory relative to the repository root.
    pub fn app(&self) -> &str {
        self.app_path.strip_prefix('/').unwrap_or(&self.app_path)
    }

    pub fn build(&self) -> Value {
        let params = match self.template {
            "docker" => json!([{"name": "docker-context", "value": self.app_path},
                {"name": "dockerfile-path", "value": format!("{}/Dockerfile", self.app_path)}]),
            "react" => json!([{"name": "node-version", "value": self.node_version}]),
            _ => json!([]),
        };
        json!({"apiVersion": "openchoreo.dev/v1alpha1", "kind": "Build",
            "metadata": {"name": "b1", "namespace": "acme"},
            "spec": {"owner": {"projectName": "proj", "componentName": self.component},
                "repository": {"url": self.url, "appPath": self.app_path,
                    "revision": {"branch": self.branch, "commit": self.commit}},
                "templateRef": {"name": self.template, "parameters": params}}})
    }
}

/// The Workflow the argo engine renders for the case's Build, read as a user's file.
pub fn workflow(case: &Case) -> Value {
    let text = serde_json::to_string(&case.build()).unwrap(); // JSON is YAML
    let (origin, doc) = parse_documents("build.yaml", &text).unwrap().remove(0);
    let build = build_from_value(&origin, doc).unwrap();
    ArgoEngine.validate(&origin, &build).unwrap();
    ArgoEngine.build_object(&build).object
}

pub fn wf_param(wf: &Value, name: &str) -> String {
    let p = find(&wf["spec"]["arguments"]["parameters"], "name", name).unwrap();
    p["value"].as_str().unwrap().to_owned()
}

/// A temporary root: `bin` (the stubs), `stub.log`, `vol` (the workspace volume), `home`,
/// `cwd`, and `canary`, where hostile inputs try to create files.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for d in ["bin", "vol", "home", "canary", "cwd"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let stubs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/stubs");
        for name in ["git", "podman", "pack"] {
            let to = dir.path().join("bin").join(name);
            fs::copy(stubs.join(name), &to).unwrap();
            // Set here too, in case a checkout lost the executable bit.
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(dir.path().join("stub.log"), "").unwrap();
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn p(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_owned()
    }

    /// Every stub call so far as [stub, arg...], from records `name NUL argc NUL arg NUL...`.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let raw = fs::read(self.path("stub.log")).unwrap();
        let mut fields = raw
            .split(|b| *b == 0)
            .map(|f| String::from_utf8(f.to_vec()).unwrap());
        let mut out = Vec::new();
        while let Some(name) = fields.next().filter(|n| !n.is_empty()) {
            let argc: usize = fields.next().unwrap().parse().unwrap();
            let mut call = vec![name];
            call.extend((0..argc).map(|_| fields.next().expect("a whole record")));
            out.push(call);
        }
        out
    }

    pub fn canary_is_empty(&self) -> bool {
        fs::read_dir(self.path("canary")).unwrap().next().is_none()
    }
}

/// Argo's `{{...}}` substitution: one pass, the value pasted in as text.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let end = rest[i..].find("}}").expect("a closed placeholder") + i;
        let key = rest[i + 2..end].trim();
        out.push_str(&rest[..i]);
        out.push_str(
            vars.get(key)
                .unwrap_or_else(|| panic!("unresolved {{{{{key}}}}}")),
        );
        rest = &rest[end + 2..];
    }
    out + rest
}

/// Kubernetes' expansion of env values and args: `$$` is `$`, `$(NAME)` of a variable in
/// `vars` is its value, anything else stays as written.
pub fn k8s_expand(input: &str, vars: &[(String, String)]) -> String {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
        } else if b[i + 1] == b'$' {
            out.push(b'$');
            i += 2;
        } else if let Some(len) = b[i + 1..]
            .starts_with(b"(")
            .then(|| b[i + 2..].iter().position(|c| *c == b')'))
            .flatten()
        {
            let name = &input[i + 2..i + 2 + len];
            match vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => out.extend_from_slice(v.as_bytes()),
                None => out.extend_from_slice(&b[i..i + 3 + len]),
            }
            i += 3 + len;
        } else {
            out.extend_from_slice(&b[i..i + 2]);
            i += 2;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A process environment, in order.
pub type Env = Vec<(String, String)>;

/// A step exited non-zero.
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub stderr: String,
}

/// `name=value` of a list of `{name, value}` parameters (entries without a value skipped).
fn param_map(list: &Value) -> BTreeMap<String, String> {
    let items = list.as_array().into_iter().flatten();
    let with_value = items.filter_map(|p| Some((p["name"].as_str()?, p["value"].as_str()?)));
    with_value
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The env of one step container as the process will see it: placeholders substituted from
/// `scope`, Kubernetes-expanded, and the path-like values redirected into `sb` after checking
/// them against the template's mounts and outputs. Also returns the redirected output files.
fn step_env(
    sb: &Sandbox,
    step: &str,
    tpl: &Value,
    scope: &BTreeMap<String, String>,
) -> (Env, Vec<(String, PathBuf)>) {
    let c = &tpl["container"];
    let mount = |v: &str| find(&c["volumeMounts"], "name", v).map(|m| m["mountPath"].clone());
    let workspace = mount("workspace").expect("workspace mounted");
    let workspace = workspace.as_str().unwrap();
    let outputs: Vec<_> = tpl["outputs"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let (mut env, mut files) = (Vec::new(), Vec::new());
    for e in c["env"].as_array().unwrap() {
        let key = e["name"].as_str().unwrap().to_owned();
        let raw = e["value"].as_str().unwrap();
        let literal_path = raw.starts_with('/');
        assert!(
            !literal_path || PATH_VARS.contains(&key.as_str()),
            "{step}: {key} not redirected"
        );
        let value = k8s_expand(&substitute(raw, scope), &env);
        let value = match key.as_str() {
            "WORKSPACE" => {
                assert_eq!(value, workspace, "{step}: WORKSPACE is the workspace mount");
                sb.p("vol")
            }
            "OUTPUT_FILE" => {
                assert_eq!(outputs.len(), 1, "{step}: OUTPUT_FILE needs one output");
                assert_eq!(
                    value, outputs[0]["valueFrom"]["path"],
                    "{step}: OUTPUT_FILE = the path"
                );
                let to = match value.strip_prefix(&format!("{workspace}/")) {
                    Some(rel) => sb.path("vol").join(rel),
                    None => sb
                        .path(&format!("out/{step}"))
                        .join(Path::new(&value).file_name().unwrap()),
                };
                files.push((outputs[0]["name"].as_str().unwrap().to_owned(), to.clone()));
                to.to_str().unwrap().to_owned()
            }
            "CONTAINERS_STORAGE_CONF" => sb.p(&format!("etc/{step}/storage.conf")),
            "CACHE_DIR" if value.is_empty() => value,
            "CACHE_DIR" => {
                assert_eq!(
                    Some(Value::from(value)),
                    mount("podman-cache"),
                    "{step}: cache mount"
                );
                sb.p("cache")
            }
            "PODMAN_SOCKET" => sb.p("run/podman.sock"),
            _ => value,
        };
        env.push((key, value));
    }
    assert_eq!(
        files.len(),
        outputs.len(),
        "{step}: every output is OUTPUT_FILE"
    );
    (env, files)
}

/// Runs the steps of `cwt`'s entrypoint in order, like Argo, for the Workflow `wf`, under
/// `shell` with a clean environment; `after(step)` runs after each successful step (tests fill
/// the cloned repository there). Returns the output parameters by their Argo names
/// (`steps.<step>.outputs.parameters.<name>`).
pub fn run(
    sb: &Sandbox,
    cwt: &Value,
    wf: &Value,
    shell: &str,
    after: &mut dyn FnMut(&str),
) -> Result<BTreeMap<String, String>, Failure> {
    // Workflow arguments merged over the template's, by name.
    let mut params = param_map(&cwt["spec"]["arguments"]["parameters"]);
    params.extend(param_map(&wf["spec"]["arguments"]["parameters"]));
    let mut vars: BTreeMap<String, String> = params
        .into_iter()
        .map(|(k, v)| (format!("workflow.parameters.{k}"), v))
        .collect();
    let templates = &cwt["spec"]["templates"];
    let entry = find(
        templates,
        "name",
        cwt["spec"]["entrypoint"].as_str().unwrap(),
    )
    .unwrap();
    for group in entry["steps"].as_array().unwrap() {
        let step = &group[0];
        let name = step["name"].as_str().unwrap();
        let tpl = find(templates, "name", step["template"].as_str().unwrap()).unwrap();
        let mut scope = vars.clone();
        for (k, v) in param_map(&step["arguments"]["parameters"]) {
            scope.insert(format!("inputs.parameters.{k}"), substitute(&v, &vars));
        }
        let (env, files) = step_env(sb, name, tpl, &scope);
        // Argo substitutes the whole template, args included (ours hold no placeholder).
        let script = k8s_expand(
            &substitute(tpl["container"]["args"][0].as_str().unwrap(), &scope),
            &env,
        );
        let mut command = Command::new(shell);
        if shell == "busybox" {
            command.arg("sh");
        }
        let o = command
            .arg("-c")
            .arg(&script)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PATH", format!("{}:/usr/bin:/bin", sb.p("bin")))
            .env("HOME", sb.p("home"))
            .env("STUB_LOG", sb.p("stub.log"))
            .env("STUB_GIT_SHA", SHA)
            .current_dir(sb.path("cwd"))
            .output()
            .unwrap();
        if !o.status.success() {
            let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
            return Err(Failure {
                step: name.to_owned(),
                stderr,
            });
        }
        for (param, file) in files {
            let v = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}: {param}: {e}"));
            vars.insert(format!("steps.{name}.outputs.parameters.{param}"), v);
        }
        after(name);
    }
    Ok(vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("steps."))
        .collect())
}

/// The real binary in the checkout, with no KUBECONFIG of the caller's.
pub fn bp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KUBECONFIG")
        .args(args)
        .output()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The objects a successful render printed.
pub fn objects(o: &std::process::Output) -> Vec<Value> {
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_saphyr::from_multiple::<Value>(&text(&o.stdout))
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// Bad input: exit 2, one line on stderr containing every needle, nothing on stdout.
pub fn refused(o: &std::process::Output, needles: &[&str]) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty(), "printed: {}", text(&o.stdout));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in {err}");
    }
    err
}
