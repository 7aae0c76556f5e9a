//! `cargo bench --bench render`: render 10,000 Build specs (from 10,000 generated files) to a
//! YAML stream, and — in the same run — only serialize the same, already built objects. The
//! ratio render/serialize says how close rendering is to the floor set by serialization.

use buildplane::core::manifest;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use buildplane::core::render::Chart;
use buildplane::pipeline::{self, RenderRequest};
use std::time::{Duration, Instant};

const BUILDS: usize = 10_000;
const ROUNDS: usize = 5;

fn build_yaml(i: usize) -> String {
    let (template, params) = match i % 4 {
        0 => (
            "docker",
            "\n    parameters:\n      - {name: docker-context, value: /svc}\n      - {name: dockerfile-path, value: /svc/Dockerfile}",
        ),
        1 => (
            "react",
            "\n    parameters:\n      - {name: node-version, value: \"20\"}",
        ),
        2 => ("ballerina-buildpack", ""),
        _ => ("google-cloud-buildpacks", ""),
    };
    format!(
        "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata:\n  name: component-{i}-build-{i:08x}\n  namespace: org-{org}\nspec:\n  owner:\n    projectName: project-{p}\n    componentName: component-{i}\n  repository:\n    url: https://git.example.com/org-{org}/repo-{i}.git\n    revision:\n      branch: main\n    appPath: /services/component-{i}\n  templateRef:\n    name: {template}{params}\n",
        org = i % 50,
        p = i % 200,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..BUILDS {
        std::fs::write(dir.path().join(format!("build-{i:05}.yaml")), build_yaml(i)).unwrap();
    }
    let chart = Chart::builtin();
    let req = RenderRequest {
        builds: vec![dir.path().to_path_buf()],
        default_namespace: Some("default".into()),
        ..Default::default()
    };
    let mut render_times = Vec::new();
    let mut serialize_times = Vec::new();
    let mut parse_times = Vec::new();
    let files = buildplane::source::expand_paths(&[dir.path().to_path_buf()]).unwrap();
    let mut bytes = 0;
    let mut objects = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let manifests = pipeline::render(&chart, &req).expect("render");
        let yaml = manifest::to_yaml_stream(&manifests).expect("serialize");
        render_times.push(t.elapsed());
        bytes = yaml.len();
        objects = manifests.len();

        let t = Instant::now();
        let again = manifest::to_yaml_stream(&manifests).expect("serialize");
        serialize_times.push(t.elapsed());
        assert_eq!(again.len(), bytes);

        // The input side's floor: read and YAML-parse the same files, as render does.
        let t = Instant::now();
        let docs = buildplane::core::par::map(&files, |f| {
            let text = f.read().unwrap();
            buildplane::core::spec::parse_documents("bench", &text)
                .unwrap()
                .len()
        });
        parse_times.push(t.elapsed());
        assert_eq!(docs.iter().sum::<usize>(), BUILDS);
    }
    // The production path of `render` to stdout: streamed in sorted chunks.
    let mut stream_times = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut streamed = 0;
        pipeline::render_streamed(
            &chart,
            &req,
            |_| {},
            |objects: &[manifest::Manifest]| {
                streamed += manifest::to_yaml_stream(objects)?.len();
                Ok::<(), Box<dyn std::error::Error>>(())
            },
        )
        .expect("streamed render");
        stream_times.push(t.elapsed());
        assert_eq!(streamed, bytes);
    }
    let r = median(render_times);
    let s = median(serialize_times);
    println!(
        "render: {BUILDS} builds from {BUILDS} files -> {objects} objects, {bytes} bytes of YAML"
    );
    println!(
        "render (read + parse + validate + build + sort + serialize): {:.3} s median of {ROUNDS} = {:.0} builds/s",
        r.as_secs_f64(),
        BUILDS as f64 / r.as_secs_f64()
    );
    let p = median(parse_times);
    println!("serialize only (same objects): {:.3} s", s.as_secs_f64());
    println!(
        "read + YAML-parse only (same files): {:.3} s",
        p.as_secs_f64()
    );
    println!(
        "ratio render/serialize: {:.2}",
        r.as_secs_f64() / s.as_secs_f64()
    );
    println!(
        "render streamed (as `render` to stdout): {:.3} s median of {ROUNDS}",
        median(stream_times).as_secs_f64()
    );
    peak_memory(dir.path(), BUILDS);
    drop(dir);
    // 100,000 builds: the real binary, its peak resident memory.
    // Ten Builds per file: a directory holds at most 10,000 files (`source::walk`).
    let big = tempfile::tempdir().expect("temp dir");
    for f in 0..BIG / PER_FILE {
        let docs: Vec<String> = (f * PER_FILE..(f + 1) * PER_FILE).map(build_yaml).collect();
        let path = big.path().join(format!("builds-{f:05}.yaml"));
        std::fs::write(path, docs.join("---\n")).unwrap();
    }
    peak_memory(big.path(), BIG);
}

const BIG: usize = 100_000;
const PER_FILE: usize = 10;

/// Runs `buildplane render DIR > /dev/null` and prints its wall time and peak resident memory
/// (the kernel's `VmHWM`, read from the child until it exits).
fn peak_memory(dir: &std::path::Path, builds: usize) {
    let t = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_buildplane"))
        .arg("render")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run buildplane");
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "buildplane render failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "buildplane render of {builds} builds to /dev/null: {:.2} s, peak resident memory {} MB",
        t.elapsed().as_secs_f64(),
        peak_kb / 1024
    );
}
