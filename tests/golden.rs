//! Reviewed render outputs. Each `fixtures/golden/NAME.args` holds the command-line arguments
//! (one per line), `NAME.yaml` the exact expected stdout and `NAME.stderr`, when there is one,
//! the exact expected warnings (none without it). After an intended change, run
//! `BUILDPLANE_BLESS=1 cargo test --test golden` and read the diff before committing it.

use std::path::Path;
use std::process::Command;

#[test]
fn renders_match_the_reviewed_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("fixtures/golden");
    let bless = std::env::var_os("BUILDPLANE_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "args"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "golden cases missing");
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<String> = std::fs::read_to_string(case)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_buildplane"))
            .current_dir(root)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            case.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let golden = case.with_extension("yaml");
        let golden_err = case.with_extension("stderr");
        if bless {
            std::fs::write(&golden, &out.stdout).unwrap();
            if out.stderr.is_empty() {
                let _ = std::fs::remove_file(&golden_err);
            } else {
                std::fs::write(&golden_err, &out.stderr).unwrap();
            }
            continue;
        }
        let expected_err = std::fs::read(&golden_err).unwrap_or_default();
        if expected_err != out.stderr {
            failures.push(format!(
                "{}: stderr differs:\n  expected: {:?}\n  got:      {:?}",
                golden_err.display(),
                String::from_utf8_lossy(&expected_err),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let expected = std::fs::read(&golden)
            .unwrap_or_else(|_| panic!("{} missing: bless it", golden.display()));
        if expected != out.stdout {
            let (e, g) = (
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&out.stdout),
            );
            let line = e
                .lines()
                .zip(g.lines())
                .position(|(a, b)| a != b)
                .map_or(e.lines().count().min(g.lines().count()), |i| i);
            failures.push(format!(
                "{}: differs from line {}:\n  expected: {:?}\n  got:      {:?}",
                golden.display(),
                line + 1,
                e.lines().nth(line).unwrap_or("<end>"),
                g.lines().nth(line).unwrap_or("<end>")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
