//! Loading Build files one by one, for a loop that must keep going: a broken file is set aside
//! with its error and the others are used. A one-shot command stops at the first error instead
//! (`load_builds`); a sync loop cannot, or one typo would stop every team's builds.

use super::{LoadedBuild, builds_in_text, clashes};
use crate::core::manifest::ObjectId;
use crate::engine;
use std::collections::BTreeMap;

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
    let mut all: Vec<LoadedBuild> = Vec::new();
    let mut broken = Vec::new();
    for f in files {
        let result = f
            .text
            .as_ref()
            .map_err(|e| format!("{}: {e}", f.name))
            .and_then(|text| {
                // sync has no values: the built-in templates, or one the Build says is on the cluster.
                let catalog = crate::core::catalog::Catalog::builtin();
                builds_in_text(&f.name, text, default_namespace, true, Some(&catalog))
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(builds) => all.extend(builds),
            Err(error) => broken.push(Broken {
                file: f.name.clone(),
                error,
            }),
        }
    }
    // Files whose Builds clash are set aside whole, both sides: neither may silently win.
    let mut set_aside: BTreeMap<String, String> = BTreeMap::new();
    let mut objects: Vec<ObjectId> = Vec::with_capacity(all.len());
    all.retain(|lb| match engine::for_build(&lb.origin, &lb.build) {
        Ok(e) => {
            objects.push(e.build_object(&lb.build).id);
            true
        }
        Err(e) => {
            set_aside.insert(lb.origin.file.clone(), e.to_string());
            false
        }
    });
    let ids: Vec<&ObjectId> = objects.iter().collect();
    for c in clashes(&all, &ids) {
        for i in [c.first, c.second] {
            set_aside
                .entry(all[i].origin.file.clone())
                .or_insert_with(|| c.error.to_string());
        }
    }
    let builds = all
        .into_iter()
        .filter(|lb| !set_aside.contains_key(&lb.origin.file))
        .collect();
    broken.extend(
        set_aside
            .into_iter()
            .map(|(file, error)| Broken { file, error }),
    );
    broken.sort_by(|a, b| a.file.cmp(&b.file));
    Loaded { builds, broken }
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
