//! Loading Build files one by one, for a loop that must keep going: a broken file is set aside
//! with its error and the others are used. A one-shot command stops at the first error instead
//! (`load_builds`); a sync loop cannot, or one typo would stop every team's builds.

use super::logs::workflow_of;
use super::{LoadedBuild, PipelineError, builds_in_text};
use std::collections::{BTreeMap, BTreeSet};

/// One file of a source: its name as shown in messages, and its text (or why it is unreadable).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Result<String, String>,
}

/// A file that was skipped, and why (the message names file, document and field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub file: String,
    pub error: String,
}

/// The usable Builds, in file order, and the files set aside.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub builds: Vec<LoadedBuild>,
    pub broken: Vec<Broken>,
}

/// Loads every file on its own; documents of other kinds than Build are left out silently.
/// Two files that define the same Build (or Builds rendering the same Workflow) are both set
/// aside: neither may silently win.
pub fn load(files: &[SourceFile], default_namespace: Option<&str>) -> Loaded {
    let mut per_file: Vec<(String, Vec<LoadedBuild>)> = Vec::new();
    let mut broken = Vec::new();
    for f in files {
        let result = f
            .text
            .as_ref()
            .map_err(|e| format!("{}: {e}", f.name))
            .and_then(|text| {
                builds_in_text(&f.name, text, default_namespace, true).map_err(|e| e.to_string())
            });
        match result {
            Ok(builds) => per_file.push((f.name.clone(), builds)),
            Err(error) => broken.push(Broken {
                file: f.name.clone(),
                error,
            }),
        }
    }
    let clashes = clashes(&per_file);
    let mut builds = Vec::new();
    for (file, file_builds) in per_file {
        match clashes.get(&file) {
            Some(error) => broken.push(Broken {
                file,
                error: error.clone(),
            }),
            None => builds.extend(file_builds),
        }
    }
    broken.sort_by(|a, b| a.file.cmp(&b.file));
    Loaded { builds, broken }
}

/// Per file, the first clash it takes part in, as the error `render_builds` would report.
fn clashes(per_file: &[(String, Vec<LoadedBuild>)]) -> BTreeMap<String, String> {
    let mut by_workflow: BTreeMap<(String, String), Vec<&LoadedBuild>> = BTreeMap::new();
    for (_, builds) in per_file {
        for lb in builds {
            by_workflow.entry(workflow_of(lb)).or_default().push(lb);
        }
    }
    let mut out = BTreeMap::new();
    for ((ns, name), defs) in by_workflow {
        let files: BTreeSet<&str> = defs.iter().map(|d| d.origin.file.as_str()).collect();
        if defs.len() < 2 {
            continue;
        }
        let (first, second) = (defs[0], defs[1]);
        let (a, b) = (&first.build, &second.build);
        let error = if a.organization() == b.organization() && a.metadata.name == b.metadata.name {
            PipelineError::DuplicateBuild {
                namespace: a.organization().to_owned(),
                name: a.metadata.name.clone(),
                first: first.origin.to_string(),
                second: second.origin.to_string(),
            }
        } else {
            PipelineError::DuplicateWorkflow {
                workflow: format!("Workflow/{ns}/{name}"),
                first: first.origin.to_string(),
                second: second.origin.to_string(),
            }
        };
        for f in files {
            out.entry(f.to_owned()).or_insert_with(|| error.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(name: &str) -> String {
        format!(
            "apiVersion: openchoreo.dev/v1alpha1\nkind: Build\nmetadata: {{name: {name}, namespace: acme}}\n\
             spec:\n  owner: {{projectName: shop, componentName: {name}}}\n\
             \x20 repository: {{url: 'https://git.example.com/shop.git', revision: {{branch: main}}, appPath: /}}\n\
             \x20 templateRef: {{name: google-cloud-buildpacks}}\n"
        )
    }

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: Ok(text.into()),
        }
    }

    #[test]
    fn a_broken_file_is_set_aside_and_the_others_load() {
        let files = [
            file("a.yaml", &build("cart")),
            file(
                "b.yaml",
                "kind: Build\napiVersion: openchoreo.dev/v1alpha1\nspec: {}\n",
            ),
            file("c.yaml", "a: [unclosed\n"),
            SourceFile {
                name: "d.yaml".into(),
                text: Err("not UTF-8".into()),
            },
        ];
        let loaded = load(&files, Some("default"));
        assert_eq!(loaded.builds.len(), 1);
        assert_eq!(loaded.builds[0].build.metadata.name, "cart");
        let shown: Vec<&str> = loaded.broken.iter().map(|b| b.file.as_str()).collect();
        assert_eq!(shown, ["b.yaml", "c.yaml", "d.yaml"]);
        assert!(
            loaded.broken[0].error.starts_with("b.yaml: "),
            "{:?}",
            loaded.broken
        );
        assert!(loaded.broken[1].error.contains("invalid YAML"));
        assert_eq!(loaded.broken[2].error, "d.yaml: not UTF-8");
    }

    #[test]
    fn other_kinds_are_left_out_silently() {
        let workload = "apiVersion: openchoreo.dev/v1alpha1\nkind: Workload\nmetadata: {name: x}\n";
        let text = format!("{workload}---\n{}", build("cart"));
        let loaded = load(&[file("w.yaml", &text)], None);
        assert_eq!(loaded.builds.len(), 1);
        assert!(loaded.broken.is_empty());
    }

    #[test]
    fn duplicates_set_both_files_aside() {
        let files = [
            file("a.yaml", &build("cart")),
            file("b.yaml", &format!("{}---\n{}", build("cart"), build("pay"))),
            file("c.yaml", &build("web")),
        ];
        let loaded = load(&files, None);
        let names: Vec<&str> = loaded
            .builds
            .iter()
            .map(|b| b.build.metadata.name.as_str())
            .collect();
        assert_eq!(names, ["web"]);
        assert_eq!(loaded.broken.len(), 2);
        for b in &loaded.broken {
            assert!(b.error.contains("acme/cart is defined twice"), "{b:?}");
        }
    }
}
