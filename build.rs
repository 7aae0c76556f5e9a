//! Embeds the built-in chart (`charts/build-plane`) into the binary: every file under it
//! becomes an entry of `CHART_FILES` (relative path, content); likewise the per-build templates
//! (`templates/*.yaml`, `BUILD_TEMPLATE_FILES`). Also stamps the commit and the
//! build date that `buildplane version` prints.
use std::{env, fs, path::Path};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("chart dir").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect(&p, root, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                rel,
                p.canonicalize().unwrap().to_string_lossy().into_owned(),
            ));
        }
    }
}

/// The commit of the checkout (`BUILDPLANE_COMMIT` wins, e.g. in an image build without
/// `.git`), and the files whose change means another commit.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=BUILDPLANE_COMMIT");
    if let Ok(c) = env::var("BUILDPLANE_COMMIT") {
        return c;
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        for f in ["HEAD", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{r}");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

/// The build date: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn build_date() -> String {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let at = match env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(secs) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        None => std::time::SystemTime::now(),
    };
    humantime::format_rfc3339_seconds(at).to_string()
}

fn main() {
    println!("cargo:rustc-env=BUILDPLANE_COMMIT={}", commit());
    println!("cargo:rustc-env=BUILDPLANE_BUILD_DATE={}", build_date());
    let root = Path::new("charts/build-plane");
    println!("cargo:rerun-if-changed=charts");
    let mut files = Vec::new();
    collect(root, root, &mut files);
    let mut code = String::from("pub static CHART_FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in files {
        code.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("chart_files.rs");
    fs::write(out, code).unwrap();
    // The per-build templates (`templates/`): `BUILD_TEMPLATE_FILES`.
    let root = Path::new("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(root, root, &mut files);
    let mut code = String::from("pub static BUILD_TEMPLATE_FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in files.iter().filter(|(rel, _)| rel.ends_with(".yaml")) {
        code.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    code.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("build_template_files.rs");
    fs::write(out, code).unwrap();
}
