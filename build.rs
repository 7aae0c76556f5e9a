//! Embeds the built-in chart (`charts/build-plane`) into the binary: every file under it
//! becomes an entry of `CHART_FILES` (relative path, content).
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

fn main() {
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
}
