//! The step scripts of the rendered ClusterWorkflowTemplates, run the way Argo runs them: a
//! Build becomes a Workflow (the argo engine), its arguments are substituted into each step
//! container's env as Argo substitutes text, Kubernetes' `$(VAR)` expansion is applied, and
//! `sh -c <args[0]>` runs (also under `busybox sh`) with stub `git`, `podman` and `pack`
//! (tests/support/stubs) that record their argv. Only path-like env values are redirected
//! into a temporary directory, after checking them against the template's mounts and outputs.

mod support;

use buildplane::core::catalog::template_names;
use serde_json::{Value, json};
use std::fs;
use support::{Case, SHA, Sandbox, cmd, run, shells, strings, wf_param, workflow};

/// Registry settings of one run: values, push and pull endpoints, `--tls-verify`.
struct Registry {
    values: Value,
    push: &'static str,
    pull: &'static str,
    tls: &'static str,
}

fn registries() -> [Registry; 2] {
    let local = json!({"type": "local",
        "local": {"pushEndpoint": "push.local:5000", "pullEndpoint": "pull.local:30003"}});
    let external = json!({"type": "external", "tlsVerify": true,
        "external": {"endpoint": "registry.example.com/acme"}});
    [
        Registry {
            values: local,
            push: "push.local:5000",
            pull: "pull.local:30003",
            tls: "false",
        },
        Registry {
            values: external,
            push: "registry.example.com/acme",
            pull: "registry.example.com/acme",
            tls: "true",
        },
    ]
}

/// The rendered ClusterWorkflowTemplate `name`: defaults, test images, then `overlay`.
fn cwt(name: &str, overlay: Value) -> Value {
    let images = json!({"node": "mirror.example/node", "nginx": "mirror.example/nginx:1",
        "cli": "mirror.example/cli:1", "ballerinaBuilder": "mirror.example/bal-builder:18",
        "ballerinaRun": "mirror.example/bal-run:18", "googleBuilder": "mirror.example/gcp-builder",
        "googleRun": "mirror.example/gcp-run"});
    let mut v = json!({"global": {"defaultResources": {"images": images}}});
    buildplane::core::values::coalesce(&mut v, overlay);
    support::cwt(&support::render(v), name).clone()
}

fn cwt_with(name: &str, reg: &Registry) -> Value {
    cwt(
        name,
        json!({"global": {"defaultResources": {"registry": reg.values}}}),
    )
}

/// What a real clone would have brought: workload.yaml (and the docker case's Dockerfile).
fn fill_repo(sb: &Sandbox, case: &Case) {
    let app = sb.path("vol/source").join(case.app());
    fs::create_dir_all(&app).unwrap();
    fs::write(
        app.join("workload.yaml"),
        "apiVersion: openchoreo.dev/v1alpha1\n",
    )
    .unwrap();
    if case.template == "docker" {
        fs::write(app.join("Dockerfile"), "FROM scratch\n").unwrap();
    }
}

/// Runs `case`'s Workflow, filling the repository after the clone.
fn run_case(
    sb: &Sandbox,
    cwt: &Value,
    case: &Case,
    shell: &str,
) -> Result<Outputs, support::Failure> {
    run(sb, cwt, &workflow(case), shell, &mut |s| {
        if s == "clone-step" {
            fill_repo(sb, case);
        }
    })
}

type Outputs = std::collections::BTreeMap<String, String>;

/// Every stub call a successful build of `case` makes, in order (cold cache).
fn expected_calls(sb: &Sandbox, case: &Case, wf: &Value, reg: &Registry) -> Vec<Vec<String>> {
    let (vol, src) = (sb.p("vol"), sb.p("vol/source"));
    let app = format!("{src}/{}", case.app());
    let tag = format!("{}-{}", wf_param(wf, "image-tag"), &SHA[..8]);
    let img = format!("{}:{tag}", wf_param(wf, "image-name"));
    let (tar, pushed) = (
        format!("{vol}/app-image.tar"),
        format!("{}/{img}", reg.push),
    );
    let (dockerfile, sock) = (
        format!("{app}/Dockerfile"),
        format!("unix://{}", sb.p("run/podman.sock")),
    );
    let clone = "git clone --single-branch --depth 1 --branch {} -- {} {}";
    let mut calls = vec![
        cmd(clone, &[&case.branch, &case.url, &src]),
        cmd("git rev-parse HEAD", &[]),
    ];
    match case.template {
        "docker" => calls.push(cmd(
            "podman build -t {} -f {} {}",
            &[&img, &dockerfile, &app],
        )),
        "react" => calls.push(cmd(
            "podman build -t {} -f {} --build-arg NODE_IMAGE=mirror.example/node --build-arg {} \
             --build-arg NGINX_IMAGE=mirror.example/nginx:1 {}",
            &[
                &img,
                &dockerfile,
                &format!("NODE_VERSION={}", case.node_version),
                &app,
            ],
        )),
        t => {
            let (b, r, p) = match t {
                "ballerina-buildpack" => (
                    "mirror.example/bal-builder:18",
                    "mirror.example/bal-run:18",
                    "ballerina",
                ),
                _ => (
                    "mirror.example/gcp-builder",
                    "mirror.example/gcp-run",
                    "google",
                ),
            };
            calls.push(cmd("podman system service --time=0 {}", &[&sock]));
            for (image, kind) in [(b, "builder"), (r, "run")] {
                let saved = format!("{}/<tmp>/{p}-{kind}.tar", sb.p("cache"));
                calls.push(cmd("podman pull {}", &[image]));
                calls.push(cmd("podman save -o {} {}", &[&saved, image]));
            }
            let pack = "pack build {} --builder {} --docker-host inherit --path {} --pull-policy if-not-present";
            calls.push(cmd(pack, &[&img, b, &app]));
            if t == "ballerina-buildpack" {
                let volume = format!("{vol}:/app/generated-artifacts:rw");
                calls
                    .last_mut()
                    .unwrap()
                    .extend(cmd("--volume {}", &[&volume]));
            }
        }
    }
    let tls = format!("--tls-verify={}", reg.tls);
    let run = "podman run --rm --network=none -v {} -w /app mirror.example/cli:1 create workload \
               --project proj --component {} --image {} --descriptor workload.yaml -o workload-cr.yaml";
    let mount = format!("{app}:/app:rw");
    calls.extend([
        cmd("podman save -o {} {}", &[&tar, &img]),
        cmd("podman load -i {}", &[&tar]),
        cmd("podman tag {} {}", &[&img, &pushed]),
        cmd("podman push {} {}", &[&tls, &pushed]),
        cmd(
            run,
            &[&mount, &case.component, &format!("{}/{img}", reg.pull)],
        ),
    ]);
    calls
}

/// The stub calls, with the random part of cache temp paths (`CACHE/.save.XXXXXX/`) as `<tmp>`.
fn normalized_calls(sb: &Sandbox) -> Vec<Vec<String>> {
    let (cache, mut calls) = (sb.p("cache"), sb.calls());
    for arg in calls.iter_mut().flatten() {
        if let Some(rest) = arg.strip_prefix(&format!("{cache}/.save.")) {
            *arg = format!("{cache}/<tmp>/{}", rest.split_once('/').unwrap().1);
        }
    }
    calls
}

/// Runs `case` end to end in `sb` and checks outputs, stub argv, storage.conf and the cache.
fn check_case(sb: &Sandbox, case: &Case, reg: &Registry, shell: &str) {
    let ctx = format!("{} / {} / {shell}", case.template, reg.push);
    let wf = workflow(case);
    assert_eq!(wf_param(&wf, "image-tag"), "default");
    let outputs = run_case(sb, &cwt_with(case.template, reg), case, shell)
        .unwrap_or_else(|f| panic!("{ctx}: {} failed: {}", f.step, f.stderr));
    let rev = &outputs["steps.clone-step.outputs.parameters.git-revision"];
    assert_eq!(rev, &SHA[..8], "{ctx}: 8 characters, no newline");
    let image = format!("{}/{}:default-{rev}", reg.pull, wf_param(&wf, "image-name"));
    assert_eq!(
        outputs["steps.push-step.outputs.parameters.image"], image,
        "{ctx}"
    );
    let cr = &outputs["steps.workload-create-step.outputs.parameters.workload-cr"];
    assert!(cr.starts_with("kind: Workload\n"), "{ctx}: {cr}");
    assert!(cr.contains(&format!("\nimage: {image}\n")), "{ctx}: {cr}");
    assert_eq!(
        normalized_calls(sb),
        expected_calls(sb, case, &wf, reg),
        "{ctx}"
    );
    let mut confs = vec!["push-step", "workload-create-step"];
    if case.template != "react" {
        confs.push("build-step");
    }
    for step in confs {
        let conf = fs::read_to_string(sb.path(&format!("etc/{step}/storage.conf"))).unwrap();
        let want = "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n\
            graphroot = \"/var/lib/containers/storage\"\n\n[storage.options.overlay]\n\
            mount_program = \"/usr/bin/fuse-overlayfs\"\n";
        assert_eq!(conf, want, "{ctx}: {step}");
    }
    let prefix = match case.template {
        "ballerina-buildpack" => Some("ballerina"),
        "google-cloud-buildpacks" => Some("google"),
        _ => None,
    };
    for t in prefix
        .iter()
        .flat_map(|p| [format!("{p}-builder.tar"), format!("{p}-run.tar")])
    {
        assert!(sb.path("cache").join(&t).is_file(), "{ctx}: {t} cached");
    }
    if case.template == "react" {
        let app = sb.path("vol/source").join(case.app());
        let dockerfile = fs::read_to_string(app.join("Dockerfile")).unwrap();
        assert!(
            !dockerfile.contains(&case.node_version),
            "{ctx}: node-version in the Dockerfile"
        );
        assert!(dockerfile.contains("FROM ${NODE_IMAGE}:${NODE_VERSION}-alpine AS builder"));
        let conf = fs::read_to_string(app.join("default.conf")).unwrap();
        assert!(conf.contains("listen 80;") && conf.contains("try_files $uri /index.html;"));
    }
    assert!(sb.canary_is_empty(), "{ctx}: a hostile input ran a command");
}

#[test]
fn every_template_runs_end_to_end_for_both_registries() {
    for shell in shells() {
        for reg in &registries() {
            for t in template_names() {
                check_case(&Sandbox::new(), &Case::new(t), reg, shell);
            }
        }
    }
}

/// Texts that create files in the sandbox's canary directory if a shell ever evaluates them:
/// unquoted or in double quotes (0), pasted into single quotes (1) or double quotes (2), and
/// a mix with quotes, a comment and a newline (3).
fn hostile(sb: &Sandbox, variant: usize, prefix: &str) -> String {
    let c = sb.p("canary");
    let text = match variant {
        0 => format!("$(touch {c}/a)`touch {c}/b`;touch {c}/c;\ntouch {c}/d\nx"),
        1 => format!("';touch {c}/e;'"),
        2 => format!("\";touch {c}/f;\""),
        _ => format!("$(touch {c}/g)`touch {c}/h`\"'; touch {c}/i #\n&& touch {c}/j | x $HOME"),
    };
    format!("{prefix}{text}")
}

#[test]
fn hostile_inputs_stay_whole_arguments() {
    for shell in shells() {
        for t in template_names() {
            for variant in 0..4 {
                let sb = Sandbox::new();
                let mut case = Case::new(t);
                case.url = hostile(&sb, variant, "--upload-pack=x ");
                case.branch = hostile(&sb, variant, "--orphan ");
                case.app_path = hostile(&sb, variant, "/app ");
                case.component = hostile(&sb, variant, "web");
                // In the Workflow the text is only ever an argument value.
                let mut all = Vec::new();
                strings(&workflow(&case), String::new(), &mut all);
                for (path, s) in all.iter().filter(|(_, s)| s.contains("touch ")) {
                    assert!(
                        path.starts_with(".spec.arguments.parameters["),
                        "{path}: {s}"
                    );
                    assert!(path.ends_with("].value"), "{path}: {s}");
                }
                // Whole arguments: check_case's exact argv check, with the hostile values; and
                // nothing in the canary directory.
                check_case(&sb, &case, &registries()[0], shell);
            }
        }
    }
}

/// Runs `case` expecting `step` to refuse it with `message`; returns the stub calls made.
fn refused(case: &Case, sb: &Sandbox, shell: &str, step: &str, message: &str) -> Vec<Vec<String>> {
    let f = run_case(sb, &cwt_with(case.template, &registries()[0]), case, shell)
        .expect_err("the step must refuse the input");
    assert_eq!(f.step, step, "{}", f.stderr);
    assert!(
        f.stderr.contains(message),
        "{shell}: expected {message:?} in {:?}",
        f.stderr
    );
    assert!(
        sb.canary_is_empty(),
        "{shell}: a hostile input ran a command"
    );
    sb.calls()
}

#[test]
fn hostile_commit_and_node_version_are_refused() {
    for shell in shells() {
        let sb = Sandbox::new();
        let mut case = Case::new("docker");
        case.commit = hostile(&sb, 0, "0123abcd");
        let calls = refused(
            &case,
            &sb,
            shell,
            "clone-step",
            "commit must be a hexadecimal commit id",
        );
        assert!(calls.is_empty(), "git ran: {calls:?}");

        let sb = Sandbox::new();
        let mut case = Case::new("react");
        case.node_version = hostile(&sb, 3, "20");
        let calls = refused(
            &case,
            &sb,
            shell,
            "build-step",
            "node-version may only contain",
        );
        assert!(calls.iter().all(|c| c[0] == "git"), "{calls:?}");
    }
}

#[test]
fn a_commit_is_fetched_and_checked_out() {
    for shell in shells() {
        let sb = Sandbox::new();
        let mut case = Case::new("google-cloud-buildpacks");
        case.commit = "4e6081726354a5b6c7d8e9f0a1b29c1e5b7a3d2f".into();
        assert_eq!(wf_param(&workflow(&case), "branch"), "");
        let outputs = run_case(
            &sb,
            &cwt_with(case.template, &registries()[1]),
            &case,
            shell,
        )
        .unwrap_or_else(|f| panic!("{}: {}", f.step, f.stderr));
        // The revision is what was checked out (HEAD), not the text of the parameter.
        assert_eq!(
            outputs["steps.clone-step.outputs.parameters.git-revision"],
            SHA[..8]
        );
        let (src, c) = (sb.p("vol/source"), case.commit.as_str());
        let git: Vec<_> = sb.calls().into_iter().filter(|c| c[0] == "git").collect();
        assert_eq!(
            git,
            [
                cmd(
                    "git clone --no-checkout --depth 1 -- {} {}",
                    &[&case.url, &src]
                ),
                cmd("git config --global advice.detachedHead false", &[]),
                cmd("git fetch --depth 1 origin {}", &[c]),
                cmd("git checkout --detach {}", &[c]),
                cmd("git rev-parse HEAD", &[]),
            ]
        );
    }
}

/// Runs clone-step and build-step of a ballerina build; returns podman's calls before the
/// final `pack build` (the image pulls, loads and saves), without "podman".
fn buildpack_image_calls(sb: &Sandbox, cache: bool, shell: &str) -> Vec<Vec<String>> {
    let case = Case::new("ballerina-buildpack");
    let mut cwt = cwt(
        case.template,
        json!({"global": {"defaultResources": {"buildCache": {"enabled": cache}}}}),
    );
    cwt["spec"]["templates"][0]["steps"]
        .as_array_mut()
        .unwrap()
        .truncate(2);
    fs::write(sb.path("stub.log"), "").unwrap();
    run_case(sb, &cwt, &case, shell).unwrap_or_else(|f| panic!("{}: {}", f.step, f.stderr));
    let calls = normalized_calls(sb);
    let before_pack = calls.iter().take_while(|c| c[0] != "pack");
    before_pack
        .filter(|c| c[0] == "podman" && c[1] != "system")
        .map(|c| c[1..].to_vec())
        .collect()
}

#[test]
fn buildpack_images_come_from_the_cache_when_it_holds_them() {
    let (b, r) = ("mirror.example/bal-builder:18", "mirror.example/bal-run:18");
    for shell in shells() {
        let sb = Sandbox::new();
        let (cache, tmp) = (sb.p("cache"), format!("{}/<tmp>", sb.p("cache")));
        let (bt, rt) = (
            format!("{cache}/ballerina-builder.tar"),
            format!("{cache}/ballerina-run.tar"),
        );
        let (b_saved, r_saved) = (
            format!("{tmp}/ballerina-builder.tar"),
            format!("{tmp}/ballerina-run.tar"),
        );
        // Disabled: plain pulls, no cache directory.
        let calls = buildpack_image_calls(&sb, false, shell);
        assert_eq!(calls, [cmd("pull {}", &[b]), cmd("pull {}", &[r])]);
        assert!(!sb.path("cache").exists());
        // Cold: pull each image and save it into the cache.
        assert_eq!(
            buildpack_image_calls(&sb, true, shell),
            [
                cmd("pull {}", &[b]),
                cmd("save -o {} {}", &[&b_saved, b]),
                cmd("pull {}", &[r]),
                cmd("save -o {} {}", &[&r_saved, r]),
            ]
        );
        // Warm: load the tarballs, no pull.
        let calls = buildpack_image_calls(&sb, true, shell);
        assert_eq!(
            calls,
            [cmd("load -i {}", &[&bt]), cmd("load -i {}", &[&rt])]
        );
        // A tarball podman cannot load is replaced.
        fs::write(&bt, "corrupt").unwrap();
        assert_eq!(
            buildpack_image_calls(&sb, true, shell),
            [
                cmd("load -i {}", &[&bt]),
                cmd("pull {}", &[b]),
                cmd("save -o {} {}", &[&b_saved, b]),
                cmd("load -i {}", &[&rt]),
            ]
        );
        assert!(!fs::read_to_string(&bt).unwrap().contains("corrupt"));
        let left: Vec<_> = fs::read_dir(sb.path("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "only the two tarballs remain: {left:?}");
    }
}

#[test]
fn paths_cannot_leave_the_repository() {
    for shell in shells() {
        let sb = Sandbox::new();
        let mut case = Case::new("docker");
        case.app_path = "/app/../../etc".into();
        let calls = refused(
            &case,
            &sb,
            shell,
            "build-step",
            "must stay inside the repository",
        );
        assert!(calls.iter().all(|c| c[0] == "git"), "{calls:?}");

        // A symlink in the repository that points out of it.
        let sb = Sandbox::new();
        let case = Case::new("ballerina-buildpack");
        let cwt = cwt_with(case.template, &registries()[0]);
        let r = run(&sb, &cwt, &workflow(&case), shell, &mut |s| {
            if s == "clone-step" {
                std::os::unix::fs::symlink(sb.path("home"), sb.path("vol/source/app")).unwrap();
            }
        });
        let f = r.expect_err("a symlinked app path is refused");
        assert_eq!(f.step, "build-step");
        assert!(
            f.stderr.contains("resolves outside the repository"),
            "{}",
            f.stderr
        );
    }
}

#[test]
fn react_replaces_a_symlinked_dockerfile_instead_of_writing_through_it() {
    let sb = Sandbox::new();
    let case = Case::new("react");
    let target = sb.path("canary/written-through");
    let cwt = cwt_with(case.template, &registries()[0]);
    run(&sb, &cwt, &workflow(&case), "sh", &mut |s| {
        if s == "clone-step" {
            fill_repo(&sb, &case);
            std::os::unix::fs::symlink(&target, sb.path("vol/source/app/Dockerfile")).unwrap();
        }
    })
    .unwrap_or_else(|f| panic!("{}: {}", f.step, f.stderr));
    assert!(!target.exists());
    assert!(!sb.path("vol/source/app/Dockerfile").is_symlink());
}

#[test]
fn react_dockerfile_never_contains_the_node_version() {
    let mut case = Case::new("react");
    case.node_version = "21.7.3-bookworm_slim".into();
    // check_case reads the generated Dockerfile and asserts the value is not in it, and that
    // podman build got it as `--build-arg NODE_VERSION=<value>`.
    check_case(&Sandbox::new(), &case, &registries()[1], "sh");
}
