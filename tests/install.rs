//! What an installed binary offers besides its commands: `version` (commit and build date),
//! shell completions that the shells accept, man pages, and the `kubectl buildplane` plugin
//! form (the binary under the name `kubectl-buildplane`).

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_buildplane"))
}

fn stdout(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let text = stdout(bin().arg("version"));
    assert!(
        text.starts_with(concat!(
            "buildplane ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        )),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(bin().args(["version", "-o", "json"]))).unwrap();
    let commit = json["commit"].as_str().unwrap();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(head) = head {
        assert_eq!(commit, head, "the commit of this checkout");
    }
    assert!(json["buildDate"].as_str().unwrap().ends_with('Z'), "{json}");
    let long = stdout(bin().arg("--version"));
    assert!(long.contains(commit), "{long}");
}

#[test]
fn completions_are_accepted_by_the_shells_and_know_the_subcommands() {
    let bash = stdout(bin().args(["completion", "bash"]));
    for sub in ["render", "apply", "sync", "controller", "completion"] {
        assert!(bash.contains(sub), "{sub} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("buildplane.bash");
    std::fs::write(&script, &bash).unwrap();
    // bash parses it and defines the completion function.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p buildplane",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("buildplane"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(
            !stdout(bin().args(["completion", shell])).is_empty(),
            "{shell}"
        );
    }
    let o = bin().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let page = stdout(bin().arg("man"));
    assert!(
        page.contains(".TH buildplane 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    let dir = tempfile::tempdir().unwrap();
    stdout(bin().arg("man").arg("--dir").arg(dir.path()));
    for name in [
        "buildplane.1",
        "buildplane-apply.1",
        "buildplane-sync.1",
        "buildplane-render.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}");
    }
}

#[test]
fn as_kubectl_buildplane_it_is_a_kubectl_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-buildplane");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_buildplane"), &plugin).unwrap();
    // kubectl runs `kubectl-buildplane ARGS` for `kubectl buildplane ARGS`.
    let text = stdout(Command::new(&plugin).arg("version"));
    assert!(text.starts_with("buildplane "), "{text}");
    let render = stdout(
        Command::new(&plugin)
            .args(["render", "fixtures/builds/greeter-docker.yaml"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(render.contains("kind: Workflow"), "{render}");
}
